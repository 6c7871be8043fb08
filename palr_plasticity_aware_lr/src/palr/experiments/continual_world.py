"""Continual World (CW10/CW20 on Meta-World v3) with SAC: the seed's ``run_cw_experiments.py``.

Each (seed, agent) pair trains one SAC agent through the task sequence with silent switches
(single head, replay kept). Outputs, under ``--outdir`` (default
``palr_plasticity_aware_lr/results``):

- ``cw_checkpoint<suffix>.json``: the finished run's result (schema ``palr.run/1``, with the
  evaluations of ALL tasks at the end of every task). If it exists the pair is skipped entirely.
- ``cw_runs/<suffix>/``: ``checkpoint.pt`` (mid-run, for resuming a killed run), a live
  ``result.json`` and ``tb/``.

The suffix is ``--ckpt_suffix`` (the seed's launcher passes ``_cw20_seed<S>_agent<A>``), or
``_<cw10|cw20>_seed<S>_agent<A>`` by default. ``--reference`` instead trains single-task SAC
runs from scratch on every task of the sequence (``cw_checkpoint_reference_<task>_seed<S>.json``),
the baselines of Wolczyk et al.'s forward transfer.

Training schedule (Wolczyk et al. 2021): uniform random actions for the first ``start_steps``
env steps of the run, then, from ``update_after`` on, ``update_every`` gradient updates after
every ``update_every`` env steps. Unlike Continual World's CL defaults there is no replay or
optimizer reset and no warm-up at task switches: the switches are silent.
"""
from __future__ import annotations

import argparse
import dataclasses
import pathlib
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence

import numpy as np

from palr.agent_table import AGENTS, resolve_agent
from palr.experiments.cli import (OneLineParser, UsageError, add_common_run_args,
                                  check_agent_settings, check_device, check_writable_dir,
                                  configure_torch, create_dir, fail, file_name_part,
                                  intervention_overrides, non_negative_int, output_failure,
                                  positive_int, resolve_agents, torch_threads)
from palr.experiments.files import atomic_write_json
from palr.experiments.run_identity import identity_fields, make_identity
from palr.experiments.run_lock import remove_stale_temp_files
from palr.experiments.run_state import FINISHED, RESULT_FILE, read_result
from palr.paths import results_dir

if TYPE_CHECKING:  # the sweep (and torch) are imported only once every input is valid
    from palr.experiments.sweep import RunJob

ALGO = "SAC"
DOMAIN = "cw"
DEFAULT_AGENTS = ("0", "3", "4", "5", "6")


class SACContinualLearner:
    """The Continual World training schedule around a :class:`palr.agents.sac.SACAgent`.

    Gives the SAC agent the interface :class:`palr.experiments.trainer.EpisodicTrainer` drives
    (``act(obs, explore)``, ``observe``, ``updates``, ``on_episode_end``, ``on_task_switch``,
    ``state_dict`` with the replay buffer).
    """

    def __init__(self, sac: Any, start_steps: int, update_after: int, update_every: int) -> None:
        self.sac = sac
        self.stack = sac.stack
        self.start_steps = start_steps
        self.update_after = update_after
        self.update_every = update_every
        self.env_steps = 0

    @property
    def updates(self) -> int:
        return self.sac.num_updates

    def act(self, obs: np.ndarray, explore: bool = True) -> np.ndarray:
        if explore and self.env_steps < self.start_steps:
            return self.sac.random_action()
        return self.sac.act(obs, deterministic=not explore)

    def observe(self, obs: np.ndarray, action: np.ndarray, reward: float, next_obs: np.ndarray,
                terminated: bool) -> Optional[Dict[str, float]]:
        self.sac.observe(obs, action, reward, next_obs, terminated)
        self.env_steps += 1
        if self.env_steps < self.update_after or self.env_steps % self.update_every != 0:
            return None
        logged: Optional[Dict[str, float]] = None
        for _ in range(self.update_every):
            log = self.sac.update()
            if log:
                logged = log
        return logged

    def on_episode_end(self) -> None:
        self.sac.on_episode_end()

    def on_task_switch(self, task: int) -> None:
        self.sac.on_task_switch(task)

    def state_dict(self) -> Dict[str, Any]:
        return {"sac": self.sac.state_dict(include_replay=True), "env_steps": self.env_steps}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.sac.load_state_dict(state["sac"])
        self.env_steps = int(state["env_steps"])


