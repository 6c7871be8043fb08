"""The verdict of a sweep: does the baseline lose plasticity here, and does each agent change it?

Per run, the run is cut into segments: its task windows when it has at least 3 tasks, else
:data:`BLOCKS` equal blocks of env steps (a run without switches, e.g. the priming check). Per
run and agent:

- ``early``: the mean over the first two segments of each segment's mean score (return);
  ``late``: the same over the last third of the segments (at least one); ``change = late -
  early``. Segments weigh equally whatever their episode count: in phases counted in env steps a
  poorly performing phase has many short episodes, and pooling episodes would weigh it more.
  Every segment is as hard as the first on the permuted testbed, so a negative change is learning
  that got worse with time.
- segment ends: the mean score of the last :data:`END_EPISODES` episodes of each segment, what
  the agent had learned of it by its end (a continual-learning task's final performance);
  ``first_end`` (the first segment, learned from scratch), ``late_end`` (mean over the last third)
  and ``end_change = late_end - first_end``. The segment means above also count the learning
  inside each segment; the ends compare what was reached.
- probe ratio: capacity-probe residual of the trained network over that of a fresh one
  (:mod:`palr.capacity_probe`), mean over the probes taken at the ends of the late segments;
- trends of the value network (``q``, else a ``critic``, else the first network): effective rank
  (mean over its layers) and mean |Q| (``output_abs``), mean over the measurements inside the early
  and inside the late segments;
- value divergence: the late mean |Q| above the bound on true values ``max_reward / (1 - gamma)``
  (from the run's config). A collapse with |Q| beyond the bound is value divergence (the deadly
  triad; van Hasselt et al. 2018), reported apart from loss of plasticity.

Across seeds: the mean with a 95% percentile-bootstrap CI (``scipy.stats.bootstrap``). Against the
baseline (agent index 0, FixedLR) on the seeds both have: the paired difference of ``late`` and of
``change`` with a bootstrap CI of its mean, and the probability of improvement ``P(X > Y)`` of
Agarwal et al. 2021 ("Deep RL at the edge of the statistical precipice"; rliable's definition:
the Mann-Whitney U statistic over ``n x m``, ties counting half, ``scipy.stats.mannwhitneyu``).

The words: the baseline "loses plasticity" when its change or its end change has a CI below 0 and,
without value divergence, its probe ratio's CI lies above 1 or its effective rank falls; an agent
"changes it" when its paired difference in late return has a CI that excludes 0. A claim needs at
least two seeds (one seed has no interval).
"""
from __future__ import annotations

import inspect
import math
import textwrap
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
from scipy import stats

from palr.experiments.records import OUTPUT_LAYER, metric_series
from palr.experiments.text_tables import TABLE_WIDTH, split_table

#: equal env-step blocks of a run with fewer than 3 task windows
BLOCKS = 6
CONFIDENCE = 0.95
N_RESAMPLES = 4000
BASELINE_INDEX = 0

Interval = Dict[str, float]


# ----------------------------------------------------------------------------- statistics


def _bootstrap_kwargs(seed: int) -> Dict[str, Any]:
    generator = np.random.default_rng(seed)
    if "rng" in inspect.signature(stats.bootstrap).parameters:  # scipy >= 1.15
        return {"rng": generator}
    return {"random_state": generator}


def mean_ci(values: Sequence[float], confidence: float = CONFIDENCE, seed: int = 0) -> Interval:
    """``{"mean", "ci_low", "ci_high", "n"}`` of the finite values: percentile bootstrap
    (``scipy.stats.bootstrap``); one value gives a zero-width interval, none NaNs."""
    x = np.asarray([v for v in values if v is not None and math.isfinite(float(v))], dtype=float)
    if x.size == 0:
        return {"mean": float("nan"), "ci_low": float("nan"), "ci_high": float("nan"), "n": 0}
    mean = float(x.mean())
    if x.size == 1 or np.all(x == x[0]):
        return {"mean": mean, "ci_low": mean, "ci_high": mean, "n": int(x.size)}
    result = stats.bootstrap((x,), np.mean, confidence_level=confidence, n_resamples=N_RESAMPLES,
                             method="percentile", **_bootstrap_kwargs(seed))
    ci = result.confidence_interval
    return {"mean": mean, "ci_low": float(ci.low), "ci_high": float(ci.high), "n": int(x.size)}


