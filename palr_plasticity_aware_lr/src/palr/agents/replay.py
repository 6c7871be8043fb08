"""Uniform FIFO experience replay as NumPy ring buffers (Lin 1992; Mnih et al. 2015).

Storage is pre-allocated NumPy arrays, so adding a transition costs no tensor allocation and no
host-device sync; ``sample`` draws a batch with the buffer's own seeded generator and converts it
to tensors once. Continual settings keep the buffer across silent task switches.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np
import torch


class ReplayBuffer:
    """Ring buffer of ``(obs, action, reward, next_obs, terminated)`` transitions.

    Args:
        capacity: number of transitions kept (oldest overwritten first).
        obs_shape: shape of one observation.
        action_shape: ``()`` for discrete actions, ``(d,)`` for continuous ones.
        obs_dtype / action_dtype: NumPy storage dtypes (e.g. ``np.uint8`` for images).
        seed: seed of the buffer's sampling generator.
    """

    def __init__(
        self,
        capacity: int,
        obs_shape: Sequence[int],
        action_shape: Sequence[int] = (),
        obs_dtype: Any = np.float32,
        action_dtype: Any = np.int64,
        seed: int = 0,
    ) -> None:
        if capacity <= 0:
            raise ValueError(f"replay capacity must be positive, got {capacity}")
        self.capacity = int(capacity)
        self.obs = np.zeros((self.capacity, *obs_shape), dtype=obs_dtype)
        self.next_obs = np.zeros((self.capacity, *obs_shape), dtype=obs_dtype)
        self.actions = np.zeros((self.capacity, *action_shape), dtype=action_dtype)
        self.rewards = np.zeros(self.capacity, dtype=np.float32)
        self.terminated = np.zeros(self.capacity, dtype=np.float32)
        self.pos = 0
        self.size = 0
        self.rng = np.random.default_rng(seed)

    def clear(self) -> None:
        """Forget every stored transition (a new empty buffer; the sampling generator goes on)."""
        self.pos = 0
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def add(self, obs: np.ndarray, action: Any, reward: float, next_obs: np.ndarray,
            terminated: bool) -> None:
        """Store one transition; ``terminated`` is a true terminal (not a time-limit truncation)."""
        i = self.pos
        self.obs[i] = obs
        self.next_obs[i] = next_obs
        self.actions[i] = action
        self.rewards[i] = reward
        self.terminated[i] = float(terminated)
        self.pos = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample_indices(self, batch_size: int, rng: Optional[np.random.Generator] = None
                       ) -> np.ndarray:
        """Uniform indices of stored transitions, drawn with ``rng`` (default: the buffer's own
        generator, which only training batches should use)."""
        if self.size == 0:
            raise RuntimeError("cannot sample from an empty replay buffer")
        return (self.rng if rng is None else rng).integers(0, self.size, size=batch_size)

    def sample(self, batch_size: int, device: torch.device | str = "cpu") -> Dict[str, torch.Tensor]:
        """A uniform batch as tensors: obs, actions, rewards, next_obs, terminated."""
        idx = self.sample_indices(batch_size)
        return {
            "obs": torch.as_tensor(self.obs[idx], device=device),
            "actions": torch.as_tensor(self.actions[idx], device=device),
            "rewards": torch.as_tensor(self.rewards[idx], device=device),
            "next_obs": torch.as_tensor(self.next_obs[idx], device=device),
            "terminated": torch.as_tensor(self.terminated[idx], device=device),
        }

    def sample_obs(self, batch_size: int, device: torch.device | str = "cpu",
                   rng: Optional[np.random.Generator] = None) -> torch.Tensor:
        """Observations only (diagnostic batches for plasticity measurements: pass the caller's
        own ``rng`` so that measuring never shifts the training batches)."""
        return torch.as_tensor(self.obs[self.sample_indices(batch_size, rng)], device=device)

    def sample_obs_actions(self, batch_size: int, device: torch.device | str = "cpu",
                           rng: Optional[np.random.Generator] = None
                           ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Observations and their actions (diagnostic batches of state-action networks)."""
        idx = self.sample_indices(batch_size, rng)
        return (torch.as_tensor(self.obs[idx], device=device),
                torch.as_tensor(self.actions[idx], device=device))

    # --- checkpointing (plain arrays and ints: loadable with torch.load(weights_only=True)) ---
    def state_dict(self) -> Dict[str, Any]:
        n = self.size
        return {
            "obs": torch.from_numpy(self.obs[:n].copy()),
            "next_obs": torch.from_numpy(self.next_obs[:n].copy()),
            "actions": torch.from_numpy(self.actions[:n].copy()),
            "rewards": torch.from_numpy(self.rewards[:n].copy()),
            "terminated": torch.from_numpy(self.terminated[:n].copy()),
            "pos": self.pos,
            "size": self.size,
            "rng": self.rng.bit_generator.state,
        }

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        n = int(state["size"])
        if n > self.capacity:
            raise ValueError(f"checkpointed replay holds {n} transitions, capacity is {self.capacity}")
        for key in ("obs", "next_obs", "actions", "rewards", "terminated"):
            getattr(self, key)[:n] = state[key].numpy()
        self.size = n
        self.pos = int(state["pos"])
        self.rng.bit_generator.state = state["rng"]