def evaluate_task(agent: SACContinualLearner, env: Any, episodes: int, seed: int) -> float:
    """Mean success of ``episodes`` stochastic episodes (Continual World's metric).

    The first reset is seeded with ``seed`` and the policy noise comes from the agent's
    evaluation generator (checkpointed), so evaluating never changes training and a resumed run
    evaluates exactly as an uninterrupted one.
    """
    successes = []
    for k in range(episodes):
        obs, _ = env.reset(seed=seed) if k == 0 else env.reset()
        done, info = False, {}
        while not done:
            obs, _, terminated, truncated, info = env.step(
                agent.sac.act(obs, deterministic=False, evaluation=True))
            done = terminated or truncated
        successes.append(float(info.get("episode_success", 0.0)))
    return float(np.mean(successes))


# --- command line ------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="run_cw_experiments.py",
        description="Continual World (Meta-World v3 task sequences, silent switches) with SAC. "
                    "Agents: " + ", ".join(f"{s.index}={s.display_name(ALGO)}" for s in AGENTS))
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--cw20", action="store_true", help="20 tasks (each task twice)")
    length.add_argument("--cw10", action="store_true", help="10 tasks (default)")
    parser.add_argument("--cw_order", choices=("mt10", "cw10"), default="mt10",
                        help="mt10: the seed's MT10 tasks (CW20 shuffled with the seed); cw10: "
                             "canonical CW10 of Wolczyk et al. 2021 (CW20 = twice in order)")
    parser.add_argument("--num_tasks", type=positive_int, default=None,
                        help="use only the first N tasks of the sequence (small runs, tests)")
    parser.add_argument("--episodes_per_task", type=positive_int, default=200)
    parser.add_argument("--max_episode_steps", type=positive_int, default=200)
    parser.add_argument("--agent_idx", default=None,
                        help="a single agent (index or name); default: agents 0 3 4 5 6")
    parser.add_argument("--agent", dest="agent_name", default=None,
                        help="a single agent by name (e.g. PALR-SAC)")
    parser.add_argument("--agents", nargs="+", default=None, help="several agents")
    parser.add_argument("--batch_size", type=positive_int, default=128)
    parser.add_argument("--network", choices=("relu", "cw"), default="relu",
                        help="relu: 4x256 ReLU MLP; cw: Continual World's LayerNorm+tanh, leaky ReLU")
    parser.add_argument("--start_steps", type=non_negative_int, default=10_000)
    parser.add_argument("--update_after", type=non_negative_int, default=1000)
    parser.add_argument("--update_every", type=positive_int, default=50)
    parser.add_argument("--eval_episodes", type=non_negative_int, default=10,
                        help="stochastic evaluation episodes per task at every task end (0: none)")
    parser.add_argument("--eval_every", type=non_negative_int, default=0,
                        help="also evaluate all tasks every N training episodes (0: only at task ends)")
    parser.add_argument("--ckpt_suffix", type=file_name_part, default=None,
                        help="checkpoint name suffix, a plain file-name part (default "
                             "_<cw10|cw20>_seed<S>_agent<A>)")
    parser.add_argument("--reference", action="store_true",
                        help="train single-task SAC-FixedLR reference runs (forward transfer)")
    parser.add_argument("--outdir", type=pathlib.Path, default=results_dir())
    parser.add_argument("--status", action="store_true",
                        help="train nothing: print '<seed> <agent> <new|running|finished> <file>' "
                             "for every run these flags name (exit 2 if one holds other settings)")
    add_common_run_args(parser)
    parser.set_defaults(seeds=1)
    return parser


def _agent_refs(args: argparse.Namespace) -> List[str]:
    chosen = [x for x in (args.agent_idx, args.agent_name) if x is not None]
    if args.agents:
        chosen.extend(args.agents)
    return chosen or list(DEFAULT_AGENTS)