def probability_of_improvement(x: Sequence[float], y: Sequence[float]) -> float:
    """``P(X > Y) + P(X = Y) / 2`` over all pairs (Agarwal et al. 2021)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.size == 0 or y.size == 0:
        return float("nan")
    return float(stats.mannwhitneyu(x, y).statistic) / (x.size * y.size)


# ----------------------------------------------------------------------------- one run


def segments(run: Mapping[str, Any]) -> List[Tuple[int, int]]:
    """(start, end) episode index of every segment (module docstring), end exclusive."""
    n = len(run["episodes"]["score"])
    tasks = run.get("tasks") or []
    if len(tasks) >= 3:
        return [(min(int(t["start_episode"]), n), min(int(t["end_episode"]), n)) for t in tasks]
    steps = np.asarray(run["episodes"].get("env_step") or [], dtype=float)
    if steps.size == 0:
        return [(0, n)]
    edges = np.linspace(0.0, steps[-1], BLOCKS + 1)[1:-1]
    cuts = [0] + [int(np.searchsorted(steps, e, side="right")) for e in edges] + [n]
    return list(zip(cuts[:-1], cuts[1:]))


def late_count(n_segments: int) -> int:
    """How many segments make up "the last third" (at least one)."""
    return max(1, n_segments // 3)


def _segment_steps(run: Mapping[str, Any], segs: Sequence[Tuple[int, int]]
                   ) -> List[Tuple[float, float]]:
    """Env-step range (previous segment's end, this segment's end] of every segment."""
    steps = run["episodes"].get("env_step") or []
    out, last = [], 0.0
    for start, end in segs:
        top = float(steps[end - 1]) if end > start and end <= len(steps) else last
        out.append((last, top))
        last = top
    return out


def value_network(run: Mapping[str, Any]) -> Optional[str]:
    """The network whose outputs are values: ``q``, else the first ``critic``/``value`` network."""
    nets = sorted({name.split(".", 1)[0] for name in
                   ((run.get("plasticity") or {}).get("layers") or {})})
    if "q" in nets:
        return "q"
    for net in nets:
        if "critic" in net or "value" in net:
            return net
    return nets[0] if nets else None


def _net_series(run: Mapping[str, Any], net: str, key: str) -> Tuple[np.ndarray, np.ndarray]:
    """(env_step, value) of ``key`` for network ``net``: its layers' mean per measurement."""
    layers = [name for name in ((run.get("plasticity") or {}).get("layers") or {})
              if name.split(".", 1)[0] == net]
    by_step: Dict[float, List[float]] = {}
    for layer in layers:
        steps, values = metric_series(run, layer, key)
        for s, v in zip(steps, values):
            by_step.setdefault(float(s), []).append(float(v))
    if not by_step:
        return np.zeros(0), np.zeros(0)
    keys = sorted(by_step)
    return np.asarray(keys), np.asarray([np.mean(by_step[k]) for k in keys])


def _mean_in(steps: np.ndarray, values: np.ndarray, ranges: Sequence[Tuple[float, float]]) -> float:
    inside = np.zeros(steps.shape, dtype=bool)
    for low, high in ranges:
        inside |= (steps > low) & (steps <= high)
    return float(values[inside].mean()) if inside.any() else float("nan")


def _mean_score(scores: Sequence[Optional[float]], segs: Sequence[Tuple[int, int]]) -> float:
    x = [float(v) for start, end in segs for v in scores[start:end] if v is not None]
    return float(np.mean(x)) if x else float("nan")


#: episodes at the end of a segment whose mean score is the segment's end score
END_EPISODES = 10


def _end_score(scores: Sequence[Optional[float]], seg: Tuple[int, int]) -> float:
    start, end = seg
    return _mean_score(scores, [(max(start, end - END_EPISODES), end)])


def _mean_of_segments(means: Sequence[float]) -> float:
    """The mean of the segments' mean scores, each segment weighing the same (NaN: none)."""
    finite = [m for m in means if math.isfinite(m)]
    return float(np.mean(finite)) if finite else float("nan")


