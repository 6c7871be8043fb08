"""Continual World (Meta-World v3 task sequences) with SAC: the original ``run_cw_experiments.py``.

Each (seed, agent) pair trains one SAC agent through a task sequence. What it trains is named
everywhere by its sequence label (:func:`palr.envs.continual_world.sequence_label`: ``cw10``,
``cw20``, ``mt10``, ``mt10x2``, ``<name>first<N>`` for a prefix), and how by its preset
(:mod:`palr.experiments.cw_presets`: ``silent`` switches by default, ``cw-paper`` for Continual
World's published setup). Outputs, under ``--outdir`` (default
``palr_plasticity_aware_lr/results``):

- ``cw_checkpoint<suffix>.json``: the finished run's result (schema ``palr.run/1``, with its
  ``sequence`` label and the evaluations of ALL tasks every ``--eval_every`` env steps and at
  every task end). If it exists the pair is skipped entirely.
- ``cw_runs/<suffix>/``: ``checkpoint.pt`` (mid-run, for resuming a killed run), a live
  ``result.json`` and ``tb/``.

The suffix is ``--ckpt_suffix`` (the original launcher passes ``_cw20_seed<S>_agent<A>``; a
suffix that starts with another sequence's label than the run's is refused), or
``_<label>_seed<S>_agent<A>`` by default. ``--reference`` instead trains single-task SAC-FixedLR
runs from scratch on every task of the sequence, with the same settings
(``cw_checkpoint_reference_<task>_seed<S>.json``): the baselines of Wolczyk et al.'s forward
transfer.

Training schedule (Wolczyk et al. 2021; :func:`cw_schedule`): uniform random actions for the
first ``start_steps`` env steps, then, from ``update_after`` on, ``update_every`` gradient
updates after every ``update_every`` env steps; counted from the start of the run (``silent``)
or of every task (``cw-paper``).
"""
from __future__ import annotations

import argparse
import dataclasses
import pathlib
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence


from palr.agent_table import AGENTS, resolve_agent
from palr.experiments.cli import (OneLineParser, UsageError, add_batch_seeds_arg,
                                  add_common_run_args,
                                  check_agent_settings, check_device, check_writable_dir,
                                  configure_torch, create_dir, display_options, fail,
                                  file_name_part, non_negative_int, output_failure,
                                  positive_int, resolve_agents, torch_threads)
from palr.experiments.cw_evaluation import EvaluationProtocol, evaluate_all
from palr.experiments.cw_presets import (DEFAULT_PRESET, FLAG_DEFAULTS, PRESETS, TaskProtocol,
                                         cw_target_entropy)
from palr.experiments.files import atomic_write_json
from palr.experiments.launcher_config import (SWEEP, FlagBindings, explicit_interventions,
                                              flag_section, print_tree, resolve_tree,
                                              write_back)
from palr.experiments.progress import DISPLAY_KEYS, trainer_display
from palr.experiments.run_identity import identity_fields, make_identity
from palr.experiments.run_lock import remove_stale_temp_files
from palr.experiments.run_state import FINISHED, RESULT_FILE, read_result
from palr.paths import results_dir

if TYPE_CHECKING:  # the sweep (and torch) are imported only once every input is valid
    from palr.experiments.sweep import RunJob

ALGO = "SAC"
DOMAIN = "cw"
DEFAULT_AGENTS = ("0", "3", "4", "5", "6")
#: launcher flags that are SACConfig fields (the rest of :data:`FLAG_DEFAULTS` is section ``cw``)
SAC_FLAGS = ("network", "batch_size")
#: the run-level flags (which runs exist and where), the tree's ``sweep`` section
SWEEP_FLAGS = ("agents", "seeds", "seed_offset", "outdir", "jobs", "sequence", "num_tasks",
               "preset")
#: SACConfig fields other flags own: the seed, the device and the preset's task protocol
RESERVED = {"sac.seed": "--seeds/--seed_offset", "sac.device": "--device",
            **{f"sac.{name}": "--preset" for name in (
                "multi_head", "hide_task_id", "per_task_alpha", "reset_replay_on_task",
                "reset_optimizer_on_task", "init_alpha", "target_entropy")}}


# --- command line ------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """The CW command line (its preset flags are shorthands of :func:`config_bindings`' tree)."""
    return _parser_and_bindings()[0]


