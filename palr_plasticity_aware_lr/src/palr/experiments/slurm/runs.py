"""The runs of a SLURM sweep: one per array task, each with the command its task runs and its
state on disk (new, running = resumes its checkpoint, finished with the same settings).

The per-run command is built in one place (:func:`cw_command`, :func:`dqn_command`,
:func:`habitat_command`) and is the very command the state is asked with, so the array holds the
runs (and run names) the launchers' own job lists give: Continual World through
:func:`palr.experiments.continual_world.make_jobs` and the run identity's finished test
(:meth:`palr.experiments.sweep.RunJob.state`), the DQN domains through
:func:`palr.experiments.dqn_launcher.make_jobs` (seed batches of either through
:func:`palr.batched.runner.batch_jobs`, as their ``--batch_seeds`` sweeps), Habitat through
``palr_trainer.py --check`` (the trainer runs in its own environment, maybe another python).
"""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence

from palr.errors import UsageError
from palr.experiments.slurm.knobs import Knobs

NEW, RUNNING, FINISHED = "new", "running", "finished"
CW_SCRIPT = "palr_plasticity_aware_lr/src/run_cw_experiments.py"
#: where the DQN launchers (:attr:`palr.experiments.dqn_launcher.DQNDomain.prog`) are
DQN_SCRIPT_DIR = "palr_plasticity_aware_lr/src/"
HABITAT_SCRIPT = "palr_habitat/src/palr_trainer.py"
#: ``--habitat --sweep``: (run name, config) of the four DD-PPO configurations
HABITAT_SWEEP = (
    ("palr", "palr_habitat/configs/ddppo_palr_fetch.yaml"),
    ("baseline", "palr_habitat/configs/ddppo_baseline_fetch.yaml"),
    ("palr_lr_only", "palr_habitat/configs/ddppo_palr_lr_only_fetch.yaml"),
    ("palr_perturb_only", "palr_habitat/configs/ddppo_palr_perturb_only_fetch.yaml"),
)
_CW_SEQUENCE_FLAGS = {"cw20": ["--cw20"], "cw10": ["--cw10"], "mt10": ["--sequence=mt10"],
                      "mt10x2": ["--sequence=mt10x2"]}


@dataclass
class Run:
    """One array task: ``argv`` is the python command after the interpreter (script first)."""

    label: str
    argv: List[str]
    state: str = NEW


def cw_command(knobs: Knobs, seeds: Sequence[int], agent: int, outdir: str) -> List[str]:
    """The ``run_cw_experiments.py`` command of one array task: one Continual World run
    (``--seeds 1``), or with BATCH_SEEDS the consecutive ``seeds`` of one agent trained as one
    batch (``--batch_seeds``). No ``--ckpt_suffix``: each run names its files
    ``_<sequence label>_seed<S>_agent<A>`` itself."""
    device = ["--device", "cpu"] if knobs.gpus == 0 else []
    batch = ["--batch_seeds"] if knobs.batch_seeds else []
    return [CW_SCRIPT, *_CW_SEQUENCE_FLAGS[knobs.tasks], "--episodes_per_task", str(knobs.episodes),
            "--seeds", str(len(seeds)), "--batch_size", str(knobs.batch_size), "--seed_offset",
            str(seeds[0]), "--agent_idx", str(agent), *batch, "--outdir", outdir, "--no_progress",
            *device, *knobs.extra_args]


def habitat_command(knobs: Knobs, config: str, seed: int, outdir: str) -> List[str]:
    """The ``palr_trainer.py`` command of one Habitat DD-PPO run."""
    agent = ["--agent", knobs.agent_override] if knobs.agent_override else []
    return [HABITAT_SCRIPT, "--config", config, "--seed", str(seed), "--outdir", outdir, *agent,
            *knobs.extra_args]


def dqn_command(knobs: Knobs, agent: int, seeds: Sequence[int], outdir: str) -> List[str]:
    """The DQN launcher command of one array task: one run (``--seeds 1``), or with BATCH_SEEDS
    the consecutive ``seeds`` of one agent trained as one batch (``--batch_seeds``). It trains
    only (``--no_summary``): the array's merge job summarises ``outdir`` once every task has
    ended (:func:`dqn_summary_command`)."""
    from palr.experiments.dqn_launcher import get_domain
    device = ["--device", "cuda"] if knobs.gpus else []
    batch = ["--batch_seeds"] if knobs.batch_seeds else []
    return [DQN_SCRIPT_DIR + get_domain(knobs.domain).prog, "--agent_idx", str(agent),
            "--seeds", str(len(seeds)), "--seed_offset", str(seeds[0]), *batch, "--outdir", outdir,
            "--jobs", "1", "--no_progress", "--no_summary", *device, *knobs.extra_args]


