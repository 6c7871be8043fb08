"""PALR-SAC agent for the Continual World experiments: the original ``palr_sac_agent.py`` name.

Thin re-export. PALR-SAC is the SAC agent (:mod:`palr.agents.sac`) with the PALR intervention
(:mod:`palr.interventions.palr`) in its intervention stack, composed, not subclassed::

    stack = build_stack(resolve_agent("PALR-SAC", "SAC"))
    agent = SACAgent(obs_dim, act_dim, SACConfig(), stack)

The trainer (:mod:`palr.experiments.trainer`) runs it through a Continual World task sequence
on the schedule :func:`~palr.experiments.continual_world.cw_schedule` builds
(:class:`~palr.experiments.schedule.TrainingSchedule`); the launcher is ``run_cw_experiments.py``.
Algorithm: docs/palr.md.
"""
from __future__ import annotations

from palr.agent_table import AGENTS, AgentSpec, resolve_agent  # noqa: F401
from palr.agents.sac import SACAgent, SACConfig  # noqa: F401
from palr.experiments.continual_world import cw_schedule  # noqa: F401
from palr.experiments.schedule import TrainingSchedule  # noqa: F401
from palr.intervention_configs import PALRConfig  # noqa: F401
from palr.interventions import InterventionStack, build_stack  # noqa: F401
from palr.interventions.palr import PALR, lr_scale  # noqa: F401

__all__ = ["AGENTS", "AgentSpec", "resolve_agent", "SACAgent", "SACConfig", "cw_schedule",
           "TrainingSchedule", "PALRConfig", "InterventionStack", "build_stack", "PALR", "lr_scale"]