def config_bindings() -> FlagBindings:
    """The CW config tree (``sac``: SACConfig, ``cw``: episodes, schedule and evaluation,
    ``interventions``) and which flags write which of its fields."""
    return _parser_and_bindings()[1]


def _parser_and_bindings() -> tuple:
    from palr.agents.sac import SACConfig
    from palr.intervention_configs import InterventionSettings
    parser = OneLineParser(
        prog="run_cw_experiments.py",
        description="Continual World (Meta-World v3 task sequences) with SAC. "
                    "Agents: " + ", ".join(f"{s.index}={s.display_name(ALGO)}" for s in AGENTS))
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--sequence", choices=("cw10", "cw20", "mt10", "mt10x2"), default=None,
                       help="cw10/cw20: Continual World's CW10/CW20 (default cw10); mt10: the "
                            "original launcher's MT10 order; mt10x2: every MT10 task twice, "
                            "shuffled with the seed")
    which.add_argument("--cw20", action="store_true", help="20 tasks: --sequence cw20 (with "
                       "--cw_order mt10: mt10x2)")
    which.add_argument("--cw10", action="store_true", help="10 tasks: --sequence cw10 (default)")
    parser.add_argument("--cw_order", choices=("cw10", "mt10"), default=None,
                        help="base order for --cw10/--cw20 (default cw10); mt10 gives mt10/mt10x2")
    parser.add_argument("--num_tasks", type=positive_int, default=None,
                        help="use only the first N tasks of the sequence (small runs, tests; the "
                             "run is labelled <sequence>first<N>)")
    parser.add_argument("--preset", choices=tuple(PRESETS), default=DEFAULT_PRESET,
                        help="silent: switches not told to the agent (default); cw-paper: "
                             "Continual World's published setup (task one-hot, one head and "
                             "alpha per task, resets and warm-up at every task, 1M steps per "
                             "task). Flags below override the preset's values")
    parser.add_argument("--episodes_per_task", type=positive_int, default=None,
                        help="episodes per task (silent 200, cw-paper 5000 = 1M steps)")
    parser.add_argument("--max_episode_steps", type=positive_int, default=None,
                        help="episode length (200)")
    parser.add_argument("--agent_idx", default=None,
                        help="a single agent (index or name); default: agents 0 3 4 5 6")
    parser.add_argument("--agent", dest="agent_name", default=None,
                        help="a single agent by name (e.g. PALR-SAC)")
    parser.add_argument("--agents", nargs="+", default=None, help="several agents")
    parser.add_argument("--batch_size", type=positive_int, default=None, help="SAC batch (128)")
    parser.add_argument("--network", choices=("relu", "cw"), default=None,
                        help="relu: 4x256 ReLU MLP (silent); cw: Continual World's LayerNorm+tanh, "
                             "leaky ReLU (cw-paper)")
    parser.add_argument("--reward_version", choices=("v1", "v2"), default=None,
                        help="Meta-World v3 reward functions: v2 (its default; silent) or v1 (the "
                             "original release's, as Continual World; cw-paper)")
    parser.add_argument("--start_steps", type=non_negative_int, default=None,
                        help="uniform-random actions first (10000)")
    parser.add_argument("--update_after", type=non_negative_int, default=None,
                        help="env steps before the first update (1000)")
    parser.add_argument("--update_every", type=positive_int, default=None,
                        help="env steps between bursts of as many updates (50)")
    parser.add_argument("--eval_episodes", type=non_negative_int, default=None,
                        help="stochastic evaluation episodes of EVERY task per evaluation, the "
                             "metric (10; 0: no evaluation)")
    parser.add_argument("--eval_deterministic_episodes", type=non_negative_int, default=None,
                        help="deterministic evaluation episodes per task, recorded (1)")
    parser.add_argument("--eval_every", type=non_negative_int, default=None,
                        help="evaluate every N env steps (20000) and at every task end "
                             "(0: only at task ends)")
    parser.add_argument("--ckpt_suffix", type=file_name_part, default=None,
                        help="checkpoint name suffix, a plain file-name part (default "
                             "_<sequence label>_seed<S>_agent<A>)")
    parser.add_argument("--reference", action="store_true",
                        help="train single-task SAC-FixedLR reference runs (forward transfer)")
    parser.add_argument("--outdir", type=pathlib.Path, default=results_dir(),
                        help="output folder: cw_checkpoint<suffix>.json results and cw_runs/ "
                             "(default palr_plasticity_aware_lr/results)")
    parser.add_argument("--status", action="store_true",
                        help="train nothing: print '<seed> <agent> <new|running|finished> <file>' "
                             "for every run these flags name (exit 2 if one holds other settings, "
                             "or with --batch_seeds a configuration that does not batch)")
    parser.add_argument("--label", action="store_true",
                        help="train nothing: print the sequence label these flags run (cw20, "
                             "cw10first2, ...), which names their files")
    add_common_run_args(parser)
    add_batch_seeds_arg(parser)  # dispatch in main(): palr.batched.cw_runner
    parser.set_defaults(seeds=1)
    by_dest = {a.dest: a for a in parser._actions}
    sweep_actions = [by_dest[k] for k in SWEEP_FLAGS]
    sweep_section = flag_section("CWSweep", sweep_actions, "Which runs the launch trains and "
                                 "where (the flags of the same names; agents null: 0 3 4 5 6, "
                                 "sequence null: cw10 or what --cw20/--cw10/--cw_order say); "
                                 "not part of any run's identity.")
    cw_actions = [by_dest[k] for k in FLAG_DEFAULTS[DEFAULT_PRESET] if k not in SAC_FLAGS]
    cw_section = flag_section("CWRun", cw_actions, "Continual World's episodes, training "
                              "schedule and evaluation (the flags of the same names; defaults "
                              "from --preset).")
    root = dataclasses.make_dataclass("CWConfig", [
        (SWEEP, sweep_section, dataclasses.field(default_factory=sweep_section)),
        ("sac", SACConfig, dataclasses.field(default_factory=SACConfig)),
        ("cw", cw_section, dataclasses.field(default_factory=cw_section)),
        ("interventions", InterventionSettings,
         dataclasses.field(default_factory=InterventionSettings))])
    root.__doc__ = ("Which Continual World SAC runs to train (sweep) and everything a run trains "
                    "with (palr.config).")
    bindings = FlagBindings(root, labels={"sac": "SAC", "cw": "CW"}, reserved=dict(RESERVED))
    bindings.bind([by_dest[k] for k in SAC_FLAGS], "sac")
    bindings.bind(cw_actions, "cw")
    bindings.bind(sweep_actions, SWEEP)
    bindings.bind([by_dest["measure_freq"], by_dest["diag_batch_size"]], "interventions")
    return parser, bindings


