"""Figures of a sweep (``palr.sweep/1`` from :func:`palr.experiments.summary.merge_runs`), any domain.

Every figure is drawn on its own ``matplotlib.figure.Figure`` with the Agg canvas (no pyplot
global state, no display needed) and written atomically as PNG:

- ``learning_curves.png``: score moving average (window 10, inside each task window) per agent,
  mean across seeds with a percentile-bootstrap CI band, dashed lines at task switches; over env
  steps when the phases are counted in env steps (seeds then switch at different episodes);
- ``plasticity_dead.png`` / ``plasticity_erank.png`` / ``plasticity_feature_norm.png``: per-layer
  dead fraction / effective rank / feature norm over env steps, one panel per layer, one line
  (mean, CI band) per agent;
- ``value_and_capacity.png``: the value network's mean |Q| over env steps (log scale, the reward
  bound dashed) and the capacity-probe ratio trained/fresh at every task end;
- ``reward_rate.png`` (runs with a reward rate, Jelly Bean World): reward per env step over the
  trailing window against env steps, per agent (mean, CI band), task switches dashed: the
  paper's learning curves (Platanios et al. 2020);
- ``recovery.png``: recovery episodes per agent, bars = mean, error bars = CI, dots = seeds;
- ``cw_matrix.png`` (runs with evaluations): task x evaluation heatmap of the score, per agent,
  a red arrowhead on the task being trained at each evaluation.

Task switches are each run's own (:func:`switch_positions`): one grey dashed line per switch
when every run switches at (nearly: within half a percent of the axis) the same place; when runs
whose phases are counted in episodes switch at different env steps, a grey band per switch from
the first to the last run and each agent's median switch dotted in its colour. Legends sit to the
right of the axes, where they hide no curve. Mean curves cover the
span every seed has; a curve cut to its shortest seed, or ending before the other agents', says so
in its legend entry. Layer panels are titled by :func:`layer_labels` (``hidden 1 (q.0)``).

A figure with nothing to show (no switch, no plasticity log, no evaluation) is not written.
"""
from __future__ import annotations

import io
import math
import pathlib
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from palr.experiments.files import PathLike, atomic_write_bytes
from palr.experiments.metrics import evaluation_task, moving_average
from palr.experiments.records import OUTPUT_LAYER, is_network_level, metric_series, task_end_steps
from palr.experiments.summary import validate_sweep
from palr.experiments.verdict import reward_bound, value_network

__all__ = ["plot_learning_curves", "plot_plasticity", "plot_recovery", "plot_cw_matrix",
           "plot_value_and_capacity", "plot_reward_rate", "plot_all", "switch_positions",
           "layer_labels"]

_MAX_POINTS = 1500
_BAND_RESAMPLES = 1000


def _check(sweep: Mapping[str, Any]) -> None:
    """Plots need a usable palr.sweep/1 dict (ValueError naming the bad key otherwise)."""
    validate_sweep(sweep, "plots need a palr.sweep/1 dict (merge_runs)")


def _colors(sweep: Mapping[str, Any]) -> Dict[str, Any]:
    palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
               "#7f7f7f", "#bcbd22", "#17becf"]
    return {agent: palette[i % len(palette)] for i, agent in enumerate(sweep["agents"])}


def _runs_of(sweep: Mapping[str, Any], agent: str) -> List[Mapping[str, Any]]:
    return [r for r in sweep["runs"] if r["agent"] == agent]


def _save(fig: Figure, out_dir: PathLike, name: str) -> str:
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / name
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    atomic_write_bytes(path, buffer.getvalue())
    return str(path)


def _mean_band(curves: np.ndarray, confidence: float, seed: int = 0
               ) -> Tuple[np.ndarray, Optional[np.ndarray], Optional[np.ndarray]]:
    """Mean over seeds (rows) and a percentile-bootstrap band of that mean, per column.

    The same resampled seed sets serve every column (a multinomial weight matrix times the
    curves), so the band costs one matrix product. No band for a single seed.
    """
    n = curves.shape[0]
    mean = np.nanmean(curves, axis=0) if n > 1 else curves[0]
    if n < 2 or not np.isfinite(curves).all():
        return mean, None, None
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(n, np.full(n, 1.0 / n), size=_BAND_RESAMPLES) / n
    boot = weights @ curves
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(boot, [alpha, 1.0 - alpha], axis=0)
    return mean, low, high


