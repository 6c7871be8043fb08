"""Soft Actor-Critic (Haarnoja et al. 2018, "Soft Actor-Critic Algorithms and Applications") with
twin critics, target critics and automatic entropy temperature, calling an intervention stack at
every seam (palr/interventions/base.py).

Defaults follow Continual World's SAC (Wolczyk et al. 2021): 4 x 256 MLPs, one Adam lr 1e-3,
gamma 0.99, polyak 0.995, target entropy -action_dim, tanh-Gaussian policy with log_std clamped to
[-20, 2], batch 128, 1M FIFO replay. Networks:

- ``network="relu"`` (default): Linear + ``nn.ReLU`` modules. PALR's dead-unit metric counts ReLU
  units that output exactly zero, so its perturbation needs ReLU.
- ``network="cw"``: Continual World's exact network, Linear -> LayerNorm -> Tanh for the first layer,
  Linear + LeakyReLU(0.2) for the rest. Its activations are never exactly zero, so the dead fraction
  is reported as not applicable and PALR uses the tau-dormant fraction instead (the dead and
  dormant fractions of docs/palr.md); the first layer (LayerNorm mixes units) is metrics/LR-scaling only, not recyclable.

Task-aware settings (Continual World's continual-learning SAC, awarelab/continual_world
``sac.py``/``models.py``; off by default, where task switches are silent). They need the task's
one-hot at the end of every observation (``num_tasks`` entries, :class:`SACAgent`):

- ``multi_head``: one output head per task (actor: mean and log-std, critics: Q), the head picked
  by the one-hot; ``hide_task_id`` keeps the one-hot out of the hidden layers (Continual World's
  default), so it only picks the head;
- ``per_task_alpha``: one entropy temperature per task, picked by the one-hot;
- ``reset_replay_on_task`` / ``reset_optimizer_on_task``: at every task switch the replay buffer is
  emptied and every Adam moment zeroed, the step counts kept (Continual World's
  ``reset_optimizer``).

The agent keeps the contract of :mod:`palr.agents.contract`: ``observe`` only stores, ``update``
does one gradient update of critics, actor and temperature; the random warm-up and when to update
(``start_steps``, ``update_after``, ``update_every``) are
:class:`palr.experiments.schedule.TrainingSchedule`'s.

The update is written for speed without changing the algorithm: fused Adam
(:func:`palr.agents.fast_paths.make_adam`, stepped by :func:`palr.optim.step_adam`,
bit-identical to ``Adam.step``), the actor's backward
restricted to the actor's parameters (no critic weight gradients are computed for the actor loss),
the entropy-temperature loss reusing the actor loss's log-probabilities, one ``_foreach_lerp_``
target update, alpha kept as a tensor, and no host synchronisation except every ``log_every``
updates. The twin critics stay two ``nn.Sequential`` of real Linear/ReLU modules (the probes and
unit re-initialisation need them): batching them into one ``baddbmm`` measured no faster on CPU
(same FLOPs; 2 x addmm 179 us vs baddbmm 182 us at batch 128) and would copy stacked weights
every step. All randomness (initialisation, action noise, interventions, diagnostic batches, evaluation noise,
replay sampling) comes from separate generators seeded by ``SACConfig.seed``, so measuring or
evaluating never changes training; the global RNG is left untouched.
"""
from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from palr.agents.fast_paths import make_adam
from palr.agents.replay import ReplayBuffer
from palr.checks import (check_choice, check_finite_fields, check_positive, check_positive_int,
                         check_range, check_widths)
from palr.interventions.base import InterventionStack, NetworkSlot, TrainingContext
from palr.network_roles import ALGO_ROLES
from palr.optim import layerwise_param_groups, reset_optimizer_moments, step_adam

NETWORKS: Tuple[str, ...] = ("relu", "cw")
_LOG_2PI = math.log(2.0 * math.pi)
_LOG_2 = math.log(2.0)


