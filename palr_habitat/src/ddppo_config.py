"""Configuration of a DD-PPO Fetch run: docstringed dataclasses, loaded from YAML and validated.

The machinery (YAML with ``base:`` includes, typed conversion, dotted ``--set`` overrides) is
the project's one config system, :mod:`palr.config`; this module holds the DD-PPO schema: each
section checks its own ranges in ``__post_init__`` (:mod:`palr.checks`), and
:func:`check_across_sections` the few checks that need two sections. A config file is a YAML
mapping whose sections mirror :class:`TrainConfig`. ``base: other.yaml`` (a path relative to the
file, or a list of them) includes other files first; the including file's
values override theirs key by key (``rearrange_base.yaml`` holds every default, the four
experiment configs only say what differs). Command-line ``--set section.key=value`` overrides are
applied last, with the same checks.

Validation is strict (docs/design.md#reliability-rules): an unknown key or a value of the wrong type is a
:class:`ConfigError` naming the file and the key's dotted path, e.g.
``ddppo_palr_fetch.yaml: ppo.num_stepz: unknown key; valid keys under 'ppo': clip_param, ...``.
Integers may be written ``50_000_000`` or ``5.0e7`` (an integral float); booleans must be
``true``/``false``.
"""
from __future__ import annotations

import dataclasses
import pathlib
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar, Dict, List, Optional, Tuple, Union

from palr.checks import (SettingError, check_at_least, check_choice, check_non_negative_int,
                         check_positive, check_positive_int, check_range, check_widths)
from palr.config import ConfigError, build, convert, load

CONFIG_DIR = pathlib.Path(__file__).resolve().parents[1] / "configs"
BACKENDS = ("auto", "habitat", "standin")
VECTOR_MODES = ("auto", "inline", "subprocess")
NORMS = ("none", "batch", "group")
RNN_TYPES = ("LSTM", "GRU")
ACTION_ACTIVATIONS = ("tanh", "none")
DEVICES = ("auto", "cpu", "cuda")
DIST_BACKENDS = ("auto", "nccl", "gloo")
ALGO = "PPO"  # agent display names: PALR-PPO, PPO-FixedLR, ...


# ------------------------------------------------------------------------------ sections
@dataclass
class PhaseConfig:
    """One phase of the Fetch curriculum and how each backend realises it.

    Attributes:
        name: phase label (``pick_apple``, ...), written to ``curriculum_events.json``.
        habitat_config: habitat-lab benchmark config of the phase (a path inside habitat-lab's
            config tree, e.g. ``benchmark/rearrange/skills/pick.yaml``).
        target_object: substring of the episode's target-object handle that selects the
            dataset episodes of this phase (``apple`` -> ``013_apple_:0000``); empty = any.
        goal_receptacle: substring of the goal receptacle's name (``sink``); empty = any.
        dataset: optional override of the habitat dataset ``data_path`` for this phase.
        standin_task: the Meta-World v3 task that stands in for the phase without habitat-sim.
    """

    name: str = ""
    habitat_config: str = ""
    target_object: str = ""
    goal_receptacle: str = ""
    dataset: str = ""
    standin_task: str = ""


def default_phases() -> List[PhaseConfig]:
    """The original curriculum's 4 phases: pick apple, pick bowl, open fridge, place in sink."""
    return [
        PhaseConfig("pick_apple", "benchmark/rearrange/skills/pick.yaml", "apple", "", "",
                    "pick-place-v3"),
        PhaseConfig("pick_bowl", "benchmark/rearrange/skills/pick.yaml", "bowl", "", "",
                    "pick-out-of-hole-v3"),
        PhaseConfig("open_fridge", "benchmark/rearrange/skills/open_fridge.yaml", "", "", "",
                    "door-open-v3"),
        PhaseConfig("place_sink", "benchmark/rearrange/skills/place.yaml", "", "sink", "",
                    "bin-picking-v3"),
    ]