def _thin(x: np.ndarray) -> np.ndarray:
    """Indices of at most ``_MAX_POINTS`` evenly spaced points."""
    if len(x) <= _MAX_POINTS:
        return np.arange(len(x))
    return np.unique(np.linspace(0, len(x) - 1, _MAX_POINTS).astype(int))


def _mean_line(ax: Any, grid: np.ndarray, stack: np.ndarray, confidence: float, color: Any,
               label: str) -> None:
    """One agent's curve: the mean of the seeds' rows of ``stack`` over ``grid`` (thinned) and
    its bootstrap band."""
    idx = _thin(grid)
    mean, low, high = _mean_band(stack[:, idx], confidence)
    ax.plot(grid[idx], mean, color=color, lw=1.6, label=label)
    if low is not None:
        ax.fill_between(grid[idx], low, high, color=color, alpha=0.2, lw=0)


def _per_task_moving_average(scores: Sequence[Optional[float]], tasks: Sequence[Mapping[str, Any]],
                             window: int) -> np.ndarray:
    x = np.asarray([np.nan if v is None else v for v in scores], dtype=float)
    out = moving_average(x, window)
    for task in tasks:
        start, end = min(int(task["start_episode"]), len(x)), min(int(task["end_episode"]), len(x))
        if end > start:
            out[start:end] = moving_average(x[start:end], window)
    return out


def _by_env_steps(sweep: Mapping[str, Any]) -> bool:
    """Whether the sweep's phases are counted in env steps (task windows with ``start_step``)."""
    tasks = sweep["runs"][0]["tasks"]
    return bool(tasks) and all("start_step" in t for t in tasks)


def _learning_curve(run: Mapping[str, Any], window: int, by_steps: bool
                    ) -> Tuple[np.ndarray, np.ndarray]:
    """(x, per-task moving average): x = episode index, or the env step at each episode's end."""
    curve = _per_task_moving_average(run["episodes"]["score"], run["tasks"], window)
    if not by_steps:
        return np.arange(len(curve), dtype=float), curve
    steps = np.asarray(run["episodes"].get("env_step") or [], dtype=float)[:len(curve)]
    return steps, curve[:len(steps)]


def _switch_x(run: Mapping[str, Any], by_steps: bool) -> List[float]:
    """Where one run's task switches are on the x axis: the env step at the end of every task
    but the last, or (``by_steps`` False) the first episode of every task but the first."""
    if by_steps:
        return _switch_steps(run)
    return [float(t["start_episode"]) for t in run["tasks"][1:]]


def switch_positions(sweep: Mapping[str, Any], by_steps: bool = True
                     ) -> Dict[Tuple[str, Any], List[float]]:
    """Each run's own task switches on the x axis (env steps, or episodes), by (agent, seed):
    what the figures draw, since runs whose phases are counted in episodes switch at different
    env steps."""
    return {(r["agent"], r["seed"]): _switch_x(r, by_steps) for r in sweep["runs"]}


#: switches of different runs closer than this fraction of the x range are drawn as one line
SWITCH_TOLERANCE = 0.005


def common_switches(positions: Mapping[Tuple[str, Any], Sequence[float]],
                    tolerance: float = SWITCH_TOLERANCE, span: Optional[float] = None
                    ) -> Optional[List[float]]:
    """The switches every run shares, or None: runs share them when they have as many switches
    and each switch differs across runs by at most ``tolerance`` of the x range (phases counted
    in env steps end at the first episode end past the budget, so runs differ by less than an
    episode); ``span``: the x range (default: the last switch); a shared switch is drawn at its
    median position."""
    rows = [list(xs) for xs in positions.values()]
    if not rows or len({len(xs) for xs in rows}) != 1:
        return None if rows else []
    if not rows[0]:
        return []
    table = np.asarray(rows, dtype=float)
    span = max(float(table.max()) if span is None else float(span), 1.0)
    if float((table.max(axis=0) - table.min(axis=0)).max()) > tolerance * span:
        return None
    return [float(x) for x in np.median(table, axis=0)]


def x_span(sweep: Mapping[str, Any], by_steps: bool = True) -> float:
    """The x range the runs cover: their last env step, or (``by_steps`` False) episode count."""
    ends = [float((r["episodes"].get("env_step") or [0])[-1]) if by_steps
            else float(len(r["episodes"]["score"])) for r in sweep["runs"]]
    return max(ends, default=0.0)


