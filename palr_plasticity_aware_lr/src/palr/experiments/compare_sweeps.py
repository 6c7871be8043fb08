"""``python -m palr.experiments.compare_sweeps A B``: do two studies of the same agents agree?

Made for checking that a new way of running a study changes nothing but speed (seed-batched
training against separate runs, a new machine, a refactor): the same agents and seeds trained both
ways should give summary figures from one distribution. For every agent both sides hold and every
summary figure of :func:`palr.experiments.summary.merge_runs` (recovery, final performance, mean
score, final dead fraction, effective rank, ...), it reports

- each side's mean and percentile-bootstrap CI across seeds, and whether the CIs overlap;
- ``p``: a two-sided permutation test of the difference in means (the seeds' values of both sides
  pooled and relabelled at random), the test of "one distribution" that needs no normality;
- ``paired p``: a sign-flip test of seed k of B minus seed k of A: where both ways follow one
  trajectory for a while, a systematic shift shows here first;
- the tally: how many p-values fall below 0.05 against the number expected by chance alone, and
  which figures differ (CIs apart, or Holm-adjusted p < 0.05 over all figures compared);
- per agent and seed, the first episode whose score differs between the sides (how long the two
  ways stay one trajectory).

A and B are merged sweep files (``*_raw_results.json``, schema ``palr.sweep/1``) or folders of
run directories (merged here with the same statistics). ``--check`` makes the exit status 1 when
some figure disagrees; bad input is one line and exit status 2.
"""
from __future__ import annotations

import dataclasses
import math
import pathlib
import sys
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np

from palr.experiments.cli import OneLineParser, fail
from palr.experiments.files import atomic_write_text
from palr.experiments.summary import SWEEP_SCHEMA, load_runs, load_sweep, merge_runs
from palr.experiments.text_tables import split_table

#: random relabellings (or sign flips) per permutation test
PERMUTATIONS = 20000


@dataclasses.dataclass(frozen=True)
class FigureComparison:
    """One agent's summary figure on both sides."""

    agent: str
    figure: str
    a: Mapping[str, Any]          # the figure's statistics on side A (mean, ci_low, ci_high, ...)
    b: Mapping[str, Any]
    p_value: Optional[float]      # permutation test of the difference in means (unpaired)
    paired_p_value: Optional[float]  # sign-flip test of the seed-paired differences

    @property
    def measured(self) -> bool:
        """Both sides have a finite mean (a probe that never ran has none)."""
        return all(_finite(side.get("mean")) for side in (self.a, self.b))

    @property
    def overlap(self) -> bool:
        """The two CIs overlap (figures measured on one side only count as overlapping: they
        are listed as not comparable). Where a side has no interval (one seed), its mean must
        lie in the other's."""
        if not self.measured:
            return True
        lows = [side.get("ci_low", side["mean"]) for side in (self.a, self.b)]
        highs = [side.get("ci_high", side["mean"]) for side in (self.a, self.b)]
        lows = [low if _finite(low) else side["mean"] for low, side in zip(lows, (self.a, self.b))]
        highs = [h if _finite(h) else side["mean"] for h, side in zip(highs, (self.a, self.b))]
        return max(lows) <= min(highs)


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def _finite_values(stats: Mapping[str, Any]) -> np.ndarray:
    values = np.asarray([np.nan if v is None else v for v in stats.get("values", [])], float)
    return values[np.isfinite(values)]


