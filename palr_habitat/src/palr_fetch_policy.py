"""ResNet-18 + GRU actor-critic for Fetch rearrangement (the DD-PPO policy of Wijmans et al. 2020,
with habitat-baselines' rearrange observation fusion).

::

    rgb+depth (N,4,H,W) --ResNetEncoder ("encoder")--> (N, 8*base_width) --+
    joint(7) ++ is_holding(1) ++ obj_goal_gps(6) -------------------------+--> cat
      --> fuse1 -> ReLU -> fuse2 -> ReLU -> GRUCell --> actor_fc -> ReLU -> actor_mean
                                                    +-> critic_fc -> ReLU -> critic_out
                                                    (FetchTrunk, "trunk")

Actions are continuous: a diagonal Gaussian with a state-independent, clamped log standard
deviation (habitat-baselines' ``use_std_param`` + ``clamp_std``, std_init -1). The sampled action
is what PPO scores; the environment receives it clipped to [-1, 1]. The action dimension comes from
the backend: the habitat-lab Fetch skills take arm joint deltas (7) + grip (1) + base velocity
(2); the Meta-World stand-in takes end-effector deltas (3) + gripper (1).

The two trained networks the interventions see are ``encoder`` (role ``encoder``) and ``trunk``
(roles ``policy`` + ``value``: it holds both heads): each has its own optimizer built with
:func:`palr.optim.layerwise_param_groups`, so a PALR learning-rate scale is a per-layer learning
rate, and ``trunk.forward(features, state, hidden)`` (one recurrent step) is what the activation
probes trace.
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

import torch
from torch import nn

from palr.network_roles import ALGO_ROLES

from palr_habitat.ddppo_config import PolicyConfig
from palr_habitat.fetch_obs import STATE_DIM, VISUAL_CHANNELS
from palr_habitat.palr_resnet_encoder import ResNetEncoder

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


class FetchTrunk(nn.Module):
    """Fusion MLP, GRU and the actor/critic heads (everything after the visual encoder)."""

    def __init__(self, visual_dim: int, state_dim: int, act_dim: int, hidden_size: int = 512,
                 head_hidden: int = 256, log_std_init: float = -1.0, log_std_min: float = -5.0,
                 log_std_max: float = 1.0) -> None:
        super().__init__()
        self.fuse1 = nn.Linear(visual_dim + state_dim, hidden_size)
        self.fuse1_relu = nn.ReLU()
        self.fuse2 = nn.Linear(hidden_size, hidden_size)
        self.fuse2_relu = nn.ReLU()
        self.gru = nn.GRUCell(hidden_size, hidden_size)
        self.actor_fc = nn.Linear(hidden_size, head_hidden)
        self.actor_relu = nn.ReLU()
        self.actor_mean = nn.Linear(head_hidden, act_dim)
        self.critic_fc = nn.Linear(hidden_size, head_hidden)
        self.critic_relu = nn.ReLU()
        self.critic_out = nn.Linear(head_hidden, 1)
        self.log_std = nn.Parameter(torch.full((act_dim,), float(log_std_init)))
        self.log_std_min = float(log_std_min)
        self.log_std_max = float(log_std_max)
        self.hidden_size = int(hidden_size)
        with torch.no_grad():  # small initial policy output, unit-scale value (habitat, CleanRL)
            nn.init.orthogonal_(self.actor_mean.weight, gain=0.01)
            self.actor_mean.bias.zero_()
            nn.init.orthogonal_(self.critic_out.weight, gain=1.0)
            self.critic_out.bias.zero_()

    def fuse(self, features: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        x = torch.cat([features, state], dim=1)
        return self.fuse2_relu(self.fuse2(self.fuse1_relu(self.fuse1(x))))

    def heads(self, h: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        mean = self.actor_mean(self.actor_relu(self.actor_fc(h)))
        value = self.critic_out(self.critic_relu(self.critic_fc(h)))
        return mean, value.squeeze(-1)

    def forward(self, features: torch.Tensor, state: torch.Tensor, hidden: torch.Tensor
                ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One recurrent step: (action mean, value, next hidden)."""
        h = self.gru(self.fuse(features, state), hidden)
        mean, value = self.heads(h)
        return mean, value, h

    def log_std_clamped(self) -> torch.Tensor:
        return self.log_std.clamp(self.log_std_min, self.log_std_max)


