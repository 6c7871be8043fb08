"""K environments, one per member of a :class:`~palr.batched.dqn.BatchedDQN`, stepped together.

The training loop of :class:`palr.experiments.trainer.EpisodicTrainer` (act, step, observe, the
schedule's updates, episode ends) with a member axis: every member's environment steps once per
loop step, an environment that finished its episode is reset on its own, and the updates due are
decided once by :class:`~palr.experiments.schedule.TrainingSchedule` (all members share the
clock). Member k's environment is reset with ``seeds[k]`` first, as a separate run's.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from palr.batched.dqn import BatchedDQN
from palr.experiments.schedule import TrainingSchedule


class MemberEnvLoop:
    """Steps ``envs`` (gymnasium API, one per member) with ``learner`` under ``schedule``."""

    def __init__(self, learner: BatchedDQN, envs: Sequence[Any],
                 schedule: TrainingSchedule) -> None:
        if len(envs) != learner.members:
            raise ValueError(f"give one environment per member: {len(envs)} for "
                             f"{learner.members} members")
        self.learner, self.envs, self.schedule = learner, list(envs), schedule
        self.obs = np.stack([env.reset(seed=seed)[0]
                             for env, seed in zip(self.envs, learner.seeds)]).astype(np.float32)
        self.returns = [[] for _ in self.envs]  # finished episodes' returns, per member
        self._episode_return = np.zeros(len(self.envs))

    def run_steps(self, n: int) -> None:
        """``n`` environment steps of every member, training as the schedule says."""
        learner, schedule, envs = self.learner, self.schedule, self.envs
        k = len(envs)
        next_obs = np.empty_like(self.obs)
        rewards = np.empty(k, dtype=np.float32)
        terminated = np.empty(k, dtype=np.float32)
        for _ in range(n):
            actions = schedule.act(learner, self.obs)
            done = []
            for i, env in enumerate(envs):
                next_obs[i], rewards[i], term, trunc, _ = env.step(int(actions[i]))
                terminated[i] = term
                if term or trunc:
                    done.append(i)
            learner.observe(self.obs, actions, rewards, next_obs, terminated)
            schedule.train(learner)
            self._episode_return += rewards
            self.obs[:] = next_obs
            for i in done:
                learner.on_episode_end(i)
                self.returns[i].append(float(self._episode_return[i]))
                self._episode_return[i] = 0.0
                self.obs[i] = envs[i].reset()[0]


__all__ = ["MemberEnvLoop"]
