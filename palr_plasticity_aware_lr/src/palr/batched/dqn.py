"""Seed-batched DQN (Mnih et al. 2015): K seeds of one configuration trained in one process.

Member k is the learner :class:`palr.agents.dqn.DQNAgent` would be with ``seed = seeds[k]``:
the same initial Q-network (:func:`~palr.agents.dqn.seeded_q_network`), replay draws, epsilon-
greedy draws and intervention generator (:func:`~palr.agents.dqn.random_streams`), and the same
update: Huber TD loss (Double DQN optional), gradient-norm clipping at ``max_grad_norm`` PER
MEMBER, Adam, a hard target copy every ``target_update_every`` updates. The K Q-networks are one
:class:`~palr.batched.stacked_mlp.StackedMLP`; the loss of member k is its own batch mean, and the
members' losses are summed, so one backward pass gives every member exactly its own gradient.
That backward pass is written by hand (:mod:`palr.batched.stacked_backward`: straight into the
``[K, P]`` gradient buffer, no autograd graph); only an L2Reg penalty goes through autograd.

It keeps the counters and methods of :class:`palr.agents.contract.Agent` with a member axis
(``act``/``random_action`` return K actions, ``observe`` takes K transitions), so
:class:`palr.experiments.schedule.TrainingSchedule` drives it unchanged: all members step
together, so ``env_steps``, ``task_env_steps`` and ``updates`` are shared; ``episodes`` is per
member. Interventions run per member, one :class:`~palr.interventions.base.InterventionStack`
each, on views of the stacked tensors (:mod:`palr.batched.member_slots`).
"""
from __future__ import annotations

import math
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from palr.agents.dqn import DQNConfig, linear_epsilon, random_streams, seeded_q_network
from palr.batched.member_adam import MemberAdam
from palr.batched.member_measure import MemberMeasurer
from palr.batched.member_replay import MemberReplay
from palr.batched.member_slots import (MemberOptimizerView, add_member_penalties, adds_penalty,
                                      check_member_stack)
from palr.batched.member_state import (adam_state, load_adam_state, load_members_state,
                                       members_state)
from palr.batched.stacked_backward import (Operands, Scratch, backward_into,
                                           forward_keeping_inputs, huber_td_grad)
from palr.batched.stacked_mlp import StackedMLP
from palr.interventions.base import InterventionStack, NetworkSlot, TrainingContext
from palr.network_roles import ALGO_ROLES


