"""The launcher shared by the DQN domains (continual CartPole, permuted CartPole, Jelly Bean World).

A :class:`DQNDomain` says how to build the domain's environment and which flags it adds; this
module does the rest: flags common to every domain (including every DQN setting the testbeds
need, :data:`DQN_FLAGS`, and the task-end capacity probe), agent resolution and validation
(one-line errors, exit 2, nothing touched), one :class:`~palr.experiments.sweep.RunJob` per
(agent, seed), training through :class:`~palr.experiments.trainer.EpisodicTrainer`, then merge,
summary and plots. A domain whose task windows carry ``end_step`` (phases counted in env steps)
runs to that env-step budget instead of an episode count.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib
import os
import pathlib
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, Tuple

from palr.agent_table import AGENTS, resolve_agent
from palr.checks import check_non_negative_int, check_positive_int
from palr.experiments.cli import (OneLineParser, UsageError, add_batch_seeds_arg,
                                  add_common_run_args,
                                  check_agent_settings, check_device, check_writable_dir,
                                  configure_torch, create_dir, display_options, fail,
                                  non_negative_int, output_failure, positive_float, positive_int,
                                  resolve_agents, torch_threads, unit_float)
from palr.experiments.launcher_config import (SWEEP, FlagBindings, explicit_interventions,
                                              flag_section, print_tree, resolve_tree, write_back)
from palr.experiments.progress import trainer_display
from palr.experiments.run_identity import identity_fields, make_identity

if TYPE_CHECKING:  # the sweep (and torch) are imported only once every input is valid
    from palr.experiments.sweep import RunJob

ALGO = "DQN"

#: (env, task windows, score threshold) built from a job's env options and seed
EnvFactory = Callable[[Dict[str, Any], int], Tuple[Any, List[Dict[str, Any]], float]]


@dataclass(frozen=True)
class DQNDomain:
    """One DQN domain.

    Attributes:
        name: short name (result files, ``domain`` field).
        prog: the original launcher file name.
        description: ``--help`` text.
        default_agents: agents of the default sweep.
        default_outdir: output directory when ``--outdir`` is not given.
        add_arguments: adds the domain's own flags.
        env_options: turns parsed flags into plain env options stored in each job.
        make_env: builds the environment for one job.
        dqn_defaults: DQN settings (DQNConfig or :data:`SCHEDULE_KEYS` fields) that differ from
            their defaults for this domain.
        max_reward: the largest reward of one env step; with gamma it gives the bound on true
            values, ``max_reward / (1 - gamma)``, that the verdict checks |Q| against.
        describe_env: a line about the built environment (e.g. which simulator runs it),
            printed on stderr when a run starts.
    """

    name: str
    prog: str
    description: str
    default_agents: Tuple[str, ...]
    default_outdir: pathlib.Path
    add_arguments: Callable[[argparse.ArgumentParser], None]
    env_options: Callable[[argparse.Namespace], Dict[str, Any]]
    make_env: EnvFactory
    dqn_defaults: Dict[str, Any] = dataclasses.field(default_factory=dict)
    max_reward: Optional[float] = None
    describe_env: Optional[Callable[[Any], str]] = None


DOMAINS: Dict[str, DQNDomain] = {}
#: where each domain is defined (imported on demand, e.g. in sweep worker processes)
DOMAIN_MODULES = {"cartpole": "palr.experiments.cartpole", "jbw": "palr.experiments.jbw",
                  "permuted_cartpole": "palr.experiments.permuted_cartpole"}

#: the schedule settings every DQN run records (:class:`~palr.experiments.schedule.
#: TrainingSchedule` fields); jobs keep the schedule with the DQN settings
SCHEDULE_KEYS = ("learning_starts", "train_frequency", "priming_updates")
#: DQN flag -> the config-tree field it is a shorthand for (``dqn``: DQNConfig, ``schedule``:
#: TrainingSchedule); fields left unset keep the domain's default
DQN_FLAGS = {"double_dqn": "dqn.double_dqn", "target_update_every": "dqn.target_update_every",
             "buffer_size": "dqn.buffer_size", "lr": "dqn.learning_rate", "gamma": "dqn.gamma",
             "hidden_sizes": "dqn.hidden_sizes", "start_epsilon": "dqn.start_epsilon",
             "end_epsilon": "dqn.end_epsilon", "exploration_steps": "dqn.exploration_steps",
             "learning_starts": "schedule.learning_starts",
             "priming_updates": "schedule.priming_updates",
             "probe_steps": "probe.steps", "probe_states": "probe.states",
             "measure_freq": "interventions.measure_freq",
             "diag_batch_size": "interventions.diag_batch_size"}
#: fields of the tree that other flags own
RESERVED = {"dqn.seed": "--seeds/--seed_offset", "dqn.device": "--device"}
#: the run-level flags (which runs exist and where), the tree's ``sweep`` section
SWEEP_FLAGS = ("agents", "seeds", "seed_offset", "outdir", "jobs")
#: capacity probe defaults (palr.capacity_probe; 1000 Adam steps on 2048 replay states)
PROBE_STEPS, PROBE_STATES = 1000, 2048


@dataclass
class ProbeSettings:
    """The capacity probe run at every task end (:mod:`palr.capacity_probe`; Lyle et al. 2022).

    Attributes:
        steps: Adam steps of the probe (0 = no probe).
        states: replay states the probe fits.
    """

    steps: int = PROBE_STEPS
    states: int = PROBE_STATES

    def __post_init__(self) -> None:
        check_non_negative_int("steps", self.steps)
        check_positive_int("states", self.states)


def register_domain(domain: DQNDomain) -> DQNDomain:
    DOMAINS[domain.name] = domain
    return domain


def get_domain(name: str) -> DQNDomain:
    if name not in DOMAINS:
        importlib.import_module(DOMAIN_MODULES[name])
    return DOMAINS[name]


def build_parser(domain: DQNDomain) -> argparse.ArgumentParser:
    """The domain's command line (its flags are shorthands of :func:`config_bindings`' tree)."""
    return _parser_and_bindings(domain)[0]


def config_bindings(domain: DQNDomain) -> FlagBindings:
    """The domain's config tree (``dqn``, ``schedule``, ``env``, ``probe``, ``interventions``)
    and which flags write which of its fields."""
    return _parser_and_bindings(domain)[1]


def _parser_and_bindings(domain: DQNDomain) -> Tuple[argparse.ArgumentParser, FlagBindings]:
    from palr.agents.dqn import DQNConfig
    from palr.experiments.schedule import TrainingSchedule
    from palr.intervention_configs import InterventionSettings
    parser = OneLineParser(prog=domain.prog, description=domain.description + " Agents: " +
                           ", ".join(f"{s.index}={s.display_name(ALGO)}" for s in AGENTS))
    parser.add_argument("--agents", nargs="+", default=list(domain.default_agents),
                        help=f"agent indices or names (default: {' '.join(domain.default_agents)})")
    parser.add_argument("--agent_idx", "--agent", dest="agent_idx", default=None,
                        help="run this single agent (index or name, e.g. PALR-DQN) instead of "
                             "--agents")
    parser.add_argument("--outdir", type=pathlib.Path, default=domain.default_outdir,
                        help=f"output folder: runs/, merged results, summary and plots (default "
                             f"{domain.default_outdir})")
    parser.add_argument("--exploration_steps", type=positive_int, default=None,
                        help="DQN epsilon decay length in env steps")
    parser.add_argument("--learning_starts", type=positive_int, default=None,
                        help="env steps before DQN starts training")
    add_dqn_arguments(parser, domain)
    first_env = len(parser._actions)
    domain.add_arguments(parser)
    env_actions = parser._actions[first_env:]
    env_section = flag_section(f"{domain.name.title().replace('_', '')}Env", env_actions,
                               f"The {domain.name} environment and its task schedule (the "
                               "flags of the same names).")
    add_common_run_args(parser)
    parser.set_defaults(jobs=min(2, os.cpu_count() or 1))  # small runs: use both cores
    add_batch_seeds_arg(parser)  # seed-batched training: the dispatch is in main()
    add_summary_args(parser)
    by_dest = {a.dest: a for a in parser._actions}
    sweep_actions = [by_dest[dest] for dest in SWEEP_FLAGS]
    sweep_section = flag_section(
        "DQNSweep", sweep_actions, "Which runs the launch trains and where (the flags of the "
        "same names; --agent_idx still picks one agent); not part of any run's identity.")
    root = dataclasses.make_dataclass(f"{env_section.__name__[:-3]}DQNRun", [
        (SWEEP, sweep_section, dataclasses.field(default_factory=sweep_section)),
        ("dqn", DQNConfig, dataclasses.field(default_factory=DQNConfig)),
        ("schedule", TrainingSchedule, dataclasses.field(default_factory=TrainingSchedule)),
        ("env", env_section, dataclasses.field(default_factory=env_section)),
        ("probe", ProbeSettings, dataclasses.field(default_factory=ProbeSettings)),
        ("interventions", InterventionSettings,
         dataclasses.field(default_factory=InterventionSettings))])
    root.__doc__ = (f"Which {domain.name} DQN runs to train (sweep) and everything a run trains "
                    "with: the DQN agent, its training schedule, the environment, the task-end "
                    "capacity probe and the intervention settings (palr.config).")
    bindings = FlagBindings(root, labels={"dqn": "DQN", "schedule": "DQN schedule"},
                            reserved=dict(RESERVED))
    for dest, path in DQN_FLAGS.items():
        section, name = path.split(".")
        bindings.bind([a for a in parser._actions if a.dest == dest], section, {dest: name})
    bindings.bind(env_actions, "env")
    bindings.bind(sweep_actions, SWEEP)
    return parser, bindings


def resolve_config(domain: DQNDomain, args: argparse.Namespace) -> Tuple[Any, Dict[str, Any]]:
    """The validated config tree of ``args`` (domain defaults < --config < --set < flags) and
    the mapping of what was set; UsageError/ConfigError naming the key otherwise."""
    agent, schedule = split_dqn_settings(domain.dqn_defaults)
    return resolve_tree(args, config_bindings(domain),
                        defaults={"dqn": agent, "schedule": schedule})


def add_summary_args(parser: argparse.ArgumentParser) -> None:
    """``--no_summary`` and ``--summary_only``: train and summarise in separate processes, as a
    SLURM array does (its tasks train, one dependent job summarises the output directory once
    they have all ended, so no two processes write the summary files at once)."""
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--no_summary", action="store_true",
                       help="train only: leave the merged results, summary and plots of --outdir "
                            "to a later --summary_only")
    which.add_argument("--summary_only", action="store_true",
                       help="train nothing: merge, summarise and plot the runs already in "
                            "--outdir")


def add_dqn_arguments(parser: argparse.ArgumentParser, domain: DQNDomain) -> None:
    """The DQN settings of :data:`DQN_FLAGS` and the capacity probe's, with this domain's defaults
    in the help; every value ends up in the run's config."""
    from palr.agents.dqn import DQNConfig
    d = DQNConfig(**split_dqn_settings(domain.dqn_defaults)[0])
    group = parser.add_argument_group("DQN (defaults are this domain's)")
    group.add_argument("--double_dqn", dest="double_dqn", action="store_const", const=True,
                       default=None, help="Double DQN targets (van Hasselt et al. 2016)"
                       + (" (default here)" if d.double_dqn else ""))
    group.add_argument("--no_double_dqn", dest="double_dqn", action="store_const", const=False,
                       help="plain DQN max targets" + ("" if d.double_dqn else " (default here)"))
    group.add_argument("--target_update_every", type=positive_int, default=None, metavar="UPDATES",
                       help=f"gradient updates between target-network copies "
                            f"(default {d.target_update_every})")
    group.add_argument("--buffer_size", type=positive_int, default=None, metavar="N",
                       help=f"replay capacity in transitions (default {d.buffer_size})")
    group.add_argument("--lr", type=positive_float, default=None,
                       help=f"Adam learning rate (default {d.learning_rate:g})")
    group.add_argument("--gamma", type=unit_float, default=None,
                       help=f"discount factor (default {d.gamma:g})")
    group.add_argument("--hidden_sizes", type=positive_int, nargs="+", default=None, metavar="W",
                       help=f"hidden layer widths of the Q-network (default "
                            f"{' '.join(map(str, d.hidden_sizes))})")
    group.add_argument("--start_epsilon", type=unit_float, default=None,
                       help=f"exploration rate at the first step (default {d.start_epsilon:g})")
    group.add_argument("--end_epsilon", type=unit_float, default=None,
                       help=f"exploration rate after --exploration_steps (default "
                            f"{d.end_epsilon:g}; the decay is linear)")
    group.add_argument("--priming_updates", type=non_negative_int, default=None, metavar="N",
                       help="N gradient updates on the first --learning_starts transitions before "
                            "training goes on (Nikishin et al. 2022's priming; default 0 = off)")
    group.add_argument("--probe_steps", type=non_negative_int, default=PROBE_STEPS, metavar="N",
                       help=f"Adam steps of the capacity probe run at every task end "
                            f"(default {PROBE_STEPS}; 0 = no probe)")
    group.add_argument("--probe_states", type=positive_int, default=PROBE_STATES, metavar="N",
                       help=f"replay states the capacity probe fits (default {PROBE_STATES})")