def _draw_switches(ax: Any, sweep: Mapping[str, Any], colors: Mapping[str, Any],
                   by_steps: bool = True) -> str:
    """Draw the task switches on ``ax``: one grey dashed line per switch when every run switches
    at (nearly) the same place (:func:`common_switches`); when runs have the same tasks but
    switch at different x (phases counted in episodes, drawn over env steps) a grey band per
    switch from the first to the last run and, dotted in its colour, each agent's median switch
    over its seeds; else each run's own switches as thin dotted lines in its agent's colour.
    Returns the words for the title."""
    positions = switch_positions(sweep, by_steps)
    shared = common_switches(positions, span=x_span(sweep, by_steps))
    if shared is not None:
        for x in shared:
            ax.axvline(x, color="0.35", ls="--", lw=0.9)
        return "dashed = task switch"
    rows = list(positions.values())
    if len({len(xs) for xs in rows}) == 1:  # same tasks, switched at different x
        table = np.asarray(rows, dtype=float)
        for low, high in zip(table.min(axis=0), table.max(axis=0)):
            ax.axvspan(low, high, color="0.5", alpha=0.12, lw=0)
        for agent in sweep["agents"]:
            own = [xs for (name, _seed), xs in positions.items() if name == agent]
            for x in (np.median(np.asarray(own, dtype=float), axis=0) if own else []):
                ax.axvline(float(x), color=colors[agent], ls=":", lw=1.0)
        return ("grey band = where the runs switch task (first to last run); dotted = each "
                "agent's median switch, in its colour")
    for (agent, _seed), xs in positions.items():
        for x in xs:
            ax.axvline(x, color=colors[agent], ls=":", lw=0.8, alpha=0.6)
    return "dotted = each run's own task switches, in its agent's colour"


def _coverage_note(ends: Sequence[float], shown: float, longest: float, unit: str) -> str:
    """What a legend says about where an agent's curve ends: that its seeds were cut to the
    shortest, or that it stops before other agents' curves; empty when neither."""
    notes = []
    if max(ends) > shown * (1 + SWITCH_TOLERANCE):  # not when they differ by an episode
        notes.append(f"seeds cut to the shortest, {shown:,.0f} {unit}")
    elif shown < longest * (1 - SWITCH_TOLERANCE):
        notes.append(f"ends at {shown:,.0f} {unit}")
    return "; ".join(notes)


def _label_with(agent: str, n: int, note: str) -> str:
    return f"{agent} (n={n}{'; ' + note if note else ''})"


def plot_learning_curves(sweep: Mapping[str, Any], out_dir: PathLike, window: int = 10) -> Optional[str]:
    """Score moving average per agent (mean across seeds, CI band), task switches dashed."""
    _check(sweep)
    colors, confidence = _colors(sweep), float(sweep.get("confidence", 0.95))
    by_steps = _by_env_steps(sweep)
    fig = Figure(figsize=(10, 5))
    ax = fig.add_subplot(1, 1, 1)
    lines = []
    for agent in sweep["agents"]:
        runs = _runs_of(sweep, agent)
        curves = [c for c in (_learning_curve(r, window, by_steps) for r in runs) if c[0].size]
        if not curves:
            continue
        if by_steps:
            grid, stack = _on_common_grid(curves)
        else:
            length = min(len(y) for _, y in curves)
            grid, stack = np.arange(length, dtype=float), np.vstack([y[:length] for _, y in curves])
        ends = [float(x[-1]) if by_steps else float(len(x) - 1) for x, _ in curves]
        lines.append((agent, len(runs), grid, stack, ends))
    if not lines:
        return None
    longest = max(float(grid[-1]) for _, _, grid, _, _ in lines)
    unit = "steps" if by_steps else "episodes"
    for agent, n, grid, stack, ends in lines:
        note = _coverage_note(ends, float(grid[-1]), longest, unit)
        _mean_line(ax, grid, stack, confidence, colors[agent], _label_with(agent, n, note))
    switches = _draw_switches(ax, sweep, colors, by_steps)
    tasks = sweep["runs"][0]["tasks"]
    if len(tasks) <= 12 and switches.startswith("dashed"):
        starts = [0.0] + (common_switches(switch_positions(sweep, by_steps),
                                          span=x_span(sweep, by_steps)) or [])
        for x, task in zip(starts, tasks):
            ax.annotate(str(task.get("name", task.get("index", ""))), xy=(x, 1.0),
                        xycoords=("data", "axes fraction"), xytext=(3, -12),
                        textcoords="offset points", fontsize=8, color="0.3")
    threshold = sweep.get("score_threshold")
    if threshold is not None:
        ax.axhline(float(threshold), color="0.5", ls=":", lw=1, label=f"threshold {threshold:g}")
    ax.set_xlabel("env step" if by_steps else "episode")
    ax.set_ylabel(f"{sweep.get('score_name', 'score')} ({window}-episode moving average)")
    return _save_curves(fig, ax, f"{sweep['domain']}: learning curves", confidence, out_dir,
                        "learning_curves.png", switches)


