"""The DD-PPO checkpoint format (what :mod:`palr_habitat.palr_trainer` writes) and the upgrade of
checkpoints of the previous format, so that runs checkpointed by it resume.

Format 4 counts as the agent contract does (:mod:`palr.agents.contract`): ``updates`` are gradient
updates (:attr:`~palr_habitat.ddppo_ppo.PPOUpdater.updates`, what the stack's ``after_update(n)``
gets) and ``iterations`` the trainer's PPO iterations (one rollout plus its epochs of minibatch
updates; Stable-Baselines3's on-policy naming), config key ``run.max_iterations``. Format 3 called
the iterations ``updates`` (``run.max_updates``; ``update`` in the curriculum's and the record's
events) and the gradient updates ``gradient_steps``; nothing else differs.
"""
from __future__ import annotations

from typing import Any, Dict, Mapping

FORMAT = "palr_habitat.ddppo/4"
#: formats :func:`upgrade` turns into :data:`FORMAT`
UPGRADABLE = ("palr_habitat.ddppo/3",)
#: checkpoints of earlier formats: /1 without per-rank state, /2 with the GRU policy
OLD_FORMATS = ("palr_habitat.ddppo/1", "palr_habitat.ddppo/2")


def _renamed(record: Mapping[str, Any], old: str, new: str) -> Dict[str, Any]:
    """``record`` with key ``old`` renamed ``new`` (in place of it), if it has it."""
    return {(new if key == old else key): value for key, value in record.items()}


def upgrade(state: Dict[str, Any]) -> Dict[str, Any]:
    """A checkpoint of an :data:`UPGRADABLE` format as :data:`FORMAT` holds it (a new dict;
    ``state`` is not changed); any other checkpoint is returned as it is."""
    if state.get("format") not in UPGRADABLE:
        return state
    out = dict(state, format=FORMAT)
    out["counters"] = _renamed(state["counters"], "updates", "iterations")
    out["updater"] = _renamed(state["updater"], "gradient_steps", "updates")
    out["config"] = dict(state["config"], run=_renamed(state["config"]["run"], "max_updates",
                                                        "max_iterations"))
    curriculum = state["curriculum"]
    out["curriculum"] = dict(curriculum, events=[_renamed(e, "update", "iteration")
                                                 for e in curriculum["events"]])
    recorder = state["recorder"]
    out["recorder"] = dict(recorder, events=[_renamed(e, "update", "iteration")
                                             for e in recorder["events"]])
    return out


__all__ = ["FORMAT", "UPGRADABLE", "OLD_FORMATS", "upgrade"]