def make_jobs(args: argparse.Namespace) -> List[RunJob]:
    from palr.envs.continual_world import task_sequence
    num_tasks = args.num_tasks or (20 if args.cw20 else 10)
    label = "cw20" if num_tasks > 10 else "cw10"
    try:
        task_sequence(args.cw_order, num_tasks, seed=args.seed_offset)
    except ValueError as err:
        raise UsageError(str(err)) from None
    specs = resolve_agents(["0"] if args.reference else _agent_refs(args), ALGO)
    overrides = intervention_overrides(args)
    check_agent_settings(specs, overrides, ALGO)
    seeds = range(args.seed_offset, args.seed_offset + args.seeds)
    pairs = [(spec, seed) for seed in seeds for spec in specs]
    if args.ckpt_suffix is not None and len(pairs) > 1 and not args.reference:
        raise UsageError("--ckpt_suffix names ONE run; with several seeds/agents leave it out "
                         "(each run gets _<cw10|cw20>_seed<S>_agent<A>)")
    common = {
        "cw_order": args.cw_order, "num_tasks": num_tasks, "label": label,
        "episodes_per_task": args.episodes_per_task, "max_episode_steps": args.max_episode_steps,
        "batch_size": args.batch_size, "network": args.network, "start_steps": args.start_steps,
        "update_after": args.update_after, "update_every": args.update_every,
        "eval_episodes": args.eval_episodes, "eval_every": args.eval_every,
        "overrides": overrides, "device": args.device, "checkpoint_every": args.checkpoint_every,
        "progress": not args.no_progress, "tensorboard": not args.no_tensorboard,
        "outdir": str(args.outdir),
    }
    jobs = []
    for spec, seed in pairs:
        if args.reference:
            for task in dict.fromkeys(task_sequence(args.cw_order, num_tasks, seed=seed)):
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


def _sac_config(job: RunJob) -> Any:
    from palr.agents.sac import SACConfig
    opts = job.options
    return SACConfig(network=opts["network"], batch_size=opts["batch_size"], seed=job.seed,
                     device=opts["device"])


def cw_identity(job: RunJob) -> Dict[str, Any]:
    """The run identity of a Continual World job (:mod:`palr.experiments.run_identity`): the task
    sequence (or the single reference task), episode budget, SAC config, training schedule,
    evaluation protocol and every intervention's resolved config."""
    from palr.interventions import build_stack, stack_settings
    opts = job.options
    spec = resolve_agent(job.agent_index, ALGO)
    reference = opts.get("reference_task")
    sequence = {"reference_task": reference} if reference is not None else \
        {"order": opts["cw_order"], "num_tasks": opts["num_tasks"]}
    unread = ("seed", "start_steps", "update_after", "update_every")  # the schedule is below
    sac = {k: v for k, v in dataclasses.asdict(_sac_config(job)).items() if k not in unread}
    return make_identity({
        "domain": DOMAIN, "agent_idx": spec.index, "seed": job.seed, "sequence": sequence,
        "episodes_per_task": opts["episodes_per_task"],
        "max_episode_steps": opts["max_episode_steps"],
        "schedule": {k: opts[k] for k in ("start_steps", "update_after", "update_every")},
        "evaluation": {k: opts[k] for k in ("eval_episodes", "eval_every")},
        "sac": sac, "interventions": stack_settings(build_stack(spec, opts["overrides"])),
    })


def checkpoint_json(job: RunJob) -> pathlib.Path:
    """The seed's per-(seed, agent) result file ``cw_checkpoint<suffix>.json``."""
    return pathlib.Path(job.options["outdir"]) / f"cw_checkpoint{job.options['suffix']}.json"


