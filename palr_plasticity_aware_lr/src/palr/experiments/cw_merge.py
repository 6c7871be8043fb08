"""Merge per-(seed, agent) Continual World results into one sweep file and a summary
(the original ``merge_cw_checkpoints.py --suffix cw20``) and plot them (``plot_cw_results.py``).

``cw_checkpoint_<suffix>.json`` and ``cw_checkpoint_<suffix>_*.json`` in the results folder ->
``<suffix>_raw_results.json`` and ``RESULTS_SUMMARY.txt`` beside them. A suffix that is a
sequence label (``cw20``, ``mt10x2``, ``cw10first3``, ...) merges only runs of that sequence: a
file of another sequence under that name (known from its label or run identity) is refused in
one line. Single-task reference runs
(``cw_checkpoint_reference_*.json``) are merged in as forward-transfer baselines when present,
and refused when made with other settings than the main runs.
"""
from __future__ import annotations

import pathlib
import sys
from typing import Any, Optional, Sequence

from palr.experiments.cli import (OneLineParser, UsageError, check_writable_dir, fail,
                                  file_name_part, output_failure)
from palr.paths import plots_dir, results_dir


def merge_parser() -> OneLineParser:
    """The command line of ``merge_cw_checkpoints.py``."""
    parser = OneLineParser(prog="merge_cw_checkpoints.py",
                           description="merge cw_checkpoint_<suffix>*.json into "
                                       "<suffix>_raw_results.json and RESULTS_SUMMARY.txt")
    parser.add_argument("--suffix", type=file_name_part, default="cw20",
                        help="the runs' sequence label (cw20, cw10, mt10, mt10x2, ...) or another "
                             "file-name part")
    parser.add_argument("--results_dir", type=pathlib.Path, default=results_dir(),
                        help="the folder of the cw_checkpoint_*.json files, where the merged "
                             "files go (run_cw_experiments.py's --outdir; default "
                             "palr_plasticity_aware_lr/results)")
    return parser


def merge_main(argv: Optional[Sequence[str]] = None) -> int:
    parser = merge_parser()
    args = parser.parse_args(argv)
    suffix = args.suffix.strip("_")
    paths = sorted({*args.results_dir.glob(f"cw_checkpoint_{suffix}_*.json"),
                    *args.results_dir.glob(f"cw_checkpoint_{suffix}.json")})
    if not paths:
        fail(parser.prog, f"no cw_checkpoint_{suffix}_*.json in {args.results_dir}; run "
                          "run_cw_experiments.py (or bash run_cw20.sh) first, or pass --results_dir")
    try:
        check_writable_dir(args.results_dir, "--results_dir")
    except UsageError as err:
        fail(parser.prog, str(err))
    references = sorted(args.results_dir.glob("cw_checkpoint_reference_*.json"))
    from palr.envs.continual_world import parse_sequence_label
    from palr.experiments.files import atomic_write_json
    from palr.experiments.summary import format_summary, load_runs, merge_runs, write_summary
    try:
        runs, reference_runs = load_runs(paths), load_runs(references) if references else None
    except ValueError as err:
        fail(parser.prog, f"{err}; fix or remove that file")
    for path, run in zip(paths, runs):
        held = run_sequence_label(run)  # None: a result made before runs were labelled
        if parse_sequence_label(suffix) is not None and held not in (None, suffix):
            fail(parser.prog, f"{path.name} holds a {held} run, not {suffix}; merge it with "
                              f"--suffix {held}, or move it out of {args.results_dir}")
    try:
        sweep = merge_runs(runs, reference_runs=reference_runs)
    except ValueError as err:
        fail(parser.prog, str(err))
    merged = args.results_dir / f"{suffix}_raw_results.json"
    try:
        atomic_write_json(merged, sweep)
        write_summary(sweep, args.results_dir / "RESULTS_SUMMARY.txt")
    except OSError as err:
        fail(parser.prog, output_failure(err, "--results_dir"), status=1)
    print(format_summary(sweep))
    print(f"merged {len(paths)} run(s) -> {merged}", file=sys.stderr)
    return 0


def run_sequence_label(run: Any) -> Optional[str]:
    """The sequence label of a Continual World result: recorded, or (results written before
    labels were recorded) derived from its run identity; None when neither says."""
    if run.get("sequence"):
        return str(run["sequence"])
    sequence = (run.get("identity") or {}).get("sequence") or {}
    name = sequence.get("name", sequence.get("order"))
    if name is None or sequence.get("num_tasks") is None:
        return None
    from palr.envs.continual_world import sequence_label
    try:
        return sequence_label(str(name), int(sequence["num_tasks"]))
    except ValueError:
        return None


def plot_parser() -> OneLineParser:
    """The command line of ``plot_cw_results.py``."""
    parser = OneLineParser(prog="plot_cw_results.py",
                           description="plot a merged Continual World sweep")
    parser.add_argument("--suffix", type=file_name_part, default="cw20",
                        help="the merged sweep's suffix: <suffix>_raw_results.json "
                             "(merge_cw_checkpoints.py's --suffix; default cw20)")
    parser.add_argument("--results_dir", type=pathlib.Path, default=results_dir(),
                        help="the folder of the merged sweep (default "
                             "palr_plasticity_aware_lr/results)")
    parser.add_argument("--plots_dir", type=pathlib.Path, default=plots_dir(),
                        help="where the PNGs go (default palr_plasticity_aware_lr/plots)")
    return parser


def plot_main(argv: Optional[Sequence[str]] = None) -> int:
    parser = plot_parser()
    args = parser.parse_args(argv)
    merged = args.results_dir / f"{args.suffix.strip('_')}_raw_results.json"
    if not merged.exists():
        fail(parser.prog, f"{merged} not found; run merge_cw_checkpoints.py --suffix "
                          f"{args.suffix} first")
    try:
        check_writable_dir(args.plots_dir, "--plots_dir")
        from palr.experiments.summary import load_sweep
        sweep = load_sweep(merged)
    except UsageError as err:
        fail(parser.prog, str(err))
    except ValueError as err:
        fail(parser.prog, f"{err}; rerun merge_cw_checkpoints.py --suffix {args.suffix}")
    from palr.experiments.plot_results import draw_plots
    return draw_plots(parser.prog, sweep, args.plots_dir)
