"""Run a sweep of (agent, seed) jobs, skipping finished ones, then merge, summarise and plot.

Each job runs in its own directory ``<outdir>/runs/<agent>_seed<k>/`` (checkpoint.pt,
result.json, tb/) and carries its run identity (:mod:`palr.experiments.run_identity`). Before
anything runs, every job's state on disk is checked (:func:`palr.experiments.run_state.run_state`):
a finished run with the same identity is skipped, a killed one resumes from its checkpoint, and a
run directory holding another configuration's run, or in use by another process, stops the whole
launch with one line (exit status 2) before any job starts. Jobs run one after another or in
``jobs`` worker processes (one torch thread each).

Stopping a parallel sweep (SIGTERM, SIGINT/Ctrl-C or SIGUSR1 to the launcher or to its process
group): the launcher passes the signal on to its workers, starts no further job, lets every running
job finish its episode and checkpoint, and then stops like a single run
(:class:`~palr.experiments.trainer.Preempted`, launcher exit status 75); a worker that was
signalled starts no new job. Workers start with the stop signals blocked and unblock them once
their handler is installed, so a signal while they start up is a stop too (never a broken pool).
The same command resumes.
"""
from __future__ import annotations

import concurrent.futures as futures
import dataclasses
import multiprocessing
import os
import pathlib
import sys
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from palr.errors import UsageError
from palr.experiments.files import atomic_write_json
from palr.experiments.progress import SweepStatus
from palr.experiments.run_lock import remove_stale_temp_files
from palr.experiments.run_state import FINISHED, RESULT_FILE, run_state
from palr.experiments.trainer import PREEMPTED_EXIT, Preempted
from palr.signals import StopSignals, stop_signals_blocked, unblock_stop_signals


@dataclass
class RunJob:
    """One (agent, seed) run of a sweep.

    Attributes:
        domain, agent_index, agent_name, seed: which run.
        run_dir: its directory (checkpoint, result.json, tb/).
        options: the domain's settings (plain values) the job is built from.
        identity: the run's identity (settings that change what it trains or records).
        published: an extra result file that stands for the finished run (Continual World's
            ``cw_checkpoint<suffix>.json``), if any.
    """

    domain: str
    agent_index: int
    agent_name: str
    seed: int
    run_dir: str
    options: Dict[str, Any] = field(default_factory=dict)
    identity: Optional[Dict[str, Any]] = None
    published: Optional[str] = None

    @property
    def label(self) -> str:
        return f"{self.agent_name} seed {self.seed}"

    def state(self, batch_member: bool = False) -> str:
        """``new``, ``running`` or ``finished`` (raises RunMismatch / RunLocked, or UsageError
        for a separate run of a stopped seed batch's member unless ``batch_member``)."""
        if self.identity is None:
            raise ValueError(f"{self.label}: a sweep job needs its run identity")
        return run_state(self.run_dir, self.identity, published=self.published,
                         batch_member=batch_member)


def run_dir_for(outdir: pathlib.Path, agent_name: str, seed: int) -> pathlib.Path:
    return outdir / "runs" / f"{agent_name}_seed{seed}"


def is_finished(job: RunJob) -> bool:
    """Whether ``job`` finished earlier with the same settings (raises on other settings)."""
    return job.state() == FINISHED


#: a sweep worker's stop signals, installed for the worker's life: an idle worker must not die
#: of one but remember it (then it starts no further job); a run's own handler calls this one
_WORKER_STOP = StopSignals()


def _worker_init() -> None:
    from palr.experiments.cli import configure_torch
    configure_torch()
    _WORKER_STOP.install()
    unblock_stop_signals()  # blocked since the worker was spawned: a pending signal lands now


class _NotStarted(Preempted):
    """A job that a worker told to stop did not start."""


def _run_unless_stopped(run_one: Callable[[RunJob], Any], job: RunJob) -> Any:
    """Worker side of a parallel sweep: ``run_one(job)``, unless this worker was told to stop."""
    if _WORKER_STOP.signum is not None:
        raise _NotStarted(f"{job.label}: not started (stop signal {_WORKER_STOP.signum})")
    return run_one(job)


