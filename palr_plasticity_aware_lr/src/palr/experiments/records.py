"""Accumulates one run's results in the ``palr.run/1`` schema (see palr.experiments.summary).

Per episode: return, domain score, task index, env steps. Per plasticity measurement (any
intervention's published log, or the capacity probe at a task end): update, env step, and per
``<net>.<layer>`` every metric (null where a metric does not apply to that layer or was not
logged by that measurement). Network-level values (:data:`NETWORK_METRICS`: the mean absolute
output and the capacity probe) are stored under the pseudo-layer ``<net>.output``.

A run whose header holds ``"reward_rate": {"window": W}`` (Jelly Bean World) also records the
reward rate after every episode (:func:`palr.experiments.metrics.reward_rate`).

Task windows: a run whose phases are counted in episodes knows its windows in advance. A run
whose phases are counted in env steps gets windows with ``start_step``/``end_step`` (the plan);
their ``start_episode``/``end_episode`` are then filled from where the switches actually happened
(:func:`observed_task_windows`).
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np

from palr.experiments.metrics import reward_rate

SCHEMA = "palr.run/1"
#: per-layer values of a network
LAYER_METRICS = ("dead", "dormant", "erank", "srank", "stable_rank", "weight_norm",
                 "grad_norm", "lr_scale", "reinit", "feature_norm")
#: per-network values, logged under the pseudo-layer ``<net>.output``
NETWORK_METRICS = ("output_abs", "probe_residual", "probe_residual_fresh")
PLASTICITY_METRICS = LAYER_METRICS + NETWORK_METRICS
#: the pseudo-layer name of the network-level values (as palr.measure.OUTPUT_LAYER)
OUTPUT_LAYER = "output"


def is_network_level(layer: str) -> bool:
    """Whether ``<net>.<layer>`` is the pseudo-layer of network-level values."""
    return layer.rsplit(".", 1)[-1] == OUTPUT_LAYER


def split_log_key(key: str) -> Optional[tuple]:
    """``plasticity/<net>/<layer>/<metric>`` -> (``<net>.<layer>``, metric); else None."""
    parts = key.split("/")
    if len(parts) != 4 or parts[0] != "plasticity":
        return None
    return f"{parts[1]}.{parts[2]}", parts[3]


def metric_series(run: Mapping[str, Any], layer: str, key: str) -> Tuple[np.ndarray, np.ndarray]:
    """(env_step, value) of one layer's plasticity metric in a run dict, nulls dropped."""
    plast = run.get("plasticity") or {}
    values = ((plast.get("layers") or {}).get(layer) or {}).get(key) or []
    steps = plast.get("env_step") or plast.get("update") or list(range(len(values)))
    pairs = [(float(s), float(v)) for s, v in zip(steps, values)
             if v is not None and s is not None and math.isfinite(float(v))]
    if not pairs:
        return np.zeros(0), np.zeros(0)
    arr = np.asarray(pairs)
    return arr[:, 0], arr[:, 1]


def task_end_steps(run: Mapping[str, Any]) -> List[Optional[float]]:
    """Env step at which each task ended (its last episode's); None for a task not finished."""
    steps = run["episodes"].get("env_step") or []
    out: List[Optional[float]] = []
    for task in run["tasks"]:
        end = int(task["end_episode"])
        out.append(float(steps[end - 1]) if 0 < end <= len(steps) and steps[end - 1] is not None
                   else None)
    return out


def observed_task_windows(planned: List[Dict[str, Any]], episode_tasks: List[int]
                          ) -> List[Dict[str, Any]]:
    """Task windows (episodes, end exclusive) from the task index of every episode played.

    Each maximal stretch of episodes with one task index is matched, in order, to the next planned
    window with that index; a planned window that no episode started in stays empty, a stretch
    matching no planned window extends the window before it, and windows not reached yet are
    empty at the current episode count, so every window is valid while a run is still going.
    """
    windows = [dict(w) for w in planned]
    n = len(episode_tasks)
    for w in windows:
        w["start_episode"] = w["end_episode"] = n
    stretches = []
    start = 0
    for i in range(1, n + 1):
        if i == n or episode_tasks[i] != episode_tasks[start]:
            stretches.append((int(episode_tasks[start]), start, i))
            start = i
    pos = 0
    for task, first, end in stretches:
        match = next((k for k in range(pos, len(windows)) if int(windows[k]["index"]) == task), None)
        if match is None:
            if pos > 0:
                windows[pos - 1]["end_episode"] = end
            continue
        for k in range(pos, match):
            windows[k]["start_episode"] = windows[k]["end_episode"] = first
        windows[match]["start_episode"], windows[match]["end_episode"] = first, end
        pos = match + 1
    return windows


