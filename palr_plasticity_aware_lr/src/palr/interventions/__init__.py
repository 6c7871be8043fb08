"""Plasticity interventions composed with any algorithm through :class:`InterventionStack`.

``build_stack(spec, overrides)`` turns a row of the agent table (:mod:`palr.agent_table`) into a
stack. ``overrides`` maps config field names (``measure_freq``, ``l2_coef``, ``sp_every``, ...) to
values; a field applies to every intervention whose config has it. Unknown fields are rejected
with the list of valid ones.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, Mapping, Optional

from palr.agent_table import AgentSpec
from palr.intervention_configs import (CONFIGS, MEASURING, L2RegConfig, MonitorConfig,
                                       PALRConfig, PeriodicResetConfig, ReDoConfig,
                                       ShrinkPerturbConfig, check_settings, config_fields,
                                       make_config, stack_names)
from palr.interventions.base import (ENCODER, POLICY, ROLES, VALUE, Intervention,
                                     InterventionStack, MissingNetworkError, NetworkSlot,
                                     TrainingContext)
from palr.interventions.l2reg import L2Reg
from palr.interventions.monitor import PlasticityMonitor
from palr.interventions.palr import PALR
from palr.interventions.periodic_reset import PeriodicReset
from palr.interventions.redo import ReDo
from palr.interventions.shrink_perturb import ShrinkAndPerturb

#: registry name -> intervention class (its config class and fixed values: ``CONFIGS``)
CLASSES: Dict[str, Callable[[Any], Intervention]] = {
    "monitor": PlasticityMonitor, "palr": PALR, "palr_no_perturb": PALR, "palr_no_scale": PALR,
    "l2reg": L2Reg, "shrink_perturb": ShrinkAndPerturb, "periodic_reset": PeriodicReset,
    "redo": ReDo,
}
#: registry name -> (intervention class, config class, fixed config values)
REGISTRY = {name: (CLASSES[name], *CONFIGS[name]) for name in CONFIGS}


def build_intervention(name: str, overrides: Optional[Mapping[str, Any]] = None) -> Intervention:
    """One intervention by registry name, its config defaults updated by ``overrides``."""
    config = make_config(name, overrides)  # ValueError for an unknown name or a bad setting
    return CLASSES[name](config)


def build_stack(spec: AgentSpec, overrides: Optional[Mapping[str, Any]] = None,
                monitor: bool = True) -> InterventionStack:
    """The intervention stack of an agent-table row.

    Args:
        spec: the agent (``palr.agent_table.resolve_agent``).
        overrides: config field values (see :func:`config_fields`).
        monitor: add a metrics-only :class:`PlasticityMonitor` when no intervention of the agent
            measures plasticity itself, so every agent logs the same plasticity curves.
    """
    configs = check_settings(spec, overrides, monitor)
    return InterventionStack([CLASSES[name](config)
                              for name, config in zip(stack_names(spec, monitor), configs)])


def stack_settings(stack: InterventionStack) -> Dict[str, Dict[str, Any]]:
    """The resolved configuration of every intervention of a stack, by registry name: what a run
    records of its interventions (its identity holds it)."""
    return {iv.name: dataclasses.asdict(iv.config) for iv in stack.interventions}


__all__ = [
    "Intervention", "InterventionStack", "NetworkSlot", "TrainingContext", "REGISTRY",
    "ROLES", "VALUE", "POLICY", "ENCODER", "MissingNetworkError",
    "CLASSES", "MEASURING", "build_intervention", "build_stack", "config_fields", "check_settings",
    "stack_settings", "PALR", "PALRConfig", "L2Reg", "L2RegConfig", "ShrinkAndPerturb",
    "ShrinkPerturbConfig", "PeriodicReset", "PeriodicResetConfig", "ReDo", "ReDoConfig",
    "PlasticityMonitor", "MonitorConfig",
]