@dataclass
class SACConfig:
    """SAC hyper-parameters (defaults: Continual World's SAC).

    Attributes:
        network: ``"relu"`` (Linear + ReLU modules; PALR's dead units are defined) or ``"cw"``
            (Continual World: Linear-LayerNorm-Tanh, then Linear + LeakyReLU).
        hidden_sizes: widths of the hidden layers (actor and each critic).
        leaky_slope: negative slope of the ``"cw"`` network's LeakyReLU (TensorFlow's 0.2).
        lr: Adam learning rate of actor, critics and entropy temperature.
        gamma: discount factor.
        polyak: target critics ``theta_targ <- polyak * theta_targ + (1 - polyak) * theta``.
        batch_size: gradient-step batch size (CW: 128; the original rlBigWorld launcher: 2048).
        buffer_size: replay capacity (FIFO; kept across silent task switches).
        init_alpha: initial entropy temperature.
        target_entropy: entropy target; ``None`` = ``-action_dim``.
        log_std_min / log_std_max: clamp of the policy's log standard deviation.
        log_every: ``update`` returns its scalars (one host sync) every this many updates.
        fused_adam: use the fused Adam kernel where the device supports it.
        device: ``"cpu"`` or ``"cuda"`` (``"cuda:1"``, ...).
        seed: seeds every generator of the agent.
        multi_head: one output head per task, picked by the observation's task one-hot.
        hide_task_id: the hidden layers do not see the task one-hot (it only picks heads and
            temperatures); ``False`` feeds it to the first layer too.
        per_task_alpha: one entropy temperature per task, picked by the task one-hot.
        reset_replay_on_task: empty the replay buffer at every task switch.
        reset_optimizer_on_task: zero every optimizer moment at every task switch (step counts
            kept).
    """

    network: str = "relu"
    hidden_sizes: Tuple[int, ...] = (256, 256, 256, 256)
    leaky_slope: float = 0.2
    lr: float = 1e-3
    gamma: float = 0.99
    polyak: float = 0.995
    batch_size: int = 128
    buffer_size: int = 1_000_000
    init_alpha: float = 1.0
    target_entropy: Optional[float] = None
    log_std_min: float = -20.0
    log_std_max: float = 2.0
    log_every: int = 1000
    fused_adam: bool = True
    device: str = "cpu"
    seed: int = 0
    multi_head: bool = False
    hide_task_id: bool = True
    per_task_alpha: bool = False
    reset_replay_on_task: bool = False
    reset_optimizer_on_task: bool = False

    @property
    def needs_task_id(self) -> bool:
        """Whether the agent needs a task one-hot in its observations (heads or temperatures)."""
        return self.multi_head or self.per_task_alpha

    def __post_init__(self) -> None:
        self.hidden_sizes = tuple(int(h) for h in self.hidden_sizes)
        check_choice("network", self.network, NETWORKS)
        check_widths("hidden_sizes", self.hidden_sizes)
        for name in ("lr", "init_alpha"):
            check_positive(name, getattr(self, name))
        for name in ("batch_size", "buffer_size", "log_every"):
            check_positive_int(name, getattr(self, name))
        for name in ("gamma", "polyak"):
            check_range(name, getattr(self, name), 0.0, 1.0)
        check_finite_fields(self)  # leaky_slope, log_std_min/max, target_entropy
        if self.log_std_min >= self.log_std_max:
            raise ValueError(f"log_std_min must be below log_std_max, got {self.log_std_min}, "
                             f"{self.log_std_max}")


# --- networks --------------------------------------------------------------------------------
def mlp(in_dim: int, out_dim: int, hidden_sizes: Sequence[int], network: str = "relu",
        leaky_slope: float = 0.2) -> nn.Sequential:
    """``nn.Sequential`` of Linear and activation MODULES (probes attach to them by tracing).

    ``relu``: [Linear, ReLU] x n, Linear. ``cw``: Linear, LayerNorm, Tanh, [Linear, LeakyReLU] x
    (n - 1), Linear (Continual World's ``mlp`` with ``use_layer_norm=True``).
    """
    if network not in NETWORKS:
        raise ValueError(f"unknown SAC network {network!r}; valid: {', '.join(NETWORKS)}")
    layers: List[nn.Module] = []
    width = in_dim
    for i, hidden in enumerate(hidden_sizes):
        layers.append(nn.Linear(width, hidden))
        # in-place activations right after a Linear are autograd-safe (addmm does not save its
        # output) and save one activation-sized allocation each: ~10% of the update at batch 2048
        if network == "relu":
            layers.append(nn.ReLU(inplace=True))
        elif i == 0:
            layers += [nn.LayerNorm(hidden), nn.Tanh()]
        else:
            layers.append(nn.LeakyReLU(leaky_slope, inplace=True))
        width = hidden
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


