"""Merge per-(seed, agent) Continual World results into one sweep file and a summary
(the seed's ``merge_cw_checkpoints.py --suffix cw20``) and plot them (``plot_cw_results.py``).

``cw_checkpoint_<suffix>*.json`` in the results folder -> ``<suffix>_raw_results.json`` and
``RESULTS_SUMMARY.txt`` beside them; single-task reference runs
(``cw_checkpoint_reference_*.json``) are merged in as forward-transfer baselines when present.
"""
from __future__ import annotations

import json
import pathlib
import sys
from typing import Optional, Sequence

from palr.experiments.cli import OneLineParser, fail
from palr.paths import plots_dir, results_dir


def merge_main(argv: Optional[Sequence[str]] = None) -> int:
    parser = OneLineParser(prog="merge_cw_checkpoints.py",
                           description="merge cw_checkpoint_<suffix>*.json into "
                                       "<suffix>_raw_results.json and RESULTS_SUMMARY.txt")
    parser.add_argument("--suffix", default="cw20", help="e.g. cw20 or cw10")
    parser.add_argument("--results_dir", type=pathlib.Path, default=results_dir())
    args = parser.parse_args(argv)
    from palr.experiments.files import atomic_write_json
    from palr.experiments.summary import format_summary, load_runs, merge_runs, write_summary
    suffix = args.suffix.strip("_")
    paths = sorted(args.results_dir.glob(f"cw_checkpoint_{suffix}*.json"))
    if not paths:
        fail(parser.prog, f"no cw_checkpoint_{suffix}*.json in {args.results_dir}; run "
                          "run_cw_experiments.py (or bash run_cw20.sh) first, or pass --results_dir")
    references = sorted(args.results_dir.glob("cw_checkpoint_reference_*.json"))
    try:
        sweep = merge_runs(load_runs(paths), reference_runs=load_runs(references) if references else None)
    except ValueError as err:
        fail(parser.prog, str(err))
    merged = args.results_dir / f"{suffix}_raw_results.json"
    atomic_write_json(merged, sweep)
    write_summary(sweep, args.results_dir / "RESULTS_SUMMARY.txt")
    print(format_summary(sweep))
    print(f"merged {len(paths)} run(s) -> {merged}", file=sys.stderr)
    return 0


def plot_main(argv: Optional[Sequence[str]] = None) -> int:
    parser = OneLineParser(prog="plot_cw_results.py",
                           description="plot a merged Continual World sweep")
    parser.add_argument("--suffix", default="cw20")
    parser.add_argument("--results_dir", type=pathlib.Path, default=results_dir())
    parser.add_argument("--plots_dir", type=pathlib.Path, default=plots_dir())
    args = parser.parse_args(argv)
    merged = args.results_dir / f"{args.suffix.strip('_')}_raw_results.json"
    if not merged.exists():
        fail(parser.prog, f"{merged} not found; run merge_cw_checkpoints.py --suffix "
                          f"{args.suffix} first")
    from palr.experiments.plots import plot_all
    sweep = json.loads(merged.read_text())
    for path in plot_all(sweep, args.plots_dir):
        print(path)
    return 0