def run_cw_job(job: RunJob) -> Dict[str, Any]:
    """Train (or resume) one Continual World run and publish ``cw_checkpoint<suffix>.json``."""
    from palr.agents.sac import SACAgent
    from palr.envs.continual_world import ContinualWorldEnv, make_task_env
    from palr.experiments.records import RunRecorder
    from palr.experiments.trainer import EpisodicTrainer, TrainerSettings
    from palr.interventions import build_stack

    configure_torch()
    opts = job.options
    reference = opts.get("reference_task")
    if reference is not None:
        env = ContinualWorldEnv(sequence=[reference], num_tasks=1,
                                episodes_per_task=opts["episodes_per_task"],
                                max_episode_steps=opts["max_episode_steps"], seed=job.seed)
    else:
        env = ContinualWorldEnv(sequence=opts["cw_order"], num_tasks=opts["num_tasks"],
                                episodes_per_task=opts["episodes_per_task"],
                                max_episode_steps=opts["max_episode_steps"], seed=job.seed)
    spec = resolve_agent(job.agent_index, ALGO)
    config = _sac_config(job)
    sac = SACAgent(env.observation_space.shape[0], env.action_space.shape[0], config,
                   build_stack(spec, opts["overrides"]))
    learner = SACContinualLearner(sac, opts["start_steps"], opts["update_after"],
                                  opts["update_every"])
    tasks = [{"index": i, "name": name, "start_episode": start, "end_episode": end}
             for i, (name, (start, end)) in enumerate(zip(env.tasks, env.windows))]
    header: Dict[str, Any] = {
        "domain": DOMAIN, "agent": job.agent_name, "agent_idx": job.agent_index, "seed": job.seed,
        "score_name": "success", "score_threshold": 0.9, "tasks": tasks,
        "config": {"sac": dataclasses.asdict(config), "interventions": list(spec.interventions),
                   **{k: v for k, v in opts.items() if k not in ("progress", "outdir")}},
        **identity_fields(job.identity if job.identity is not None else cw_identity(job)),
    }
    if reference is not None:
        header["reference"] = True
    recorder = RunRecorder(header)
    eval_envs = [make_task_env(name, job.seed, opts["max_episode_steps"], stream="eval")
                 for name in env.tasks]
    ends = {end: i for i, (_, end) in enumerate(env.windows)}

    def evaluate(trainer: EpisodicTrainer, _info: Dict[str, Any]) -> None:
        episode = trainer.episode
        at_task_end = episode in ends
        periodic = opts["eval_every"] and episode % opts["eval_every"] == 0
        if opts["eval_episodes"] == 0 or not (at_task_end or periodic):
            return
        scores = [evaluate_task(learner, e, opts["eval_episodes"], seed=job.seed * 1_000_003 + episode)
                  for e in eval_envs]
        current = ends.get(episode, trainer.task)
        recorder.evaluation(trainer.env_steps, current, scores,
                            during_task=None if at_task_end else trainer.task)
        if trainer.writer is not None:
            for name, score in zip(env.tasks, scores):
                trainer.writer.add_scalar(f"eval/{name}", score, trainer.env_steps)

    settings = TrainerSettings(run_dir=pathlib.Path(job.run_dir), total_episodes=env.total_episodes,
                               checkpoint_every=opts["checkpoint_every"],
                               progress=opts["progress"], tensorboard=opts["tensorboard"],
                               description=job.label)
    trainer = EpisodicTrainer(env, learner, recorder, settings,
                              score_fn=lambda ret, info: float(info.get("episode_success", 0.0)),
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


def print_status(jobs: Sequence[RunJob]) -> None:
    """One line per job, ``<seed> <agent index> <new|running|finished> <published result>``: what
    the shell launchers (run_cw20.sh, run_on_HPC.sh) ask before starting runs. Raises
    RunMismatch/RunLocked like a launch would."""
    for job in jobs:
        print(f"{job.seed} {job.agent_index} {job.state()} {checkpoint_json(job)}")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        check_device(args.device)
        torch_threads()
        jobs = make_jobs(args)
        if args.status:  # creates nothing
            print_status(jobs)
            return 0
        check_writable_dir(args.outdir)
        create_dir(args.outdir)
    except UsageError as err:
        fail(parser.prog, str(err))
    from palr.experiments.sweep import SweepStopped, execute_for_cli
    configure_torch()
    try:
        execute_for_cli(parser.prog, jobs, run_cw_job, parallel=args.jobs)
    except SweepStopped as stop:
        return stop.exit_status
    finally:
        try:
            publish_finished(jobs)
        except OSError as err:  # a full disk: one line; runs and earlier results are intact
            fail(parser.prog, output_failure(err, "--outdir"), status=1)
    return 0


__all__ = ["SACContinualLearner", "build_parser", "make_jobs", "cw_identity", "run_cw_job",
           "publish_finished", "print_status", "main"]
