"""Rollout storage of one rank, generalized advantage estimation and recurrent minibatches.

Layout (time-major, ``T = num_steps``, ``E = num_envs``): index ``t`` holds the observation the
policy saw at step ``t``, the recurrent state it received (``hidden[t]``, (R, hidden) per env),
the action of the step before (``prev_actions[t]``, habitat-baselines' ``prev_actions``),
``masks[t] = 0`` if that observation starts a new episode, and the action, log-probability, value
and reward of step t. Index ``T`` (or ``n`` after a preempted rollout of ``n < T`` steps) holds
the next observation; :meth:`RolloutStorage.after_update` moves it to index 0 for the next
rollout. A checkpoint keeps index 0 (:meth:`RolloutStorage.first_step_state`), which is all the
next rollout reads of the last.

GAE (Schulman et al. 2016), with ``m_{t+1} = 0`` when step t ended the episode::

    delta_t = r_t + gamma * V_{t+1} * m_{t+1} - V_t
    A_t     = delta_t + gamma * lambda * m_{t+1} * A_{t+1}

Episode ends by the time limit are treated like terminal states (habitat-baselines' convention).

Minibatches (:func:`segment_minibatches`): every env's ``n`` steps are cut into
``ceil(num_mini_batch / E)`` contiguous segments; segments are shuffled and dealt into
``num_mini_batch`` groups. Each segment is replayed through the recurrent layers from its stored
start state,
so a minibatch needs no full episodes; every rank runs the same number of minibatches even after
preemption shortened its rollout (DDP needs equal numbers of backward passes).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np
import torch

from palr_habitat.fetch_obs import (OBS_KEYS, STATE_KEYS, observation_shapes, state_tensor,
                                    visual_tensor)

_TORCH_DTYPES = {np.dtype(np.uint8): torch.uint8, np.dtype(np.float32): torch.float32}


class RolloutStorage:
    """Fixed-size buffers of one rank's rollout on its device."""

    def __init__(self, num_steps: int, num_envs: int, resolution: int, act_dim: int,
                 hidden_shape: Sequence[int], device: torch.device) -> None:
        self.num_steps, self.num_envs = int(num_steps), int(num_envs)
        self.device = device
        T, E = self.num_steps, self.num_envs
        self.obs: Dict[str, torch.Tensor] = {
            key: torch.zeros((T + 1, E) + shape, dtype=_TORCH_DTYPES[dtype], device=device)
            for key, (shape, dtype) in observation_shapes(resolution).items()
        }
        self.hidden = torch.zeros((T + 1, E) + tuple(hidden_shape), device=device)
        self.prev_actions = torch.zeros(T + 1, E, act_dim, device=device)
        self.masks = torch.zeros(T + 1, E, device=device)
        self.actions = torch.zeros(T, E, act_dim, device=device)
        self.log_probs = torch.zeros(T, E, device=device)
        self.values = torch.zeros(T + 1, E, device=device)
        self.rewards = torch.zeros(T, E, device=device)
        self.advantages = torch.zeros(T, E, device=device)
        self.returns = torch.zeros(T, E, device=device)
        self.step = 0

    # --- filling -----------------------------------------------------------------------------
    def set_first(self, obs: Dict[str, np.ndarray], hidden: torch.Tensor, masks: torch.Tensor
                  ) -> None:
        """Index 0 of a fresh rollout (start of training, after a phase switch or a resume): no
        previous action."""
        for key in OBS_KEYS:
            self.obs[key][0].copy_(torch.as_tensor(obs[key]))
        self.hidden[0].copy_(hidden)
        self.prev_actions[0].zero_()
        self.masks[0].copy_(masks)
        self.step = 0

    def first_step_state(self) -> Dict[str, Any]:
        """Index 0 (observation, recurrent state, previous action, mask) on the CPU, between
        rollouts (a checkpoint)."""
        if self.step != 0:
            raise RuntimeError("first_step_state() is taken between rollouts (after "
                               "after_update() or set_first()), not in the middle of one")
        return {"obs": {key: self.obs[key][0].cpu().clone() for key in OBS_KEYS},
                "hidden": self.hidden[0].cpu().clone(),
                "prev_actions": self.prev_actions[0].cpu().clone(),
                "masks": self.masks[0].cpu().clone()}

    def load_first_step(self, state: Dict[str, Any]) -> None:
        """Start the next rollout from a :meth:`first_step_state`."""
        self.set_first(state["obs"], state["hidden"].to(self.device),
                       state["masks"].to(self.device))
        self.prev_actions[0].copy_(state["prev_actions"])

    def current(self) -> Tuple[torch.Tensor, ...]:
        """(visual, state, previous actions, hidden, masks) of the current step for acting."""
        t = self.step
        visual = visual_tensor(self.obs["rgb"][t], self.obs["depth"][t])
        state = state_tensor({k: self.obs[k][t] for k in STATE_KEYS})
        return visual, state, self.prev_actions[t], self.hidden[t], self.masks[t]

    def insert(self, obs: Dict[str, np.ndarray], hidden: torch.Tensor, actions: torch.Tensor,
               log_probs: torch.Tensor, values: torch.Tensor, rewards: np.ndarray,
               dones: np.ndarray) -> None:
        """Record step ``t``'s outputs and the observation of step ``t + 1`` (whose previous
        action is ``actions``)."""
        t = self.step
        self.actions[t].copy_(actions)
        self.log_probs[t].copy_(log_probs)
        self.values[t].copy_(values)
        self.rewards[t].copy_(torch.as_tensor(rewards, dtype=torch.float32))
        for key in OBS_KEYS:
            self.obs[key][t + 1].copy_(torch.as_tensor(obs[key]))
        self.hidden[t + 1].copy_(hidden)
        self.prev_actions[t + 1].copy_(actions)
        self.masks[t + 1].copy_(torch.as_tensor(~np.asarray(dones, bool), dtype=torch.float32))
        self.step = t + 1

    def after_update(self) -> None:
        """Carry the last observation, recurrent state, previous action and mask over to index
        0."""
        n = self.step
        for key in OBS_KEYS:
            self.obs[key][0].copy_(self.obs[key][n])
        self.hidden[0].copy_(self.hidden[n])
        self.prev_actions[0].copy_(self.prev_actions[n])
        self.masks[0].copy_(self.masks[n])
        self.step = 0

    # --- advantages --------------------------------------------------------------------------
    @torch.no_grad()
    def compute_returns(self, next_value: torch.Tensor, gamma: float, gae_lambda: float) -> None:
        """GAE advantages and returns for the ``self.step`` collected steps."""
        n = self.step
        self.values[n].copy_(next_value)
        gae = torch.zeros(self.num_envs, device=self.device)
        for t in reversed(range(n)):
            not_done = self.masks[t + 1]
            delta = self.rewards[t] + gamma * self.values[t + 1] * not_done - self.values[t]
            gae = delta + gamma * gae_lambda * not_done * gae
            self.advantages[t] = gae
        self.returns[:n] = self.advantages[:n] + self.values[:n]

    # --- diagnostic batches ------------------------------------------------------------------
    def sample_indices(self, count: int, generator: torch.Generator) -> Tuple[torch.Tensor,
                                                                               torch.Tensor]:
        """Up to ``count`` distinct (t, env) pairs of the collected steps."""
        n = max(self.step, 1)
        total = n * self.num_envs
        flat = torch.randperm(total, generator=generator)[:min(int(count), total)]
        return (flat // self.num_envs).to(self.device), (flat % self.num_envs).to(self.device)

    def gather(self, t: torch.Tensor, e: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """(visual, state, previous actions and hidden after the mask, masks) at the (t, env)
        pairs."""
        visual = visual_tensor(self.obs["rgb"][t, e], self.obs["depth"][t, e])
        state = state_tensor({k: self.obs[k][t, e] for k in STATE_KEYS})
        masks = self.masks[t, e]
        return (visual, state, self.prev_actions[t, e] * masks[:, None],
                self.hidden[t, e] * masks[:, None, None], masks)


@dataclass
class Minibatch:
    """Padded, time-major segments: tensors (L, B, ...) plus a validity mask."""

    visual: torch.Tensor  # (L*B, 4, H, W)
    state: torch.Tensor  # (L*B, STATE_DIM)
    prev_actions: torch.Tensor  # (L, B, A)
    hidden0: torch.Tensor  # (B, R, hidden)
    masks: torch.Tensor  # (L, B)
    actions: torch.Tensor  # (L, B, A)
    old_log_probs: torch.Tensor
    old_values: torch.Tensor
    returns: torch.Tensor
    advantages: torch.Tensor
    valid: torch.Tensor  # (L, B) 1 where the step is real, 0 where padded


def segment_minibatches(steps: int, num_envs: int, num_mini_batch: int,
                        generator: torch.Generator) -> List[List[Tuple[int, int, int]]]:
    """``num_mini_batch`` groups of (env, t0, t1) segments covering every collected step once."""
    chunks = -(-num_mini_batch // num_envs)
    if steps < chunks:
        raise ValueError(f"{steps} steps per env cannot be cut into {chunks} segments for "
                         f"{num_mini_batch} minibatches; collect more steps")
    bounds = np.linspace(0, steps, chunks + 1).round().astype(int)
    segments = [(env, int(bounds[i]), int(bounds[i + 1]))
                for env in range(num_envs) for i in range(chunks)]
    order = torch.randperm(len(segments), generator=generator).tolist()
    groups: List[List[Tuple[int, int, int]]] = [[] for _ in range(num_mini_batch)]
    for slot, index in enumerate(order):
        groups[slot % num_mini_batch].append(segments[index])
    return groups


def build_minibatch(storage: RolloutStorage, segments: List[Tuple[int, int, int]],
                    advantages: torch.Tensor) -> Minibatch:
    """Gather the segments of one minibatch, padded to the longest (padding has valid = 0)."""
    device = storage.device
    length = max(t1 - t0 for _, t0, t1 in segments)
    offsets = torch.arange(length, device=device)
    starts = torch.tensor([t0 for _, t0, _ in segments], device=device)
    ends = torch.tensor([t1 for _, _, t1 in segments], device=device)
    envs = torch.tensor([e for e, _, _ in segments], device=device)
    t = starts[None, :] + offsets[:, None]  # (L, B)
    valid = (t < ends[None, :]).float()
    t = torch.minimum(t, (ends - 1)[None, :])  # padding repeats the segment's last step
    e = envs[None, :].expand_as(t)
    flat_t, flat_e = t.reshape(-1), e.reshape(-1)
    visual = visual_tensor(storage.obs["rgb"][flat_t, flat_e], storage.obs["depth"][flat_t, flat_e])
    state = state_tensor({k: storage.obs[k][flat_t, flat_e] for k in STATE_KEYS})
    return Minibatch(
        visual=visual, state=state, prev_actions=storage.prev_actions[t, e],
        hidden0=storage.hidden[starts, envs],
        masks=storage.masks[t, e], actions=storage.actions[t, e],
        old_log_probs=storage.log_probs[t, e], old_values=storage.values[t, e],
        returns=storage.returns[t, e], advantages=advantages[t, e], valid=valid)


__all__ = ["RolloutStorage", "Minibatch", "segment_minibatches", "build_minibatch"]
