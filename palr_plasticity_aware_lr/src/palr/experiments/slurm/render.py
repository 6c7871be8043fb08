"""The batch scripts: ``scripts/slurm/job.sbatch.template`` (one array task = one run, with the
SIGUSR1/SIGTERM -> checkpoint -> exit 75 -> ``scontrol requeue`` supervisor) and
``merge.sbatch.template`` (the dependent merge job of a Continual World or DQN array), filled
in by name (``@NAME@``), plus the job list the array tasks read (one line per run).

Nothing here decides which runs exist: :mod:`palr.experiments.slurm.runs` does.
"""
from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

from palr.experiments.slurm.knobs import Knobs
from palr.experiments.slurm.runs import Run, dqn_summary_command

TEMPLATE_DIR = os.path.join("scripts", "slurm")
#: the python environment of the Habitat trainer inside palr_container.sif
HABITAT_BIN = "/opt/miniforge3/envs/palr_habitat/bin"
#: a word the batch script expands when it runs (SLURM's variables, the rendezvous)
_LIVE = re.compile(r'[^\s\'"]*"[^"]*\$[^"]*"')


@dataclass
class Container:
    """``<runtime> exec`` of ``sif`` with the project at /workspace (and /opt/palr)."""

    runtime: str
    sif: str

    def prefix(self, project: str, results: str, gpu: bool = True) -> List[str]:
        binds = ["--bind", f"{project}:/workspace", "--bind", f"{project}:/opt/palr"]
        if results != project and not results.startswith(project.rstrip("/") + "/"):
            binds += ["--bind", f"{results}:{results}"]
        return [self.runtime, "exec", *(["--nv"] if gpu else []), *binds, self.sif, "bash", "-c",
                'cd /workspace && exec "$0" "$@"']


def task_path(path: str, project: str, container: Optional[Container]) -> str:
    """The path a task's python sees: a container sees the project at /workspace."""
    if container is None:
        return path
    if path == project:
        return "/workspace"
    if path.startswith(project.rstrip("/") + "/"):
        return "/workspace/" + os.path.relpath(path, project)
    return path


def array_spec(indices: Sequence[int], limit: Optional[int] = None) -> str:
    """Array indices as sbatch's ``--array``: ``[0, 1, 2, 5]`` -> ``0-2,5`` (``%limit``)."""
    parts: List[str] = []
    start = prev = None
    for i in list(indices) + [None]:
        if prev is not None and i == prev + 1:
            prev = i
            continue
        if start is not None:
            parts.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = i
    return ",".join(parts) + (f"%{limit}" if limit else "")


def words(items: Sequence[str]) -> str:
    """Bash words: quoted, except the ``"...$VAR..."`` ones the batch script expands."""
    return " ".join(w if _LIVE.fullmatch(w) else shlex.quote(w) for w in items)


def job_list(runs: Sequence[Run]) -> str:
    """One line per run: ``<label><TAB><shell-quoted python command>``."""
    return "".join(f"{run.label}\t{shlex.join(run.argv)}\n" for run in runs)


def directives(knobs: Knobs, name: str, output: str, rest: Sequence[str]) -> str:
    """The ``#SBATCH`` lines: name, log file, ``rest``, then partition/account/qos if set."""
    lines = [f"--job-name={name}", f"--output={output}", *rest]
    lines += [f"--{key}={value}" for key, value in
              (("partition", knobs.partition), ("account", knobs.account), ("qos", knobs.qos))
              if value]
    return "\n".join(f"#SBATCH {line}" for line in lines)


def fill(template: str, values: Dict[str, str]) -> str:
    """``template`` with every ``@NAME@`` replaced (each must be given, and used)."""
    for name, value in values.items():
        if f"@{name}@" not in template:
            raise KeyError(f"the template has no @{name}@")
        template = template.replace(f"@{name}@", value)
    left = re.findall(r"@[A-Z_]+@", template)
    if left:
        raise KeyError(f"the template's {', '.join(left)} was not filled in")
    return template


def _read_template(name: str) -> str:
    """A template of the project this process runs in (its working directory)."""
    with open(os.path.join(TEMPLATE_DIR, name), encoding="utf-8") as handle:
        return handle.read()


