"""Adam (Kingma & Ba 2015) over a member axis, with a learning rate per member and per layer.

The parameters of K members sit in one ``[K, P]`` tensor (:class:`~palr.batched.stacked_mlp.
StackedMLP`); the moments are ``[K, P]`` tensors of the same layout, so one update serves every
member, and a member's moments are plain views that can be cleared per member or per unit. The
update rule is ``torch.optim.Adam``'s (no weight decay, no AMSGrad): with ``t`` the step count,

    m <- beta1 m + (1 - beta1) g;   v <- beta2 v + (1 - beta2) g^2
    p <- p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

where ``lr`` is a ``[K, L]`` table (member x layer), so PALR's per-layer scale can differ per
member. Every member steps at every update, so one step count serves all, except after
:meth:`MemberAdam.restart`: a member whose optimizer state was cleared (a full reset, as
``optimizer.state.clear()`` in a separate run) counts its steps from 1 again.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np
import torch

# torch's fused Adam kernel (CPU since torch 2.4); None on builds without it
_FUSED_ADAM_KERNEL = getattr(torch, "_fused_adam_", None)


class MemberAdam:
    """Adam on a ``[K, P]`` parameter tensor whose columns are split into layers.

    Args:
        params: the ``[K, P]`` parameter tensor (updated in place).
        grad: its ``[K, P]`` gradient (read at every step).
        layer_columns: columns of each layer in a row (``L`` layers, in order, covering ``P``).
        lr: initial learning rate of every member and layer (:attr:`lr` holds the table).
        betas, eps: Adam's.
    """

    def __init__(self, params: torch.Tensor, grad: torch.Tensor, layer_columns: Sequence[int],
                 lr: float,
                 betas: Tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        if params.dim() != 2 or sum(layer_columns) != params.shape[1]:
            raise ValueError(f"layer columns {list(layer_columns)} do not cover parameters of "
                             f"shape {tuple(params.shape)}")
        self.params, self.grad = params, grad
        self.betas = betas
        self.eps = float(eps)
        self.exp_avg = torch.zeros_like(params)
        self.exp_avg_sq = torch.zeros_like(params)
        self.steps = 0
        #: per member, the value of :attr:`steps` when its state was last cleared
        #: (:meth:`restart`): member k's own step count is ``steps - restarted_at[k]``
        self.restarted_at = np.zeros(params.shape[0], dtype=np.int64)
        self.layer_columns = torch.tensor(list(layer_columns), device=params.device)
        #: ``[K, L]`` learning rate of every member and layer, read at every step
        self.lr = torch.full((params.shape[0], len(layer_columns)), float(lr), dtype=params.dtype,
                             device=params.device)
        self._lr_seen: Optional[torch.Tensor] = None
        self._lr_cols = self.lr
        #: the one learning rate of every member and layer, None when they differ
        self._uniform_lr: Optional[float] = float(lr)
        self._scratch = torch.zeros_like(params)
        self._step_count = torch.zeros((), dtype=torch.float32, device=params.device)

    @torch.no_grad()
    def step(self) -> None:
        """One Adam update of every member from :attr:`grad` at the rates in :attr:`lr`.

        With torch's fused Adam kernel (the one :func:`palr.optim.step_adam` calls) the moments
        are updated and ``-m_hat / (sqrt(v_hat) + eps)`` written into a scratch tensor in one
        pass (learning rate 1), then scaled per member and layer and added: the same rule. While
        every member and layer has one learning rate and one step count (plain DQN, and most
        updates of every agent), the kernel updates the parameters directly at that rate."""
        beta1, beta2 = self.betas
        self.steps += 1
        step_size = self._lr_columns()
        counts = self.steps - self.restarted_at  # every member's own step count
        shared = bool((counts == counts[0]).all())  # NumPy: no torch dispatch per step
        if _FUSED_ADAM_KERNEL is not None and self.params.device.type == "cpu":
            if shared and self._uniform_lr is not None:  # one rate: torch's fused Adam as is
                self._step_count.fill_(float(counts[0]))
                _FUSED_ADAM_KERNEL([self.params], [self.grad], [self.exp_avg], [self.exp_avg_sq],
                                   [], [self._step_count], lr=self._uniform_lr, beta1=beta1,
                                   beta2=beta2, weight_decay=0.0, eps=self.eps, amsgrad=False,
                                   maximize=False, grad_scale=None, found_inf=None)
                return
            self._scratch.zero_()
            if shared:
                self._step_count.fill_(float(counts[0]))
                rows = ([self._scratch], [self.grad], [self.exp_avg], [self.exp_avg_sq],
                        [self._step_count])
            else:  # one list entry (row) per member, each with its own step count
                rows = (list(self._scratch), list(self.grad), list(self.exp_avg),
                        list(self.exp_avg_sq),
                        [torch.tensor(float(c), device=self.params.device) for c in counts])
            _FUSED_ADAM_KERNEL(*rows[:4], [], rows[4], lr=1.0, beta1=beta1, beta2=beta2,
                               weight_decay=0.0, eps=self.eps, amsgrad=False, maximize=False,
                               grad_scale=None, found_inf=None)
            self.params.addcmul_(self._scratch, step_size)
            return
        self.exp_avg.lerp_(self.grad, 1.0 - beta1)
        self.exp_avg_sq.mul_(beta2).addcmul_(self.grad, self.grad, value=1.0 - beta2)
        t = counts.astype(np.float64)[:, None]  # [K, 1], in double as torch's Python floats
        bias_correction1 = self._column(1.0 - beta1 ** t)
        bias_correction2_sqrt = self._column(np.sqrt(1.0 - beta2 ** t))
        denom = (self.exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(self.eps)
        self.params.addcdiv_(self.exp_avg * step_size / bias_correction1, denom, value=-1.0)

    def _column(self, values: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(values, dtype=self.params.dtype, device=self.params.device)

    def _lr_columns(self) -> torch.Tensor:
        """:attr:`lr` spread over every column (``[K, P]``), rebuilt only when it changed."""
        if self._lr_seen is None or not torch.equal(self._lr_seen, self.lr):
            self._lr_seen = self.lr.clone()
            self._lr_cols = torch.repeat_interleave(self.lr, self.layer_columns, dim=1)
            first = self.lr.flatten()[0]
            self._uniform_lr = float(first) if bool((self.lr == first).all()) else None
        return self._lr_cols

    @torch.no_grad()
    def clear(self, member: int, columns: Optional[slice] = None) -> None:
        """Zero member ``member``'s moments (all, or ``columns`` of its row); the step count
        goes on, as :func:`palr.reinit.reinitialize_units` leaves it."""
        index = (member, slice(None) if columns is None else columns)
        self.exp_avg[index] = 0
        self.exp_avg_sq[index] = 0

    @torch.no_grad()
    def restart(self, member: int) -> None:
        """Forget member ``member``'s state, as ``optimizer.state.clear()`` does to a separate
        run's Adam: its moments are zeroed and its next step is its step 1 (bias correction
        starts again); the other members are untouched."""
        self.clear(member)
        self.restarted_at[member] = self.steps


__all__ = ["MemberAdam"]
