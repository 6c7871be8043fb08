"""palr_habitat: DD-PPO + PALR on the 4-phase Fetch rearrangement curriculum.

Modules (one job each):

- ``palr_trainer``: the torchrun/srun/single-process entry point and training loop.
- ``ddppo_checkpoint_format``: the checkpoint format; earlier checkpoints translated on load.
- ``ddppo_config``: validated YAML configs (``palr_habitat/configs``).
- ``ddppo_distributed``: process group, straggler preemption, rank 0's decisions, teardown.
- ``ddppo_rollout`` / ``ddppo_ppo``: rollout storage, GAE, recurrent minibatches, clipped PPO.
- ``palr_fetch_policy`` / ``palr_resnet_encoder``: habitat-baselines' PointNavResNetPolicy
  (GroupNorm ResNet, LSTM), probe-friendly.
- ``plasticity_metrics_cnn``: dead filter fraction and conv effective rank (on ``palr.plasticity``).
- ``fetch_curriculum``: the phases and ``curriculum_events.json``.
- ``fetch_obs``, ``fetch_vec_env``, ``fetch_habitat_env``, ``fetch_standin_env``: the observation
  contract and the two backends (habitat-lab when habitat-sim imports, else Meta-World + MuJoCo).

The plasticity core (metrics, probes, re-initialisation, interventions) is imported from
``palr``; nothing of it is copied here. Python 3.9 compatible (habitat-sim's Python).
"""
