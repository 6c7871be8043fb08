"""Optimizer construction with one param group per layer, so learning rates can differ per layer.

PALR's scale is a per-layer LEARNING RATE applied through these groups, never a gradient
multiplier: Adam is invariant to gradient scale (DESIGN.md section 2).
"""
from __future__ import annotations

from typing import Any, Dict, List

from torch import nn


def layerwise_param_groups(module: nn.Module) -> List[Dict[str, Any]]:
    """One param group per module that owns parameters directly, keyed by its qualified name.

    Every trainable parameter appears in exactly one group; the group's ``"name"`` is the module
    path (``"0"``, ``"encoder.conv1"``, ...), which is also the probe layer name of the layer it
    produces. Pass the result to any ``torch.optim`` optimizer with a default ``lr``.
    """
    groups: List[Dict[str, Any]] = []
    for name, sub in module.named_modules():
        params = [p for p in sub.parameters(recurse=False) if p.requires_grad]
        if params:
            groups.append({"params": params, "name": name or "<root>"})
    if not groups:
        raise ValueError(f"{type(module).__name__} has no trainable parameters")
    return groups


def reset_optimizer_state(optimizer: Any) -> None:
    """Forget every moment estimate and step count (used by full resets)."""
    optimizer.state.clear()
