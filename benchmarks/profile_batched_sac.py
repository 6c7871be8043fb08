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

Then the bound on the speed-up (``phase_profile.print_bound``): one batched update and the K
separate ``SACAgent`` updates of the same members, timed unprofiled and interleaved for
``--seconds`` (``timing``, as ``bench_batched``), against the batched update's matrix products.

Run: ``python benchmarks/profile_batched_sac.py [--batch 128] [--members 5] [--updates 10] [--seconds 4]``
"""
from __future__ import annotations

import argparse

import palr.batched.sac as batched_sac
from bench_batched import sac_learners
from palr.experiments.cli import configure_torch
from phase_profile import print_bound, profile_phases


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
    phases = (
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
        (learner.alpha_adam, "step", "Adam: temperatures"))
    for _ in range(3):
        learner.update()

    def profiled_updates() -> None:
        for _ in range(args.updates):
            learner.update()
    table = profile_phases(phases, profiled_updates, args.updates,
                           f"BatchedSAC, K={args.members}, batch {args.batch}: CPU ms per update "
                           f"of each phase (profiled):")

    def separate_round() -> None:
        for agent in agents:
            agent.update()
    print_bound(learner.update, separate_round, table, args.updates, args.seconds, "update",
                f"{args.members} separate SACAgent updates")


if __name__ == "__main__":
    main()