@dataclass
class EnvConfig:
    """Environment backend and observation settings (same keys and shapes for both backends).

    Attributes:
        backend: ``auto`` (habitat-lab when ``habitat_sim`` imports, else the stand-in),
            ``habitat`` or ``standin`` (Meta-World Sawyer tasks rendered with MuJoCo).
        resolution: height = width of the RGB and depth images (originally 128).
        num_envs: environments per rank (process).
        vector: ``inline`` (all envs of a rank step in its process), ``subprocess`` (one worker
            process per env) or ``auto`` (subprocess for habitat with several envs, else inline).
        max_episode_steps: episode length limit; 0 = the backend's own (habitat task config).
        end_on_success: end the episode at the first success (habitat's ``end_on_success``).
        max_depth: depth in metres mapped to 1.0 (the stand-in; habitat normalises itself).
        camera: the stand-in's Meta-World camera (``topview``, ``behindGripper``, ...).
        gpu_device_id: habitat-sim's rendering GPU; -1 = the rank's local GPU.
        habitat_overrides: extra habitat-lab config overrides (``key=value`` strings).
    """

    backend: str = "auto"
    resolution: int = 128
    num_envs: int = 16
    vector: str = "auto"
    max_episode_steps: int = 0
    end_on_success: bool = True
    max_depth: float = 3.0
    camera: str = "topview"
    gpu_device_id: int = -1
    habitat_overrides: List[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        check_choice("backend", self.backend, BACKENDS)
        check_choice("vector", self.vector, VECTOR_MODES)
        for name in ("resolution", "num_envs"):
            check_positive_int(name, getattr(self, name))
        if self.resolution < 16:
            raise SettingError("resolution", "at least 16 (the ResNet's smallest image)",
                               self.resolution)
        check_non_negative_int("max_episode_steps", self.max_episode_steps)
        check_positive("max_depth", self.max_depth)


@dataclass
class CurriculumConfig:
    """Attributes:
        steps_per_phase: environment steps (all ranks together) before switching phase.
        phases: the phases in order.
    """

    steps_per_phase: int = 50_000_000
    phases: List[PhaseConfig] = field(default_factory=default_phases)

    def __post_init__(self) -> None:
        check_positive_int("steps_per_phase", self.steps_per_phase)
        if not self.phases:
            raise SettingError("phases", "a non-empty list (at least one phase)", self.phases)
        for i, phase in enumerate(self.phases):
            if not phase.name:
                raise SettingError(f"phases[{i}].name", "a non-empty name", phase.name)
        names = [p.name for p in self.phases]
        if len(set(names)) != len(names):
            raise SettingError("phases", "phases with unique names", names)


@dataclass
class PolicyConfig:
    """habitat-baselines' PointNavResNetPolicy as its rearrange skills use it
    (:mod:`palr_habitat.palr_fetch_policy`); the defaults are its values.

    Attributes:
        baseplanes: channels of the first ResNet stage (``resnet_baseplanes``: 32; tests use 4).
        blocks: basic blocks per stage (resnet18: 2, 2, 2, 2).
        norm: ``group`` (habitat-baselines' GroupNorm; no conv unit is then recyclable by PALR's
            perturbation or ReDo), ``none`` (every block's inner conv is recyclable) or ``batch``.
        groups: GroupNorm groups (habitat-baselines: baseplanes // 2 = 16).
        input_pool: average-pooling factor applied to the images first (habitat-baselines: 2).
        compression_size: target size of the flattened compressed ResNet output (2048).
        hidden_size: width of the visual projection and the recurrent layers (512).
        rnn_type: ``LSTM`` (rl_skill.yaml) or ``GRU``.
        num_recurrent_layers: stacked recurrent layers (rl_skill.yaml: 2).
        prev_action_size: width of the previous-action embedding (32).
        action_activation: ``tanh`` on the action mean (habitat-baselines' default) or ``none``.
        log_std_init: initial log standard deviation of the Gaussian actions (0).
        log_std_min: lower clamp of the log standard deviation (-5).
        log_std_max: upper clamp of the log standard deviation (2).
    """

    baseplanes: int = 32
    blocks: List[int] = field(default_factory=lambda: [2, 2, 2, 2])
    norm: str = "group"
    groups: int = 16
    input_pool: int = 2
    compression_size: int = 2048
    hidden_size: int = 512
    rnn_type: str = "LSTM"
    num_recurrent_layers: int = 2
    prev_action_size: int = 32
    action_activation: str = "tanh"
    log_std_init: float = 0.0
    log_std_min: float = -5.0
    log_std_max: float = 2.0

    def __post_init__(self) -> None:
        check_choice("norm", self.norm, NORMS)
        check_choice("rnn_type", self.rnn_type, RNN_TYPES)
        check_choice("action_activation", self.action_activation, ACTION_ACTIVATIONS)
        for name in ("baseplanes", "groups", "input_pool", "compression_size", "hidden_size",
                     "num_recurrent_layers", "prev_action_size"):
            check_positive_int(name, getattr(self, name))
        check_widths("blocks", self.blocks)
        if self.norm == "group" and self.baseplanes % self.groups != 0:
            raise ValueError(f"groups: baseplanes {self.baseplanes} is not divisible by groups "
                             f"{self.groups}")
        if self.log_std_min >= self.log_std_max:
            raise ValueError(f"log_std_min must be below log_std_max, got {self.log_std_min}, "
                             f"{self.log_std_max}")


@dataclass
class PPOConfig:
    """Clipped PPO (Schulman et al. 2017) with GAE (Schulman et al. 2016); defaults follow
    habitat-baselines' rearrange skill config (rl_skill.yaml).

    Attributes:
        num_steps: rollout length per environment.
        ppo_epoch: passes over each rollout.
        num_mini_batch: minibatches per pass (equal on every rank: DDP needs the same number of
            backward passes everywhere).
        clip_param: ratio clip epsilon.
        value_loss_coef: weight of the value loss.
        entropy_coef: weight of the entropy bonus.
        lr: Adam base learning rate.
        eps: Adam epsilon.
        max_grad_norm: global gradient-norm clip (after the all-reduce).
        gamma: discount.
        gae_lambda: GAE lambda (habitat's ``tau``).
        use_clipped_value_loss: PPO2-style clipped value loss.
        use_normalized_advantage: normalise advantages (statistics over all ranks).
        use_linear_lr_decay: decay the base learning rate linearly to 0 over the run.
    """

    num_steps: int = 128
    ppo_epoch: int = 2
    num_mini_batch: int = 2
    clip_param: float = 0.2
    value_loss_coef: float = 0.5
    entropy_coef: float = 0.001
    lr: float = 3e-4
    eps: float = 1e-5
    max_grad_norm: float = 0.2
    gamma: float = 0.99
    gae_lambda: float = 0.95
    use_clipped_value_loss: bool = True
    use_normalized_advantage: bool = False
    use_linear_lr_decay: bool = False

    def __post_init__(self) -> None:
        for name in ("num_steps", "ppo_epoch", "num_mini_batch"):
            check_positive_int(name, getattr(self, name))
        for name in ("lr", "eps", "clip_param", "max_grad_norm"):
            check_positive(name, getattr(self, name))
        for name in ("gamma", "gae_lambda"):
            check_range(name, getattr(self, name), 0.0, 1.0)
        for name in ("value_loss_coef", "entropy_coef"):
            check_at_least(name, getattr(self, name), 0.0)


@dataclass
class DDPPOConfig:
    """Decentralized distributed PPO (Wijmans et al. 2020).

    Attributes:
        sync_frac: a rank stops collecting once this fraction of all ranks finished a full
            rollout (the straggler preemption threshold).
        short_rollout_threshold: ... but never before this fraction of ``num_steps``.
        backend: ``auto`` (NCCL on GPU, gloo on CPU), ``nccl`` or ``gloo``.
        timeout_s: collective timeout.
    """

    sync_frac: float = 0.6
    short_rollout_threshold: float = 0.25
    backend: str = "auto"
    timeout_s: int = 1800

    def __post_init__(self) -> None:
        for name in ("sync_frac", "short_rollout_threshold"):
            check_range(name, getattr(self, name), 0.0, 1.0)
        check_choice("backend", self.backend, DIST_BACKENDS)
        check_positive_int("timeout_s", self.timeout_s)


@dataclass
class AgentConfig:
    """Which agent of the table (:mod:`palr.agent_table`) runs, and its intervention settings.

    Attributes:
        name: index or name (``4``, ``PALR``, ``PALR-PPO``, ``PALR-NoPerturb``, ``FixedLR``...).
        interventions: overrides of intervention config fields (``measure_freq``,
            ``diag_batch_size``, ``perturb_threshold``, ...;
            :func:`palr.intervention_configs.config_fields`).
        encoder_diag_images: images of the diagnostic batch fed to the ResNet (each image gives
            H x W samples per channel, so far fewer images than trunk samples are needed).
    """

    name: Union[int, str] = "PALR"
    interventions: Dict[str, Any] = field(default_factory=dict)
    encoder_diag_images: int = 64

    def __post_init__(self) -> None:
        check_positive_int("encoder_diag_images", self.encoder_diag_images)


@dataclass
class RunConfig:
    """Attributes:
        device: ``auto`` (the rank's GPU when CUDA is available), ``cpu`` or ``cuda``.
        total_steps: environment steps of the run; 0 = phases x steps_per_phase.
        max_iterations: stop after this many PPO iterations (0 = no limit; smoke tests). An
            iteration is one rollout plus its ``ppo_epoch`` x ``num_mini_batch`` gradient
            updates (the agent contract's ``updates``); called ``max_updates`` before.
        checkpoint_interval: PPO iterations between checkpoints.
        log_interval: PPO iterations between console lines.
        torch_threads: intra-op threads per process.
        rank_digests: write every rank's parameter digest after every iteration and after every
            intervention's published log (event: its name; with the units re-initialised so far
            in this session) to ``<outdir>/ranks/rank<r>.jsonl`` (tests check the ranks stay
            identical).
        tensorboard: write TensorBoard scalars to ``<outdir>/tb``.
    """

    #: keys of earlier versions -> their names now (palr.config names the new one in the error)
    RENAMED: ClassVar[Dict[str, str]] = {"max_updates": "max_iterations"}

    device: str = "auto"
    total_steps: int = 0
    max_iterations: int = 0
    checkpoint_interval: int = 50
    log_interval: int = 10
    torch_threads: int = 1
    rank_digests: bool = False
    tensorboard: bool = True

    def __post_init__(self) -> None:
        check_choice("device", self.device, DEVICES)
        for name in ("total_steps", "max_iterations"):
            check_non_negative_int(name, getattr(self, name))
        for name in ("checkpoint_interval", "log_interval", "torch_threads"):
            check_positive_int(name, getattr(self, name))


@dataclass
class TrainConfig:
    """A whole DD-PPO Fetch run."""

    env: EnvConfig = field(default_factory=EnvConfig)
    curriculum: CurriculumConfig = field(default_factory=CurriculumConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    ppo: PPOConfig = field(default_factory=PPOConfig)
    ddppo: DDPPOConfig = field(default_factory=DDPPOConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)
    run: RunConfig = field(default_factory=RunConfig)

    @property
    def total_steps(self) -> int:
        if self.run.total_steps > 0:
            return self.run.total_steps
        return self.curriculum.steps_per_phase * len(self.curriculum.phases)


# ------------------------------------------------------------------------------ loading
def load_config(path: Union[str, pathlib.Path], overrides: Optional[List[str]] = None
                ) -> TrainConfig:
    """Load, merge and validate a config file plus ``--set`` overrides
    (:func:`palr.config.load`, whose sections check their ranges, then :func:`validate`).

    Raises:
        ConfigError: one line naming the file and the offending key path.
    """
    path = pathlib.Path(path).resolve()
    config = load(TrainConfig, path, overrides or [],
                  missing_hint=f"configs live in {CONFIG_DIR}",
                  empty_hint=f"start from a config in {CONFIG_DIR} (e.g. "
                             "'base: rearrange_base.yaml' plus what differs)")
    validate(config, f"{path.name}: ")
    return config


def config_from_dict(data: Dict[str, Any]) -> TrainConfig:
    """A validated config from a plain mapping (e.g. one saved in a checkpoint)."""
    config = build(TrainConfig, data)
    validate(config, "")
    return config


def validate(cfg: TrainConfig, where: str = "") -> None:
    """What the sections' ``__post_init__`` range checks cannot see: the checks across sections
    (:func:`check_across_sections`) and the agent's entry in the agent table with its
    intervention settings."""
    check_across_sections(cfg, where)
    _check_agent(cfg, where)


def check_across_sections(cfg: TrainConfig, where: str = "") -> None:
    """The checks that need two sections (each section checks its own ranges)."""
    if cfg.env.resolution // cfg.policy.input_pool < 8:
        raise ConfigError(f"{where}policy.input_pool: {cfg.env.resolution}-pixel images pooled "
                          f"by {cfg.policy.input_pool} leave fewer than 8 pixels; lower it")
    min_steps = max(1, int(cfg.ppo.num_steps * cfg.ddppo.short_rollout_threshold))
    chunks = -(-cfg.ppo.num_mini_batch // cfg.env.num_envs)
    if min_steps < chunks:
        raise ConfigError(
            f"{where}ppo.num_mini_batch: {cfg.ppo.num_mini_batch} minibatches need at least "
            f"{chunks} steps per env in the shortest (preempted) rollout, which has {min_steps}; "
            "raise ppo.num_steps or ddppo.short_rollout_threshold, or lower num_mini_batch")


def _check_agent(cfg: TrainConfig, where: str) -> None:
    """``agent.name`` is in the agent table and every intervention setting is known, of the
    right type and in its range (torch-free: :mod:`palr.intervention_configs`)."""
    from palr.agent_table import resolve_agent
    from palr.intervention_configs import check_settings
    try:
        spec = resolve_agent(cfg.agent.name, ALGO)
    except ValueError as err:
        raise ConfigError(f"{where}agent.name: {err}") from None
    _check_interventions(cfg.agent.interventions, where)
    try:
        check_settings(spec, intervention_overrides(cfg), algo=ALGO)
    except ValueError as err:
        raise ConfigError(f"{where}agent.interventions: {err}") from None


def _check_interventions(overrides: Dict[str, Any], where: str) -> None:
    """Every ``agent.interventions`` key is an intervention setting of the right type."""
    from palr.intervention_configs import InterventionSettings
    hints = typing.get_type_hints(InterventionSettings)
    for key, value in overrides.items():
        path = f"agent.interventions.{key}"
        if key not in hints:
            raise ConfigError(f"{where}{path}: unknown intervention setting; valid: "
                              f"{', '.join(sorted(hints))}")
        convert(value, hints[key], path, where)


def intervention_overrides(cfg: TrainConfig) -> Dict[str, Any]:
    """``agent.interventions`` as :func:`palr.interventions.build_stack` wants it (lists ->
    tuples, ints -> floats where the field is a float)."""
    from palr.intervention_configs import InterventionSettings
    hints = typing.get_type_hints(InterventionSettings)
    return {key: convert(value, hints[key], f"agent.interventions.{key}")
            for key, value in cfg.agent.interventions.items()}


def to_dict(cfg: TrainConfig) -> Dict[str, Any]:
    """Plain nested dict of a config (for checkpoints, result.json and config.yaml)."""
    return dataclasses.asdict(cfg)


__all__ = [
    "ConfigError", "PhaseConfig", "EnvConfig", "CurriculumConfig", "PolicyConfig", "PPOConfig",
    "DDPPOConfig", "AgentConfig", "RunConfig", "TrainConfig", "load_config", "config_from_dict",
    "validate", "check_across_sections", "intervention_overrides", "to_dict", "default_phases",
    "CONFIG_DIR", "NORMS",
    "RNN_TYPES", "ACTION_ACTIVATIONS",
]