def resolve_config(args: argparse.Namespace) -> tuple:
    """The validated config tree of ``args`` (preset < --config < --set < flags; the preset is
    ``sweep.preset`` as set in any of them) and the mapping of what was set; UsageError/
    ConfigError naming the key otherwise."""
    def preset_defaults(data: Dict[str, Any]) -> Dict[str, Any]:
        name = (data.get(SWEEP) or {}).get("preset") or DEFAULT_PRESET
        preset = FLAG_DEFAULTS.get(name, {})  # an unknown name is refused by the tree
        return {"sac": {k: v for k, v in preset.items() if k in SAC_FLAGS},
                "cw": {k: v for k, v in preset.items() if k not in SAC_FLAGS}}
    return resolve_tree(args, config_bindings(), preset=preset_defaults)


def apply_preset(args: argparse.Namespace) -> None:
    """Fill every flag left unset with the preset's value (:data:`FLAG_DEFAULTS`)."""
    for key, value in FLAG_DEFAULTS[args.preset].items():
        if getattr(args, key) is None:
            setattr(args, key, value)


def resolve_sequence(args: argparse.Namespace) -> tuple:
    """``(sequence name, number of tasks, label)`` the flags ask for (the name of the sequence
    the tasks are a prefix of: ``--cw10 --num_tasks 15`` is ``cw20``); UsageError if invalid."""
    from palr.envs.continual_world import parse_sequence_label, sequence_label, task_sequence
    if args.sequence is not None and args.cw_order is not None:
        raise UsageError("--cw_order only goes with --cw10/--cw20; --sequence names the whole "
                         "sequence (cw10, cw20, mt10, mt10x2)")
    if args.sequence is not None and (args.cw20 or args.cw10):
        raise UsageError(f"--{'cw20' if args.cw20 else 'cw10'} and sequence {args.sequence} "
                         "(--sequence, --set sweep.sequence or --config) both name the sequence; "
                         "give one")
    name = args.sequence or sequence_label(args.cw_order or "cw10", 20 if args.cw20 else 10)
    try:
        label = sequence_label(name, args.num_tasks)
        tasks = task_sequence(name, args.num_tasks, seed=args.seed_offset)
    except ValueError as err:
        raise UsageError(str(err)) from None
    return parse_sequence_label(label)[0], len(tasks), label


