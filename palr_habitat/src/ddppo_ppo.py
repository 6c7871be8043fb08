"""Clipped PPO update (Schulman et al. 2017) over a rank's rollout, calling the intervention stack
at its seams (habitat-baselines' PPO ``before_backward``/``after_step`` pattern).

One gradient step per minibatch::

    loss = -min(r A, clip(r, 1-eps, 1+eps) A) + c_v * value_loss - c_e * entropy
           + stack.loss_penalty("encoder") + stack.loss_penalty("trunk")
    backward through the DDP wrapper (gradients all-reduced, averaged over ranks)
    clip the global gradient norm
    stack.before_step(net); optimizer[net].step(); stack.after_step(net)   for net in encoder, trunk
    stack.after_update(updates)

The value loss is habitat-baselines' clipped one (``use_clipped_value_loss``,
:func:`value_loss`). Losses are means over the valid (non-padded) steps of the minibatch.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Dict, List, Optional

import torch
from torch import nn

from palr.interventions import InterventionStack

from palr_habitat.ddppo_config import PPOConfig
from palr_habitat.ddppo_rollout import RolloutStorage, build_minibatch, segment_minibatches
from palr_habitat.palr_fetch_policy import FetchPolicy

NETWORKS = tuple(FetchPolicy.NETWORK_ROLES)  # encoder, trunk


def masked_mean(x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    return (x * valid).sum() / valid.sum().clamp_min(1.0)


def value_loss(values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor,
               valid: torch.Tensor, clip: Optional[float]) -> torch.Tensor:
    """``0.5 * mean((V - R)^2)`` over the valid steps; with ``clip``, habitat-baselines' clipping
    (its PPO ``_update_from_batch``): where the new value moved ``clip`` or more from the value
    predicted at collection, the prediction is replaced by that value moved by exactly ``clip``,
    a constant, so those steps add loss but no gradient. (PPO2's variant, the larger of the
    clipped and unclipped losses, would keep a gradient there.)"""
    if clip is not None:
        delta = values.detach() - old_values
        clipped = old_values + delta.clamp(-clip, clip)
        values = torch.where(delta.abs() < clip, values, clipped)
    return 0.5 * masked_mean((values - returns) ** 2, valid)


class PPOUpdater:
    """Runs the PPO epochs of one iteration; counts gradient updates (``updates``) for the
    interventions."""

    def __init__(self, model: nn.Module, train_module: nn.Module,
                 optimizers: Dict[str, torch.optim.Optimizer], stack: InterventionStack,
                 config: PPOConfig,
                 advantage_stats: Optional[Callable[[List[float]], List[float]]] = None) -> None:
        """
        Args:
            model: the policy (:class:`~palr_habitat.palr_fetch_policy.FetchPolicy`).
            train_module: what the loss is computed through: the DDP wrapper of ``model`` when
                distributed (so its backward all-reduces gradients), else ``model``.
            optimizers: ``{"encoder": ..., "trunk": ...}``.
            advantage_stats: sums ``[sum, sum of squares, count]`` over ranks (normalised
                advantages); identity when single-process.
        """
        self.model = model
        self.train_module = train_module
        self.optimizers = optimizers
        self.stack = stack
        self.config = config
        self.advantage_stats = advantage_stats or (lambda v: v)
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.updates = 0  # gradient updates (the agent contract's ``updates``)

    def _advantages(self, storage: RolloutStorage) -> torch.Tensor:
        adv = storage.advantages
        if not self.config.use_normalized_advantage:
            return adv
        n = storage.step
        a = adv[:n]
        total, squares, count = self.advantage_stats(
            [float(a.sum()), float((a * a).sum()), float(a.numel())])
        mean = total / max(count, 1.0)
        std = math.sqrt(max(squares / max(count, 1.0) - mean * mean, 0.0))
        return (adv - mean) / (std + 1e-5)

    def update(self, storage: RolloutStorage, generator: torch.Generator) -> Dict[str, float]:
        """PPO epochs over the collected ``storage.step`` steps; returns mean losses."""
        cfg = self.config
        advantages = self._advantages(storage)
        sums = {"ppo/policy_loss": 0.0, "ppo/value_loss": 0.0, "ppo/entropy": 0.0,
                "ppo/approx_kl": 0.0, "ppo/clip_fraction": 0.0, "ppo/grad_norm": 0.0}
        count = 0
        for _ in range(cfg.ppo_epoch):
            groups = segment_minibatches(storage.step, storage.num_envs, cfg.num_mini_batch,
                                         generator)
            for segments in groups:
                batch = build_minibatch(storage, segments, advantages)
                log_probs, values, entropy = self.train_module(
                    batch.visual, batch.state, batch.prev_actions, batch.hidden0, batch.masks,
                    batch.actions)
                valid = batch.valid
                log_ratio = log_probs - batch.old_log_probs
                ratio = torch.exp(log_ratio)
                surr1 = ratio * batch.advantages
                surr2 = torch.clamp(ratio, 1.0 - cfg.clip_param, 1.0 + cfg.clip_param) * batch.advantages
                policy_loss = -masked_mean(torch.min(surr1, surr2), valid)
                v_loss = value_loss(values, batch.old_values, batch.returns, valid,
                                    cfg.clip_param if cfg.use_clipped_value_loss else None)
                entropy_mean = masked_mean(entropy, valid)
                loss = policy_loss + cfg.value_loss_coef * v_loss - cfg.entropy_coef * entropy_mean
                for net in NETWORKS:
                    penalty = self.stack.loss_penalty(net)
                    if penalty is not None:
                        loss = loss + penalty
                if not torch.isfinite(loss.detach()):
                    raise FloatingPointError(
                        f"non-finite PPO loss at gradient update {self.updates + 1}")
                for opt in self.optimizers.values():
                    opt.zero_grad(set_to_none=True)
                loss.backward()
                grad_norm = nn.utils.clip_grad_norm_(self.params, cfg.max_grad_norm)
                for net in NETWORKS:
                    self.stack.before_step(net)
                    self.optimizers[net].step()
                    self.stack.after_step(net)
                self.updates += 1
                self.stack.after_update(self.updates)
                with torch.no_grad():
                    sums["ppo/policy_loss"] += float(policy_loss)
                    sums["ppo/value_loss"] += float(v_loss)
                    sums["ppo/entropy"] += float(entropy_mean)
                    sums["ppo/approx_kl"] += float(masked_mean((ratio - 1) - log_ratio, valid))
                    sums["ppo/clip_fraction"] += float(masked_mean(
                        ((ratio - 1.0).abs() > cfg.clip_param).float(), valid))
                    sums["ppo/grad_norm"] += float(grad_norm)
                count += 1
        return {k: v / max(count, 1) for k, v in sums.items()}

    def set_base_lr(self, lr: float) -> None:
        """Base learning rate of every param group (PALR multiplies around each step)."""
        for opt in self.optimizers.values():
            for group in opt.param_groups:
                group["lr"] = lr

    def state_dict(self) -> Dict[str, Any]:
        return {"updates": self.updates}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.updates = int(state["updates"])


__all__ = ["PPOUpdater", "masked_mean", "value_loss", "NETWORKS"]
