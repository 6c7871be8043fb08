"""Plasticity at the end of every task, per agent: is plasticity lost along the sequence?

Plasticity loss shows as a dead-unit fraction that rises and an effective rank that falls from
task to task (Lyle et al. 2023; Dohare et al. 2024), and as a capacity-probe residual that grows
above a fresh network's (Lyle et al. 2022); a mean |Q| that grows past the reward bound is value
divergence instead. For each run, network (the layer-name prefix
before the first dot, as ``summary.py``'s ``dead_final/<net>``) and task, the value is the mean
over the network's layers of each layer's last measurement at or before the task's end; across
seeds: mean with a percentile-bootstrap CI (:func:`~palr.experiments.metrics.bootstrap_ci`).
"""
from __future__ import annotations

import textwrap
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np

from palr.experiments.metrics import bootstrap_ci
from palr.experiments.records import metric_series, task_end_steps
from palr.experiments.text_tables import TABLE_WIDTH, split_table

TREND_KEYS = ("dead", "erank", "output_abs", "probe_residual", "probe_residual_fresh")


def _networks(run: Mapping[str, Any]) -> Dict[str, List[str]]:
    nets: Dict[str, List[str]] = {}
    for layer in sorted(((run.get("plasticity") or {}).get("layers") or {})):
        nets.setdefault(layer.split(".", 1)[0], []).append(layer)
    return nets


def task_end_values(run: Mapping[str, Any], key: str, with_first: bool = False
                    ) -> Dict[str, List[Optional[float]]]:
    """``{net: [value at the end of task 0, task 1, ...]}`` (None: no measurement by then);
    ``with_first`` puts the run's first measurement (its network's state early in task 0) first."""
    ends = task_end_steps(run)
    if with_first:
        firsts = [metric_series(run, layer, key)[0] for layer in
                  ((run.get("plasticity") or {}).get("layers") or {})]
        ends = [min((float(x[0]) for x in firsts if x.size), default=None)] + ends
    out: Dict[str, List[Optional[float]]] = {}
    for net, layers in _networks(run).items():
        per_task: List[Optional[float]] = []
        for end in ends:
            values = []
            for layer in layers:
                steps, series = metric_series(run, layer, key)
                if end is not None and steps.size and steps[0] <= end:
                    values.append(series[np.searchsorted(steps, end, side="right") - 1])
            per_task.append(float(np.mean(values)) if values else None)
        if any(v is not None for v in per_task):
            out[net] = per_task
    return out


def plasticity_trend(sweep: Mapping[str, Any], keys: Sequence[str] = TREND_KEYS
                     ) -> Dict[str, Dict[str, Dict[str, List[Dict[str, float]]]]]:
    """``{key: {agent: {net: [{"mean", "ci_low", "ci_high", "n"} at the first measurement, then
    at each task end]}}}`` over seeds; the first cell also holds ``"update"``, the median
    gradient update of that first measurement (agents differ: PALR measures at update 1, the
    metrics-only monitor first at update ``measure_freq``)."""
    confidence = float(sweep.get("confidence", 0.95))
    trend: Dict[str, Dict[str, Dict[str, List[Dict[str, float]]]]] = {}
    for key in keys:
        per_agent: Dict[str, Dict[str, List[Dict[str, float]]]] = {}
        for agent in sweep["agents"]:
            collected: Dict[str, List[List[Optional[float]]]] = {}
            first_updates: List[float] = []
            for run in sweep["runs"]:
                if run["agent"] == agent:
                    for net, values in task_end_values(run, key, with_first=True).items():
                        collected.setdefault(net, []).append(values)
                    first_updates += ((run.get("plasticity") or {}).get("update") or [])[:1]
            for net, rows in collected.items():
                cells = []
                for column in zip(*rows):
                    x = np.asarray([v for v in column if v is not None], dtype=float)
                    low, high = bootstrap_ci(x, confidence) if x.size else (float("nan"),) * 2
                    cells.append({"mean": float(x.mean()) if x.size else float("nan"),
                                  "ci_low": low, "ci_high": high, "n": int(x.size)})
                cells[0]["update"] = float(np.median(first_updates)) if first_updates \
                    else float("nan")
                per_agent.setdefault(agent, {})[net] = cells
        trend[key] = per_agent
    return trend


def format_trend(trend: Mapping[str, Any], task_names: Sequence[str],
                 width: int = TABLE_WIDTH) -> str:
    """Plain-text tables: one per metric, a row per (agent, network), a column per task end
    (split into tables no wider than ``width``, each repeating the agent column)."""
    labels = {"dead": "dead fraction", "erank": "effective rank",
              "output_abs": "mean |output| (|Q| of a Q-network)",
              "probe_residual": "capacity-probe residual of the trained network",
              "probe_residual_fresh": "capacity-probe residual of a fresh network"}
    formats = {"dead": "{:.3f}", "erank": "{:.2f}"}
    lines: List[str] = []
    for key, per_agent in trend.items():
        if not per_agent:  # no run logged this metric
            continue
        lines += textwrap.wrap(f"{labels.get(key, key)} at the first measurement and at the end "
                               "of each task: mean over seeds [95% CI]", width=width)
        header = ["agent [net]", "first at update", "first"] + [
            f"end {i}:{name}" for i, name in enumerate(task_names)]
        rows: List[List[str]] = []
        for agent, nets in per_agent.items():
            for net, cells in nets.items():
                fmt = formats.get(key, "{:.3g}")
                update = cells[0].get("update", float("nan"))
                rows.append([f"{agent} [{net}]", "n/a" if update != update else f"{update:.0f}"] + [
                    "n/a" if not cell["n"] else
                    f"{fmt.format(cell['mean'])} [{fmt.format(cell['ci_low'])}, "
                    f"{fmt.format(cell['ci_high'])}]" for cell in cells])
        lines += split_table(header, rows, width=width)
        lines.append("")
    return "\n".join(lines)


__all__ = ["TREND_KEYS", "task_end_values", "plasticity_trend", "format_trend"]
