"""``python -m palr.experiments.slurm``: plan a sweep's SLURM job array and write (or, with
``--dry-run``, print) its batch script, job list and merge job.

Settings are the run_on_HPC.sh knobs, read from the environment (:mod:`.knobs`); run_on_HPC.sh
is the documented entry point: it builds the container image, runs this module in the tasks'
python (the image, or the local .venv) and submits what it wrote. On success the files to submit
are printed on stdout, one per line, as ``array <script>`` and ``merge <script>`` (nothing when
every run has finished); the dry run prints the scripts themselves and writes nothing.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from typing import List, Optional, Sequence

from palr.errors import UsageError
from palr.experiments.cli import OneLineParser, fail
from palr.experiments.files import atomic_write_text
from palr.experiments.slurm.knobs import DOMAINS, read_knobs
from palr.experiments.slurm.render import (Container, array_script, job_list, merge_script,
                                           task_path)
from palr.experiments.slurm.runs import (FINISHED, RUNNING, cw_runs, dqn_runs, fill_states,
                                         habitat_runs)

_SAYS = {"new": "new", RUNNING: "resumes its checkpoint",
         FINISHED: "finished with the same settings, skipped"}


def build_parser() -> OneLineParser:
    parser = OneLineParser(prog="palr.experiments.slurm",
                           description="Plan a SLURM job array of a sweep (knobs: the "
                                       "environment variables run_on_HPC.sh documents).")
    parser.add_argument("--domain", default=None,
                        help=f"{', '.join(DOMAINS)} (default: the DOMAIN knob, else cw)")
    parser.add_argument("--habitat", dest="domain", action="store_const", const="habitat",
                        help="Habitat DD-PPO (--domain habitat)")
    parser.add_argument("--sweep", action="store_true", help="CW and DQN: AGENTS x SEEDS "
                        "(else AGENT x SEEDS); Habitat: the four DD-PPO configs x SEEDS")
    parser.add_argument("--no-merge", action="store_true",
                        help="no dependent merge job after the array (CW: merge + plots; DQN: "
                             "merged results, summary and plots; Habitat has none)")
    parser.add_argument("--dry-run", action="store_true", help="print, write nothing")
    parser.add_argument("--project", default=os.getcwd(),
                        help="the project directory as the cluster sees it (default: here; "
                             "run this from the project root, also in a container)")
    parser.add_argument("--workdir", default=os.getcwd(),
                        help="relative knob paths are taken from here (default: here)")
    parser.add_argument("--runtime", default="", choices=("", "apptainer", "singularity"),
                        help="run the tasks in SIF with this container runtime (default: the "
                             "local .venv through ./run.sh)")
    parser.add_argument("--no-status", action="store_true",
                        help="list every run without asking which have finished (no image yet)")
    parser.add_argument("--habitat-python", default=None,
                        help="python of the Habitat trainer for its --check (default: this one)")
    parser.add_argument("--prog", default=None, help=argparse.SUPPRESS)
    return parser


def _info(prog: str, message: str) -> None:
    print(f"[{prog}] {message}", file=sys.stderr)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    prog = args.prog or "palr.experiments.slurm"
    project = os.path.abspath(args.project)
    try:
        knobs = read_knobs(os.environ, args.domain, args.sweep, project, args.workdir)
        container = Container(args.runtime, os.path.join(args.workdir, knobs.sif)) \
            if args.runtime else None
        to_task = lambda path: task_path(path, project, container)  # noqa: E731
        runs = habitat_runs(knobs, project, to_task) if knobs.habitat else \
            dqn_runs(knobs, to_task) if knobs.dqn else cw_runs(knobs, to_task)
        if not args.no_status:
            fill_states(runs, knobs, args.habitat_python)
    except UsageError as err:
        fail(prog, str(err))
    if args.no_status:
        _info(prog, "no image yet: cannot ask which runs have finished; every run is listed")
    for run in runs:
        _info(prog, f"{run.label}: {_SAYS.get(run.state, run.state)}")
    todo = [i for i, run in enumerate(runs) if run.state != FINISHED]
    if not todo:
        _info(prog, f"all {len(runs)} runs have finished already; nothing to submit")
        return 0
    # the array's tasks only train: one job after them all merges and summarises, so no two
    # processes write the merged files at once and the summary covers every run
    merge = not knobs.habitat and not args.no_merge
    stamp = f"{time.strftime('%Y%m%d-%H%M%S')}_{os.getpid()}"
    base = os.path.join(knobs.log_dir, f"{knobs.job_name}_{stamp}")
    files = {"array": base + ".sbatch", "jobs": base + ".jobs"}
    texts = {"array": array_script(knobs, project, runs, todo, files["jobs"], container),
             "jobs": job_list(runs)}
    if merge:
        files["merge"] = os.path.join(knobs.log_dir, f"{knobs.job_name}-merge_{stamp}.sbatch")
        texts["merge"] = merge_script(knobs, project, container)
    summary = f"{len(todo)} of {len(runs)} runs"
    if args.dry_run:
        _print_dry_run(files, texts)
        _info(prog, f"dry run: {summary} would be submitted; nothing submitted")
        return 0
    os.makedirs(knobs.log_dir, exist_ok=True)
    for kind in ("jobs", "array", "merge"):
        if kind in files:
            atomic_write_text(files[kind], texts[kind])
    _info(prog, f"{summary} to submit; job list {files['jobs']}")
    for kind in ("array", "merge"):
        if kind in files:
            print(f"{kind} {files[kind]}")
    return 0


def _print_dry_run(files: dict, texts: dict) -> None:
    lines: List[str] = [f"# ---- job list: {files['jobs']} ----", texts["jobs"].rstrip("\n"),
                        "# ---- end of job list ----"]
    lines += [f"# ---- sbatch script: {files['array']} ----", texts["array"].rstrip("\n"),
              "# ---- end of sbatch script ----",
              f"# ---- would run: sbatch --parsable {files['array']}"]
    if "merge" in files:
        lines += [f"# ---- sbatch script: {files['merge']} ----", texts["merge"].rstrip("\n"),
                  "# ---- end of sbatch script ----",
                  "# ---- would run: sbatch --parsable --dependency=afterany:<array job id> "
                  f"{files['merge']}"]
    print("\n".join(lines))


__all__ = ["build_parser", "main"]
