"""JellyBeanWorld: the original ``jbw_env.py`` entry point.

Thin re-export of :mod:`palr.envs.jbw` (importing it registers ``palr/JellyBeanWorld-v0`` with
gymnasium; the real ``jbw`` simulator is used when installed, see ``setup_jbw.sh``, otherwise
the built-in :mod:`palr.envs.jbw_sim`). Run it to print the backend and a short random rollout:
``python palr_plasticity_aware_lr/src/jbw_env.py``.
"""
from __future__ import annotations

from palr.envs.jbw import (  # noqa: F401
    BACKENDS,
    DEFAULT_ITEM_REWARDS,
    ENV_ID,
    OBS_MODES,
    WORLD_MODES,
    WORLD_OVERRIDE_KEYS,
    JellyBeanWorldConfig,
    JellyBeanWorldEnv,
    jbw_available,
    register_env,
    split_flat_observation,
)
from palr.envs.jbw_sim import (  # noqa: F401
    ACTION_SETS,
    WORLD_PRESETS,
    ItemSpec,
    JBWSimulator,
    WorldConfig,
    make_world_config,
)

__all__ = [
    "BACKENDS", "DEFAULT_ITEM_REWARDS", "ENV_ID", "OBS_MODES", "WORLD_MODES", "WORLD_OVERRIDE_KEYS",
    "JellyBeanWorldConfig", "JellyBeanWorldEnv", "jbw_available", "register_env",
    "split_flat_observation", "ACTION_SETS", "WORLD_PRESETS", "ItemSpec", "JBWSimulator",
    "WorldConfig", "make_world_config",
]


def main() -> None:
    import numpy as np

    env = JellyBeanWorldEnv(episode_steps=200, seed=0)
    obs, info = env.reset()
    rng = np.random.default_rng(0)
    total = 0.0
    for _ in range(200):
        obs, reward, _, truncated, info = env.step(int(rng.integers(env.action_space.n)))
        total += reward
    print(f"backend={env.backend} obs={obs.shape} actions={env.action_space.n} "
          f"random-policy return={total:+.1f} items={info['episode_items']}")


if __name__ == "__main__":
    main()