def _save_curves(fig: Figure, ax: Any, title: str, confidence: float, out_dir: PathLike,
                 name: str, switches: str) -> str:
    """Title (with what the lines, bands and switch lines are), grid and legend of a curves
    figure; saved."""
    pct = int(round(100 * confidence))
    ax.set_title(f"{title} (mean across seeds, {pct}% bootstrap CI;\n{switches})", fontsize=10)
    ax.grid(alpha=0.3)
    outside_legend(fig, ax)
    return _save(fig, out_dir, name)


def outside_legend(fig: Figure, ax: Any, handles: Optional[Sequence[Any]] = None,
                   labels: Optional[Sequence[str]] = None, fontsize: int = 8,
                   top: float = 1.0) -> None:
    """The legend to the right of the axes, where it hides no curve and no task label; the
    figure is widened by the legend's width so the axes keep their size."""
    if handles is None:
        handles, labels = ax.get_legend_handles_labels()
    if not handles:
        fig.tight_layout(rect=(0, 0, 1, top))
        return
    legend = fig.legend(handles, labels, fontsize=fontsize, loc="upper left", frameon=False,
                        borderaxespad=0.2)
    width, height = fig.get_size_inches()
    extra = legend.get_window_extent(FigureCanvasAgg(fig).get_renderer()).width / fig.dpi + 0.3
    fig.set_size_inches(width + extra, height)
    share = width / (width + extra)
    fig.tight_layout(rect=(0, 0, share, top))
    legend.set_bbox_to_anchor((share, ax.get_position().y1), transform=fig.transFigure)


def plot_reward_rate(sweep: Mapping[str, Any], out_dir: PathLike) -> Optional[str]:
    """Reward rate over env steps per agent (mean across seeds, CI band), switches dashed."""
    _check(sweep)
    colors, confidence = _colors(sweep), float(sweep.get("confidence", 0.95))
    fig = Figure(figsize=(10, 5))
    ax = fig.add_subplot(1, 1, 1)
    windows = set()
    lines = []
    for agent in sweep["agents"]:
        runs = [r for r in _runs_of(sweep, agent) if (r.get("reward_rate") or {}).get("value")]
        if not runs:
            continue
        windows.update(int(r["reward_rate"]["window"]) for r in runs)
        series = [(np.asarray(r["episodes"]["env_step"], dtype=float),
                   np.asarray(r["reward_rate"]["value"], dtype=float)) for r in runs]
        grid, stack = _on_common_grid(series)
        lines.append((agent, len(runs), grid, stack, [float(x[-1]) for x, _ in series]))
    if not windows:
        return None
    longest = max(float(grid[-1]) for _, _, grid, _, _ in lines)
    for agent, n, grid, stack, ends in lines:
        note = _coverage_note(ends, float(grid[-1]), longest, "steps")
        _mean_line(ax, grid, stack, confidence, colors[agent], _label_with(agent, n, note))
    switches = _draw_switches(ax, sweep, colors)
    ax.axhline(0.0, color="0.5", ls=":", lw=1)
    ax.set_xlabel("env step")
    ax.set_ylabel(f"reward per step over the last {' / '.join(f'{w:,}' for w in sorted(windows))}"
                  " steps")
    return _save_curves(fig, ax, f"{sweep['domain']}: reward rate", confidence, out_dir,
                        "reward_rate.png", switches)


