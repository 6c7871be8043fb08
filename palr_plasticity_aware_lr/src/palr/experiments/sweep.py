"""Run a sweep of (agent, seed) jobs, skipping finished ones, then merge, summarise and plot.

Each job runs in its own directory ``<outdir>/runs/<agent>_seed<k>/`` (checkpoint.pt,
result.json, tb/). A job whose result.json says ``finished`` is skipped; a killed one resumes from
its checkpoint. Jobs run one after another or in ``jobs`` worker processes (one torch thread each).
"""
from __future__ import annotations

import concurrent.futures as futures
import json
import multiprocessing
import pathlib
import sys
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence

from palr.experiments.files import atomic_write_json
from palr.experiments.trainer import PREEMPTED_EXIT, RESULT_FILE, Preempted


@dataclass
class RunJob:
    """One (agent, seed) run of a sweep; ``options`` are the domain's settings (plain values)."""

    domain: str
    agent_index: int
    agent_name: str
    seed: int
    run_dir: str
    options: Dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.agent_name} seed {self.seed}"


def run_dir_for(outdir: pathlib.Path, agent_name: str, seed: int) -> pathlib.Path:
    return outdir / "runs" / f"{agent_name}_seed{seed}"


def is_finished(run_dir: pathlib.Path) -> bool:
    path = pathlib.Path(run_dir) / RESULT_FILE
    try:
        return json.loads(path.read_text()).get("status") == "finished"
    except (OSError, ValueError):
        return False


def _worker_init() -> None:
    from palr.experiments.cli import configure_torch
    configure_torch()


def execute(jobs: Sequence[RunJob], run_one: Callable[[RunJob], Any], parallel: int = 1,
            log: Callable[[str], None] = lambda m: print(m, file=sys.stderr)) -> List[str]:
    """Run every unfinished job; returns the result.json paths of all jobs.

    ``run_one`` must be a module-level function (it is sent to worker processes). Failures are
    collected and re-raised together after the other jobs finished.
    """
    todo: List[RunJob] = []
    for job in jobs:
        if is_finished(pathlib.Path(job.run_dir)):
            log(f"[sweep] {job.label}: finished earlier, skipped")
        else:
            todo.append(job)
    failures: List[str] = []
    if parallel <= 1 or len(todo) <= 1:
        for job in todo:
            log(f"[sweep] {job.label}: running in {job.run_dir}")
            try:
                run_one(job)
            except Preempted:
                raise
            except Exception as err:  # noqa: BLE001 - report every failed job at the end
                failures.append(f"{job.label}: {type(err).__name__}: {err}")
                traceback.print_exc()
    else:
        ctx = multiprocessing.get_context("spawn")
        with futures.ProcessPoolExecutor(max_workers=parallel, mp_context=ctx,
                                         initializer=_worker_init) as pool:
            pending = {pool.submit(run_one, job): job for job in todo}
            for done in futures.as_completed(pending):
                job = pending[done]
                try:
                    done.result()
                    log(f"[sweep] {job.label}: done")
                except Exception as err:  # noqa: BLE001
                    failures.append(f"{job.label}: {type(err).__name__}: {err}")
    if failures:
        raise RuntimeError("some runs failed:\n  " + "\n  ".join(failures))
    return [str(pathlib.Path(job.run_dir) / RESULT_FILE) for job in jobs]


class SweepStopped(Exception):
    """The sweep did not complete; ``exit_status`` is what the launcher should exit with."""

    def __init__(self, exit_status: int) -> None:
        super().__init__(exit_status)
        self.exit_status = exit_status


def execute_for_cli(prog: str, jobs: Sequence[RunJob], run_one: Callable[[RunJob], Any],
                    parallel: int = 1) -> List[str]:
    """:func:`execute` for a launcher: a preempted sweep or failed runs are reported in one line
    and raise :class:`SweepStopped` with exit status 75 (preempted; rerun to resume) or 1."""
    try:
        return execute(jobs, run_one, parallel=parallel)
    except Preempted as err:
        print(f"{prog}: {err}; run the same command again to resume", file=sys.stderr)
        raise SweepStopped(PREEMPTED_EXIT) from None
    except RuntimeError as err:
        print(f"{prog}: {err}", file=sys.stderr)
        raise SweepStopped(1) from None


def finalize(result_paths: Sequence[str], merged_path: pathlib.Path, summary_path: pathlib.Path,
             plot_dir: Optional[pathlib.Path]) -> Dict[str, Any]:
    """Merge run results into one sweep JSON, write RESULTS_SUMMARY.txt and the plots."""
    from palr.experiments.summary import format_summary, load_runs, merge_runs, write_summary
    sweep = merge_runs(load_runs(result_paths))
    atomic_write_json(merged_path, sweep)
    write_summary(sweep, summary_path)
    if plot_dir is not None:
        from palr.experiments.plots import plot_all
        sweep["plots"] = [str(p) for p in plot_all(sweep, plot_dir)]
    print(format_summary(sweep))
    return sweep
