"""Crash-safe checkpoints (DESIGN.md section 6).

A checkpoint is written to a temporary file in the same directory, fsynced, then renamed over the
target, so a kill at any instant leaves either the old or the new file, never a torn one. The
previous checkpoint is kept as ``<name>.prev``; a corrupt or truncated latest file is reported and
the previous one is used. Loading uses ``torch.load(weights_only=True)``: checkpoints hold only
tensors and plain Python containers/numbers/strings.
"""
from __future__ import annotations

import io
import os
import pathlib
import sys
from typing import Any, Dict, Optional

import torch

from palr.experiments.files import PathLike, atomic_write_bytes

__all__ = ["save_checkpoint", "load_checkpoint"]


def save_checkpoint(path: PathLike, state: Dict[str, Any]) -> None:
    """Save ``state`` atomically, keeping the previous checkpoint as ``<path>.prev``."""
    path = pathlib.Path(path)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    if path.exists():
        os.replace(path, path.with_name(path.name + ".prev"))
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: PathLike) -> Optional[Dict[str, Any]]:
    """The latest readable checkpoint at ``path`` (falling back to ``<path>.prev``), or None."""
    path = pathlib.Path(path)
    for candidate in (path, path.with_name(path.name + ".prev")):
        if not candidate.exists():
            continue
        try:
            return torch.load(candidate, map_location="cpu", weights_only=True)
        except Exception as err:  # truncated/corrupt file: report, try the previous one
            print(f"[checkpoint] {candidate} is unreadable ({type(err).__name__}: {err}); "
                  "trying the previous checkpoint", file=sys.stderr)
    return None