def dqn_summary_command(knobs: Knobs, outdir: str) -> List[str]:
    """The DQN launcher command of the merge job: merge, summary and plots of every run in
    ``outdir`` (``--summary_only``, the launcher's own summary)."""
    from palr.experiments.dqn_launcher import get_domain
    return [DQN_SCRIPT_DIR + get_domain(knobs.domain).prog, "--summary_only", "--outdir", outdir,
            *knobs.extra_args]


def seed_groups(seeds: Sequence[int], batch: bool) -> List[List[int]]:
    """The seeds of each array task: one each, or (``batch``) runs of consecutive seeds, since a
    launcher takes its seeds as ``--seed_offset S --seeds K``: ``[0, 1, 2, 5]`` -> ``[[0, 1, 2],
    [5]]``."""
    groups: List[List[int]] = []
    for seed in seeds:
        if batch and groups and seed == groups[-1][-1] + 1:
            groups[-1].append(seed)
        else:
            groups.append([seed])
    return groups


def habitat_experiments(knobs: Knobs, project: str) -> List[tuple]:
    """(run name, config) pairs: the sweep's four, or CONFIG named like the original
    rlBigWorld layout (``ddppo_<name>_fetch.yaml`` -> ``<name>``)."""
    if knobs.sweep:
        pairs = list(HABITAT_SWEEP)
    else:
        name = os.path.basename(knobs.config)
        name = name[:-len(".yaml")] if name.endswith(".yaml") else name
        name = name[len("ddppo_"):] if name.startswith("ddppo_") else name
        pairs = [(name.replace("_fetch", "", 1), knobs.config)]
    for _, config in pairs:
        if not os.path.isfile(config):  # this process runs in the project (maybe /workspace)
            raise UsageError(f"config '{config}' not found (paths are relative to {project})")
    return pairs


def seed_tasks(knobs: Knobs) -> List[tuple]:
    """(seeds, what) of each array task's seeds, in run_on_HPC.sh's order: one seed each, or with
    BATCH_SEEDS each run of consecutive seeds (:func:`seed_groups`)."""
    return [(seeds, f"seed {seeds[0]}" if not knobs.batch_seeds else
             f"seeds {'-'.join(map(str, seeds))}")
            for seeds in seed_groups(knobs.seeds, knobs.batch_seeds)]


def cw_runs(knobs: Knobs, task_path: Callable[[str], str]) -> List[Run]:
    """Seeds (or seed batches) x agents, seed-major; ``task_path`` maps a host path to the path
    the task sees (a container sees the project at /workspace)."""
    outdir = task_path(knobs.results_dir)
    return [Run(f"{knobs.tasks} {which} agent {agent} -> {knobs.results_dir}",
                cw_command(knobs, seeds, agent, outdir))
            for seeds, which in seed_tasks(knobs) for agent in knobs.agents]


def dqn_runs(knobs: Knobs, task_path: Callable[[str], str]) -> List[Run]:
    """Seeds (or seed batches) x agents, seed-major as Continual World's; every run in
    ``<RESULTS_DIR>/<domain>``, the launcher's own layout (``runs/<agent>_seed<S>``)."""
    outdir = knobs.dqn_outdir
    return [Run(f"{knobs.domain} {which} agent {agent} -> {outdir}",
                dqn_command(knobs, agent, seeds, task_path(outdir)))
            for seeds, which in seed_tasks(knobs) for agent in knobs.agents]


def habitat_runs(knobs: Knobs, project: str, task_path: Callable[[str], str]) -> List[Run]:
    """Configs x seeds; each run in ``<HABITAT_RESULTS>/<name>_seed<S>``."""
    runs = []
    for name, config in habitat_experiments(knobs, project):
        for seed in knobs.seeds:
            outdir = os.path.join(knobs.habitat_results, f"{name}_seed{seed}")
            runs.append(Run(f"{name} seed {seed} ({config}) -> {outdir}",
                            habitat_command(knobs, config, seed, task_path(outdir))))
    return runs


