"""Seed-batched SAC (Haarnoja et al. 2018): K seeds of one configuration trained in one process.

Member k is the learner :class:`palr.agents.sac.SACAgent` would be with ``seed = seeds[k]``: the
same initial actor and twin critics (:func:`~palr.agents.sac.seeded_networks`), the same
generators (:func:`~palr.agents.sac.sac_seeds`: policy noise in training and evaluation, replay
draws, interventions, diagnostic batches) and the same update: clipped double-Q soft Bellman
backup, critic step, actor step through the just-updated critics, entropy-temperature step (its
own Adam), then the polyak average of the target critics. SAC does not clip gradients.

The K actors are one stacked MLP (:class:`~palr.batched.stacked_mlp.StackedMLP`, or
:class:`~palr.batched.stacked_cw_mlp.StackedCWMLP` for the ``"cw"`` network); the 2K critics another, row
``2k`` member k's first critic and row ``2k + 1`` its second, so both critics of every member
are one ``baddbmm`` per layer; the K entropy temperatures are a ``[K, 1]`` tensor. Each network
family has its own :class:`~palr.batched.member_adam.MemberAdam`, as a separate run has one Adam
per network. Every member's loss is its own batch mean and the members' losses are summed, so
one backward pass gives every member exactly its own gradient.

It keeps the counters and seams of :class:`palr.agents.contract.Agent` with a member axis
(``act``/``random_action`` return ``[K, act_dim]``, ``observe`` takes K transitions), so
:class:`palr.experiments.schedule.TrainingSchedule` drives it unchanged. Interventions run per
member on views of the stacked tensors (:mod:`palr.batched.member_slots`): the actor slot is an
:class:`~palr.agents.sac.Actor`, the critic slot a :class:`~palr.agents.sac.TwinQ`, whose MLPs
alias the member's rows, so layer and group names are a separate run's. The weight interventions
act as on a separate ``SACAgent``: L2Reg's penalty (from the member modules) is added to the
member's critic (and, with ``l2_roles`` naming the policy, actor) loss; Shrink & Perturb rescales
the member's rows in place with noise from its generator; PeriodicReset re-draws its actor and
critics from its generator (actor first), restarts their Adam rows
(:meth:`~palr.batched.member_adam.MemberAdam.restart`), reloads its target critics (the critic
slot's target is a ``TwinQ`` aliasing its rows of the target tensor) and, through the context's
``reset_hook``, its entropy temperature and the temperature's Adam, as
``SACAgent._after_reset`` (Nikishin et al. 2022: the whole agent restarts).

Task-aware members (Continual World's ``cw-paper`` settings, Wolczyk et al. 2021; ``num_tasks``
as ``SACAgent``'s): the task one-hot ends every observation; with ``hide_task_id`` the stacked
networks see the observation without it (:meth:`~palr.agents.sac.TaskInput.trunk`); with
``multi_head`` the stacked output layers hold one head per task and each sample's head is picked
by its one-hot (:meth:`~palr.agents.sac.TaskInput.head` over the member axis); with
``per_task_alpha`` the temperatures are a ``[K, num_tasks]`` tensor with its own
:class:`~palr.batched.member_adam.MemberAdam` (one column per task, as a separate run's
``[num_tasks]`` log-alpha and its Adam), each sample's picked by its one-hot. The task-switch
resets (replay, Adam moments) apply to every member at once, as all members switch together.

Both networks of :class:`~palr.agents.sac.SACConfig` stack: ``"relu"`` as
:class:`~palr.batched.stacked_mlp.StackedMLP`, ``"cw"`` (Linear, LayerNorm, Tanh, then LeakyReLU)
as :class:`~palr.batched.stacked_cw_mlp.StackedCWMLP`, whose rows also hold the LayerNorm's
weight and bias (its own column block and param group, as in a separate run's Adam).
"""
from __future__ import annotations

