"""Plasticity metrics of conv layers, built on the shared core (:mod:`palr.plasticity`).

A conv *unit* is a filter (output channel); a *sample* is an (image, spatial position) pair
(docs/plasticity_measures.md): activations (N, C, H, W) become an (N*H*W, C) matrix with
:func:`palr.plasticity.units_matrix`, and the core's definitions apply unchanged:

- dead filter fraction: filters whose post-ReLU output is exactly zero at every position of every
  image (Lyle et al. 2022; Dohare et al. 2024);
- effective rank (Roy & Vetterli 2007) of the (N*H*W, C) matrix. Early layers give millions of
  rows; ``max_rows`` subsamples rows (seeded) before the SVD, which changes the estimate little
  once rows >> 4 x C (docs/palr.md#when-and-what-it-measures) and bounds the cost.
"""
from __future__ import annotations

from typing import Dict, Optional

import torch
from torch import nn

from palr.plasticity import dead_fraction, dead_units, effective_rank, layer_stats, units_matrix
from palr.probes import ActivationProbes


def _conv_matrix(activation: torch.Tensor) -> torch.Tensor:
    if activation.dim() != 4:
        raise ValueError(f"expected conv activations (N, C, H, W), got shape "
                         f"{tuple(activation.shape)}")
    return units_matrix(activation)


def _subsample(matrix: torch.Tensor, max_rows: Optional[int],
               generator: Optional[torch.Generator]) -> torch.Tensor:
    if max_rows is None or matrix.shape[0] <= max_rows:
        return matrix
    if max_rows <= 0:
        raise ValueError(f"max_rows must be positive, got {max_rows}")
    idx = torch.randperm(matrix.shape[0], generator=generator)[:max_rows]
    return matrix[idx.to(matrix.device)]


def dead_filters(activation: torch.Tensor) -> torch.Tensor:
    """Boolean mask (C,) of filters that are zero at every position of every image."""
    return dead_units(_conv_matrix(activation))


def dead_filter_fraction(activation: torch.Tensor) -> float:
    """Fraction of dead filters of a post-ReLU conv activation (N, C, H, W)."""
    return dead_fraction(_conv_matrix(activation))


def conv_effective_rank(activation: torch.Tensor, max_rows: Optional[int] = None,
                        generator: Optional[torch.Generator] = None) -> float:
    """Effective rank of the (N*H*W, C) matrix of a conv activation (rows optionally subsampled)."""
    return effective_rank(_subsample(_conv_matrix(activation), max_rows, generator))


@torch.no_grad()
def conv_layer_report(module: nn.Module, images: torch.Tensor, max_rows: Optional[int] = None,
                      probes: Optional[ActivationProbes] = None,
                      generator: Optional[torch.Generator] = None) -> Dict[str, Dict[str, float]]:
    """Per conv layer of ``module`` (e.g. the ResNet encoder) on ``images``: dead filter fraction,
    tau-dormant fraction, effective rank, filter count and whether PALR may re-initialise it.

    Layers are named by their producing conv (``stem_conv``, ``layer1.0.conv1``, ...).
    """
    probes = probes if probes is not None else ActivationProbes(module)
    was_training = module.training
    module.eval()
    try:
        with probes.capture() as activations:
            module(images)
    finally:
        module.train(was_training)
    report: Dict[str, Dict[str, float]] = {}
    for layer in probes:
        if not isinstance(layer.producer, nn.Conv2d):
            continue
        matrix = activations[layer.name]  # already (N*H*W, C)
        stats = layer_stats(_subsample(matrix, max_rows, generator), exact_zero=layer.exact_zero)
        dead = float(dead_units(matrix).float().mean()) if layer.exact_zero else float("nan")
        report[layer.name] = {"dead": dead, "dormant": stats.dormant, "erank": stats.erank,
                              "filters": float(matrix.shape[1]),
                              "recyclable": float(layer.recyclable)}
    return report


__all__ = ["dead_filters", "dead_filter_fraction", "conv_effective_rank", "conv_layer_report"]
