"""The per-member bookkeeping every seed-batched learner checkpoints: its seeds, each member's
diagnostic generator and intervention stack, and the shared step counters (``episodes`` per
member). The learners (:class:`~palr.batched.dqn.BatchedDQN`,
:class:`~palr.batched.sac.BatchedSAC`) add their networks, optimizers and other generators.
"""
from __future__ import annotations

from typing import Any, Dict

import numpy as np


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


__all__ = ["members_state", "load_members_state"]
