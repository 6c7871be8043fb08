"""SAC baselines for Continual World: the original ``cw_baselines.py`` file name.

Thin re-export. Each baseline is an intervention (:mod:`palr.interventions`) stacked on the SAC
agent (:mod:`palr.agents.sac`), never a SAC subclass: L2Reg on the critics, Shrink & Perturb
(Ash & Adams 2020), PeriodicReset (Nikishin et al. 2022) and ReDo (Sokar et al. 2023). The agent
table (:mod:`palr.agent_table`) names them ``SAC-L2Reg``, ``SAC-ShrinkAndPerturb``,
``SAC-PeriodicReset`` and ``SAC-ReDo``::

    agent = SACAgent(obs_dim, act_dim, SACConfig(), build_stack(resolve_agent("SAC-L2Reg", "SAC")))
"""
from __future__ import annotations

from palr.agent_table import resolve_agent  # noqa: F401
from palr.agents.sac import SACAgent, SACConfig  # noqa: F401
from palr.interventions import (L2Reg, L2RegConfig, PeriodicReset,  # noqa: F401
                                PeriodicResetConfig, ReDo, ReDoConfig, ShrinkAndPerturb,
                                ShrinkPerturbConfig, build_stack)

__all__ = ["SACAgent", "SACConfig", "L2Reg", "L2RegConfig", "PeriodicReset",
           "PeriodicResetConfig", "ReDo", "ReDoConfig", "ShrinkAndPerturb", "ShrinkPerturbConfig",
           "build_stack", "resolve_agent"]