def check_suffix_label(suffix: str, label: str) -> None:
    """Refuse a ``--ckpt_suffix`` that names another sequence than the run's (a file named
    cw20 holds Continual World's CW20)."""
    from palr.envs.continual_world import parse_sequence_label
    first = suffix.lstrip("_").split("_")[0]
    if parse_sequence_label(first) is not None and first != label:
        raise UsageError(f"--ckpt_suffix {suffix} names sequence {first}, but this run trains "
                         f"{label}; start the suffix with _{label}_ (or leave --ckpt_suffix out)")


def _agent_refs(args: argparse.Namespace) -> List[str]:
    chosen = [x for x in (args.agent_idx, args.agent_name) if x is not None]
    if args.agents:
        chosen.extend(args.agents)
    return chosen or list(DEFAULT_AGENTS)


def make_jobs(args: argparse.Namespace) -> List[RunJob]:
    from palr.envs.continual_world import task_sequence
    tree, data = resolve_config(args)
    write_back(args, getattr(tree, SWEEP))  # agents, seeds, outdir, preset ...: as resolved
    for key in FLAG_DEFAULTS[args.preset]:  # the resolved values, read as the flags'
        setattr(args, key, getattr(tree.sac if key in SAC_FLAGS else tree.cw, key))
    sequence, num_tasks, label = resolve_sequence(args)
    specs = resolve_agents(["0"] if args.reference else _agent_refs(args), ALGO)
    overrides = explicit_interventions(tree, data)
    check_agent_settings(specs, overrides, ALGO)
    sac = {key: getattr(tree.sac, key) for key in data.get("sac", {}) if key not in SAC_FLAGS}
    seeds = range(args.seed_offset, args.seed_offset + args.seeds)
    pairs = [(spec, seed) for seed in seeds for spec in specs]
    if args.ckpt_suffix is not None and len(pairs) > 1 and not args.reference:
        raise UsageError("--ckpt_suffix names ONE run; with several seeds/agents leave it out "
                         f"(each run gets _{label}_seed<S>_agent<A>)")
    if args.ckpt_suffix is not None and not args.reference:
        check_suffix_label(args.ckpt_suffix, label)
    common = {
        "sequence": sequence, "num_tasks": num_tasks, "label": label, "preset": args.preset,
        "protocol": PRESETS[args.preset].to_dict(),
        **{key: getattr(args, key) for key in FLAG_DEFAULTS[args.preset]},
        "overrides": overrides, "sac_overrides": sac, "device": args.device,
        "checkpoint_every": args.checkpoint_every,
        **display_options(args), "outdir": str(args.outdir),
    }
    jobs = []
    for spec, seed in pairs:
        if args.reference:
            for task in dict.fromkeys(task_sequence(sequence, num_tasks, seed=seed)):
                suffix = f"_reference_{task}_seed{seed}"
                jobs.append(_job(spec, seed, suffix, args.outdir, dict(common, reference_task=task)))
        else:
            suffix = args.ckpt_suffix if args.ckpt_suffix is not None else \
                f"_{label}_seed{seed}_agent{spec.index}"
            jobs.append(_job(spec, seed, suffix, args.outdir, dict(common)))
    return jobs


def _job(spec: Any, seed: int, suffix: str, outdir: pathlib.Path, options: Dict[str, Any]) -> RunJob:
    from palr.experiments.sweep import RunJob
    options["suffix"] = suffix
    job = RunJob(domain=DOMAIN, agent_index=spec.index, agent_name=spec.display_name(ALGO),
                 seed=seed, run_dir=str(outdir / "cw_runs" / suffix.lstrip("_")), options=options)
    job.published = str(checkpoint_json(job))
    job.identity = cw_identity(job)
    return job


def _protocol(job: RunJob) -> TaskProtocol:
    return TaskProtocol(**job.options["protocol"])