@dataclass(frozen=True)
class TaskInput:
    """How a network reads the task one-hot at the end of its observations.

    Attributes:
        num_tasks: length of the one-hot (0: the observations carry none).
        heads: output heads, 1 or ``num_tasks`` (the head of each sample picked by its one-hot).
        hide: keep the one-hot out of the hidden layers (Continual World's ``hide_task_id``).
    """

    num_tasks: int = 0
    heads: int = 1
    hide: bool = True

    def __post_init__(self) -> None:
        if self.num_tasks < 0 or self.heads not in (1, max(self.num_tasks, 1)):
            raise ValueError(f"heads must be 1 or num_tasks ({self.num_tasks}), got {self.heads}")

    def trunk_dim(self, obs_dim: int) -> int:
        """Inputs of the first layer from an observation of ``obs_dim`` entries."""
        return obs_dim - self.num_tasks if self.hide else obs_dim

    def trunk(self, obs: torch.Tensor) -> torch.Tensor:
        """What the hidden layers see of ``obs`` (``[..., obs_dim]``): without the one-hot when
        it is hidden."""
        return obs[..., :-self.num_tasks] if self.hide and self.num_tasks else obs

    def head(self, out: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
        """``out`` (``[..., heads * k]``) reduced to the head ``obs``'s one-hot picks
        (:func:`select_head`); ``out`` itself with one head."""
        if self.heads == 1:
            return out
        return select_head(out, obs[..., -self.num_tasks:], self.heads)

    @classmethod
    def of(cls, cfg: "SACConfig", obs_dim: int, num_tasks: int) -> "TaskInput":
        """The task input of a SAC agent with ``cfg`` on observations of ``obs_dim`` entries,
        the last ``num_tasks`` of them the task one-hot (0: none).

        Raises:
            ValueError: ``num_tasks`` out of range, or 0 with ``multi_head``/``per_task_alpha``.
        """
        if not 0 <= num_tasks < obs_dim or (cfg.needs_task_id and num_tasks == 0):
            raise ValueError(f"num_tasks (task one-hot length) must be in 0..{obs_dim - 1} and "
                             f">= 1 with multi_head or per_task_alpha, got {num_tasks}")
        return cls(int(num_tasks), int(num_tasks) if cfg.multi_head else 1, cfg.hide_task_id)


def select_head(out: torch.Tensor, one_hot: torch.Tensor, heads: int) -> torch.Tensor:
    """``out`` (N, heads * k) -> (N, k): the block of the head each sample's one-hot picks
    (Continual World's ``_choose_head``; head h owns columns ``h*k:(h+1)*k``)."""
    blocks = out.unflatten(-1, (heads, -1))
    return (one_hot.unsqueeze(-1) * blocks).sum(-2)


class Actor(nn.Module):
    """Gaussian policy head: ``forward(obs) -> (mean, log_std)`` with log_std clamped; actions are
    ``tanh(mean + exp(log_std) * eps)`` (the agent samples, with its own generator). With a
    :class:`TaskInput`, the last ``num_tasks`` observation entries are the task one-hot."""

    def __init__(self, obs_dim: int, act_dim: int, hidden_sizes: Sequence[int],
                 network: str = "relu", leaky_slope: float = 0.2, log_std_min: float = -20.0,
                 log_std_max: float = 2.0, task: TaskInput = TaskInput()) -> None:
        super().__init__()
        self.task = task
        self.trunk_dim = task.trunk_dim(obs_dim)
        self.net = mlp(self.trunk_dim, 2 * act_dim * task.heads, hidden_sizes, network,
                       leaky_slope)
        self.log_std_min = float(log_std_min)
        self.log_std_max = float(log_std_max)

    def forward(self, obs: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = self.task.head(self.net(self.task.trunk(obs)), obs).chunk(2, dim=-1)
        return mean, log_std.clamp(self.log_std_min, self.log_std_max)


class TwinQ(nn.Module):
    """Both critics in one module: ``forward(obs, act) -> (q1, q2)``, each of shape (N,); task
    one-hot and heads as in :class:`Actor`."""

    def __init__(self, obs_dim: int, act_dim: int, hidden_sizes: Sequence[int],
                 network: str = "relu", leaky_slope: float = 0.2,
                 task: TaskInput = TaskInput()) -> None:
        super().__init__()
        self.task = task
        self.trunk_dim = task.trunk_dim(obs_dim)
        self.q1 = mlp(self.trunk_dim + act_dim, task.heads, hidden_sizes, network, leaky_slope)
        self.q2 = mlp(self.trunk_dim + act_dim, task.heads, hidden_sizes, network, leaky_slope)

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([self.task.trunk(obs), act], dim=-1)
        q1, q2 = self.task.head(self.q1(x), obs), self.task.head(self.q2(x), obs)
        return q1.squeeze(-1), q2.squeeze(-1)


def tanh_gaussian(mean: torch.Tensor, log_std: torch.Tensor, noise: torch.Tensor
                  ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Reparameterised tanh-Gaussian sample and its log-probability (summed over action dims).

    ``log pi(a) = log N(u; mean, std) - sum log(1 - tanh(u)^2)`` with the stable form
    ``log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u))`` (Haarnoja et al. 2018, appendix C).
    """
    u = mean + log_std.exp() * noise
    log_prob = (-0.5 * noise.pow(2) - log_std - 0.5 * _LOG_2PI).sum(-1)
    log_prob = log_prob - (2.0 * (_LOG_2 - u - nn.functional.softplus(-2.0 * u))).sum(-1)
    return torch.tanh(u), log_prob


def sac_seeds(seed: int) -> List[int]:
    """The seeds of a SAC run's generators, derived from ``seed``: initial weights, training
    policy noise, interventions, replay sampling, diagnostic batches, evaluation noise."""
    return [int(s) for s in np.random.SeedSequence(int(seed)).generate_state(6)]


def seeded_networks(obs_dim: int, act_dim: int, cfg: SACConfig, task: TaskInput,
                    init_seed: int) -> Tuple[Actor, TwinQ]:
    """The actor and twin critics of a SAC run, PyTorch's default initialisation drawn from
    ``init_seed`` (the first of :func:`sac_seeds`) without touching the global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(init_seed)
        actor = Actor(obs_dim, act_dim, cfg.hidden_sizes, cfg.network, cfg.leaky_slope,
                      cfg.log_std_min, cfg.log_std_max, task)
        critic = TwinQ(obs_dim, act_dim, cfg.hidden_sizes, cfg.network, cfg.leaky_slope, task)
    return actor, critic


# --- agent -----------------------------------------------------------------------------------
class SACAgent:
    """SAC with an intervention stack at every seam, keeping :class:`palr.agents.contract.Agent`.

    Args:
        obs_dim / act_dim: flat observation size and action size (actions in [-1, 1]).
        config: hyper-parameters.
        stack: interventions (PALR, L2Reg, ...); ``None`` = plain SAC.
        num_tasks: the last ``num_tasks`` entries of every observation are the task one-hot
            (0: none); needed by ``multi_head`` and ``per_task_alpha``.

    Seams (palr/interventions/base.py): ``on_optimizer_created`` at construction;
    ``loss_penalty("critic"/"actor")`` added to each loss; ``before_step``/``after_step`` around
    each ``optimizer.step()``; ``after_update(n)`` once per gradient update with ``n`` the number of
    updates done so far (1, 2, ...); :meth:`on_episode_end` and :meth:`on_task_switch` pass through
    (:meth:`on_task_switch` also applies the config's task-switch resets).
    """

    #: the trained networks' roles (interventions select networks by role)
    NETWORK_ROLES = ALGO_ROLES["SAC"]

    def __init__(self, obs_dim: int, act_dim: int, config: Optional[SACConfig] = None,
                 stack: Optional[InterventionStack] = None, num_tasks: int = 0) -> None:
        if obs_dim <= 0 or act_dim <= 0:
            raise ValueError(f"obs_dim and act_dim must be positive, got {obs_dim}, {act_dim}")
        self.config = cfg = config if config is not None else SACConfig()
        task = TaskInput.of(cfg, obs_dim, num_tasks)
        self.obs_dim, self.act_dim = int(obs_dim), int(act_dim)
        self.num_tasks = task.num_tasks
        self.device = torch.device(cfg.device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("device 'cuda' requested but CUDA is not available; use device='cpu'")
        init_seed, noise_seed, ctx_seed, replay_seed, diag_seed, eval_seed = sac_seeds(cfg.seed)
        self.target_entropy = float(-act_dim if cfg.target_entropy is None else cfg.target_entropy)

        self.actor, self.critic = seeded_networks(obs_dim, act_dim, cfg, task, init_seed)
        self.actor.to(self.device)
        self.critic.to(self.device)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)

        self.actor_opt = make_adam(layerwise_param_groups(self.actor), cfg.lr, cfg.fused_adam)
        self.critic_opt = make_adam(layerwise_param_groups(self.critic), cfg.lr, cfg.fused_adam)
        alphas = self.num_tasks if cfg.per_task_alpha else 1
        self.log_alpha = torch.full((alphas,), math.log(cfg.init_alpha), device=self.device,
                                    requires_grad=True)
        self.alpha_opt = make_adam([self.log_alpha], cfg.lr, cfg.fused_adam)
        self._actor_params = list(self.actor.parameters())
        self._critic_params = list(self.critic.parameters())
        self._target_params = list(self.critic_target.parameters())

        #: CPU generator for the interventions' randomness (TrainingContext.generator).
        self.generator = torch.Generator().manual_seed(ctx_seed)
        #: diagnostic batches only: a measurement never moves the training or intervention streams.
        self.diag_rng = np.random.default_rng(diag_seed)
        #: generator of the policy noise in training (on the agent's device).
        self.noise_generator = torch.Generator(device=self.device).manual_seed(noise_seed)
        #: policy noise of evaluation episodes: evaluating never moves the training noise.
        self.eval_generator = torch.Generator(device=self.device).manual_seed(eval_seed)
        self.replay = ReplayBuffer(cfg.buffer_size, (obs_dim,), (act_dim,), obs_dtype=np.float32,
                                   action_dtype=np.float32, seed=replay_seed)
        self.env_steps = 0
        self.task_env_steps = 0
        self.updates = 0
        self.episodes = 0

        self.stack = stack if stack is not None else InterventionStack()
        self.networks: Dict[str, NetworkSlot] = {
            "actor": NetworkSlot("actor", self.actor, self.actor_opt,
                                 self.NETWORK_ROLES["actor"]),
            "critic": NetworkSlot("critic", self.critic, self.critic_opt,
                                  self.NETWORK_ROLES["critic"], targets=[self.critic_target]),
        }
        self.context = TrainingContext(networks=self.networks, generator=self.generator,
                                       diagnostic_inputs=self.diagnostic_inputs,
                                       reset_hook=self._after_reset)
        self.stack.on_optimizer_created(self.context)

    # --- the losses and the update ----------------------------------------------------------
    @property
    def alpha(self) -> torch.Tensor:
        """Every entropy temperature (one, or one per task)."""
        return self.log_alpha.detach().exp()

    def _log_alpha(self, obs: torch.Tensor) -> torch.Tensor:
        """log alpha for a batch: the one temperature (1,), or each sample's task's (N,)."""
        if not self.config.per_task_alpha:
            return self.log_alpha
        return obs[:, -self.num_tasks:] @ self.log_alpha

    def _sample(self, obs: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = self.actor(obs)
        noise = torch.randn(mean.shape, generator=self.noise_generator, device=self.device)
        return tanh_gaussian(mean, log_std, noise)

    def update(self, batch: Optional[Dict[str, torch.Tensor]] = None) -> Dict[str, float]:
        """One gradient update of critics, actor and temperature, then the target critics.

        Args:
            batch: ``obs, actions, rewards, next_obs, terminated`` tensors (as
                :meth:`ReplayBuffer.sample` returns); ``None`` samples ``batch_size`` from the
                agent's replay buffer.

        Returns:
            ``{}``, except every ``log_every`` updates: python floats of the losses, alpha, mean Q
            and policy entropy (the only host synchronisation of the update).

        Raises:
            FloatingPointError: at a logging update whose losses are not finite.
        """
        cfg = self.config
        if batch is None:
            batch = self.replay.sample(cfg.batch_size, self.device)
        obs, act = batch["obs"], batch["actions"]
        rew, next_obs, term = batch["rewards"], batch["next_obs"], batch["terminated"]
        stack = self.stack
        log_alpha = self._log_alpha(obs)
        alpha = log_alpha.detach().exp()

        # critics: soft Bellman backup with clipped double Q (Fujimoto et al. 2018)
        with torch.no_grad():
            next_act, next_logp = self._sample(next_obs)
            tq1, tq2 = self.critic_target(next_obs, next_act)
            target = rew + cfg.gamma * (1.0 - term) * (torch.min(tq1, tq2) - alpha * next_logp)
        q1, q2 = self.critic(obs, act)
        critic_loss = (q1 - target).pow(2).mean() + (q2 - target).pow(2).mean()
        penalty = stack.loss_penalty("critic")
        total = critic_loss if penalty is None else critic_loss + penalty
        self.critic_opt.zero_grad()
        total.backward()
        stack.before_step("critic")
        step_adam(self.critic_opt)  # = critic_opt.step(), bit-identical, less overhead
        stack.after_step("critic")

        # actor: maximise min Q - alpha log pi; gradients only into the actor's parameters
        pi, logp = self._sample(obs)
        pq1, pq2 = self.critic(obs, pi)
        actor_loss = (alpha * logp - torch.min(pq1, pq2)).mean()
        penalty = stack.loss_penalty("actor")
        total = actor_loss if penalty is None else actor_loss + penalty
        self.actor_opt.zero_grad()
        total.backward(inputs=self._actor_params)
        stack.before_step("actor")
        step_adam(self.actor_opt)
        stack.after_step("actor")

        # temperature (Haarnoja et al. 2018b, eq. 18; log-alpha form as Continual World / SB3)
        logp_d = logp.detach()
        alpha_loss = -(log_alpha * (logp_d + self.target_entropy)).mean()
        self.alpha_opt.zero_grad()
        alpha_loss.backward()
        step_adam(self.alpha_opt)

        with torch.no_grad():
            torch._foreach_lerp_(self._target_params, self._critic_params, 1.0 - cfg.polyak)

        self.updates += 1
        stack.after_update(self.updates)
        if self.updates % cfg.log_every != 0:
            return {}
        return self._scalars(critic_loss, actor_loss, alpha_loss, alpha, q1, logp_d)

    def _scalars(self, critic_loss: torch.Tensor, actor_loss: torch.Tensor,
                 alpha_loss: torch.Tensor, alpha: torch.Tensor, q1: torch.Tensor,
                 logp: torch.Tensor) -> Dict[str, float]:
        values = torch.stack([critic_loss.detach(), actor_loss.detach(), alpha_loss.detach(),
                              alpha.mean(), q1.detach().mean(), -logp.mean()]).tolist()
        out = dict(zip(("sac/critic_loss", "sac/actor_loss", "sac/alpha_loss", "sac/alpha",
                        "sac/q", "sac/entropy"), values))
        bad = [k for k, v in out.items() if not math.isfinite(v)]
        if bad:
            raise FloatingPointError(f"non-finite SAC values {bad} at update {self.updates}")
        out["sac/updates"] = float(self.updates)
        return out

    # --- acting ------------------------------------------------------------------------------
    @torch.no_grad()
    def act(self, obs: np.ndarray, explore: bool = True, evaluation: bool = False) -> np.ndarray:
        """Action(s) for one observation (obs_dim,) or a batch (N, obs_dim), as float32 NumPy:
        a sample of the policy (``explore``) or its deterministic action ``tanh(mean)``.

        ``evaluation=True`` draws the policy noise from the evaluation generator, so evaluation
        episodes leave the training trajectory exactly as it would be without them."""
        o = torch.as_tensor(np.asarray(obs, dtype=np.float32), device=self.device)
        single = o.dim() == 1
        mean, log_std = self.actor(o.reshape(-1, self.obs_dim))
        if not explore:
            action = torch.tanh(mean)
        else:
            generator = self.eval_generator if evaluation else self.noise_generator
            noise = torch.randn(mean.shape, generator=generator, device=self.device)
            action, _ = tanh_gaussian(mean, log_std, noise)
        out = action.cpu().numpy()
        return out[0] if single else out

    def random_action(self) -> np.ndarray:
        """A uniform action in [-1, 1]^act_dim from the agent's generator (warm-up steps)."""
        u = torch.rand(self.act_dim, generator=self.noise_generator, device=self.device)
        return (u * 2.0 - 1.0).cpu().numpy()

    def observe(self, obs: np.ndarray, action: np.ndarray, reward: float, next_obs: np.ndarray,
                terminated: bool) -> None:
        """Store a transition and count it (no training: see ``update``); ``terminated`` only
        for true terminals (never a time limit)."""
        self.replay.add(obs, action, reward, next_obs, terminated)
        self.env_steps += 1
        self.task_env_steps += 1

    def can_update(self) -> bool:
        """Whether the replay holds a transition to sample (batches are drawn with replacement)."""
        return self.replay.size > 0

    # --- seams the runner drives ---------------------------------------------------------------
    def on_episode_end(self) -> None:
        """Count a finished training episode and tell the stack (``on_episode_end(count)``)."""
        self.episodes += 1
        self.stack.on_episode_end(self.episodes)

    def on_task_switch(self, task: int) -> None:
        """Pass a task switch to the stack (for logging only), then apply the config's resets:
        an empty replay buffer and zeroed optimizer moments (Continual World's
        ``_handle_task_change``); the task's step count restarts."""
        self.task_env_steps = 0
        self.stack.on_task_switch(task)
        if self.config.reset_replay_on_task:
            self.replay.clear()
        if self.config.reset_optimizer_on_task:
            for optimizer in (self.actor_opt, self.critic_opt, self.alpha_opt):
                reset_optimizer_moments(optimizer)

    def diagnostic_inputs(self, n: int) -> Dict[str, Tuple[torch.Tensor, ...]]:
        """A fresh replay batch for plasticity measurements, drawn with the agent's own diagnostic
        generator (so measuring never shifts the training batches, the policy noise or the
        interventions' randomness): ``{"actor": (obs,), "critic": (obs, act)}``."""
        obs, act = self.replay.sample_obs_actions(int(n), self.device, rng=self.diag_rng)
        return {"actor": (obs,), "critic": (obs, act)}

    @torch.no_grad()
    def _after_reset(self, names: Sequence[str]) -> None:
        """After a full reset of networks (PeriodicReset): re-sync the target critics and, with the
        actor, restart the entropy temperature and its optimizer (the whole agent restarts,
        Nikishin et al. 2022)."""
        if "critic" in names:
            self.critic_target.load_state_dict(self.critic.state_dict())
        if "actor" in names:
            self.log_alpha.fill_(math.log(self.config.init_alpha))
            self.alpha_opt.state.clear()

    # --- checkpointing -------------------------------------------------------------------------
    def state_dict(self, include_replay: bool = True) -> Dict[str, Any]:
        """Everything to resume bit-identically (tensors, numbers, strings, lists and dicts only:
        loadable with ``torch.load(weights_only=True)``). ``include_replay=False`` leaves the
        (large) replay buffer out (then save ``agent.replay.state_dict()`` yourself)."""
        state: Dict[str, Any] = {
            "obs_dim": self.obs_dim,
            "act_dim": self.act_dim,
            "num_tasks": self.num_tasks,
            "config": {k: (list(v) if isinstance(v, tuple) else v)
                       for k, v in asdict(self.config).items()},
            "actor": self.actor.state_dict(),
            "critic": self.critic.state_dict(),
            "critic_target": self.critic_target.state_dict(),
            "actor_opt": self.actor_opt.state_dict(),
            "critic_opt": self.critic_opt.state_dict(),
            "log_alpha": self.log_alpha.detach().clone(),
            "alpha_opt": self.alpha_opt.state_dict(),
            "stack": self.stack.state_dict(),
            "generator": self.generator.get_state(),
            "noise_generator": self.noise_generator.get_state(),
            "eval_generator": self.eval_generator.get_state(),
            "diag_rng": self.diag_rng.bit_generator.state,
            "counters": {"env_steps": self.env_steps, "task_env_steps": self.task_env_steps,
                         "updates": self.updates, "episodes": self.episodes},
        }
        if include_replay:
            state["replay"] = self.replay.state_dict()
        return state

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        state = _current_layout(state)
        saved = state["config"]
        for key in ("network", "hidden_sizes", "multi_head", "hide_task_id", "per_task_alpha"):
            mine = getattr(self.config, key)
            theirs = saved.get(key, SACConfig.__dataclass_fields__[key].default)
            theirs = tuple(theirs) if isinstance(mine, tuple) else theirs
            if theirs != mine:
                raise ValueError(f"checkpoint has {key}={theirs!r}, this agent {mine!r}; build the "
                                 "agent with the checkpoint's config")
        dims = (state["obs_dim"], state["act_dim"], state.get("num_tasks", 0))
        if dims != (self.obs_dim, self.act_dim, self.num_tasks):
            raise ValueError(f"checkpoint is for obs/act dims and tasks {dims}, this agent has "
                             f"{(self.obs_dim, self.act_dim, self.num_tasks)}")
        self.actor.load_state_dict(state["actor"])
        self.critic.load_state_dict(state["critic"])
        self.critic_target.load_state_dict(state["critic_target"])
        self.actor_opt.load_state_dict(state["actor_opt"])
        self.critic_opt.load_state_dict(state["critic_opt"])
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"])
        self.alpha_opt.load_state_dict(state["alpha_opt"])
        self.stack.load_state_dict(state["stack"])
        self.generator.set_state(state["generator"])
        self.noise_generator.set_state(state["noise_generator"])
        self.eval_generator.set_state(state["eval_generator"])
        self.diag_rng.bit_generator.state = state["diag_rng"]
        counters = state["counters"]
        self.env_steps = int(counters["env_steps"])
        self.task_env_steps = int(counters["task_env_steps"])
        self.updates = int(counters["updates"])
        self.episodes = int(counters["episodes"])
        if "replay" in state:
            self.replay.load_state_dict(state["replay"])


def _current_layout(state: Dict[str, Any]) -> Dict[str, Any]:
    """A checkpoint of the layout written before the training schedule moved to the trainer (the
    Continual World launcher's ``{"sac": ..., "env_steps", "task_steps"}`` around an agent with
    ``num_updates``/``num_episodes``) in today's layout; today's unchanged."""
    if "counters" in state:
        return state
    if "sac" in state:
        env_steps, task_steps = int(state["env_steps"]), int(state["task_steps"])
        state = state["sac"]
    else:  # an agent saved on its own: it did not count env steps
        env_steps = task_steps = 0
    counters = {"env_steps": env_steps, "task_env_steps": task_steps,
                "updates": state["num_updates"], "episodes": state["num_episodes"]}
    return dict(state, counters=counters)


__all__ = ["SACConfig", "SACAgent", "Actor", "TwinQ", "TaskInput", "select_head", "mlp",
           "tanh_gaussian", "sac_seeds", "seeded_networks", "NETWORKS"]
