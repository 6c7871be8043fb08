"""gymnasium ids of palr's continual CartPole environments, registered by string entry point.

:func:`register_envs` imports no environment module (nor torch): the environment's module is
imported by ``gymnasium.make``. It is what ``palr.envs.continual_cartpole`` and
``palr.envs.permuted_cartpole`` call on import, and the function this package declares in
gymnasium's ``gymnasium.envs`` entry-point group (pyproject.toml), which gymnasium before 1.0
calls at ``import gymnasium``: there ``gymnasium.make("palr/ContinualCartPole-v0")`` works
without importing palr. gymnasium 1.0 dropped that plugin loading; there the id takes the module
that registers it, ``gymnasium.make("palr.envs:palr/ContinualCartPole-v0")``, or
``import palr.envs`` comes first.
"""
from __future__ import annotations

from typing import Any, Dict, Iterable, Optional

#: gymnasium id -> ``gymnasium.register`` keyword arguments. The reward threshold is
#: :data:`palr.envs.continual_cartpole.SCORE_THRESHOLD` (tests check that the two agree); no
#: ``max_episode_steps``: the 500-step truncation is part of the environment (resumable).
SPECS: Dict[str, Dict[str, Any]] = {
    "palr/ContinualCartPole-v0": {
        "entry_point": "palr.envs.continual_cartpole:ContinualCartPoleEnv",
        "reward_threshold": 195.0,
    },
    "palr/ContinualPermutedCartPole-v0": {
        "entry_point": "palr.envs.permuted_cartpole:ContinualPermutedCartPoleEnv",
        "reward_threshold": 195.0,
    },
}


def register_envs(ids: Optional[Iterable[str]] = None) -> None:
    """Register the environments ``ids`` (default: every id of :data:`SPECS`) with gymnasium;
    ids already registered are left as they are."""
    from gymnasium.envs.registration import register, registry

    for env_id in (SPECS if ids is None else ids):
        if env_id not in registry:
            register(id=env_id, **SPECS[env_id])


__all__ = ["SPECS", "register_envs"]