class BatchedDQN:
    """K DQN members (one per seed) with stacked networks and per-member interventions.

    Args:
        obs_dim, n_actions: as :class:`~palr.agents.dqn.DQNAgent`'s.
        seeds: one seed per member (``K = len(seeds)``; repeated seeds give identical members).
        config: hyper-parameters shared by every member (its ``seed`` is not used;
            ``fused_adam`` does not apply: :class:`~palr.batched.member_adam.MemberAdam` steps).
        stacks: one intervention stack per member (``None``: plain DQN), each with its own
            instances (:func:`~palr.batched.member_slots.check_member_stack`).
    """

    NET = "q"

    def __init__(self, obs_dim: int, n_actions: int, seeds: Sequence[int],
                 config: Optional[DQNConfig] = None,
                 stacks: Optional[Sequence[InterventionStack]] = None) -> None:
        if obs_dim <= 0 or n_actions <= 1:
            raise ValueError(f"DQN needs obs_dim >= 1 and n_actions >= 2, got {obs_dim}, {n_actions}")
        self.seeds = [int(s) for s in seeds]
        if not self.seeds:
            raise ValueError("a seed-batched DQN needs at least one seed")
        self.config = config or DQNConfig()
        cfg = self.config
        self.members = len(self.seeds)
        self.obs_dim, self.n_actions = int(obs_dim), int(n_actions)
        self.device = torch.device(cfg.device)
        if stacks is None:
            stacks = [InterventionStack() for _ in self.seeds]
        if len(stacks) != self.members or len({id(s) for s in stacks}) != self.members:
            raise ValueError(f"give one intervention stack object per member ({self.members})")
        for stack in stacks:
            check_member_stack(stack)
        self.stacks: List[InterventionStack] = list(stacks)

        self.q = StackedMLP.from_networks(
            [seeded_q_network(self.obs_dim, self.n_actions, cfg.hidden_sizes, s).to(self.device)
             for s in self.seeds])
        self.target = self.q.params.clone()
        self._target_operands = self.q.operands(self.target)  # views: follow every copy_
        self._online_operands = self.q.operands(self.q.params)  # and every optimizer step
        self._scratch, self._target_scratch = Scratch(), Scratch()  # reused activations
        self.adam = MemberAdam(self.q.params, self.q.grad, self.q.layer_columns(),
                               cfg.learning_rate, eps=cfg.adam_eps)
        self.replay = MemberReplay(cfg.buffer_size, self.obs_dim, self.seeds)
        streams = [random_streams(s) for s in self.seeds]
        self.rngs = [rng for rng, _, _ in streams]              # epsilon-greedy draws
        self.generators = [gen for _, gen, _ in streams]        # interventions (CPU)
        self.diag_rngs = [diag for _, _, diag in streams]       # diagnostic batches only

        self.env_steps = 0
        self.task_env_steps = 0
        self.updates = 0
        self.episodes = np.zeros(self.members, dtype=np.int64)
        self.task = 0

        self.member_modules = [self.q.member_module(k) for k in range(self.members)]
        self.measurer = MemberMeasurer(self)  # every member's measurements at once
        self.optimizers = [MemberOptimizerView(module, self.q, self.adam, k, cfg.learning_rate)
                           for k, module in enumerate(self.member_modules)]
        self.contexts = [
            TrainingContext(
                networks={self.NET: NetworkSlot(self.NET, self.member_modules[k], self.optimizers[k],
                                                ALGO_ROLES["DQN"][self.NET],
                                                targets=[self.q.member_module(k, self.target)])},
                generator=self.generators[k],
                diagnostic_inputs=lambda n, k=k: self.diagnostic_inputs(k, n),
                measure=self.measurer.for_member(k))
            for k in range(self.members)]
        for stack, ctx in zip(self.stacks, self.contexts):
            stack.on_optimizer_created(ctx)
        self.frozen = np.zeros(self.members, dtype=bool)
        #: once a member is frozen: the training members' indices and their gradient rows
        #: (zero padding columns), the tensors :meth:`td_loss_and_grad` computes with
        self._training_rows: Optional[torch.Tensor] = None
        self._training_grad = torch.zeros(0)
        self._active = [k for k, stack in enumerate(self.stacks) if stack.interventions]
        self._penalised = [k for k in self._active if adds_penalty(self.stacks[k])]

    @property
    def intervening(self) -> List[int]:
        """The members whose interventions are called, in the order they are called: not
        frozen, with a non-empty stack."""
        return self._active

    # --- the loss and the update -------------------------------------------------------------
    @torch.no_grad()
    def td_loss_and_grad(self, batch: Dict[str, torch.Tensor]
                         ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Every member's Huber TD loss ``[K]`` (its own batch mean) and predicted Q ``[K, B]``;
        the losses' gradient is written into ``self.q.grad`` (every training member's row
        overwritten) by the hand-written backward of :mod:`palr.batched.stacked_backward` (no
        autograd graph). ``batch`` holds ``[K, B, ...]`` tensors (:meth:`MemberReplay.sample`).

        Frozen members (:meth:`freeze`) are left out: once one is, the training members' rows
        of the parameters, target and batch are gathered into tensors of their own and the
        passes run on those, so a finished member no longer costs its share of the matrix
        products (its loss and Q values read 0, its gradient row is not written)."""
        if self._training_rows is None:
            return self._rows_loss_and_grad(batch, self._online_operands,
                                            self._target_operands, self.q.params, self.q.grad)
        rows = self._training_rows
        if not len(rows):  # every member frozen: nothing to compute
            return self.q.grad.new_zeros(self.members), self.q.grad.new_zeros(
                (self.members, batch["obs"].shape[1]))
        params = self.q.params.index_select(0, rows)
        grad = self._training_grad
        losses, q_pred = self._rows_loss_and_grad(
            {name: value.index_select(0, rows) for name, value in batch.items()},
            self.q.operands(params), self.q.operands(self.target.index_select(0, rows)),
            params, grad)
        self.q.grad.index_copy_(0, rows, grad)
        all_losses = losses.new_zeros(self.members).index_copy_(0, rows, losses)
        all_q = q_pred.new_zeros((self.members, q_pred.shape[1])).index_copy_(0, rows, q_pred)
        return all_losses, all_q

    def _rows_loss_and_grad(self, batch: Dict[str, torch.Tensor], online: Operands,
                            target: Operands, params: torch.Tensor, grad: torch.Tensor
                            ) -> Tuple[torch.Tensor, torch.Tensor]:
        """:meth:`td_loss_and_grad` of the rows ``params`` holds (every member's, or the
        training members' gathered), with their ``online`` and ``target`` operands
        (:meth:`StackedMLP.operands`) and ``batch``; the gradient goes into ``grad``."""
        cfg = self.config
        next_target, _ = forward_keeping_inputs(self.q, batch["next_obs"], target,
                                                self._target_scratch)
        if cfg.double_dqn:
            next_actions = self.q(batch["next_obs"], operands=online).argmax(dim=2, keepdim=True)
            next_value = next_target.gather(2, next_actions).squeeze(2)
        else:
            next_value = next_target.amax(dim=2)
        td_target = torch.addcmul(batch["rewards"], 1.0 - batch["terminated"], next_value,
                                  value=cfg.gamma)
        q, inputs = forward_keeping_inputs(self.q, batch["obs"], online, self._scratch)
        actions = batch["actions"]
        q_pred = q.gather(2, actions.unsqueeze(2)).squeeze(2)
        losses = F.smooth_l1_loss(q_pred, td_target, beta=cfg.huber_delta, reduction="none")
        grad_q = huber_td_grad(q, actions, q_pred, td_target, cfg.huber_delta)
        backward_into(self.q, params, inputs, grad_q, grad, self._scratch)
        return losses.mean(dim=1), q_pred

    def update(self, batch: Optional[Dict[str, torch.Tensor]] = None
               ) -> Optional[Dict[str, float]]:
        """One gradient update of every member, with every member's seams called.

        Returns the log dict every ``log_every`` updates (``member<k>/dqn/...`` and each
        member's intervention log under ``member<k>/``), else ``None``.

        Raises:
            FloatingPointError: if a member's loss is NaN/Inf (no weights are touched).
        """
        cfg = self.config
        if batch is None:
            batch = self.replay.sample(cfg.batch_size, self.device)
        td_losses, q_pred = self.td_loss_and_grad(batch)  # the TD gradient already in q.grad
        losses = add_member_penalties(td_losses, self.stacks, self._penalised, self.NET)
        step = self.updates + 1
        values = losses.tolist()  # one host read per update: the finiteness check
        bad = [k for k, v in enumerate(values) if not math.isfinite(v) and not self.frozen[k]]
        if bad:
            raise FloatingPointError(
                f"DQN loss is {values[bad[0]]} for member {bad[0]} (seed {self.seeds[bad[0]]}) at "
                f"update {step} (env step {self.env_steps}); lower the learning rate or check "
                "the rewards")
        grad = self.q.grad
        if losses.requires_grad:  # L2Reg: autograd adds its penalty's gradient to the rows
            with warnings.catch_warnings():  # (views, on purpose)
                warnings.filterwarnings("ignore", "grad and param do not obey the gradient "
                                        "layout")
                losses.sum().backward()
        if self.frozen.any():  # a frozen member's row gets no gradient (and lr 0: see freeze)
            grad[torch.as_tensor(self.frozen, device=grad.device)] = 0.0
        if cfg.max_grad_norm is not None:  # clip_grad_norm_ of each member's own parameters
            norms = torch.linalg.vector_norm(grad, dim=1, keepdim=True)
            grad.mul_((cfg.max_grad_norm / (norms + 1e-6)).clamp_(max=1.0))
        for k in self._active:
            self.stacks[k].before_step(self.NET)
            self.optimizers[k].write_lrs()
        self.adam.step()
        for k in self._active:
            self.stacks[k].after_step(self.NET)
            self.optimizers[k].write_lrs()
        self.updates = step
        if step % cfg.target_update_every == 0:
            self.sync_target()
        self.measurer.begin_update()
        try:
            for k in self._active:
                self.stacks[k].after_update(step)
        finally:
            self.measurer.end_update()
        if step % cfg.log_every == 0:
            return self._log(values, td_losses, q_pred, step)
        return None

    def _log(self, losses: List[float], td_losses: torch.Tensor, q_pred: torch.Tensor,
             step: int) -> Dict[str, float]:
        q_mean = q_pred.detach().mean(dim=1).tolist()
        td = td_losses.detach().tolist()
        log: Dict[str, float] = {"dqn/epsilon": self.epsilon, "dqn/updates": float(step)}
        for k in range(self.members):
            log[f"member{k}/dqn/loss"] = losses[k]
            log[f"member{k}/dqn/td_loss"] = td[k]
            log[f"member{k}/dqn/q_mean"] = q_mean[k]
            for key, value in self.stacks[k].log.items():
                log[f"member{k}/{key}"] = value
        return log

    @torch.no_grad()
    def sync_target(self) -> None:
        """Hard update of every member: target <- online."""
        self.target.copy_(self.q.params)

    def can_update(self) -> bool:
        """Whether the replay holds a full batch."""
        return self.replay.size >= self.config.batch_size

    # --- acting ------------------------------------------------------------------------------
    @property
    def epsilon(self) -> float:
        """Exploration rate at the current environment step (the same for every member)."""
        cfg = self.config
        return linear_epsilon(self.env_steps, cfg.start_epsilon, cfg.end_epsilon,
                              cfg.exploration_steps)

    def act(self, obs: np.ndarray, explore: bool = True) -> np.ndarray:
        """Every member's epsilon-greedy (``explore``) or greedy action for ``obs[k]``; each
        member draws from its own generator exactly as a separate DQNAgent would."""
        actions = self.q.greedy_actions(obs)
        if explore:
            epsilon = self.epsilon
            for k, rng in enumerate(self.rngs):
                if rng.random() < epsilon:
                    actions[k] = rng.integers(self.n_actions)
        return actions

    def random_action(self) -> np.ndarray:
        """A uniform random action per member, from each member's epsilon generator."""
        return np.array([rng.integers(self.n_actions) for rng in self.rngs], dtype=np.int64)

    def observe(self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray,
                next_obs: np.ndarray, terminated: np.ndarray) -> None:
        """Store one transition per member and count the step (no training: see ``update``);
        ``terminated`` marks true terminals, never time-limit truncations."""
        self.replay.add(obs, actions, rewards, next_obs, terminated)
        self.env_steps += 1
        self.task_env_steps += 1

    def diagnostic_inputs(self, member: int, n: int) -> Dict[str, Tuple[torch.Tensor, ...]]:
        """``n`` of member ``member``'s replay observations, drawn with its diagnostic generator
        (measuring never shifts its training batches)."""
        return {self.NET: (self.replay.sample_obs(member, n, self.diag_rngs[member],
                                                  self.device),)}

    def freeze(self, member: int) -> None:
        """Stop training member ``member`` (its run is over): from now on its gradient row is
        zero, its learning rates are 0 (Adam leaves its parameters exactly as they are), its
        interventions are no longer called and :meth:`td_loss_and_grad` leaves it out of the
        passes. The other members are untouched, so each stays equal to its separate run however
        long it trains on."""
        self.frozen[member] = True
        training = np.flatnonzero(~self.frozen)
        self._training_rows = torch.as_tensor(training, device=self.device)
        self._training_grad = self.q.grad.new_zeros((len(training), self.q.row_length))
        self._active = [k for k in self._active if k != member]
        self._penalised = [k for k in self._penalised if k != member]
        with torch.no_grad():
            self.adam.lr[member] = 0.0

    # --- seams without learning ------------------------------------------------------------
    def on_episode_end(self, member: int) -> None:
        """Call after every finished training episode of member ``member``."""
        self.episodes[member] += 1
        self.stacks[member].on_episode_end(int(self.episodes[member]))

    def on_member_task_switch(self, member: int, task: int) -> None:
        """Call when member ``member``'s environment switched phase (phases counted in episodes
        switch at a different env step per member); only its interventions are told. The shared
        ``task_env_steps`` is not restarted, so per-task schedules are not supported here."""
        self.stacks[member].on_task_switch(int(task))

    def on_task_switch(self, task: int) -> None:
        """Call when the members' environments switched phase (all members switch together)."""
        self.task = int(task)
        self.task_env_steps = 0
        for stack in self.stacks:
            stack.on_task_switch(self.task)

    # --- checkpointing -------------------------------------------------------------------------
    def state_dict(self) -> Dict[str, Any]:
        """Everything needed to resume every member bit-identically (plain tensors, arrays and
        generator states)."""
        state = members_state(self)
        state["counters"].update(task=self.task, frozen=self.frozen.tolist())
        return {
            **state, "params": self.q.params.detach().clone(),
            "target": self.target.clone(),
            "adam": adam_state(self.adam),
            "replay": self.replay.state_dict(),
            "rngs": [rng.bit_generator.state for rng in self.rngs],
            "generators": [gen.get_state() for gen in self.generators],
            "optimizer_lrs": [[g["lr"] for g in opt.param_groups] for opt in self.optimizers],
        }

    @torch.no_grad()
    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output; the seeds must be the same."""
        load_members_state(self, state)
        self.q.params.copy_(state["params"])
        self.target.copy_(state["target"])
        load_adam_state(self.adam, state["adam"])
        self.replay.load_state_dict(state["replay"])
        for rng, st in zip(self.rngs, state["rngs"]):
            rng.bit_generator.state = st
        for gen, st in zip(self.generators, state["generators"]):
            gen.set_state(st)
        for opt, lrs in zip(self.optimizers, state["optimizer_lrs"]):
            for group, lr in zip(opt.param_groups, lrs):
                group["lr"] = float(lr)
        counters = state["counters"]
        self.task = int(counters["task"])
        for k, frozen in enumerate(counters["frozen"]):
            if frozen:
                self.freeze(k)


__all__ = ["BatchedDQN"]