def _layer_names(sweep: Mapping[str, Any]) -> List[str]:
    """Every probed layer of the sweep's runs (network-level pseudo-layers left out), each
    network's layers in module order (``q.2`` before ``q.10``)."""
    names: List[str] = []
    for run in sweep["runs"]:
        for name in ((run.get("plasticity") or {}).get("layers") or {}):
            if name not in names and not is_network_level(name):
                names.append(name)
    first = {}
    for name in names:
        first.setdefault(_module_parent(name), len(first))
    return sorted(names, key=lambda n: (first[_module_parent(n)], _natural_key(n)))


def _natural_key(name: str) -> Tuple[Any, ...]:
    """``q.10`` after ``q.2``: numeric parts of a module path compared as numbers."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part)
                 for part in name.split("."))


def _module_parent(name: str) -> str:
    """The module holding a layer: its path without the last part (``critic.q1`` for
    ``critic.q1.2``), or the name itself at the top level."""
    return name.rsplit(".", 1)[0] if "." in name else name


def layer_labels(names: Sequence[str]) -> Dict[str, str]:
    """A reader's name for every layer name of a run's plasticity log: ``hidden k (<name>)``,
    k counting the probed layers of the same module in module order (``q.0`` -> ``hidden 1
    (q.0)``, ``q.2`` -> ``hidden 2 (q.2)``), and ``output (<net>)`` for a network's
    network-level values (mean |output|, capacity probe). Derived from the module names alone,
    so it holds for every agent and network."""
    labels: Dict[str, str] = {}
    by_parent: Dict[str, List[str]] = {}
    for name in names:
        if is_network_level(name):
            labels[name] = f"output ({name.split('.', 1)[0]})"
        else:
            by_parent.setdefault(_module_parent(name), []).append(name)
    for members in by_parent.values():
        for k, name in enumerate(sorted(members, key=_natural_key)):
            labels[name] = f"hidden {k + 1} ({name})"
    return labels


def _on_common_grid(series: List[Tuple[np.ndarray, np.ndarray]]) -> Tuple[np.ndarray, np.ndarray]:
    """Seeds' series on one x grid: as they are if identical, else interpolated on the overlap."""
    first = series[0][0]
    if all(len(x) == len(first) and np.array_equal(x, first) for x, _ in series):
        return first, np.vstack([y for _, y in series])
    lo, hi = max(x[0] for x, _ in series), min(x[-1] for x, _ in series)
    grid = np.unique(np.concatenate([x[(x >= lo) & (x <= hi)] for x, _ in series]))
    if grid.size == 0:
        grid = series[0][0]
        return grid, series[0][1][None, :]
    return grid, np.vstack([np.interp(grid, x, y) for x, y in series])


def _switch_steps(run: Mapping[str, Any]) -> List[float]:
    """Env step of each task switch: the end of every task but the last."""
    return [step for step in task_end_steps(run)[:-1] if step is not None]