def cw_state(argv: Sequence[str]) -> str:
    """The state of the run (or seed batch) ``argv`` names, as the CW launcher's sweep sees it;
    a configuration that does not batch is refused as the launcher refuses it
    (:func:`palr.batched.cw_runner.check_batchable`, one line naming the fix)."""
    from palr.experiments.continual_world import build_parser, make_jobs
    from palr.experiments.cli import check_device
    args = build_parser().parse_args(list(argv[1:]))  # bad EXTRA_ARGS: one line, exit 2
    check_device(args.device)
    jobs = make_jobs(args)
    if args.batch_seeds:
        from palr.batched.cw_runner import check_batchable
        for job in jobs:
            try:
                check_batchable(job)
            except UsageError as err:  # the knobs that fix it
                raise UsageError(f"{err} (here: BATCH_SEEDS=0, or AGENT/AGENTS without agent "
                                 f"{job.agent_index})") from None
    return sweep_state(jobs, args.batch_seeds)


def dqn_state(domain_name: str, argv: Sequence[str]) -> str:
    """The state of the run (or seed batch) ``argv`` names, as the DQN launcher's sweep sees it
    (:func:`palr.experiments.dqn_launcher.make_jobs`). The device is not checked here: it is not
    part of a run's settings and the login node may have no GPU."""
    from palr.experiments.dqn_launcher import build_parser, get_domain, make_jobs
    domain = get_domain(domain_name)
    args = build_parser(domain).parse_args(list(argv[1:]))  # bad EXTRA_ARGS: one line, exit 2
    return sweep_state(make_jobs(domain, args), args.batch_seeds)


def sweep_state(jobs: Sequence[Any], batch_seeds: bool) -> str:
    """The state of a task's one run, or (``batch_seeds``) of its one seed batch, as the
    launcher's ``--batch_seeds`` sweep groups it (:func:`palr.batched.runner.batch_jobs`)."""
    if batch_seeds:
        from palr.batched.runner import batch_jobs
        jobs = batch_jobs(jobs)
    (job,) = jobs
    return job.state()


def habitat_state(argv: Sequence[str], python: str, world_size: int) -> str:
    """``palr_trainer.py --check`` as the array task will run it (its world size; the device is
    not part of a run's settings and the login node may have no GPU)."""
    env = dict(os.environ, WORLD_SIZE=str(world_size), RANK="0", LOCAL_RANK="0")
    proc = subprocess.run([python, argv[0], "--check", *argv[1:], "--set", "run.device=auto"],
                          env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        raise UsageError(lines[-1].split(": error: ", 1)[-1] if lines else
                         f"{argv[0]} --check failed with status {proc.returncode}")
    return proc.stdout.strip().splitlines()[-1]


def fill_states(runs: Sequence[Run], knobs: Knobs, habitat_python: Optional[str] = None) -> None:
    """Set every run's state (raises UsageError, e.g. a run directory of other settings).

    Continual World asks in this process (which also checks EXTRA_ARGS); Habitat starts a
    ``--check`` per run, so it asks only once the results directory exists (else all are new)."""
    world_size = knobs.nodes * max(knobs.gpus, 1)
    if knobs.habitat and not os.path.isdir(knobs.habitat_results):
        return
    for run in runs:
        if knobs.habitat:
            run.state = habitat_state(run.argv, habitat_python or sys.executable, world_size)
        elif knobs.dqn:
            run.state = dqn_state(knobs.domain, run.argv)
        else:
            run.state = cw_state(run.argv)


def describe(runs: Sequence[Run]) -> Dict[str, List[Run]]:
    """Runs by state."""
    by_state: Dict[str, List[Run]] = {NEW: [], RUNNING: [], FINISHED: []}
    for run in runs:
        by_state.setdefault(run.state, []).append(run)
    return by_state


__all__ = ["NEW", "RUNNING", "FINISHED", "HABITAT_SWEEP", "Run", "cw_command", "dqn_command",
           "dqn_summary_command", "seed_groups", "seed_tasks", "habitat_command",
           "habitat_experiments", "cw_runs", "dqn_runs", "habitat_runs", "cw_state", "dqn_state",
           "sweep_state", "habitat_state", "fill_states", "describe"]
