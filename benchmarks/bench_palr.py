"""Cost of one PALR measurement against one SAC gradient update (issue: core + interventions).

A PALR measurement = forward of a 1024-sample diagnostic batch through the network with probes
on, per-layer metrics (one SVD per layer), the LR-scale update and re-initialisation of dead
units. It is timed on the SAC actor and twin critics (4x256 ReLU MLPs, Meta-World's 39-d obs and
4-d actions), exactly as PALR-SAC runs it, and compared with one SAC update at batch 128 and
2048 measured in the same process, interleaved. At ``measure_freq`` = 1000 the overhead per
update is ``measurement / (1000 * update)``.

    python benchmarks/bench_palr.py [--seconds 20]
"""
from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable, Dict, List

import numpy as np
import torch

from palr.agent_table import resolve_agent
from palr.agents.sac import SACAgent, SACConfig
from palr.interventions import build_stack


def _fill(agent: SACAgent, n: int, rng: np.random.Generator) -> None:
    for _ in range(n):
        obs = rng.standard_normal(39).astype(np.float32)
        agent.observe(obs, rng.uniform(-1, 1, 4).astype(np.float32), float(rng.standard_normal()),
                      rng.standard_normal(39).astype(np.float32), False)


def _time(fn: Callable[[], None], repeats: int) -> float:
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def run(seconds: float = 20.0, diag_batch_size: int = 1024) -> Dict[str, float]:
    """Median seconds per PALR measurement and per SAC update (batch 128 and 2048)."""
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    agents = {b: SACAgent(39, 4, SACConfig(batch_size=b, seed=0),
                          build_stack(resolve_agent("PALR", "SAC"),
                                      {"diag_batch_size": diag_batch_size}))
              for b in (128, 2048)}
    for agent in agents.values():
        _fill(agent, 5000, rng)
        agent.update()  # first after_update: PALR records its baseline ranks
    palr = agents[128].stack.interventions[0]
    one_mlp = SACAgent(39, 4, SACConfig(batch_size=128, seed=0),
                       build_stack(resolve_agent("PALR", "SAC"),
                                   {"diag_batch_size": diag_batch_size, "networks": ("policy",)}))
    _fill(one_mlp, 5000, rng)
    one_mlp.update()
    palr_mlp = one_mlp.stack.interventions[0]
    samples: Dict[str, List[float]] = {"measure": [], "measure_mlp": [], "update128": [],
                                       "update2048": []}
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        samples["measure"].append(_time(lambda: palr.after_update(palr.config.measure_freq), 1))
        samples["measure_mlp"].append(
            _time(lambda: palr_mlp.after_update(palr_mlp.config.measure_freq), 1))
        samples["update128"].append(_time(lambda: agents[128].update(), 10))
        samples["update2048"].append(_time(lambda: agents[2048].update(), 1))
    return {key: statistics.median(values) for key, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--diag_batch_size", type=int, default=1024)
    args = parser.parse_args()
    r = run(args.seconds, args.diag_batch_size)
    print(f"PALR measurement, one 4x256 MLP (the actor), N={args.diag_batch_size}: "
          f"{r['measure_mlp'] * 1e3:.1f} ms = {r['measure_mlp'] / r['update128']:.1f} SAC updates "
          f"at batch 128")
    print(f"PALR measurement, actor + twin critics, N={args.diag_batch_size}: "
          f"{r['measure'] * 1e3:.1f} ms")
    for batch in (128, 2048):
        update = r[f"update{batch}"]
        print(f"SAC update batch {batch}: {update * 1e3:.2f} ms; measurement = "
              f"{r['measure'] / update:.1f} updates; overhead at measure_freq 1000: "
              f"{100 * r['measure'] / (1000 * update):.2f}%")


if __name__ == "__main__":
    main()
