"""One plasticity measurement of a network on a diagnostic batch (DESIGN.md section 2).

Shared by the metrics-only monitor and by PALR/ReDo, so every agent logs the same quantities:
per layer dead fraction, tau-dormant fraction, effective rank, srank_delta, stable rank, and the
producer's weight norm and gradient norm.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import torch

from torch import nn

from palr.plasticity import LayerStats, NonFiniteActivations, layer_stats
from palr.probes import ActivationProbes, ProbedLayer


@dataclass
class LayerMeasurement:
    """Metrics of one probed layer plus its producer's weight and gradient norms."""

    layer: ProbedLayer
    stats: LayerStats
    weight_norm: float
    grad_norm: float

    def scalars(self) -> Dict[str, Optional[float]]:
        values = self.stats.scalars()
        values["weight_norm"] = self.weight_norm
        values["grad_norm"] = self.grad_norm
        return values


def _norms(layer: ProbedLayer) -> Tuple[float, float]:
    if layer.producer is None:
        return float("nan"), float("nan")
    params = [p for p in layer.producer.parameters()]
    weight = float(torch.sqrt(sum((p.detach() ** 2).sum() for p in params)))
    grads = [p.grad for p in params if p.grad is not None]
    grad = float(torch.sqrt(sum((g ** 2).sum() for g in grads))) if grads else 0.0
    return weight, grad


@torch.no_grad()
def measure_network(module: nn.Module, probes: ActivationProbes, inputs: Tuple[torch.Tensor, ...],
                    tau: float = 0.025, delta: float = 0.01, net: str = "network"
                    ) -> Dict[str, LayerMeasurement]:
    """Forward ``inputs`` through ``module`` with its probes on; metrics per probed layer.

    The module is put in eval mode for the pass (BatchNorm uses running statistics and nothing
    is updated) and restored afterwards.

    Raises:
        NonFiniteActivations: a layer's activations hold NaN/Inf; the message names the network
            (``net``) and the layer.
    """
    was_training = module.training
    module.eval()
    try:
        with probes.capture() as activations:
            module(*inputs)
    finally:
        module.train(was_training)
    result: Dict[str, LayerMeasurement] = {}
    for layer in probes:
        try:
            stats = layer_stats(activations[layer.name], exact_zero=layer.exact_zero, tau=tau,
                                delta=delta)
        except NonFiniteActivations as err:
            raise NonFiniteActivations(f"network {net!r}, layer {layer.name!r}: {err}") from None
        weight_norm, grad_norm = _norms(layer)
        result[layer.name] = LayerMeasurement(layer, stats, weight_norm, grad_norm)
    return result


def log_key(net: str, layer: str, metric: str) -> str:
    """Flat log key ``plasticity/<net>/<layer>/<metric>`` used by every intervention."""
    return f"plasticity/{net}/{layer}/{metric}"
