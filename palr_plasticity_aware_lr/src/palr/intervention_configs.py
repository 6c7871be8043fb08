"""The settings of every plasticity intervention (config dataclasses) and their checks.

Torch-free on purpose: the launchers validate ``--set KEY=VALUE`` (and the DD-PPO trainer its
``agent.interventions``) with :func:`check_settings` before importing torch or creating anything;
:mod:`palr.interventions` builds the interventions from the same classes.
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Tuple, Type

from palr.agent_table import AgentSpec
from palr.checks import check_at_least, check_positive, check_positive_int, check_range
from palr.network_roles import ALGO_ROLES, VALUE, check_role_names, networks_with_roles

__all__ = ["MonitorConfig", "PALRConfig", "L2RegConfig", "ShrinkPerturbConfig",
           "PeriodicResetConfig", "ReDoConfig", "CONFIGS", "MEASURING", "ROLE_SETTINGS",
           "InterventionSettings", "config_fields", "make_config", "stack_names", "check_settings"]


@dataclass
class MonitorConfig:
    """Plasticity measurement settings.

    Attributes:
        measure_freq: gradient updates between measurements.
        diag_batch_size: diagnostic batch size (>= 4x the widest layer for unbiased ranks).
        tau: dormancy threshold of the tau-dormant fraction (ReDo uses 0.025 for logging).
        srank_delta: delta of srank (Kumar et al. 2021).
        networks: roles of the networks to measure (``("policy",)``: SAC's actor, PPO's trunk;
            :data:`palr.network_roles.ROLES`); ``None`` = every trained network.
    """

    measure_freq: int = 1000
    diag_batch_size: int = 1024
    tau: float = 0.025
    srank_delta: float = 0.01
    networks: Optional[Tuple[str, ...]] = None

    def __post_init__(self) -> None:
        check_positive_int("measure_freq", self.measure_freq)
        check_positive_int("diag_batch_size", self.diag_batch_size)
        check_range("tau", self.tau, 0.0, 1.0)
        check_range("srank_delta", self.srank_delta, 0.0, 0.999)
        check_role_names("networks", self.networks)


@dataclass
class PALRConfig(MonitorConfig):
    """PALR hyper-parameters (the original rlBigWorld defaults; docs/palr.md#settings).

    Attributes:
        max_lr_scale: largest per-layer LR multiplier (>= 1).
        rank_beta: weight of the effective-rank deficit in the plasticity deficit.
        beta: smoothing of the scale (0: the formula as it stands).
        sigma: scale of the He-normal re-draw of a dead unit's incoming weights.
        perturb_threshold: dead fraction above which a layer's dead units are re-initialised.
        scale_lr: apply per-layer LR scaling (False: the PALR-NoScale ablation).
        perturb: apply targeted perturbation (False: the PALR-NoPerturb ablation).
    """

    max_lr_scale: float = 2.0
    rank_beta: float = 1.5
    beta: float = 0.0
    sigma: float = 0.5
    perturb_threshold: float = 0.05
    scale_lr: bool = True
    perturb: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        check_at_least("max_lr_scale", self.max_lr_scale, 1.0)
        check_at_least("rank_beta", self.rank_beta, 0.0)
        check_range("beta", self.beta, 0.0, 0.999999)
        check_at_least("sigma", self.sigma, 0.0)
        check_range("perturb_threshold", self.perturb_threshold, 0.0, 1.0)
        if not (self.scale_lr or self.perturb):
            raise ValueError("PALR with neither scale_lr nor perturb does nothing; use FixedLR")


@dataclass
class L2RegConfig:
    """Attributes:
        l2_coef: penalty coefficient c in ``loss += c * sum ||W||^2`` over every weight matrix or
            kernel (biases, norm scales and other vectors are not penalised).
        l2_roles: roles of the networks whose loss gets the penalty.
    """

    l2_coef: float = 1e-4
    l2_roles: Tuple[str, ...] = (VALUE,)

    def __post_init__(self) -> None:
        check_positive("l2_coef", self.l2_coef)
        check_role_names("l2_roles", self.l2_roles)


@dataclass
class ShrinkPerturbConfig:
    """Attributes:
        sp_every: gradient updates between shrink-and-perturb steps.
        sp_shrink: lambda, the factor weights are shrunk by.
        sp_noise: sigma, the weight of the fresh initialisation added.
    """

    sp_every: int = 5000
    sp_shrink: float = 0.8
    sp_noise: float = 0.2

    def __post_init__(self) -> None:
        check_positive_int("sp_every", self.sp_every)
        check_range("sp_shrink", self.sp_shrink, 0.0, 1.0)
        check_range("sp_noise", self.sp_noise, 0.0, 10.0)


@dataclass
class PeriodicResetConfig:
    """Attributes:
        reset_every_updates: gradient updates between full resets (20k: a reset every 1-2
            CartPole phases of ~15-18k updates, never tied to a switch).
    """

    reset_every_updates: int = 20_000

    def __post_init__(self) -> None:
        check_positive_int("reset_every_updates", self.reset_every_updates)


@dataclass
class ReDoConfig(MonitorConfig):
    """Attributes:
        redo_every: updates between recycling steps (Dopamine: 1000).
        redo_batch_size: samples for the dormancy statistics (Dopamine: 256).

    The dormancy threshold is the monitor's ``tau`` (default 0.025, Sokar et al.'s default).
    """

    redo_every: int = 1000
    redo_batch_size: int = 256

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive_int("redo_every", self.redo_every)
        check_positive_int("redo_batch_size", self.redo_batch_size)


#: registry name -> (config class, fixed config values)
CONFIGS: Dict[str, Tuple[Type[Any], Dict[str, Any]]] = {
    "monitor": (MonitorConfig, {}),
    "palr": (PALRConfig, {}),
    "palr_no_perturb": (PALRConfig, {"perturb": False}),
    "palr_no_scale": (PALRConfig, {"scale_lr": False}),
    "l2reg": (L2RegConfig, {}),
    "shrink_perturb": (ShrinkPerturbConfig, {}),
    "periodic_reset": (PeriodicResetConfig, {}),
    "redo": (ReDoConfig, {}),
}
#: interventions that measure plasticity themselves (no separate monitor needed)
MEASURING = ("monitor", "palr", "palr_no_perturb", "palr_no_scale", "redo")
#: settings that select networks by role
ROLE_SETTINGS = ("networks", "l2_roles")


def config_fields() -> Dict[str, Any]:
    """Every overridable field with its default, over all intervention configs."""
    fields: Dict[str, Any] = {}
    for config_cls, fixed in CONFIGS.values():
        for f in dataclasses.fields(config_cls):
            if f.name not in fixed:
                fields.setdefault(f.name, f.default)
    return fields


def _settings_post_init(self: Any) -> None:
    """Every setting in its range: each intervention's config checks its own fields."""
    for config_cls in dict.fromkeys(cls for cls, _ in CONFIGS.values()):
        config_cls(**{f.name: getattr(self, f.name) for f in dataclasses.fields(config_cls)})


