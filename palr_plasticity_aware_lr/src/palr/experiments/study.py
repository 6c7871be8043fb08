"""The evidence study: PALR against its baselines, rerun with one command (issue 5).

Four parts, each a sweep through the project's own launchers, then published:

- ``cartpole``: continual CartPole (4 silent physics phases, default phase length), ALL eight
  agents of the table x 10 seeds, DQN;
- ``cw``: a reduced Continual World: the ten MT10 tasks in the original launcher's order
  (``--sequence mt10``) with 25 episodes of 200 steps per task, SAC-FixedLR (0) and PALR-SAC (4),
  3 seeds. Continual World's protocol is 1M steps per task (Wolczyk et al. 2021); this budget
  (5k) is ~200x smaller, so success rates are low and the part mainly shows the plasticity
  measurements;
- ``permuted``: the plasticity-loss testbed (:mod:`palr.experiments.permuted_cartpole`: 12 phases
  of 15k env steps, a new signed permutation of the observation each), all eight agents x 5 seeds;
- ``priming``: the primacy-bias check (Nikishin et al. 2022): CartPole without switches for 50k env
  steps after 100k updates on the first 1000 transitions; FixedLR, PeriodicReset, PALR and ReDo
  x 5 seeds;
- ``nodiv``: the permuted testbed without value divergence (Adam 1e-4, target copy every 2000
  updates): FixedLR, PeriodicReset and PALR x 5 seeds.

Presets: ``full`` (the published study), ``pilot`` (the permuted part with FixedLR and PALR x 2
seeds) and ``smoke`` (every part in seconds, for the tests).

Usage (CartPole and CW about 1.5-2 h on 2 cores with ``--jobs 2``; the permuted part about
5 min per run on one thread, 8 agents x 5 seeds ~ 100 min with ``--jobs 2``)::

    ./run.sh python -m palr.experiments.study                 # every part
    ./run.sh python -m palr.experiments.study --part permuted

Raw runs (checkpoints, TensorBoard, per-run JSON) go to ``--workdir`` (default
``results/study``, not tracked); a killed study resumes from its checkpoints when rerun.
Published under ``--publish_dir/<part>/`` (default ``docs/results``): ``RESULTS_SUMMARY.txt``,
``VERDICT.txt`` (:mod:`palr.experiments.verdict`: does FixedLR lose plasticity here, and does
each agent change it), ``PLASTICITY_BY_TASK.txt`` (dead fraction, effective rank, |Q| and the
capacity probe at every task end, per agent), the
merged sweep JSON, ``plots/*.png`` and ``MANIFEST.json`` (exact command, launcher argv, machine,
package versions, and every invocation that made the runs: commit, start, end, wall time).
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib
import json
import os
import pathlib
import platform
import shlex
import subprocess
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

from palr.experiments.cli import (OneLineParser, UsageError, check_writable_dir, configure_torch,
                                  fail, output_failure, positive_int, torch_threads)
from palr.experiments.files import atomic_write_bytes, atomic_write_json, atomic_write_text
from palr.experiments.plasticity_trend import format_trend, plasticity_trend
from palr.experiments.verdict import (bullets, compute_verdict, format_verdict,
                                      reference_comparison)
from palr.paths import tree_root

REPO_ROOT = tree_root().parent
INVOCATIONS_FILE = "invocations.json"
#: sub-folder of a part's run and publish folders holding its reference sweep
REFERENCE_DIR = "reference"
VERSIONED_PACKAGES = ("torch", "numpy", "gymnasium", "metaworld", "mujoco", "scipy", "matplotlib")


@dataclasses.dataclass(frozen=True)
class StudyPart:
    """One sweep of the study.

    Attributes:
        name: part name (``--part``) and publish sub-folder.
        launcher_args: arguments of the domain launcher (``--outdir`` and ``--jobs`` are added).
        merged_name: file name of the merged sweep JSON the part produces.
        reference_args: arguments of a second sweep, without the part's treatment, run into
            ``<part>/reference`` and compared against in the verdict (the priming check's
            unprimed FixedLR); None = none.
        reference_label: how the verdict names that reference (e.g. "unprimed").
    """

    name: str
    launcher_args: Sequence[str]
    merged_name: str
    reference_args: Optional[Sequence[str]] = None
    reference_label: str = "reference"


#: The priming check (Nikishin et al. 2022): CartPole without switches (one identity phase of the
#: testbed, its DQN settings) for 50k env steps; primed runs first do 100k updates on the first
#: 1000 transitions, the unprimed FixedLR reference does not.
PRIMING_ARGS = ("--num_phases", "1", "--phase_steps", "50000")
#: The testbed without value divergence: a 5x smaller learning rate and a 4x longer target period
#: (a pilot, 3 seeds: FixedLR's mean |Q| stayed below the reward bound of 100).
NODIV_ARGS = ("--lr", "1e-4", "--target_update_every", "2000")
#: Seconds-long DQN settings of the smoke preset.
SMOKE_DQN = ("--learning_starts", "50", "--buffer_size", "500", "--measure_freq", "50",
             "--diag_batch_size", "128", "--probe_steps", "20", "--probe_states", "128")

PRESETS: Dict[str, Dict[str, StudyPart]] = {
    "full": {
        "cartpole": StudyPart("cartpole", ["--agents", *map(str, range(8)), "--seeds", "10"],
                              "cartpole_raw_results.json"),
        "permuted": StudyPart("permuted", ["--agents", *map(str, range(8)), "--seeds", "5"],
                              "permuted_cartpole_raw_results.json"),
        "priming": StudyPart("priming", [*PRIMING_ARGS, "--priming_updates", "100000",
                                         "--agents", "0", "2", "4", "7", "--seeds", "5"],
                             "permuted_cartpole_raw_results.json",
                             [*PRIMING_ARGS, "--agents", "0", "--seeds", "5"], "unprimed"),
        "cw": StudyPart("cw", ["--sequence", "mt10", "--episodes_per_task", "25", "--agents",
                               "0", "4", "--seeds", "3", "--start_steps", "2000",
                               "--eval_episodes", "5"],
                        "mt10_raw_results.json"),
        "nodiv": StudyPart("nodiv", [*NODIV_ARGS, "--agents", "0", "2", "4", "--seeds", "5"],
                           "permuted_cartpole_raw_results.json"),
    },
    # Seconds-long version of the same pipeline, for the test suite.
    "smoke": {
        "cartpole": StudyPart("cartpole", ["--agents", "0", "4", "--seeds", "1",
                                           "--phase_episodes", "2", "--learning_starts", "20"],
                              "cartpole_raw_results.json"),
        "permuted": StudyPart("permuted", ["--agents", "0", "4", "--seeds", "2",
                                           "--phase_steps", "150", "--num_phases", "4",
                                           *SMOKE_DQN], "permuted_cartpole_raw_results.json"),
        "priming": StudyPart("priming", ["--num_phases", "1", "--phase_steps", "300",
                                         "--priming_updates", "40", "--agents", "0", "4",
                                         "--seeds", "1", *SMOKE_DQN],
                             "permuted_cartpole_raw_results.json",
                             ["--num_phases", "1", "--phase_steps", "300", "--agents", "0",
                              "--seeds", "1", *SMOKE_DQN], "unprimed"),
        "cw": StudyPart("cw", ["--sequence", "mt10", "--num_tasks", "2", "--episodes_per_task",
                               "1", "--max_episode_steps", "20", "--agents", "0", "4", "--seeds",
                               "1", "--start_steps", "10", "--update_after", "10",
                               "--update_every", "10", "--eval_episodes", "1", "--batch_size",
                               "16"],
                        "mt10first2_raw_results.json"),
        "nodiv": StudyPart("nodiv", [*NODIV_ARGS, "--agents", "0", "4", "--seeds", "1",
                                     "--phase_steps", "150", "--num_phases", "3", *SMOKE_DQN],
                           "permuted_cartpole_raw_results.json"),
    },
    # The pilot of the permuted testbed: FixedLR and PALR x 2 seeds at the full size.
    "pilot": {
        "permuted": StudyPart("permuted", ["--agents", "0", "4", "--seeds", "2"],
                              "permuted_cartpole_raw_results.json"),
    },
}


# ----------------------------------------------------------------------------- provenance


#: the study's own output inside the repository: changes there do not make a checkout dirty
PUBLISHED = "docs/results"


def git_commit(repo: pathlib.Path = REPO_ROOT) -> Dict[str, Any]:
    """HEAD commit of the checkout and whether tracked files differ from it (the published
    results under ``docs/results``, which the study itself rewrites, aside)."""
    def git(*args: str) -> Optional[str]:
        try:
            out = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                                 timeout=30, check=True)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip()
    status = git("status", "--porcelain", "--untracked-files=no", "--", ".",
                 f":(exclude){PUBLISHED}")
    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(status) if status is not None else None}


def _cpu_model() -> str:
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> Optional[float]:
    try:
        for line in pathlib.Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def machine_description() -> Dict[str, Any]:
    """Hardware and software the study ran on (what a reader needs to compare timings)."""
    from importlib import metadata
    versions = {}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    import torch
    return {"platform": platform.platform(), "cpu": _cpu_model(), "cpu_count": os.cpu_count(),
            "memory_gib": _memory_gib(), "python": platform.python_version(),
            "torch_threads_per_run": 1, "cuda": torch.cuda.is_available(), "packages": versions}


# ----------------------------------------------------------------------------- running


def _dqn_runner(prog: str, module: str) -> Callable[[StudyPart, pathlib.Path, int], List[List[str]]]:
    """A part that is one sweep of the DQN launcher ``prog`` (``module``'s ``main``)."""
    def run(part: StudyPart, run_dir: pathlib.Path, jobs: int) -> List[List[str]]:
        launcher = importlib.import_module(module)
        sweeps = [(part.launcher_args, run_dir)]
        if part.reference_args is not None:
            sweeps.append((part.reference_args, run_dir / REFERENCE_DIR))
        argvs = []
        for args, outdir in sweeps:
            argv = [*args, "--outdir", str(outdir), "--jobs", str(jobs), "--no_progress"]
            _check_status(prog, launcher.main(argv))
            argvs.append([prog, *argv])
        return argvs
    return run


def _cw_run(part: StudyPart, run_dir: pathlib.Path, jobs: int) -> List[List[str]]:
    from palr.experiments.continual_world import main as cw_main
    from palr.experiments.cw_merge import merge_main, plot_main
    train = [*part.launcher_args, "--outdir", str(run_dir), "--jobs", str(jobs), "--no_progress"]
    _check_status("run_cw_experiments.py", cw_main(train))
    label = part.merged_name[:-len("_raw_results.json")]  # the runs' sequence label
    merge = ["--suffix", label, "--results_dir", str(run_dir)]
    _check_status("merge_cw_checkpoints.py", merge_main(merge))
    plot = [*merge, "--plots_dir", str(run_dir / "plots")]
    _check_status("plot_cw_results.py", plot_main(plot))
    return [["run_cw_experiments.py", *train], ["merge_cw_checkpoints.py", *merge],
            ["plot_cw_results.py", *plot]]


RUNNERS: Dict[str, Callable[[StudyPart, pathlib.Path, int], List[List[str]]]] = {
    "cartpole": _dqn_runner("run_experiments.py", "palr.experiments.cartpole"),
    "cw": _cw_run,
    "permuted": _dqn_runner("run_permuted_cartpole.py", "palr.experiments.permuted_cartpole"),
    "priming": _dqn_runner("run_permuted_cartpole.py", "palr.experiments.permuted_cartpole"),
    "nodiv": _dqn_runner("run_permuted_cartpole.py", "palr.experiments.permuted_cartpole"),
}
PART_NAMES = tuple(RUNNERS)


class StudyStopped(RuntimeError):
    """A launcher of the study returned a non-zero status (e.g. 75 when preempted)."""

    def __init__(self, launcher: str, status: int) -> None:
        super().__init__(f"{launcher} exited with status {status}; rerun the study to resume")
        self.status = status


def _check_status(launcher: str, status: Optional[int]) -> None:
    if status:
        raise StudyStopped(launcher, status)


def publish(part: StudyPart, run_dir: pathlib.Path, publish_dir: pathlib.Path,
            manifest: Dict[str, Any]) -> pathlib.Path:
    """Copy the part's summary, merged sweep and plots to ``publish_dir/<part>``, write the
    plasticity-by-task table (``PLASTICITY_BY_TASK.txt``), the verdict (``VERDICT.txt``) and the
    manifest; files of an earlier publication are replaced, nothing else there is touched."""
    target = publish_dir / part.name
    for name in ("RESULTS_SUMMARY.txt", part.merged_name):  # atomic: a full disk tears nothing
        atomic_write_bytes(target / name, (run_dir / name).read_bytes())
    for plot in sorted((run_dir / "plots").glob("*.png")):
        atomic_write_bytes(target / "plots" / plot.name, plot.read_bytes())
    sweep = json.loads((run_dir / part.merged_name).read_text())
    task_names = [task.get("name", str(i)) for i, task in enumerate(sweep["runs"][0]["tasks"])]
    atomic_write_text(target / "PLASTICITY_BY_TASK.txt",
                      format_trend(plasticity_trend(sweep), task_names))
    verdict = format_verdict(sweep.get("verdict") or compute_verdict(sweep))
    reference = run_dir / REFERENCE_DIR / part.merged_name
    if part.reference_args is not None and reference.exists():
        for name in ("RESULTS_SUMMARY.txt", part.merged_name):
            atomic_write_bytes(target / REFERENCE_DIR / name,
                               (run_dir / REFERENCE_DIR / name).read_bytes())
        lines = reference_comparison(sweep, json.loads(reference.read_text()), part.reference_label)
        verdict += "\n" + "\n".join(bullets(lines)) + "\n"
    atomic_write_text(target / "VERDICT.txt", verdict)
    atomic_write_json(target / "MANIFEST.json", manifest)
    return target


def _display_command(argv: Sequence[str]) -> str:
    """A launcher's argv as a shell command, paths inside the repository relative to its root
    (the published manifest then reads the same on every machine)."""
    root = f"{REPO_ROOT}{os.sep}"
    return " ".join(shlex.quote(arg[len(root):] if arg.startswith(root) else arg) for arg in argv)


def _utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def record_invocation(run_dir: pathlib.Path, entry: Dict[str, Any]) -> List[Dict[str, Any]]:
    """Append one invocation (commit, times) to ``run_dir/invocations.json`` and return them all:
    a study killed and rerun, or republished by a later commit, keeps every commit that made it."""
    path = run_dir / INVOCATIONS_FILE
    history = json.loads(path.read_text()) if path.exists() else []
    history.append(entry)
    atomic_write_json(path, history)
    return history


def run_part(part: StudyPart, workdir: pathlib.Path, publish_dir: pathlib.Path, jobs: int,
             command: str) -> pathlib.Path:
    """Run (or resume) one part, then publish it with its manifest."""
    run_dir = workdir / part.name
    run_dir.mkdir(parents=True, exist_ok=True)
    started_utc = _utc_now()
    started = time.time()
    provenance = git_commit()
    status = "stopped"
    try:
        launcher_argvs = RUNNERS[part.name](part, run_dir, jobs)
        status = "finished"
    finally:  # a stopped invocation (preempted, killed launcher) is part of the provenance too
        history = record_invocation(run_dir, {
            **provenance, "command": command, "jobs": jobs, "status": status,
            "started_utc": started_utc, "finished_utc": _utc_now(),
            "wall_seconds": round(time.time() - started, 1)})
    manifest = {
        "schema": "palr.study/1", "part": part.name, "command": command,
        "launchers": [_display_command(argv) for argv in launcher_argvs],
        "published_at": provenance, "machine": machine_description(),
        "invocations": history,
    }
    return publish(part, run_dir, publish_dir, manifest)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m palr.experiments.study",
                           description="PALR evidence study: continual CartPole (8 agents x 10 "
                                       "seeds), a reduced MT10 (agents 0, 4 x 3 seeds), the "
                                       "permuted-CartPole testbed (8 agents x 5 seeds) and the "
                                       "priming check (agents 0, 2, 4, 7 x 5 seeds)")
    parser.add_argument("--part", choices=("all",) + PART_NAMES, default="all",
                        help="one part, or all parts of the preset (default)")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="full",
                        help="full: the published study; pilot: FixedLR and PALR x 2 seeds on the "
                             "permuted testbed; smoke: seconds-long pipeline check")
    parser.add_argument("--jobs", type=positive_int, default=2, help="runs in parallel")
    parser.add_argument("--workdir", type=pathlib.Path, default=None,
                        help="raw runs and checkpoints, resumable (default results/study, "
                             "results/study-<preset> for the other presets)")
    parser.add_argument("--publish_dir", type=pathlib.Path, default=None,
                        help="where summaries, plots and manifests are published (default "
                             "docs/results; <workdir>/published for the other presets, so a smoke "
                             "or pilot run never overwrites the published study)")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args_list = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(args_list)
    preset = PRESETS[args.preset]
    names = tuple(preset) if args.part == "all" else (args.part,)
    if any(name not in preset for name in names):
        fail(parser.prog, f"preset {args.preset!r} has no part {args.part!r}; choose one of "
                          f"{', '.join(preset)} (or --part all)")
    if args.workdir is None:
        args.workdir = REPO_ROOT / "results" / ("study" if args.preset == "full"
                                                else f"study-{args.preset}")
    if args.publish_dir is None:
        args.publish_dir = (REPO_ROOT / "docs" / "results" if args.preset == "full"
                            else args.workdir / "published")
    try:  # nothing is created before every input passed
        torch_threads()
        check_writable_dir(args.workdir, "--workdir")
        check_writable_dir(args.publish_dir, "--publish_dir")
    except UsageError as err:
        fail(parser.prog, str(err))
    configure_torch()
    command = " ".join(["python -m palr.experiments.study", *map(shlex.quote, args_list)])
    try:
        for name in names:
            target = run_part(preset[name], args.workdir, args.publish_dir, args.jobs, command)
            print(f"[study] {name} published to {target}", file=sys.stderr)
    except StudyStopped as stop:
        print(f"[study] {stop}", file=sys.stderr)
        return stop.status
    except OSError as err:  # a full disk while publishing: earlier publications are intact
        fail(parser.prog, output_failure(err, "--publish_dir"), status=1)
    return 0


__all__ = ["StudyPart", "PRESETS", "git_commit", "machine_description", "publish", "run_part",
           "build_parser", "main"]

if __name__ == "__main__":
    raise SystemExit(main())