def _evaluation(job: RunJob) -> EvaluationProtocol:
    opts = job.options
    return EvaluationProtocol(opts["eval_episodes"], opts["eval_deterministic_episodes"],
                              opts["eval_every"])


def _sac_config(job: RunJob) -> Any:
    from palr.agents.sac import SACConfig
    from palr.envs.continual_world import ACT_DIM
    opts, protocol = job.options, _protocol(job)
    target_entropy = None if protocol.target_entropy_std is None else \
        cw_target_entropy(ACT_DIM, protocol.target_entropy_std)
    return SACConfig(**opts.get("sac_overrides", {}), network=opts["network"],
                     batch_size=opts["batch_size"], seed=job.seed,
                     device=opts["device"], multi_head=protocol.multi_head,
                     hide_task_id=protocol.hide_task_id, per_task_alpha=protocol.per_task_alpha,
                     reset_replay_on_task=protocol.reset_replay,
                     reset_optimizer_on_task=protocol.reset_optimizer,
                     init_alpha=protocol.init_alpha, target_entropy=target_entropy)


def cw_num_tasks(job: RunJob, env: Any) -> int:
    """The length of the task one-hot ending the run's observations (0: the preset gives none)."""
    return env.num_tasks if _protocol(job).task_id else 0


def cw_schedule(job: RunJob) -> Any:
    """The run's :class:`~palr.experiments.schedule.TrainingSchedule` from its launcher flags:
    ``start_steps`` random actions, the first update at ``update_after``, then ``update_every``
    updates every ``update_every`` env steps, per task with the preset's ``per_task_schedule``."""
    from palr.experiments.schedule import TrainingSchedule
    opts = job.options
    return TrainingSchedule(random_steps=opts["start_steps"], learning_starts=opts["update_after"],
                            train_frequency=opts["update_every"],
                            gradient_steps=opts["update_every"],
                            per_task=_protocol(job).per_task_schedule)


def cw_identity(job: RunJob) -> Dict[str, Any]:
    """The run identity of a Continual World job (:mod:`palr.experiments.run_identity`): the task
    sequence (or the single reference task), environment (task id, reward functions), episode
    budget, SAC config (heads, temperatures, resets), training schedule, evaluation protocol and
    every intervention's resolved config."""
    from palr.interventions import build_stack, stack_settings
    opts = job.options
    spec = resolve_agent(job.agent_index, ALGO)
    reference = opts.get("reference_task")
    sequence = {"reference_task": reference} if reference is not None else \
        {"name": opts["sequence"], "num_tasks": opts["num_tasks"]}
    sac = {k: v for k, v in dataclasses.asdict(_sac_config(job)).items() if k != "seed"}
    evaluation = _evaluation(job)
    return make_identity({
        "domain": DOMAIN, "agent_idx": spec.index, "seed": job.seed, "sequence": sequence,
        "env": {"task_id": _protocol(job).task_id, "reward_version": opts["reward_version"]},
        "episodes_per_task": opts["episodes_per_task"],
        "max_episode_steps": opts["max_episode_steps"],
        "schedule": {**{k: opts[k] for k in ("start_steps", "update_after", "update_every")},
                     "per_task": _protocol(job).per_task_schedule},
        "evaluation": {"episodes": evaluation.episodes,
                       "deterministic_episodes": evaluation.deterministic_episodes,
                       "every_steps": evaluation.every_steps},
        "sac": sac, "interventions": stack_settings(build_stack(spec, opts["overrides"])),
    })


def checkpoint_json(job: RunJob) -> pathlib.Path:
    """The original per-(seed, agent) result file ``cw_checkpoint<suffix>.json``."""
    return pathlib.Path(job.options["outdir"]) / f"cw_checkpoint{job.options['suffix']}.json"


def cw_env(job: RunJob) -> Any:
    """The run's training :class:`~palr.envs.continual_world.ContinualWorldEnv` (the sequence, or
    the single reference task)."""
    from palr.envs.continual_world import ContinualWorldEnv
    opts, reference = job.options, job.options.get("reference_task")
    return ContinualWorldEnv(sequence=[reference] if reference is not None else opts["sequence"],
                             num_tasks=1 if reference is not None else opts["num_tasks"],
                             episodes_per_task=opts["episodes_per_task"],
                             max_episode_steps=opts["max_episode_steps"], seed=job.seed,
                             task_id=_protocol(job).task_id,
                             reward_version=opts["reward_version"])