def make_jobs(domain: DQNDomain, args: argparse.Namespace) -> List[RunJob]:
    """One job per (agent, seed); raises UsageError for a bad agent, setting or env option.
    The resolved ``sweep`` and ``env`` sections are written back to ``args`` (what the rest of
    the launcher reads: agents, seeds, outdir, jobs, the env options)."""
    tree, data = resolve_config(domain, args)
    write_back(args, tree.env)
    write_back(args, getattr(tree, SWEEP))
    refs = [args.agent_idx] if args.agent_idx is not None else args.agents
    specs = resolve_agents(refs, ALGO)
    overrides = explicit_interventions(tree, data)
    check_agent_settings(specs, overrides, ALGO)
    env_options = domain.env_options(args)
    from palr.experiments.sweep import RunJob, run_dir_for
    dqn = {**{key: getattr(tree.dqn, key) for key in data.get("dqn", {})},
           **{key: getattr(tree.schedule, key) for key in data.get("schedule", {})}}
    options = {"env": env_options, "dqn": dqn, "device": args.device,
               "overrides": overrides, "checkpoint_every": args.checkpoint_every,
               **display_options(args)}
    options["probe"] = {"steps": tree.probe.steps, "states": tree.probe.states} \
        if tree.probe.steps else None
    options["max_reward"] = domain.max_reward
    jobs = []
    for spec in specs:
        for seed in range(args.seed_offset, args.seed_offset + args.seeds):
            name = spec.display_name(ALGO)
            job = RunJob(domain=domain.name, agent_index=spec.index, agent_name=name, seed=seed,
                         run_dir=str(run_dir_for(args.outdir, name, seed)), options=dict(options))
            job.identity = dqn_identity(job)
            jobs.append(job)
    return jobs


