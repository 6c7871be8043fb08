"""Continual World (CW10/CW20 on Meta-World v3): the original ``cw_env.py`` entry point.

Thin re-export of :mod:`palr.envs.continual_world` (importing it registers
``palr/ContinualWorld-v0`` with gymnasium).
"""
from __future__ import annotations

from palr.envs.continual_world import (  # noqa: F401
    ACT_DIM,
    CW10_SEQUENCE,
    DEFAULT_MAX_EPISODE_STEPS,
    ENV_ID,
    MT10_SEQUENCE,
    OBS_DIM,
    SEQUENCES,
    ContinualWorldEnv,
    MetaWorldTask,
    canonical_task_name,
    make_task_env,
    register_env,
    task_seed,
    task_sequence,
    task_windows,
)

__all__ = [
    "ACT_DIM", "CW10_SEQUENCE", "DEFAULT_MAX_EPISODE_STEPS", "ENV_ID", "MT10_SEQUENCE", "OBS_DIM",
    "SEQUENCES", "ContinualWorldEnv", "MetaWorldTask", "canonical_task_name", "make_task_env",
    "register_env", "task_seed", "task_sequence", "task_windows",
]