def plot_plasticity(sweep: Mapping[str, Any], out_dir: PathLike,
                    keys: Sequence[str] = ("dead", "erank", "feature_norm")) -> List[str]:
    """Per-layer curves over env steps, one figure per metric, one panel per layer, line per agent."""
    _check(sweep)
    layers = _layer_names(sweep)
    if not layers:
        return []
    colors, confidence = _colors(sweep), float(sweep.get("confidence", 0.95))
    labels = {"dead": "dead fraction", "erank": "effective rank", "dormant": "tau-dormant fraction",
              "srank": "srank (delta 0.01)", "lr_scale": "PALR lr scale",
              "feature_norm": "feature norm"}
    titles = layer_labels(layers)
    written = []
    for key in keys:
        ncols = min(4, len(layers))
        nrows = int(math.ceil(len(layers) / ncols))
        fig = Figure(figsize=(3.6 * ncols + 0.8, 2.9 * nrows + 1.1))
        handles: Dict[str, Any] = {}
        coverage: Dict[str, Tuple[int, float, List[float]]] = {}
        empty_axes, x_range = [], [math.inf, -math.inf]
        switches = ""
        for k, layer in enumerate(layers):
            ax = fig.add_subplot(nrows, ncols, k + 1)
            any_line = False
            for agent in sweep["agents"]:
                series = [s for s in (metric_series(r, layer, key) for r in _runs_of(sweep, agent)) if s[0].size]
                if not series:
                    continue
                grid, stack = _on_common_grid(series)
                mean, low, high = _mean_band(stack, confidence)
                (line,) = ax.plot(grid, mean, color=colors[agent], lw=1.4, label=agent)
                x_range = [min(x_range[0], float(grid[0])), max(x_range[1], float(grid[-1]))]
                handles.setdefault(agent, line)
                coverage.setdefault(agent, (len(series), float(grid[-1]),
                                            [float(x[-1]) for x, _ in series]))
                if low is not None:
                    ax.fill_between(grid, low, high, color=colors[agent], alpha=0.2, lw=0)
                any_line = True
            switches = _draw_switches(ax, sweep, colors)
            if not any_line:
                empty_axes.append(ax)
                why = ("not applicable\n(no exactly-zero activations,\ne.g. leaky ReLU / tanh)"
                       if key == "dead" else "no data")
                ax.text(0.5, 0.5, why, ha="center", va="center", transform=ax.transAxes,
                        fontsize=9, color="0.4")
            ax.set_title(titles[layer], fontsize=9)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
            if k // ncols == nrows - 1:
                ax.set_xlabel("env step", fontsize=8)
            if k % ncols == 0:
                ax.set_ylabel(labels.get(key, key), fontsize=8)
        if math.isfinite(x_range[0]):
            for ax in empty_axes:
                ax.set_xlim(*x_range)
        if handles:
            longest = max(shown for _, shown, _ in coverage.values())
            names = [_label_with(a, n, _coverage_note(ends, shown, longest, "steps"))
                     for a, (n, shown, ends) in coverage.items()]
        pct = int(round(100 * confidence))
        fig.suptitle(f"{sweep['domain']}: {labels.get(key, key)} per layer (mean across seeds, "
                     f"{pct}% bootstrap CI)\n{switches}", fontsize=10)
        if handles:
            outside_legend(fig, fig.axes[0], list(handles.values()), names, fontsize=7, top=0.93)
        else:
            fig.tight_layout(rect=(0, 0, 1, 0.93))
        if handles or key in ("dead", "erank"):  # a metric no run logged gets no figure
            written.append(_save(fig, out_dir, f"plasticity_{key}.png"))
    return written


def _probe_ratios(run: Mapping[str, Any], net: str) -> Tuple[np.ndarray, np.ndarray]:
    """(task-end index 0, 1, ..., trained/fresh probe residual) of one run's network."""
    layer = f"{net}.{OUTPUT_LAYER}"
    s_t, trained = metric_series(run, layer, "probe_residual")
    s_f, fresh = metric_series(run, layer, "probe_residual_fresh")
    common = np.intersect1d(s_t, s_f)
    ratio = trained[np.isin(s_t, common)] / np.maximum(fresh[np.isin(s_f, common)], 1e-12)
    return np.arange(ratio.size, dtype=float), ratio