def gaussian_log_prob(actions: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor
                      ) -> torch.Tensor:
    """Sum over action dimensions of the diagonal Gaussian log density."""
    z = (actions - mean) * torch.exp(-log_std)
    return (-0.5 * z * z - log_std - _LOG_SQRT_2PI).sum(-1)


def gaussian_entropy(log_std: torch.Tensor, batch_shape: Tuple[int, ...]) -> torch.Tensor:
    """Entropy of the diagonal Gaussian, broadcast to ``batch_shape``."""
    return (0.5 + _LOG_SQRT_2PI + log_std).sum().expand(batch_shape)


class FetchPolicy(nn.Module):
    """The actor-critic; ``forward`` evaluates stored rollout segments for the PPO loss."""

    #: the trained networks (attributes of the policy) and their roles for the interventions
    NETWORK_ROLES = ALGO_ROLES["PPO"]

    def __init__(self, act_dim: int, config: Optional[PolicyConfig] = None) -> None:
        super().__init__()
        config = config if config is not None else PolicyConfig()
        if act_dim <= 0:
            raise ValueError(f"act_dim must be positive, got {act_dim}")
        self.act_dim = int(act_dim)
        self.encoder = ResNetEncoder(VISUAL_CHANNELS, config.base_width, config.blocks,
                                     config.norm, config.groups)
        self.trunk = FetchTrunk(self.encoder.output_dim, STATE_DIM, act_dim, config.hidden_size,
                                config.head_hidden, config.log_std_init, config.log_std_min,
                                config.log_std_max)

    @property
    def hidden_size(self) -> int:
        return self.trunk.hidden_size

    def initial_hidden(self, n: int, device: torch.device) -> torch.Tensor:
        return torch.zeros(n, self.hidden_size, device=device)

    @torch.no_grad()
    def act(self, visual: torch.Tensor, state: torch.Tensor, hidden: torch.Tensor,
            masks: torch.Tensor, generator: Optional[torch.Generator] = None, deterministic: bool = False
            ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """One step for a batch of envs: (actions, log-probs, values, next hidden).

        ``masks`` is 0 where an env starts a new episode (its hidden state is reset).
        """
        features = self.encoder(visual)
        mean, value, h = self.trunk(features, state, hidden * masks[:, None])
        log_std = self.trunk.log_std_clamped()
        if deterministic:
            actions = mean
        else:
            noise = torch.randn(mean.shape, generator=generator, device=mean.device)
            actions = mean + noise * log_std.exp()
        return actions, gaussian_log_prob(actions, mean, log_std), value, h

    @torch.no_grad()
    def value(self, visual: torch.Tensor, state: torch.Tensor, hidden: torch.Tensor,
              masks: torch.Tensor) -> torch.Tensor:
        features = self.encoder(visual)
        _, value, _ = self.trunk(features, state, hidden * masks[:, None])
        return value

    def forward(self, visual: torch.Tensor, state: torch.Tensor, hidden0: torch.Tensor,
                masks: torch.Tensor, actions: torch.Tensor
                ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Evaluate B stored segments of L steps (time-major).

        Args:
            visual: (L*B, 4, H, W); state: (L*B, 14); hidden0: (B, hidden) at each segment start;
            masks: (L, B), 0 where a new episode starts; actions: (L, B, act_dim).

        Returns:
            log-probabilities, values and entropies, each (L, B).
        """
        steps, batch = masks.shape
        x = self.trunk.fuse(self.encoder(visual), state).reshape(steps, batch, -1)
        h = hidden0
        outputs = []
        for t in range(steps):
            h = self.trunk.gru(x[t], h * masks[t, :, None])
            outputs.append(h)
        mean, value = self.trunk.heads(torch.stack(outputs).reshape(steps * batch, -1))
        log_std = self.trunk.log_std_clamped()
        logp = gaussian_log_prob(actions.reshape(steps * batch, -1), mean, log_std)
        entropy = gaussian_entropy(log_std, (steps * batch,))
        return (logp.reshape(steps, batch), value.reshape(steps, batch),
                entropy.reshape(steps, batch))


__all__ = ["FetchPolicy", "FetchTrunk", "gaussian_log_prob", "gaussian_entropy"]
