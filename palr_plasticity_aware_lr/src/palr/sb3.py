"""PALR and the other interventions of the agent table on Stable-Baselines3's DQN and SAC.

Needs the ``sb3`` extra (``pip install -e ".[sb3]"``)::

    from stable_baselines3 import DQN
    from palr.sb3 import PlasticityCallback

    model = DQN("MlpPolicy", "CartPole-v1", seed=0)
    model.learn(50_000, callback=PlasticityCallback(agent="PALR", measure_freq=1000))

When training starts, :func:`attach_sb3`:

- rebuilds each trained network's optimizer with one param group per layer
  (:func:`palr.optim.regroup_layerwise`: same class, settings, parameters and state; Adam's
  update is elementwise, so the regrouping alone changes no number);
- lets the optimizers' step hooks call the seams
  (:meth:`palr.library.PlasticityHandle.install_step_hooks`). SB3's ``train()`` sets every
  group's learning rate from its schedule before its gradient steps; PALR multiplies a layer's
  rate by its scale right before each step and puts SB3's rate back right after, so the schedule
  keeps owning the base rate. L2Reg's penalty enters as its gradient, added right before the step
  (after SB3's gradient clipping), since SB3 builds its loss inside ``train()``;
- measures on diagnostic batches drawn from SB3's replay buffer by :class:`ReplayDiagnostics`,
  with a NumPy generator of its own (SB3 samples from NumPy's global one, which measuring never
  touches), through views of SB3's networks that share their layers and names (observations
  preprocessed outside, no action sampling) so that torch.fx can trace them;
- declares the networks' roles: DQN ``q`` (``policy.q_net``, target ``q_net_target``) value;
  SAC ``actor`` policy and ``critic`` (target ``critic_target``) value.

Only DQN and SAC (and subclasses) with Box or Discrete observations are supported. SB3's
``save()`` stores the per-layer optimizer groups, which a freshly built SB3 model's one-group
optimizer cannot load.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3 import DQN, SAC
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.preprocessing import preprocess_obs
from torch import nn

from palr.library import PlasticityHandle, attach_networks, make_stack
from palr.interventions import NetworkSlot
from palr.network_roles import ALGO_ROLES
from palr.optim import regroup_layerwise


class LayerView(nn.Module):
    """An SB3 network's child modules and own parameters (shared, not copied) under their own
    names, so layer and param-group names match the network's; subclasses give a ``forward``
    that torch.fx can trace."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        for name, child in network.named_children():
            self.add_module(name, child)
        for name, param in network.named_parameters(recurse=False):
            self.register_parameter(name, param)


class QNetworkView(LayerView):
    """DQN's ``QNetwork`` on preprocessed observations: Q-values of every action."""

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.q_net(self.features_extractor(obs))


class ActorView(LayerView):
    """SAC's actor on preprocessed observations, without sampling: the mean action before the
    tanh squashing."""

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.mu(self.latent_pi(self.features_extractor(obs)))


class CriticView(LayerView):
    """SAC's ``ContinuousCritic`` on preprocessed observations: every critic's Q-value."""

    def __init__(self, critic: nn.Module) -> None:
        super().__init__(critic)
        self.n_critics = int(critic.n_critics)

    def forward(self, obs: torch.Tensor, actions: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        features = torch.cat([self.features_extractor(obs), actions], dim=1)
        return tuple(getattr(self, f"qf{i}")(features) for i in range(self.n_critics))


class ReplayDiagnostics:
    """Diagnostic batches from an off-policy SB3 model's replay buffer, drawn with a NumPy
    generator of their own (with replacement, over every stored transition and env), the
    observations normalised as SB3's sampling does (VecNormalize) and preprocessed."""

    def __init__(self, model: BaseAlgorithm, seed: int) -> None:
        self.model = model
        self.rng = np.random.default_rng([int(seed), 2])

    def __call__(self, n: int) -> Dict[str, Tuple[torch.Tensor, ...]]:
        buffer = self.model.replay_buffer
        stored = buffer.buffer_size if buffer.full else buffer.pos
        if stored == 0:
            raise RuntimeError("the replay buffer is empty: nothing to measure on yet")
        rows = self.rng.integers(stored, size=int(n))
        envs = self.rng.integers(buffer.n_envs, size=int(n))
        obs = buffer.observations[rows, envs]
        vec_normalize = self.model.get_vec_normalize_env()
        if vec_normalize is not None:
            obs = vec_normalize.normalize_obs(obs)
        obs_t = preprocess_obs(buffer.to_torch(obs), self.model.observation_space,
                               normalize_images=self.model.policy.normalize_images)
        if isinstance(self.model, SAC):
            return {"actor": (obs_t,), "critic": (obs_t, buffer.to_torch(buffer.actions[rows, envs]))}
        return {"q": (obs_t,)}

    def state_dict(self) -> Dict[str, Any]:
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]


def _layerwise(owner: nn.Module, view: LayerView) -> torch.optim.Optimizer:
    """Give ``owner`` (the SB3 module holding ``.optimizer``) an optimizer with per-layer groups."""
    owner.optimizer = regroup_layerwise(owner.optimizer, view)
    return owner.optimizer


def _networks(model: BaseAlgorithm) -> List[NetworkSlot]:
    """The trained networks of a DQN or SAC model, in the order ``train()`` steps them."""
    if isinstance(model, DQN):
        policy = model.policy
        view = QNetworkView(policy.q_net)
        roles = ALGO_ROLES["DQN"]
        return [NetworkSlot("q", view, _layerwise(policy, view), roles["q"],
                            targets=[policy.q_net_target])]
    if isinstance(model, SAC):
        roles = ALGO_ROLES["SAC"]
        critic, actor = CriticView(model.critic), ActorView(model.actor)
        return [NetworkSlot("critic", critic, _layerwise(model.critic, critic), roles["critic"],
                            targets=[model.critic_target]),
                NetworkSlot("actor", actor, _layerwise(model.actor, actor), roles["actor"])]
    raise ValueError(f"palr.sb3 supports DQN and SAC, got {type(model).__name__}")


