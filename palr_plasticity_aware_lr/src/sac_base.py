"""Base SAC (actor + twin critics + auto-alpha): the original ``sac_base.py`` entry point.

Thin re-export of :mod:`palr.agents.sac`; interventions (PALR, L2Reg, ...) are composed through an
``InterventionStack`` (``palr.interventions.build_stack``), never by subclassing.
"""
from __future__ import annotations

from palr.agents.sac import (  # noqa: F401
    NETWORKS,
    Actor,
    SACAgent,
    SACConfig,
    TwinQ,
    mlp,
    tanh_gaussian,
)

__all__ = ["NETWORKS", "Actor", "SACAgent", "SACConfig", "TwinQ", "mlp", "tanh_gaussian"]