def launch_words(knobs: Knobs, project: str, container: Optional[Container]) -> tuple:
    """(launch, check): what runs a task's python command, and what validates it first (Habitat:
    ``palr_trainer.py --check`` once, not on every rank)."""
    if container is not None:
        prefix = container.prefix(project, knobs.results_root)
        binary = HABITAT_BIN + "/" if knobs.habitat else ""
    else:
        prefix, binary = ["./run.sh"], ""
    if not knobs.habitat:
        return [*prefix, "python"], []
    nproc = max(knobs.gpus, 1)
    per_node = nproc if knobs.habitat_launcher == "srun" else 1
    srun = ["srun", "--kill-on-bad-exit=1", f"--ntasks-per-node={per_node}",
            '--cpus-per-task="${SLURM_CPUS_PER_TASK:-1}"']
    if knobs.habitat_launcher == "torchrun":
        program = [binary + "torchrun", '--nnodes="${SLURM_JOB_NUM_NODES:-1}"',
                   f"--nproc_per_node={nproc}", '--rdzv_id="$JOB_REF"', "--rdzv_backend=c10d",
                   '--rdzv_endpoint="$MASTER_ADDR:$MASTER_PORT"']
    else:
        program = [binary + "python"]
    return [*srun, *prefix, *program], [*prefix, binary + "python"]


def array_script(knobs: Knobs, project: str, runs: Sequence[Run], todo: Sequence[int],
                 list_path: str, container: Optional[Container]) -> str:
    """The array's batch script (array task i runs line i+1 of ``list_path``)."""
    nproc = max(knobs.gpus, 1)
    if knobs.habitat:
        per_node = nproc if knobs.habitat_launcher == "srun" else 1
        cpus = knobs.cpus if knobs.habitat_launcher == "srun" else knobs.cpus * nproc
        nodes = knobs.nodes
        what = (f"Habitat DD-PPO, {len(runs)} runs, {nodes} node(s) x {nproc} process(es) each "
                f"({knobs.habitat_launcher})")
    else:
        per_node, cpus, nodes = 1, knobs.cpus, 1
        what = (f"Continual World {knobs.tasks}" if not knobs.dqn else f"DQN {knobs.domain}") + \
            f", {len(runs)} " + ("seed batches" if knobs.batch_seeds else "runs")
    rest = [f"--array={array_spec(todo, knobs.array_limit)}", "--open-mode=append",
            f"--nodes={nodes}", f"--ntasks-per-node={per_node}", f"--cpus-per-task={cpus}",
            f"--time={knobs.time}", *([f"--mem={knobs.mem}"] if knobs.mem else []),
            *([f"--gres=gpu:{knobs.gpus}"] if knobs.gpus else []),
            f"--signal=B:USR1@{knobs.signal_lead}", "--requeue"]
    header = directives(knobs, knobs.job_name, f"{knobs.log_dir}/%x_%A_%a.out", rest)
    header += "".join(f"\n#SBATCH {flag}" for flag in knobs.sbatch_extra)
    launch, check = launch_words(knobs, project, container)
    return fill(_read_template("job.sbatch.template"), {
        "SBATCH": header, "DESCRIPTION": what, "PROJ_DIR": shlex.quote(project),
        "JOB_LIST": shlex.quote(list_path), "RESULTS_ROOT": shlex.quote(knobs.results_root),
        "STOP_VIA": "scancel" if knobs.habitat else "kill", "LAUNCH": words(launch),
        "CHECK": words(check)})


def merge_script(knobs: Knobs, project: str, container: Optional[Container] = None) -> str:
    """The merge job run after the array (``sbatch --dependency=afterany:<array>``): Continual
    World's merge + plots of the array's checkpoints (run_cw20.sh --merge), a DQN domain's
    merge, summary and plots of its output directory (the launcher's ``--summary_only``)."""
    header = directives(knobs, f"{knobs.job_name}-merge", f"{knobs.log_dir}/%x_%j.out",
                        ["--ntasks=1", "--cpus-per-task=1", "--time=00:30:00"])
    if knobs.dqn:
        launch, _ = launch_words(knobs, project, container)
        command = words([*launch, *dqn_summary_command(
            knobs, task_path(knobs.dqn_outdir, project, container))])
        what = f"merge, summary and plots of the {knobs.domain} runs in {knobs.dqn_outdir}"
    else:
        env = {"SIF": knobs.sif, "TASKS": knobs.tasks, "RESULTS_DIR": knobs.results_dir,
               "EXTRA_ARGS": " ".join(knobs.extra_args), "SEEDS": " ".join(map(str, knobs.seeds)),
               "AGENTS": " ".join(map(str, knobs.agents)), "EPISODES": str(knobs.episodes),
               "BATCH_SIZE": str(knobs.batch_size), "PARALLEL": "1"}
        command = "env " + " ".join(shlex.quote(f"{k}={v}") for k, v in env.items()) + \
            " bash ./run_cw20.sh --merge"
        what = f"merge + plots of the {knobs.tasks} runs after the array"
    return fill(_read_template("merge.sbatch.template"), {
        "SBATCH": header, "DESCRIPTION": what, "PROJ_DIR": shlex.quote(project),
        "MERGE": command})


__all__ = ["Container", "task_path", "array_spec", "words", "job_list", "directives", "fill",
           "launch_words", "array_script", "merge_script"]
