"""``python -m palr.experiments.summarize PATH...``: the summary table of finished runs.

For launchers that run one process per run and have no sweep of their own to summarise them
(``run_interactive_ablation.sh``): each PATH is a run's ``result.json`` or a directory holding
run directories; the table is :func:`palr.experiments.sweep.print_ending`'s, as every launcher
prints at its end. Bad input is one line and exit status 2.
"""
from __future__ import annotations

import pathlib
import sys
from typing import List, Optional, Sequence

from palr.experiments.cli import OneLineParser, fail
from palr.experiments.run_state import RESULT_FILE


def result_files(paths: Sequence[pathlib.Path]) -> List[pathlib.Path]:
    """Every run's result file in ``paths`` (files as given, directories searched, in order)."""
    found: List[pathlib.Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(path.rglob(RESULT_FILE)))
        elif path.is_file():
            found.append(path)
    return list(dict.fromkeys(found))


def build_parser() -> OneLineParser:
    """The summarize command line."""
    parser = OneLineParser(prog="palr.experiments.summarize", description=__doc__.split("\n")[0])
    parser.add_argument("paths", nargs="+", type=pathlib.Path,
                        help="result.json files or directories of runs")
    parser.add_argument("--title", default=None, help="what the runs are (the table's heading)")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    files = result_files(args.paths)
    if not files:
        fail(parser.prog, f"no {RESULT_FILE} under {' '.join(map(str, args.paths))}; give run "
                          "directories or result files of finished runs")
    from palr.experiments.sweep import print_ending
    print_ending(args.title or f"{len(files)} run(s)", [str(f) for f in files],
                 [str(f.parent) for f in files])
    return 0


if __name__ == "__main__":
    sys.exit(main())