def reward_bound(run: Mapping[str, Any]) -> Optional[float]:
    """``max_reward / (1 - gamma)`` from the run's config; None when either is unknown."""
    config = run.get("config") or {}
    max_reward = config.get("max_reward")
    gamma = (config.get("dqn") or config.get("sac") or {}).get("gamma", config.get("gamma"))
    if max_reward is None or gamma is None or float(gamma) >= 1.0:
        return None
    return float(max_reward) / (1.0 - float(gamma))


def run_verdict_values(run: Mapping[str, Any]) -> Dict[str, Any]:
    """Per-run values of the module docstring (NaN where a run has no such measurement)."""
    segs = segments(run)
    n_late = late_count(len(segs))
    scores = run["episodes"]["score"]
    out: Dict[str, Any] = {"segments": len(segs), "late_segments": n_late,
                           "segment_scores": [_mean_score(scores, [s]) for s in segs]}
    out["early"] = _mean_of_segments(out["segment_scores"][:2])
    out["late"] = _mean_of_segments(out["segment_scores"][-n_late:])
    out["change"] = out["late"] - out["early"]
    ends = [_end_score(scores, seg) for seg in segs]
    out["segment_end_scores"] = ends
    out["first_end"] = ends[0] if ends else float("nan")
    out["late_end"] = _mean_of_segments(ends[-n_late:])
    out["end_change"] = out["late_end"] - out["first_end"]
    ranges = _segment_steps(run, segs)
    early_ranges, late_ranges = ranges[:2], ranges[-n_late:]
    net = value_network(run)
    out["network"] = net
    for key in ("erank", "output_abs"):
        steps, values = _net_series(run, net, key) if net else (np.zeros(0), np.zeros(0))
        out[f"{key}_early"] = _mean_in(steps, values, early_ranges)
        out[f"{key}_late"] = _mean_in(steps, values, late_ranges)
    ratio = float("nan")
    if net is not None:
        layer = f"{net}.{OUTPUT_LAYER}"
        s_t, trained = metric_series(run, layer, "probe_residual")
        s_f, fresh = metric_series(run, layer, "probe_residual_fresh")
        common = np.intersect1d(s_t, s_f)
        if common.size:
            r = trained[np.isin(s_t, common)] / np.maximum(fresh[np.isin(s_f, common)], 1e-12)
            ratio = _mean_in(common, r, late_ranges)
    out["probe_ratio_late"] = ratio
    bound = reward_bound(run)
    out["reward_bound"] = bound
    out["diverged"] = bool(bound is not None and math.isfinite(out["output_abs_late"])
                           and out["output_abs_late"] > bound)
    return out


# ----------------------------------------------------------------------------- a sweep

_AGENT_KEYS = ("early", "late", "change", "first_end", "late_end", "end_change",
               "probe_ratio_late", "erank_early", "erank_late", "output_abs_early",
               "output_abs_late")


def baseline_agent(sweep: Mapping[str, Any]) -> Optional[str]:
    """The sweep's baseline: the agent with index 0 (FixedLR)."""
    for run in sweep["runs"]:
        if run.get("agent_idx") == BASELINE_INDEX:
            return str(run["agent"])
    return None


def compute_verdict(sweep: Mapping[str, Any], confidence: float = CONFIDENCE) -> Dict[str, Any]:
    """``{"baseline", "agents": {agent: {...per-agent CIs, "paired": {...}}}, "text": [...]}``."""
    per_agent: Dict[str, Dict[Any, Dict[str, Any]]] = {}
    for run in sweep["runs"]:
        per_agent.setdefault(str(run["agent"]), {})[run["seed"]] = run_verdict_values(run)
    agents = [a for a in sweep.get("agents", list(per_agent)) if a in per_agent]
    baseline = baseline_agent(sweep)
    first = sweep["runs"][0] if sweep["runs"] else {}
    result: Dict[str, Any] = {
        "baseline": baseline, "confidence": confidence, "agents": {},
        "score_name": sweep.get("score_name") or first.get("score_name") or "return",
        "score_threshold": sweep.get("score_threshold", first.get("score_threshold"))}
    for agent in agents:
        runs = per_agent[agent]
        entry: Dict[str, Any] = {key: mean_ci([v[key] for v in runs.values()], confidence)
                                 for key in _AGENT_KEYS}
        entry["seeds"] = sorted(runs, key=str)
        entry["diverged"] = sum(v["diverged"] for v in runs.values())
        bounds = {v["reward_bound"] for v in runs.values() if v["reward_bound"] is not None}
        entry["reward_bound"] = min(bounds) if bounds else None
        entry["segments"] = max(v["segments"] for v in runs.values())
        entry["late_segments"] = max(v["late_segments"] for v in runs.values())
        if baseline is not None and agent != baseline and baseline in per_agent:
            entry["paired"] = _paired(runs, per_agent[baseline], confidence)
        result["agents"][agent] = entry
    result["text"] = verdict_sentences(result)
    return result


