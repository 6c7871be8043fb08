"""Plot a domain's sweep output directory (``plot_<domain>_results.py``), any domain but
Continual World (whose merge and plots are :mod:`palr.experiments.cw_merge`).

The DQN launchers leave ``<outdir>/<domain>_raw_results.json`` (the merged sweep) beside
``runs/``; Habitat leaves one ``<run>/result.json`` per run under its results folder
(``run_interactive_ablation.sh``'s ``RESULTS``). Either way this draws every figure of
:func:`palr.experiments.plots.plot_all` into ``<dir>/plots`` (or ``--plots_dir``); for run results
without a merged sweep it merges them first and writes ``<domain>_raw_results.json`` and
``RESULTS_SUMMARY.{txt,csv,md}`` beside them (the launchers' own files), then prints the summary.
"""
from __future__ import annotations

import pathlib
from dataclasses import dataclass
from typing import Any, Dict, Optional, Sequence

from palr.experiments.cli import (OneLineParser, UsageError, check_writable_dir, create_dir, fail,
                                  output_failure)


@dataclass(frozen=True)
class PlotTarget:
    """One domain's plot entry point: its ``domain`` field, script name and default folder."""

    domain: str
    prog: str
    default_dir: pathlib.Path


def _targets() -> Dict[str, PlotTarget]:
    from palr.paths import results_dir, tree_root
    root = tree_root().parent
    return {t.domain: t for t in (
        PlotTarget("cartpole", "plot_cartpole_results.py", results_dir() / "cartpole"),
        PlotTarget("permuted_cartpole", "plot_permuted_cartpole_results.py",
                   results_dir() / "permuted_cartpole"),
        PlotTarget("jbw", "plot_jbw_results.py", results_dir() / "jbw"),
        PlotTarget("habitat_fetch", "plot_habitat_results.py", root / "palr_habitat" / "results"),
    )}


def load_domain_sweep(folder: pathlib.Path, domain: str) -> Any:
    """The sweep of ``domain`` in ``folder``: its merged ``<domain>_raw_results.json``, else the
    merge of every run result under it (ValueError, one line, when neither is usable)."""
    from palr.experiments.summary import load_runs, load_sweep, merge_runs
    merged = folder / f"{domain}_raw_results.json"
    if merged.exists():
        sweep = load_sweep(merged)
    else:
        runs = load_runs(folder)
        if not runs:
            raise ValueError(f"no {domain}_raw_results.json and no run result.json under {folder}")
        sweep = merge_runs(runs)
    if sweep["domain"] != domain:
        raise ValueError(f"{folder} holds {sweep['domain']} runs, not {domain}")
    return sweep


def build_parser(domain: str) -> OneLineParser:
    """The command line of ``plot_<domain>_results.py``."""
    target = _targets()[domain]
    parser = OneLineParser(prog=target.prog,
                           description=f"plot the {domain} runs of a results folder (the "
                                       "launcher's --outdir)")
    parser.add_argument("results_dir", nargs="?", type=pathlib.Path, default=target.default_dir,
                        help=f"the sweep's output folder (default {target.default_dir})")
    parser.add_argument("--plots_dir", type=pathlib.Path, default=None,
                        help="where the PNGs go (default <results_dir>/plots)")
    return parser


def main(domain: str, argv: Optional[Sequence[str]] = None) -> int:
    target = _targets()[domain]
    parser = build_parser(domain)
    args = parser.parse_args(argv)
    folder = args.results_dir
    plots = args.plots_dir if args.plots_dir is not None else folder / "plots"
    if not folder.is_dir():
        fail(parser.prog, f"{folder} is not a folder; pass the {domain} launcher's --outdir")
    try:
        check_writable_dir(plots, "--plots_dir")
        sweep = load_domain_sweep(folder, domain)
    except UsageError as err:
        fail(parser.prog, str(err))
    except ValueError as err:
        fail(parser.prog, f"{err}; pass the {domain} launcher's --outdir (after a finished run)")
    from palr.experiments.files import atomic_write_json
    from palr.experiments.summary import format_summary, write_summary
    if not (folder / f"{domain}_raw_results.json").exists():
        try:
            atomic_write_json(folder / f"{domain}_raw_results.json", sweep)
            write_summary(sweep, folder / "RESULTS_SUMMARY.txt")
        except OSError as err:  # a full disk: one line; earlier files are intact (atomic writes)
            fail(parser.prog, output_failure(err, "--plots_dir"), status=1)
        print(format_summary(sweep))
    return draw_plots(parser.prog, sweep, plots)


def draw_plots(prog: str, sweep: Any, plots_dir: pathlib.Path) -> int:
    """Every figure of :func:`palr.experiments.plots.plot_all` into ``plots_dir`` (created),
    each path printed; a bad folder or a full disk is one line naming ``--plots_dir``."""
    from palr.experiments.plots import plot_all
    try:
        create_dir(plots_dir, "--plots_dir")
        for path in plot_all(sweep, plots_dir):
            print(path)
    except UsageError as err:
        fail(prog, str(err))
    except OSError as err:  # a full disk: one line; earlier plots are intact (atomic writes)
        fail(prog, output_failure(err, "--plots_dir"), status=1)
    return 0