def cw_score(_ret: float, info: Dict[str, Any]) -> float:
    """An episode's score: whether it succeeded at some step."""
    return float(info.get("episode_success", 0.0))


def cw_run_records(job: RunJob, env: Any, agent: Any) -> tuple:
    """``(recorder, trainer settings, episode hook)`` of a Continual World run of ``agent`` on
    ``env``: the ``palr.run/1`` header (tasks, config, identity), and the hook that evaluates
    ALL tasks (``agent.act(obs, explore, evaluation=True)``) every ``eval_every`` env steps and
    at every task end. Shared by the separate run and a seed-batch member."""
    from palr.envs.continual_world import describe_sequence, make_task_env
    from palr.experiments.records import RunRecorder
    from palr.experiments.trainer import EpisodicTrainer, TrainerSettings
    opts = job.options
    protocol, evaluation = _protocol(job), _evaluation(job)
    reference = opts.get("reference_task")
    spec = resolve_agent(job.agent_index, ALGO)
    tasks = [{"index": i, "name": name, "start_episode": start, "end_episode": end}
             for i, (name, (start, end)) in enumerate(zip(env.tasks, env.windows))]
    header: Dict[str, Any] = {
        "domain": DOMAIN, "agent": job.agent_name, "agent_idx": job.agent_index, "seed": job.seed,
        "score_name": "success", "score_threshold": 0.9, "tasks": tasks,
        "config": {"sac": dataclasses.asdict(_sac_config(job)),
                   "interventions": list(spec.interventions),
                   **{k: v for k, v in opts.items() if k not in DISPLAY_KEYS + ("outdir",)}},
        **identity_fields(job.identity if job.identity is not None else cw_identity(job)),
    }
    if reference is not None:
        header.update(reference=True, reference_task=reference)
    else:
        header.update(sequence=opts["label"], sequence_description=describe_sequence(opts["label"]))
    recorder = RunRecorder(header)
    eval_envs = [make_task_env(name, job.seed, opts["max_episode_steps"], stream="eval",
                               reward_version=opts["reward_version"],
                               task_id=(i, env.num_tasks) if protocol.task_id else None)
                 for i, name in enumerate(env.tasks)]
    ends = {end: i for i, (_, end) in enumerate(env.windows)}

    def evaluate(trainer: EpisodicTrainer, _info: Dict[str, Any]) -> None:
        episode, steps = trainer.episode, trainer.env_steps
        ended = trainer.recorder.episodes["env_step"]
        previous = ended[-2] if len(ended) > 1 else 0
        at_task_end = episode in ends
        if not evaluation.due(steps, previous, at_task_end):
            return
        scores, deterministic = evaluate_all(agent, eval_envs, evaluation,
                                             seed=job.seed * 1_000_003 + episode)
        recorder.evaluation(steps, ends.get(episode, trainer.task), scores,
                            during_task=None if at_task_end else trainer.task,
                            deterministic_scores=deterministic)
        if trainer.run_log is not None:
            trainer.run_log.scalars({f"{i:02d}_{name}": scores[i]
                                     for i, name in enumerate(env.tasks)}, steps, prefix="eval/")
            if deterministic is not None:
                trainer.run_log.scalars({f"{i:02d}_{name}": deterministic[i]
                                         for i, name in enumerate(env.tasks)}, steps,
                                        prefix="eval_deterministic/")

    settings = TrainerSettings(run_dir=pathlib.Path(job.run_dir), total_episodes=env.total_episodes,
                               checkpoint_every=opts["checkpoint_every"],
                               description=job.label, **trainer_display(opts))
    return recorder, settings, evaluate


def run_cw_job(job: RunJob) -> Dict[str, Any]:
    """Train (or resume) one Continual World run (the sweep publishes
    ``cw_checkpoint<suffix>.json``: :func:`publish_finished`)."""
    from palr.agents.sac import SACAgent
    from palr.experiments.trainer import EpisodicTrainer
    from palr.interventions import build_stack

    configure_torch()
    env = cw_env(job)
    spec = resolve_agent(job.agent_index, ALGO)
    sac = SACAgent(env.observation_space.shape[0], env.action_space.shape[0], _sac_config(job),
                   build_stack(spec, job.options["overrides"]),
                   num_tasks=cw_num_tasks(job, env))
    recorder, settings, evaluate = cw_run_records(job, env, sac)
    trainer = EpisodicTrainer(env, sac, recorder, settings, cw_schedule(job), score_fn=cw_score,
                              episode_hook=evaluate)
    return trainer.run()


