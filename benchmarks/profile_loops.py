"""Where the time of one DQN and one SAC gradient update goes (torch.profiler), by category.

Builds the project's own agents as the launchers do (DQN: 4-128-128-2 MLP, batch 128;
SAC: 4x256 ReLU actor and twin critics, 39-d observations as Meta-World, batch 128), fills the
replay buffer with random transitions, warms up, then profiles ``--updates`` updates and sorts
every op's self CPU time into categories:

- ``matmul``: the GEMM kernels of forward and backward (``aten::mm/addmm/bmm/linear``...);
- ``optimizer``: Adam (fused kernel, step counters, the optimizer's own bookkeeping);
- ``other ops``: every other aten op (ReLU, losses, sampling, reductions, copies);
- ``python``: wall time not inside any op (Python, dispatch, autograd engine bookkeeping);

and the floating-point rate of the matmul ops (the profiler's FLOP counts over their self time)
next to a 1024^3 matmul's on the same thread: a loop whose GEMMs run near that roof cannot be made
much faster without doing less arithmetic.

It then times the optimisation this profile led to, before/after in one process: the same
update with ``Adam.step()`` (before) and with :func:`palr.optim.step_adam` (after), on two
identical agents, in interleaved chunks, as medians and a ratio. Both tables are what the
README's "Profiling" subsection quotes. Compare two commits by running it in each checkout.
For a whole-loop view (environment included) use py-spy on a launcher, e.g.::

    py-spy record --format raw -o dqn.txt -- python palr_plasticity_aware_lr/src/run_experiments.py \
        --agent_idx 4 --seeds 1 --phase_episodes 60 --no_progress --jobs 1

Run: ``python benchmarks/profile_loops.py [--updates 300] [--seconds 10]``
"""
from __future__ import annotations

import argparse
import contextlib
import time
from typing import Any, Callable, Dict, Iterable, Iterator, Tuple

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

import palr.agents.dqn
import palr.agents.sac
from palr.agents.dqn import DQNAgent, DQNConfig
from palr.agents.sac import SACAgent, SACConfig
from palr.experiments.cli import configure_torch
from timing import interleaved_blocks, median_rate, paired_ratio

#: the GEMM ops (whole names: a prefix such as ``aten::t`` would also take ``aten::tanh``,
#: ``aten::to`` and ReLU's ``aten::threshold_backward``), and oneDNN's kernels by prefix
MATMUL_OPS = frozenset({"aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::matmul",
                        "aten::linear", "aten::t"})
MKLDNN_PREFIX = "aten::_mkldnn"
OPTIMIZER_MARKERS = ("adam", "Optimizer", "_foreach_add_")


def make_dqn(seed: int = 0) -> Callable[[], object]:
    agent = DQNAgent(4, 2, DQNConfig())
    rng = np.random.default_rng(seed)
    for _ in range(5000):
        obs = rng.normal(size=4).astype(np.float32)
        agent.replay.add(obs, int(rng.integers(2)), 1.0, rng.normal(size=4).astype(np.float32),
                         bool(rng.random() < 0.02))
    return agent.update


def make_sac(seed: int = 0) -> Callable[[], object]:
    agent = SACAgent(39, 4, SACConfig(batch_size=128))
    rng = np.random.default_rng(seed)
    for _ in range(5000):
        agent.replay.add(rng.normal(size=39).astype(np.float32),
                         rng.uniform(-1, 1, size=4).astype(np.float32), float(rng.normal()),
                         rng.normal(size=39).astype(np.float32), False)
    return agent.update


#: (loop, agent factory, updates per timed chunk) of the before/after comparison
ADAM_COMPARISONS = (("DQN", make_dqn, 200), ("SAC", make_sac, 10))


def category(op_name: str) -> str:
    if op_name in MATMUL_OPS or op_name.startswith(MKLDNN_PREFIX):
        return "matmul"
    if any(marker in op_name for marker in OPTIMIZER_MARKERS):
        return "optimizer"
    return "other ops"


def matmul_gflops(table: Iterable[Any]) -> float:
    """The floating-point rate of a profile's matrix products (``table``: the events of
    ``prof.key_averages()``, recorded with ``with_flops=True``): their FLOP counts over their
    self time; 0 without any."""
    events = [e for e in table if category(e.key) == "matmul"]
    seconds = sum(e.self_cpu_time_total for e in events) * 1e-6
    return sum(e.flops or 0 for e in events) / seconds / 1e9 if seconds else 0.0


