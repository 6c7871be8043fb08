"""Continual CartPole with DQN: the original ``run_experiments.py`` and the README's main job.

``python palr_plasticity_aware_lr/src/run_experiments.py`` with no arguments runs the small
built-in default (agents FixedLR, L2Reg, PALR and ReDo x 3 seeds, one pass through the 4 physics
phases) and writes, under ``--outdir`` (default ``palr_plasticity_aware_lr/results/cartpole``):
``runs/<agent>_seed<k>/{result.json,checkpoint.pt,tb/}``, ``cartpole_raw_results.json`` (merged),
``RESULTS_SUMMARY.txt`` and ``plots/*.png``.

``--phase_steps N`` counts the phases in env steps instead of episodes (every agent then gets N
env steps per phase whatever its episode lengths); the run ends with the episode that reaches
``4 x cycles x N`` steps, and the task windows record where the switches actually happened.
"""
from __future__ import annotations

import argparse
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from palr.experiments.cli import positive_int
from palr.experiments.dqn_launcher import DQNDomain, main as dqn_main, register_domain
from palr.paths import results_dir


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--phase_episodes", type=positive_int, default=100,
                        help="episodes per physics phase")
    parser.add_argument("--phase_steps", type=positive_int, default=None,
                        help="count phases in env steps instead: env steps per physics phase "
                             "(the switch comes at the first episode start at or after it)")
    parser.add_argument("--cycles", type=positive_int, default=1,
                        help="passes through the 4 phases")


def _env_options(args: argparse.Namespace) -> Dict[str, Any]:
    options = {"phase_episodes": args.phase_episodes, "cycles": args.cycles}
    if args.phase_steps is not None:
        options["phase_steps"] = args.phase_steps
    return options


def task_windows(phase_episodes: int, num_phases: int, cycles: int,
                 names: Sequence[str]) -> List[Dict[str, Any]]:
    """One window per phase visit: ``cycles`` passes through the phases."""
    return [{"index": k % num_phases, "name": names[k % num_phases],
             "start_episode": k * phase_episodes, "end_episode": (k + 1) * phase_episodes}
            for k in range(num_phases * cycles)]


def step_task_windows(phase_steps: int, num_phases: int, cycles: int,
                      names: Sequence[str]) -> List[Dict[str, Any]]:
    """One planned window per phase visit in env steps; the recorder fills in the episodes
    (palr.experiments.records.observed_task_windows)."""
    return [{"index": k % num_phases, "name": names[k % num_phases],
             "start_step": k * phase_steps, "end_step": (k + 1) * phase_steps,
             "start_episode": 0, "end_episode": 0}
            for k in range(num_phases * cycles)]


def make_cartpole_env(options: Dict[str, Any], seed: int) -> Tuple[Any, List[Dict[str, Any]], float]:
    from palr.envs.continual_cartpole import ContinualCartPoleEnv
    phase_steps = options.get("phase_steps")
    env = ContinualCartPoleEnv(phase_episodes=options["phase_episodes"], phase_steps=phase_steps)
    env.np_random = np.random.default_rng([seed, 0xCA27])
    names = [p.name for p in env.phases]
    if phase_steps is not None:
        tasks = step_task_windows(phase_steps, env.num_phases, options["cycles"], names)
    else:
        tasks = task_windows(options["phase_episodes"], env.num_phases, options["cycles"], names)
    return env, tasks, env.config.score_threshold


CARTPOLE = register_domain(DQNDomain(
    name="cartpole", prog="run_experiments.py",
    description="Continual CartPole (4 silent physics phases) with DQN and every plasticity "
                "intervention.",
    default_agents=("0", "3", "4", "7"), default_outdir=results_dir() / "cartpole",
    add_arguments=_add_arguments, env_options=_env_options, make_env=make_cartpole_env,
    max_reward=1.0))


def main(argv: Optional[Sequence[str]] = None) -> int:
    return dqn_main(CARTPOLE, argv)
