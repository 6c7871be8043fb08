"""PALR-DQN agent: the original ``palr_agent.py`` file name.

Thin re-export. PALR-DQN is the DQN agent (:mod:`palr.agents.dqn`) with the PALR intervention
(:mod:`palr.interventions.palr`) in its intervention stack; it is composed, not subclassed::

    stack = build_stack(resolve_agent("PALR-DQN", "DQN"), {"max_lr_scale": 3.0})
    agent = DQNAgent(obs_dim, n_actions, DQNConfig(), stack)

The algorithm is specified in docs/palr.md; the CartPole launcher is ``run_experiments.py``.
"""
from __future__ import annotations

from palr.agent_table import AGENTS, AgentSpec, resolve_agent  # noqa: F401
from palr.agents.dqn import DQNAgent, DQNConfig  # noqa: F401
from palr.intervention_configs import PALRConfig  # noqa: F401
from palr.interventions import InterventionStack, build_stack  # noqa: F401
from palr.interventions.palr import PALR, lr_scale  # noqa: F401

__all__ = ["AGENTS", "AgentSpec", "resolve_agent", "DQNAgent", "DQNConfig", "PALRConfig",
           "InterventionStack", "build_stack", "PALR", "lr_scale"]
