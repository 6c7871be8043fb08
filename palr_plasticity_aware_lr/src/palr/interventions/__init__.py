"""Plasticity interventions composed with any algorithm through :class:`InterventionStack`.

``build_stack(spec, overrides)`` turns a row of the agent table (:mod:`palr.agent_table`) into a
stack. ``overrides`` maps config field names (``measure_freq``, ``l2_coef``, ``sp_every``, ...) to
values; a field applies to every intervention whose config has it. Unknown fields are rejected
with the list of valid ones.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple, Type

from palr.agent_table import AgentSpec
from palr.interventions.base import (ENCODER, POLICY, ROLES, VALUE, Intervention,
                                     InterventionStack, MissingNetworkError, NetworkSlot,
                                     TrainingContext)
from palr.interventions.l2reg import L2Reg, L2RegConfig
from palr.interventions.monitor import MonitorConfig, PlasticityMonitor
from palr.interventions.palr import PALR, PALRConfig
from palr.interventions.periodic_reset import PeriodicReset, PeriodicResetConfig
from palr.interventions.redo import ReDo, ReDoConfig
from palr.interventions.shrink_perturb import ShrinkAndPerturb, ShrinkPerturbConfig

#: registry name -> (intervention class, config class, fixed config values)
REGISTRY: Dict[str, Tuple[Callable[[Any], Intervention], Type[Any], Dict[str, Any]]] = {
    "monitor": (PlasticityMonitor, MonitorConfig, {}),
    "palr": (PALR, PALRConfig, {}),
    "palr_no_perturb": (PALR, PALRConfig, {"perturb": False}),
    "palr_no_scale": (PALR, PALRConfig, {"scale_lr": False}),
    "l2reg": (L2Reg, L2RegConfig, {}),
    "shrink_perturb": (ShrinkAndPerturb, ShrinkPerturbConfig, {}),
    "periodic_reset": (PeriodicReset, PeriodicResetConfig, {}),
    "redo": (ReDo, ReDoConfig, {}),
}
#: interventions that measure plasticity themselves (no separate monitor needed)
MEASURING = ("monitor", "palr", "palr_no_perturb", "palr_no_scale", "redo")


def config_fields() -> Dict[str, Any]:
    """Every overridable field with its default, over all intervention configs."""
    fields: Dict[str, Any] = {}
    for _, config_cls, fixed in REGISTRY.values():
        for f in dataclasses.fields(config_cls):
            if f.name not in fixed:
                fields.setdefault(f.name, f.default)
    return fields


def build_intervention(name: str, overrides: Optional[Mapping[str, Any]] = None) -> Intervention:
    """One intervention by registry name, its config defaults updated by ``overrides``."""
    if name not in REGISTRY:
        raise ValueError(f"unknown intervention {name!r}; valid: {', '.join(sorted(REGISTRY))}")
    cls, config_cls, fixed = REGISTRY[name]
    own = {f.name for f in dataclasses.fields(config_cls)}
    values = {k: v for k, v in (overrides or {}).items() if k in own and k not in fixed}
    values.update(fixed)
    return cls(config_cls(**values))


def build_stack(spec: AgentSpec, overrides: Optional[Mapping[str, Any]] = None,
                monitor: bool = True) -> InterventionStack:
    """The intervention stack of an agent-table row.

    Args:
        spec: the agent (``palr.agent_table.resolve_agent``).
        overrides: config field values (see :func:`config_fields`).
        monitor: add a metrics-only :class:`PlasticityMonitor` when no intervention of the agent
            measures plasticity itself, so every agent logs the same plasticity curves.
    """
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(config_fields()))
    if unknown:
        raise ValueError(f"unknown intervention settings {unknown}; valid: "
                         f"{', '.join(sorted(config_fields()))}")
    names: Sequence[str] = list(spec.interventions)
    if monitor and not any(n in MEASURING for n in names):
        names = ["monitor"] + list(names)
    return InterventionStack([build_intervention(n, overrides) for n in names])


def stack_settings(stack: InterventionStack) -> Dict[str, Dict[str, Any]]:
    """The resolved configuration of every intervention of a stack, by registry name: what a run
    records of its interventions (its identity holds it)."""
    return {iv.name: dataclasses.asdict(iv.config) for iv in stack.interventions}


__all__ = [
    "Intervention", "InterventionStack", "NetworkSlot", "TrainingContext", "REGISTRY",
    "ROLES", "VALUE", "POLICY", "ENCODER", "MissingNetworkError",
    "build_intervention", "build_stack", "config_fields", "stack_settings", "PALR", "PALRConfig",
    "L2Reg",
    "L2RegConfig", "ShrinkAndPerturb", "ShrinkPerturbConfig", "PeriodicReset",
    "PeriodicResetConfig", "ReDo", "ReDoConfig", "PlasticityMonitor", "MonitorConfig",
]
