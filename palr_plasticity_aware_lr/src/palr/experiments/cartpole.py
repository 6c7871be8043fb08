"""Continual CartPole sweep with DQN: the seed's ``run_experiments.py`` and the README's main job.

``python palr_plasticity_aware_lr/src/run_experiments.py`` with no arguments runs the small
built-in default (agents FixedLR, L2Reg, PALR and ReDo x 3 seeds, one pass through the 4 physics
phases) and writes, under ``--outdir`` (default ``palr_plasticity_aware_lr/results/cartpole``):
``runs/<agent>_seed<k>/{result.json,checkpoint.pt,tb/}``, ``cartpole_raw_results.json`` (merged),
``RESULTS_SUMMARY.txt`` and ``plots/*.png``.
"""
from __future__ import annotations

import argparse
import dataclasses
import pathlib
import sys
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from palr.agent_table import AGENTS, resolve_agent
from palr.paths import results_dir
from palr.experiments.cli import (OneLineParser, UsageError, add_common_run_args,
                                  check_device, check_writable_dir, fail, intervention_overrides,
                                  positive_int, resolve_agents, set_threads)
from palr.experiments.sweep import RunJob, execute, finalize, run_dir_for
from palr.experiments.trainer import PREEMPTED_EXIT, Preempted

ALGO = "DQN"
DOMAIN = "cartpole"
DEFAULT_AGENTS = ("0", "3", "4", "7")
DEFAULT_OUTDIR = results_dir() / "cartpole"


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="run_experiments.py",
        description="Continual CartPole (4 silent physics phases) with DQN and every "
                    "plasticity intervention. Agents: " + ", ".join(
                        f"{s.index}={s.display_name(ALGO)}" for s in AGENTS))
    parser.add_argument("--agents", nargs="+", default=list(DEFAULT_AGENTS),
                        help="agent indices or names (default: 0 3 4 7)")
    parser.add_argument("--agent_idx", default=None,
                        help="run this single agent (index or name) instead of --agents")
    parser.add_argument("--phase_episodes", type=positive_int, default=60,
                        help="episodes per physics phase")
    parser.add_argument("--cycles", type=positive_int, default=1,
                        help="passes through the 4 phases")
    parser.add_argument("--outdir", type=pathlib.Path, default=DEFAULT_OUTDIR,
                        help="output directory")
    parser.add_argument("--exploration_steps", type=positive_int, default=None,
                        help="DQN epsilon decay length in env steps (default: DQNConfig's)")
    parser.add_argument("--learning_starts", type=positive_int, default=None,
                        help="env steps before DQN starts training (default: DQNConfig's)")
    add_common_run_args(parser)
    return parser


def make_jobs(args: argparse.Namespace) -> List[RunJob]:
    refs = [args.agent_idx] if args.agent_idx is not None else args.agents
    specs = resolve_agents(refs, ALGO)
    overrides = intervention_overrides(args)
    from palr.interventions import build_stack
    for spec in specs:  # validate settings before anything runs
        try:
            build_stack(spec, overrides)
        except ValueError as err:
            raise UsageError(str(err)) from None
    jobs = []
    for spec in specs:
        for seed in range(args.seed_offset, args.seed_offset + args.seeds):
            name = spec.display_name(ALGO)
            jobs.append(RunJob(
                domain=DOMAIN, agent_index=spec.index, agent_name=name, seed=seed,
                run_dir=str(run_dir_for(args.outdir, name, seed)),
                options={"phase_episodes": args.phase_episodes, "cycles": args.cycles,
                         "device": args.device, "overrides": overrides,
                         "exploration_steps": args.exploration_steps,
                         "learning_starts": args.learning_starts,
                         "checkpoint_every": args.checkpoint_every,
                         "progress": not args.no_progress,
                         "tensorboard": not args.no_tensorboard}))
    return jobs


def task_windows(phase_episodes: int, num_phases: int, cycles: int,
                 names: Sequence[str]) -> List[Dict[str, Any]]:
    return [{"index": k % num_phases, "name": names[k % num_phases],
             "start_episode": k * phase_episodes, "end_episode": (k + 1) * phase_episodes}
            for k in range(num_phases * cycles)]


def run_cartpole_job(job: RunJob) -> Dict[str, Any]:
    """Build env + DQN + interventions for one job and train (or resume) it."""
    from palr.agents.dqn import DQNAgent, DQNConfig
    from palr.envs.continual_cartpole import ContinualCartPoleEnv
    from palr.experiments.records import RunRecorder
    from palr.experiments.trainer import EpisodicTrainer, TrainerSettings
    from palr.interventions import build_stack

    set_threads()
    opts = job.options
    spec = resolve_agent(job.agent_index, ALGO)
    env = ContinualCartPoleEnv(phase_episodes=opts["phase_episodes"])
    env.np_random = np.random.default_rng([job.seed, 0xCA27])
    dqn_kwargs: Dict[str, Any] = {"seed": job.seed, "device": opts["device"]}
    for key in ("exploration_steps", "learning_starts"):
        if opts.get(key):
            dqn_kwargs[key] = opts[key]
    config = DQNConfig(**dqn_kwargs)
    stack = build_stack(spec, opts["overrides"])
    agent = DQNAgent(env.observation_space.shape[0], int(env.action_space.n), config, stack)
    names = [p.name for p in env.phases]
    total = opts["phase_episodes"] * env.num_phases * opts["cycles"]
    recorder = RunRecorder({
        "domain": DOMAIN, "agent": job.agent_name, "agent_idx": job.agent_index,
        "seed": job.seed, "score_name": "return",
        "score_threshold": env.config.score_threshold,
        "tasks": task_windows(opts["phase_episodes"], env.num_phases, opts["cycles"], names),
        "config": {"dqn": dataclasses.asdict(config), "interventions": list(spec.interventions),
                   "overrides": opts["overrides"], "phase_episodes": opts["phase_episodes"],
                   "cycles": opts["cycles"], "total_episodes": total},
    })
    settings = TrainerSettings(run_dir=pathlib.Path(job.run_dir), total_episodes=total,
                               checkpoint_every=opts["checkpoint_every"],
                               progress=opts["progress"], tensorboard=opts["tensorboard"],
                               description=job.label)
    return EpisodicTrainer(env, agent, recorder, settings).run()


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        check_device(args.device)
        jobs = make_jobs(args)
        outdir = check_writable_dir(args.outdir)
    except UsageError as err:
        fail(parser.prog, str(err))
    set_threads()
    try:
        paths = execute(jobs, run_cartpole_job, parallel=args.jobs)
    except Preempted as err:
        print(f"{parser.prog}: {err}; run the same command again to resume", file=sys.stderr)
        return PREEMPTED_EXIT
    except RuntimeError as err:
        print(f"{parser.prog}: {err}", file=sys.stderr)
        return 1
    finalize(paths, outdir / "cartpole_raw_results.json", outdir / "RESULTS_SUMMARY.txt",
             outdir / "plots")
    print(f"results: {outdir}", file=sys.stderr)
    return 0
