"""Continual World's evaluation protocol (Wolczyk et al. 2021; awarelab/continual_world
``sac.py``, ``test_agent``): every ``log_every`` env steps (20k) the agent plays, on EVERY task of
the sequence, ``num_test_eps_stochastic`` (10) episodes with its stochastic policy, whose mean
success is the metric, and ``num_test_eps_deterministic`` (1) with its deterministic policy.

We evaluate at the first episode end at or after every multiple of ``every_steps`` env steps
(with 200-step episodes and a multiple of 200, exactly there) and at every task end (there too
in Continual World, whose tasks are multiples of 20k steps long). Evaluation episodes run on
separate env streams and draw their policy noise from the agent's evaluation generator, so they
never change training.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np

__all__ = ["EvaluationProtocol", "evaluate_task", "evaluate_all"]


@dataclass(frozen=True)
class EvaluationProtocol:
    """Attributes:
        episodes: stochastic episodes per task (0: no evaluation at all).
        deterministic_episodes: deterministic episodes per task (recorded, not a metric).
        every_steps: evaluate every this many env steps (0: only at task ends).
    """

    episodes: int = 10
    deterministic_episodes: int = 1
    every_steps: int = 20_000

    def due(self, env_steps: int, previous_env_steps: int, at_task_end: bool) -> bool:
        """Whether to evaluate at an episode end: at a task end, or when the episode that just
        ended (from ``previous_env_steps`` to ``env_steps``) crossed a multiple of
        ``every_steps``."""
        if self.episodes == 0:
            return False
        periodic = self.every_steps > 0 and \
            env_steps // self.every_steps > previous_env_steps // self.every_steps
        return at_task_end or periodic


def evaluate_task(agent: Any, env: Any, episodes: int, seed: Optional[int],
                  deterministic: bool = False) -> float:
    """Mean success of ``episodes`` episodes of the SAC ``agent``'s policy on ``env``.

    The first reset is seeded with ``seed`` (``None``: the env's stream goes on); stochastic
    actions draw their noise from the agent's evaluation generator (checkpointed), so evaluating
    never changes training and a resumed run evaluates exactly as an uninterrupted one.
    """
    successes = []
    for k in range(episodes):
        obs, _ = env.reset(seed=seed) if k == 0 and seed is not None else env.reset()
        done, info = False, {}
        while not done:
            obs, _, terminated, truncated, info = env.step(
                agent.act(obs, explore=not deterministic, evaluation=True))
            done = terminated or truncated
        successes.append(float(info.get("episode_success", 0.0)))
    return float(np.mean(successes))


def evaluate_all(agent: Any, envs: Sequence[Any], protocol: EvaluationProtocol, seed: int):
    """``(stochastic scores, deterministic scores or None)`` over every task's env: each env's
    stochastic episodes start from ``seed``, its deterministic ones continue that stream."""
    stochastic = [evaluate_task(agent, env, protocol.episodes, seed) for env in envs]
    if protocol.deterministic_episodes == 0:
        return stochastic, None
    deterministic = [evaluate_task(agent, env, protocol.deterministic_episodes, None,
                                   deterministic=True) for env in envs]
    return stochastic, deterministic