def _paired(runs: Mapping[Any, Dict[str, Any]], base: Mapping[Any, Dict[str, Any]],
            confidence: float) -> Dict[str, Any]:
    seeds = [s for s in runs if s in base]
    out: Dict[str, Any] = {"seeds": sorted(seeds, key=str)}
    for key in ("late", "change", "late_end"):
        pairs = [(runs[s][key], base[s][key]) for s in seeds
                 if math.isfinite(runs[s][key]) and math.isfinite(base[s][key])]
        x = [a for a, _ in pairs]
        y = [b for _, b in pairs]
        entry = mean_ci([a - b for a, b in pairs], confidence)
        entry["p_improvement"] = probability_of_improvement(x, y)
        out[key] = entry
    return out


# ----------------------------------------------------------------------------- words


def _f(x: Optional[float]) -> str:
    if x is None or not math.isfinite(float(x)):
        return "n/a"
    a = abs(float(x))
    return f"{x:.3g}" if a >= 1e4 or a < 0.01 and a > 0 else f"{x:.2f}" if a < 10 else f"{x:.1f}"


def _ci(e: Mapping[str, float]) -> str:
    if not e.get("n", 1):
        return "not measured"
    return f"{_f(e['mean'])} [{_f(e['ci_low'])}, {_f(e['ci_high'])}]"


#: a baseline whose early score is below this fraction of the score threshold learned too little
#: for a later fall to show
FLOOR_FRACTION = 0.1


def _near_floor(b: Mapping[str, Any], threshold: Optional[float]) -> bool:
    return (threshold is not None and b["early"]["n"] > 0 and math.isfinite(b["early"]["mean"])
            and b["early"]["mean"] < FLOOR_FRACTION * float(threshold))


def _below(e: Mapping[str, float], value: float = 0.0) -> bool:
    """The CI lies below ``value`` (a claim needs at least 2 seeds)."""
    return e["n"] >= 2 and e["ci_high"] < value


def _above(e: Mapping[str, float], value: float = 0.0) -> bool:
    """The CI lies above ``value`` (a claim needs at least 2 seeds)."""
    return e["n"] >= 2 and e["ci_low"] > value


def classify(entry: Mapping[str, Any]) -> str:
    """``"value divergence"``, ``"loss of plasticity"``, ``"decline"`` (return falls, the
    plasticity measures do not show a loss) or ``"no loss"``, for one agent's entry."""
    n = entry["change"]["n"]
    # a fall in the segment means, or in what the segments' ends reach
    declines = _below(entry["change"]) or _below(entry.get("end_change", {"n": 0}))
    if declines and n and entry["diverged"] * 2 >= n:
        return "value divergence"
    rank_falls = entry["erank_late"]["n"] > 0 and entry["erank_early"]["n"] > 0 and \
        entry["erank_late"]["mean"] < entry["erank_early"]["mean"]
    if declines and (_above(entry["probe_ratio_late"], 1.0) or rank_falls):
        return "loss of plasticity"
    if declines:
        return "decline"
    return "no loss"


