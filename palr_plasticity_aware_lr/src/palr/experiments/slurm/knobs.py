"""The run_on_HPC.sh knobs (environment variables), read and checked before anything is written.

The messages and limits are those of ``scripts/launcher_lib.sh`` (``check_int``,
``check_int_list``), which the other shell launchers share: integers in decimal without sign or
leading zeros, at most :data:`INT_MAX`.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import List, Mapping, Optional

from palr.errors import UsageError

#: the largest integer a knob may hold (launcher_lib.sh's INT_MAX)
INT_MAX = 2147483647
_DECIMAL = re.compile(r"(0|[1-9][0-9]*)")
_NAME = re.compile(r"[A-Za-z0-9_.,+-]*")
_TIME = re.compile(r"[0-9]+(-[0-9]+)?(:[0-9]+){0,2}")
_MEM = re.compile(r"([0-9]+[KMGTkmgt]?)?")
_AGENT_REF = re.compile(r"[A-Za-z0-9_.+-]+")
CW_TASKS = ("cw20", "cw10", "mt10", "mt10x2")
HABITAT_LAUNCHERS = ("torchrun", "srun")
#: the DQN domains (:data:`palr.experiments.dqn_launcher.DOMAIN_MODULES`)
DQN_DOMAINS = ("cartpole", "permuted_cartpole", "jbw")
DOMAINS = ("cw", "habitat", *DQN_DOMAINS)
#: knob defaults of a DQN run (one torch thread on CPU) where they differ from CW's and Habitat's
_DQN_DEFAULTS = {"CPUS": "1", "GPUS": "0", "MEM": "8G"}


def _is_decimal(text: str) -> bool:
    return bool(_DECIMAL.fullmatch(text)) and len(text) <= len(str(INT_MAX))


def check_int(name: str, text: str, low: int, high: int = INT_MAX) -> int:
    """``text`` as an integer in [low, high], else UsageError (launcher_lib.sh's check_int)."""
    if re.fullmatch(r"0[0-9]+", text):
        raise UsageError(f"{name} must be an integer >= {low} written without leading zeros, "
                         f"got '{text}'")
    if not text.isdigit() or not text.isascii() or (_is_decimal(text) and int(text) < low):
        raise UsageError(f"{name} must be an integer >= {low}, got '{text}'")
    if not _is_decimal(text) or int(text) > high:
        raise UsageError(f"{name} must be an integer from {low} to {high}, got '{text}'")
    return int(text)


def check_int_list(name: str, text: str, low: int, high: int = INT_MAX,
                   why: Optional[str] = None) -> List[int]:
    """Space-separated integers in [low, high] (launcher_lib.sh's check_int_list)."""
    values = text.split()
    if not values:
        raise UsageError(f'{name} is empty; give space-separated integers, e.g. {name}="0 1 2"')
    for value in values:
        if not _is_decimal(value):
            raise UsageError(f"{name} must hold space-separated integers from {low} to {high} "
                             f"without signs or leading zeros, got '{value}' in \"{text}\"")
        if not low <= int(value) <= high:
            raise UsageError(f"{name} value {value} {why or f'is out of range; valid: {low}-{high}'}")
    return [int(v) for v in values]


def check_agent_list(name: str, text: str, algo: str = "SAC") -> List[int]:
    """Agent indices of the agent table (launcher_lib.sh's check_agent_list)."""
    from palr.agent_table import AGENTS
    shown = " ... ".join(f"{i}={AGENTS[i].display_name(algo)}" for i in (0, 4, 7))
    return check_int_list(name, text, 0, len(AGENTS) - 1, f"is not an agent index; valid: "
                          f"0-{len(AGENTS) - 1} ({shown}; the README's agent table)")


def check_name(name: str, text: str) -> str:
    """An sbatch name: no spaces or shell characters."""
    if not _NAME.fullmatch(text):
        raise UsageError(f"{name} may hold letters, digits and _ . , + - only, got '{text}'")
    return text


@dataclass
class Knobs:
    """Every knob, checked; paths are absolute (relative ones are taken from ``workdir``)."""

    domain: str
    sweep: bool
    sif: str
    seeds: List[int]
    partition: str
    account: str
    qos: str
    time: str
    signal_lead: int
    cpus: int
    mem: str
    gpus: int
    nodes: int
    array_limit: Optional[int]
    job_name: str
    sbatch_extra: List[str]
    extra_args: List[str]
    log_dir: str
    # Continual World
    tasks: str
    episodes: int
    batch_size: int
    agents: List[int]
    results_dir: str
    # Continual World and the DQN domains
    batch_seeds: bool
    # Habitat
    config: str
    agent_override: str
    habitat_results: str
    habitat_launcher: str

    @property
    def habitat(self) -> bool:
        return self.domain == "habitat"

    @property
    def dqn(self) -> bool:
        return self.domain in DQN_DOMAINS

    @property
    def dqn_outdir(self) -> str:
        """A DQN domain's runs: ``<RESULTS_DIR>/<domain>``, as its launcher's default outdir."""
        return os.path.join(self.results_dir, self.domain)

    @property
    def results_root(self) -> str:
        """The directory the runs write under."""
        return self.habitat_results if self.habitat else self.results_dir


def _absolute(path: str, workdir: str) -> str:
    return os.path.normpath(os.path.join(workdir, path))


def read_knobs(env: Mapping[str, str], domain: Optional[str], sweep: bool, project: str,
               workdir: str) -> Knobs:
    """The knobs in ``env`` (defaults as run_on_HPC.sh documents them); UsageError if invalid.
    ``domain`` None: the DOMAIN knob (default cw)."""
    domain = domain or env.get("DOMAIN", "") or "cw"
    if domain not in DOMAINS:
        raise UsageError(f"DOMAIN must be one of {', '.join(DOMAINS)}, got '{domain}'")
    habitat, dqn = domain == "habitat", domain in DQN_DOMAINS

    def get(name: str, default: str) -> str:
        value = env.get(name, "")
        return value if value else (_DQN_DEFAULTS.get(name, default) if dqn else default)

    seeds = check_int_list("SEEDS", env.get("SEEDS", "0 1 2"), 0)
    cpus = check_int("CPUS", get("CPUS", "4"), 1)
    gpus = check_int("GPUS", get("GPUS", "1"), 0)
    batch_seeds = bool(check_int("BATCH_SEEDS", get("BATCH_SEEDS", "0"), 0, 1))
    if batch_seeds and habitat:
        raise UsageError(f"BATCH_SEEDS=1 is for Continual World and the DQN domains "
                         f"({', '.join(DQN_DOMAINS)}); unset it for {domain}")
    nodes = check_int("NODES", get("NODES", "1"), 1)
    signal_lead = check_int("SIGNAL_LEAD", get("SIGNAL_LEAD", "90"), 1)
    limit = get("ARRAY_LIMIT", "")
    array_limit = check_int("ARRAY_LIMIT", limit, 1) if limit else None
    time = get("TIME", "2-00:00:00")
    if not _TIME.fullmatch(time):
        raise UsageError("TIME must be a SLURM time limit such as 90, 12:00:00 or 2-00:00:00, "
                         f"got '{time}'")
    mem = env.get("MEM", _DQN_DEFAULTS["MEM"] if dqn else "32G")  # set but empty: no --mem
    if not _MEM.fullmatch(mem):
        raise UsageError(f"MEM must be like 32G or 64000M (or empty), got '{mem}'")
    partition, account, qos = (check_name(k, env.get(k, "")) for k in ("PARTITION", "ACCOUNT", "QOS"))
    tasks = get("TASKS", "cw20")
    agent_env = env.get("AGENT", "")
    config = get("CONFIG", "palr_habitat/configs/ddppo_palr_fetch.yaml")
    results_dir = _absolute(get("RESULTS_DIR", os.path.join(project, "palr_plasticity_aware_lr",
                                                             "results")), workdir)
    habitat_results = _absolute(get("HABITAT_RESULTS", os.path.join(project, "palr_habitat",
                                                                     "results")), workdir)
    launcher = get("HABITAT_LAUNCHER", "torchrun")
    episodes, batch_size, agents = 0, 0, []
    if habitat:
        if launcher not in HABITAT_LAUNCHERS:
            raise UsageError(f"HABITAT_LAUNCHER must be torchrun or srun, got '{launcher}'")
        if agent_env and not _AGENT_REF.fullmatch(agent_env):
            raise UsageError(f"AGENT must be an agent index or name, got '{agent_env}'")
        config = _project_relative(config, project)
    elif dqn:
        from palr.experiments.dqn_launcher import ALGO, get_domain
        default_agents = " ".join(get_domain(domain).default_agents)
        agents = check_agent_list("AGENTS", get("AGENTS", default_agents), ALGO) if sweep else \
            check_agent_list("AGENT", get("AGENT", "4"), ALGO)
        if gpus > 1:
            raise UsageError(f"GPUS must be 0 or 1 for a DQN run (one process per task), got "
                             f"'{gpus}'")
    else:
        if tasks not in CW_TASKS:
            raise UsageError(f"TASKS must be cw20, cw10, mt10 or mt10x2, got '{tasks}'")
        episodes = check_int("EPISODES", get("EPISODES", "200"), 1)
        batch_size = check_int("BATCH_SIZE", get("BATCH_SIZE", "2048"), 1)
        agents = check_agent_list("AGENTS", get("AGENTS", "0 3 4 5 6")) if sweep else \
            check_agent_list("AGENT", get("AGENT", "4"))
        if gpus > 1:
            raise UsageError(f"GPUS must be 0 or 1 for a CW run (one process per task), got '{gpus}'")
    root = habitat_results if habitat else results_dir
    job_name = check_name("JOB_NAME", get("JOB_NAME", f"palr-{domain}" if habitat or dqn
                                          else f"palr-{tasks}"))
    log_dir = _absolute(get("LOG_DIR", os.path.join(root, "logs", "slurm")), workdir)
    if re.search(r"[\s%]", log_dir):
        raise UsageError(f"LOG_DIR may not contain spaces or %, got '{log_dir}'")
    return Knobs(domain=domain, sweep=sweep, sif=get("SIF", os.path.join(project, "palr_container.sif")),
                 seeds=seeds, partition=partition, account=account, qos=qos, time=time,
                 signal_lead=signal_lead, cpus=cpus, mem=mem, gpus=gpus, nodes=nodes,
                 array_limit=array_limit, job_name=job_name,
                 sbatch_extra=env.get("SBATCH_EXTRA", "").split(),
                 extra_args=env.get("EXTRA_ARGS", "").split(), log_dir=log_dir, tasks=tasks,
                 episodes=episodes, batch_size=batch_size, agents=agents, results_dir=results_dir,
                 batch_seeds=batch_seeds, config=config, agent_override=agent_env if habitat else "",
                 habitat_results=habitat_results, habitat_launcher=launcher)


def _project_relative(config: str, project: str) -> str:
    """A Habitat config path relative to the project (the tasks run there, maybe in a container)."""
    if os.path.isabs(config):
        if not config.startswith(project.rstrip("/") + "/"):
            raise UsageError(f"CONFIG '{config}' is outside the project {project}; give a path "
                             "inside it")
        config = os.path.relpath(config, project)
    return config


__all__ = ["INT_MAX", "DOMAINS", "DQN_DOMAINS", "Knobs", "read_knobs", "check_int", "check_int_list", "check_agent_list",
           "check_name"]
