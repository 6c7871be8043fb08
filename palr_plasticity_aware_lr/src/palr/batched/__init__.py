"""Seed-batched training: K members (seeds) of one agent configuration trained in one process.

Every member is the same learner as a separate run with its seed (same initial weights, replay
draws, exploration and intervention randomness), but the K networks live in stacked tensors with
a member axis, so one forward/backward/optimizer step serves all of them: on a CPU, small
networks' updates are dominated by per-op overhead, which the member axis shares out.

- :mod:`palr.batched.stacked_mlp`: K ReLU MLPs in one ``[K, P]`` parameter tensor (``baddbmm``);
  :mod:`palr.batched.stacked_cw_mlp`: K of Continual World's SAC networks (LayerNorm, tanh,
  leaky ReLU) in the same layout;
- :mod:`palr.batched.member_adam`: Adam over the member axis with a per-member, per-layer
  learning rate;
- :mod:`palr.batched.member_replay`: one replay ring with a member axis, a generator per member;
- :mod:`palr.batched.member_slots`: each member's network and optimizer as the interventions see
  them (views of the stacked tensors), so the existing intervention classes run per member;
- :mod:`palr.batched.member_state`: the per-member bookkeeping every batched learner
  checkpoints (seeds, diagnostic generators, intervention stacks, counters);
- :mod:`palr.batched.member_measure`: every member's plasticity measurement from one stacked
  forward pass and one batched SVD per layer;
- :mod:`palr.batched.dqn`: the batched DQN learner; :mod:`palr.batched.loop`: K environments
  stepped together under one :class:`~palr.experiments.schedule.TrainingSchedule`;
- :mod:`palr.batched.sac`: the batched SAC learner (stacked actors, twin critics as 2K stacked
  rows, a temperature per member, or per member and task; task-aware heads);
- :mod:`palr.batched.runner`: whole runs (``--batch_seeds``): every member writes its separate
  run's directory; one checkpoint per batch; finished members frozen;
  :mod:`palr.batched.cw_runner`: the same for Continual World SAC runs (``run_cw_batch``).
"""
