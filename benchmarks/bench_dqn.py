"""Environment steps per second of PALR's DQN against a minimal CleanRL-style DQN.

Both learners train on CartPole-v1 with the same network (4-128-128-2 ReLU MLP), batch size
(128), train frequency (every environment step), learning-starts and target-update period. They
run interleaved in one process, in chunks of ``chunk_steps`` steps, so drifts in machine load hit
both alike; the figure is the median steps/s over chunks per learner, and the ratio to the
reference the median over rounds of the two rates in the same round (``timing.py``).

The reference follows CleanRL's ``dqn.py`` (Huang et al. 2022) as it is written: ``torch.Tensor``
conversion and a module forward for every greedy action, a Stable-Baselines3-style replay buffer
(per-field copies on ``add``, ``np.random.randint`` indices and ``torch.tensor`` copies on
``sample``), MSE TD loss, ``optim.Adam(q.parameters())`` and a tau-weighted target copy. It is
written here from scratch (no CleanRL/SB3 import). Ours does a little more work per update than
the reference: Huber loss, gradient-norm clipping and one param group per layer (for PALR).

Extra rows (e.g. PALR-DQN) are added by passing ``stacks``: a name -> zero-argument factory of an
:class:`~palr.interventions.base.InterventionStack`; each gets its own DQNAgent and row.

Run: ``python benchmarks/bench_dqn.py --seconds 20``
"""
from __future__ import annotations

import argparse
import random
from typing import Callable, Dict, List, NamedTuple, Optional

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn, optim

from palr.agents.dqn import DQNAgent, DQNConfig
from palr.experiments.schedule import TrainingSchedule
from palr.interventions.base import InterventionStack
from timing import interleaved_blocks, median_rate, paired_ratio

_DEFAULTS = DQNConfig()
_SCHEDULE = TrainingSchedule()  # DQN's: one update every env step from learning_starts on
HIDDEN = _DEFAULTS.hidden_sizes
BATCH = _DEFAULTS.batch_size
LEARNING_STARTS = _SCHEDULE.learning_starts
TARGET_EVERY = _DEFAULTS.target_update_every
EXPLORATION_STEPS = _DEFAULTS.exploration_steps
LR = _DEFAULTS.learning_rate


# --- the reference: a minimal CleanRL-style DQN ------------------------------------------------
class _Samples(NamedTuple):
    observations: torch.Tensor
    actions: torch.Tensor
    next_observations: torch.Tensor
    dones: torch.Tensor
    rewards: torch.Tensor


class _SB3StyleBuffer:
    """Replay buffer in the style of Stable-Baselines3's ``ReplayBuffer`` (n_envs = 1)."""

    def __init__(self, size: int, obs_dim: int) -> None:
        self.size, self.pos, self.full = size, 0, False
        self.observations = np.zeros((size, 1, obs_dim), dtype=np.float32)
        self.next_observations = np.zeros((size, 1, obs_dim), dtype=np.float32)
        self.actions = np.zeros((size, 1, 1), dtype=np.int64)
        self.rewards = np.zeros((size, 1), dtype=np.float32)
        self.dones = np.zeros((size, 1), dtype=np.float32)

    def add(self, obs, next_obs, action, reward, done) -> None:
        self.observations[self.pos] = np.array(obs).copy()
        self.next_observations[self.pos] = np.array(next_obs).copy()
        self.actions[self.pos] = np.array(action).reshape(1, 1).copy()
        self.rewards[self.pos] = np.array(reward).copy()
        self.dones[self.pos] = np.array(done).copy()
        self.pos += 1
        if self.pos == self.size:
            self.full, self.pos = True, 0

    def sample(self, batch_size: int) -> _Samples:
        upper = self.size if self.full else self.pos
        batch_inds = np.random.randint(0, upper, size=batch_size)
        env_inds = np.random.randint(0, 1, size=(len(batch_inds),))
        data = (
            self.observations[batch_inds, env_inds, :],
            self.actions[batch_inds, env_inds, :],
            self.next_observations[batch_inds, env_inds, :],
            self.dones[batch_inds, env_inds].reshape(-1, 1),
            self.rewards[batch_inds, env_inds].reshape(-1, 1),
        )
        return _Samples(*tuple(torch.tensor(d) for d in data))


class _QNetwork(nn.Module):
    def __init__(self, obs_dim: int, n_actions: int) -> None:
        super().__init__()
        self.network = nn.Sequential(nn.Linear(obs_dim, HIDDEN[0]), nn.ReLU(),
                                     nn.Linear(HIDDEN[0], HIDDEN[1]), nn.ReLU(),
                                     nn.Linear(HIDDEN[1], n_actions))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x)


def _linear_schedule(start_e: float, end_e: float, duration: int, t: int) -> float:
    slope = (end_e - start_e) / duration
    return max(slope * t + start_e, end_e)