import math
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from palr.agents.sac import Actor, SACConfig, TaskInput, TwinQ, sac_seeds, seeded_networks, \
    tanh_gaussian
from palr.batched.member_adam import MemberAdam
from palr.batched.member_replay import MemberReplay
from palr.batched.member_slots import (MEMBER_INTERVENTIONS, MemberOptimizerView,
                                      add_member_penalties, adds_penalty, check_member_stack)
from palr.batched.member_state import (adam_state, load_adam_state, load_members_state,
                                       members_state)
from palr.batched.sac_actor_grad import min_grad, tanh_gaussian_grad
from palr.batched.stacked_backward import (Scratch, backward_into, forward_keeping_inputs,
                                           input_grad, squared_error_grad)
from palr.batched.stacked_cw_mlp import StackedCWMLP
from palr.batched.stacked_mlp import StackedMLP
from palr.interventions.base import InterventionStack, NetworkSlot, TrainingContext
from palr.network_roles import ALGO_ROLES

#: interventions checked per member against separate SAC runs (tests/test_batched_sac.py): every
#: one the DQN members run, the measuring ones and the weight interventions
SAC_MEMBER_INTERVENTIONS = MEMBER_INTERVENTIONS

#: the SAC log scalars of one member, in the order :meth:`BatchedSAC.update` computes them
SCALARS = ("critic_loss", "actor_loss", "alpha_loss", "alpha", "q", "entropy")


