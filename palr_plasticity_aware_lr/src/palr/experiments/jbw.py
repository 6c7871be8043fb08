"""Jelly Bean World with DQN: the seed's ``run_jbw_experiments.py --episodes 400 --seeds 3``.

The reward sign flips every ``--phase_episodes`` episodes without notice (what was good becomes
bad). The Q-network is the DQN's ReLU MLP over the flat observation (11x11x3 egocentric view +
3-d scent = 366 inputs), whose hidden layers PALR probes. The environment uses the real ``jbw``
simulator when it imports and the built-in NumPy simulator otherwise (``--backend`` forces one);
each run's result records which (``config.env.backend``). Outputs as for CartPole, under
``palr_plasticity_aware_lr/results/jbw`` by default.
"""
from __future__ import annotations

import argparse
import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

from palr.experiments.cli import finite_float, positive_int
from palr.experiments.dqn_launcher import DQNDomain, main as dqn_main, register_domain
from palr.paths import results_dir

#: Recovery threshold on the window-10 moving average return of a 200-step episode. A random
#: policy scores about -0.7 (jellybeans good) and +1.4 (onions good); a scripted greedy policy
#: that knows the phase 8.9 and 32.3 (measured on the built-in simulator, jbw-v1).
SCORE_THRESHOLD = 5.0


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--episodes", type=positive_int, default=400, help="training episodes")
    parser.add_argument("--phase_episodes", type=positive_int, default=100,
                        help="episodes between reward-sign flips")
    parser.add_argument("--episode_steps", type=positive_int, default=200)
    parser.add_argument("--world", choices=("jbw-v1", "jbw-v0"), default="jbw-v1")
    parser.add_argument("--backend", choices=("auto", "builtin", "jbw"), default="auto",
                        help="auto: the real jbw if it imports, else the built-in simulator")
    parser.add_argument("--score_threshold", type=finite_float, default=SCORE_THRESHOLD,
                        help="recovery threshold on the window-10 moving average return")


def _env_options(args: argparse.Namespace) -> Dict[str, Any]:
    from palr.envs.jbw import jbw_available
    backend = args.backend
    if backend == "auto":  # resolved here: the run's identity names the simulator that runs it
        backend = "jbw" if jbw_available() else "builtin"
    elif backend == "jbw" and not jbw_available():
        from palr.experiments.cli import UsageError
        raise UsageError("--backend jbw but the jbw package does not import; install it "
                         "(see palr_plasticity_aware_lr/setup_jbw.sh) or use --backend builtin")
    return {"episodes": args.episodes, "phase_episodes": args.phase_episodes,
            "episode_steps": args.episode_steps, "world": args.world, "backend": backend,
            "score_threshold": args.score_threshold}


def make_jbw_env(options: Dict[str, Any], seed: int) -> Tuple[Any, List[Dict[str, Any]], float]:
    from palr.envs.jbw import JellyBeanWorldEnv
    env = JellyBeanWorldEnv(phase_episodes=options["phase_episodes"],
                            episode_steps=options["episode_steps"], world=options["world"],
                            backend=options["backend"], seed=seed)
    total, per = options["episodes"], options["phase_episodes"]
    signs = ("jellybean+", "onion+")
    tasks = [{"index": k, "name": f"{signs[k % 2]} ({k})", "start_episode": k * per,
              "end_episode": min((k + 1) * per, total)} for k in range(math.ceil(total / per))]
    return env, tasks, options["score_threshold"]


JBW = register_domain(DQNDomain(
    name="jbw", prog="run_jbw_experiments.py",
    description="Jelly Bean World (reward-sign flips every --phase_episodes episodes) with DQN "
                "and every plasticity intervention.",
    default_agents=("0", "1", "2", "3", "4", "5", "6", "7"), default_outdir=results_dir() / "jbw",
    add_arguments=_add_arguments, env_options=_env_options, make_env=make_jbw_env,
    dqn_defaults={"hidden_sizes": (256, 256), "buffer_size": 100_000,
                  "exploration_steps": 20_000, "target_update_every": 1000}))


def main(argv: Optional[Sequence[str]] = None) -> int:
    return dqn_main(JBW, argv)