def split_dqn_settings(dqn: Dict[str, Any]) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """A job's DQN settings as ``(DQNConfig fields, TrainingSchedule fields)``."""
    from palr.experiments.schedule import TrainingSchedule
    schedule = {f.name for f in dataclasses.fields(TrainingSchedule)}
    agent = {k: v for k, v in dqn.items() if k not in schedule}
    return agent, {k: v for k, v in dqn.items() if k in schedule}


def _dqn_config(job: RunJob) -> Any:
    from palr.agents.dqn import DQNConfig
    agent, _ = split_dqn_settings(job.options["dqn"])
    return DQNConfig(**dict(agent, seed=job.seed, device=job.options["device"]))


def dqn_schedule(job: RunJob) -> Any:
    """The job's :class:`~palr.experiments.schedule.TrainingSchedule` (DQN: no random warm-up,
    one update per ``train_frequency`` env steps from ``learning_starts`` on, priming)."""
    from palr.experiments.schedule import TrainingSchedule
    return TrainingSchedule(**split_dqn_settings(job.options["dqn"])[1])


def dqn_settings(job: RunJob) -> Dict[str, Any]:
    """Every resolved DQN setting of a job, the agent's config and its schedule, one value each:
    what the run records as ``config.dqn`` and its identity holds (the key set of the runs made
    when the schedule was part of DQNConfig, so their fingerprints stay the same, plus any other
    schedule field that was set)."""
    schedule = dqn_schedule(job)
    return {**dataclasses.asdict(_dqn_config(job)),
            **{key: getattr(schedule, key) for key in SCHEDULE_KEYS},
            **split_dqn_settings(job.options["dqn"])[1]}


