"""The per-member bookkeeping every seed-batched learner checkpoints: its seeds, each member's
diagnostic generator and intervention stack, and the shared step counters (``episodes`` per
member); and the state of each :class:`~palr.batched.member_adam.MemberAdam`. The learners
(:class:`~palr.batched.dqn.BatchedDQN`, :class:`~palr.batched.sac.BatchedSAC`) add their
networks and other generators.
"""
from __future__ import annotations

from typing import Any, Dict

import numpy as np
import torch

from palr.batched.member_adam import MemberAdam


def members_state(learner: Any) -> Dict[str, Any]:
    """``seeds``, ``diag_rngs``, ``stacks`` and ``counters`` of ``learner`` (plain values)."""
    return {
        "seeds": list(learner.seeds),
        "diag_rngs": [rng.bit_generator.state for rng in learner.diag_rngs],
        "stacks": [stack.state_dict() for stack in learner.stacks],
        "counters": {"env_steps": learner.env_steps, "task_env_steps": learner.task_env_steps,
                     "updates": learner.updates, "episodes": learner.episodes.tolist()},
    }


def load_members_state(learner: Any, state: Dict[str, Any]) -> None:
    """Restore what :func:`members_state` saved into ``learner``.

    Raises:
        ValueError: the state is of other seeds (checked before anything is restored).
    """
    if [int(s) for s in state["seeds"]] != list(learner.seeds):
        raise ValueError(f"batch checkpoint of seeds {state['seeds']}, this batch has "
                         f"{list(learner.seeds)}")
    for rng, st in zip(learner.diag_rngs, state["diag_rngs"]):
        rng.bit_generator.state = st
    for stack, st in zip(learner.stacks, state["stacks"]):
        stack.load_state_dict(st)
    counters = state["counters"]
    learner.env_steps = int(counters["env_steps"])
    learner.task_env_steps = int(counters["task_env_steps"])
    learner.updates = int(counters["updates"])
    learner.episodes = np.asarray(counters["episodes"], dtype=np.int64)


def adam_state(adam: MemberAdam) -> Dict[str, Any]:
    """``adam``'s moments, step count, learning-rate table and every member's restart step
    (a member reset by PeriodicReset counts its steps from there: :meth:`MemberAdam.restart`)."""
    return {"exp_avg": adam.exp_avg.clone(), "exp_avg_sq": adam.exp_avg_sq.clone(),
            "steps": adam.steps, "lr": adam.lr.clone(),
            "restarted_at": adam.restarted_at.tolist()}


@torch.no_grad()
def load_adam_state(adam: MemberAdam, state: Dict[str, Any]) -> None:
    """Restore what :func:`adam_state` saved into ``adam``."""
    adam.exp_avg.copy_(state["exp_avg"])
    adam.exp_avg_sq.copy_(state["exp_avg_sq"])
    adam.steps = int(state["steps"])
    adam.restarted_at[:] = state.get("restarted_at", 0)  # older batches: no resets
    adam.lr.copy_(state["lr"])


__all__ = ["adam_state", "load_adam_state", "members_state", "load_members_state"]