class CleanRLStyleDQN:
    """The reference learner; ``run_steps(n)`` advances it ``n`` environment steps."""

    def __init__(self, seed: int = 0) -> None:
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)
        self.env = gym.make("CartPole-v1")
        obs_dim = self.env.observation_space.shape[0]
        self.n_actions = self.env.action_space.n
        self.q_network = _QNetwork(obs_dim, self.n_actions)
        self.optimizer = optim.Adam(self.q_network.parameters(), lr=LR)
        self.target_network = _QNetwork(obs_dim, self.n_actions)
        self.target_network.load_state_dict(self.q_network.state_dict())
        self.rb = _SB3StyleBuffer(50_000, obs_dim)
        self.obs, _ = self.env.reset(seed=seed)
        self.env.action_space.seed(seed)
        self.global_step = 0
        self.last_q = 0.0

    def run_steps(self, n: int) -> None:
        for _ in range(n):
            step = self.global_step
            epsilon = _linear_schedule(1.0, 0.05, EXPLORATION_STEPS, step)
            if random.random() < epsilon:
                action = self.env.action_space.sample()
            else:
                q_values = self.q_network(torch.Tensor(self.obs).unsqueeze(0))
                action = int(torch.argmax(q_values, dim=1).cpu().numpy()[0])
            next_obs, reward, terminated, truncated, _ = self.env.step(action)
            self.rb.add(self.obs, next_obs, action, reward, terminated)
            self.obs = next_obs
            if terminated or truncated:
                self.obs, _ = self.env.reset()
            if step > LEARNING_STARTS:
                data = self.rb.sample(BATCH)
                with torch.no_grad():
                    target_max, _ = self.target_network(data.next_observations).max(dim=1)
                    td_target = data.rewards.flatten() + 0.99 * target_max * (1 - data.dones.flatten())
                old_val = self.q_network(data.observations).gather(1, data.actions).squeeze()
                loss = F.mse_loss(td_target, old_val)
                if step % 100 == 0:
                    self.last_q = old_val.mean().item()
                self.optimizer.zero_grad()
                loss.backward()
                self.optimizer.step()
                if step % TARGET_EVERY == 0:
                    for tp, qp in zip(self.target_network.parameters(), self.q_network.parameters()):
                        tp.data.copy_(1.0 * qp.data + (1.0 - 1.0) * tp.data)
            self.global_step += 1


# --- ours --------------------------------------------------------------------------------------
class PALRDQNLoop:
    """Our DQNAgent in the runner's loop shape (act, env.step, observe, the schedule's update,
    episode end)."""

    def __init__(self, seed: int = 0, stack: Optional[InterventionStack] = None,
                 device: str = "cpu") -> None:
        self.env = gym.make("CartPole-v1")
        cfg = DQNConfig(seed=seed, device=device)  # defaults = the reference's settings
        self.agent = DQNAgent(self.env.observation_space.shape[0], int(self.env.action_space.n),
                              cfg, stack)
        self.obs, _ = self.env.reset(seed=seed)

    def run_steps(self, n: int) -> None:
        agent, env, obs, schedule = self.agent, self.env, self.obs, _SCHEDULE
        for _ in range(n):
            action = schedule.act(agent, obs)
            next_obs, reward, terminated, truncated, _ = env.step(action)
            agent.observe(obs, action, reward, next_obs, terminated)
            schedule.train(agent)
            obs = next_obs
            if terminated or truncated:
                agent.on_episode_end()
                obs, _ = env.reset()
        self.obs = obs


def run(seconds: float = 20.0, chunk_steps: int = 1000, seed: int = 0,
        stacks: Optional[Dict[str, Callable[[], InterventionStack]]] = None) -> Dict[str, float]:
    """Interleave the learners in chunks of ``chunk_steps`` env steps for about ``seconds`` of
    measured time each (:func:`timing.interleaved_blocks`). Ours trains every step, so a chunk
    of 1000 steps holds exactly one plasticity measurement at the default ``measure_freq``.

    Returns ``{"<name>_steps_per_s": median over chunks, "<name>_vs_cleanrl": median paired
    ratio, ...}`` with rows ``cleanrl`` (the reference), ``dqn`` (ours, empty stack) and one per
    entry of ``stacks``; ``<name>_vs_dqn`` too for the ``stacks`` rows.
    """
    torch.set_num_threads(1)
    learners = {"cleanrl": CleanRLStyleDQN(seed), "dqn": PALRDQNLoop(seed)}
    for name, factory in (stacks or {}).items():
        learners[name] = PALRDQNLoop(seed, factory())
    for learner in learners.values():  # fill past learning_starts and warm up
        learner.run_steps(LEARNING_STARTS + 200)
    blocks = interleaved_blocks(
        {name: (lambda learner=learner: learner.run_steps(chunk_steps))
         for name, learner in learners.items()}, seconds, block_seconds=0.0, warmup_calls=0)
    result: Dict[str, float] = {}
    for name in learners:
        result[f"{name}_steps_per_s"] = median_rate(blocks, name, chunk_steps)
        result[f"{name}_vs_cleanrl"] = paired_ratio(blocks, name, "cleanrl")
        if name not in ("cleanrl", "dqn"):
            result[f"{name}_vs_dqn"] = paired_ratio(blocks, name, "dqn")
    return result


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0,
                        help="measured seconds per learner (default 20)")
    parser.add_argument("--chunk_steps", type=int, default=1000,
                        help="env steps per timed block (a multiple of measure_freq)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.chunk_steps <= 0:
        parser.error("--seconds and --chunk_steps must be positive")
    res = run(args.seconds, args.chunk_steps, args.seed)
    print(f"torch {torch.__version__}, 1 thread; CartPole-v1, MLP {HIDDEN}, batch {BATCH}, "
          f"train every step")
    for name in [k[: -len("_steps_per_s")] for k in res if k.endswith("_steps_per_s")]:
        print(f"{name:>12s}: {res[name + '_steps_per_s']:8.0f} env steps/s  "
              f"{res[name + '_vs_cleanrl']:.2f}x CleanRL-style")


if __name__ == "__main__":
    main()
