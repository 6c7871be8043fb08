"""The plasticity-loss testbed: permuted-observation continual CartPole with DQN.

``python palr_plasticity_aware_lr/src/run_permuted_cartpole.py`` (or ``python -m
palr.experiments.permuted_cartpole``) runs :mod:`palr.envs.permuted_cartpole`: CartPole-v1
physics, 12 phases of 15,000 env steps, each showing the observation through a new signed
permutation drawn from the run's seed (phase 0 the identity), switched silently; the run ends
with the episode that reaches 12 x 15,000 = 180k env steps. Its DQN defaults are the settings
under which a pilot saw a fixed-LR DQN collapse: Double DQN, a target copy every 500 updates and
a 15k replay buffer (one phase of data), everything else as DQNConfig (4-128-128-2 ReLU MLP,
Adam 5e-4, gamma 0.99, batch 128, one update per env step from step 1000, epsilon 1 -> 0.05 over
5k steps); every DQN flag overrides them. Outputs as for continual CartPole, under
``palr_plasticity_aware_lr/results/permuted_cartpole`` by default.
"""
from __future__ import annotations

import argparse
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from palr.experiments.cartpole import step_task_windows
from palr.experiments.cli import positive_int
from palr.experiments.dqn_launcher import DQNDomain, main as dqn_main, register_domain
from palr.paths import results_dir

#: The testbed's DQN settings (the pilot's): Double DQN, target copy every 500 updates, 15k buffer.
TESTBED_DQN = {"double_dqn": True, "target_update_every": 500, "buffer_size": 15_000}


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    from palr.envs.permuted_cartpole import DEFAULT_NUM_PHASES, DEFAULT_PHASE_STEPS
    parser.add_argument("--phase_steps", type=positive_int, default=DEFAULT_PHASE_STEPS,
                        help=f"env steps per phase (default {DEFAULT_PHASE_STEPS}; the switch comes "
                             "at the first episode start at or after each multiple)")
    parser.add_argument("--num_phases", type=positive_int, default=DEFAULT_NUM_PHASES,
                        help=f"phases, each a new signed permutation of the observation "
                             f"(default {DEFAULT_NUM_PHASES}; phase 0 is the identity)")
    parser.add_argument("--swap_actions", action="store_true",
                        help="also swap the two actions on odd phases")


def _env_options(args: argparse.Namespace) -> Dict[str, Any]:
    return {"phase_steps": args.phase_steps, "num_phases": args.num_phases,
            "swap_actions": bool(args.swap_actions)}


def make_permuted_env(options: Dict[str, Any], seed: int) -> Tuple[Any, List[Dict[str, Any]], float]:
    """The env of one run: permutations drawn from the run's seed, resets from its own stream."""
    from palr.envs.permuted_cartpole import ContinualPermutedCartPoleEnv
    env = ContinualPermutedCartPoleEnv(phase_steps=options["phase_steps"],
                                       num_phases=options["num_phases"], permutation_seed=seed,
                                       swap_actions=options["swap_actions"])
    env.np_random = np.random.default_rng([seed, 0xCA27])
    tasks = step_task_windows(options["phase_steps"], env.num_phases, 1,
                              [p.name for p in env.phases])
    return env, tasks, env.config.score_threshold


PERMUTED_CARTPOLE = register_domain(DQNDomain(
    name="permuted_cartpole", prog="run_permuted_cartpole.py",
    description="The plasticity-loss testbed: continual CartPole whose observation is "
                "signed-permuted every --phase_steps env steps, with DQN (Double DQN, target copy "
                "every 500 updates, 15k buffer by default) and every plasticity intervention.",
    default_agents=("0", "4"), default_outdir=results_dir() / "permuted_cartpole",
    add_arguments=_add_arguments, env_options=_env_options, make_env=make_permuted_env,
    dqn_defaults=dict(TESTBED_DQN), max_reward=1.0))


def main(argv: Optional[Sequence[str]] = None) -> int:
    return dqn_main(PERMUTED_CARTPOLE, argv)


if __name__ == "__main__":
    raise SystemExit(main())
