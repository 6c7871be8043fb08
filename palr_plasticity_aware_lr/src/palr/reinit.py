"""Re-initialise chosen units of a probed layer without changing the network's output.

For each chosen unit j (ReDo, Sokar et al. 2023; Continual Backprop, Dohare et al. 2024):
- its incoming weights in the producer are re-drawn (He-normal times a scale, or the layer's
  default PyTorch initialiser), its bias set to 0, and a BatchNorm in between reset for channel j;
- its outgoing weights in EVERY consumer are set to 0, so the output is unchanged at that instant;
- the optimizer's moment estimates (Adam's exp_avg / exp_avg_sq, SGD momentum, ...) of every
  touched entry are zeroed: a PyTorch port of ReDo needed this for units to actually revive.
Randomness comes from the caller's seeded generator.
"""
from __future__ import annotations

import copy
import math
from typing import List, Optional, Tuple

import torch
from torch import nn

from palr.probes import ProbedLayer

INIT_SCHEMES = ("he_normal", "default")


def _fan_in(weight: torch.Tensor) -> int:
    return int(weight[0].numel())


def draw_incoming(weight: torch.Tensor, rows: int, generator: torch.Generator,
                  scheme: str = "he_normal", scale: float = 1.0) -> torch.Tensor:
    """Fresh incoming weights for ``rows`` units shaped like ``weight[:rows]``.

    ``he_normal``: N(0, 2 / fan_in) (He et al. 2015, ReLU gain) times ``scale``.
    ``default``: PyTorch's Linear/Conv default, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), times ``scale``.
    """
    shape = (rows,) + tuple(weight.shape[1:])
    fan_in = _fan_in(weight)
    if scheme == "he_normal":
        sample = torch.randn(shape, generator=generator, dtype=torch.float32) * math.sqrt(2.0 / fan_in)
    elif scheme == "default":
        bound = 1.0 / math.sqrt(fan_in)
        sample = (torch.rand(shape, generator=generator, dtype=torch.float32) * 2.0 - 1.0) * bound
    else:
        raise ValueError(f"unknown init scheme {scheme!r}; valid: {', '.join(INIT_SCHEMES)}")
    return (sample * scale).to(device=weight.device, dtype=weight.dtype)


def _zero_moments(optimizer: Optional[torch.optim.Optimizer], param: torch.Tensor,
                  index: Tuple) -> None:
    if optimizer is None:
        return
    state = optimizer.state.get(param)
    if not state:
        return
    for value in state.values():
        if torch.is_tensor(value) and value.shape == param.shape:
            value[index] = 0


def _consumer_columns(consumer_module: nn.Module, units: torch.Tensor, flattened: bool,
                      channels: int) -> Tuple:
    if flattened:
        block = consumer_module.in_features // channels  # type: ignore[operator]
        cols = (units[:, None] * block + torch.arange(block, device=units.device)[None, :])
        return (slice(None), cols.reshape(-1))
    return (slice(None), units)


@torch.no_grad()
def reinitialize_units(layer: ProbedLayer, units: torch.Tensor,
                       optimizer: Optional[torch.optim.Optimizer], generator: torch.Generator,
                       scheme: str = "he_normal", scale: float = 1.0) -> int:
    """Re-initialise ``units`` (indices or a boolean mask) of ``layer``; returns how many.

    Raises:
        ValueError: if the layer is not recyclable (residual/concat/output paths, unit-mixing
            norms) -- its units cannot be re-drawn without changing the network's output.
    """
    if not layer.recyclable or layer.producer is None:
        raise ValueError(
            f"layer {layer.name!r} is not recyclable (its units reach a residual add, a concat, "
            "a unit-mixing norm or the network output); only metrics and LR scaling apply to it"
        )
    if units.dtype == torch.bool:
        units = torch.nonzero(units, as_tuple=False).flatten()
    units = units.to(device=layer.producer.weight.device, dtype=torch.long)
    if units.numel() == 0:
        return 0
    producer = layer.producer
    producer.weight[units] = draw_incoming(producer.weight, int(units.numel()), generator,
                                           scheme, scale)
    _zero_moments(optimizer, producer.weight, (units,))
    if producer.bias is not None:
        producer.bias[units] = 0
        _zero_moments(optimizer, producer.bias, (units,))
    for norm in layer.norms:
        _reset_norm_units(norm, units, optimizer)
    channels = layer.num_units
    for consumer in layer.consumers:
        index = _consumer_columns(consumer.module, units, consumer.flattened, channels)
        consumer.module.weight[index] = 0
        _zero_moments(optimizer, consumer.module.weight, index)
    return int(units.numel())


def _reset_norm_units(norm: nn.Module, units: torch.Tensor,
                      optimizer: Optional[torch.optim.Optimizer]) -> None:
    if getattr(norm, "weight", None) is not None:
        norm.weight[units] = 1
        _zero_moments(optimizer, norm.weight, (units,))
    if getattr(norm, "bias", None) is not None:
        norm.bias[units] = 0
        _zero_moments(optimizer, norm.bias, (units,))
    if getattr(norm, "running_mean", None) is not None:
        norm.running_mean[units] = 0
        norm.running_var[units] = 1


def _redraw_uniform(param: torch.Tensor, bound: float, generator: torch.Generator) -> None:
    """``param`` <- U(-bound, bound), drawn on the CPU from ``generator``."""
    fresh = (torch.rand(param.shape, generator=generator) * 2 - 1) * bound
    param.copy_(fresh.to(param))


@torch.no_grad()
def reinitialize_module(module: nn.Module, generator: torch.Generator) -> None:
    """Re-draw every parameter of ``module`` as at construction, from ``generator``.

    Linear/Conv: PyTorch's default (kaiming-uniform weight, U(+-1/sqrt(fan_in)) bias); recurrent
    layers and cells (GRU, LSTM, RNN): PyTorch's default U(+-1/sqrt(hidden_size)) for every
    parameter; norms: weight 1, bias 0, running statistics reset. Other parameterised modules fall
    back to their own ``reset_parameters`` (global RNG) -- none of the project's networks has one.
    """
    for sub in module.modules():
        if isinstance(sub, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            sub.weight.copy_(draw_incoming(sub.weight, sub.weight.shape[0], generator, "default"))
            if sub.bias is not None:
                _redraw_uniform(sub.bias, 1.0 / math.sqrt(_fan_in(sub.weight)), generator)
        elif isinstance(sub, (nn.RNNBase, nn.RNNCellBase)):
            for param in sub.parameters(recurse=False):
                _redraw_uniform(param, 1.0 / math.sqrt(sub.hidden_size), generator)
        elif isinstance(sub, (nn.LayerNorm, nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm)):
            if getattr(sub, "weight", None) is not None:
                sub.weight.fill_(1)
            if getattr(sub, "bias", None) is not None:
                sub.bias.zero_()
            if getattr(sub, "running_mean", None) is not None:
                sub.reset_running_stats()
        elif any(True for _ in sub.parameters(recurse=False)) and hasattr(sub, "reset_parameters"):
            sub.reset_parameters()


def fresh_parameters(module: nn.Module, generator: torch.Generator) -> List[torch.Tensor]:
    """A fresh initialisation of ``module``'s parameters (same order as ``module.parameters()``),
    without touching the module: the noise source of Shrink & Perturb (Ash & Adams 2020)."""
    clone = copy.deepcopy(module)
    reinitialize_module(clone, generator)
    return [p.detach() for p in clone.parameters()]


__all__ = ["draw_incoming", "reinitialize_units", "reinitialize_module", "fresh_parameters",
           "INIT_SCHEMES"]
