"""Deep Q-Network (Mnih et al. 2015, "Human-level control through deep reinforcement learning").

Uniform experience replay, a target network copied from the online network every
``target_update_every`` gradient updates (a hard update, as in the paper), a linearly annealed
epsilon-greedy behaviour policy, the Huber loss (the paper's error clipping), Adam and global
gradient-norm clipping at 10 (Stable-Baselines3's DQN default). Double DQN (van Hasselt et al.
2016) is an option and OFF by default. Layout follows CleanRL's ``dqn.py``: config, network,
then the loss and the update; the Q-network is a 128-128 MLP built from ``nn.Linear``/``nn.ReLU``
modules so activation probes attach to it.

The agent keeps the contract of :mod:`palr.agents.contract`: ``observe`` only stores, ``update``
does one gradient update, and when to update (``learning_starts``, ``train_frequency``, priming)
is :class:`palr.experiments.schedule.TrainingSchedule`'s. Plasticity interventions are composed,
never subclassed: the agent calls its :class:`~palr.interventions.base.InterventionStack` at every
seam (optimizer created, loss penalty, before/after the optimizer step, after every update,
episode end, task switch, checkpointing).

CPU speed paths (:mod:`palr.agents.fast_paths`, each equal to the plain torch call it replaces):
fused Adam stepped by :func:`palr.optim.step_adam`, gradients in one flat buffer, and a NumPy
greedy forward pass when acting.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from palr.agents.fast_paths import FlatGradients, NumpyGreedy, make_adam
from palr.agents.replay import ReplayBuffer
from palr.checks import (check_at_least, check_finite_fields, check_non_negative_int,
                         check_positive, check_positive_int, check_range, check_widths)
from palr.interventions.base import InterventionStack, NetworkSlot, TrainingContext
from palr.network_roles import ALGO_ROLES
from palr.optim import layerwise_param_groups, step_adam


@dataclass
class DQNConfig:
    """DQN hyper-parameters: defaults for (Continual) CartPole.

    CleanRL's CartPole values except where a short phase needs faster learning (chosen on
    ``docs/cartpole_phases.md``'s runs): learning rate 5e-4 (CleanRL 2.5e-4), target copy every
    100 updates (500), epsilon decay over 5k steps (half of 500k), batch 128, buffer 50k; clipping
    keeps the faster target updates from diverging.

    Attributes:
        hidden_sizes: widths of the hidden ReLU layers of the Q-network.
        learning_rate: Adam's (base) learning rate.
        adam_eps: Adam's epsilon.
        gamma: discount factor.
        buffer_size: replay capacity (FIFO; kept across silent task switches).
        batch_size: transitions per gradient update.
        target_update_every: gradient updates between hard target-network copies.
        start_epsilon: exploration rate at step 0.
        end_epsilon: exploration rate after ``exploration_steps`` (kept from then on).
        exploration_steps: environment steps of the linear epsilon decay.
        double_dqn: Double DQN targets (online argmax, target value); off by default.
        huber_delta: threshold of the Huber loss (``smooth_l1`` with ``beta = delta``).
        max_grad_norm: clip the global gradient norm to this value (Stable-Baselines3's DQN
            default, 10); ``None`` = no clipping. Without it, in our continual CartPole runs,
            the Q-values drifted far above the 1/(1-gamma) = 100 bound within ~100k updates
            and the agent collapsed (docs/cartpole_phases.md).
        fused_adam: use torch's fused Adam kernel where this torch build has one (same update
            rule, 2-3x faster step on CPU with per-layer param groups); falls back to the default.
        log_every: gradient updates between returned log dicts.
        seed: seeds the network initialisation, epsilon draws, replay sampling and the generator
            handed to interventions.
        device: torch device of the networks (``"cpu"``, ``"cuda"``, ...).
    """

    hidden_sizes: Tuple[int, ...] = (128, 128)
    learning_rate: float = 5e-4
    adam_eps: float = 1e-8
    gamma: float = 0.99
    buffer_size: int = 50_000
    batch_size: int = 128
    target_update_every: int = 100
    start_epsilon: float = 1.0
    end_epsilon: float = 0.05
    exploration_steps: int = 5_000
    double_dqn: bool = False
    huber_delta: float = 1.0
    max_grad_norm: Optional[float] = 10.0
    fused_adam: bool = True
    log_every: int = 100
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        self.hidden_sizes = tuple(int(h) for h in self.hidden_sizes)
        check_widths("hidden_sizes", self.hidden_sizes)
        for name in ("buffer_size", "batch_size", "target_update_every", "log_every"):
            check_positive_int(name, getattr(self, name))
        check_non_negative_int("exploration_steps", self.exploration_steps)
        check_positive("learning_rate", self.learning_rate)
        check_at_least("adam_eps", self.adam_eps, 0.0)
        for name in ("gamma", "start_epsilon", "end_epsilon"):
            check_range(name, getattr(self, name), 0.0, 1.0)
        check_positive("huber_delta", self.huber_delta)
        if self.max_grad_norm is not None:  # None: no clipping
            check_positive("max_grad_norm", self.max_grad_norm)
        check_finite_fields(self)
        if self.batch_size > self.buffer_size:
            raise ValueError(f"batch_size ({self.batch_size}) must not exceed buffer_size "
                             f"({self.buffer_size})")
        try:
            device = torch.device(self.device)
        except RuntimeError as exc:
            raise ValueError(f"device {self.device!r} is not a torch device (e.g. 'cpu', "
                             f"'cuda', 'cuda:0'): {exc}") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {self.device!r} asked for but CUDA is not available; "
                             "use device='cpu'")


def build_q_network(obs_dim: int, n_actions: int, hidden_sizes: Sequence[int]) -> nn.Sequential:
    """MLP ``Linear -> ReLU -> ... -> Linear`` as ``nn.Sequential`` (probe-friendly modules)."""
    layers = []
    width = obs_dim
    for h in hidden_sizes:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    layers.append(nn.Linear(width, n_actions))
    return nn.Sequential(*layers)


def seeded_q_network(obs_dim: int, n_actions: int, hidden_sizes: Sequence[int],
                     seed: int) -> nn.Sequential:
    """:func:`build_q_network` initialised from ``seed`` without touching the global RNG (the
    initial Q-network of a DQN run with that seed)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_q_network(obs_dim, n_actions, hidden_sizes)