def dqn_identity(job: RunJob) -> Dict[str, Any]:
    """The run identity of a DQN job: domain, agent, seed, environment options, the resolved DQN
    config, every intervention's resolved config and the task-end capacity probe's settings
    (:mod:`palr.experiments.run_identity`)."""
    from palr.interventions import build_stack, stack_settings
    spec = resolve_agent(job.agent_index, ALGO)
    dqn = {k: v for k, v in dqn_settings(job).items() if k != "seed"}
    return make_identity({
        "domain": job.domain, "agent_idx": spec.index, "seed": job.seed,
        "env": job.options["env"], "dqn": dqn, "probe": job.options.get("probe"),
        "interventions": stack_settings(build_stack(spec, job.options["overrides"])),
    })


def run_dqn_job(job: RunJob) -> Dict[str, Any]:
    """Build env + DQN + interventions for one job and train (or resume) it."""
    from palr.agents.dqn import DQNAgent
    from palr.experiments.trainer import EpisodicTrainer
    from palr.interventions import build_stack

    configure_torch()
    domain = get_domain(job.domain)
    opts = job.options
    env, tasks, threshold = domain.make_env(opts["env"], job.seed)
    if domain.describe_env is not None:
        print(f"[{domain.name}] {job.label}: {domain.describe_env(env)}", file=sys.stderr,
              flush=True)
    config = _dqn_config(job)
    stack = build_stack(resolve_agent(job.agent_index, ALGO), opts["overrides"])
    agent = DQNAgent(int(env.observation_space.shape[0]), int(env.action_space.n), config, stack)
    recorder, settings = dqn_run_records(job, stack, tasks, threshold)
    return EpisodicTrainer(env, agent, recorder, settings, dqn_schedule(job),
                           task_end_probe=_capacity_probe(agent, opts.get("probe"), job.seed)
                           ).run()


