"""Merge per-run result JSONs into a sweep and print the human-readable summary (docs/design.md#evaluation).

Input: run dicts of schema ``palr.run/1`` (documented in :mod:`palr.experiments.metrics`).
Output: a sweep dict::

    {
     "schema": "palr.sweep/1",
     "domain": "cartpole", "score_name": "return", "score_threshold": 195.0,
     "confidence": 0.95, "n_resamples": 4000, "iqm": "...",   # how the statistics were made
     "agents": ["DQN-FixedLR", "PALR-DQN", ...],               # agent_idx order
     "runs": [...run dicts...],  "reference_runs": [...],      # inputs, unchanged
     "per_run": [{"agent", "seed", "recovery": [...], "metrics": {metric: value}, ...}, ...],
     "run_counts": {agent: {"n": runs, "running": unfinished runs}},
     "summary": {agent: {metric: {"mean", "ci_low", "ci_high", "iqm", "n", "values", "seeds"}}},
     "verdict": {...}   # palr.experiments.verdict.compute_verdict: plasticity loss, each agent vs FixedLR
    }

Metrics per run (then mean / 95% percentile-bootstrap CI / IQM across seeds):

- ``recovery_episodes``: mean over the run's task switches of
  :func:`~palr.experiments.metrics.recovery_episodes` (censored switches count at the window
  length); its summary entry also holds ``censored`` and ``switches`` summed over seeds;
- ``final_performance``: mean over tasks of the last-10% score; ``mean_score``: mean over episodes;
- ``dead_final/<net>``, ``erank_final/<net>``, ``feature_norm_final/<net>``: last logged value of
  each layer, averaged over the layers of one network (``<net>`` = layer-name prefix before the
  first dot: ``q``, ``actor``...); absent when no layer has a value (dead fraction of non-ReLU
  networks); ``output_abs_final/<net>``: the network's last mean |output| (|Q| for a Q-network);
  ``probe_ratio_final/<net>``: its last capacity-probe residual over a fresh network's;
- with a reward rate (Jelly Bean World, :func:`~palr.experiments.metrics.reward_rate`):
  ``reward_rate``, the run's total reward per env step (the figure upstream JBW logs), and
  ``reward_rate_final``, the reward rate over the last window of the run; per run also the
  reward rate at the end of each task (``reward_rate_per_task``);
- with evaluations (Continual World): ``cw_performance``, ``cw_forgetting`` (mean over tasks) and,
  when single-task reference runs cover the tasks, ``cw_forward_transfer``, all on the evaluation
  curve as Continual World's ``results_processing/tables.py`` computes them
  (:mod:`palr.experiments.metrics`). Reference runs are passed as ``reference_runs`` or carry
  ``"reference": true``; they must have been made with the main runs' settings (their run
  identities equal but for the sequence, the seed and the agent:
  :func:`~palr.experiments.run_identity.check_references`). Per run, ``cw_evaluations_per_task``
  counts the evaluations inside each task's window that its AUC averages.
- a sweep of Continual World runs names its task sequence (``sequence``, from the runs).
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import pathlib
import sys
import textwrap
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from palr.experiments.files import PathLike, atomic_write_text
from palr.experiments.run_identity import check_poolable, check_references
from palr.experiments.metrics import (RUN_SCHEMA, bootstrap_ci, cw_average_performance,
                                      cw_forgetting, cw_forward_transfer, cw_task_auc,
                                      cw_window_evaluations, final_performance, iqm,
                                      recovery_episodes)
from palr.experiments.records import is_network_level
from palr.experiments.text_tables import TABLE_WIDTH, text_table
from palr.experiments.verdict import compute_verdict, format_verdict

__all__ = [
    "SWEEP_SCHEMA", "validate_run", "validate_sweep", "load_runs", "load_sweep", "run_metrics",
    "aggregate",
    "merge_runs", "format_summary", "write_summary", "atomic_write_text",
    "summary_csv", "summary_markdown", "summary_exports", "TABLE_WIDTH",
]

SWEEP_SCHEMA = "palr.sweep/1"
IQM_METHOD = "25% trimmed mean as rliable's aggregate_iqm; equals the mean for n < 4"
_REQUIRED = ("domain", "agent", "seed", "tasks", "episodes")


# ----------------------------------------------------------------------------- files


def _check(ok: bool, where: str, what: str, value: Any) -> None:
    if not ok:
        raise ValueError(f"{where}: expected {what}, got {_short(value)}")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_scores(values: Any) -> bool:
    return isinstance(values, list) and all(
        v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in values)


def validate_run(run: Mapping[str, Any], source: str = "run") -> None:
    """Raise ValueError (one line, naming ``source`` and the key) unless ``run`` is a usable
    ``palr.run/1``: the keys and types every summary metric and plot reads."""
    if not isinstance(run, Mapping):
        raise ValueError(f"{source}: a run must be a JSON object, got {type(run).__name__}")
    if run.get("schema") != RUN_SCHEMA:
        raise ValueError(f"{source}: schema is {run.get('schema')!r}, expected {RUN_SCHEMA!r}")
    missing = [key for key in _REQUIRED if key not in run]
    if missing:
        raise ValueError(f"{source}: missing key(s) {missing}; a {RUN_SCHEMA} run needs {list(_REQUIRED)}")
    _check(isinstance(run["agent"], str), f"{source}: agent", "a string", run["agent"])
    _check(_is_int(run["seed"]) or isinstance(run["seed"], str), f"{source}: seed",
           "an integer or a string", run["seed"])
    episodes = run["episodes"]
    _check(isinstance(episodes, Mapping), f"{source}: episodes", "a mapping of lists", episodes)
    if "score" not in episodes:
        raise ValueError(f"{source}: episodes has no 'score' list (keys: {sorted(episodes)})")
    _check(_is_scores(episodes["score"]), f"{source}: episodes.score", "a list of numbers",
           episodes["score"])
    _check(isinstance(run["tasks"], list), f"{source}: tasks", "a list of task windows",
           run["tasks"])
    for i, task in enumerate(run["tasks"]):
        _check(isinstance(task, Mapping), f"{source}: tasks[{i}]", "a mapping", task)
        for key in ("start_episode", "end_episode"):
            _check(_is_int(task.get(key)), f"{source}: tasks[{i}].{key}", "an integer",
                   task.get(key))
    threshold = run.get("score_threshold")
    _check(threshold is None or _is_scores([threshold]), f"{source}: score_threshold",
           "a number or null", threshold)
    evaluations = run.get("evaluations") or []
    _check(isinstance(evaluations, list), f"{source}: evaluations", "a list", evaluations)
    for i, evaluation in enumerate(evaluations):
        _check(isinstance(evaluation, Mapping) and _is_scores(evaluation.get("task_scores")),
               f"{source}: evaluations[{i}]", "a mapping with a 'task_scores' list", evaluation)
    rate = run.get("reward_rate")
    if rate is not None:
        _check(isinstance(rate, Mapping) and _is_int(rate.get("window"))
               and _is_scores(rate.get("value"))
               and len(rate["value"]) == len(episodes["score"]), f"{source}: reward_rate",
               "a mapping with a 'window' and one 'value' per episode", rate)
    plasticity = run.get("plasticity") or {}
    layers = plasticity.get("layers") or {} if isinstance(plasticity, Mapping) else None
    _check(isinstance(layers, Mapping) and all(isinstance(v, Mapping) for v in layers.values()),
           f"{source}: plasticity.layers", "a mapping of per-layer mappings", layers)


def validate_sweep(sweep: Any, source: str = "sweep") -> None:
    """Raise ValueError (one line, naming ``source`` and the key) unless ``sweep`` is a usable
    ``palr.sweep/1`` (what :func:`merge_runs` returns and the plots read)."""
    if not isinstance(sweep, Mapping):
        raise ValueError(f"{source}: a sweep must be a JSON object, got {type(sweep).__name__}")
    if sweep.get("schema") != SWEEP_SCHEMA:
        raise ValueError(f"{source}: schema is {sweep.get('schema')!r}, expected {SWEEP_SCHEMA!r} "
                         "(a merged sweep, from merge_runs)")
    missing = [key for key in ("agents", "runs", "summary") if key not in sweep]
    if missing:
        raise ValueError(f"{source}: missing key(s) {missing}; a {SWEEP_SCHEMA} sweep needs "
                         "agents, runs and summary")
    agents, runs, summary = sweep["agents"], sweep["runs"], sweep["summary"]
    _check(isinstance(agents, list) and all(isinstance(a, str) for a in agents),
           f"{source}: agents", "a list of agent names", agents)
    _check(isinstance(runs, list) and bool(runs), f"{source}: runs", "a non-empty list", runs)
    for k, run in enumerate(runs):
        validate_run(run, f"{source}: runs[{k}]")
    _check(isinstance(summary, Mapping) and all(
        isinstance(summary.get(a), Mapping) and all(isinstance(v, Mapping)
                                                    for v in summary[a].values())
        for a in agents), f"{source}: summary", "a mapping of agent -> metric -> statistics",
        summary)


def load_runs(paths: Union[PathLike, Sequence[PathLike]]) -> List[Dict[str, Any]]:
    """Load run JSONs from files and/or folders (searched recursively for ``*.json``).

    A named file must be a valid ``palr.run/1`` run (else ValueError). In folders, JSON files of
    another schema (sweeps, checkpoints) are skipped silently and unreadable ones with a warning
    on stderr, so one torn file does not hide the others.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    runs: List[Dict[str, Any]] = []
    for raw in paths:
        path = pathlib.Path(raw)
        if path.is_dir():
            for file in sorted(path.rglob("*.json")):
                try:
                    data = json.loads(file.read_text(encoding="utf-8"))
                except (OSError, ValueError) as err:
                    print(f"[summary] skipping unreadable {file}: {err}", file=sys.stderr)
                    continue
                if isinstance(data, dict) and data.get("schema") == RUN_SCHEMA:
                    validate_run(data, str(file))
                    runs.append(data)
        elif path.is_file():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as err:
                raise ValueError(f"{path}: not readable JSON ({err})") from None
            validate_run(data, str(path))
            runs.append(data)
        else:
            raise ValueError(f"{path}: no such file or folder; pass run JSON files or result folders")
    return runs