def publish_finished(jobs: Sequence[RunJob]) -> None:
    """Write each finished run's result to its ``cw_checkpoint<suffix>.json`` (also a run that
    finished in an earlier invocation killed before publishing: the sweep skips it as finished).
    Only results with the job's own identity are published."""
    for job in jobs:
        target = checkpoint_json(job)
        remove_stale_temp_files(target.parent, [target.name])
        result = read_result(pathlib.Path(job.run_dir) / RESULT_FILE)
        if target.exists() or result is None or result.get("status") != FINISHED:
            continue
        if result.get("identity") == job.identity:
            atomic_write_json(target, result)


def print_status(jobs: Sequence[RunJob], batch_seeds: bool = False) -> None:
    """One line per job, ``<seed> <agent index> <new|running|finished> <published result>``: what
    the shell launchers (run_cw20.sh, run_on_HPC.sh) ask before starting runs (``batch_seeds``:
    as members of seed batches). Raises RunMismatch/RunLocked like a launch would."""
    batch_state: Dict[int, str] = {}  # a member's progress is its batch's checkpoint
    if batch_seeds:
        from palr.batched.runner import batch_jobs
        batch_state = {id(member): batch.state() for batch in batch_jobs(jobs)
                       for member in batch.members}
    for job in jobs:
        state = job.state(batch_member=batch_seeds)
        if state != "finished" and batch_state.get(id(job)) == "running":
            state = "running"
        print(f"{job.seed} {job.agent_index} {state} {checkpoint_json(job)}")


def _require_metaworld() -> None:
    """UsageError naming the install where metaworld is missing: refused before the output
    folder is created, not as every run's failure."""
    from palr.envs.continual_world import require_metaworld
    try:
        require_metaworld()
    except ImportError as err:
        raise UsageError(str(err)) from None


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.print_config:  # creates nothing
            print_tree(resolve_config(args)[0], config_bindings())
            return 0
        check_device(args.device)
        torch_threads()
        jobs = make_jobs(args)
        if args.label:  # creates nothing
            print(jobs[0].options["label"])
            return 0
        if args.batch_seeds:  # refused before anything runs (or is asked about), naming the fix
            from palr.batched.cw_runner import check_batchable
            for job in jobs:
                check_batchable(job)
        if args.status:  # creates nothing
            print_status(jobs, args.batch_seeds)
            return 0
        _require_metaworld()
        check_writable_dir(args.outdir)
        create_dir(args.outdir)
    except UsageError as err:
        fail(parser.prog, str(err))
    from palr.experiments.sweep import SweepStopped, execute_for_cli, print_ending
    configure_torch()
    to_run, run_one = jobs, run_cw_job
    if args.batch_seeds:  # one job per agent, its seeds batched (palr.batched.cw_runner)
        from palr.batched.runner import batched_sweep
        to_run, run_one = batched_sweep(jobs)
    try:
        execute_for_cli(parser.prog, to_run, run_one, parallel=args.jobs)
    except SweepStopped as stop:
        return stop.exit_status
    finally:
        try:
            publish_finished(jobs)
        except OSError as err:  # a full disk: one line; runs and earlier results are intact
            fail(parser.prog, output_failure(err, "--outdir"), status=1)
    label = jobs[0].options["label"]
    print_ending(f"{len(jobs)} run(s) of {label} from this command",
                 [str(checkpoint_json(job)) for job in jobs],
                 [*(f"{checkpoint_json(job)} (run directory {job.run_dir}: checkpoint, "
                    "result.json, tb/)" for job in jobs),
                  f"merge every run of {label} with merge_cw_checkpoints.py --suffix {label} "
                  f"--results_dir {args.outdir}"])
    return 0


__all__ = ["build_parser", "config_bindings", "resolve_config", "cw_schedule", "cw_num_tasks",
           "apply_preset", "resolve_sequence",
           "check_suffix_label", "make_jobs", "cw_identity", "cw_env", "cw_score", "cw_run_records",
           "run_cw_job", "publish_finished",
           "print_status", "main"]