class _StopForwarder(StopSignals):
    """In the launcher process of a parallel sweep: remembers a stop signal and sends it on to
    the pool's worker processes (a signal to the launcher's PID alone, e.g. SLURM's
    ``--signal=B:USR1`` through the batch shell, would otherwise never reach the runs)."""

    def __init__(self, pool: futures.ProcessPoolExecutor) -> None:
        super().__init__()
        self.pool = pool

    def on_signal(self, signum: int, frame: Any) -> None:
        self.forward()

    def forward(self) -> None:
        """Send the stop signal to every worker (again: it only sets their flags, so repeating it
        closes the gap between a worker's job check and its run's own handler)."""
        for pid in list(getattr(self.pool, "_processes", None) or ()):
            try:
                os.kill(pid, self.signum)
            except (ProcessLookupError, PermissionError):
                pass


def _without_bars(job: RunJob) -> RunJob:
    """``job`` with progress bars off: parallel runs share one terminal, so each prints plain
    progress lines with its label instead (cosmetic: the identity is unchanged)."""
    return dataclasses.replace(job, options={**job.options, "progress": False})


def _run_parallel(todo: Sequence[RunJob], run_one: Callable[[RunJob], Any], parallel: int,
                  status: SweepStatus) -> Tuple[List[str], List[str], List[str]]:
    """Run ``todo`` in ``parallel`` spawned workers; returns (failures, preempted, refused)
    labels; refused jobs raised a :class:`~palr.errors.UsageError` (e.g. a run in use)."""
    failures: List[str] = []
    preempted: List[str] = []
    refused: List[str] = []
    ctx = multiprocessing.get_context("spawn")
    # Processes started with the stop signals blocked inherit the mask: the resource tracker
    # (started with the pool) keeps SIGUSR1 blocked, so a signal to the process group cannot kill
    # it; the workers (spawned by the first submits) unblock them in _worker_init. A signal that
    # comes meanwhile reaches the launcher's handler when the block ends.
    with stop_signals_blocked():
        pool = futures.ProcessPoolExecutor(max_workers=parallel, mp_context=ctx,
                                           initializer=_worker_init)
    with pool, _StopForwarder(pool) as stop:
        with stop_signals_blocked():
            pending = {pool.submit(_run_unless_stopped, run_one, _without_bars(job)): job
                       for job in todo}
        waiting = set(pending)
        while waiting:
            done, waiting = futures.wait(waiting, timeout=1.0,
                                         return_when=futures.FIRST_COMPLETED)
            if stop.signum is not None:
                stop.forward()
                for future in waiting:
                    future.cancel()  # not started yet: never will be
            for future in done:
                job = pending[future]
                if future.cancelled():
                    preempted.append(f"{job.label} (not started)")
                    continue
                err = future.exception()
                status.run_ended(job.label, "done" if err is None else "stopped"
                                 if isinstance(err, Preempted) else "failed")
                if isinstance(err, Preempted):
                    preempted.append(job.label + (" (not started)" if isinstance(err, _NotStarted)
                                                  else ""))
                elif isinstance(err, UsageError):
                    refused.append(str(err))
                elif err is not None:
                    failures.append(f"{job.label}: {type(err).__name__}: {err}")
        if stop.signum is not None and not preempted:
            preempted.append(f"stop signal {stop.signum} after the last job")
    return failures, preempted, refused


def execute(jobs: Sequence[RunJob], run_one: Callable[[RunJob], Any], parallel: int = 1,
            log: Callable[[str], None] = lambda m: print(m, file=sys.stderr)) -> List[str]:
    """Run every unfinished job; returns the result.json paths of all jobs.

    ``run_one`` must be a module-level function (it is sent to worker processes). Failures are
    collected and re-raised together after the other jobs finished.

    Raises:
        UsageError: before anything runs, when a job's directory holds a run with other settings
            or is in use by another process; after the others, when a job was refused so.
        Preempted: the sweep was stopped by a signal (checkpoints saved).
        RuntimeError: some jobs failed.
    """
    todo: List[RunJob] = []
    for job in jobs:  # every job is checked before any starts
        if is_finished(job):
            log(f"[sweep] {job.label}: finished earlier with the same settings, skipped")
        else:
            todo.append(job)
    failures: List[str] = []
    preempted: List[str] = []
    refused: List[str] = []
    status = SweepStatus(len(todo), len(jobs) - len(todo), parallel, log)
    status.started()
    if parallel <= 1 or len(todo) <= 1:
        for job in todo:
            status.run_started(job.label, job.run_dir)
            try:
                run_one(job)
            except (Preempted, UsageError):
                raise
            except Exception as err:  # noqa: BLE001 - report every failed job at the end
                failures.append(f"{job.label}: {type(err).__name__}: {err}")
                if not isinstance(err, EXPECTED_FAILURES):  # a bug: show where
                    traceback.print_exc()
                status.run_ended(job.label, "failed")
            else:
                status.run_ended(job.label)
    else:
        failures, preempted, refused = _run_parallel(todo, run_one, parallel, status)
    if refused:
        raise UsageError(refused[0] + (f" (and {len(refused) - 1} more)" if len(refused) > 1 else ""))
    if preempted:
        raise Preempted(f"stopped; checkpoints saved, not finished: {', '.join(preempted)}"
                        + (f"; failed: {'; '.join(failures)}" if failures else ""))
    if failures:
        raise RuntimeError(f"{len(failures)} run(s) failed (finished and checkpointed runs are "
                           f"kept): {'; '.join(failures)}")
    return [str(pathlib.Path(job.run_dir) / RESULT_FILE) for job in jobs]


