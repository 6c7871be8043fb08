"""Hand-written backward pass of a :class:`~palr.batched.stacked_mlp.StackedMLP` and of DQN's
Huber TD loss, writing every member's gradient straight into the ``[K, P]`` gradient buffer.

For member k (dropped from the notation: each member's loss depends on its own row only, so
the gradient of the members' summed losses is every member's own gradient), layer l = 1..L of
the ReLU MLP computes, on a batch of B inputs ``h_0 = x`` (``B x in``)::

    z_l = h_{l-1} W_l^T + 1 b_l^T        (B x out_l; the stacked forward's ``baddbmm``)
    h_l = relu(z_l)  for l < L,          output q = z_L

With ``G_l = dloss/dz_l`` (``B x out_l``), the chain rule gives, from l = L down to 1::

    dloss/dW_l = G_l^T h_{l-1}           (out_l x in_l: one ``bmm`` over the member axis)
    dloss/db_l = 1^T G_l                 (the column sums of G_l)
    G_{l-1}    = (G_l W_l) * relu'(z_{l-1})

and ``relu'(z) = [z > 0] = sign(h)`` because ``h = relu(z) >= 0`` (0 at z = 0, as torch's ReLU
backward). So the forward keeps each layer's input ``h_{l-1}``, and no autograd graph is built.
The gradient w.r.t. the network's input is the same recursion one step further, without the
ReLU: ``dloss/dh_0 = G_1 W_1`` (:func:`input_grad`, SAC's actor loss through the critics).

DQN's loss of one member is the batch mean of the Huber loss (``smooth_l1`` with ``beta``;
Mnih et al. 2015's error clipping) of ``d_i = q(s_i, a_i) - y_i`` with the target ``y_i``
held fixed, so::

    dloss/dq(s_i, a)  = clamp(d_i / beta, -1, 1) / B   if a = a_i, else 0

(``|d| < beta``: ``d / beta``; otherwise ``sign(d)``, as torch's ``smooth_l1_loss`` backward).
SAC's critic loss (Haarnoja et al. 2018) is a batch mean of squared errors, so there
``dloss/dq_i = 2 (q_i - y_i) / B``.
"""
from __future__ import annotations

from typing import Dict, Hashable, List, Optional, Sequence, Tuple

import torch

from palr.batched.stacked_mlp import StackedMLP

#: per layer, the ``[K, 1, out]`` bias and ``[K, in, out]`` transposed weight (``operands``)
Operands = Sequence[Tuple[torch.Tensor, torch.Tensor]]


class Scratch:
    """Output tensors reused from one update to the next, one per name and shape.

    A fresh ``[K, B, width]`` activation is large enough (10 x 128 x 128 floats: 640 KiB) that
    the C allocator maps new pages for it and the kernel faults every page in again at its first
    write. On the 2-core machine that cost a K = 10 DQN loop step about 13% of its CPU time
    (measured by raising glibc's ``MALLOC_MMAP_THRESHOLD_``, which keeps such blocks in the
    heap). A tensor taken from here stays valid until the same name is asked for again."""

    def __init__(self) -> None:
        self._tensors: Dict[Hashable, torch.Tensor] = {}

    def take(self, name: Hashable, shape: Sequence[int], like: torch.Tensor) -> torch.Tensor:
        """A tensor of ``shape`` with ``like``'s dtype and device, kept under ``name``
        (contents undefined)."""
        tensor = self._tensors.get(name)
        if tensor is None or tensor.shape != tuple(shape) or tensor.dtype != like.dtype \
                or tensor.device != like.device:
            tensor = like.new_empty(shape)
            self._tensors[name] = tensor
        return tensor


@torch.no_grad()
def forward_keeping_inputs(mlp: StackedMLP, x: torch.Tensor, operands: Operands,
                           scratch: Optional[Scratch] = None
                           ) -> Tuple[torch.Tensor, List[torch.Tensor]]:
    """``[K, B, in] -> [K, B, out]`` as :meth:`StackedMLP.forward` with ``operands`` (views of
    the parameters, :meth:`StackedMLP.operands`), and every layer's input ``h_{l-1}`` for
    :func:`backward_into`; with ``scratch``, the activations and output are its tensors."""
    inputs: List[torch.Tensor] = []
    h = x
    last = mlp.num_layers - 1
    for layer, (bias, weight_t) in enumerate(operands):
        inputs.append(h)
        shape = (h.shape[0], h.shape[1], weight_t.shape[2])
        out = None if scratch is None else scratch.take(("z", layer), shape, h)
        h = torch.baddbmm(bias, h, weight_t, out=out)
        if layer < last:
            h = torch.relu_(h)
    return h, inputs


