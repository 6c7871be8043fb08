"""``python -m palr.experiments.compare_sweeps A B``: do two studies of the same agents agree?

Made for checking that a new way of running a study changes nothing but speed (seed-batched
training against separate runs, a new machine, a refactor): the same agents and seeds trained both
ways should give summary figures that agree within their bootstrap confidence intervals. For every
agent both sides hold and every summary figure of :func:`palr.experiments.summary.merge_runs`
(recovery, final performance, mean score, final dead fraction, effective rank, ...), it reports

- each side's mean and percentile-bootstrap CI across seeds;
- ``agree``: each side's mean lies inside the other side's CI (stricter than overlapping CIs);
- the paired difference B - A over the seeds both sides have (seed k against seed k) with its own
  bootstrap CI: where the two ways start from the same seed, a systematic shift shows here first.

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

from palr.experiments.cli import OneLineParser, fail
from palr.experiments.files import atomic_write_text
from palr.experiments.summary import SWEEP_SCHEMA, aggregate, load_runs, load_sweep, merge_runs
from palr.experiments.text_tables import split_table


@dataclasses.dataclass(frozen=True)
class FigureComparison:
    """One agent's summary figure on both sides."""

    agent: str
    figure: str
    a: Mapping[str, Any]          # the figure's statistics on side A (mean, ci_low, ci_high, ...)
    b: Mapping[str, Any]
    paired: Optional[Dict[str, Any]]  # aggregate() of B - A over common seeds; None without any

    @property
    def measured(self) -> bool:
        """Both sides have a finite mean (a probe that never ran has none)."""
        return all(_finite(side.get("mean")) for side in (self.a, self.b))

    @property
    def agree(self) -> bool:
        """Each side's mean inside the other's CI (figures measured on one side only do not
        count as a disagreement: they are listed as not comparable)."""
        if not self.measured:
            return True
        return _inside(self.a["mean"], self.b) and _inside(self.b["mean"], self.a)

    @property
    def paired_excludes_zero(self) -> bool:
        p = self.paired
        return bool(p and _finite(p["ci_low"]) and (p["ci_low"] > 0 or p["ci_high"] < 0))


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def _inside(x: float, stats: Mapping[str, Any]) -> bool:
    low, high = stats.get("ci_low"), stats.get("ci_high")
    if not (_finite(low) and _finite(high)):  # one seed: no interval, the mean must match
        return math.isclose(x, stats["mean"], rel_tol=1e-9, abs_tol=1e-12)
    return low <= x <= high


def paired_difference(a: Mapping[str, Any], b: Mapping[str, Any], n_resamples: int = 4000,
                      seed: int = 0) -> Optional[Dict[str, Any]]:
    """Mean and bootstrap CI of ``b - a`` over the seeds both figures have a finite value for."""
    a_by_seed = dict(zip(a.get("seeds", []), a.get("values", [])))
    diffs = [bv - a_by_seed[s] for s, bv in zip(b.get("seeds", []), b.get("values", []))
             if s in a_by_seed and _finite(bv) and _finite(a_by_seed[s])]
    if not diffs:
        return None
    return aggregate(diffs, n_resamples=n_resamples, seed=seed)


def compare(a: Mapping[str, Any], b: Mapping[str, Any], n_resamples: int = 4000
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
            rows.append(FigureComparison(agent, figure, a_stats, b_stats,
                                         paired_difference(a_stats, b_stats, n_resamples)))
    return rows


def _fmt(stats: Optional[Mapping[str, Any]]) -> str:
    if not stats or not _finite(stats.get("mean")):
        return "n/a"
    if not (_finite(stats.get("ci_low")) and _finite(stats.get("ci_high"))):
        return f"{stats['mean']:.4g}"
    return f"{stats['mean']:.4g} [{stats['ci_low']:.4g}, {stats['ci_high']:.4g}]"


def report(a: Mapping[str, Any], b: Mapping[str, Any], labels: Sequence[str],
           rows: Sequence[FigureComparison]) -> List[str]:
    """The comparison as text: a table (at most 120 columns) and the tally."""
    la, lb = labels
    lines = [f"A = {la} ({len(a['runs'])} runs), B = {lb} ({len(b['runs'])} runs); "
             "mean [95% bootstrap CI] across seeds; agree = each mean inside the other's CI;",
             "B - A paired = seed k of B minus seed k of A, mean [CI]", ""]
    header = ["agent", "figure", la, lb, "B - A paired", "agree"]
    body = [[r.agent, r.figure, _fmt(r.a), _fmt(r.b), _fmt(r.paired),
             ("yes" if r.agree else "NO") if r.measured else "n/a"] for r in rows]
    lines += split_table(header, body, keep=2)
    measured = [r for r in rows if r.measured]
    disagree = [f"{r.agent} {r.figure}" for r in measured if not r.agree]
    shifted = [f"{r.agent} {r.figure}" for r in measured if r.paired_excludes_zero]
    only = sorted(set(a["agents"]) ^ set(b["agents"]))
    lines += ["", f"{len(measured) - len(disagree)} of {len(measured)} measured figures agree"
                  + (f"; disagree: {', '.join(disagree)}" if disagree else ""),
              f"paired differences whose CI excludes 0: {len(shifted)}"
              + (f" ({', '.join(shifted)})" if shifted else "")]
    if only:
        lines.append(f"agents on one side only (not compared): {', '.join(only)}")
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
                        help="exit status 1 when some measured figure disagrees")
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
    return 1 if args.check and any(r.measured and not r.agree for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