def load_sweep(path: PathLike) -> Dict[str, Any]:
    """The merged sweep in the file ``path``; ValueError (one line, naming the file) when it is
    not a readable ``palr.sweep/1``."""
    try:
        sweep = json.loads(pathlib.Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: not readable JSON ({err})") from None
    validate_sweep(sweep, str(path))
    return sweep


# ----------------------------------------------------------------------------- per run


def _nanmean(values: Iterable[Optional[float]]) -> float:
    arr = np.asarray([np.nan if v is None else v for v in values], dtype=float)
    finite = arr[np.isfinite(arr)]
    return float(finite.mean()) if finite.size else float("nan")


def _last_value(values: Sequence[Optional[float]]) -> float:
    for v in reversed(values):
        if v is not None and math.isfinite(float(v)):
            return float(v)
    return float("nan")


#: per-layer metrics whose last value (mean over a network's layers) the summary reports
FINAL_LAYER_KEYS = ("dead", "erank", "feature_norm")


#: every ``<key>_final/<net>`` metric, in table order
PLASTICITY_FINAL_KEYS = FINAL_LAYER_KEYS + ("output_abs", "probe_ratio")


def _plasticity_final(run: Mapping[str, Any]) -> Dict[str, float]:
    """``{"dead_final/<net>": x, "erank_final/<net>": y, ...}``: last value per layer, mean over
    layers; the network-level ``output_abs_final/<net>`` and ``probe_ratio_final/<net>``."""
    layers = (run.get("plasticity") or {}).get("layers") or {}
    per_net: Dict[str, Dict[str, List[float]]] = {}
    for name, series in layers.items():
        net = name.split(".", 1)[0]
        if is_network_level(name):
            per_net.setdefault(net, {})["output_abs"] = [_last_value(series.get("output_abs") or [])]
            trained = _last_value(series.get("probe_residual") or [])
            fresh = _last_value(series.get("probe_residual_fresh") or [])
            per_net[net]["probe_ratio"] = [trained / fresh if fresh > 0 else float("nan")]
            continue
        for key in FINAL_LAYER_KEYS:
            per_net.setdefault(net, {}).setdefault(key, []).append(_last_value(series.get(key) or []))
    out: Dict[str, float] = {}
    for net, by_key in per_net.items():
        for key, values in by_key.items():
            value = _nanmean(values)
            if math.isfinite(value):
                out[f"{key}_final/{net}"] = value
    return out


def _reference_auc(reference_runs: Sequence[Mapping[str, Any]]) -> Dict[str, float]:
    """Task name -> AUC^b averaged over the single-task reference runs of that task."""
    by_task: Dict[str, List[float]] = {}
    for ref in reference_runs:
        if len(ref["tasks"]) != 1:
            raise ValueError(f"reference run (agent {ref.get('agent')}, seed {ref.get('seed')}) has "
                             f"{len(ref['tasks'])} tasks; a single-task reference run has exactly 1")
        if not ref.get("evaluations"):
            raise ValueError(f"reference run {ref['tasks'][0].get('name')} seed {ref.get('seed')} "
                             "has no evaluations; rerun it with --eval_episodes > 0")
        by_task.setdefault(str(ref["tasks"][0].get("name")), []).append(
            cw_task_auc(ref["evaluations"])[0])
    return {name: _nanmean(values) for name, values in by_task.items()}


def _reward_rate_metrics(run: Mapping[str, Any], metrics: Dict[str, float]) -> List[float]:
    """Add ``reward_rate`` (total reward per env step) and ``reward_rate_final`` (the last
    window's) to ``metrics``; returns the reward rate at the end of each task window."""
    values = run["reward_rate"]["value"]
    steps = run["episodes"].get("env_step") or []
    returns = run["episodes"].get("return") or []
    if values and steps and returns:
        metrics["reward_rate"] = float(np.sum(returns)) / float(steps[-1])
        metrics["reward_rate_final"] = float(values[-1])
    per_task = []
    for task in run["tasks"]:
        start, end = int(task["start_episode"]), min(int(task["end_episode"]), len(values))
        per_task.append(float(values[end - 1]) if end > start else float("nan"))
    return per_task


def run_metrics(run: Mapping[str, Any], reference_auc: Optional[Mapping[str, float]] = None,
                window: int = 10) -> Dict[str, Any]:
    """Every per-run metric of the sweep (module docstring) plus the per-switch/per-task detail."""
    scores = run["episodes"]["score"]
    tasks = run["tasks"]
    threshold = run.get("score_threshold")
    recoveries = recovery_episodes(scores, tasks, float(threshold), window) \
        if threshold is not None else []
    finals = final_performance(scores, tasks)
    metrics: Dict[str, float] = {
        "recovery_episodes": _nanmean(r.episodes for r in recoveries),
        "final_performance": _nanmean(finals),
        "mean_score": _nanmean(scores),
    }
    metrics.update(_plasticity_final(run))
    out: Dict[str, Any] = {
        "agent": run["agent"], "agent_idx": run.get("agent_idx"), "seed": run["seed"],
        "status": run.get("status", "finished"),
        "recovery": [r.to_dict() for r in recoveries],
        "censored": sum(r.censored for r in recoveries), "switches": len(recoveries),
        "final_performance_per_task": finals,
    }
    if run.get("reward_rate"):
        out["reward_rate_per_task"] = _reward_rate_metrics(run, metrics)
    evals = run.get("evaluations") or []
    if evals:
        forgetting = cw_forgetting(evals)
        metrics["cw_performance"] = cw_average_performance(evals)
        metrics["cw_forgetting"] = _nanmean(forgetting)
        out["cw_forgetting_per_task"] = forgetting
        auc = cw_task_auc(evals)
        out["cw_auc_per_task"] = auc
        out["cw_evaluations_per_task"] = cw_window_evaluations(evals)
        if reference_auc:
            ref = [reference_auc.get(str(t.get("name")), float("nan")) for t in tasks]
            ft = cw_forward_transfer(auc, ref)
            out["cw_forward_transfer_per_task"] = [float(v) for v in ft]
            if np.isfinite(ft).any():
                metrics["cw_forward_transfer"] = _nanmean(ft)
    out["metrics"] = metrics
    return out


# ----------------------------------------------------------------------------- sweep


def aggregate(values: Sequence[float], confidence: float = 0.95, n_resamples: int = 4000,
              seed: int = 0) -> Dict[str, Any]:
    """``{"mean", "ci_low", "ci_high", "iqm", "n"}`` over the finite values (one per seed)."""
    arr = np.asarray([np.nan if v is None else v for v in values], dtype=float)
    finite = arr[np.isfinite(arr)]
    low, high = bootstrap_ci(finite, confidence, n_resamples, seed)
    return {"mean": float(finite.mean()) if finite.size else float("nan"),
            "ci_low": low, "ci_high": high, "iqm": iqm(finite), "n": int(finite.size)}


def _seed_key(seed: Any) -> Tuple[int, Any]:
    return (0, seed) if isinstance(seed, (int, float)) else (1, str(seed))


def _agent_order(runs: Sequence[Mapping[str, Any]]) -> List[str]:
    key = {}
    for run in runs:
        idx = run.get("agent_idx")
        key.setdefault(run["agent"], (idx if idx is not None else 10 ** 6, run["agent"]))
    return sorted(key, key=key.get)


def merge_runs(runs: Sequence[Mapping[str, Any]],
               reference_runs: Optional[Sequence[Mapping[str, Any]]] = None,
               confidence: float = 0.95, n_resamples: int = 4000, seed: int = 0) -> Dict[str, Any]:
    """Merge runs of one domain into a ``palr.sweep/1`` dict (module docstring).

    Runs carrying ``"reference": true`` join ``reference_runs``. Raises ValueError on mixed
    domains, on two runs of the same (agent, seed), on runs that may not be pooled (one agent
    with different settings, or agents of different experiments:
    :func:`palr.experiments.run_identity.check_poolable`), on reference runs made with other
    settings than the main runs (:func:`~palr.experiments.run_identity.check_references`), or
    on no runs.
    """
    for k, run in enumerate(runs):
        validate_run(run, f"run #{k}")
    references = list(reference_runs or []) + [r for r in runs if r.get("reference")]
    main = [r for r in runs if not r.get("reference")]
    if not main:
        raise ValueError("no runs to merge (only reference runs or none); run the sweep first")
    domains = sorted({str(r["domain"]) for r in main + references})
    if len(domains) != 1:
        raise ValueError(f"runs of several domains {domains}; merge one domain at a time")
    check_poolable(main)
    if references:
        check_references(main, references)
    seen = set()
    for run in main:
        pair = (run["agent"], run["seed"])
        if pair in seen:
            raise ValueError(f"two runs for agent {pair[0]!r} seed {pair[1]}; remove the stale one")
        seen.add(pair)
    agents = _agent_order(main)
    main.sort(key=lambda r: (agents.index(r["agent"]), _seed_key(r["seed"])))
    ref_auc = _reference_auc(references) if references else None
    per_run = [run_metrics(run, ref_auc) for run in main]

    summary: Dict[str, Dict[str, Any]] = {}
    for agent in agents:
        rows = [p for p in per_run if p["agent"] == agent]
        names: List[str] = []
        for p in rows:
            names += [m for m in p["metrics"] if m not in names]
        summary[agent] = {}
        for name in names:
            values = [p["metrics"].get(name, float("nan")) for p in rows]
            entry = aggregate(values, confidence, n_resamples, seed)
            entry["values"] = values
            entry["seeds"] = [p["seed"] for p in rows]
            if name == "recovery_episodes":
                entry["censored"] = int(sum(p["censored"] for p in rows))
                entry["switches"] = int(sum(p["switches"] for p in rows))
            summary[agent][name] = entry
    run_counts = {agent: {"n": sum(p["agent"] == agent for p in per_run),
                          "running": sum(p["agent"] == agent and p["status"] != "finished"
                                         for p in per_run)} for agent in agents}
    first = main[0]
    sequences = {r.get("sequence") for r in main}
    sequence = {"sequence": first["sequence"],
                "sequence_description": first.get("sequence_description")} \
        if len(sequences) == 1 and first.get("sequence") else {}
    return {
        "schema": SWEEP_SCHEMA, "domain": first["domain"], **sequence,
        "score_name": first.get("score_name", "score"), "score_threshold": first.get("score_threshold"),
        "confidence": confidence, "n_resamples": n_resamples, "iqm": IQM_METHOD,
        "agents": agents, "runs": [dict(r) for r in main], "reference_runs": [dict(r) for r in references],
        "per_run": per_run, "run_counts": run_counts, "summary": summary,
        "verdict": compute_verdict({"runs": main, "agents": agents}),
    }


# ----------------------------------------------------------------------------- text table

_LABELS = {
    "recovery_episodes": "recovery (episodes)",
    "final_performance": "final performance",
    "mean_score": "mean score",
    "cw_performance": "CW avg performance",
    "cw_forgetting": "CW forgetting",
    "cw_forward_transfer": "CW forward transfer",
    "reward_rate": "reward rate (whole run)",
    "reward_rate_final": "reward rate (last window)",
}
_ORDER = ("recovery_episodes", "final_performance", "mean_score", "cw_performance",
          "cw_forgetting", "cw_forward_transfer")
_RATE = ("reward_rate", "reward_rate_final")


def _fmt(x: Optional[float]) -> str:
    if x is None or not math.isfinite(float(x)):
        return "n/a"
    a = abs(float(x))
    if a >= 1000:
        return f"{x:.0f}"
    if a >= 100:
        return f"{x:.1f}"
    if a >= 1:
        return f"{x:.2f}"
    return f"{x:.3f}"


_FINAL_LABELS = {"output_abs": "mean |output| (|Q|)", "probe_ratio": "probe ratio trained/fresh",
                 "feature_norm": "feature norm"}


def _named(metric: str, names: Mapping[str, str], final_names: Mapping[str, str],
           final_format: str) -> str:
    """``metric``'s name from ``names``; a per-network final metric (``dead_final/q``) as
    ``final_format`` of its name in ``final_names`` and the network."""
    if metric in names:
        return names[metric]
    if "/" in metric:
        key, net = metric.split("/", 1)
        key = key.replace("_final", "")
        return final_format.format(name=final_names.get(key, key), net=net)
    return metric


def _label(metric: str) -> str:
    return _named(metric, _LABELS, _FINAL_LABELS, "{name} final [{net}]")


def _metric_groups(sweep: Mapping[str, Any]) -> List[List[str]]:
    """Metrics by table: continual performance, reward rate, Continual World, one per network,
    the rest."""
    seen: List[str] = []
    for agent in sweep["agents"]:
        seen += [m for m in sweep["summary"][agent] if m not in seen]
    perf = [m for m in _ORDER[:3] if m in seen]
    rate = [m for m in _RATE if m in seen]
    cw = [m for m in _ORDER[3:] if m in seen]
    finals = [f"{key}_final/" for key in PLASTICITY_FINAL_KEYS]
    plast = [m for m in seen if m.startswith(tuple(finals))]
    nets = sorted({m.split("/", 1)[1] for m in plast})
    per_net = [[m for m in (f"{prefix}{n}" for prefix in finals) if m in plast] for n in nets]
    rest = sorted(m for m in seen if m not in perf + rate + cw + plast)
    return [g for g in [perf, rate, cw] + per_net + [rest] if g]


_SHORT = {
    "recovery_episodes": "recovery", "final_performance": "final perf", "mean_score": "mean score",
    "cw_performance": "CW perf", "cw_forgetting": "CW forget", "cw_forward_transfer": "CW FT",
    "reward_rate": "rate (run)", "reward_rate_final": "rate (last)",
}
_SHORT_FINAL = {"dead": "dead", "erank": "erank", "feature_norm": "feat norm",
                "output_abs": "|output|", "probe_ratio": "probe ratio"}


def _short_label(metric: str) -> str:
    """The column header of ``metric`` (its full name is in the table's legend)."""
    return _named(metric, _SHORT, _SHORT_FINAL, "{name} [{net}]")


def _metric_columns(sweep: Mapping[str, Any], metric: str) -> List[List[str]]:
    """The columns (header first, then one cell per agent) of one metric: mean [CI] (n=k), IQM
    and, for recovery, the censored switches."""
    counts, columns = sweep["run_counts"], [[_short_label(metric)], ["IQM"]]
    if metric == "recovery_episodes":
        columns.append(["censored"])
    for agent in sweep["agents"]:
        e = sweep["summary"][agent].get(metric)
        if e is None or e["n"] == 0:
            cells = ["n/a"] * len(columns)
        else:
            cell = f"{_fmt(e['mean'])} [{_fmt(e['ci_low'])}, {_fmt(e['ci_high'])}]"
            if e["n"] != counts[agent]["n"]:
                cell += f" (n={e['n']})"
            cells = [cell, _fmt(e["iqm"])]
            if metric == "recovery_episodes":
                cells.append(f"{e['censored']}/{e['switches']}")
        for column, cell in zip(columns, cells):
            column.append(cell)
    return columns


def _agent_columns(sweep: Mapping[str, Any]) -> List[List[str]]:
    counts = sweep["run_counts"]
    seeds = [f"{counts[a]['n']} ({counts[a]['running']} running)" if counts[a]["running"]
             else str(counts[a]["n"]) for a in sweep["agents"]]
    return [["agent", *sweep["agents"]], ["seeds", *seeds]]


def _width(columns: List[List[str]]) -> int:
    return sum(max(len(c) for c in column) for column in columns) + 2 * (len(columns) - 1)


def _pack(sweep: Mapping[str, Any], group: List[str], width: int) -> List[List[str]]:
    """``group``'s metrics in consecutive tables, each as many metrics as fit ``width`` columns
    (at least one)."""
    base = _agent_columns(sweep)
    blocks: List[List[str]] = []
    current: List[str] = []
    used: List[List[str]] = list(base)
    for metric in group:
        columns = _metric_columns(sweep, metric)
        if current and _width(used + columns) > width:
            blocks.append(current)
            current, used = [], list(base)
        current.append(metric)
        used += columns
    if current:
        blocks.append(current)
    return blocks


def _text_table(sweep: Mapping[str, Any], block: List[str]) -> List[str]:
    columns = _agent_columns(sweep) + [c for m in block for c in _metric_columns(sweep, m)]
    rows = [list(r) for r in zip(*columns)]
    return text_table(rows[0], rows[1:])


def _legend(metrics: Sequence[str], pct: int, width: int) -> List[str]:
    """What the short column headers stand for, wrapped to ``width``."""
    text = (f"Columns: each metric is mean [{pct}% CI] then its IQM; "
            + "; ".join(f"{_short_label(m)} = {_label(m)}" for m in metrics) + ".")
    return textwrap.wrap(text, width=width, break_on_hyphens=False)


def format_summary(sweep: Mapping[str, Any], metrics_per_block: Optional[int] = None,
                   width: int = TABLE_WIDTH) -> str:
    """The RESULTS_SUMMARY.txt text: fixed-width tables, one row per agent, mean [CI] and IQM,
    split so that no line of the header and tables is wider than ``width`` (a short header per
    metric, explained in a legend); ``metrics_per_block`` caps the metrics of one table."""
    if sweep.get("schema") != SWEEP_SCHEMA:
        raise ValueError(f"format_summary needs a {SWEEP_SCHEMA} dict (from merge_runs), "
                         f"got schema {sweep.get('schema')!r}")
    agents = sweep["agents"]
    pct = int(round(100 * float(sweep.get("confidence", 0.95))))
    threshold = sweep.get("score_threshold")
    seeds = sorted({r["seed"] for r in sweep["runs"]}, key=_seed_key)
    header = [
        f"PALR results summary: domain {sweep['domain']}, score '{sweep.get('score_name')}'"
        + (f", recovery threshold {threshold:g} on the 10-episode moving average"
           if threshold is not None else ""),
        *([f"task sequence: {sweep['sequence']} ({sweep.get('sequence_description')})"]
          if sweep.get("sequence") else []),
        f"{len(sweep['runs'])} run(s): {len(agents)} agent(s) x seeds {seeds}"
        + (f"; {len(sweep.get('reference_runs') or [])} single-task reference run(s)"
           if sweep.get("reference_runs") else ""),
        f"Across seeds: mean [{pct}% percentile-bootstrap CI, {sweep.get('n_resamples')} resamples]"
        f" and IQM ({sweep.get('iqm', IQM_METHOD)}); (n=k) where only k seeds have a value.",
    ]
    lines = [wrapped for line in header
             for wrapped in textwrap.wrap(line, width=width, break_on_hyphens=False)]
    counts = sweep["run_counts"]
    running = sum(counts[a]["running"] for a in agents)
    if running:
        lines.append(f"NOTE: {running} run(s) still running; their numbers are partial.")
    groups = _metric_groups(sweep)
    if metrics_per_block:
        groups = [g[b:b + metrics_per_block] for g in groups
                  for b in range(0, len(g), metrics_per_block)]
    for block in [b for g in groups for b in _pack(sweep, g, width)]:
        lines += [""] + _text_table(sweep, block)
    lines += [""] + _legend([m for g in groups for m in g], pct, width)
    notes = []
    if any("recovery_episodes" in g for g in groups):
        notes.append("recovery: episodes of the new task until its 10-episode moving average "
                     "reaches the threshold, mean over switches per seed; censored = switches "
                     "that never did (counted at the phase length) / all switches.")
    windows = sorted({int(r["reward_rate"]["window"]) for r in sweep["runs"] if r.get("reward_rate")})
    if windows:
        notes.append("reward rate: reward per env step, over the whole run and over the last "
                     f"{' / '.join(f'{w:,}' for w in windows)} env steps (Platanios et al. 2020).")
    for note in notes:
        lines += [""] + textwrap.wrap(note, width=width, break_on_hyphens=False)
    lines += ["", format_verdict(sweep.get("verdict") or compute_verdict(sweep)).rstrip()]
    return "\n".join(lines) + "\n"


def summary_csv(sweep: Mapping[str, Any]) -> str:
    """The summary as CSV: one row per (agent, metric) with every statistic."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["agent", "metric", "label", "runs", "n", "mean", "ci_low", "ci_high", "iqm",
                     "censored", "switches"])
    for agent in sweep["agents"]:
        for metric in [m for g in _metric_groups(sweep) for m in g]:
            e = sweep["summary"][agent].get(metric)
            if e is None:
                continue
            stats = ["" if not _finite(e[k]) else repr(float(e[k]))
                     for k in ("mean", "ci_low", "ci_high", "iqm")]
            writer.writerow([agent, metric, _label(metric), sweep["run_counts"][agent]["n"],
                             e["n"], *stats, e.get("censored", ""), e.get("switches", "")])
    return out.getvalue()


def _finite(value: Any) -> bool:
    return value is not None and math.isfinite(float(value))


def summary_markdown(sweep: Mapping[str, Any]) -> str:
    """The summary as Markdown: one table per metric group, full metric names, mean [CI] and IQM,
    then the verdict as a code block."""
    pct = int(round(100 * float(sweep.get("confidence", 0.95))))
    lines = [f"# PALR results summary: {sweep['domain']}", "",
             f"Across seeds: mean [{pct}% percentile-bootstrap CI] and IQM; (n=k) where only k "
             "seeds have a value."]
    for group in _metric_groups(sweep):
        columns = _agent_columns(sweep)
        for metric in group:
            metric_columns = _metric_columns(sweep, metric)
            metric_columns[0][0] = f"{_label(metric)} mean [{pct}% CI]"
            columns += metric_columns
        rows = [list(r) for r in zip(*columns)]
        lines += ["", "| " + " | ".join(rows[0]) + " |",
                  "|" + "|".join("---" if c == 0 else "---:" for c in range(len(rows[0]))) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    lines += ["", "```", format_verdict(sweep.get("verdict") or compute_verdict(sweep)).rstrip(),
              "```"]
    return "\n".join(lines) + "\n"


def summary_exports(path: PathLike) -> Dict[str, pathlib.Path]:
    """Where :func:`write_summary` puts the CSV and Markdown beside the text summary ``path``."""
    path = pathlib.Path(path)
    return {"csv": path.with_suffix(".csv"), "md": path.with_suffix(".md")}


def write_summary(sweep: Mapping[str, Any], path: PathLike) -> str:
    """Write :func:`format_summary` to ``path`` and, beside it (:func:`summary_exports`), the
    CSV and Markdown exports, each atomically; returns the text."""
    text = format_summary(sweep)
    exports = summary_exports(path)
    atomic_write_text(exports["csv"], summary_csv(sweep))
    atomic_write_text(exports["md"], summary_markdown(sweep))
    atomic_write_text(path, text)
    return text
