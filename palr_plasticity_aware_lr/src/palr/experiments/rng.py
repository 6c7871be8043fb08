"""Capture and restore every global random number generator (torch, NumPy legacy, Python).

The project's own randomness uses explicit seeded generators, but libraries (gymnasium spaces,
Meta-World's legacy ``np.random``) may draw from the global ones; a resumed run restores them so it
ends with the same numbers as an uninterrupted one. Only tensors and plain values are stored, so
checkpoints load with ``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import random
from typing import Any, Dict

import numpy as np
import torch


def capture_global_rng() -> Dict[str, Any]:
    name, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    return {
        "torch": torch.get_rng_state(),
        "numpy": {"name": name, "keys": torch.from_numpy(np.asarray(keys).astype(np.int64)),
                  "pos": int(pos), "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": random.getstate(),
    }


def restore_global_rng(state: Dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np_state = state["numpy"]
    np.random.set_state((np_state["name"], np_state["keys"].numpy().astype(np.uint32),
                         np_state["pos"], np_state["has_gauss"], np_state["cached"]))
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))


def generator_state(rng: np.random.Generator) -> Dict[str, Any]:
    """A NumPy Generator's state as plain values."""
    return rng.bit_generator.state


def set_generator_state(rng: np.random.Generator, state: Dict[str, Any]) -> None:
    rng.bit_generator.state = state
