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
from palr.intervention_configs import (L2RegConfig, PeriodicResetConfig,  # noqa: F401
                                       ReDoConfig, ShrinkPerturbConfig)
from palr.interventions import build_stack  # noqa: F401
from palr.interventions.l2reg import L2Reg  # noqa: F401
from palr.interventions.periodic_reset import PeriodicReset  # noqa: F401
from palr.interventions.redo import ReDo  # noqa: F401
from palr.interventions.shrink_perturb import ShrinkAndPerturb  # noqa: F401

__all__ = ["resolve_agent", "SACAgent", "SACConfig", "L2RegConfig", "PeriodicResetConfig",
           "ReDoConfig", "ShrinkPerturbConfig", "build_stack", "L2Reg", "PeriodicReset", "ReDo",
           "ShrinkAndPerturb"]
