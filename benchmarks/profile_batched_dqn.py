"""Where the time of one seed-batched DQN loop step goes (``palr.batched.dqn.BatchedDQN`` in
``palr.batched.loop.MemberEnvLoop``), by phase, and how far the matrix products alone bound the
speed-up over separate runs.

Builds ``bench_batched``'s K = ``--members`` CartPole learners (4-128-128-2 ReLU MLP, batch 128,
an update every env step from ``learning_starts``) and the K separate ``bench_dqn.PALRDQNLoop``
runs of the same seeds, fills both past ``learning_starts``, then profiles ``--steps`` loop
steps with ``torch.profiler``, each phase marked by a ``record_function`` label wrapped around
the method that does it: acting, the K environment steps, replay sampling, the whole update and
inside it the hand-written forward passes (target and online), the TD gradient, the
hand-written backward pass and Adam. Phases nest, so their CPU times overlap; the top ops by
self CPU time follow.

Then the bound (``phase_profile.print_bound``): chunks of ``--chunk_steps`` loop steps of the
batched learner and of the K separate runs, timed unprofiled and interleaved for ``--seconds``
(``timing``, as ``bench_batched``), against the batched loop steps' matrix products and their
GFLOP/s next to a 1024^3 matmul's on the same thread: products near that rate cannot get
cheaper, so the bound is the most that removing every other cost of the batched step could give.

Run: ``python benchmarks/profile_batched_dqn.py [--members 10] [--steps 200] [--seconds 10]``
"""
from __future__ import annotations

import argparse

import gymnasium as gym

import palr.batched.dqn as batched_dqn
from bench_dqn import LEARNING_STARTS, PALRDQNLoop
from palr.agents.dqn import DQNConfig
from palr.batched.dqn import BatchedDQN
from palr.batched.loop import MemberEnvLoop
from palr.experiments.cli import configure_torch
from palr.experiments.schedule import TrainingSchedule
from phase_profile import print_bound, profile_phases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=10, help="members K (default 10)")
    parser.add_argument("--steps", type=int, default=200, help="profiled loop steps (default 200)")
    parser.add_argument("--chunk_steps", type=int, default=100,
                        help="loop steps per timed chunk of the bound (default 100)")
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="interleaved timing of batched vs separate chunks (default 10)")
    args = parser.parse_args()
    if min(args.members, args.steps, args.chunk_steps) <= 0 or args.seconds < 0:
        parser.error("--members, --steps and --chunk_steps must be positive, --seconds >= 0")
    configure_torch()
    seeds = list(range(args.members))
    learner = BatchedDQN(4, 2, seeds, DQNConfig())
    loop = MemberEnvLoop(learner, [gym.make("CartPole-v1") for _ in seeds], TrainingSchedule())
    separate = [PALRDQNLoop(seed) for seed in seeds]
    for run in [loop] + separate:
        run.run_steps(LEARNING_STARTS + 200)  # fill past learning_starts and warm up
    phases = [(learner, "act", "acting"),
              (learner.replay, "sample", "replay sampling"),
              (learner, "update", "update (all of it)"),
              (batched_dqn, "forward_keeping_inputs", "forward by hand (target and online)"),
              (batched_dqn, "huber_td_grad", "TD gradient"),
              (batched_dqn, "backward_into", "backward by hand"),
              (learner.adam, "step", "Adam")]
    phases += [(env, "step", "environment steps") for env in loop.envs]
    table = profile_phases(phases, lambda: loop.run_steps(args.steps), args.steps,
                           f"BatchedDQN, K={args.members}, CartPole, batch 128: CPU ms per loop "
                           f"step of each phase (profiled):")

    def separate_chunk() -> None:
        for run in separate:
            run.run_steps(args.chunk_steps)
    print_bound(lambda: loop.run_steps(args.chunk_steps), separate_chunk, table,
                args.steps / args.chunk_steps, args.seconds,
                f"chunk of {args.chunk_steps} loop steps",
                f"{args.members} separate runs' {args.chunk_steps} steps each")


if __name__ == "__main__":
    main()
