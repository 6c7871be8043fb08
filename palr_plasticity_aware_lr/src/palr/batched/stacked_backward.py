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

and ``relu'(z) = [z > 0] = [h > 0]`` because ``h = relu(z) >= 0`` (0 at z = 0, as torch's ReLU
backward: the product by ``relu'`` is ``threshold_backward(G, h, 0)``, one pass). So the forward
keeps each layer's input ``h_{l-1}``, and no autograd graph is built.
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


#: activation bytes of one member block (a layer's ``[rows, B, width]``): larger batches are
#: computed a few members at a time, every layer of a block before the next block
BLOCK_BYTES = 2 << 20


def row_blocks(mlp: StackedMLP, x: torch.Tensor) -> List[slice]:
    """The member rows of ``x`` (``[K, B, in]``) in blocks whose widest activation fits
    :data:`BLOCK_BYTES` (at least one row a block; one block for all at SAC's batch 128, and
    on a GPU, where every block would be more kernel launches and caches are not the limit).

    At batch 2048 a layer's activations of 10 critic rows (20 MiB) outgrow the caches, so a
    layer-by-layer pass over all rows reads every activation back from memory; a separate
    run's 2 MiB do not. On the 2-core development machine a 4x256 critic's forward and
    backward of 10 rows at batch 2048 took 334 ms a row at a time against 360-402 ms all rows
    at once (median of 7 rounds; no difference at batch 128)."""
    rows, batch = x.shape[0], x.shape[1]
    if x.device.type != "cpu":
        return [slice(0, rows)]
    per_row = batch * max(mlp.sizes) * x.element_size()
    step = max(1, BLOCK_BYTES // per_row)
    return [slice(start, min(start + step, rows)) for start in range(0, rows, step)]


def _buffer(scratch: Optional[Scratch], name: Hashable, shape: Sequence[int],
            like: torch.Tensor) -> torch.Tensor:
    return like.new_empty(shape) if scratch is None else scratch.take(name, shape, like)


@torch.no_grad()
def forward_keeping_inputs(mlp: StackedMLP, x: torch.Tensor, operands: Operands,
                           scratch: Optional[Scratch] = None
                           ) -> Tuple[torch.Tensor, List[torch.Tensor]]:
    """``[K, B, in] -> [K, B, out]`` as :meth:`StackedMLP.forward` with ``operands`` (views of
    the parameters, :meth:`StackedMLP.operands`), and every layer's input ``h_{l-1}`` for
    :func:`backward_into`; with ``scratch``, the activations and output are its tensors.
    Computed in :func:`row_blocks`."""
    outs = [_buffer(scratch, ("z", layer), (x.shape[0], x.shape[1], weight_t.shape[2]), x)
            for layer, (_, weight_t) in enumerate(operands)]
    last = mlp.num_layers - 1
    for rows in row_blocks(mlp, x):
        h = x[rows]
        for layer, (bias, weight_t) in enumerate(operands):
            h = torch.baddbmm(bias[rows], h, weight_t[rows], out=outs[layer][rows])
            if layer < last:
                h = torch.relu_(h)
    return outs[-1], [x] + outs[:-1]


@torch.no_grad()
def backward_into(mlp: StackedMLP, params: torch.Tensor, inputs: Sequence[torch.Tensor],
                  grad_out: torch.Tensor, grad: torch.Tensor,
                  scratch: Optional[Scratch] = None) -> None:
    """Write ``dloss/dparams`` into ``grad`` (``[K, P]``, the layout of ``params``) given
    ``grad_out = dloss/dq`` (``[K, B, out]``) and the layer ``inputs`` of
    :func:`forward_keeping_inputs`. Every layer's columns are overwritten (not accumulated);
    the row padding is left as it is. ``grad_out`` is not changed; ``scratch`` holds the
    intermediate gradients. Computed in :func:`row_blocks`."""
    below = _GradBelow(mlp, params, inputs, scratch)
    for rows in row_blocks(mlp, inputs[0]):
        g = grad_out[rows]
        for layer in reversed(range(mlp.num_layers)):
            h_in = inputs[layer][rows]
            weight_grad, bias_grad = (view[rows] for view in mlp.layer_views(grad, layer))
            _, _, fan_out, fan_in = mlp.spans[layer]
            if fan_in < fan_out:  # BLAS is slow at products with few columns (4-dim input: 5x)
                weight_grad.copy_(torch.bmm(h_in.transpose(1, 2), g).transpose(1, 2))
            else:
                torch.bmm(g.transpose(1, 2), h_in, out=weight_grad)
            torch.sum(g, dim=1, out=bias_grad)
            if layer:
                g = below(layer, rows, g)


class _GradBelow:
    """``G_{l-1} = (G_l W_l) * relu'(z_{l-1})`` for layer l >= 1 and a block of rows, into
    ``[K, B, width]`` buffers (``scratch``'s, when given) made once per backward pass."""

    def __init__(self, mlp: StackedMLP, params: torch.Tensor, inputs: Sequence[torch.Tensor],
                 scratch: Optional[Scratch]) -> None:
        self.mlp, self.params, self.inputs = mlp, params, inputs
        self.buffers = {layer: _buffer(scratch, ("g", layer), h.shape, h)
                        for layer, h in enumerate(inputs) if layer}

    def __call__(self, layer: int, rows: slice, g: torch.Tensor) -> torch.Tensor:
        weight = self.mlp.layer_views(self.params, layer)[0][rows]
        g = torch.bmm(g, weight, out=self.buffers[layer][rows])
        # relu'(z_{l-1}) = [h_{l-1} > 0], as h_{l-1} = relu(z_{l-1}) >= 0: ReLU's own backward,
        # in place
        return torch.ops.aten.threshold_backward.grad_input(g, self.inputs[layer][rows], 0.0,
                                                            grad_input=g)


@torch.no_grad()
def input_grad(mlp: StackedMLP, params: torch.Tensor, inputs: Sequence[torch.Tensor],
               grad_out: torch.Tensor, columns: slice = slice(None),
               scratch: Optional[Scratch] = None) -> torch.Tensor:
    """``dloss/dx[..., columns]`` (``[K, B, len(columns)]``) of the input ``x = h_0`` given
    ``grad_out = dloss/dq`` and the layer ``inputs`` of :func:`forward_keeping_inputs`: the
    ``G_{l-1}`` recursion down to ``dloss/dh_0 = G_1 W_1`` (no ReLU on the input), with no
    parameter gradient computed (the actor loss's path through the critics); ``columns`` picks
    the input entries wanted (the action's), so only ``W_1``'s matching columns multiply.
    Computed in :func:`row_blocks`."""
    below = _GradBelow(mlp, params, inputs, scratch)
    first = mlp.layer_views(params, 0)[0][:, :, columns]
    out = inputs[0].new_empty(inputs[0].shape[:2] + first.shape[2:])
    for rows in row_blocks(mlp, inputs[0]):
        g = grad_out[rows]
        for layer in reversed(range(1, mlp.num_layers)):
            g = below(layer, rows, g)
        torch.bmm(g, first[rows], out=out[rows])
    return out


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


__all__ = ["BLOCK_BYTES", "Scratch", "row_blocks", "forward_keeping_inputs", "backward_into",
           "input_grad", "huber_td_grad", "squared_error_grad"]