class RunRecorder:
    """Collects episodes, plasticity measurements and evaluations of one run."""

    def __init__(self, header: Dict[str, Any]) -> None:
        self.header = dict(header)
        self.episodes: Dict[str, List[Any]] = {"return": [], "score": [], "task": [],
                                               "env_step": [], "length": []}
        self.plasticity: Dict[str, Any] = {"update": [], "env_step": [], "layers": {}}
        self.evaluations: List[Dict[str, Any]] = []
        self.events: List[Dict[str, Any]] = []

    # --- recording ---------------------------------------------------------------------------
    def episode(self, ret: float, score: float, task: int, env_step: int, length: int) -> None:
        self.episodes["return"].append(float(ret))
        self.episodes["score"].append(float(score))
        self.episodes["task"].append(int(task))
        self.episodes["env_step"].append(int(env_step))
        self.episodes["length"].append(int(length))

    def measurement(self, update: int, env_step: int, log: Dict[str, float]) -> bool:
        """Record one published log; returns False if it held no per-layer plasticity metric."""
        values: Dict[str, Dict[str, float]] = {}
        for key, value in log.items():
            parsed = split_log_key(key)
            if parsed is not None:
                values.setdefault(parsed[0], {})[parsed[1]] = value
        if not values:
            return False
        n = len(self.plasticity["update"])
        self.plasticity["update"].append(int(update))
        self.plasticity["env_step"].append(int(env_step))
        layers = self.plasticity["layers"]
        for layer in sorted(set(layers) | set(values)):  # new layers in name order
            series = layers.setdefault(layer, {m: [None] * n for m in PLASTICITY_METRICS})
            for metric in PLASTICITY_METRICS:
                series[metric].append(values.get(layer, {}).get(metric))
        return True

    def evaluation(self, env_step: int, after_task: int, task_scores: List[float],
                   during_task: Optional[int] = None,
                   deterministic_scores: Optional[List[float]] = None) -> None:
        """One evaluation of every task: ``task_scores`` (the metric) and optionally the
        deterministic policy's ``task_scores_deterministic``."""
        entry: Dict[str, Any] = {"env_step": int(env_step), "after_task": int(after_task),
                                 "task_scores": [float(s) for s in task_scores]}
        if during_task is not None:
            entry["during_task"] = int(during_task)
        if deterministic_scores is not None:
            entry["task_scores_deterministic"] = [float(s) for s in deterministic_scores]
        self.evaluations.append(entry)

    def event(self, kind: str, **fields: Any) -> None:
        self.events.append({"kind": kind, **fields})

    # --- output ------------------------------------------------------------------------------
    def task_windows(self) -> List[Dict[str, Any]]:
        """The run's task windows: as planned, or observed for phases counted in env steps."""
        planned = self.header.get("tasks") or []
        if planned and all("start_step" in w for w in planned):
            return observed_task_windows(planned, self.episodes["task"])
        return planned

    def reward_rate(self) -> Optional[Dict[str, Any]]:
        """``{"window", "value"}``: the reward rate after every episode
        (:func:`~palr.experiments.metrics.reward_rate`) when the header asks for it with
        ``"reward_rate": {"window": W}``; else None."""
        asked = self.header.get("reward_rate")
        if not asked:
            return None
        window = int(asked["window"])
        values = reward_rate(self.episodes["return"], self.episodes["env_step"], window)
        return {"window": window, "value": [float(v) for v in values]}

    def to_dict(self, status: str, wall_time_s: float) -> Dict[str, Any]:
        out = {"schema": SCHEMA, **self.header, "tasks": self.task_windows(),
               "episodes": self.episodes,
               "plasticity": self.plasticity, "evaluations": self.evaluations,
               "events": self.events, "status": status, "wall_time_s": float(wall_time_s)}
        rate = self.reward_rate()
        if rate is not None:
            out["reward_rate"] = rate
        return out

    def state_dict(self) -> Dict[str, Any]:
        return {"episodes": self.episodes, "plasticity": self.plasticity,
                "evaluations": self.evaluations, "events": self.events}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.episodes = state["episodes"]
        self.plasticity = state["plasticity"]
        self.evaluations = state["evaluations"]
        self.events = state["events"]
