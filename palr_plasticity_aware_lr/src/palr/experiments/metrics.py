"""Evaluation metrics over a run's result JSON: pure functions, no torch, any domain (docs/design.md#evaluation).

Per-run result JSON (``palr.run/1``, written by the runners; every domain uses it)::

    {
     "schema": "palr.run/1",
     "domain": "cartpole" | "jbw" | "cw" | ...,
     "agent": "PALR-DQN", "agent_idx": 4, "seed": 0,
     "config": {...flat-ish dict of every setting...},
     "score_name": "return" | "success",
     "score_threshold": 195.0,               # recovery threshold on the moving average (window 10)
     "tasks": [{"index": 0, "name": "default", "start_episode": 0, "end_episode": 100}, ...],  # task windows in episodes, end exclusive
     "episodes": {"return": [...], "score": [...], "task": [...], "env_step": [...]},
     "plasticity": {"update": [...], "env_step": [...], "layers": {"q.0": {"dead": [...], "dormant": [...], "erank": [...], "srank": [...], "weight_norm": [...], "grad_norm": [...], "lr_scale": [...], "reinit": [...]}, ...}},
     "evaluations": [{"env_step": 1234, "after_task": 0, "task_scores": [0.8, 0.1, ...],
                      "task_scores_deterministic": [1.0, 0.0, ...]}],   # optional (CW): mean success of EVERY task of the sequence (stochastic policy; the deterministic one's optional), evaluated at the end of task `after_task` or, with key "during_task", while that task was trained
     "reward_rate": {"window": 100000, "value": [...]},   # optional (JBW): reward per step over the trailing window, after every episode (reward_rate)
     "status": "finished" | "running", "wall_time_s": 12.3
    }

Missing values in plasticity lists are null (e.g. "dead" is null for non-ReLU layers).
An optional top-level ``"reference": true`` marks a single-task reference run (one task window)
whose per-task AUC is the baseline ``AUC^b`` of Continual World's forward transfer
(see :mod:`palr.experiments.summary`).

Metrics (docs/design.md#evaluation):

- recovery speed: episodes after each task switch until the window-10 moving average of the
  score, computed inside the new task's window only, reaches the domain's threshold; censored at
  the window length (flagged) when it never does;
- final performance: mean score over the last 10% (at least 10 episodes) of each task window;
- across seeds: percentile-bootstrap CI of the mean (Efron & Tibshirani 1993) and the
  interquartile mean (Agarwal et al. 2021, "Deep RL at the edge of the statistical precipice");
- reward rate (Jelly Bean World, Platanios et al. 2020): reward per env step over a trailing
  window of steps (:func:`reward_rate`);
- Continual World (Wolczyk et al. 2021, repo awarelab/continual_world,
  ``continualworld/results_processing/tables.py``), on the evaluation curve (every task's
  stochastic success at every evaluation): average performance (mean over tasks of the last 5
  evaluations at the end), forgetting (per task: the last 5 evaluations inside its own window
  minus the last 5 at the end) and forward transfer ``(AUC - AUC^b) / (1 - AUC^b)`` with AUC the
  task's mean success over the evaluations inside its own window and ``AUC^b`` that of a
  single-task reference run from scratch.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

__all__ = [
    "RUN_SCHEMA", "moving_average", "Recovery", "recovery_episodes", "final_performance",
    "bootstrap_ci", "iqm", "evaluation_task", "cw_final_scores", "cw_average_performance",
    "cw_forgetting", "cw_task_auc", "cw_window_evaluations", "cw_forward_transfer",
    "reward_rate",
]

RUN_SCHEMA = "palr.run/1"
ArrayLike = Union[Sequence[Optional[float]], np.ndarray]


def _as_float_array(values: ArrayLike) -> np.ndarray:
    """1-D float array; None becomes NaN."""
    arr = np.asarray([np.nan if v is None else v for v in values], dtype=float) \
        if not isinstance(values, np.ndarray) else values.astype(float, copy=False)
    if arr.ndim != 1:
        raise ValueError(f"expected a 1-D sequence of numbers, got shape {arr.shape}")
    return arr


def moving_average(values: ArrayLike, window: int = 10, min_periods: int = 1) -> np.ndarray:
    """Trailing moving average: ``out[i]`` = mean of the finite values in ``values[i-window+1:i+1]``.

    The first ``window - 1`` entries average the shorter prefix; an entry whose window holds fewer
    than ``min_periods`` finite values is NaN (``min_periods=window`` gives full windows only).
    """
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    if not 1 <= min_periods <= window:
        raise ValueError(f"min_periods must be in [1, window={window}], got {min_periods}")
    x = _as_float_array(values)
    finite = np.isfinite(x)
    csum = np.concatenate([[0.0], np.cumsum(np.where(finite, x, 0.0))])
    ccount = np.concatenate([[0], np.cumsum(finite)])
    idx = np.arange(len(x))
    lo = np.maximum(idx + 1 - window, 0)
    total = csum[idx + 1] - csum[lo]
    count = ccount[idx + 1] - ccount[lo]
    out = np.full(len(x), np.nan)
    ok = count >= min_periods
    out[ok] = total[ok] / count[ok]
    return out


def reward_rate(returns: ArrayLike, env_steps: ArrayLike, window: int) -> np.ndarray:
    """Reward per env step over the trailing ``window`` steps, after every episode.

    The reward rate of the Jelly Bean World paper (Platanios et al. 2020, section 5; upstream
    ``JellyBeanWorldExperiments`` plots the moving sum of the rewards over its reward-rate period,
    100,000 steps by default, divided by that period). Episode ``i`` ends at cumulative env step
    ``env_steps[i]`` and its return holds the rewards of steps ``(env_steps[i-1], env_steps[i]]``;
    ``out[i]`` is the sum of the returns of the episodes whose steps all lie in
    ``(env_steps[i] - window, env_steps[i]]``, divided by ``window``. As upstream, the divisor is
    always ``window``: before a whole window has passed, the missing steps count as zero reward.
    An episode that straddles the window's start is left out, so the rate is exact when
    ``window`` is a multiple of the episode length (the launchers require it).
    """
    if isinstance(window, bool) or int(window) != window or window < 1:
        raise ValueError(f"window must be a positive integer (env steps), got {window!r}")
    r = _as_float_array(returns)
    steps = np.asarray(env_steps, dtype=np.int64)
    if steps.shape != r.shape:
        raise ValueError(f"returns and env_steps differ in length ({len(r)} vs {steps.size})")
    starts = np.concatenate([[0], steps[:-1]])
    if np.any(steps <= starts):
        raise ValueError("env_steps must be increasing positive step counts (one per episode)")
    csum = np.concatenate([[0.0], np.cumsum(r)])
    first = np.searchsorted(starts, steps - int(window), side="left")  # first episode inside
    return (csum[1:] - csum[first]) / float(window)


def _task_window(task: Mapping[str, Any], n_episodes: int) -> Tuple[int, int]:
    """(start, end) of a task window clipped to the episodes recorded so far (end exclusive)."""
    try:
        start, end = int(task["start_episode"]), int(task["end_episode"])
    except KeyError as err:
        raise ValueError(f"task entry {dict(task)} lacks {err}; each task needs "
                         "'start_episode' and 'end_episode' (end exclusive)") from None
    if start < 0 or end < start:
        raise ValueError(f"bad task window [{start}, {end}): need 0 <= start_episode <= end_episode")
    return min(start, n_episodes), min(end, n_episodes)


@dataclass(frozen=True)
class Recovery:
    """Recovery after one task switch.

    Attributes:
        task: index (in the run's ``tasks`` list) of the task switched to.
        switch_episode: first episode of that task.
        episodes: episodes of the new task played when the moving average first reached the
            threshold (so at least ``min(window, window_length)``); ``window_length`` if censored.
        censored: True when the threshold was never reached inside the window.
        window_length: episodes of the new task recorded (the phase length for a finished run).
    """

    task: int
    switch_episode: int
    episodes: int
    censored: bool
    window_length: int

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def recovery_episodes(scores: ArrayLike, tasks: Sequence[Mapping[str, Any]], threshold: float,
                      window: int = 10) -> List[Recovery]:
    """Recovery speed per task switch (docs/design.md#evaluation; the original README's primary metric).

    For every task window after the first, the trailing moving average (``window`` episodes) of
    the score is computed over the new task's episodes only, so the previous task's episodes
    never count. Only full windows count (a window of ``min(window, window_length)`` episodes), so
    one lucky episode is not a recovery. The result is the number of new-task episodes played when
    that average first reaches ``threshold``; if it never does the switch is censored at the
    window length and flagged. Windows with no recorded episode (a run still going) are skipped.
    """
    x = _as_float_array(scores)
    out: List[Recovery] = []
    for i, task in enumerate(tasks):
        if i == 0:
            continue
        start, end = _task_window(task, len(x))
        length = end - start
        if length == 0:
            continue
        w = min(window, length)
        avg = moving_average(x[start:end], window=w, min_periods=w)
        hits = np.flatnonzero(avg >= threshold)
        if hits.size:
            out.append(Recovery(i, start, int(hits[0]) + 1, False, length))
        else:
            out.append(Recovery(i, start, length, True, length))
    return out


def final_performance(scores: ArrayLike, tasks: Sequence[Mapping[str, Any]],
                      fraction: float = 0.1, min_episodes: int = 10) -> List[float]:
    """Mean score over the last ``fraction`` (at least ``min_episodes``) of each task window.

    docs/design.md#evaluation / the original README's "mean reward in the final episode window of each task": the
    last ``max(min_episodes, ceil(fraction * L))`` episodes of a window of ``L`` episodes, or the
    whole window when it is shorter. NaN for a window with no recorded episode.
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    x = _as_float_array(scores)
    out: List[float] = []
    for task in tasks:
        start, end = _task_window(task, len(x))
        length = end - start
        if length == 0:
            out.append(float("nan"))
            continue
        n_last = min(length, max(min_episodes, int(math.ceil(fraction * length))))
        out.append(float(np.nanmean(x[end - n_last:end])) if np.isfinite(x[end - n_last:end]).any()
                   else float("nan"))
    return out


def _finite(values: ArrayLike) -> np.ndarray:
    x = _as_float_array(values)
    return x[np.isfinite(x)]


def bootstrap_ci(values: ArrayLike, confidence: float = 0.95, n_resamples: int = 4000,
                 seed: int = 0) -> Tuple[float, float]:
    """Percentile-bootstrap confidence interval of the mean (Efron & Tibshirani 1993, ch. 13).

    ``n_resamples`` resamples of the values with replacement; the interval is the
    ``(1-confidence)/2`` and ``(1+confidence)/2`` quantiles of their means (Continual World uses
    the same scheme with 4000 resamples at 90%). Non-finite values are dropped; one value gives a
    zero-width interval, none gives (NaN, NaN). Deterministic for a given ``seed``.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    x = _finite(values)
    if x.size == 0:
        return float("nan"), float("nan")
    if x.size == 1 or np.all(x == x[0]):
        return float(x.mean()), float(x.mean())   # x.mean(), not x[0]: equal to the reported mean
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.size, size=(n_resamples, x.size))
    means = x[idx].mean(axis=1)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return float(low), float(high)


def iqm(values: ArrayLike, fractional: bool = False) -> float:
    """Interquartile mean (Agarwal et al. 2021): the mean of the middle 50% of the values.

    Default (``fractional=False``) is rliable's ``aggregate_iqm``, i.e. ``scipy.stats.trim_mean``
    with ``proportiontocut=0.25``: ``floor(n/4)`` values are dropped at each end and the rest
    averaged with equal weight (so for n < 4 it equals the mean). ``fractional=True`` is the exact
    interquartile mean of the empirical distribution: every sorted value carries mass 1/n and
    counts with the part of its mass inside the quantile range [0.25, 0.75], so boundary values
    get fractional weights (n=3: (x1 + 4 x2 + x3) / 6). Non-finite values are dropped; NaN if none.
    """
    x = np.sort(_finite(values))
    n = x.size
    if n == 0:
        return float("nan")
    if not fractional:
        cut = int(0.25 * n)
        return float(x[cut:n - cut].mean())
    edges = np.arange(n + 1) / n
    weights = np.clip(np.minimum(edges[1:], 0.75) - np.maximum(edges[:-1], 0.25), 0.0, None)
    return float(np.dot(weights, x) / weights.sum())


# ----------------------------------------------------------------------------- Continual World


def evaluation_task(evaluation: Mapping[str, Any]) -> int:
    """The task being trained when an evaluation ran: ``during_task``, else ``after_task``."""
    for key in ("during_task", "after_task"):
        if evaluation.get(key) is not None:
            return int(evaluation[key])
    raise ValueError(f"evaluation at env_step {evaluation.get('env_step')} has neither "
                     "'after_task' nor 'during_task'")


def _evaluation_matrix(evals: Sequence[Mapping[str, Any]]) -> Tuple[np.ndarray, np.ndarray]:
    """(active task per evaluation, scores evaluations x tasks), in env-step order."""
    if len(evals) == 0:
        raise ValueError("no evaluations: Continual World metrics need the run's 'evaluations'")
    order = sorted(range(len(evals)), key=lambda k: (float(evals[k].get("env_step", k)), k))
    n_tasks = {len(e["task_scores"]) for e in evals}
    if len(n_tasks) != 1:
        raise ValueError(f"evaluations score different numbers of tasks {sorted(n_tasks)}; "
                         "every evaluation must score every task of the sequence")
    scores = np.asarray([[np.nan if s is None else s for s in evals[k]["task_scores"]]
                         for k in order], dtype=float)
    active = np.asarray([evaluation_task(evals[k]) for k in order], dtype=int)
    return active, scores


def _nanmean_columns(rows: np.ndarray) -> np.ndarray:
    """Column means ignoring NaN; NaN (no warning) for an all-NaN or empty column."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(rows, axis=0)


def cw_final_scores(evals: Sequence[Mapping[str, Any]], last_k: int = 5) -> List[float]:
    """Score of every task at the end of training (Wolczyk et al. 2021, ``calculate_data_at_the_end``).

    The mean of the last ``last_k`` evaluations (Continual World: ``tail(5)`` of the evaluation
    log), taken among those of the final training window (the task active at the chronologically
    last evaluation). With Continual World's protocol (50 evaluations per task) that is exactly
    ``tail(5)``; with fewer than ``last_k`` evaluations in the final window (short runs), "the
    end" stays the final window instead of reaching back into earlier tasks.
    """
    if last_k < 1:
        raise ValueError(f"last_k must be >= 1, got {last_k}")
    active, scores = _evaluation_matrix(evals)
    rows = scores[active == active[-1]][-last_k:]
    return [float(v) for v in _nanmean_columns(rows)]


def cw_average_performance(evals: Sequence[Mapping[str, Any]], last_k: int = 5) -> float:
    """Continual World's average performance: mean over tasks of :func:`cw_final_scores`."""
    return float(_nanmean_columns(np.asarray(cw_final_scores(evals, last_k))))


def cw_forgetting(evals: Sequence[Mapping[str, Any]], last_k: int = 5) -> List[float]:
    """Per-task forgetting (Wolczyk et al. 2021, ``calculate_forgetting_individual``).

    ``F_i`` = task i's score at the end of its own window (mean of the last ``last_k``
    evaluations made while task i was trained) minus its score at the end of training
    (:func:`cw_final_scores`). NaN for a task with no evaluation in its window. The final task's
    forgetting is 0 by construction; Continual World averages over all tasks, final one included.
    """
    active, scores = _evaluation_matrix(evals)
    final = np.asarray(cw_final_scores(evals, last_k))
    out: List[float] = []
    for i in range(scores.shape[1]):
        rows = scores[active == i][-last_k:, i]
        out.append(float(_nanmean_columns(rows[:, None])[0] - final[i]) if rows.size
                   else float("nan"))
    return out


def cw_task_auc(evals: Sequence[Mapping[str, Any]]) -> List[float]:
    """Per-task AUC of Continual World's forward transfer (``calculate_forward_transfer``).

    The mean of task i's own score over every evaluation made while task i was trained (the area
    under its curve, normalised by the window length): Continual World's ``current_success``
    averaged over the rows whose active task is i. NaN for a task never evaluated in its window.
    With evaluations only at task ends it is that one evaluation
    (:func:`cw_window_evaluations` says how many points each AUC has).
    """
    active, scores = _evaluation_matrix(evals)
    out: List[float] = []
    for i in range(scores.shape[1]):
        rows = scores[active == i, i]
        out.append(float(_nanmean_columns(rows[:, None])[0]) if rows.size else float("nan"))
    return out


def cw_window_evaluations(evals: Sequence[Mapping[str, Any]]) -> List[int]:
    """How many evaluations were made inside each task's window (the points of its AUC)."""
    active, scores = _evaluation_matrix(evals)
    return [int((active == i).sum()) for i in range(scores.shape[1])]


def cw_forward_transfer(auc_task: Union[float, ArrayLike],
                        auc_reference: Union[float, ArrayLike]) -> Union[float, np.ndarray]:
    """Normalised forward transfer ``FT = (AUC - AUC^b) / (1 - AUC^b)`` (Wolczyk et al. 2021).

    ``AUC`` is the task's mean success during its own window in the sequence, ``AUC^b`` that of a
    single-task agent trained from scratch on it (success rates in [0, 1]). NaN where
    ``AUC^b == 1`` (a reference that is always successful leaves nothing to transfer; Continual
    World's code would divide by zero). Scalars in, float out; arrays in, array out.
    """
    a = np.asarray(auc_task, dtype=float)
    b = np.asarray(auc_reference, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        ft = np.where(b < 1.0, (a - b) / (1.0 - b), np.nan)
    if ft.ndim == 0:
        return float(ft)
    return ft
