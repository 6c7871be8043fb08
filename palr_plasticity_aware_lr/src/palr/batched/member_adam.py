"""Adam (Kingma & Ba 2015) over a member axis, with a learning rate per member and per layer.

The parameters of K members sit in one ``[K, P]`` tensor (:class:`~palr.batched.stacked_mlp.
StackedMLP`); the moments are ``[K, P]`` tensors of the same layout, so one update serves every
member, and a member's moments are plain views that can be cleared per member or per unit. The
update rule is ``torch.optim.Adam``'s (no weight decay, no AMSGrad): with ``t`` the step count,

    m <- beta1 m + (1 - beta1) g;   v <- beta2 v + (1 - beta2) g^2
    p <- p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

where ``lr`` is a ``[K, L]`` table (member x layer), so PALR's per-layer scale can differ per
member. Every member steps at every update, so one step count serves all.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

import torch


class MemberAdam:
    """Adam on a ``[K, P]`` parameter tensor whose columns are split into layers.

    Args:
        params: the ``[K, P]`` leaf tensor (its ``.grad`` is read at every step).
        layer_columns: columns of each layer in a row (``L`` layers, in order, covering ``P``).
        lr: initial learning rate of every member and layer (:attr:`lr` holds the table).
        betas, eps: Adam's.
    """

    def __init__(self, params: torch.Tensor, layer_columns: Sequence[int], lr: float,
                 betas: Tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        if params.dim() != 2 or sum(layer_columns) != params.shape[1]:
            raise ValueError(f"layer columns {list(layer_columns)} do not cover parameters of "
                             f"shape {tuple(params.shape)}")
        self.params = params
        self.betas = betas
        self.eps = float(eps)
        self.exp_avg = torch.zeros_like(params, requires_grad=False)
        self.exp_avg_sq = torch.zeros_like(params, requires_grad=False)
        self.steps = 0
        self.layer_columns = torch.tensor(list(layer_columns), device=params.device)
        #: ``[K, L]`` learning rate of every member and layer, read at every step
        self.lr = torch.full((params.shape[0], len(layer_columns)), float(lr), dtype=params.dtype,
                             device=params.device)

    @torch.no_grad()
    def step(self) -> None:
        """One Adam update of every member from ``params.grad`` at the rates in :attr:`lr`."""
        grad = self.params.grad
        if grad is None:
            raise RuntimeError("MemberAdam.step() before any backward(): no gradient")
        beta1, beta2 = self.betas
        self.steps += 1
        self.exp_avg.lerp_(grad, 1.0 - beta1)
        self.exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1.0 - beta2)
        bias_correction1 = 1.0 - beta1 ** self.steps
        bias_correction2_sqrt = math.sqrt(1.0 - beta2 ** self.steps)
        denom = (self.exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(self.eps)
        step_size = torch.repeat_interleave(self.lr, self.layer_columns, dim=1) / bias_correction1
        self.params.sub_(self.exp_avg / denom * step_size)

    @torch.no_grad()
    def clear(self, member: int, columns: Optional[slice] = None) -> None:
        """Zero member ``member``'s moments (all, or ``columns`` of its row); the step count
        goes on, as :func:`palr.reinit.reinitialize_units` leaves it."""
        index = (member, slice(None) if columns is None else columns)
        self.exp_avg[index] = 0
        self.exp_avg_sq[index] = 0


__all__ = ["MemberAdam"]