class BatchedSAC:
    """K SAC members (one per seed) with stacked networks and per-member interventions.

    Args:
        obs_dim, act_dim: as :class:`~palr.agents.sac.SACAgent`'s (actions in [-1, 1]).
        seeds: one seed per member (``K = len(seeds)``; repeated seeds give identical members).
        config: hyper-parameters shared by every member (its ``seed`` is not used;
            ``fused_adam`` does not apply: :class:`~palr.batched.member_adam.MemberAdam` steps).
        stacks: one intervention stack per member (``None``: plain SAC), each with its own
            instances (:func:`~palr.batched.member_slots.check_member_stack`).
        num_tasks: the last ``num_tasks`` entries of every observation are the task one-hot
            (0: none); needed by ``multi_head`` and ``per_task_alpha`` (as ``SACAgent``'s).
    """

    ACTOR, CRITIC = "actor", "critic"

    def __init__(self, obs_dim: int, act_dim: int, seeds: Sequence[int],
                 config: Optional[SACConfig] = None,
                 stacks: Optional[Sequence[InterventionStack]] = None,
                 num_tasks: int = 0) -> None:
        if obs_dim <= 0 or act_dim <= 0:
            raise ValueError(f"obs_dim and act_dim must be positive, got {obs_dim}, {act_dim}")
        self.seeds = [int(s) for s in seeds]
        if not self.seeds:
            raise ValueError("a seed-batched SAC needs at least one seed")
        self.config = cfg = config if config is not None else SACConfig()
        self.task = TaskInput.of(cfg, obs_dim, num_tasks)
        self.num_tasks = self.task.num_tasks
        self.members = k = len(self.seeds)
        self.obs_dim, self.act_dim = int(obs_dim), int(act_dim)
        self.device = torch.device(cfg.device)
        if stacks is None:
            stacks = [InterventionStack() for _ in self.seeds]
        if len(stacks) != k or len({id(s) for s in stacks}) != k:
            raise ValueError(f"give one intervention stack object per member ({k})")
        for stack in stacks:
            check_member_stack(stack, SAC_MEMBER_INTERVENTIONS)
        self.stacks: List[InterventionStack] = list(stacks)
        self.target_entropy = float(-act_dim if cfg.target_entropy is None else cfg.target_entropy)

        member_seeds = [sac_seeds(s) for s in self.seeds]
        nets = [seeded_networks(obs_dim, act_dim, cfg, self.task, s[0]) for s in member_seeds]
        stacked = StackedCWMLP if cfg.network == "cw" else StackedMLP
        self.actor = stacked.from_networks([actor.net.to(self.device) for actor, _ in nets])
        self.critic = stacked.from_networks(
            [q.to(self.device) for _, critic in nets for q in (critic.q1, critic.q2)])
        self.critic_target = self.critic.params.detach().clone()
        # the critic and actor steps' gradients by hand where the networks are plain ReLU MLPs
        # with one head (the cw network's LayerNorm and task heads go through autograd)
        self._hand_written = type(self.critic) is StackedMLP and self.task.heads == 1
        self._critic_operands = self.critic.operands(self.critic.params)  # follow every step
        self._actor_operands = self.actor.operands(self.actor.params)
        # activations and gradients reused from update to update: the critic step's, the actor
        # step's pass through the critics (the critic step's q is still logged) and its actor's
        self._critic_scratch, self._pi_scratch, self._actor_scratch = Scratch(), Scratch(), Scratch()
        self.actor_adam = MemberAdam(self.actor.params, self.actor.grad,
                                     self.actor.layer_columns(), cfg.lr)
        self.critic_adam = MemberAdam(self.critic.params, self.critic.grad,
                                      self.critic.layer_columns(), cfg.lr)
        alphas = self.num_tasks if cfg.per_task_alpha else 1  # per member, as SACAgent's
        self.log_alpha = torch.full((k, alphas), math.log(cfg.init_alpha), device=self.device,
                                    requires_grad=True)
        self.log_alpha.grad = torch.zeros_like(self.log_alpha)
        self.alpha_adam = MemberAdam(self.log_alpha, self.log_alpha.grad, [alphas], cfg.lr)

        # a separate run's generators, per member (see SACAgent.__init__)
        self.generators = [torch.Generator().manual_seed(s[2]) for s in member_seeds]
        self.noise_generators = [torch.Generator(device=self.device).manual_seed(s[1])
                                 for s in member_seeds]
        self.eval_generators = [torch.Generator(device=self.device).manual_seed(s[5])
                                for s in member_seeds]
        self.diag_rngs = [np.random.default_rng(s[4]) for s in member_seeds]
        self.replay = MemberReplay(cfg.buffer_size, self.obs_dim, [s[3] for s in member_seeds],
                                   action_shape=(self.act_dim,), action_dtype=np.float32)

        self.env_steps = 0
        self.task_env_steps = 0
        self.updates = 0
        self.episodes = np.zeros(k, dtype=np.int64)
        self.frozen = np.zeros(k, dtype=bool)
        self._switched: set = set()  # members told of the current task switch (see below)

        self.actor_modules, self.critic_modules = self._member_modules()
        self.target_modules = self._member_modules(self.critic_target)[1]
        self.actor_optimizers = [
            MemberOptimizerView(m, self.actor, self.actor_adam, i, cfg.lr)
            for i, m in enumerate(self.actor_modules)]
        self.critic_optimizers = [
            MemberOptimizerView(m, self.critic, self.critic_adam, i, cfg.lr, rows=(2 * i, 2 * i + 1))
            for i, m in enumerate(self.critic_modules)]
        roles = ALGO_ROLES["SAC"]
        self.contexts = [
            TrainingContext(
                networks={
                    self.ACTOR: NetworkSlot(self.ACTOR, self.actor_modules[i],
                                            self.actor_optimizers[i], roles[self.ACTOR]),
                    self.CRITIC: NetworkSlot(self.CRITIC, self.critic_modules[i],
                                             self.critic_optimizers[i], roles[self.CRITIC],
                                             targets=[self.target_modules[i]])},
                generator=self.generators[i],
                diagnostic_inputs=lambda n, i=i: self.diagnostic_inputs(i, n),
                reset_hook=lambda names, i=i: self._after_reset(i, names))
            for i in range(k)]
        for stack, ctx in zip(self.stacks, self.contexts):
            stack.on_optimizer_created(ctx)
        self._active = [i for i, stack in enumerate(self.stacks) if stack.interventions]
        self._penalised = [i for i in self._active if adds_penalty(self.stacks[i])]

    def _member_modules(self, critic_params: Optional[torch.Tensor] = None
                        ) -> Tuple[List[Actor], List[TwinQ]]:
        """Each member's actor and twin critics as the modules a separate run has, their MLPs
        aliasing the member's rows (built on the meta device, then the MLPs swapped in);
        ``critic_params``: the critics alias that ``[2K, P]`` tensor's rows instead (the target
        critics', without gradients)."""
        cfg = self.config
        actors: List[Actor] = []
        critics: List[TwinQ] = []
        for i in range(self.members):
            with torch.device("meta"):
                actor = Actor(self.obs_dim, self.act_dim, cfg.hidden_sizes, cfg.network,
                              cfg.leaky_slope, cfg.log_std_min, cfg.log_std_max, self.task)
                critic = TwinQ(self.obs_dim, self.act_dim, cfg.hidden_sizes, cfg.network,
                               cfg.leaky_slope, self.task)
            actor.net = self.actor.member_module(i)
            critic.q1 = self.critic.member_module(2 * i, critic_params)
            critic.q2 = self.critic.member_module(2 * i + 1, critic_params)
            actors.append(actor)
            critics.append(critic)
        return actors, critics

    # --- the networks over the member axis ---------------------------------------------------
    def policy(self, obs: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """``obs [K, B, obs_dim]`` -> every member's mean and clamped log-std ``[K, B, act_dim]``
        (:class:`~palr.agents.sac.Actor`'s forward: each sample's task head)."""
        mean, log_std = self.task.head(self.actor(self.task.trunk(obs)), obs).chunk(2, dim=-1)
        cfg = self.config
        return mean, log_std.clamp(cfg.log_std_min, cfg.log_std_max)

    def twin_q(self, obs: torch.Tensor, act: torch.Tensor,
               params: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Both critics of every member, ``[K, 2, B]`` (``params``: the target critics'; each
        sample's task head)."""
        q = self.task.head(self.critic(self._critic_input(obs, act), params),
                           obs.repeat_interleave(2, dim=0))
        return q.view(self.members, 2, -1)

    def _critic_input(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """``[2K, B, in]``: member k's batch (observation trunk and action) for its critic rows
        2k and 2k + 1."""
        return torch.cat([self.task.trunk(obs), act], dim=-1).repeat_interleave(2, dim=0)

    def _log_alpha(self, obs: torch.Tensor) -> torch.Tensor:
        """Every member's log alpha for a batch ``obs [K, B, obs_dim]``: its one temperature
        ``[K, 1]``, or each sample's task's ``[K, B]`` (``SACAgent._log_alpha``)."""
        if not self.config.per_task_alpha:
            return self.log_alpha
        return torch.bmm(obs[..., -self.num_tasks:], self.log_alpha.unsqueeze(-1)).squeeze(-1)

    def _noise(self, generators: Sequence[torch.Generator], batch: int) -> torch.Tensor:
        """``[K, batch, act_dim]`` standard normal noise, member k's from ``generators[k]``
        (the draws of a separate run's ``torch.randn((batch, act_dim))``)."""
        return torch.stack([torch.randn((batch, self.act_dim), generator=g, device=self.device)
                            for g in generators])

    def _sample(self, obs: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = self.policy(obs)
        return tanh_gaussian(mean, log_std, self._noise(self.noise_generators, obs.shape[1]))

    # --- the update ----------------------------------------------------------------------------
    def update(self, batch: Optional[Dict[str, torch.Tensor]] = None) -> Dict[str, float]:
        """One gradient update of every member's critics, actor and temperature, then the target
        critics, with every member's seams called.

        Args:
            batch: ``[K, B, ...]`` tensors (:meth:`MemberReplay.sample`); ``None`` samples
                ``batch_size`` per member.

        Returns:
            ``{}``, except every ``log_every`` updates: ``member<k>/sac/...`` and each member's
            intervention log under ``member<k>/``.

        Raises:
            FloatingPointError: at a logging update where a member's values are not finite.
        """
        cfg = self.config
        if batch is None:
            batch = self.replay.sample(cfg.batch_size, self.device)
        obs, act = batch["obs"], batch["actions"]
        rew, next_obs, term = batch["rewards"], batch["next_obs"], batch["terminated"]
        log_alpha = self._log_alpha(obs)  # [K, 1], or [K, B] per task
        alpha = log_alpha.detach().exp()

        # critics: soft Bellman backup with clipped double Q (Fujimoto et al. 2018)
        with torch.no_grad():
            next_act, next_logp = self._sample(next_obs)
            target_q = self.twin_q(next_obs, next_act, self.critic_target).amin(dim=1)
            target = rew + cfg.gamma * (1.0 - term) * (target_q - alpha * next_logp)
        if self._hand_written:  # gradients by hand (palr.batched.stacked_backward),
            q_out, inputs = forward_keeping_inputs(  # written straight into critic.grad
                self.critic, self._critic_input(obs, act), self._critic_operands,
                self._critic_scratch)
            q = q_out.view(self.members, 2, -1)
        else:
            q = self.twin_q(obs, act)
        critic_losses = (q - target.unsqueeze(1)).pow(2).mean(dim=2).sum(dim=1)
        if self._hand_written:
            backward_into(self.critic, self.critic.params, inputs,
                          squared_error_grad(q, target.unsqueeze(1)).view_as(q_out),
                          self.critic.grad, self._critic_scratch)
        else:
            self.critic.grad.zero_()
        losses = add_member_penalties(critic_losses, self.stacks, self._penalised, self.CRITIC)
        if losses.requires_grad:  # autograd: the whole loss, or (by hand) L2Reg's penalties
            self._backward(losses.sum())
        self._step(self.CRITIC, self.critic_adam, self.critic_optimizers)

        # actor: maximise min Q - alpha log pi; gradients only into the actors' parameters
        # (the stacked leaves, and the member modules' leaves a penalty is built from)
        if self._hand_written:  # by hand (palr.batched.sac_actor_grad), into actor.grad
            actor_losses, logp = self._hand_written_actor_grad(obs, alpha)
            penalised = add_member_penalties(actor_losses, self.stacks, self._penalised,
                                             self.ACTOR)
            if penalised.requires_grad:  # L2Reg's penalties, added by autograd
                self._backward(penalised.sum())
        else:
            pi, logp = self._sample(obs)
            actor_losses = (alpha * logp - self.twin_q(obs, pi).amin(dim=1)).mean(dim=1)
            self.actor.grad.zero_()
            penalised = add_member_penalties(actor_losses, self.stacks, self._penalised,
                                             self.ACTOR)
            inputs = self.actor.leaves()
            if penalised is not actor_losses:
                inputs = inputs + [p for i in self._penalised
                                   for p in self.actor_modules[i].parameters()]
            self._backward(penalised.sum(), inputs)
        self._step(self.ACTOR, self.actor_adam, self.actor_optimizers)

        # temperature (Haarnoja et al. 2018b, eq. 18; the log-alpha form, as SACAgent)
        logp_d = logp.detach()
        alpha_losses = -(log_alpha * (logp_d + self.target_entropy)).mean(dim=1)
        self.log_alpha.grad.zero_()
        alpha_losses.sum().backward()
        self.alpha_adam.step()

        with torch.no_grad():
            self.critic_target.lerp_(self.critic.params, 1.0 - cfg.polyak)
        self.updates += 1
        for i in self._active:
            self.stacks[i].after_update(self.updates)
        if self.updates % cfg.log_every != 0:
            return {}
        return self._log(critic_losses, actor_losses, alpha_losses, alpha, q, logp_d)

    @torch.no_grad()
    def _hand_written_actor_grad(self, obs: torch.Tensor, alpha: torch.Tensor
                                 ) -> Tuple[torch.Tensor, torch.Tensor]:
        """The actor step's forward and gradient without autograd (plain ReLU networks, one
        head): every member's ``dL/dtheta`` of ``L = mean_b(alpha logp - min(Q1, Q2)(obs, pi))``
        written into ``actor.grad``, through the tanh-Gaussian sample and the just-updated
        critics' input gradient (no critic gradient). Returns the actor losses ``[K]`` and the
        log-probabilities ``[K, B]``, as the autograd path computes them."""
        cfg = self.config
        batch = obs.shape[1]
        out, actor_inputs = forward_keeping_inputs(
            self.actor, self.task.trunk(obs), self._actor_operands, self._actor_scratch)
        mean, raw_log_std = out.chunk(2, dim=-1)
        noise = self._noise(self.noise_generators, batch)
        pi, logp = tanh_gaussian(mean, raw_log_std.clamp(cfg.log_std_min, cfg.log_std_max),
                                 noise)
        q_out, critic_inputs = forward_keeping_inputs(
            self.critic, self._critic_input(obs, pi), self._critic_operands, self._pi_scratch)
        q = q_out.view(self.members, 2, batch)
        actor_losses = (alpha * logp - q.amin(dim=1)).mean(dim=1)
        grad_pi = input_grad(self.critic, self.critic.params, critic_inputs,
                             min_grad(q, -1.0 / batch).view_as(q_out),
                             slice(self.critic.sizes[0] - self.act_dim, None), self._pi_scratch)
        grad_out = tanh_gaussian_grad(raw_log_std, noise, pi, grad_pi.view(
            self.members, 2, batch, self.act_dim).sum(dim=1), alpha / batch,
            cfg.log_std_min, cfg.log_std_max)
        backward_into(self.actor, self.actor.params, actor_inputs, grad_out, self.actor.grad,
                      self._actor_scratch)
        return actor_losses, logp

    @staticmethod
    def _backward(loss: torch.Tensor, inputs: Optional[List[torch.Tensor]] = None) -> None:
        with warnings.catch_warnings():  # the grads are views of the stacked gradient, on purpose
            warnings.filterwarnings("ignore", "grad and param do not obey the gradient layout")
            loss.backward(inputs=inputs)

    def _step(self, net: str, adam: MemberAdam, optimizers: Sequence[MemberOptimizerView]
              ) -> None:
        """Adam step of network family ``net``, every active member's seams around it (the
        learning rates they set read into ``adam.lr`` before the step and after)."""
        for i in self._active:
            self.stacks[i].before_step(net)
            optimizers[i].write_lrs()
        adam.step()
        for i in self._active:
            self.stacks[i].after_step(net)
            optimizers[i].write_lrs()

    def _log(self, critic_losses: torch.Tensor, actor_losses: torch.Tensor,
             alpha_losses: torch.Tensor, alpha: torch.Tensor, q: torch.Tensor,
             logp: torch.Tensor) -> Dict[str, float]:
        table = torch.stack([critic_losses.detach(), actor_losses.detach(), alpha_losses.detach(),
                             alpha.mean(dim=1), q[:, 0].detach().mean(dim=1), -logp.mean(dim=1)],
                            dim=1).tolist()
        log: Dict[str, float] = {"sac/updates": float(self.updates)}
        for i, values in enumerate(table):
            bad = [name for name, v in zip(SCALARS, values) if not math.isfinite(v)]
            if bad and not self.frozen[i]:
                raise FloatingPointError(
                    f"non-finite SAC values {bad} for member {i} (seed {self.seeds[i]}) at "
                    f"update {self.updates}")
            log.update({f"member{i}/sac/{name}": v for name, v in zip(SCALARS, values)})
            log.update({f"member{i}/{key}": v for key, v in self.stacks[i].log.items()})
        return log

    def can_update(self) -> bool:
        """Whether the replay holds a transition (batches are drawn with replacement)."""
        return self.replay.size > 0

    # --- acting ------------------------------------------------------------------------------
    @torch.no_grad()
    def act(self, obs: np.ndarray, explore: bool = True, evaluation: bool = False) -> np.ndarray:
        """Every member's action for ``obs[k]`` (``[K, obs_dim]`` -> ``[K, act_dim]`` float32):
        a policy sample (``explore``; noise from the member's training generator, or its
        evaluation generator with ``evaluation``) or ``tanh(mean)``, as ``SACAgent.act``."""
        o = torch.as_tensor(np.asarray(obs, dtype=np.float32), device=self.device)
        mean, log_std = self.policy(o.reshape(self.members, 1, self.obs_dim))
        if not explore:
            action = torch.tanh(mean)
        else:
            generators = self.eval_generators if evaluation else self.noise_generators
            action, _ = tanh_gaussian(mean, log_std, self._noise(generators, 1))
        return action[:, 0].cpu().numpy()

    @torch.no_grad()
    def member_act(self, member: int, obs: np.ndarray, explore: bool = True,
                   evaluation: bool = False) -> np.ndarray:
        """Member ``member``'s action for one observation ``(obs_dim,)``, as its separate
        ``SACAgent.act`` (its actor module and generators; the other members' are untouched)."""
        o = torch.as_tensor(np.asarray(obs, dtype=np.float32), device=self.device)
        mean, log_std = self.actor_modules[member](o.reshape(1, self.obs_dim))
        if not explore:
            action = torch.tanh(mean)
        else:
            generator = (self.eval_generators if evaluation else self.noise_generators)[member]
            noise = torch.randn(mean.shape, generator=generator, device=self.device)
            action, _ = tanh_gaussian(mean, log_std, noise)
        return action[0].cpu().numpy()

    def random_action(self) -> np.ndarray:
        """A uniform action in [-1, 1]^act_dim per member, from its training noise generator."""
        return np.stack([
            (torch.rand(self.act_dim, generator=g, device=self.device) * 2.0 - 1.0).cpu().numpy()
            for g in self.noise_generators])

    def observe(self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray,
                next_obs: np.ndarray, terminated: np.ndarray) -> None:
        """Store one transition per member and count the step (no training: see ``update``)."""
        self.replay.add(obs, actions, rewards, next_obs, terminated)
        self.env_steps += 1
        self.task_env_steps += 1

    def diagnostic_inputs(self, member: int, n: int) -> Dict[str, Tuple[torch.Tensor, ...]]:
        """``n`` of member ``member``'s replay transitions drawn with its diagnostic generator:
        ``{"actor": (obs,), "critic": (obs, act)}``, as ``SACAgent.diagnostic_inputs``."""
        obs, act = self.replay.sample_obs_actions(member, int(n), self.diag_rngs[member],
                                                  self.device)
        return {self.ACTOR: (obs,), self.CRITIC: (obs, act)}

    # --- seams without learning ------------------------------------------------------------
    def on_episode_end(self, member: int) -> None:
        """Call after every finished training episode of member ``member``."""
        self.episodes[member] += 1
        self.stacks[member].on_episode_end(int(self.episodes[member]))

    def freeze(self, member: int) -> None:
        """Member ``member``'s run is over: its learning rates become 0 (Adam leaves its
        parameters as they are), its interventions are no longer called and its log values are
        no longer checked. The members are independent, so the others are untouched."""
        self.frozen[member] = True
        self._active = [k for k in self._active if k != member]
        self._penalised = [k for k in self._penalised if k != member]
        with torch.no_grad():
            self.actor_adam.lr[member] = 0.0
            self.critic_adam.lr[2 * member:2 * member + 2] = 0.0
            self.alpha_adam.lr[member] = 0.0

    def on_member_task_switch(self, member: int, task: int) -> None:
        """Member ``member``'s environment switched to ``task``: its stack is told; once every
        running member has been (they switch at the same env step), the shared resets of
        :meth:`on_task_switch` follow, as in a separate run after its stack."""
        self.stacks[member].on_task_switch(int(task))
        self._switched.add(member)
        if self._switched >= set(np.flatnonzero(~self.frozen).tolist()):
            self._switched.clear()
            self._task_resets()

    def on_task_switch(self, task: int) -> None:
        """Call when the members' environments switched task (all together): the stacks are
        told, then the config's resets (empty replay, zeroed Adam moments, step counts kept)."""
        for stack in self.stacks:
            stack.on_task_switch(int(task))
        self._task_resets()

    @torch.no_grad()
    def _task_resets(self) -> None:
        self.task_env_steps = 0
        if self.config.reset_replay_on_task:
            self.replay.clear()
        if self.config.reset_optimizer_on_task:
            for adam in (self.actor_adam, self.critic_adam, self.alpha_adam):
                adam.exp_avg.zero_()
                adam.exp_avg_sq.zero_()

    @torch.no_grad()
    def _after_reset(self, member: int, names: Sequence[str]) -> None:
        """Member ``member``'s networks ``names`` were reset (PeriodicReset; its target critics
        are reloaded through the critic slot's target): with the actor, restart its entropy
        temperature and the temperature's Adam, as ``SACAgent._after_reset``."""
        if self.ACTOR in names:
            self.log_alpha[member] = math.log(self.config.init_alpha)
            self.alpha_adam.restart(member)

    # --- checkpointing -------------------------------------------------------------------------
    def _adams(self) -> Dict[str, MemberAdam]:
        return {"actor": self.actor_adam, "critic": self.critic_adam, "alpha": self.alpha_adam}

    def state_dict(self) -> Dict[str, Any]:
        """Everything needed to resume every member bit-identically (plain tensors, arrays and
        generator states)."""
        return {
            **members_state(self), "actor": self.actor.params.detach().clone(),
            "critic": self.critic.params.detach().clone(),
            "critic_target": self.critic_target.clone(),
            "log_alpha": self.log_alpha.detach().clone(),
            "adams": {name: adam_state(adam) for name, adam in self._adams().items()},
            "replay": self.replay.state_dict(),
            "generators": {name: [g.get_state() for g in gens] for name, gens in (
                ("interventions", self.generators), ("noise", self.noise_generators),
                ("eval", self.eval_generators))},
            "optimizer_lrs": [[[g["lr"] for g in opt.param_groups] for opt in opts]
                              for opts in (self.actor_optimizers, self.critic_optimizers)],
        }

    @torch.no_grad()
    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output; the seeds must be the same."""
        load_members_state(self, state)
        self.actor.params.copy_(state["actor"])
        self.critic.params.copy_(state["critic"])
        self.critic_target.copy_(state["critic_target"])
        self.log_alpha.copy_(state["log_alpha"])
        for name, adam in self._adams().items():
            load_adam_state(adam, state["adams"][name])
        self.replay.load_state_dict(state["replay"])
        gens = state["generators"]
        for mine, name in ((self.generators, "interventions"), (self.noise_generators, "noise"),
                           (self.eval_generators, "eval")):
            for g, st in zip(mine, gens[name]):
                g.set_state(st)
        for opts, saved in zip((self.actor_optimizers, self.critic_optimizers),
                               state["optimizer_lrs"]):
            for opt, lrs in zip(opts, saved):
                for group, lr in zip(opt.param_groups, lrs):
                    group["lr"] = float(lr)


__all__ = ["BatchedSAC", "SCALARS"]