#: failures a run reports in its message alone (a NaN/Inf loss or activation with its update, a
#: full disk with its file); anything else also prints its traceback
EXPECTED_FAILURES = (FloatingPointError, OSError)


class SweepStopped(Exception):
    """The sweep did not complete; ``exit_status`` is what the launcher should exit with."""

    def __init__(self, exit_status: int) -> None:
        super().__init__(exit_status)
        self.exit_status = exit_status


def execute_for_cli(prog: str, jobs: Sequence[RunJob], run_one: Callable[[RunJob], Any],
                    parallel: int = 1) -> List[str]:
    """:func:`execute` for a launcher: a refused launch, a preempted sweep or failed runs are
    reported in one line and raise :class:`SweepStopped` with exit status 2 (another run's
    settings or owner; the line names the fix), 75 (preempted; rerun to resume) or 1."""
    try:
        return execute(jobs, run_one, parallel=parallel)
    except UsageError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        raise SweepStopped(2) from None
    except Preempted as err:
        print(f"{prog}: {err}; run the same command again to resume", file=sys.stderr)
        raise SweepStopped(PREEMPTED_EXIT) from None
    except RuntimeError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        raise SweepStopped(1) from None


def collection(outdir: pathlib.Path) -> List[str]:
    """The result.json of every run kept under ``<outdir>/runs/`` (what a sweep's summary covers:
    the runs of this launch and those of earlier launches on the same output directory)."""
    return [str(p) for p in sorted((outdir / "runs").glob(f"*/{RESULT_FILE}"))]


def finalize(result_paths: Sequence[str], merged_path: pathlib.Path, summary_path: pathlib.Path,
             plot_dir: Optional[pathlib.Path]) -> Dict[str, Any]:
    """Merge run results into one sweep JSON, write RESULTS_SUMMARY.txt and the plots.

    Raises:
        ValueError: the runs may not be pooled (one agent with different settings, or agents of
            different experiments; :func:`palr.experiments.run_identity.check_poolable`).
    """
    from palr.experiments.summary import format_summary, load_runs, merge_runs, write_summary
    remove_stale_temp_files(merged_path.parent, [merged_path.name, summary_path.name])
    sweep = merge_runs(load_runs(result_paths))
    atomic_write_json(merged_path, sweep)
    write_summary(sweep, summary_path)
    if plot_dir is not None:
        from palr.experiments.plots import plot_all
        sweep["plots"] = [str(p) for p in plot_all(sweep, plot_dir)]
    print(f"{SUMMARY_MARKER} {len(result_paths)} run(s) under {merged_path.parent}")
    print(format_summary(sweep))
    return sweep


#: the line before the summary table a launcher prints at its end (run_cw20.sh --single shows
#: a run's log from there)
SUMMARY_MARKER = "[summary]"


def print_ending(what: str, result_paths: Sequence[str], where: Sequence[str]) -> None:
    """A launcher's ending: the summary table of ``result_paths`` (stdout, after
    :data:`SUMMARY_MARKER`) and where the files are (stderr). A summary that cannot be made
    (e.g. reference runs only) is replaced by one line saying why; the files are listed anyway."""
    from palr.experiments.summary import format_summary, load_runs, merge_runs
    print(f"{SUMMARY_MARKER} {what}")
    try:
        print(format_summary(merge_runs(load_runs(list(result_paths)))))
    except ValueError as err:
        print(f"(no summary table: {err})")
    sys.stdout.flush()  # the table before the lines on stderr, also in a shared log file
    for line in where:
        print(f"results: {line}", file=sys.stderr, flush=True)
