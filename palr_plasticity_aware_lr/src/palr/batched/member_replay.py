"""Uniform FIFO experience replay (Lin 1992; Mnih et al. 2015) for K members that step together.

One set of NumPy rings with a member axis (``obs[k, i]`` is member k's i-th transition); every
member adds one transition per environment step, so all share the ring position and size. Each
member samples with its own generator, seeded as a separate run's
:class:`palr.agents.replay.ReplayBuffer`, and draws the same indices that buffer would.
"""
from __future__ import annotations

from typing import Any, Dict, Sequence, Tuple

import numpy as np
import torch


class MemberReplay:
    """Ring buffers of ``(obs, action, reward, next_obs, terminated)`` with a member axis.

    Args:
        capacity: transitions kept per member (oldest overwritten first).
        obs_dim: size of one flat observation.
        seeds: one sampling seed per member (``K = len(seeds)``).
        action_shape, action_dtype: of one action (default: a discrete action index; SAC:
            ``(act_dim,)`` and ``np.float32``).
    """

    def __init__(self, capacity: int, obs_dim: int, seeds: Sequence[int],
                 action_shape: Sequence[int] = (), action_dtype: Any = np.int64) -> None:
        if capacity <= 0 or not seeds:
            raise ValueError(f"member replay needs capacity >= 1 and >= 1 seed, got {capacity} "
                             f"and {list(seeds)}")
        k = len(seeds)
        self.capacity = int(capacity)
        self.obs_dim = int(obs_dim)
        # one float32 record per transition (obs, next_obs, reward, terminated), so a batch is
        # one gather; the named arrays are views of it
        self._records = np.zeros((k, self.capacity, 2 * obs_dim + 2), dtype=np.float32)
        self.obs = self._records[:, :, :obs_dim]
        self.next_obs = self._records[:, :, obs_dim:2 * obs_dim]
        self.rewards = self._records[:, :, 2 * obs_dim]
        self.terminated = self._records[:, :, 2 * obs_dim + 1]
        self.action_shape = tuple(int(n) for n in action_shape)
        self.actions = np.zeros((k, self.capacity, *self.action_shape), dtype=action_dtype)
        self.rngs = [np.random.default_rng(seed) for seed in seeds]
        self._row_starts = (np.arange(k) * self.capacity)[:, None]
        self.pos = 0
        self.size = 0

    def add(self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray,
            next_obs: np.ndarray, terminated: np.ndarray) -> None:
        """Store one transition per member (arrays with a leading member axis)."""
        i = self.pos
        self.obs[:, i] = obs
        self.next_obs[:, i] = next_obs
        self.actions[:, i] = actions
        self.rewards[:, i] = rewards
        self.terminated[:, i] = terminated
        self.pos = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int, device: torch.device | str = "cpu"
               ) -> Dict[str, torch.Tensor]:
        """A uniform batch per member, each from its own generator: tensors ``[K, B, ...]``."""
        if self.size == 0:
            raise RuntimeError("cannot sample from an empty replay buffer")
        idx = np.stack([rng.integers(0, self.size, size=batch_size) for rng in self.rngs])
        flat = (idx + self._row_starts).ravel()  # member k's index i: row k * capacity + i
        members, d = len(self.rngs), self.obs_dim
        records = torch.as_tensor(
            self._records.reshape(-1, 2 * d + 2).take(flat, axis=0), device=device
        ).view(members, batch_size, -1)
        return {
            "obs": records[:, :, :d],
            "actions": torch.as_tensor(
                self.actions.reshape(-1, *self.action_shape).take(flat, axis=0), device=device
            ).view(members, batch_size, *self.action_shape),
            "rewards": records[:, :, 2 * d],
            "next_obs": records[:, :, d:2 * d],
            "terminated": records[:, :, 2 * d + 1],
        }

    def sample_obs(self, member: int, batch_size: int, rng: np.random.Generator,
                   device: torch.device | str = "cpu") -> torch.Tensor:
        """Member ``member``'s observations drawn with ``rng`` (diagnostic batches: the caller's
        own generator, so measuring never shifts the training batches)."""
        if self.size == 0:
            raise RuntimeError("cannot sample from an empty replay buffer")
        idx = rng.integers(0, self.size, size=batch_size)
        return torch.as_tensor(self.obs[member, idx], device=device)

    def sample_obs_actions(self, member: int, batch_size: int, rng: np.random.Generator,
                           device: torch.device | str = "cpu"
                           ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Member ``member``'s observations and their actions drawn with ``rng`` (diagnostic
        batches of state-action networks, as :meth:`ReplayBuffer.sample_obs_actions`)."""
        if self.size == 0:
            raise RuntimeError("cannot sample from an empty replay buffer")
        idx = rng.integers(0, self.size, size=batch_size)
        return (torch.as_tensor(self.obs[member, idx], device=device),
                torch.as_tensor(self.actions[member, idx], device=device))

    def clear(self) -> None:
        """Forget every member's transitions (the generators go on, as
        :meth:`ReplayBuffer.clear`)."""
        self.pos = 0
        self.size = 0

    _ARRAYS = ("obs", "next_obs", "actions", "rewards", "terminated")

    def state_dict(self) -> Dict[str, Any]:
        """The filled part of the ring (tensors: loadable with ``weights_only=True``), its
        position and every member's generator state."""
        return {**{name: torch.from_numpy(getattr(self, name)[:, :self.size].copy())
                   for name in self._ARRAYS},
                "pos": self.pos, "size": self.size,
                "rngs": [rng.bit_generator.state for rng in self.rngs]}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        size = int(state["size"])
        for name in self._ARRAYS:
            getattr(self, name)[:, :size] = state[name].numpy()
        self.pos, self.size = int(state["pos"]), size
        for rng, st in zip(self.rngs, state["rngs"]):
            rng.bit_generator.state = st


__all__ = ["MemberReplay"]