def verdict_sentences(verdict: Mapping[str, Any]) -> List[str]:
    """The verdict in words: the baseline first, then each agent against it."""
    agents, baseline = verdict["agents"], verdict["baseline"]
    pct = int(round(100 * float(verdict.get("confidence", CONFIDENCE))))
    lines: List[str] = []
    if baseline is None or baseline not in agents:
        return ["No FixedLR baseline (agent 0) in this sweep: no verdict on plasticity loss."]
    b = agents[baseline]
    kind = classify(b)
    seeds = b["change"]["n"]
    score = verdict.get("score_name") or "return"
    threshold = verdict.get("score_threshold")
    span = (f"late phases (last {b['late_segments']} of {b['segments']} segments) vs the first "
            f"two: {score} {_ci(b['late'])} vs {_ci(b['early'])}, change {_ci(b['change'])} "
            f"({pct}% CI over {seeds} seeds); at the segment ends (last {END_EPISODES} "
            f"episodes) {score} {_ci(b['late_end'])} in the late segments vs {_ci(b['first_end'])} "
            f"at the end of the first, change {_ci(b['end_change'])}")
    probe = (f"capacity-probe ratio trained/fresh in the late phases {_ci(b['probe_ratio_late'])}; "
             f"effective rank {_f(b['erank_early']['mean'])} -> {_f(b['erank_late']['mean'])}; "
             f"mean |Q| {_f(b['output_abs_early']['mean'])} -> {_f(b['output_abs_late']['mean'])}")
    bound = b.get("reward_bound")
    bound_text = (f"the reward bound max_reward/(1-gamma) = {_f(bound)}" if bound is not None
                  else "an unknown reward bound")
    if kind != "value divergence" and _near_floor(b, threshold):
        lines.append(f"{baseline} learns too little here for a loss of plasticity to show: its "
                     f"early {score} is below {FLOOR_FRACTION:g} x the threshold {_f(threshold)}; "
                     f"{span}; {probe}.")
    elif kind == "value divergence":
        lines.append(f"{baseline} COLLAPSES WITH VALUE DIVERGENCE here: {span}; its late mean |Q| "
                     f"exceeds {bound_text} in {b['diverged']}/{seeds} seeds, so the collapse is "
                     f"(at least in part) value divergence, not only loss of plasticity; {probe}.")
    elif kind == "loss of plasticity":
        lines.append(f"{baseline} LOSES PLASTICITY here: {span}; {probe}; |Q| stays within "
                     f"{bound_text} in {seeds - b['diverged']}/{seeds} seeds.")
    elif kind == "decline":
        lines.append(f"{baseline}'s return DECLINES here but the plasticity measures do not show a "
                     f"loss of capacity: {span}; {probe}.")
    else:
        lines.append(f"{baseline} shows NO DETECTABLE loss of plasticity here: {span}; {probe}"
                     + (f"; its late mean |Q| exceeds {bound_text} in {b['diverged']}/{seeds} "
                        f"seeds without a detectable fall in {score}"
                        if b["diverged"] else "") + ".")
    for agent, entry in agents.items():
        if agent == baseline or "paired" not in entry:
            continue
        late = entry["paired"]["late"]
        change = entry["paired"]["change"]
        if late["n"] == 0:
            lines.append(f"{agent}: no seed in common with {baseline}; no comparison.")
            continue
        if _above(late):
            effect = "IMPROVES on"
        elif _below(late):
            effect = "is WORSE than"
        else:
            effect = "does not detectably change"
        own = classify(entry)
        lines.append(
            f"{agent} {effect} {baseline}: late-phase {score} difference {_ci(late)}, "
            f"P(improvement) {_f(late['p_improvement'])}; late segment ends difference "
            f"{_ci(entry['paired'].get('late_end', late))}, P(improvement) "
            f"{_f(entry['paired'].get('late_end', late)['p_improvement'])}; change late-early difference "
            f"{_ci(change)} over {late['n']} paired seeds; its own pattern: {own} "
            f"(change {_ci(entry['change'])}, probe ratio {_ci(entry['probe_ratio_late'])}"
            + (f", |Q| above the bound in {entry['diverged']}/{entry['change']['n']} seeds)"
               if entry["diverged"] else ")") + ".")
    return lines


