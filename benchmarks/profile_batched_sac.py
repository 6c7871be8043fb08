"""Where the time of one seed-batched SAC update goes (``palr.batched.sac.BatchedSAC``), by phase.

Builds ``bench_batched``'s learners (Meta-World sizes: 39-dim observations, 4-dim actions, 4x256
ReLU actor and twin critics, 20k random transitions per member), warms up, then profiles
``--updates`` updates with ``torch.profiler``, each phase marked by a ``record_function`` label
wrapped around the method that does it: replay sampling, policy samples, the critics through
autograd (the target critics, and the actor step's pass where it is not by hand), the hand-written
forward and backward passes, the hand-written actor step and its pass through the critics'
input gradient, the autograd backward passes, the three Adam steps. Phases nest (the actor step
holds a forward, an input gradient and a backward), so their CPU times overlap; the top ops by
self CPU time follow. Compare two commits by running it in each checkout.

Then the bound on the speed-up: one batched update and the K separate ``SACAgent`` updates of
the same members are timed unprofiled, interleaved for ``--seconds`` (``timing``, as
``bench_batched``), and set against the batched update's matrix products (the profile's
``profile_loops.category`` "matmul" ops). Both sides do the same products and a ``bmm`` over the
member axis costs per member what a separate ``mm`` does, so a batched update can at best shrink
to its matrix products: ``separate / batched matmul`` is the highest ratio that removing every
other cost of the batched update could give. (The separate side's own matmul time is not
printed: its many small ops make the profiler's overhead a large part of their recorded time.)

Run: ``python benchmarks/profile_batched_sac.py [--batch 128] [--members 5] [--updates 10] [--seconds 4]``
"""
from __future__ import annotations

import argparse
import functools
import time
from typing import Any, Callable

from torch.profiler import ProfilerActivity, profile, record_function

import palr.batched.sac as batched_sac
from bench_batched import sac_learners
from palr.experiments.cli import configure_torch
from profile_loops import category
from timing import interleaved_blocks, median_rate, paired_ratio

PREFIX = "phase: "


def _label(owner: Any, name: str, label: str) -> None:
    """Wrap ``owner.name`` (a module function or an instance's method) in a profiler label;
    nothing when ``owner`` has no such attribute (an older checkout)."""
    method: Callable = getattr(owner, name, None)
    if method is None:
        return

    @functools.wraps(method)
    def labelled(*args: Any, **kwargs: Any) -> Any:
        with record_function(PREFIX + label):
            return method(*args, **kwargs)
    setattr(owner, name, labelled)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=128, help="batch size (default 128)")
    parser.add_argument("--members", type=int, default=5, help="members K (default 5)")
    parser.add_argument("--updates", type=int, default=10, help="profiled updates (default 10)")
    parser.add_argument("--seconds", type=float, default=4.0,
                        help="interleaved timing of batched vs separate updates (default 4)")
    args = parser.parse_args()
    if min(args.batch, args.members, args.updates) <= 0 or args.seconds < 0:
        parser.error("--batch, --members and --updates must be positive, --seconds >= 0")
    configure_torch()
    learner, agents = sac_learners(list(range(args.members)), args.batch)
    for owner, name, label in (
            (learner.replay, "sample", "replay sampling"),
            (learner, "_sample", "policy sample (autograd path)"),
            (learner, "twin_q", "critics through autograd (target; actor step if not by hand)"),
            (batched_sac, "forward_keeping_inputs", "forward by hand"),
            (batched_sac, "backward_into", "backward by hand"),
            (batched_sac, "input_grad", "critics' input gradient by hand"),
            (learner, "_hand_written_actor_grad", "actor step by hand (all of it)"),
            (learner, "_backward", "autograd backward"),
            (learner.critic_adam, "step", "Adam: critics"),
            (learner.actor_adam, "step", "Adam: actors"),
            (learner.alpha_adam, "step", "Adam: temperatures")):
        _label(owner, name, label)
    for _ in range(3):
        learner.update()
    start = time.perf_counter()
    for _ in range(args.updates):
        learner.update()
    wall_ms = (time.perf_counter() - start) / args.updates * 1e3
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(args.updates):
            learner.update()
    table = prof.key_averages()
    print(f"BatchedSAC, K={args.members}, batch {args.batch}: {wall_ms:.1f} ms wall per update "
          f"(unprofiled); CPU ms per update of each phase:")
    for event in sorted((e for e in table if e.key.startswith(PREFIX)),
                        key=lambda e: -e.cpu_time_total):
        print(f"  {event.key[len(PREFIX):]:62s} {event.cpu_time_total / args.updates / 1e3:8.2f}")
    print(table.table(sort_by="self_cpu_time_total", row_limit=12))
    batched_matmul_ms = sum(e.self_cpu_time_total for e in table
                            if category(e.key) == "matmul") / args.updates / 1e3

    def separate_round() -> None:
        for agent in agents:
            agent.update()
    blocks = interleaved_blocks({"batched": learner.update, "separate": separate_round},
                                args.seconds, block_seconds=0.0, warmup_calls=2)
    batched_ms, separate_ms = (1e3 / median_rate(blocks, name) for name in ("batched", "separate"))
    print(f"interleaved, unprofiled (median of {len(blocks['batched'])} rounds): one batched "
          f"update {batched_ms:.1f} ms, {args.members} separate SACAgent updates "
          f"{separate_ms:.1f} ms, ratio {paired_ratio(blocks, 'batched', 'separate'):.2f}x")
    print(f"the batched update's matrix products (profiled): {batched_matmul_ms:.1f} ms; bound if "
          f"it were those alone: {separate_ms / batched_matmul_ms:.2f}x")


if __name__ == "__main__":
    main()
