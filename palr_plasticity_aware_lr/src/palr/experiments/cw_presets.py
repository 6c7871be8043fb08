"""Continual World presets: the settings a ``run_cw_experiments.py --preset`` name stands for.

- ``silent`` (default; the plasticity study's setting): task switches the agent is not told
  about: no task id in the observation, one output head, one entropy temperature, replay buffer
  and optimizer kept across tasks, the random-action warm-up and ``update_after`` counted once
  from the start of the run; Meta-World v3's default rewards (``v2``); the ReLU network (dead
  units are defined for it); 200 episodes (40k env steps) per task.
- ``cw-paper``: Continual World's continual-learning setup as published (Wolczyk et al. 2021;
  awarelab/continual_world ``run_cl.py`` / ``input_args.py`` defaults, the ``CW20`` runs of
  ``examples/paper_cl_experiments.sh``): 1M env steps per task (5000 episodes of 200 steps), the
  task's one-hot appended to every observation, one output head per task picked by it (the
  hidden layers do not see it: ``hide_task_id``), one entropy temperature per task (initial
  ``log alpha = 1``; target entropy from ``target_output_std = 0.089``), replay buffer and
  optimizer moments reset at every task switch, 10k uniform-random actions and the first update
  after 1000 steps of EVERY task, Linear -> LayerNorm -> tanh then leaky ReLU (4 x 256), batch
  128, Adam lr 1e-3, gamma 0.99, polyak 0.995, 1M replay; Meta-World's ``v1`` reward functions
  (the original release's, which Continual World's runs used through Meta-World v1).

Both evaluate every task with 10 stochastic episodes (the metric) and 1 deterministic episode
every 20k env steps and at every task end. Flags given on the command line override a preset's
defaults (:data:`FLAG_DEFAULTS`); the task-aware switches (:class:`TaskProtocol`) are the preset's.
Torch-free: the launcher checks its input before importing torch.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Dict, Optional

__all__ = ["TaskProtocol", "PRESETS", "FLAG_DEFAULTS", "DEFAULT_PRESET", "CW_TARGET_OUTPUT_STD",
           "cw_target_entropy"]

#: Continual World's ``target_output_std``: alpha is tuned so that every action dimension's
#: policy standard deviation matches it (``input_args.py``)
CW_TARGET_OUTPUT_STD = 0.089


def cw_target_entropy(act_dim: int, target_output_std: float = CW_TARGET_OUTPUT_STD) -> float:
    """Continual World's target entropy: ``act_dim * log(std * sqrt(2 pi e))``, the entropy of a
    Gaussian of that standard deviation per dimension (``sac.py``; -4.0008 for 4-d actions)."""
    return act_dim * math.log(target_output_std * math.sqrt(2.0 * math.pi * math.e))


@dataclass(frozen=True)
class TaskProtocol:
    """What the agent is told about task switches, and what it resets at one.

    Attributes:
        task_id: append the task's one-hot to every observation.
        multi_head: one output head per task, picked by the one-hot.
        hide_task_id: the hidden layers do not see the one-hot.
        per_task_alpha: one entropy temperature per task.
        reset_replay: empty the replay buffer at every task switch.
        reset_optimizer: zero every optimizer moment at every task switch (steps kept).
        per_task_schedule: ``start_steps`` (random actions) and ``update_after`` count from the
            start of every task instead of the start of the run.
        init_alpha: initial entropy temperature(s).
        target_entropy_std: if set, the target entropy is :func:`cw_target_entropy` of it;
            else ``-act_dim``.
    """

    task_id: bool = False
    multi_head: bool = False
    hide_task_id: bool = True
    per_task_alpha: bool = False
    reset_replay: bool = False
    reset_optimizer: bool = False
    per_task_schedule: bool = False
    init_alpha: float = 1.0
    target_entropy_std: Optional[float] = None

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


DEFAULT_PRESET = "silent"
PRESETS: Dict[str, TaskProtocol] = {
    "silent": TaskProtocol(),
    "cw-paper": TaskProtocol(task_id=True, multi_head=True, hide_task_id=True,
                             per_task_alpha=True, reset_replay=True, reset_optimizer=True,
                             per_task_schedule=True, init_alpha=math.e,
                             target_entropy_std=CW_TARGET_OUTPUT_STD),
}

_COMMON: Dict[str, Any] = {
    "max_episode_steps": 200, "batch_size": 128, "start_steps": 10_000, "update_after": 1000,
    "update_every": 50, "eval_every": 20_000, "eval_episodes": 10,
    "eval_deterministic_episodes": 1,
}
#: per preset, the default of every launcher flag it sets (a flag given explicitly wins)
FLAG_DEFAULTS: Dict[str, Dict[str, Any]] = {
    "silent": {**_COMMON, "episodes_per_task": 200, "network": "relu", "reward_version": "v2"},
    "cw-paper": {**_COMMON, "episodes_per_task": 5000, "network": "cw", "reward_version": "v1"},
}
