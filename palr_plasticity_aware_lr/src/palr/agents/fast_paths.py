"""CPU speed paths of the agents: each does exactly what the plain torch code beside it in the
agents would do, with less per-call overhead (figures: ``benchmarks/bench_dqn.py``,
``benchmarks/profile_loops.py``). The optimizer step itself is :func:`palr.optim.step_adam`.

- :func:`make_adam`: torch's fused Adam kernel where the build has one (same update rule as
  ``torch.optim.Adam``; 2-3x faster step on CPU with one param group per layer);
- :class:`FlatGradients`: gradients kept in one flat buffer, so zeroing and global-norm clipping
  are one op each and clipping needs no host sync; must equal ``optimizer.zero_grad()`` +
  ``torch.nn.utils.clip_grad_norm_``;
- :class:`NumpyGreedy`: the greedy action of a CPU ``Linear``/``ReLU`` MLP computed in NumPy on
  views of its weights (no tensor allocation, autograd or dispatcher overhead per env step);
  must equal ``q(obs).argmax()``.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torch import nn


def make_adam(params: Any, lr: float, fused: bool, eps: float = 1e-8) -> torch.optim.Adam:
    """``torch.optim.Adam(params, lr, eps)``, with ``fused=True`` if asked and this torch and
    device have the kernel (torch >= 2.4 on CPU); otherwise the default implementation."""
    if fused:
        try:
            return torch.optim.Adam(params, lr=lr, eps=eps, fused=True)
        except (RuntimeError, TypeError, ValueError):
            pass  # no fused kernel here: fall back to the default implementation
    return torch.optim.Adam(params, lr=lr, eps=eps)


class FlatGradients:
    """Gradients of a set of parameters kept as views into one flat buffer.

    ``prepare()`` zeroes the buffer and points every parameter's ``.grad`` at its view, so the
    next ``backward()`` accumulates into the buffer (autograd adds in place into an existing
    ``.grad``); ``clip(max_norm)`` then costs one norm and one multiply, with no host sync, and is
    exactly ``torch.nn.utils.clip_grad_norm_`` (same coefficient, ``max_norm / (norm + 1e-6)``
    clamped to 1).
    """

    def __init__(self, params: Sequence[torch.Tensor]) -> None:
        self.params = list(params)
        if not self.params:
            raise ValueError("FlatGradients needs at least one parameter")
        total = sum(p.numel() for p in self.params)
        first = self.params[0]
        self.buffer = torch.zeros(total, dtype=first.dtype, device=first.device)
        self.views = []
        offset = 0
        for p in self.params:
            self.views.append(self.buffer[offset:offset + p.numel()].view_as(p))
            offset += p.numel()

    def prepare(self) -> None:
        """``optimizer.zero_grad()`` into the flat buffer."""
        self.buffer.zero_()
        for p, view in zip(self.params, self.views):
            p.grad = view

    def clip(self, max_norm: float) -> torch.Tensor:
        """Scale the gradients to global L2 norm <= ``max_norm``; returns the norm before."""
        total = torch.linalg.vector_norm(self.buffer)
        self.buffer.mul_((max_norm / (total + 1e-6)).clamp_(max=1.0))
        return total


class NumpyGreedy:
    """Greedy action of a ``Linear``/``ReLU`` ``nn.Sequential`` computed in NumPy on views of its
    CPU parameters (no tensor allocation, no autograd or dispatcher overhead per step).

    The views share memory with the parameters, so in-place updates (optimizer steps, unit
    re-initialisation, ``load_state_dict``) are seen at once; if a parameter's storage is
    replaced, the views are rebuilt. :meth:`supports` says whether a network qualifies.
    """

    def __init__(self, net: nn.Sequential) -> None:
        if not self.supports(net):
            raise ValueError("NumpyGreedy needs a CPU nn.Sequential of nn.Linear and nn.ReLU")
        self.net = net
        self._build()

    @staticmethod
    def supports(net: nn.Module) -> bool:
        if not isinstance(net, nn.Sequential) or len(net) == 0:
            return False
        mods = list(net)
        if not isinstance(mods[-1], nn.Linear):
            return False
        for m in mods:
            if isinstance(m, nn.Linear):
                if m.weight.device.type != "cpu" or m.weight.dtype != torch.float32:
                    return False
            elif not isinstance(m, nn.ReLU):
                return False
        return True

    def _build(self) -> None:
        self.layers = []
        self.checks = []  # (parameter dict, key, data pointer the views were made from)
        mods = list(self.net)
        for i, m in enumerate(mods):
            if isinstance(m, nn.Linear):
                relu = i + 1 < len(mods) and isinstance(mods[i + 1], nn.ReLU)
                bias = None if m.bias is None else m.bias.detach().numpy()
                out = np.empty(m.out_features, dtype=np.float32)
                self.layers.append((m.weight.detach().numpy(), bias, out, relu))
                for key in ("weight", "bias"):
                    if m._parameters.get(key) is not None:
                        self.checks.append((m._parameters, key, m._parameters[key].data_ptr()))

    def __call__(self, obs: np.ndarray) -> int:
        for params, key, ptr in self.checks:
            if params[key].data_ptr() != ptr:  # a parameter (or its storage) was replaced
                self._build()
                break
        h = obs
        for weight, bias, out, relu in self.layers:
            np.dot(weight, h, out=out)
            if bias is not None:
                out += bias
            if relu:
                np.maximum(out, 0.0, out=out)
            h = out
        return int(h.argmax())


__all__ = ["make_adam", "FlatGradients", "NumpyGreedy"]
