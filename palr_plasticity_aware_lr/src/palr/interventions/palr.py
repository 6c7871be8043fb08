"""PALR: plasticity-aware per-layer learning rates and targeted dead-unit perturbation.

Exactly docs/palr.md. Every ``measure_freq`` updates, for every probed hidden layer i of
every trained network, on a fresh diagnostic batch:

    rank_deficit_i = clip(1 - erank_i / erank0_i, 0, 1)      (erank0_i: first measurement)
    deficit_i      = dead_i + rank_beta * rank_deficit_i
    scale_i        = 1 + (max_lr_scale - 1) * clip(deficit_i / (1 + rank_beta), 0, 1)
    s_i           <- beta * s_i + (1 - beta) * scale_i

``s_i`` is a per-layer LEARNING RATE multiplier: around every optimizer step the producer's param
group runs at ``lr = base_lr(t) * s_i`` and is restored to ``base_lr`` right after, so any
scheduler (torch's, or an algorithm's own that rewrites every group's lr, as SB3 does) keeps
owning ``base_lr``; PALR multiplies, never overwrites. It is never a gradient multiplier (Adam is
invariant to gradient scale).

If ``dead_i > perturb_threshold``, each dead unit gets fresh He-normal incoming weights times
``sigma`` (bias 0), zero outgoing weights in every consumer and zeroed Adam moments
(:func:`palr.reinit.reinitialize_units`): the network output is unchanged at that instant. For
activations that are never exactly zero (leaky ReLU, tanh) the dead fraction is not applicable and
the tau-dormant fraction/units stand in for it.

Each measurement's response (every layer's scale and re-initialisation mask) is decided once and
passed through :meth:`~palr.interventions.base.Intervention.agree`, so in DD-PPO every rank applies
rank 0's scales and masks with rank 0's randomness.
"""
from __future__ import annotations

from typing import Any, Dict, List, Tuple

import torch

from palr.intervention_configs import PALRConfig
from palr.interventions.base import TrainingContext
from palr.interventions.monitor import MeasuringIntervention, Measurements
from palr.measure import LayerMeasurement, log_key
from palr.reinit import reinitialize_units


def lr_scale(dead: float, erank: float, erank0: float, rank_beta: float,
             max_lr_scale: float) -> float:
    """``scale_i`` of docs/palr.md#the-response (before smoothing)."""
    rank_deficit = 0.0 if erank0 <= 0 else min(max(1.0 - erank / erank0, 0.0), 1.0)
    deficit = dead + rank_beta * rank_deficit
    return 1.0 + (max_lr_scale - 1.0) * min(max(deficit / (1.0 + rank_beta), 0.0), 1.0)


class PALR(MeasuringIntervention):
    """Plasticity-aware LR scaling + targeted perturbation (ablations via ``scale_lr``/``perturb``)."""

    name = "palr"

    def __init__(self, config: PALRConfig) -> None:
        super().__init__(config)
        self.config: PALRConfig = config
        self.erank0: Dict[str, Dict[str, float]] = {}
        self.scales: Dict[str, Dict[str, float]] = {}
        self.reinit_total: Dict[str, Dict[str, int]] = {}
        self._base_lrs: Dict[str, List[Tuple[Dict[str, Any], float]]] = {}

    # --- per-layer learning rates ------------------------------------------------------------
    def sets_layer_learning_rates(self) -> bool:
        return self.config.scale_lr

    def before_step(self, net: str) -> None:
        scales = self.scales.get(net)
        if not scales or not self.config.scale_lr:
            return
        slot = self.context.networks[net]
        touched = []
        for group in slot.optimizer.param_groups:
            scale = scales.get(group.get("name", ""))
            if scale is not None and scale != 1.0:
                touched.append((group, group["lr"]))
                group["lr"] = group["lr"] * scale
        self._base_lrs[net] = touched

    def after_step(self, net: str) -> None:
        for group, base_lr in self._base_lrs.pop(net, []):
            group["lr"] = base_lr

    # --- measurement and response ------------------------------------------------------------
    def after_update(self, update: int) -> None:
        first = not self.erank0
        if not first and update % self.config.measure_freq != 0:
            return
        measurements = self.measure()
        if first:
            self._record_baseline(measurements)
        self._respond(measurements)

    def _record_baseline(self, measurements: Measurements) -> None:
        for net, layers in measurements.items():
            self.erank0[net] = {name: m.stats.erank for name, m in layers.items()}
            self.scales[net] = {name: 1.0 for name in layers}
            self.reinit_total[net] = {name: 0 for name in layers}

    def _respond(self, measurements: Measurements) -> None:
        cfg = self.config
        scales = {net: dict(layers) for net, layers in self.scales.items()}
        masks: Dict[str, Dict[str, torch.Tensor]] = {}
        for net, layers in measurements.items():
            masks[net] = {}
            for name, m in layers.items():
                dead, mask = self._deadness(m)
                if cfg.scale_lr:
                    target = lr_scale(dead, m.stats.erank, self.erank0[net][name], cfg.rank_beta,
                                      cfg.max_lr_scale)
                    scales[net][name] = cfg.beta * scales[net][name] + (1 - cfg.beta) * target
                if cfg.perturb and m.layer.recyclable and dead > cfg.perturb_threshold:
                    masks[net][name] = mask.cpu()
        self.scales, masks = self.agree((scales, masks))
        self.log_measurements(measurements)
        for net, layers in measurements.items():
            slot = self.context.networks[net]
            for name, m in layers.items():
                mask = masks[net].get(name)
                count = 0
                if mask is not None:
                    count = reinitialize_units(m.layer, mask, slot.optimizer,
                                               self.context.generator, "he_normal", cfg.sigma)
                self.reinit_total[net][name] += count
                self.log[log_key(net, name, "lr_scale")] = self.scales[net][name]
                self.log[log_key(net, name, "reinit")] = float(count)
        self.emit()

    @staticmethod
    def _deadness(m: LayerMeasurement) -> Tuple[float, torch.Tensor]:
        """Dead fraction and mask; tau-dormant where dead is not applicable (non-ReLU)."""
        if m.stats.dead is not None and m.stats.dead_mask is not None:
            return m.stats.dead, m.stats.dead_mask
        return m.stats.dormant, m.stats.dormant_mask

    # --- checkpointing -----------------------------------------------------------------------
    def state_dict(self) -> Dict[str, Any]:
        return {"erank0": self.erank0, "scales": self.scales, "reinit_total": self.reinit_total}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.erank0 = {n: dict(v) for n, v in state["erank0"].items()}
        self.scales = {n: dict(v) for n, v in state["scales"].items()}
        self.reinit_total = {n: dict(v) for n, v in state["reinit_total"].items()}

    def on_optimizer_created(self, ctx: TrainingContext) -> None:
        super().on_optimizer_created(ctx)
        # a full reset re-creates networks: scales and baselines start over
        if self.erank0 and set(self.erank0) != set(self.slots()):
            self.erank0, self.scales, self.reinit_total = {}, {}, {}

    def close(self) -> None:
        self._base_lrs.clear()
        super().close()