def dqn_run_records(job: RunJob, stack: Any, tasks: List[Dict[str, Any]], threshold: float
                    ) -> Tuple[Any, Any]:
    """The :class:`~palr.experiments.records.RunRecorder` (header: identity, config, task
    windows) and :class:`~palr.experiments.trainer.TrainerSettings` of a DQN job's run, whose
    intervention stack is ``stack`` and environment has ``tasks`` windows."""
    from palr.experiments.records import RunRecorder
    from palr.experiments.trainer import TrainerSettings
    from palr.interventions import stack_settings
    domain = get_domain(job.domain)
    opts = job.options
    identity = job.identity if job.identity is not None else dqn_identity(job)
    spec = resolve_agent(job.agent_index, ALGO)
    by_steps = "end_step" in tasks[-1]  # phases counted in env steps
    total = None if by_steps else tasks[-1]["end_episode"]
    total_steps = tasks[-1]["end_step"] if by_steps else None
    header = {
        "domain": domain.name, "agent": job.agent_name, "agent_idx": job.agent_index,
        "seed": job.seed, "score_name": "return", "score_threshold": threshold, "tasks": tasks,
        "config": {"dqn": dqn_settings(job), "env": opts["env"],
                   "interventions": list(spec.interventions), "overrides": opts["overrides"],
                   "total_episodes": total, "total_env_steps": total_steps,
                   "probe": opts.get("probe"), "max_reward": opts.get("max_reward"),
                   "intervention_settings": stack_settings(stack)},
        **identity_fields(identity),
    }
    if opts["env"].get("reward_rate_window"):  # the run records its reward rate (JBW)
        header["reward_rate"] = {"window": int(opts["env"]["reward_rate_window"])}
    settings = TrainerSettings(run_dir=pathlib.Path(job.run_dir), total_episodes=total,
                               checkpoint_every=opts["checkpoint_every"],
                               description=job.label, total_env_steps=total_steps,
                               **trainer_display(opts))
    return RunRecorder(header), settings