def reference_comparison(sweep: Mapping[str, Any], reference: Mapping[str, Any],
                         label: str, confidence: float = CONFIDENCE) -> List[str]:
    """Sentences comparing every agent of ``sweep`` with the baseline of a ``reference`` sweep
    run without the treatment ``label`` names (e.g. the priming check against unprimed FixedLR):
    the paired difference in late return on common seeds, CI and probability of improvement."""
    ref_agent = baseline_agent(reference)
    if ref_agent is None:
        return [f"The {label} reference has no FixedLR (agent 0) runs: no comparison."]
    ref = {run["seed"]: run_verdict_values(run) for run in reference["runs"]
           if run["agent"] == ref_agent}
    per_agent: Dict[str, Dict[Any, Dict[str, Any]]] = {}
    for run in sweep["runs"]:
        per_agent.setdefault(str(run["agent"]), {})[run["seed"]] = run_verdict_values(run)
    ref_late = mean_ci([v["late"] for v in ref.values()], confidence)
    lines = [f"Against {ref_agent} {label} (late return {_ci(ref_late)} over {ref_late['n']} "
             "seeds), paired on common seeds:"]
    for agent in [a for a in sweep.get("agents", per_agent) if a in per_agent]:
        paired = _paired(per_agent[agent], ref, confidence)["late"]
        if paired["n"] == 0:
            lines.append(f"{agent}: no seed in common with the {label} reference.")
            continue
        word = "above" if _above(paired) else "below" if _below(paired) else "not detectably different from"
        lines.append(f"{agent} ends {word} {ref_agent} {label}: late return difference "
                     f"{_ci(paired)}, P(improvement) {_f(paired['p_improvement'])} "
                     f"({paired['n']} seeds).")
    return lines


def bullets(sentences: Sequence[str], width: int = TABLE_WIDTH) -> List[str]:
    """Each sentence as a ``- `` item wrapped to ``width`` (continuation lines indented)."""
    return [line for sentence in sentences
            for line in textwrap.wrap(f"- {sentence}", width=width, subsequent_indent="  ",
                                      break_on_hyphens=False)]


def format_verdict(verdict: Mapping[str, Any], width: int = TABLE_WIDTH) -> str:
    """The VERDICT block of RESULTS_SUMMARY.txt: a row per agent (split into tables no wider
    than ``width``), then the sentences, wrapped to ``width``."""
    pct = int(round(100 * float(verdict.get("confidence", CONFIDENCE))))
    score = verdict.get("score_name") or "return"
    header = ["agent", "seeds", f"early {score}", f"late {score}", "late - early",
              "first end", "late ends", "ends: late - first", "probe ratio (late)",
              "erank early->late", "|Q| early->late", "|Q|>bound",
              f"late vs baseline [{pct}% CI]", "P(improve)", "late ends vs baseline",
              "P(improve) ends"]
    rows = []
    for agent, e in verdict["agents"].items():
        paired = e.get("paired", {}).get("late")
        ends = e.get("paired", {}).get("late_end")
        rows.append([
            agent, str(e["change"]["n"]), _ci(e["early"]), _ci(e["late"]), _ci(e["change"]),
            _ci(e["first_end"]), _ci(e["late_end"]), _ci(e["end_change"]),
            _ci(e["probe_ratio_late"]),
            f"{_f(e['erank_early']['mean'])} -> {_f(e['erank_late']['mean'])}",
            f"{_f(e['output_abs_early']['mean'])} -> {_f(e['output_abs_late']['mean'])}",
            f"{e['diverged']}/{e['change']['n']}" if e.get("reward_bound") is not None else "n/a",
            _ci(paired) if paired and paired["n"] else "-",
            _f(paired["p_improvement"]) if paired and paired["n"] else "-",
            _ci(ends) if ends and ends["n"] else "-",
            _f(ends["p_improvement"]) if ends and ends["n"] else "-"])
    intro = (f"early = mean over the first two segments (tasks, or 1/6 env-step blocks without "
             f"switches) of each segment's mean {score}, late = the same over the last third; "
             f"mean [{pct}% bootstrap CI] "
             f"over seeds; ends = mean {score} of the last {END_EPISODES} episodes of a segment "
             "(first = the first segment's, late = mean over the last third); "
             "probe ratio = capacity-probe residual trained/fresh at the late task "
             f"ends; late vs baseline = paired difference in late {score} on common seeds, "
             "P(improve) = P(agent > baseline) (Agarwal et al. 2021).")
    lines = ["VERDICT: is plasticity lost, and does each agent change that?",
             *textwrap.wrap(intro, width=width, break_on_hyphens=False), ""]
    lines += split_table(header, rows, width=width)
    lines.append("")
    lines += bullets(verdict.get("text") or verdict_sentences(verdict), width)
    return "\n".join(lines) + "\n"


__all__ = ["BLOCKS", "END_EPISODES", "mean_ci", "probability_of_improvement", "segments", "late_count",
           "value_network", "reward_bound", "run_verdict_values", "baseline_agent",
           "compute_verdict", "classify", "verdict_sentences", "reference_comparison", "bullets",
           "format_verdict"]
