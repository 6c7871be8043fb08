"""Accumulates one run's results in the ``palr.run/1`` schema (see palr.experiments.summary).

Per episode: return, domain score, task index, env steps. Per plasticity measurement (any
intervention's published log): update, env step, and per ``<net>.<layer>`` every metric
(null where a metric does not apply to that layer or was not logged by that intervention).
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np

SCHEMA = "palr.run/1"
PLASTICITY_METRICS = ("dead", "dormant", "erank", "srank", "stable_rank", "weight_norm",
                      "grad_norm", "lr_scale", "reinit")


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
                   during_task: Optional[int] = None) -> None:
        entry: Dict[str, Any] = {"env_step": int(env_step), "after_task": int(after_task),
                                 "task_scores": [float(s) for s in task_scores]}
        if during_task is not None:
            entry["during_task"] = int(during_task)
        self.evaluations.append(entry)

    def event(self, kind: str, **fields: Any) -> None:
        self.events.append({"kind": kind, **fields})

    # --- output ------------------------------------------------------------------------------
    def to_dict(self, status: str, wall_time_s: float) -> Dict[str, Any]:
        out = {"schema": SCHEMA, **self.header, "episodes": self.episodes,
               "plasticity": self.plasticity, "evaluations": self.evaluations,
               "events": self.events, "status": status, "wall_time_s": float(wall_time_s)}
        return out

    def state_dict(self) -> Dict[str, Any]:
        return {"episodes": self.episodes, "plasticity": self.plasticity,
                "evaluations": self.evaluations, "events": self.events}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.episodes = state["episodes"]
        self.plasticity = state["plasticity"]
        self.evaluations = state["evaluations"]
        self.events = state["events"]
