"""Continual environments. Importing this package registers the light ones with gymnasium
(``palr/ContinualCartPole-v0``, ``palr/ContinualPermutedCartPole-v0``, ``palr/JellyBeanWorld-v0``);
``palr/ContinualWorld-v0`` is registered by importing :mod:`palr.envs.continual_world` (it needs
the ``cw`` extra). gymnasium 1.x can import this package itself:
``gymnasium.make("palr.envs:palr/ContinualCartPole-v0")``."""
from palr.envs import continual_cartpole, jbw  # noqa: F401  (registration on import)
from palr.gym_envs import register_envs

register_envs()  # the permuted CartPole too, by string entry point (its module loads on make)
