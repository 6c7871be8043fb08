"""Permuted-observation continual CartPole: a testbed where a fixed-LR DQN loses plasticity.

CartPole-v1's default physics throughout; what changes from phase to phase is how the agent sees
the state. Phase ``k`` shows the observation through a fixed signed permutation
``obs'[i] = sign_k[i] * obs[perm_k[i]]`` of the 4 state variables (cart position, cart velocity,
pole angle, pole angular velocity); phase 0 is the identity, every later phase is drawn from the
run's ``permutation_seed`` and differs from the phase before it. Optionally the two actions are
swapped on odd phases as well. This follows the permuted-input sequences used to study loss of
plasticity in supervised learning (Permuted MNIST, Goodfellow et al. 2013; Dohare et al. 2024,
"Loss of plasticity in deep continual learning"): each phase is as hard as the first, so a drop
in what the agent learns late in the sequence is loss of plasticity, not a harder task.

Phases are counted in environment steps (default 12 phases of 15,000 steps) with
:class:`~palr.envs.continual_cartpole.ContinualCartPoleEnv`'s step schedule: the switch happens
at the first reset at or after each multiple of ``phase_steps``, silently (``info["phase"]`` is
for logging only), and the last phase stays on after the sequence.

Registered with gymnasium as ``palr/ContinualPermutedCartPole-v0``:
``gymnasium.make("palr/ContinualPermutedCartPole-v0", permutation_seed=3, swap_actions=True)``.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import gymnasium
import numpy as np

from palr.envs.continual_cartpole import (MAX_EPISODE_STEPS, SCORE_THRESHOLD, CartPolePhase,
                                          ContinualCartPoleEnv)
from palr.gym_envs import register_envs

ENV_ID = "palr/ContinualPermutedCartPole-v0"
#: Defaults of the testbed: 12 phases of 15k env steps (180k steps in all).
DEFAULT_PHASE_STEPS = 15_000
DEFAULT_NUM_PHASES = 12
OBS_DIM = 4

SignedPermutation = Tuple[np.ndarray, np.ndarray]  # (perm: int64[4], signs: float32[4])


def signed_permutations(num_phases: int, seed: int, dim: int = OBS_DIM) -> List[SignedPermutation]:
    """One signed permutation per phase: the identity first, then draws from ``seed``, each
    redrawn until it differs from the previous phase's (so every switch changes the view)."""
    if num_phases <= 0:
        raise ValueError(f"num_phases must be a positive integer, got {num_phases!r}")
    rng = np.random.default_rng([int(seed), 0x9E12])
    out: List[SignedPermutation] = [(np.arange(dim), np.ones(dim, dtype=np.float32))]
    while len(out) < num_phases:
        perm = rng.permutation(dim)
        signs = rng.choice(np.array([-1.0, 1.0], dtype=np.float32), size=dim)
        prev_perm, prev_signs = out[-1]
        if np.array_equal(perm, prev_perm) and np.array_equal(signs, prev_signs):
            continue
        out.append((perm, signs))
    return out


def permutation_label(perm: np.ndarray, signs: np.ndarray) -> str:
    """Compact label: ``"+0+1+2+3"`` is the identity, ``"-2+0+3-1"`` shows
    ``(-x2, x0, x3, -x1)``."""
    return "".join(f"{'+' if s > 0 else '-'}{int(i)}" for i, s in zip(perm, signs))


class ContinualPermutedCartPoleEnv(ContinualCartPoleEnv):
    """CartPole-v1 whose observation is signed-permuted per phase; see the module docstring.

    Args:
        phase_steps: env steps per phase.
        num_phases: phases of the sequence (the last one stays on afterwards).
        permutation_seed: seed of the permutations (the launchers pass the run's seed).
        swap_actions: also swap the two actions (push left/right) on odd phases.
        max_episode_steps: truncation length (500 = CartPole-v1).
        score_threshold: moving-average return counted as recovered.
    """

    def __init__(self, phase_steps: int = DEFAULT_PHASE_STEPS, num_phases: int = DEFAULT_NUM_PHASES,
                 permutation_seed: int = 0, swap_actions: bool = False,
                 max_episode_steps: int = MAX_EPISODE_STEPS,
                 score_threshold: float = SCORE_THRESHOLD,
                 render_mode: Optional[str] = None) -> None:
        self.permutations = signed_permutations(num_phases, permutation_seed)
        self.swap_actions = bool(swap_actions)
        names = [self._phase_name(k) for k in range(num_phases)]
        super().__init__(phases=[CartPolePhase(name) for name in names], cycle=False,
                         max_episode_steps=max_episode_steps, score_threshold=score_threshold,
                         render_mode=render_mode, phase_steps=phase_steps)
        self.permutation_seed = int(permutation_seed)
        # any variable can appear in any slot: every slot gets the widest bound (CartPole's own
        # bound of the velocities)
        high = np.full(OBS_DIM, np.finfo(np.float32).max, dtype=np.float32)
        self.observation_space = gymnasium.spaces.Box(-high, high, dtype=np.float32)

    def _phase_name(self, k: int) -> str:
        name = "identity" if k == 0 else permutation_label(*self.permutations[k])
        return name + (" swap" if self.actions_swapped(k) else "")

    def actions_swapped(self, phase: int) -> bool:
        """Whether phase ``phase`` swaps the two actions."""
        return self.swap_actions and phase % 2 == 1

    def observe(self, state: np.ndarray, phase: Optional[int] = None) -> np.ndarray:
        """The observation the agent gets of ``state`` in ``phase`` (default: the current one)."""
        perm, signs = self.permutations[self.phase if phase is None else phase]
        return (signs * np.asarray(state, dtype=np.float32)[perm]).astype(np.float32)

    def reset(self, *, seed: Optional[int] = None, options: Optional[Dict[str, Any]] = None
              ) -> Tuple[np.ndarray, Dict[str, Any]]:
        obs, info = super().reset(seed=seed, options=options)
        return self.observe(obs), info

    def step(self, action: Any) -> Tuple[np.ndarray, float, bool, bool, Dict[str, Any]]:
        if self.actions_swapped(self.phase):
            action = 1 - int(action)
        obs, reward, terminated, truncated, info = super().step(action)
        return self.observe(obs), reward, terminated, truncated, info


def register_env() -> None:
    """Register :data:`ENV_ID` with gymnasium (idempotent; :mod:`palr.gym_envs` holds its spec)."""
    register_envs([ENV_ID])


register_env()

__all__ = ["ENV_ID", "DEFAULT_PHASE_STEPS", "DEFAULT_NUM_PHASES", "signed_permutations",
           "permutation_label", "ContinualPermutedCartPoleEnv", "register_env"]