def permutation_p_value(x: Sequence[float], y: Sequence[float], n_resamples: int = PERMUTATIONS,
                        seed: int = 0) -> Optional[float]:
    """Two-sided permutation test of ``mean(y) - mean(x)`` (Good 2005, *Permutation, Parametric
    and Bootstrap Tests of Hypotheses*, ch. 3): the share of random relabellings of the pooled
    values whose difference is at least as large, counting the observed one. None with fewer
    than two values a side."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 2 or len(y) < 2:
        return None
    pooled = np.concatenate([x, y])
    observed = abs(y.mean() - x.mean())
    rng = np.random.default_rng(seed)
    order = np.argsort(rng.random((n_resamples, len(pooled))), axis=1)
    shuffled = pooled[order]
    diffs = np.abs(shuffled[:, len(x):].mean(axis=1) - shuffled[:, :len(x)].mean(axis=1))
    return float((np.sum(diffs >= observed - 1e-12 * max(1.0, observed)) + 1) / (n_resamples + 1))


def paired_differences(a: Mapping[str, Any], b: Mapping[str, Any]) -> List[float]:
    """``b - a`` for the seeds both figures have a finite value for (seed k against seed k)."""
    a_by_seed = dict(zip(a.get("seeds", []), a.get("values", [])))
    return [bv - a_by_seed[s] for s, bv in zip(b.get("seeds", []), b.get("values", []))
            if s in a_by_seed and _finite(bv) and _finite(a_by_seed[s])]


def sign_flip_p_value(diffs: Sequence[float], n_resamples: int = PERMUTATIONS,
                      seed: int = 0) -> Optional[float]:
    """Two-sided sign-flip test that paired differences are centred on 0 (the paired
    permutation test, Good 2005 ch. 3); 1.0 when every difference is 0; None with fewer than
    two pairs."""
    d = np.asarray(diffs, float)
    if len(d) < 2:
        return None
    observed = abs(d.mean())
    if observed == 0:
        return 1.0
    signs = np.random.default_rng(seed).choice((-1.0, 1.0), size=(n_resamples, len(d)))
    flipped = np.abs((signs * d).mean(axis=1))
    return float((np.sum(flipped >= observed - 1e-12 * observed) + 1) / (n_resamples + 1))


def compare(a: Mapping[str, Any], b: Mapping[str, Any], n_resamples: int = PERMUTATIONS
            ) -> List[FigureComparison]:
    """Every (agent, figure) present in both sweeps' summaries, in A's order."""
    rows = []
    for agent in a["agents"]:
        if agent not in b["summary"]:
            continue
        for figure, a_stats in a["summary"][agent].items():
            b_stats = b["summary"][agent].get(figure)
            if b_stats is None:
                continue
            rows.append(FigureComparison(
                agent, figure, a_stats, b_stats,
                permutation_p_value(_finite_values(a_stats), _finite_values(b_stats), n_resamples),
                sign_flip_p_value(paired_differences(a_stats, b_stats), n_resamples)))
    return rows


def holm_adjusted(p_values: Sequence[float]) -> List[float]:
    """Holm's step-down adjustment (Holm 1979) of ``p_values``, in their order: controls the
    chance of any false "differs" over all the figures compared."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted = [1.0] * len(p_values)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def first_differing_episodes(a: Mapping[str, Any], b: Mapping[str, Any]) -> Dict[str, List[int]]:
    """Per agent, for each seed both sides ran: the index of the first episode whose score
    differs (the shorter run's length when one is a prefix of the other). Where both ways are
    one learner, this is where summation-order differences, amplified by training, first change
    an episode; identical runs give their full length."""
    a_runs = {(r["agent"], r["seed"]): r for r in a.get("runs", [])}
    found: Dict[str, List[int]] = {}
    for run in b.get("runs", []):
        other = a_runs.get((run["agent"], run["seed"]))
        if other is None:
            continue
        x, y = other["episodes"]["score"], run["episodes"]["score"]
        first = next((i for i, (u, v) in enumerate(zip(x, y)) if u != v), min(len(x), len(y)))
        found.setdefault(run["agent"], []).append(first)
    return found


def _fmt(stats: Optional[Mapping[str, Any]]) -> str:
    if not stats or not _finite(stats.get("mean")):
        return "n/a"
    if not (_finite(stats.get("ci_low")) and _finite(stats.get("ci_high"))):
        return f"{stats['mean']:.4g}"
    return f"{stats['mean']:.4g} [{stats['ci_low']:.4g}, {stats['ci_high']:.4g}]"


def _fmt_p(p: Optional[float]) -> str:
    return "n/a" if p is None else f"{p:.3f}"


def differing(rows: Sequence[FigureComparison], alpha: float = 0.05) -> List[FigureComparison]:
    """The measured figures whose CIs do not overlap or whose Holm-adjusted permutation p-value
    (over all tested figures) is below ``alpha``."""
    tested = [r for r in rows if r.measured and r.p_value is not None]
    adjusted = dict(zip(map(id, tested), holm_adjusted([r.p_value for r in tested])))
    return [r for r in rows if r.measured and (not r.overlap or adjusted.get(id(r), 1.0) < alpha)]


