"""One plasticity measurement of a network on a diagnostic batch (docs/palr.md#when-and-what-it-measures).

Shared by the metrics-only monitor and by PALR/ReDo, so every agent logs the same quantities:
per layer dead fraction, tau-dormant fraction, effective rank, srank_delta, stable rank, feature
norm, and the producer's weight norm and gradient norm; per network the mean absolute output (for
a Q-network, the mean |Q| of every action). Definitions and sources: docs/plasticity_measures.md.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

import torch

from torch import nn

from palr.plasticity import LayerStats, NonFiniteActivations, layer_stats
from palr.probes import ActivationProbes, ProbedLayer


#: Pseudo-layer name under which network-level values are logged (``plasticity/<net>/output/...``);
#: torch.fx reserves ``output`` for the graph's output node, so no probed layer has this name.
OUTPUT_LAYER = "output"


@dataclass
class LayerMeasurement:
    """Metrics of one probed layer plus its producer's weight and gradient norms.

    ``feature_norm`` is the mean over samples (conv: over image positions) of the L2 norm of the
    layer's post-activation vector; feature norms grow under TD learning (Kumar et al. 2022,
    "DR3: value-based deep RL requires explicit regularization").
    """

    layer: ProbedLayer
    stats: LayerStats
    weight_norm: float
    grad_norm: float
    feature_norm: float = float("nan")

    def scalars(self) -> Dict[str, Optional[float]]:
        values = self.stats.scalars()
        values["weight_norm"] = self.weight_norm
        values["grad_norm"] = self.grad_norm
        values["feature_norm"] = self.feature_norm
        return values


class NetworkMeasurement(dict):
    """``{layer name: LayerMeasurement}`` of one network, plus the network-level ``output_abs``:
    the mean absolute value of every output on the diagnostic batch (for a Q-network the mean
    |Q(s, a)| over states and actions, the value magnitude whose growth beyond the reward bound
    marks value divergence; van Hasselt et al. 2018, "Deep RL and the deadly triad")."""

    output_abs: Optional[float] = None


def output_magnitude(output: Any) -> Optional[float]:
    """Mean absolute value over every element of a network's output (a tensor or a tuple of
    tensors, e.g. a twin critic's ``(q1, q2)``); None when there is no tensor."""
    tensors = [output] if torch.is_tensor(output) else \
        [t for t in (output if isinstance(output, (tuple, list)) else ()) if torch.is_tensor(t)]
    count = sum(t.numel() for t in tensors)
    if count == 0:
        return None
    return float(sum(t.detach().abs().sum() for t in tensors)) / count


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
                    ) -> NetworkMeasurement:
    """Forward ``inputs`` through ``module`` with its probes on; metrics per probed layer and the
    network's mean absolute output.

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
            output = module(*inputs)
    finally:
        module.train(was_training)
    return measurement_of(probes, activations, output, tau, delta, net)


def measurement_of(probes: ActivationProbes, activations: Dict[str, torch.Tensor], output: Any,
                   tau: float = 0.025, delta: float = 0.01, net: str = "network",
                   singular: Optional[Dict[str, torch.Tensor]] = None) -> NetworkMeasurement:
    """The :class:`NetworkMeasurement` of a network whose probed layers' activations (samples x
    units, by layer name) and output on a diagnostic batch are given, as
    :func:`measure_network` computes it (``singular``: each layer's
    :func:`~palr.plasticity.singular_values`, if already computed)."""
    result = NetworkMeasurement()
    result.output_abs = output_magnitude(output)
    for layer in probes:
        a = activations[layer.name]
        try:
            stats = layer_stats(a, exact_zero=layer.exact_zero, tau=tau, delta=delta,
                                singular=None if singular is None else singular[layer.name])
        except NonFiniteActivations as err:
            raise NonFiniteActivations(f"network {net!r}, layer {layer.name!r}: {err}") from None
        weight_norm, grad_norm = _norms(layer)
        result[layer.name] = LayerMeasurement(layer, stats, weight_norm, grad_norm,
                                              float(torch.linalg.vector_norm(a, dim=1).mean()))
    return result


def log_key(net: str, layer: str, metric: str) -> str:
    """Flat log key ``plasticity/<net>/<layer>/<metric>`` used by every intervention."""
    return f"plasticity/{net}/{layer}/{metric}"
