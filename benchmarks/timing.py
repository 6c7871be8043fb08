"""Interleaved timing shared by the benchmarks: medians per implementation and paired ratios.

Implementations are timed in blocks, one after another, the order reversed every round, so a
change in machine load (the development box is shared) hits every implementation alike. Each
block gives one rate; a figure is the median over blocks, and a ratio is the median over rounds
of the two implementations' rates in the same round (paired, so a slow round cancels out).
"""
from __future__ import annotations

import statistics
import time
from typing import Callable, Dict, List, Mapping, Tuple

#: name -> one (calls, seconds) per round, rounds in order
Blocks = Dict[str, List[Tuple[int, float]]]


def interleaved_blocks(work: Mapping[str, Callable[[], None]], seconds: float,
                       block_seconds: float = 0.5, warmup_calls: int = 3) -> Blocks:
    """Time every ``work`` function block by block, interleaved.

    Args:
        work: name -> one unit of work (e.g. one update, or a chunk of 500 env steps).
        seconds: measured time per implementation (at least one round is always run).
        block_seconds: each block calls its function until this much time has passed.
        warmup_calls: untimed calls of each function first (allocator, lazy optimizer state).

    Returns:
        name -> one ``(calls, seconds)`` per round, rounds in order.
    """
    for fn in work.values():
        for _ in range(warmup_calls):
            fn()
    names = list(work)
    blocks: Blocks = {name: [] for name in names}
    measured = {name: 0.0 for name in names}
    rnd = 0
    while rnd == 0 or min(measured.values()) < seconds:
        for name in names if rnd % 2 == 0 else names[::-1]:
            fn, calls = work[name], 0
            start = time.perf_counter()
            while True:
                fn()
                calls += 1
                elapsed = time.perf_counter() - start
                if elapsed >= block_seconds:
                    break
            blocks[name].append((calls, elapsed))
            measured[name] += elapsed
        rnd += 1
    return blocks


def median_rate(blocks: Blocks, name: str, scale: float = 1.0) -> float:
    """Median calls/s of one implementation over its blocks, times ``scale`` (units per call).

    A cost paid every k calls (a plasticity measurement every ``measure_freq`` updates) is
    only in the median if every block holds the same number of such periods: size blocks in
    whole periods, or read such costs from their own benchmark.
    """
    return statistics.median(calls / sec for calls, sec in blocks[name]) * scale


def paired_ratio(blocks: Blocks, name: str, reference: str) -> float:
    """Median over rounds of ``rate(name) / rate(reference)`` measured in the same round."""
    return statistics.median((a / sa) / (b / sb)
                             for (a, sa), (b, sb) in zip(blocks[name], blocks[reference]))


def total_calls(blocks: Blocks, name: str) -> int:
    """Calls timed for one implementation over all its blocks."""
    return sum(calls for calls, _ in blocks[name])
