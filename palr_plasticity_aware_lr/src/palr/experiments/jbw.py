"""Jelly Bean World with DQN: the original rlBigWorld layout's ``run_jbw_experiments.py``.

The reward sign flips without notice (what was good becomes bad): every ``--phase_episodes``
episodes (default: 400 episodes of 200 steps, flips every 100), or every ``--phase_steps`` env
steps for a run of ``--total_steps`` steps. ``--world jbw-paper`` is the paper's experiment
(Platanios et al. 2020, section 5, upstream ``scripts/experiments/cyclical.sh``): its world, the
sign flipped every 100,000 steps over 1,000,000 steps of one never-ending stream (cut into
1,000-step episodes for bookkeeping), and the reward rate over 100,000-step windows. Every run
records its reward rate (reward per env step over ``--reward_rate_window`` steps, after every
episode; :func:`palr.experiments.metrics.reward_rate`) and the summaries report it.

Actions: upstream's 3 (move forward, turn left, turn right) unless ``--action_set`` asks for
``turn4`` (adds move backward) or ``move4``. The Q-network is the DQN's ReLU MLP over the flat
observation (egocentric view + 3-d scent: 366 inputs for vision range 5, 870 for ``jbw-paper``'s
8), whose hidden layers PALR probes. The environment uses the real ``jbw`` simulator when it
imports and the built-in NumPy simulator otherwise (``--backend`` forces one); every run prints
which when it starts and records it (``config.env.backend``, part of its identity). Outputs as
for CartPole, under ``palr_plasticity_aware_lr/results/jbw`` by default.
"""
from __future__ import annotations

import argparse
import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

from palr.experiments.cartpole import step_task_windows
from palr.experiments.cli import UsageError, finite_float, positive_int
from palr.experiments.dqn_launcher import DQNDomain, main as dqn_main, register_domain
from palr.paths import results_dir

WORLDS = ("jbw-v1", "jbw-v0", "jbw-paper")
ACTION_SETS = ("jbw", "turn4", "move4")  # palr.envs.jbw_sim.ACTION_SETS (imported lazily)
#: Recovery threshold per env step of an episode: 5.0 on the window-10 moving average return of a
#: 200-step episode. On jbw-v1 (4 actions, 200-step episodes) a random policy scores about -0.7
#: (jellybeans good) and +1.4 (onions good); a scripted greedy policy that knows the phase 8.9
#: and 32.3 (measured on the built-in simulator).
SCORE_THRESHOLD_PER_STEP = 0.025
EPISODE_STEPS, EPISODES, PHASE_EPISODES = 200, 400, 100
#: The paper's cyclical schedule (upstream cyclical.sh and main.swift): flips every 100,000 steps,
#: 1,000,000 steps, reward rate over 100,000 steps (``--reward-rate-period``'s default).
PAPER_PHASE_STEPS, PAPER_PHASES, PAPER_RATE_WINDOW = 100_000, 10, 100_000
#: Episode length of a jbw-paper run (bookkeeping only: the world carries on across episodes).
PAPER_EPISODE_STEPS = 1000
SIGN_NAMES = ("jellybean+", "onion+")


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--episodes", type=positive_int, default=None,
                        help=f"training episodes (default {EPISODES}; not with --phase_steps)")
    parser.add_argument("--phase_episodes", type=positive_int, default=None,
                        help=f"episodes between reward-sign flips (default {PHASE_EPISODES})")
    parser.add_argument("--episode_steps", type=positive_int, default=None,
                        help=f"steps per episode (default {EPISODE_STEPS}; "
                             f"{PAPER_EPISODE_STEPS} with --world jbw-paper)")
    parser.add_argument("--phase_steps", type=positive_int, default=None,
                        help="count phases in env steps: steps between reward-sign flips, a "
                             "multiple of --episode_steps (default with --world jbw-paper: "
                             f"{PAPER_PHASE_STEPS:,})")
    parser.add_argument("--total_steps", type=positive_int, default=None,
                        help=f"env steps of a run whose phases are counted in steps (default "
                             f"{PAPER_PHASES} phases: 1,000,000 for jbw-paper)")
    parser.add_argument("--world", choices=WORLDS, default="jbw-v1",
                        help="jbw-v1 (upstream JBW-v1), jbw-v0 (upstream JBW-v0: only jellybeans "
                             "collectable) or jbw-paper (the paper's world and, unless episode "
                             "flags are given, its cyclical schedule)")
    parser.add_argument("--action_set", choices=ACTION_SETS, default="jbw",
                        help="jbw: upstream's 3 actions (forward, turn left, turn right; default); "
                             "turn4: adds move backward; move4: 4 moves, no turning")
    parser.add_argument("--backend", choices=("auto", "builtin", "jbw"), default="auto",
                        help="auto: the real jbw if it imports, else the built-in simulator")
    parser.add_argument("--reward_rate_window", type=positive_int, default=None,
                        help=f"env steps of the reward-rate window, a multiple of --episode_steps "
                             f"(default {PAPER_RATE_WINDOW:,} for jbw-paper, else one phase)")
    parser.add_argument("--score_threshold", type=finite_float, default=None,
                        help=f"recovery threshold on the window-10 moving average return "
                             f"(default {SCORE_THRESHOLD_PER_STEP:g} x --episode_steps)")


