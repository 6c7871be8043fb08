"""Every speed benchmark of the project in one process, with a table of figures and ratios.

Each row is measured against a reference taken in the same run (interleaved inside each
benchmark), so the ratios survive a busy machine better than the absolute figures:

- DQN env steps/s (train every step) vs a CleanRL-style DQN written inside bench_dqn.py,
  PALR-DQN at the default measure_freq vs our plain DQN (overhead target <= 2%), and a second,
  identical plain DQN vs the first (how far a ratio of identical work strays: the noise floor);
- seed-batched DQN (K = 1, 5, 10 members in one process) vs K separate DQNs run one after
  another, env steps/s per core (bench_batched.py; target: 10 members >= 2.5x);
- seed-batched SAC (K = 1, 5, 10 members, batch 128 and 2048, Meta-World sizes) vs K separate SAC
  learners, updates/s per core (bench_batched.py --sac; target: 5 members >= 1.4x at batch 128);
- where a CUDA device is present, the same two with both sides on the GPU (DQN K = 1, 10, 32;
  SAC K = 1, 5, 16);
- SAC updates/s at batch 128 and 2048 vs a CleanRL-style SAC (bench_sac.py), and PALR-SAC vs SAC;
- one PALR measurement (4x256 MLP, 1024-sample diagnostic batch) in SAC updates (bench_palr.py);
- the built-in Jelly Bean World simulator's steps/s (target >= 5,000) (bench_jbw.py);
- the DQN and SAC update with ``Adam.step()`` and with ``palr.optim.step_adam``, the optimisation
  that profiling the loops led to (profile_loops.py);
- the Habitat stand-in environment's steps/s (MuJoCo offscreen RGB-D rendering) at 32x32 and
  128x128.

    python benchmarks/run_all.py [--seconds 20]       # about 9 x --seconds in all
"""
from __future__ import annotations

import argparse
import platform
import sys
import time
from typing import List, Sequence, Tuple

import numpy as np
import torch

import bench_batched
import bench_dqn
import bench_jbw
import bench_palr
import bench_sac
import profile_loops
from palr.experiments.cli import configure_torch
from palr.interventions.base import InterventionStack

Row = Tuple[str, str, str]


def habitat_standin_steps_per_s(resolution: int, seconds: float) -> float:
    """Random-action steps/s of the Habitat stand-in (one env, RGB-D at ``resolution``)."""
    from palr_habitat.ddppo_config import EnvConfig, default_phases
    from palr_habitat.fetch_standin_env import StandInFetchEnv

    env = StandInFetchEnv(default_phases(), EnvConfig(backend="standin", resolution=resolution,
                                                      num_envs=1, max_episode_steps=200), seed=0)
    rng = np.random.default_rng(0)
    env.reset()
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        _, _, terminated, truncated, *_ = env.step(rng.uniform(-1, 1, env.action_dim))
        steps += 1
        if terminated or truncated:
            env.reset()
    return steps / (time.perf_counter() - start)


def _palr_stack(algo: str):
    from palr.agent_table import resolve_agent
    from palr.interventions import build_stack
    return lambda: build_stack(resolve_agent("PALR", algo))


def batched_rows(rows: Sequence[bench_batched.FigureRow], unit: str, where: str = "CPU",
                 decimals: int = 0) -> List[Row]:
    """Two table rows (K separate runs, K seed-batched members) per bench_batched row."""
    table: List[Row] = []
    for label, batched, separate, ratio, target in rows:
        table += [(f"{unit}, {label} separate runs in turn ({where})", f"{separate:.{decimals}f}",
                   "1.00"),
                  (f"{unit}, {label} seed-batched ({where})", f"{batched:.{decimals}f}",
                   f"{ratio:.2f}x separate{target}")]
    return table


