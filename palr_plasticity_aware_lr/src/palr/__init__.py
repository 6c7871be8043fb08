"""PALR: plasticity-aware per-layer learning rates and targeted unit re-initialisation.

``palr.attach`` puts PALR (or any intervention of the agent table) on your own network and
optimizer (:mod:`palr.library`); ``palr.layerwise_optimizer`` builds an optimizer with one param
group per layer. Both are imported on first use, so ``import palr`` (and the torch-free
:mod:`palr.intervention_configs`) stays free of torch.
"""
from typing import Any

_LIBRARY = ("attach", "attach_networks", "PlasticityHandle", "layerwise_optimizer")


def __getattr__(name: str) -> Any:
    if name in _LIBRARY:
        from palr import library
        return getattr(library, name)
    raise AttributeError(f"module 'palr' has no attribute {name!r}")


def __dir__() -> Any:
    return sorted(list(globals()) + list(_LIBRARY))


__all__ = list(_LIBRARY)