def report(a: Mapping[str, Any], b: Mapping[str, Any], labels: Sequence[str],
           rows: Sequence[FigureComparison]) -> List[str]:
    """The comparison as text: a table (at most 120 columns) and the tally."""
    la, lb = labels
    lines = [f"A = {la} ({len(a['runs'])} runs), B = {lb} ({len(b['runs'])} runs); mean [95% "
             "bootstrap CI] across seeds; overlap = the CIs overlap;",
             "p = permutation test of the difference in means; paired p = sign-flip test of seed "
             "k of B minus seed k of A", ""]
    header = ["agent", "figure", la, lb, "overlap", "p", "paired p"]
    body = [[r.agent, r.figure, _fmt(r.a), _fmt(r.b),
             ("yes" if r.overlap else "NO") if r.measured else "n/a", _fmt_p(r.p_value),
             _fmt_p(r.paired_p_value)] for r in rows]
    lines += split_table(header, body, keep=2)
    measured = [r for r in rows if r.measured]
    tested = [r for r in measured if r.p_value is not None]
    apart = [f"{r.agent} {r.figure}" for r in measured if not r.overlap]
    small = [f"{r.agent} {r.figure} ({r.p_value:.3f})" for r in tested if r.p_value < 0.05]
    paired_small = [r for r in measured if r.paired_p_value is not None and r.paired_p_value < 0.05]
    differ = [f"{r.agent} {r.figure}" for r in differing(rows)]
    only = sorted(set(a["agents"]) ^ set(b["agents"]))
    lines += ["", f"CIs overlap on {len(measured) - len(apart)} of {len(measured)} measured "
                  "figures" + (f"; apart: {', '.join(apart)}" if apart else ""),
              f"p < 0.05 on {len(small)} of {len(tested)} figures (about "
              f"{0.05 * len(tested):.1f} expected by chance alone)"
              + (f": {', '.join(small)}" if small else ""),
              f"paired p < 0.05 on {len(paired_small)} of {len(measured)}",
              "differ (CIs apart, or Holm-adjusted p < 0.05 over all figures): "
              + (", ".join(differ) if differ else "none")]
    if only:
        lines.append(f"agents on one side only (not compared): {', '.join(only)}")
    firsts = first_differing_episodes(a, b)
    if firsts:
        lines += ["", "first episode whose score differs, seed by seed (runs of the same agent and "
                      "seed on both sides):"]
        lines += [f"  {agent}: {' '.join(map(str, found))}" for agent, found in firsts.items()]
    return lines


def load_side(path: pathlib.Path) -> Dict[str, Any]:
    """A merged sweep file, or the runs under a folder merged here (ValueError on bad input)."""
    if path.is_file():
        return load_sweep(path)
    if not path.is_dir():
        raise ValueError(f"{path}: no such file or folder; give a *_raw_results.json "
                         f"({SWEEP_SCHEMA}) or a folder of run directories")
    runs = load_runs(path)
    if not runs:
        raise ValueError(f"{path}: no run results under it; give a folder of run directories")
    return merge_runs(runs)


def build_parser() -> OneLineParser:
    parser = OneLineParser(prog="palr.experiments.compare_sweeps",
                           description=__doc__.split("\n")[0])
    parser.add_argument("a", type=pathlib.Path, help="side A: a merged sweep file or run folder")
    parser.add_argument("b", type=pathlib.Path, help="side B: a merged sweep file or run folder")
    parser.add_argument("--labels", nargs=2, default=("A", "B"), metavar=("A", "B"),
                        help="names of the two sides in the table (default A B)")
    parser.add_argument("--out", type=pathlib.Path, default=None,
                        help="also write the report to this file")
    parser.add_argument("--check", action="store_true",
                        help="exit status 1 when some figure differs (CIs apart or Holm-adjusted p < 0.05)")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        a, b = load_side(args.a), load_side(args.b)
    except ValueError as err:
        fail(parser.prog, str(err))
    if a.get("domain") != b.get("domain"):
        fail(parser.prog, f"the sides are of different domains ({a.get('domain')} vs "
                          f"{b.get('domain')}); compare studies of one domain")
    rows = compare(a, b)
    if not rows:
        fail(parser.prog, "the two sides have no agent in common; compare studies of the same "
                          "agents")
    text = "\n".join(report(a, b, args.labels, rows)) + "\n"
    print(text, end="")
    if args.out is not None:
        atomic_write_text(args.out, text)
    return 1 if args.check and differing(rows) else 0


if __name__ == "__main__":
    sys.exit(main())