def _capacity_probe(agent: Any, options: Optional[Dict[str, int]], seed: int) -> Any:
    """The task-end capacity probe of a DQN agent's Q-network, or None when it is off."""
    if not options:
        return None
    from palr.capacity_probe import CapacityProbeConfig
    from palr.experiments.task_end_probe import ReplayCapacityProbe
    return ReplayCapacityProbe({agent.NET: agent.q}, agent.replay,
                               CapacityProbeConfig(steps=options["steps"], states=options["states"]),
                               seed=10_007 * int(seed) + 0xCA9, device=agent.device)


def main(domain: DQNDomain, argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser(domain)
    args = parser.parse_args(argv)
    try:
        if args.print_config:  # creates nothing
            print_tree(resolve_config(domain, args)[0], config_bindings(domain))
            return 0
        check_device(args.device)
        torch_threads()
        jobs = make_jobs(domain, args)  # args.outdir, args.jobs: as resolved (flag, --set, file)
        outdir = check_writable_dir(args.outdir)
        if args.summary_only:
            check_has_runs(outdir)
        create_dir(outdir)
    except UsageError as err:
        fail(parser.prog, str(err))
    if not args.summary_only:
        status = train(parser.prog, jobs, args)
        if status:
            return status
    if args.no_summary:
        print(f"runs: {outdir / 'runs'} (not summarised, --no_summary: {parser.prog} "
              f"--summary_only --outdir {outdir} summarises them)", file=sys.stderr)
        return 0
    return summarise(parser.prog, domain, outdir, args.batch_seeds)


def check_has_runs(outdir: pathlib.Path) -> None:
    """UsageError unless ``outdir`` holds runs to summarise (``--summary_only``)."""
    from palr.experiments.sweep import collection
    if not collection(outdir):
        raise UsageError(f"no runs in {outdir / 'runs'} to summarise; train them first "
                         "(without --summary_only), or give the --outdir they are in")


def train(prog: str, jobs: Sequence[RunJob], args: argparse.Namespace) -> int:
    """Train (or resume) ``jobs`` as the sweep, seed-batched with ``--batch_seeds``; the exit
    status of a stopped sweep (2, 75 or 1), else 0."""
    from palr.experiments.sweep import SweepStopped, execute_for_cli
    configure_torch()
    run_one: Callable[[Any], Any] = run_dqn_job
    to_run: Sequence[Any] = jobs
    if args.batch_seeds:  # one job per agent, its seeds batched (palr.batched.runner)
        from palr.batched.runner import batched_sweep
        to_run, run_one = batched_sweep(jobs)
    try:
        execute_for_cli(prog, to_run, run_one, parallel=args.jobs)
    except SweepStopped as stop:
        return stop.exit_status
    return 0


def summarise(prog: str, domain: DQNDomain, outdir: pathlib.Path, batch_seeds: bool) -> int:
    """Merge, summarise and plot every run in ``outdir`` (this launch's and earlier ones');
    exit status 0, or one line and 1 (a full disk) or 2 (runs of other settings)."""
    from palr.experiments.sweep import collection, finalize
    runs = collection(outdir)
    try:
        finalize(runs, outdir / f"{domain.name}_raw_results.json",
                 outdir / "RESULTS_SUMMARY.txt", outdir / "plots")
    except OSError as err:  # a full disk: one line; the runs and earlier files are intact
        fail(prog, output_failure(err, "--outdir"), status=1)
    except ValueError as err:  # runs of other settings in the same output directory
        fail(prog, f"cannot summarise {outdir}: {err}")
    where = ("result.json and tb/; each batch's checkpoint.pt in batches/" if batch_seeds
             else "result.json, checkpoint.pt and tb/")
    print(f"results: {outdir} ({len(runs)} runs summarised: {domain.name}_raw_results.json, "
          f"RESULTS_SUMMARY.txt, plots/, runs/<agent>_seed<k>/ with {where})", file=sys.stderr)
    return 0
