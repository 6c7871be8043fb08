"""The actor-critic of habitat-baselines' PointNavResNetPolicy as its rearrange skills configure it
(``rl_skill.yaml``: resnet18, baseplanes 32, LSTM with 2 layers of 512, Gaussian actions with a
state-independent clamped log standard deviation; Wijmans et al. 2020, DD-PPO).

::

    rgb+depth (N,4,H,W) --ResNetEncoder ("encoder")--> (N, ~2048 compressed features) --+
                                                                                       |
      visual_fc -> ReLU (512) ++ joint, is_holding, obj_goal_gps, ee_pos,              |
      relative_resting_position (raw, 20) ++ prev_action_embedding(mask * a_{t-1}) (32)
      --> LSTM (2 layers x 512) --> actor_mean -> tanh  (action mean)
                                +-> critic              (value)
                                (FetchTrunk, "trunk")

As upstream: the 1-D sensors enter the recurrent layers unembedded; the previous action (zero at an
episode start) passes a Linear embedding of 32; the recurrent state starts at zero and is reset
where an episode starts; the LSTM has orthogonal weights and zero biases, the action mean an
orthogonal Linear of gain 0.01 followed by tanh, the critic an orthogonal Linear of gain 1; the
log standard deviation is a parameter drawn as 0.01 N(0, 1) + ``log_std_init`` (0), clamped to
[``log_std_min``, ``log_std_max``] ([-5, 2]) before ``exp``. The sampled action is what PPO
scores; each backend clips it to its own action space before stepping. Smaller sizes of the same
layout serve the CPU tests.

Recurrent state: (N, R, hidden) with R = 2 x layers for the LSTM (h then c, as habitat-baselines
packs them) or layers for a GRU. The two trained networks the interventions see are ``encoder``
(role ``encoder``) and ``trunk`` (roles ``policy`` + ``value``: it holds both heads): each has its
own optimizer built with :func:`palr.optim.layerwise_param_groups`, so a PALR learning-rate scale
is a per-layer learning rate, and ``trunk.forward(features, state, prev_actions, hidden)`` (one
recurrent step) is what the activation probes trace. The trunk's only probed layer is
``visual_fc``: it feeds a concatenation, so it is measured and LR-scaled, never re-initialised.
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

import torch
from torch import nn

from palr.network_roles import ALGO_ROLES

from palr_habitat.ddppo_config import ACTION_ACTIVATIONS, RNN_TYPES, PolicyConfig
from palr_habitat.fetch_obs import STATE_DIM, VISUAL_CHANNELS
from palr_habitat.palr_resnet_encoder import ResNetEncoder

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


class FetchTrunk(nn.Module):
    """Visual projection, previous-action embedding, recurrent layers and the actor/critic heads
    (everything after the visual encoder)."""

    def __init__(self, visual_dim: int, state_dim: int, act_dim: int, hidden_size: int = 512,
                 rnn_type: str = "LSTM", num_recurrent_layers: int = 2,
                 prev_action_size: int = 32, action_activation: str = "tanh",
                 log_std_init: float = 0.0, log_std_min: float = -5.0,
                 log_std_max: float = 2.0) -> None:
        super().__init__()
        if rnn_type not in RNN_TYPES or action_activation not in ACTION_ACTIVATIONS:
            raise ValueError(f"rnn_type must be one of {RNN_TYPES} and action_activation one of "
                             f"{ACTION_ACTIVATIONS}, got {rnn_type!r}, {action_activation!r}")
        self.visual_fc = nn.Linear(visual_dim, hidden_size)
        self.visual_relu = nn.ReLU()
        self.prev_action_embedding = nn.Linear(act_dim, prev_action_size)
        rnn_class = nn.LSTM if rnn_type == "LSTM" else nn.GRU
        self.rnn = rnn_class(hidden_size + state_dim + prev_action_size, hidden_size,
                             num_recurrent_layers)
        self.actor_mean = nn.Linear(hidden_size, act_dim)
        self.critic = nn.Linear(hidden_size, 1)
        self.log_std = nn.Parameter(torch.randn(act_dim) * 0.01 + float(log_std_init))
        self.is_lstm = rnn_type == "LSTM"
        self.tanh_mean = action_activation == "tanh"
        self.log_std_min = float(log_std_min)
        self.log_std_max = float(log_std_max)
        self.hidden_size = int(hidden_size)
        self.num_recurrent_layers = int(num_recurrent_layers) * (2 if self.is_lstm else 1)
        with torch.no_grad():
            for name, param in self.rnn.named_parameters():
                if "weight" in name:
                    nn.init.orthogonal_(param)
                else:
                    param.zero_()
            nn.init.orthogonal_(self.actor_mean.weight, gain=0.01)
            self.actor_mean.bias.zero_()
            nn.init.orthogonal_(self.critic.weight, gain=1.0)
            self.critic.bias.zero_()

    def inputs(self, features: torch.Tensor, state: torch.Tensor, prev_actions: torch.Tensor
               ) -> torch.Tensor:
        """The recurrent layers' input; ``prev_actions`` already zero at episode starts."""
        visual = self.visual_relu(self.visual_fc(features))
        return torch.cat([visual, state, self.prev_action_embedding(prev_actions)], dim=1)

    def recurrent(self, x: torch.Tensor, hidden: torch.Tensor
                  ) -> Tuple[torch.Tensor, torch.Tensor]:
        """One step: x (N, input), hidden (N, R, hidden_size) -> output (N, hidden_size), next
        hidden (N, R, hidden_size)."""
        layers_first = hidden.permute(1, 0, 2)
        if self.is_lstm:
            h, c = torch.chunk(layers_first, 2, 0)
            result = self.rnn(x.unsqueeze(0), (h.contiguous(), c.contiguous()))
            state = result[1]
            packed = torch.cat([state[0], state[1]], 0)
        else:
            result = self.rnn(x.unsqueeze(0), layers_first.contiguous())
            packed = result[1]
        return result[0].squeeze(0), packed.permute(1, 0, 2)

    def heads(self, out: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(action mean, value) from the recurrent output."""
        mean = self.actor_mean(out)
        if self.tanh_mean:
            mean = torch.tanh(mean)
        return mean, self.critic(out).squeeze(-1)

    def forward(self, features: torch.Tensor, state: torch.Tensor, prev_actions: torch.Tensor,
                hidden: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One recurrent step: (action mean, value, next hidden)."""
        out, hidden = self.recurrent(self.inputs(features, state, prev_actions), hidden)
        mean, value = self.heads(out)
        return mean, value, hidden

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

    def __init__(self, act_dim: int, resolution: int, config: Optional[PolicyConfig] = None
                 ) -> None:
        super().__init__()
        config = config if config is not None else PolicyConfig()
        if act_dim <= 0:
            raise ValueError(f"act_dim must be positive, got {act_dim}")
        self.act_dim = int(act_dim)
        self.encoder = ResNetEncoder(VISUAL_CHANNELS, resolution, config.baseplanes,
                                     config.blocks, config.norm, config.groups,
                                     config.input_pool, config.compression_size)
        self.trunk = FetchTrunk(self.encoder.output_dim, STATE_DIM, act_dim, config.hidden_size,
                                config.rnn_type, config.num_recurrent_layers,
                                config.prev_action_size, config.action_activation,
                                config.log_std_init, config.log_std_min, config.log_std_max)

    @property
    def hidden_shape(self) -> Tuple[int, int]:
        """Shape of one env's recurrent state: (R, hidden_size)."""
        return self.trunk.num_recurrent_layers, self.trunk.hidden_size

    def initial_hidden(self, n: int, device: torch.device) -> torch.Tensor:
        return torch.zeros((n,) + self.hidden_shape, device=device)

    @torch.no_grad()
    def act(self, visual: torch.Tensor, state: torch.Tensor, prev_actions: torch.Tensor,
            hidden: torch.Tensor, masks: torch.Tensor, generator: Optional[torch.Generator] = None,
            deterministic: bool = False
            ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """One step for a batch of envs: (actions, log-probs, values, next hidden).

        ``masks`` is 0 where an env starts a new episode (its recurrent state and previous action
        are reset to zero).
        """
        features = self.encoder(visual)
        mean, value, h = self.trunk(features, state, prev_actions * masks[:, None],
                                    hidden * masks[:, None, None])
        log_std = self.trunk.log_std_clamped()
        if deterministic:
            actions = mean
        else:
            noise = torch.randn(mean.shape, generator=generator, device=mean.device)
            actions = mean + noise * log_std.exp()
        return actions, gaussian_log_prob(actions, mean, log_std), value, h

    @torch.no_grad()
    def value(self, visual: torch.Tensor, state: torch.Tensor, prev_actions: torch.Tensor,
              hidden: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        features = self.encoder(visual)
        _, value, _ = self.trunk(features, state, prev_actions * masks[:, None],
                                 hidden * masks[:, None, None])
        return value

    def forward(self, visual: torch.Tensor, state: torch.Tensor, prev_actions: torch.Tensor,
                hidden0: torch.Tensor, masks: torch.Tensor, actions: torch.Tensor
                ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Evaluate B stored segments of L steps (time-major).

        Args:
            visual: (L*B, 4, H, W); state: (L*B, STATE_DIM); prev_actions: (L, B, act_dim), the
            action before each step; hidden0: (B, R, hidden) at each segment start;
            masks: (L, B), 0 where a new episode starts; actions: (L, B, act_dim).

        Returns:
            log-probabilities, values and entropies, each (L, B).
        """
        steps, batch = masks.shape
        previous = (prev_actions * masks[..., None]).reshape(steps * batch, -1)
        x = self.trunk.inputs(self.encoder(visual), state, previous).reshape(steps, batch, -1)
        h = hidden0
        outputs = []
        for t in range(steps):
            out, h = self.trunk.recurrent(x[t], h * masks[t, :, None, None])
            outputs.append(out)
        mean, value = self.trunk.heads(torch.stack(outputs).reshape(steps * batch, -1))
        log_std = self.trunk.log_std_clamped()
        logp = gaussian_log_prob(actions.reshape(steps * batch, -1), mean, log_std)
        entropy = gaussian_entropy(log_std, (steps * batch,))
        return (logp.reshape(steps, batch), value.reshape(steps, batch),
                entropy.reshape(steps, batch))


__all__ = ["FetchPolicy", "FetchTrunk", "gaussian_log_prob", "gaussian_entropy"]
