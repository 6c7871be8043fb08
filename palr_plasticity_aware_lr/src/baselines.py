"""DQN baselines: the original ``baselines.py`` file name.

Thin re-export. Each baseline is an intervention (:mod:`palr.interventions`) stacked on the DQN
agent (:mod:`palr.agents.dqn`), never a DQN subclass: Shrink & Perturb (Ash & Adams 2020),
PeriodicReset (Nikishin et al. 2022), L2Reg and ReDo (Sokar et al. 2023). The agent table
(:mod:`palr.agent_table`) names them ``DQN-ShrinkAndPerturb``, ``DQN-PeriodicReset``,
``DQN-L2Reg`` and ``DQN-ReDo``::

    agent = DQNAgent(obs_dim, n_actions, DQNConfig(), build_stack(resolve_agent("DQN-L2Reg", "DQN")))
"""
from __future__ import annotations

from palr.agent_table import resolve_agent  # noqa: F401
from palr.agents.dqn import DQNAgent, DQNConfig  # noqa: F401
from palr.interventions import (L2Reg, L2RegConfig, PeriodicReset,  # noqa: F401
                                PeriodicResetConfig, ReDo, ReDoConfig, ShrinkAndPerturb,
                                ShrinkPerturbConfig, build_stack)

__all__ = ["DQNAgent", "DQNConfig", "L2Reg", "L2RegConfig", "PeriodicReset",
           "PeriodicResetConfig", "ReDo", "ReDoConfig", "ShrinkAndPerturb", "ShrinkPerturbConfig",
           "build_stack", "resolve_agent"]
