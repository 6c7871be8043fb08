"""K of Continual World's SAC networks (Wolczyk et al. 2021; awarelab/continual_world
``models.py``, ``mlp`` with ``use_layer_norm=True``) with a member axis: ``Linear -> LayerNorm ->
Tanh``, then ``[Linear -> LeakyReLU] x (n - 1)``, then ``Linear``, the network
:func:`palr.agents.sac.mlp` builds with ``network="cw"``.

A :class:`~palr.batched.stacked_mlp.StackedMLP` whose rows also hold each member's LayerNorm
weight and bias, right after the first layer's bias (in ``nn.Sequential.parameters()`` order, so
the LayerNorm is its own column block of :meth:`StackedCWMLP.layer_columns`, as it is its own
param group in a separate run's optimizer). The Linear layers are computed by the base class's
``baddbmm`` operands; only the activations differ.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from palr.batched.stacked_mlp import StackedMLP


def _cw_linears(net: nn.Sequential) -> Tuple[List[nn.Linear], float]:
    """The Linear layers of a ``network="cw"`` MLP and its LeakyReLU slope (ValueError if
    ``net`` is not one)."""
    mods = list(net)
    linears = [m for m in mods if isinstance(m, nn.Linear)]
    leaky = [m for m in mods if isinstance(m, nn.LeakyReLU)]
    expected = [nn.Linear, nn.LayerNorm, nn.Tanh] + \
        [nn.Linear, nn.LeakyReLU] * (len(linears) - 2) + [nn.Linear]
    if len(linears) < 2 or [type(m) for m in mods] != expected:
        raise ValueError("a stacked cw MLP member must be Linear, LayerNorm, Tanh, "
                         "[Linear, LeakyReLU] ..., Linear (palr.agents.sac.mlp, network='cw')")
    slopes = {m.negative_slope for m in leaky}
    if len(slopes) > 1:
        raise ValueError(f"a cw MLP has one LeakyReLU slope, got {sorted(slopes)}")
    return linears, slopes.pop() if slopes else 0.2


class StackedCWMLP(StackedMLP):
    """K cw MLPs with layer widths ``sizes`` (input, hidden..., output), LeakyReLU slope
    ``leaky_slope``.

    Attributes (besides :class:`StackedMLP`'s):
        norm_weight, norm_bias: the ``[K, hidden]`` LayerNorm leaves, views of :attr:`params`
            (their gradients views of :attr:`grad`).
    """

    def __init__(self, sizes: Sequence[int], members: int, device: torch.device | str = "cpu",
                 leaky_slope: float = 0.2) -> None:
        self.norm_width = int(sizes[1])
        self.leaky_slope = float(leaky_slope)
        super().__init__(sizes, members, device)
        if self.num_layers < 2:
            raise ValueError(f"a cw MLP has at least one hidden layer, got sizes {self.sizes}")
        self.norm_weight, self.norm_bias = self.norm_views(self.params)
        for leaf, grad in zip((self.norm_weight, self.norm_bias), self.norm_views(self.grad)):
            leaf.requires_grad_(True)
            leaf.grad = grad

    def _columns_after(self, layer: int) -> int:
        return 2 * self.norm_width if layer == 0 else 0

    def norm_views(self, flat: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """The LayerNorm's ``[K, hidden]`` weight and bias views of a ``[K, P]`` tensor laid out
        like :attr:`params`."""
        start = self.spans[0][1].stop
        return (flat[:, start:start + self.norm_width],
                flat[:, start + self.norm_width:start + 2 * self.norm_width])

    def leaves(self) -> List[torch.Tensor]:
        return super().leaves() + [self.norm_weight, self.norm_bias]

    @classmethod
    def from_networks(cls, nets: Sequence[nn.Sequential]) -> "StackedCWMLP":
        """Stack ``nets`` (``network="cw"`` MLPs of one shape, one per member), weights
        copied."""
        linears, slope = _cw_linears(nets[0])
        sizes = [linears[0].in_features] + [m.out_features for m in linears]
        stacked = cls(sizes, len(nets), linears[0].weight.device, slope)
        for k, net in enumerate(nets):
            stacked.load_member(k, net)
        return stacked

    def layer_columns(self) -> List[int]:
        """Columns of each parameterised layer in a row, in order: the first Linear, the
        LayerNorm, the other Linears (the padding counted with the last)."""
        columns = super().layer_columns()
        return columns[:1] + [2 * self.norm_width] + columns[1:]

    def member_views(self, flat: torch.Tensor, member: int) -> List[torch.Tensor]:
        views = super().member_views(flat, member)
        weight, bias = self.norm_views(flat)
        return views[:2] + [weight[member], bias[member]] + views[2:]

    @torch.no_grad()
    def load_member(self, member: int, net: nn.Sequential) -> None:
        linears, _ = _cw_linears(net)
        if [linears[0].in_features] + [m.out_features for m in linears] != list(self.sizes):
            raise ValueError(f"network shape differs from the stacked MLP's {self.sizes}")
        for view, p in zip(self.member_views(self.params, member), net.parameters()):
            view.copy_(p)

    def member_module(self, member: int, flat: Optional[torch.Tensor] = None) -> nn.Sequential:
        """Member ``member`` as the ``network="cw"`` ``nn.Sequential`` whose parameters ALIAS
        its row (see :meth:`StackedMLP.member_module`)."""
        relu_mlp = list(super().member_module(member, flat))
        trained = flat is None
        weight, bias = self.norm_views(self.params if trained else flat)
        norm = nn.LayerNorm(self.norm_width, device=self.params.device)
        norm.weight = nn.Parameter(weight[member], requires_grad=trained)
        norm.bias = nn.Parameter(bias[member], requires_grad=trained)
        if trained:
            grad_weight, grad_bias = self.norm_views(self.grad)
            norm.weight.grad, norm.bias.grad = grad_weight[member], grad_bias[member]
        linears = relu_mlp[::2]
        mods: List[nn.Module] = [linears[0], norm, nn.Tanh()]
        for linear in linears[1:-1]:
            mods += [linear, nn.LeakyReLU(self.leaky_slope, inplace=True)]
        return nn.Sequential(*mods, linears[-1])

    def forward(self, x: torch.Tensor, params: Optional[torch.Tensor] = None,
                operands: Optional[Sequence[Tuple[torch.Tensor, torch.Tensor]]] = None
                ) -> torch.Tensor:
        """``[K, B, in] -> [K, B, out]``: member k's cw MLP on ``x[k]`` (``params``/``operands``
        as :meth:`StackedMLP.forward`'s)."""
        if operands is None:
            operands = self.operands(params) if params is not None else \
                [(b.unsqueeze(1), w.transpose(1, 2)) for w, b in zip(self.weights, self.biases)]
        weight, bias = (self.norm_weight, self.norm_bias) if params is None else \
            self.norm_views(params)
        (first_bias, first_weight_t), *rest = operands
        h = torch.baddbmm(first_bias, x, first_weight_t)
        h = nn.functional.layer_norm(h, (self.norm_width,))
        h = torch.tanh(torch.addcmul(bias.unsqueeze(1), h, weight.unsqueeze(1)))
        for layer, (layer_bias, weight_t) in enumerate(rest, start=2):
            h = torch.baddbmm(layer_bias, h, weight_t)
            if layer < self.num_layers:
                h = nn.functional.leaky_relu(h, self.leaky_slope)
        return h

    __call__ = forward

    def greedy_actions(self, obs: np.ndarray) -> np.ndarray:
        """Not for cw MLPs: :meth:`StackedMLP.greedy_actions` computes ReLU Q-networks only."""
        raise NotImplementedError("greedy actions are computed by ReLU Q-networks (StackedMLP)")


__all__ = ["StackedCWMLP"]