@torch.no_grad()
def backward_into(mlp: StackedMLP, params: torch.Tensor, inputs: Sequence[torch.Tensor],
                  grad_out: torch.Tensor, grad: torch.Tensor,
                  scratch: Optional[Scratch] = None) -> None:
    """Write ``dloss/dparams`` into ``grad`` (``[K, P]``, the layout of ``params``) given
    ``grad_out = dloss/dq`` (``[K, B, out]``) and the layer ``inputs`` of
    :func:`forward_keeping_inputs`. Every layer's columns are overwritten (not accumulated);
    the row padding is left as it is. ``grad_out`` is not changed; ``scratch`` holds the
    intermediate gradients."""
    g = grad_out
    for layer in reversed(range(mlp.num_layers)):
        h_in = inputs[layer]
        weight_grad, bias_grad = mlp.layer_views(grad, layer)
        _, _, fan_out, fan_in = mlp.spans[layer]
        if fan_in < fan_out:  # BLAS is slow at products with few columns (4-dim input: 5x)
            weight_grad.copy_(torch.bmm(h_in.transpose(1, 2), g).transpose(1, 2))
        else:
            torch.bmm(g.transpose(1, 2), h_in, out=weight_grad)
        torch.sum(g, dim=1, out=bias_grad)
        if layer:
            g = _grad_below(mlp, params, layer, g, h_in, scratch)


def _grad_below(mlp: StackedMLP, params: torch.Tensor, layer: int, g: torch.Tensor,
                h_in: torch.Tensor, scratch: Optional[Scratch]) -> torch.Tensor:
    """``G_{l-1} = (G_l W_l) * relu'(z_{l-1})`` for ``layer`` l >= 1, from ``g = G_l`` and
    the layer's input ``h_in = h_{l-1}``."""
    def take(name: str) -> Optional[torch.Tensor]:
        return None if scratch is None else scratch.take((name, layer), h_in.shape, h_in)

    g = torch.bmm(g, mlp.layer_views(params, layer)[0], out=take("g"))
    # relu'(z_{l-1}) = sign(h_{l-1}), as h_in = relu(z_{l-1}) >= 0
    return g.mul_(torch.sign(h_in, out=take("relu'")))


@torch.no_grad()
def input_grad(mlp: StackedMLP, params: torch.Tensor, inputs: Sequence[torch.Tensor],
               grad_out: torch.Tensor, columns: slice = slice(None),
               scratch: Optional[Scratch] = None) -> torch.Tensor:
    """``dloss/dx[..., columns]`` (``[K, B, len(columns)]``) of the input ``x = h_0`` given
    ``grad_out = dloss/dq`` and the layer ``inputs`` of :func:`forward_keeping_inputs`: the
    ``G_{l-1}`` recursion down to ``dloss/dh_0 = G_1 W_1`` (no ReLU on the input), with no
    parameter gradient computed (the actor loss's path through the critics); ``columns`` picks
    the input entries wanted (the action's), so only ``W_1``'s matching columns multiply."""
    g = grad_out
    for layer in reversed(range(1, mlp.num_layers)):
        g = _grad_below(mlp, params, layer, g, inputs[layer], scratch)
    return torch.bmm(g, mlp.layer_views(params, 0)[0][:, :, columns])


@torch.no_grad()
def huber_td_grad(q: torch.Tensor, actions: torch.Tensor, q_pred: torch.Tensor,
                  td_target: torch.Tensor, beta: float) -> torch.Tensor:
    """``dloss/dq`` (``[K, B, n_actions]``, the shape of ``q``) of every member's Huber TD loss
    ``mean_i smooth_l1(q_pred[k, i] - td_target[k, i], beta)``, where ``q_pred`` (``[K, B]``) is
    ``q`` at ``actions`` (``[K, B]``)."""
    batch = q_pred.shape[1]
    dq = (q_pred - td_target).div_(beta).clamp_(-1.0, 1.0).div_(batch)
    return torch.zeros_like(q).scatter_(2, actions.unsqueeze(2), dq.unsqueeze(2))


@torch.no_grad()
def squared_error_grad(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``dloss/dpred`` of ``loss = mean over the last axis of (pred - target)^2`` (``target``
    broadcast to ``pred``'s shape): ``2 (pred - target) / n``."""
    return (pred - target).mul_(2.0 / pred.shape[-1])


__all__ = ["Scratch", "forward_keeping_inputs", "backward_into", "input_grad", "huber_td_grad",
           "squared_error_grad"]