def plot_value_and_capacity(sweep: Mapping[str, Any], out_dir: PathLike) -> Optional[str]:
    """Left: the value network's mean |Q| over env steps (log scale; the reward bound dashed).
    Right: the capacity-probe ratio trained/fresh at every task end (1 = as plastic as fresh)."""
    _check(sweep)
    colors, confidence = _colors(sweep), float(sweep.get("confidence", 0.95))
    fig = Figure(figsize=(12, 4.6))
    ax_q, ax_p = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    drawn = False
    for agent in sweep["agents"]:
        runs = _runs_of(sweep, agent)
        net = value_network(runs[0]) if runs else None
        if net is None:
            continue
        for ax, series in ((ax_q, [metric_series(r, f"{net}.{OUTPUT_LAYER}", "output_abs")
                                   for r in runs]),
                           (ax_p, [_probe_ratios(r, net) for r in runs])):
            series = [s for s in series if s[0].size]
            if not series:
                continue
            if ax is ax_p:
                length = min(len(x) for x, _ in series)
                grid, stack = series[0][0][:length], np.vstack([y[:length] for _, y in series])
            else:
                grid, stack = _on_common_grid(series)
            mean, low, high = _mean_band(stack, confidence)
            ax.plot(grid, mean, color=colors[agent], lw=1.5, label=f"{agent} [{net}]",
                    marker="o" if ax is ax_p else None, ms=3)
            if low is not None:
                ax.fill_between(grid, low, high, color=colors[agent], alpha=0.2, lw=0)
            drawn = True
    if not drawn:
        return None
    bound = reward_bound(sweep["runs"][0])
    if bound is not None:
        ax_q.axhline(bound, color="0.3", ls="--", lw=1, label=f"reward bound {bound:g}")
    switches = _draw_switches(ax_q, sweep, colors)
    ax_q.set_yscale("log")
    ax_q.set_xlabel("env step")
    ax_q.set_ylabel("mean |Q| on the diagnostic batch")
    ax_p.axhline(1.0, color="0.3", ls="--", lw=1)
    ax_p.set_xlabel("end of task")
    ax_p.set_ylabel("capacity-probe residual, trained / fresh")
    for ax in (ax_q, ax_p):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="best")
    pct = int(round(100 * confidence))
    fig.suptitle(f"{sweep['domain']}: value magnitude and capacity (mean across seeds, {pct}% "
                 f"bootstrap CI; ratio > 1 = less able to fit a new function than a fresh net)"
                 f"\nleft: {switches}",
                 fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    return _save(fig, out_dir, "value_and_capacity.png")


def plot_recovery(sweep: Mapping[str, Any], out_dir: PathLike) -> Optional[str]:
    """Recovery episodes per agent: bar = mean over seeds, error bar = CI, dots = seeds."""
    _check(sweep)
    agents = [a for a in sweep["agents"]
              if sweep["summary"][a].get("recovery_episodes", {}).get("n", 0) > 0]
    if not agents:
        return None
    colors = _colors(sweep)
    pct = int(round(100 * float(sweep.get("confidence", 0.95))))
    fig = Figure(figsize=(max(4.5, 1.3 * len(agents) + 2), 4.6))
    ax = fig.add_subplot(1, 1, 1)
    rng = np.random.default_rng(0)
    for i, agent in enumerate(agents):
        e = sweep["summary"][agent]["recovery_episodes"]
        err = np.clip(np.array([[e["mean"] - e["ci_low"]], [e["ci_high"] - e["mean"]]]), 0.0, None)
        ax.bar(i, e["mean"], color=colors[agent], alpha=0.75, width=0.65)
        ax.errorbar(i, e["mean"], yerr=err, color="k", capsize=6, lw=1.3)
        values = np.asarray([np.nan if v is None else v for v in e["values"]], dtype=float)
        values = values[np.isfinite(values)]
        ax.scatter(i + rng.uniform(-0.15, 0.15, values.size), values, s=14, color="k", zorder=3)
        ax.annotate(f"censored {e['censored']}/{e['switches']}", xy=(i, e["ci_high"]),
                    xytext=(0, 4), textcoords="offset points", ha="center", fontsize=8)
    ax.set_xticks(range(len(agents)))
    ax.set_xticklabels(agents, rotation=20 if len(agents) > 3 else 0, ha="right" if len(agents) > 3 else "center",
                       fontsize=8)
    ax.set_ylabel("episodes to recover after a switch")
    ax.set_ylim(0, ax.get_ylim()[1] * 1.08)
    threshold = sweep.get("score_threshold")
    ax.set_title(f"{sweep['domain']}: recovery speed (10-episode moving avg >= {threshold:g}; "
                 "lower is better)\n"
                 f"bar = mean over seeds, {pct}% bootstrap CI, dots = seeds", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return _save(fig, out_dir, "recovery.png")


def _evaluation_matrix(run: Mapping[str, Any]) -> Tuple[np.ndarray, List[str]]:
    """(tasks x evaluations) scores in env-step order and one column label per evaluation."""
    evals = sorted(run.get("evaluations") or [], key=lambda e: float(e.get("env_step", 0)))
    matrix = np.asarray([[np.nan if s is None else s for s in e["task_scores"]] for e in evals],
                        dtype=float).T
    labels = [f"T{e['after_task']}" if e.get("during_task") is None and e.get("after_task") is not None
              else "" for e in evals]
    return matrix, labels


def plot_cw_matrix(sweep: Mapping[str, Any], out_dir: PathLike) -> Optional[str]:
    """Per agent, the task x evaluation heatmap of the score (mean across seeds)."""
    _check(sweep)
    panels = []
    for agent in sweep["agents"]:
        mats = [_evaluation_matrix(r) for r in _runs_of(sweep, agent) if r.get("evaluations")]
        if not mats:
            continue
        n_eval = min(m.shape[1] for m, _ in mats)
        n_task = min(m.shape[0] for m, _ in mats)
        with np.errstate(all="ignore"):
            mean = np.nanmean(np.stack([m[:n_task, :n_eval] for m, _ in mats]), axis=0) \
                if len(mats) > 1 else mats[0][0][:n_task, :n_eval]
        active = [evaluation_task(e) for e in sorted(_runs_of(sweep, agent)[0].get("evaluations") or [],
                                                       key=lambda e: float(e.get("env_step", 0)))]
        panels.append((agent, mean, mats[0][1][:n_eval], len(mats), active[:n_eval]))
    if not panels:
        return None
    success = sweep.get("score_name") == "success"
    finite = np.concatenate([p[1][np.isfinite(p[1])] for p in panels])
    vmin, vmax = (0.0, 1.0) if success or finite.size == 0 else (float(finite.min()), float(finite.max()))
    tasks = sweep["runs"][0]["tasks"]
    ncols = min(3, len(panels))
    nrows = int(math.ceil(len(panels) / ncols))
    n_task = max(p[1].shape[0] for p in panels)
    fig = Figure(figsize=(4.8 * ncols + 1.2, 0.32 * n_task * nrows + 2.2 * nrows + 0.6))
    image = None
    for k, (agent, mean, labels, n_seeds, active) in enumerate(panels):
        ax = fig.add_subplot(nrows, ncols, k + 1)
        image = ax.imshow(mean, aspect="auto", cmap="viridis", vmin=vmin, vmax=vmax,
                          interpolation="nearest")
        rows, cols = mean.shape
        if rows <= 12 and cols <= 12:
            for r in range(rows):
                for c in range(cols):
                    if np.isfinite(mean[r, c]):
                        ax.text(c, r, f"{mean[r, c]:.2f}", ha="center", va="center", fontsize=6,
                                color="w" if mean[r, c] < (vmin + vmax) / 2 else "k")
        _mark_trained_task(ax, active, rows)
        names = [str(t.get("name", i)) for i, t in enumerate(tasks)] if len(tasks) == rows \
            else [str(i) for i in range(rows)]
        ax.set_yticks(range(rows))
        # task names on the first panel of a row only: longer ones ran into the panel beside it
        ax.set_yticklabels([f"{i}:{n}" for i, n in enumerate(names)] if k % ncols == 0 else [],
                           fontsize=6)
        if any(labels) and cols <= 40:
            ax.set_xticks(range(cols))
            ax.set_xticklabels(labels, fontsize=6, rotation=90)
        ax.set_xlabel("evaluation (T<k> = end of task k)", fontsize=8)
        ax.set_title(f"{agent} (n={n_seeds})", fontsize=9)
    fig.colorbar(image, ax=fig.axes, fraction=0.025, pad=0.02).set_label(sweep.get("score_name", "score"))
    fig.suptitle(f"{sweep['domain']}: score of every task at each evaluation "
                 "(red arrowhead = task being trained)", fontsize=10)
    return _save(fig, out_dir, "cw_matrix.png")


#: how the CW matrix marks the task being trained at each evaluation
TRAINED_TASK_MARKER = dict(marker=">", ms=7, color="#ff3b30", markeredgecolor="white",
                           markeredgewidth=1.0, ls="none")


def _mark_trained_task(ax: Any, active: Sequence[int], rows: int) -> None:
    """Mark, in every evaluation's column, the row of the task being trained: a red arrowhead at
    the cell's left edge (never a cell outline, which reads as a grid line), joined by a thin red
    line so the training order shows as a staircase."""
    cells = [(c, t) for c, t in enumerate(active) if 0 <= t < rows]
    if not cells:
        return
    cols, tasks = zip(*cells)
    ax.step(cols, tasks, where="mid", color="#ff3b30", lw=1.0, alpha=0.7)
    ax.plot([c - 0.32 for c in cols], tasks, label="task being trained", **TRAINED_TASK_MARKER)


def plot_all(sweep: Mapping[str, Any], out_dir: PathLike) -> List[str]:
    """Every figure that has something to show; returns the paths written."""
    paths: List[str] = []
    for path in (plot_learning_curves(sweep, out_dir), plot_reward_rate(sweep, out_dir)):
        if path:
            paths.append(path)
    paths += plot_plasticity(sweep, out_dir)
    for path in (plot_value_and_capacity(sweep, out_dir), plot_recovery(sweep, out_dir),
                 plot_cw_matrix(sweep, out_dir)):
        if path:
            paths.append(path)
    return paths