def _entropy_reset(model: BaseAlgorithm) -> Callable[[Sequence[str]], None]:
    """After a full reset of SAC's actor, restart the entropy coefficient and its optimizer
    (the whole agent restarts, Nikishin et al. 2022), from SB3's initial value."""
    def reset(names: Sequence[str]) -> None:
        if "actor" not in names or model.ent_coef_optimizer is None:
            return
        init = float(model.ent_coef.split("_")[1]) if "_" in model.ent_coef else 1.0
        with torch.no_grad():
            model.log_ent_coef.fill_(math.log(init))
        model.ent_coef_optimizer.state.clear()
    return reset


def attach_sb3(model: BaseAlgorithm, diagnostics: ReplayDiagnostics, *,
               agent: Union[str, int, None] = None,
               interventions: Union[str, Sequence[str], None] = None, seed: int = 0,
               monitor: bool = True, **settings: Any) -> PlasticityHandle:
    """Attach the interventions to a DQN or SAC model (see the module docstring); returns the
    handle, its seams called from the optimizers' step hooks.

    Raises:
        ValueError: another algorithm, Dict observations, bad settings, or interventions that
            find no network of their roles (before anything of the model is changed).
    """
    if not isinstance(model, (DQN, SAC)):
        raise ValueError(f"palr.sb3 supports DQN and SAC, got {type(model).__name__}")
    if not isinstance(model.observation_space, (spaces.Box, spaces.Discrete)):
        raise ValueError("palr.sb3 supports Box and Discrete observations, got "
                         f"{type(model.observation_space).__name__}")
    # bad settings and roles no network plays: refused before the optimizers are regrouped
    make_stack(agent, interventions, settings, monitor).check_networks(
        ALGO_ROLES["SAC" if isinstance(model, SAC) else "DQN"])
    reset_hook = _entropy_reset(model) if isinstance(model, SAC) else None
    handle = attach_networks(_networks(model), diagnostics, agent=agent,
                             interventions=interventions, seed=seed, reset_hook=reset_hook,
                             monitor=monitor, **settings)
    handle.install_step_hooks()
    return handle


class PlasticityCallback(BaseCallback):
    """Runs PALR (default), a row of the agent table or interventions by registry name on an SB3
    DQN or SAC model: attaches at the start of training (:func:`attach_sb3`), counts finished
    episodes, and records every measurement in SB3's logger (``plasticity/<net>/<layer>/...``).

    Args:
        agent: agent-table index or key (``"PALR"``, ``"ReDo"``, ``"L2Reg"``, ...).
        interventions: registry names instead of ``agent``.
        seed: seeds the interventions' generator and the diagnostic batches (default: the
            model's seed, else 0).
        monitor: add the metrics-only monitor when no intervention measures.
        settings: intervention settings (``measure_freq=1000``, ``max_lr_scale=3``, ...).

    Raises:
        ValueError: bad settings, at construction.
    """

    def __init__(self, agent: Union[str, int, None] = None,
                 interventions: Union[str, Sequence[str], None] = None,
                 seed: Optional[int] = None, monitor: bool = True, verbose: int = 0,
                 **settings: Any) -> None:
        super().__init__(verbose)
        make_stack(agent, interventions, settings, monitor)  # one clear error, before learn()
        self.options = dict(agent=agent, interventions=interventions, monitor=monitor, **settings)
        self.seed = seed
        self.handle: Optional[PlasticityHandle] = None
        self.diagnostics: Optional[ReplayDiagnostics] = None
        self._pending_state: Optional[Dict[str, Any]] = None

    def _on_training_start(self) -> None:
        if self.handle is not None:  # a further learn() call on the same model
            return
        seed = self.seed if self.seed is not None else int(self.model.seed or 0)
        self.diagnostics = ReplayDiagnostics(self.model, seed)
        self.handle = attach_sb3(self.model, self.diagnostics, seed=seed, **self.options)
        self.handle.subscribe(self._record)
        if self._pending_state is not None:
            self.load_state_dict(self._pending_state)

    def _record(self, _name: str, log: Dict[str, float]) -> None:
        for key, value in log.items():
            self.logger.record(key, value)

    def _on_step(self) -> bool:
        dones = self.locals.get("dones")
        if dones is not None and self.handle is not None:
            for _ in range(int(np.sum(dones))):
                self.handle.on_episode_end()
        return True

    def state_dict(self) -> Dict[str, Any]:
        """The interventions' state and the diagnostic generator (after training started)."""
        if self.handle is None or self.diagnostics is None:
            raise RuntimeError("nothing to save before training started")
        return {"handle": self.handle.state_dict(), "diagnostics": self.diagnostics.state_dict()}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`; before training starts it is applied at the start."""
        if self.handle is None or self.diagnostics is None:
            self._pending_state = state
            return
        self.handle.load_state_dict(state["handle"])
        self.diagnostics.load_state_dict(state["diagnostics"])
        self._pending_state = None

    def close(self) -> None:
        """Remove the step hooks (the per-layer optimizer groups stay; they change no number)."""
        if self.handle is not None:
            self.handle.close()
            self.handle = None


__all__ = ["PlasticityCallback", "attach_sb3", "ReplayDiagnostics", "LayerView", "QNetworkView",
           "ActorView", "CriticView"]
