"""Speed of the built-in Jelly Bean World simulator (palr.envs.jbw_sim) on one thread.

Measures, with uniformly random actions:
  * simulator steps/s including the observation (vision + 3-d scent) and the lazy map
    generation the walk triggers, for the ``jbw-v1`` (env default) and ``jbw-v0`` worlds with the
    4-action set ``turn4`` (the figures measured before upstream's 3 actions became the
    default, so they stay comparable), and for the ``jbw-paper`` world (17x17 view, 64-cell
    patches, 10,000 MCMC iterations) with upstream's 3 actions;
  * the same through the gymnasium env (jbw-v1, default 3 actions, flat observation, reward,
    info, a reset every 200 steps);
  * the first-neighbourhood generation time (paid once per world);
  * a reference measured in the same run: gymnasium's CartPole-v1 with random actions;
  * the real ``jbw`` backend through the same env, when that package is installed.
Target: >= 5,000 simulator steps/s.

    python benchmarks/bench_jbw.py [--seconds 3]

``run(seconds) -> dict`` is importable by a combined benchmark.
"""
from __future__ import annotations

import argparse
import os
import time
from typing import Any, Callable, Dict

os.environ.setdefault("OMP_NUM_THREADS", "1")

import gymnasium  # noqa: E402
import numpy as np  # noqa: E402

from palr.envs.jbw import JellyBeanWorldEnv, jbw_available  # noqa: E402
from palr.envs.jbw_sim import JBWSimulator, make_world_config  # noqa: E402

TARGET_STEPS_PER_S = 5000.0


def _rate(step: Callable[[int], Any], n_actions: int, seconds: float, seed: int = 0) -> float:
    """Steps per second of ``step(action)`` over about ``seconds`` of wall time."""
    actions = np.random.default_rng(seed).integers(n_actions, size=4096).tolist()
    n = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for a in actions:
            step(a)
        n += len(actions)
        now = time.perf_counter()
        if now >= deadline:
            return n / (now - start)


def bench_simulator(world: str, seconds: float, action_set: str = "turn4") -> Dict[str, float]:
    t0 = time.perf_counter()
    config = make_world_config(world)
    sim = JBWSimulator(config, seed=0, action_set=action_set)
    init_s = time.perf_counter() - t0
    side = 2 * config.vision_range + 1
    vision = np.empty((side, side, config.color_dim), dtype=np.float32)

    def step(a: int) -> None:
        sim.step(a)
        sim.vision(vision)
        sim.scent()

    rate = _rate(step, sim.num_actions, seconds)
    return {"steps_per_s": rate, "first_world_s": init_s, "patches": float(len(sim.patches))}


def bench_env(seconds: float, backend: str = "builtin", world: str = "jbw-v1") -> float:
    env = JellyBeanWorldEnv(backend=backend, world=world, episode_steps=200)
    env.reset(seed=0)

    def step(a: int) -> None:
        truncated = env.step(a)[3]
        if truncated:
            env.reset()

    return _rate(step, int(env.action_space.n), seconds)


def bench_cartpole(seconds: float) -> float:
    env = gymnasium.make("CartPole-v1")
    env.reset(seed=0)

    def step(a: int) -> None:
        _, _, terminated, truncated, _ = env.step(a)
        if terminated or truncated:
            env.reset()

    return _rate(step, 2, seconds)


def run(seconds: float = 3.0) -> Dict[str, Any]:
    """All figures as a flat dict (steps/s, seconds, ratios)."""
    out: Dict[str, Any] = {}
    for world, action_set in (("jbw-v1", "turn4"), ("jbw-v0", "turn4"), ("jbw-paper", "jbw")):
        r = bench_simulator(world, seconds, action_set)
        key = world.replace("-", "_")
        out[f"sim_{key}_steps_per_s"] = r["steps_per_s"]
        out[f"sim_{key}_first_world_s"] = r["first_world_s"]
        out[f"sim_{key}_patches_generated"] = r["patches"]
    out["env_builtin_steps_per_s"] = bench_env(seconds)
    out["cartpole_reference_steps_per_s"] = bench_cartpole(seconds)
    out["target_steps_per_s"] = TARGET_STEPS_PER_S
    out["sim_vs_target"] = out["sim_jbw_v1_steps_per_s"] / TARGET_STEPS_PER_S
    out["meets_target"] = bool(min(out["sim_jbw_v1_steps_per_s"],
                                   out["sim_jbw_v0_steps_per_s"]) >= TARGET_STEPS_PER_S)
    out["env_vs_cartpole"] = out["env_builtin_steps_per_s"] / out["cartpole_reference_steps_per_s"]
    if jbw_available():
        out["env_real_jbw_steps_per_s"] = bench_env(seconds, backend="jbw")
        out["builtin_vs_real_jbw"] = (out["env_builtin_steps_per_s"]
                                      / out["env_real_jbw_steps_per_s"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="wall time per measurement")
    args = parser.parse_args()
    if not args.seconds > 0:
        parser.error(f"--seconds must be positive, got {args.seconds}")
    r = run(args.seconds)
    print(f"Jelly Bean World built-in simulator, random actions, 1 thread "
          f"({args.seconds:g} s each)")
    for world in ("jbw_v1", "jbw_v0", "jbw_paper"):
        print(f"  sim {world:9s}: {r[f'sim_{world}_steps_per_s']:10,.0f} steps/s (vision+scent, "
              f"{r[f'sim_{world}_patches_generated']:.0f} patches generated); first world "
              f"{r[f'sim_{world}_first_world_s']:.2f} s")
    print(f"  env (gymnasium, flat obs): {r['env_builtin_steps_per_s']:10,.0f} steps/s")
    print(f"  reference CartPole-v1:     {r['cartpole_reference_steps_per_s']:10,.0f} steps/s "
          f"(JBW env / CartPole = {r['env_vs_cartpole']:.2f})")
    if "env_real_jbw_steps_per_s" in r:
        print(f"  real jbw backend (env):    {r['env_real_jbw_steps_per_s']:10,.0f} steps/s "
              f"(builtin / real = {r['builtin_vs_real_jbw']:.2f})")
    print(f"  target {TARGET_STEPS_PER_S:,.0f} steps/s: sim jbw-v1 at {r['sim_vs_target']:.1f}x "
          f"target; {'MET' if r['meets_target'] else 'NOT MET'}")


if __name__ == "__main__":
    main()
