"""Continual environments. Importing this package registers the light ones with gymnasium
(``palr/ContinualCartPole-v0``, ``palr/JellyBeanWorld-v0``); ``palr/ContinualWorld-v0`` is
registered by importing :mod:`palr.envs.continual_world` (it needs the ``cw`` extra)."""
from palr.envs import continual_cartpole, jbw  # noqa: F401  (registration on import)