def _settings_class() -> Type[Any]:
    fields: Dict[str, Tuple[str, Any, Any]] = {}
    for config_cls, fixed in CONFIGS.values():
        hints = typing.get_type_hints(config_cls)
        for f in dataclasses.fields(config_cls):
            if f.name not in fixed and f.name not in fields:
                fields[f.name] = (f.name, hints[f.name], dataclasses.field(default=f.default))
    cls = dataclasses.make_dataclass("InterventionSettings", list(fields.values()),
                                     namespace={"__post_init__": _settings_post_init,
                                                "__module__": __name__})
    cls.__doc__ = ("Every intervention setting: the fields of all the configs of :data:`CONFIGS` "
                   "(one value per name; each agent's interventions use the ones they have). "
                   "The config section ``interventions`` of the launchers.")
    return cls


#: the ``interventions`` section of a launcher's config tree (:mod:`palr.config`)
InterventionSettings = _settings_class()


def make_config(name: str, overrides: Optional[Mapping[str, Any]] = None) -> Any:
    """The config of intervention ``name``: its defaults updated by the ``overrides`` it has.

    Raises:
        ValueError: unknown intervention name or a setting out of its range.
    """
    if name not in CONFIGS:
        raise ValueError(f"unknown intervention {name!r}; valid: {', '.join(sorted(CONFIGS))}")
    config_cls, fixed = CONFIGS[name]
    own = {f.name for f in dataclasses.fields(config_cls)}
    values = {k: v for k, v in (overrides or {}).items() if k in own and k not in fixed}
    values.update(fixed)
    return config_cls(**values)


def stack_names(spec: AgentSpec, monitor: bool = True) -> List[str]:
    """Registry names of an agent's interventions, with a metrics-only ``monitor`` first when
    ``monitor`` is set and none of them measures plasticity itself."""
    names = list(spec.interventions)
    if monitor and not any(n in MEASURING for n in names):
        names = ["monitor"] + names
    return names


def check_settings(spec: AgentSpec, overrides: Optional[Mapping[str, Any]] = None,
                   monitor: bool = True, algo: Optional[str] = None) -> List[Any]:
    """The configs of every intervention of ``spec``'s stack; raises ValueError (one line, naming
    the setting and its valid range) for an unknown or out-of-range setting, and, given the
    ``algo`` (``DQN``, ``SAC``, ``PPO``), for an intervention that would find none of its networks
    (:class:`palr.network_roles.MissingNetworkError`)."""
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(config_fields()))
    if unknown:
        raise ValueError(f"unknown intervention settings {unknown}; valid: "
                         f"{', '.join(sorted(config_fields()))}")
    configs = [make_config(name, overrides) for name in stack_names(spec, monitor)]
    if algo is not None:  # every intervention must find the networks it acts on
        for name, config in zip(stack_names(spec, monitor), configs):
            for key in ROLE_SETTINGS:
                if hasattr(config, key):
                    networks_with_roles(ALGO_ROLES[algo], getattr(config, key), name, key)
    return configs