def collect(seconds: float) -> List[Row]:
    rows: List[Row] = []
    # "twin": a second plain DQN, identical to "dqn" down to its trajectory: the ratio between
    # them is the noise floor of every paired ratio in this table
    dqn = bench_dqn.run(seconds, stacks={"twin": lambda: InterventionStack([]),
                                         "palr": _palr_stack("DQN")})
    rows += [("DQN env steps/s (CleanRL-style ref)", f"{dqn['cleanrl_steps_per_s']:.0f}", "1.00"),
             ("DQN env steps/s (ours)", f"{dqn['dqn_steps_per_s']:.0f}",
              f"{dqn['dqn_vs_cleanrl']:.2f}x ref (target >= 1.2)"),
             ("DQN env steps/s (ours, an identical twin)", f"{dqn['twin_steps_per_s']:.0f}",
              f"{dqn['twin_vs_dqn']:.3f}x DQN (noise floor of the ratios)"),
             ("PALR-DQN env steps/s (measure_freq 1000)", f"{dqn['palr_steps_per_s']:.0f}",
              f"{dqn['palr_vs_dqn']:.3f}x DQN (target >= 0.98)")]
    rows += batched_rows(bench_batched.dqn_rows(bench_batched.run(seconds / 3)),
                         "DQN env steps/s")
    rows += batched_rows(bench_batched.sac_rows(bench_batched.run_sac(seconds / 4)),
                         "SAC updates/s", decimals=1)
    if torch.cuda.is_available():  # the GPU figures: both sides' networks on the GPU
        gpu_dqn = bench_batched.run(seconds / 4, bench_batched.GPU_MEMBERS, chunk_steps=20,
                                    device="cuda")
        rows += batched_rows(bench_batched.dqn_rows(gpu_dqn, bench_batched.GPU_MEMBERS, "cuda"),
                             "DQN env steps/s", "GPU")
        gpu_sac = bench_batched.run_sac(seconds / 4, bench_batched.GPU_SAC_MEMBERS,
                                        device="cuda")
        rows += batched_rows(bench_batched.sac_rows(gpu_sac, bench_batched.GPU_SAC_MEMBERS,
                                                    "cuda"), "SAC updates/s", "GPU", 1)
    sac = bench_sac.run(2 * seconds, stacks={"palr": _palr_stack("SAC")})
    for key, row in sac.items():
        b = key[1:]
        target = "1.2" if b == "128" else "1.0"
        rows += [(f"SAC updates/s batch {b} (CleanRL-style ref)", f"{row['ref_updates_per_s']:.1f}", "1.00"),
                 (f"SAC updates/s batch {b} (ours)", f"{row['sac_updates_per_s']:.1f}",
                  f"{row['sac_vs_ref']:.2f}x ref (target >= {target})"),
                 (f"PALR-SAC updates/s batch {b}", f"{row['palr_updates_per_s']:.1f}",
                  f"{row['palr_vs_sac']:.3f}x SAC (between measurements)")]
    palr = bench_palr.run(seconds)
    rows += [("PALR measurement, 4x256 MLP, N=1024 (ms)", f"{palr['measure_mlp'] * 1e3:.1f}",
              f"{palr['measure_mlp'] / palr['update128']:.1f} SAC updates at batch 128"),
             ("PALR measurement, actor + twin critics (ms)", f"{palr['measure'] * 1e3:.1f}",
              f"{100 * palr['measure'] / (1000 * palr['update128']):.2f}% of 1000 updates (b128)")]
    jbw = bench_jbw.run(seconds / 4)
    rows += [("JBW built-in sim steps/s (jbw-v1)", f"{jbw['sim_jbw_v1_steps_per_s']:.0f}",
              f"{jbw['sim_vs_target']:.2f}x target 5,000"),
             ("JBW env steps/s (flat obs)", f"{jbw['env_builtin_steps_per_s']:.0f}",
              f"{jbw['env_vs_cartpole']:.3f}x CartPole-v1 env")]
    for loop, factory, chunk_updates in profile_loops.ADAM_COMPARISONS:
        before_us, after_us, speedup = profile_loops.compare_adam_steps(factory, seconds / 4,
                                                                       chunk_updates)
        rows += [(f"{loop} update us, Adam.step (before step_adam)", f"{before_us:.0f}", "1.00"),
                 (f"{loop} update us, palr.optim.step_adam", f"{after_us:.0f}",
                  f"{speedup:.3f}x faster than before")]
    for resolution in (32, 128):
        rate = habitat_standin_steps_per_s(resolution, seconds / 4)
        rows.append((f"Habitat stand-in env steps/s ({resolution}x{resolution} RGB-D)",
                     f"{rate:.0f}", "rendering-bound"))
    return rows


def settings() -> List[str]:
    """What each benchmark runs, from the benchmarks' own constants (printed under the table)."""
    from palr.agents.sac import SACConfig
    from palr.interventions.palr import PALRConfig
    palr = PALRConfig()
    sac_hidden = "x".join(map(str, SACConfig().hidden_sizes))
    return [
        f"DQN: CartPole-v1, MLP 4-{'-'.join(map(str, bench_dqn.HIDDEN))}-2 ReLU, batch "
        f"{bench_dqn.BATCH}, one update per env step, blocks of 1000 env steps (each holds one "
        f"PALR measurement at measure_freq {palr.measure_freq}, diag batch {palr.diag_batch_size})",
        f"seed-batched DQN: the DQN settings above, K = {', '.join(map(str, bench_batched.MEMBERS))} "
        "members (seeds 0..K-1) in one palr.batched.BatchedDQN vs K DQNAgents run one after "
        "another in this process; env steps/s summed over members",
        f"seed-batched SAC: K = {', '.join(map(str, bench_batched.SAC_MEMBERS))} members in one "
        "palr.batched.BatchedSAC vs K SACAgents updated one after another, the SAC settings "
        "below; gradient updates/s summed over members",
        f"SAC: 39-d obs, 4-d action, actor + twin critics {sac_hidden} ReLU, batch 128 and 2048, "
        "20k random transitions in replay; PALR-SAC rows: between measurements",
        f"PALR measurement: PALR-SAC's stack on the same networks, diag batch "
        f"{palr.diag_batch_size}; median of repeated measurements and updates",
        "JBW: built-in simulator, jbw-v1 world, random turn4 actions, observation included; "
        "env row: gymnasium env (3 actions, flat obs, reset every 200 steps) vs CartPole-v1 "
        "random steps",
        "Habitat stand-in: one env, random actions, RGB-D rendered offscreen with MuJoCo (EGL)",
        "figures: medians over interleaved blocks; ratios: medians of same-round ratios "
        "(benchmarks/timing.py)",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0,
                        help="measuring time per benchmark (SAC gets twice)")
    args = parser.parse_args()
    if not args.seconds > 0:
        parser.error("--seconds must be positive")
    configure_torch()  # one thread, subnormals flushed: as every launcher runs
    rows = collect(args.seconds)
    from palr.experiments.study import machine_description
    machine = machine_description()
    print(f"PALR benchmarks: torch {torch.__version__}, 1 thread, Python "
          f"{platform.python_version()}, {machine['cpu']} ({machine['cpu_count']} cores), "
          f"--seconds {args.seconds:g}")
    width = max(len(r[0]) for r in rows)
    print(f"{'benchmark':<{width}}  {'figure':>9}  ratio")
    for name, figure, ratio in rows:
        print(f"{name:<{width}}  {figure:>9}  {ratio}")
    print("settings:")
    for line in settings():
        print(f"  {line}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