def random_streams(seed: int) -> Tuple[np.random.Generator, torch.Generator, np.random.Generator]:
    """A DQN run's generators besides its replay's (seeded ``seed``): epsilon-greedy draws, the
    interventions' CPU generator, and diagnostic-batch draws."""
    return (np.random.default_rng([seed, 1]), torch.Generator().manual_seed(seed + 7_919),
            np.random.default_rng([seed, 2]))


def linear_epsilon(step: int, start: float, end: float, duration: int) -> float:
    """Linear decay from ``start`` to ``end`` over ``duration`` steps, then ``end`` (CleanRL)."""
    if duration <= 0 or step >= duration:
        return end
    return start + (end - start) * (step / duration)


class DQNAgent:
    """DQN with an intervention stack, keeping :class:`palr.agents.contract.Agent`.

    Args:
        obs_dim: size of the (flat) observation.
        n_actions: number of discrete actions.
        config: hyper-parameters.
        stack: plasticity interventions (``None`` or an empty stack = plain DQN).

    Every environment step: ``act``, then ``observe`` (stores); ``update`` when the schedule says
    so; ``on_episode_end`` after every episode and ``on_task_switch`` when the environment's
    (logged, silent) phase changed.
    """

    NET = "q"
    #: the trained networks' roles (interventions select networks by role)
    NETWORK_ROLES = ALGO_ROLES["DQN"]

    def __init__(self, obs_dim: int, n_actions: int, config: Optional[DQNConfig] = None,
                 stack: Optional[InterventionStack] = None) -> None:
        if obs_dim <= 0 or n_actions <= 1:
            raise ValueError(f"DQN needs obs_dim >= 1 and n_actions >= 2, got {obs_dim}, {n_actions}")
        self.config = config or DQNConfig()
        cfg = self.config
        self.obs_dim = int(obs_dim)
        self.n_actions = int(n_actions)
        self.device = torch.device(cfg.device)
        self.stack = stack if stack is not None else InterventionStack()

        self.q = seeded_q_network(self.obs_dim, self.n_actions, cfg.hidden_sizes,
                                  cfg.seed).to(self.device)
        self.target = copy.deepcopy(self.q)
        self.target.requires_grad_(False)
        self.optimizer = make_adam(layerwise_param_groups(self.q), cfg.learning_rate,
                                   cfg.fused_adam, eps=cfg.adam_eps)
        self._grads = FlatGradients(self._optimized_params())

        self.replay = ReplayBuffer(cfg.buffer_size, (self.obs_dim,), (), np.float32, np.int64,
                                   seed=cfg.seed)
        # epsilon-greedy draws; interventions (CPU); diagnostic batches only (measuring never
        # moves the replay or intervention streams)
        self.rng, self.generator, self.diag_rng = random_streams(cfg.seed)

        self.env_steps = 0
        self.task_env_steps = 0
        self.updates = 0
        self.episodes = 0
        self.task = 0

        # acting: a NumPy forward on CPU (plain MLPs), else one pre-allocated observation tensor
        self._numpy_greedy = NumpyGreedy(self.q) if NumpyGreedy.supports(self.q) else None
        self._obs_f32 = np.zeros(self.obs_dim, dtype=np.float32)
        self._obs_t = torch.zeros((1, self.obs_dim), dtype=torch.float32, device=self.device)

        self.ctx = TrainingContext(
            networks={self.NET: NetworkSlot(self.NET, self.q, self.optimizer,
                                            self.NETWORK_ROLES[self.NET], targets=[self.target])},
            generator=self.generator,
            diagnostic_inputs=self.diagnostic_inputs,
        )
        self.stack.on_optimizer_created(self.ctx)

    # --- the loss and the update -------------------------------------------------------------
    def td_loss(self, batch: Dict[str, torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
        """Huber TD loss of a batch (without intervention penalties) and the predicted Q-values."""
        cfg = self.config
        with torch.no_grad():
            next_target = self.target(batch["next_obs"])
            if cfg.double_dqn:
                next_actions = self.q(batch["next_obs"]).argmax(dim=1, keepdim=True)
                next_value = next_target.gather(1, next_actions).squeeze(1)
            else:
                next_value = next_target.amax(dim=1)
            # r + gamma * (1 - terminated) * V(s')
            td_target = torch.addcmul(batch["rewards"], 1.0 - batch["terminated"], next_value,
                                      value=cfg.gamma)
        q_pred = self.q(batch["obs"]).gather(1, batch["actions"].unsqueeze(1)).squeeze(1)
        return F.smooth_l1_loss(q_pred, td_target, beta=cfg.huber_delta), q_pred

    def update(self, batch: Optional[Dict[str, torch.Tensor]] = None) -> Optional[Dict[str, float]]:
        """One gradient update (on ``batch`` or a fresh replay sample), with every seam called.

        Returns the log dict every ``log_every`` updates, else ``None``.

        Raises:
            FloatingPointError: if the loss is NaN/Inf (the weights are left untouched).
        """
        cfg = self.config
        if batch is None:
            batch = self.replay.sample(cfg.batch_size, self.device)
        td, q_pred = self.td_loss(batch)
        loss = td
        penalty = self.stack.loss_penalty(self.NET)
        if penalty is not None:
            loss = loss + penalty
        step = self.updates + 1
        loss_value = loss.item()  # one host read per update: the finiteness check
        if not math.isfinite(loss_value):
            raise FloatingPointError(
                f"DQN loss is {loss_value} at update {step} (env step {self.env_steps}); "
                "lower the learning rate or check the intervention penalties / rewards")
        self._zero_grad()
        loss.backward()
        if cfg.max_grad_norm is not None:
            self._grads.clip(cfg.max_grad_norm)  # = clip_grad_norm_(q.parameters(), max_grad_norm)
        self.stack.before_step(self.NET)
        step_adam(self.optimizer)  # = optimizer.step(), bit-identical, less overhead
        self.stack.after_step(self.NET)
        self.updates = step
        if step % cfg.target_update_every == 0:
            self.sync_target()
        self.stack.after_update(step)
        if step % cfg.log_every == 0:
            log = {"dqn/loss": loss_value, "dqn/td_loss": float(td.detach()),
                   "dqn/q_mean": float(q_pred.detach().mean()), "dqn/epsilon": self.epsilon,
                   "dqn/updates": float(step)}
            log.update(self.stack.log)
            return log
        return None

    def _zero_grad(self) -> None:
        """``optimizer.zero_grad()``, into :class:`~palr.agents.fast_paths.FlatGradients`' buffer
        (rebuilt if an intervention added parameters to the optimizer)."""
        if len(self._grads.params) != sum(len(g["params"]) for g in self.optimizer.param_groups):
            self._grads = FlatGradients(self._optimized_params())
        self._grads.prepare()

    def _optimized_params(self) -> list:
        return [p for group in self.optimizer.param_groups for p in group["params"]]

    @torch.no_grad()
    def sync_target(self) -> None:
        """Hard update: target <- online."""
        for t, p in zip(self.target.parameters(), self.q.parameters()):
            t.copy_(p)

    def can_update(self) -> bool:
        """Whether the replay holds a full batch."""
        return self.replay.size >= self.config.batch_size

    # --- acting ------------------------------------------------------------------------------
    @property
    def epsilon(self) -> float:
        """Exploration rate at the current environment step."""
        cfg = self.config
        return linear_epsilon(self.env_steps, cfg.start_epsilon, cfg.end_epsilon,
                              cfg.exploration_steps)

    def act(self, obs: np.ndarray, explore: bool = True) -> int:
        """Epsilon-greedy action (``explore``) or the greedy one."""
        if explore and self.rng.random() < self.epsilon:
            return self.random_action()
        return self.greedy_action(obs)

    def random_action(self) -> int:
        """A uniform random action from the agent's epsilon generator."""
        return int(self.rng.integers(self.n_actions))

    def greedy_action(self, obs: np.ndarray) -> int:
        """argmax_a Q(obs, a) of the online network (ties: lowest index)."""
        if self._numpy_greedy is not None:  # = the torch forward below, in NumPy
            self._obs_f32[:] = obs
            return self._numpy_greedy(self._obs_f32)
        with torch.no_grad():
            self._obs_t.copy_(torch.as_tensor(obs, dtype=torch.float32).view(1, -1))
            return int(self.q(self._obs_t).argmax(dim=1).item())

    def observe(self, obs: np.ndarray, action: int, reward: float, next_obs: np.ndarray,
                terminated: bool) -> None:
        """Store a transition and count it (no training: see ``update``). ``terminated`` is a
        true terminal; pass False on a time-limit truncation."""
        self.replay.add(obs, action, reward, next_obs, terminated)
        self.env_steps += 1
        self.task_env_steps += 1

    def diagnostic_inputs(self, n: int) -> Dict[str, Tuple[torch.Tensor, ...]]:
        """``n`` replay observations for a plasticity measurement, drawn with the agent's own
        diagnostic generator: a measurement never shifts the training batches, so a metrics-only
        monitor at any ``measure_freq`` trains exactly like no monitor."""
        return {self.NET: (self.replay.sample_obs(n, self.device, rng=self.diag_rng),)}

    # --- seams without learning ------------------------------------------------------------
    def on_episode_end(self) -> None:
        """Call after every finished training episode; the stack gets the number of episodes
        finished so far (1, 2, ...), so "every K episodes" fires after episodes K, 2K, ..."""
        self.episodes += 1
        self.stack.on_episode_end(self.episodes)

    def on_task_switch(self, task: int) -> None:
        """Call when the environment's logged phase changed (interventions only log it); the
        task's step count restarts."""
        self.task = int(task)
        self.task_env_steps = 0
        self.stack.on_task_switch(self.task)

    # --- checkpointing -----------------------------------------------------------------------
    def state_dict(self, include_replay: bool = True) -> Dict[str, Any]:
        """Everything needed to resume bit-identically; loadable with ``weights_only=True``."""
        state: Dict[str, Any] = {
            "q": self.q.state_dict(),
            "target": self.target.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "stack": self.stack.state_dict(),
            "generator": self.generator.get_state(),
            "rng": self.rng.bit_generator.state,
            "diag_rng": self.diag_rng.bit_generator.state,
            "counters": {"env_steps": self.env_steps, "task_env_steps": self.task_env_steps,
                         "updates": self.updates, "episodes": self.episodes, "task": self.task},
        }
        if include_replay:
            state["replay"] = self.replay.state_dict()
        return state

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        expected = {"q", "target", "optimizer", "stack", "generator", "rng", "diag_rng", "counters"}
        missing = sorted(expected - set(state))
        if missing:
            raise ValueError(f"DQN checkpoint lacks {missing}; was it written by DQNAgent.state_dict?")
        self.q.load_state_dict(state["q"])
        self.target.load_state_dict(state["target"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.stack.load_state_dict(state["stack"])
        self.generator.set_state(state["generator"])
        self.rng.bit_generator.state = state["rng"]
        self.diag_rng.bit_generator.state = state["diag_rng"]
        counters = state["counters"]
        self.env_steps = int(counters["env_steps"])
        # checkpoints written before the task clock existed: no DQN schedule counted per task
        self.task_env_steps = int(counters.get("task_env_steps", 0))
        self.updates = int(counters["updates"])
        self.episodes = int(counters["episodes"])
        self.task = int(counters["task"])
        if "replay" in state:
            self.replay.load_state_dict(state["replay"])


__all__ = ["DQNConfig", "DQNAgent", "FlatGradients", "NumpyGreedy", "build_q_network",
           "linear_epsilon", "make_adam", "random_streams", "seeded_q_network"]