def _resolve_backend(backend: str) -> str:
    """``auto`` resolved here: the run's identity names the simulator that runs it."""
    from palr.envs.jbw import jbw_available
    if backend == "auto":
        return "jbw" if jbw_available() else "builtin"
    if backend == "jbw" and not jbw_available():
        raise UsageError("--backend jbw but the jbw package does not import; install it "
                         "(see palr_plasticity_aware_lr/setup_jbw.sh) or use --backend builtin")
    return backend


def _multiple_of_episode(flag: str, value: int, episode_steps: int) -> int:
    if value % episode_steps:
        raise UsageError(f"{flag} {value} is not a multiple of --episode_steps {episode_steps}; "
                         f"give a multiple (episodes are the unit the schedule and the reward rate "
                         f"are counted in)")
    return value


def _schedule(args: argparse.Namespace, episode_steps: int) -> Dict[str, int]:
    """Episode-counted (``episodes``, ``phase_episodes``) or step-counted (``phase_steps``,
    ``total_steps``) schedule of the flags; jbw-paper defaults to the paper's."""
    episode_flags = args.episodes is not None or args.phase_episodes is not None
    by_steps = args.phase_steps is not None or args.total_steps is not None or (
        args.world == "jbw-paper" and not episode_flags)
    if not by_steps:
        return {"episodes": args.episodes or EPISODES,
                "phase_episodes": args.phase_episodes or PHASE_EPISODES}
    if episode_flags:
        raise UsageError("--episodes/--phase_episodes count the run in episodes, --phase_steps/"
                         "--total_steps in env steps; give one pair")
    phase_steps = _multiple_of_episode("--phase_steps", args.phase_steps or PAPER_PHASE_STEPS,
                                       episode_steps)
    return {"phase_steps": phase_steps,
            "total_steps": args.total_steps or PAPER_PHASES * phase_steps}


def _env_options(args: argparse.Namespace) -> Dict[str, Any]:
    paper = args.world == "jbw-paper"
    episode_steps = args.episode_steps or (PAPER_EPISODE_STEPS if paper else EPISODE_STEPS)
    options: Dict[str, Any] = _schedule(args, episode_steps)
    phase_length = options.get("phase_steps") or options.get("phase_episodes", 0) * episode_steps
    window = args.reward_rate_window or (PAPER_RATE_WINDOW if paper else phase_length)
    threshold = args.score_threshold
    options.update({
        "episode_steps": episode_steps, "world": args.world, "action_set": args.action_set,
        "backend": _resolve_backend(args.backend),
        "reward_rate_window": _multiple_of_episode("--reward_rate_window", window, episode_steps),
        "score_threshold": threshold if threshold is not None
        else SCORE_THRESHOLD_PER_STEP * episode_steps})
    return options


def task_name(segment: int) -> str:
    """Name of task segment ``segment``: which item the sign makes good, and its number."""
    return f"{SIGN_NAMES[segment % len(SIGN_NAMES)]} ({segment})"


def make_jbw_env(options: Dict[str, Any], seed: int) -> Tuple[Any, List[Dict[str, Any]], float]:
    """The env of one run and its task windows (planned in env steps for a step schedule)."""
    from palr.envs.jbw import JellyBeanWorldEnv
    env = JellyBeanWorldEnv(phase_episodes=options.get("phase_episodes", PHASE_EPISODES),
                            phase_steps=options.get("phase_steps"),
                            episode_steps=options["episode_steps"], world=options["world"],
                            action_set=options["action_set"], backend=options["backend"],
                            seed=seed)
    if "phase_steps" in options:
        per, total = options["phase_steps"], options["total_steps"]
        count = math.ceil(total / per)
        tasks = step_task_windows(per, count, 1, [task_name(k) for k in range(count)])
        tasks[-1]["end_step"] = total
    else:
        total, per = options["episodes"], options["phase_episodes"]
        tasks = [{"index": k, "name": task_name(k), "start_episode": k * per,
                  "end_episode": min((k + 1) * per, total)} for k in range(math.ceil(total / per))]
    return env, tasks, options["score_threshold"]


def describe_jbw_env(env: Any) -> str:
    """Which simulator, world and action set a run uses (printed when it starts)."""
    from palr.envs.jbw import backend_description
    return (f"backend {env.backend}: {backend_description(env.backend)}; world "
            f"{env.config.world}, {env.action_space.n} actions ({env.config.action_set})")


JBW = register_domain(DQNDomain(
    name="jbw", prog="run_jbw_experiments.py",
    description="Jelly Bean World (reward-sign flips every --phase_episodes episodes or "
                "--phase_steps env steps; --world jbw-paper: the paper's setting) with DQN "
                "and every plasticity intervention.",
    default_agents=("0", "1", "2", "3", "4", "5", "6", "7"), default_outdir=results_dir() / "jbw",
    add_arguments=_add_arguments, env_options=_env_options, make_env=make_jbw_env,
    dqn_defaults={"hidden_sizes": (256, 256), "buffer_size": 100_000,
                  "exploration_steps": 20_000, "target_update_every": 1000},
    describe_env=describe_jbw_env))


def main(argv: Optional[Sequence[str]] = None) -> int:
    return dqn_main(JBW, argv)