def large_gemm_gflops(size: int = 1024, repeats: int = 20) -> float:
    """GFLOP/s of a ``size``-cubed float32 matmul on this thread: the roof the loops' GEMMs are
    compared with (their matrices are 128-2048 x 256, so they cannot quite reach it)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    start = time.perf_counter()
    for _ in range(repeats):
        torch.mm(a, b)
    return 2 * size ** 3 * repeats / (time.perf_counter() - start) / 1e9


def profile_updates(update: Callable[[], object], updates: int) -> Tuple[float, Dict[str, float]]:
    """(microseconds per update without the profiler, share of each category under it, and
    ``"gemm_gflops"``: the matmul ops' floating-point rate, to compare with the core's peak)."""
    for _ in range(50):
        update()
    start = time.perf_counter()
    for _ in range(updates):
        update()
    plain_us = (time.perf_counter() - start) / updates * 1e6
    with profile(activities=[ProfilerActivity.CPU], with_flops=True) as prof:
        start = time.perf_counter()
        for _ in range(updates):
            update()
        wall_us = (time.perf_counter() - start) * 1e6
    table = prof.key_averages()
    shares: Dict[str, float] = {"matmul": 0.0, "optimizer": 0.0, "other ops": 0.0}
    for event in table:
        if event.key.startswith("Optimizer.") or event.key.startswith("## "):
            continue  # record_function ranges: their time is inside the ops they contain
        shares[category(event.key)] += event.self_cpu_time_total
    shares = {k: v / wall_us for k, v in shares.items()}
    shares["python"] = max(0.0, 1.0 - sum(shares.values()))
    shares["gemm_gflops"] = matmul_gflops(table)
    return plain_us, shares


@contextlib.contextmanager
def plain_adam_step() -> Iterator[None]:
    """Inside: the agents step their optimizers with ``Adam.step()``, as before ``step_adam``."""
    saved = palr.agents.dqn.step_adam, palr.agents.sac.step_adam
    palr.agents.dqn.step_adam = palr.agents.sac.step_adam = lambda optimizer: optimizer.step()
    try:
        yield
    finally:
        palr.agents.dqn.step_adam, palr.agents.sac.step_adam = saved


def compare_adam_steps(factory: Callable[[], Callable[[], object]], seconds: float,
                       chunk_updates: int) -> Tuple[float, float, float]:
    """(before, after) median microseconds per update with ``Adam.step()`` and with
    ``step_adam``, and the median same-round speed-up, timed in alternating chunks of
    ``chunk_updates`` on two agents built alike (:func:`timing.interleaved_blocks`)."""
    def chunk(update: Callable[[], object], plain: bool) -> Callable[[], None]:
        def run() -> None:
            with plain_adam_step() if plain else contextlib.nullcontext():
                for _ in range(chunk_updates):
                    update()
        return run

    blocks = interleaved_blocks({"before": chunk(factory(), True), "after": chunk(factory(), False)},
                                seconds, block_seconds=0.0)
    per_update_us = {name: 1e6 / median_rate(blocks, name, chunk_updates) for name in blocks}
    return per_update_us["before"], per_update_us["after"], paired_ratio(blocks, "after", "before")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=300, help="updates profiled per loop")
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="before/after: measured seconds per variant and loop")
    args = parser.parse_args()
    if args.updates <= 0 or not args.seconds > 0:
        parser.error("--updates and --seconds must be positive")
    configure_torch()
    print(f"torch {torch.__version__}, 1 thread; shares of the profiled wall time")
    roof = large_gemm_gflops()
    print(f"GEMM GFLOP/s of the loop's matmuls; a 1024^3 matmul on this thread: {roof:.1f}")
    print(f"{'loop':<5} {'us/update':>10} {'matmul':>7} {'optimizer':>9} {'other ops':>9} "
          f"{'python':>7} {'GEMM GFLOP/s':>13}")
    for name, factory in (("DQN", make_dqn), ("SAC", make_sac)):
        plain_us, shares = profile_updates(factory(), args.updates)
        print(f"{name:<5} {plain_us:>10.0f} {shares['matmul']:>7.0%} {shares['optimizer']:>9.0%} "
              f"{shares['other ops']:>9.0%} {shares['python']:>7.0%} {shares['gemm_gflops']:>13.1f}")

    print("\nbefore/after: Adam.step() vs palr.optim.step_adam, medians over interleaved chunks")
    print(f"{'loop':<5} {'chunk':>6} {'before us':>10} {'after us':>9} {'speed-up':>9}")
    for name, factory, chunk_updates in ADAM_COMPARISONS:
        before_us, after_us, speedup = compare_adam_steps(factory, args.seconds, chunk_updates)
        print(f"{name:<5} {chunk_updates:>6} {before_us:>10.0f} {after_us:>9.0f} {speedup:>8.3f}x")


if __name__ == "__main__":
    main()
