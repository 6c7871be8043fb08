"""Shared parts of the seed-batched profiles (``profile_batched_dqn.py``,
``profile_batched_sac.py``): profiler labels around the methods that do each phase, the
per-phase table, and the matmul bound.

The bound: both sides of a batched-vs-separate comparison do the same matrix products, and a
``bmm`` over the member axis costs per member what a separate ``mm`` does, so the batched side
can at best shrink to its matrix products. ``separate / batched matmul`` is the highest ratio
that removing every other cost of the batched side could give. (The separate side's own matmul
time is not used: its many small ops make the profiler's overhead a large part of their
recorded time.)
"""
from __future__ import annotations

import contextlib
import functools
from typing import Any, Callable, Iterator, Sequence, Tuple

from torch.autograd.profiler_util import EventList
from torch.profiler import ProfilerActivity, profile, record_function

from profile_loops import category, large_gemm_gflops, matmul_gflops
from timing import interleaved_blocks, median_rate, paired_ratio

PREFIX = "phase: "


#: (owner, attribute name, phase label) of one method to label
Phase = Tuple[Any, str, str]


@contextlib.contextmanager
def labelled(phases: Sequence[Phase]) -> Iterator[None]:
    """Inside: each ``owner.name`` (a module function, an instance's method or an object's
    attribute) runs in a profiler label; owners without such an attribute (an older checkout)
    are skipped. On exit the original attributes are back, so timings outside are unlabelled."""
    restore = []
    for owner, name, phase in phases:
        method: Callable = getattr(owner, name, None)
        if method is None:
            continue
        restore.append((owner, name, vars(owner).get(name)))
        setattr(owner, name, _in_label(method, phase))
    try:
        yield
    finally:
        for owner, name, original in reversed(restore):
            if original is None:
                delattr(owner, name)  # the instance used its class's method
            else:
                setattr(owner, name, original)


def _in_label(method: Callable, phase: str) -> Callable:
    @functools.wraps(method)
    def run(*args: Any, **kwargs: Any) -> Any:
        with record_function(PREFIX + phase):
            return method(*args, **kwargs)
    return run


def print_phases(table: EventList, calls: int) -> None:
    """CPU ms per call of every labelled phase, largest first (phases may nest and overlap)."""
    for event in sorted((e for e in table if e.key.startswith(PREFIX)),
                        key=lambda e: -e.cpu_time_total):
        print(f"  {event.key[len(PREFIX):]:62s} {event.cpu_time_total / calls / 1e3:8.2f}")


def profile_phases(phases: Sequence[Phase], work: Callable[[], None], calls: int,
                   title: str) -> EventList:
    """Run ``work`` (``calls`` of the unit ``title`` names) under ``torch.profiler`` (with FLOP
    counts) and the labels of ``phases``; print ``title``, the CPU ms per call of every phase and
    the top ops by self CPU time; return the profile's table."""
    with labelled(phases), profile(activities=[ProfilerActivity.CPU], with_flops=True) as prof:
        work()
    table = prof.key_averages()
    print(title)
    print_phases(table, calls)
    print(table.table(sort_by="self_cpu_time_total", row_limit=12))
    return table


def matmul_ms(table: EventList, calls: int) -> float:
    """Self CPU ms per call of the profile's matrix products (``profile_loops.category``)."""
    return sum(e.self_cpu_time_total for e in table
               if category(e.key) == "matmul") / calls / 1e3


def print_bound(batched: Callable[[], None], separate: Callable[[], None], table: EventList,
                calls: int, seconds: float, unit: str, separate_unit: str) -> None:
    """Time ``batched`` (one ``unit``; ``table`` profiled ``calls`` of them) against ``separate``
    (``separate_unit``: the same work done by the separate learners) unprofiled, interleaved for
    ``seconds``; print both, their ratio, the batched side's matrix products (ms per ``unit`` and
    GFLOP/s next to a 1024^3 matmul's on this thread) and the bound ``separate / matmul``."""
    batched_matmul_ms = matmul_ms(table, calls)
    blocks = interleaved_blocks({"batched": batched, "separate": separate}, seconds,
                                block_seconds=0.0, warmup_calls=2)
    batched_ms, separate_ms = (1e3 / median_rate(blocks, name) for name in ("batched", "separate"))
    print(f"interleaved, unprofiled (median of {len(blocks['batched'])} rounds): one batched "
          f"{unit} {batched_ms:.3f} ms, {separate_unit} {separate_ms:.3f} ms, ratio "
          f"{paired_ratio(blocks, 'batched', 'separate'):.2f}x")
    print(f"matrix products of one batched {unit} (profiled): {batched_matmul_ms:.3f} ms at "
          f"{matmul_gflops(table):.1f} GFLOP/s (a 1024^3 matmul on this thread: "
          f"{large_gemm_gflops():.1f}); bound if it were those alone: "
          f"{separate_ms / batched_matmul_ms:.2f}x")


__all__ = ["PREFIX", "Phase", "labelled", "profile_phases", "print_phases", "matmul_ms",
           "print_bound"]
