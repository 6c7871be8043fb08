"""Base DQN: the original ``dqn_base.py`` entry point.

Thin re-export of :mod:`palr.agents.dqn` (Mnih et al. 2015; plasticity interventions are
composed through an :class:`~palr.interventions.base.InterventionStack`, not subclassed).
"""
from __future__ import annotations

from palr.agents.dqn import (  # noqa: F401
    DQNAgent,
    DQNConfig,
    NumpyGreedy,
    build_q_network,
    linear_epsilon,
    make_adam,
)

__all__ = ["DQNAgent", "DQNConfig", "NumpyGreedy", "build_q_network", "linear_epsilon",
           "make_adam"]
