"""K ReLU MLPs of one shape with a member axis: ``Linear -> ReLU -> ... -> Linear`` per member,
all parameters in one ``[K, P]`` tensor (row k = member k's weights and biases, layer by layer),
each layer computed for every member at once with ``torch.baddbmm``.

Each layer's ``[K, out, in]`` weights and ``[K, out]`` biases are leaf tensors that are views
of that one tensor, their gradients views of one ``[K, P]`` gradient buffer (autograd accumulates
into an existing ``.grad`` in place): one buffer to zero, one per-member gradient norm and one
Adam update for every member and layer, and no scatter of per-layer gradients. Member k's row can be loaded from (and aliased as) an ordinary
``nn.Sequential`` of ``nn.Linear``/``nn.ReLU``, the network :func:`palr.agents.dqn.build_q_network`
builds, so a member starts from exactly the weights of a separate run with its seed.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

#: (weight columns, bias columns, out_features, in_features) of one layer in a member's row
LayerSpan = Tuple[slice, slice, int, int]
#: every member's row of parameters is padded to a multiple of this many columns
ROW_ALIGN = 64


def _linears(net: nn.Sequential) -> List[nn.Linear]:
    mods = list(net)
    linears = [m for m in mods if isinstance(m, nn.Linear)]
    shape_ok = all(isinstance(m, nn.Linear if i % 2 == 0 else nn.ReLU) for i, m in enumerate(mods))
    if not linears or not shape_ok or len(mods) != 2 * len(linears) - 1 \
            or any(m.bias is None for m in linears):
        raise ValueError("a stacked MLP member must be nn.Sequential(Linear, ReLU, ..., Linear) "
                         "with biases (palr.agents.dqn.build_q_network)")
    return linears


class StackedMLP:
    """K MLPs with layer widths ``sizes`` (input, hidden..., output) and ReLU between layers.

    Attributes:
        params: the ``[K, P]`` tensor holding every member's parameters (written in place only,
            under ``torch.no_grad``: optimizer steps, re-initialisation, loading).
        grad: the ``[K, P]`` gradient buffer of the same layout (zero it before ``backward``).
        weights, biases: per layer, the leaf views of ``params`` that ``forward`` uses.
        spans: per layer, where its weight and bias sit in a row (:data:`LayerSpan`).
    """

    def __init__(self, sizes: Sequence[int], members: int, device: torch.device | str = "cpu"
                 ) -> None:
        self.sizes = tuple(int(s) for s in sizes)
        if len(self.sizes) < 2 or members < 1:
            raise ValueError(f"a stacked MLP needs >= 2 layer sizes and >= 1 member, got "
                             f"{self.sizes} and {members}")
        self.members = int(members)
        self.spans: List[LayerSpan] = []
        offset = 0
        for layer, (fan_in, fan_out) in enumerate(zip(self.sizes[:-1], self.sizes[1:])):
            weight = slice(offset, offset + fan_out * fan_in)
            bias = slice(weight.stop, weight.stop + fan_out)
            self.spans.append((weight, bias, fan_out, fan_in))
            offset = bias.stop + self._columns_after(layer)
        # rows padded to a multiple of ROW_ALIGN columns: vectorised element-wise kernels then
        # treat every member's entries alike (same lanes, same rounding), so members with the
        # same seed stay bit-identical
        self.row_length = -(-offset // ROW_ALIGN) * ROW_ALIGN
        self.params = torch.zeros((self.members, self.row_length), device=device)
        self.grad = torch.zeros_like(self.params)
        self.weights: List[torch.Tensor] = []
        self.biases: List[torch.Tensor] = []
        for layer in range(len(self.spans)):
            for leaves, param, grad in zip((self.weights, self.biases),
                                           self.layer_views(self.params, layer),
                                           self.layer_views(self.grad, layer)):
                param.requires_grad_(True)
                param.grad = grad
                leaves.append(param)
        self._numpy_layers: Optional[List[Tuple[np.ndarray, np.ndarray, np.ndarray]]] = None

    def _columns_after(self, layer: int) -> int:
        """Columns a subclass keeps in every row right after layer ``layer``'s bias, for
        parameters of its own (none here)."""
        return 0

    def leaves(self) -> List[torch.Tensor]:
        """Every leaf tensor :meth:`forward` computes with (a backward's ``inputs``)."""
        return self.weights + self.biases

    @classmethod
    def from_networks(cls, nets: Sequence[nn.Sequential]) -> "StackedMLP":
        """Stack ``nets`` (one per member, same shape) into a new StackedMLP, weights copied."""
        first = _linears(nets[0])
        sizes = [first[0].in_features] + [m.out_features for m in first]
        stacked = cls(sizes, len(nets), first[0].weight.device)
        for k, net in enumerate(nets):
            stacked.load_member(k, net)
        return stacked

    @property
    def num_layers(self) -> int:
        return len(self.spans)

    def layer_columns(self) -> List[int]:
        """Columns of each layer in a row, in order (the padding counted with the last layer)."""
        columns = [bias.stop - weight.start for weight, bias, _, _ in self.spans]
        columns[-1] += self.row_length - self.spans[-1][1].stop
        return columns

    # --- views of a [K, P] tensor (parameters, gradients, Adam moments) ----------------------
    def layer_views(self, flat: torch.Tensor, layer: int) -> Tuple[torch.Tensor, torch.Tensor]:
        """Layer ``layer``'s ``[K, out, in]`` weights and ``[K, out]`` biases as views of a
        ``[K, P]`` tensor laid out like :attr:`params`."""
        weight, bias, fan_out, fan_in = self.spans[layer]
        return flat[:, weight].view(-1, fan_out, fan_in), flat[:, bias]

    def member_views(self, flat: torch.Tensor, member: int) -> List[torch.Tensor]:
        """Member ``member``'s parameter views of a ``[K, P]`` tensor, in the
        ``nn.Sequential.parameters()`` order of :meth:`member_module` (here
        :meth:`linear_views`)."""
        return self.linear_views(flat, member)

    def linear_views(self, flat: torch.Tensor, member: int) -> List[torch.Tensor]:
        """Member ``member``'s per-layer weight ``[out, in]`` and bias ``[out]`` views of a
        ``[K, P]`` tensor, layer by layer."""
        row = flat[member]
        views: List[torch.Tensor] = []
        for weight, bias, fan_out, fan_in in self.spans:
            views += [row[weight].view(fan_out, fan_in), row[bias]]
        return views

    # --- members as ordinary modules ---------------------------------------------------------
    @torch.no_grad()
    def load_member(self, member: int, net: nn.Sequential) -> None:
        """Copy ``net``'s parameters into member ``member``'s row."""
        linears = _linears(net)
        if [linears[0].in_features] + [m.out_features for m in linears] != list(self.sizes):
            raise ValueError(f"network shape differs from the stacked MLP's {self.sizes}")
        for view, p in zip(self.member_views(self.params, member), net.parameters()):
            view.copy_(p)

    def member_module(self, member: int, flat: Optional[torch.Tensor] = None) -> nn.Sequential:
        """Member ``member`` as ``nn.Sequential(Linear, ReLU, ..., Linear)`` whose parameters ALIAS
        its row (writes either way are seen by both; gradients alias its row of :attr:`grad`):
        what probes, measurements and re-initialisation act on. ``flat``: alias that ``[K, P]``
        tensor of the same layout instead (e.g. the target network's), without gradients."""
        mods: List[nn.Module] = []
        trained = flat is None
        grads = self.linear_views(self.grad, member)
        views = self.linear_views(self.params if trained else flat, member)
        for layer in range(self.num_layers):
            _, _, fan_out, fan_in = self.spans[layer]
            linear = nn.utils.skip_init(nn.Linear, fan_in, fan_out, device=self.params.device)
            linear.weight = nn.Parameter(views[2 * layer], requires_grad=trained)
            linear.bias = nn.Parameter(views[2 * layer + 1], requires_grad=trained)
            if trained:
                linear.weight.grad, linear.bias.grad = grads[2 * layer], grads[2 * layer + 1]
            mods.append(linear)
            if layer + 1 < self.num_layers:
                mods.append(nn.ReLU())
        return nn.Sequential(*mods)

    # --- computing ---------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, params: Optional[torch.Tensor] = None,
                operands: Optional[Sequence[Tuple[torch.Tensor, torch.Tensor]]] = None
                ) -> torch.Tensor:
        """``[K, B, in] -> [K, B, out]``: member k's MLP on ``x[k]`` (``params``: another
        ``[K, P]`` tensor of the same layout, e.g. the target network's; default ours;
        ``operands``: :meth:`operands` of such a tensor, made once)."""
        if operands is None:
            operands = self.operands(params) if params is not None else \
                [(b.unsqueeze(1), w.transpose(1, 2)) for w, b in zip(self.weights, self.biases)]
        h = x
        last = self.num_layers - 1
        for layer, (bias, weight_t) in enumerate(operands):
            h = torch.baddbmm(bias, h, weight_t)
            if layer < last:
                h = torch.relu_(h)  # in place: baddbmm's backward needs its inputs, not h
        return h

    def operands(self, flat: torch.Tensor) -> List[Tuple[torch.Tensor, torch.Tensor]]:
        """Per layer, the ``[K, 1, out]`` bias and ``[K, in, out]`` transposed weight views of a
        ``[K, P]`` tensor that :meth:`forward` computes with; they follow in-place writes, so
        a long-lived tensor's (the target network's) can be made once."""
        return [(bias.unsqueeze(1), weight.transpose(1, 2))
                for weight, bias in (self.layer_views(flat, layer)
                                     for layer in range(self.num_layers))]

    __call__ = forward

    def greedy_actions(self, obs: np.ndarray) -> np.ndarray:
        """argmax_a Q_k(obs[k], a) for every member (``obs``: ``[K, in]`` float32; ties: lowest
        index), computed in NumPy on views of the CPU parameters (no autograd per env step)."""
        if self._numpy_layers is None:
            if self.params.device.type != "cpu" or self.params.dtype != torch.float32:
                with torch.no_grad():
                    q = self.forward(torch.as_tensor(obs, dtype=torch.float32,
                                                     device=self.params.device).unsqueeze(1))
                return q.squeeze(1).argmax(dim=1).cpu().numpy()
            flat = self.params.numpy()  # shares memory: in-place updates are seen
            self._numpy_layers = []
            for weight, bias, fan_out, fan_in in self.spans:
                w = flat[:, weight].reshape(self.members, fan_out, fan_in)
                if not np.shares_memory(w, flat):  # pragma: no cover - numpy always views here
                    raise RuntimeError("NumPy copied the stacked weights")
                self._numpy_layers.append(
                    (w, flat[:, bias][:, :, None],
                     np.empty((self.members, fan_out, 1), dtype=np.float32)))
        h = np.asarray(obs, dtype=np.float32).reshape(self.members, -1, 1)
        last = len(self._numpy_layers) - 1
        for layer, (w, b, out) in enumerate(self._numpy_layers):
            np.matmul(w, h, out=out)
            out += b
            if layer < last:
                np.maximum(out, 0.0, out=out)
            h = out
        return h[:, :, 0].argmax(axis=1)


__all__ = ["StackedMLP", "LayerSpan"]
