"""Plasticity metrics of a layer's post-activation matrix ``A`` (N samples x D units).

Every function takes a 2-D tensor and returns a Python float. Conv activations
(B, C, H, W) become ``(B*H*W, C)`` with :func:`units_matrix`: a unit is a channel, a sample an
(image, position) pair (docs/palr.md#when-and-what-it-measures).

Sources:
- dead fraction: units whose ReLU output is exactly zero on every sample (Lyle et al. 2022,
  "Understanding and preventing capacity loss in RL"; Dohare et al. 2024).
- tau-dormant fraction: Sokar et al. 2023 ("The Dormant Neuron Phenomenon in Deep RL"); a unit's
  score is E|h_j| divided by the layer MEAN of E|h_k| (the paper's "sums to 1" wording is wrong,
  google/dopamine issue #209).
- effective rank: Roy & Vetterli 2007, exp of the entropy of the normalised singular values.
- srank_delta: Kumar et al. 2021 ("Implicit under-parameterization"), smallest k whose leading
  singular values hold 1 - delta of the sum.
- stable rank: ||A||_F^2 / ||A||_2^2.

Rank estimates are biased low until N is about 4x the layer width (docs/palr.md#when-and-what-it-measures).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import torch

__all__ = [
    "dead_fraction", "dead_units", "dormant_fraction", "dormant_units", "effective_rank",
    "srank", "stable_rank", "singular_values", "stacked_singular_values", "units_matrix", "LayerStats", "layer_stats",
    "NonFiniteActivations",
]


class NonFiniteActivations(FloatingPointError):
    """An activation matrix holds NaN or Inf: no metric of it means anything (an SVD of it
    fails or, for Inf, silently reports rank 0). A ``FloatingPointError``, so a training run
    stops on it as on a NaN loss, keeping its last good checkpoint."""


def units_matrix(activation: torch.Tensor) -> torch.Tensor:
    """Reshape an activation tensor to (samples x units).

    ``(N, D)`` stays; ``(N, C, H, W)`` (conv) becomes ``(N*H*W, C)``; ``(N, T, D)`` (sequences)
    becomes ``(N*T, D)``.
    """
    if activation.dim() == 2:
        return activation
    if activation.dim() == 4:
        n, c, h, w = activation.shape
        return activation.permute(0, 2, 3, 1).reshape(n * h * w, c)
    if activation.dim() == 3:
        return activation.reshape(-1, activation.shape[-1])
    if activation.dim() == 1:
        return activation.reshape(-1, 1)
    raise ValueError(f"cannot read units from an activation of shape {tuple(activation.shape)}")


def _check_2d(a: torch.Tensor) -> torch.Tensor:
    if a.dim() != 2:
        raise ValueError(
            f"expected a 2-D activation matrix (samples x units), got shape {tuple(a.shape)}; "
            "use palr.plasticity.units_matrix for conv or sequence activations"
        )
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"empty activation matrix of shape {tuple(a.shape)}")
    finite = torch.isfinite(a)
    if not bool(finite.all()):
        nan = int(torch.isnan(a).sum())
        raise NonFiniteActivations(
            f"{nan} NaN and {int((~finite).sum()) - nan} infinite activations of {a.numel()}: "
            "the network's weights or inputs are not finite (lower the learning rate; check the "
            "observations and rewards)")
    return a


def dead_units(a: torch.Tensor) -> torch.Tensor:
    """Boolean mask of units whose output is exactly zero on every sample."""
    return (_check_2d(a) == 0).all(dim=0)


def dead_fraction(a: torch.Tensor) -> float:
    """Fraction of units that are exactly zero on every sample (defined for ReLU layers)."""
    return float(dead_units(a).float().mean())


def dormant_units(a: torch.Tensor, tau: float = 0.025) -> torch.Tensor:
    """Boolean mask of tau-dormant units: ``E|h_j| / mean_k E|h_k| <= tau`` (Sokar et al. 2023).

    A layer whose every unit is zero has a zero mean score: every unit is dormant.
    """
    if tau < 0:
        raise ValueError(f"tau must be >= 0, got {tau}")
    score = _check_2d(a).abs().mean(dim=0)
    layer_mean = score.mean()
    if float(layer_mean) == 0.0:
        return torch.ones_like(score, dtype=torch.bool)
    return (score / layer_mean) <= tau


def dormant_fraction(a: torch.Tensor, tau: float = 0.025) -> float:
    """Fraction of tau-dormant units (Sokar et al. 2023)."""
    return float(dormant_units(a, tau).float().mean())


def singular_values(a: torch.Tensor) -> torch.Tensor:
    """Numerically non-zero singular values of ``a``, computed in float64.

    "Non-zero" uses the usual matrix-rank tolerance ``s_max * max(N, D) * eps`` (NumPy's
    ``matrix_rank``), so round-off does not count as extra rank.
    """
    s = torch.linalg.svdvals(_check_2d(a).detach().to(torch.float64))
    return _numerically_nonzero(s, a.shape)


def _numerically_nonzero(s: torch.Tensor, shape: Tuple[int, ...]) -> torch.Tensor:
    """The singular values ``s`` (descending) of a matrix of ``shape`` above the rank tolerance."""
    if s.numel() == 0 or float(s[0]) == 0.0:
        return s[:0]
    tol = float(s[0]) * max(shape) * torch.finfo(torch.float32).eps
    return s[s > tol]


def stacked_singular_values(a: torch.Tensor) -> List[torch.Tensor]:
    """:func:`singular_values` of every matrix ``a[k]`` of a ``[K, N, D]`` stack (K matrices of
    one shape, e.g. K networks' activations of one layer), with one batched SVD."""
    if a.dim() != 3:
        raise ValueError(f"expected a [K, N, D] stack of activation matrices, got shape "
                         f"{tuple(a.shape)}")
    for matrix in a:
        _check_2d(matrix)
    s = torch.linalg.svdvals(a.detach().to(torch.float64))
    return [_numerically_nonzero(row, tuple(a.shape[1:])) for row in s]


def _erank_from(s: torch.Tensor) -> float:
    if s.numel() == 0:
        return 0.0
    p = s / s.sum()
    return float(torch.exp(-(p * torch.log(p)).sum()))


def _srank_from(s: torch.Tensor, delta: float) -> int:
    if s.numel() == 0:
        return 0
    cumulative = torch.cumsum(s, 0) / s.sum()
    # smallest k (1-based) with cumulative >= 1 - delta; a tiny slack absorbs round-off
    return int(torch.searchsorted(cumulative, cumulative.new_tensor(1.0 - delta - 1e-12))) + 1


def _stable_rank_from(s: torch.Tensor) -> float:
    if s.numel() == 0:
        return 0.0
    return float((s * s).sum() / (s[0] * s[0]))


def effective_rank(a: torch.Tensor) -> float:
    """Effective rank (Roy & Vetterli 2007): ``exp(-sum p_k log p_k)``, ``p = s / sum(s)``."""
    return _erank_from(singular_values(a))


def srank(a: torch.Tensor, delta: float = 0.01) -> int:
    """srank_delta (Kumar et al. 2021): smallest k with ``sum_{i<=k} s_i / sum s >= 1 - delta``."""
    if not 0.0 <= delta < 1.0:
        raise ValueError(f"srank delta must be in [0, 1), got {delta}")
    return _srank_from(singular_values(a), delta)


def stable_rank(a: torch.Tensor) -> float:
    """Stable rank ``||A||_F^2 / ||A||_2^2``."""
    return _stable_rank_from(singular_values(a))


@dataclass
class LayerStats:
    """Every metric of one layer from a single SVD.

    ``dead`` is ``None`` where it is not applicable (activations that are never exactly zero,
    e.g. leaky ReLU or tanh); ``dead_mask``/``dormant_mask`` are per-unit booleans.
    """

    dead: Optional[float]
    dormant: float
    erank: float
    srank: int
    stable_rank: float
    dead_mask: Optional[torch.Tensor]
    dormant_mask: torch.Tensor

    def scalars(self) -> Dict[str, Optional[float]]:
        return {"dead": self.dead, "dormant": self.dormant, "erank": self.erank,
                "srank": float(self.srank), "stable_rank": self.stable_rank}


def layer_stats(a: torch.Tensor, exact_zero: bool = True, tau: float = 0.025,
                delta: float = 0.01, singular: Optional[torch.Tensor] = None) -> LayerStats:
    """All metrics of one (samples x units) matrix with one SVD.

    Args:
        a: post-activation matrix.
        exact_zero: whether the activation can output exact zeros (ReLU family); otherwise the
            dead fraction is reported as not applicable (``None``).
        tau: dormancy threshold; delta: srank threshold.
        singular: ``singular_values(a)`` if already computed (e.g. by
            :func:`stacked_singular_values`); computed here otherwise.
    """
    a = _check_2d(a)
    s = singular_values(a) if singular is None else singular
    dormant_mask = dormant_units(a, tau)
    dead_mask = dead_units(a) if exact_zero else None
    return LayerStats(
        dead=float(dead_mask.float().mean()) if dead_mask is not None else None,
        dormant=float(dormant_mask.float().mean()),
        erank=_erank_from(s),
        srank=_srank_from(s, delta),
        stable_rank=_stable_rank_from(s),
        dead_mask=dead_mask,
        dormant_mask=dormant_mask,
    )
