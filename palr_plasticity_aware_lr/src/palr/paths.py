"""Where the original launchers' default outputs live, whatever the working directory.

The original README runs its launchers both from the project root and from ``palr_plasticity_aware_lr/src``;
defaults are anchored to the ``palr_plasticity_aware_lr`` tree of this checkout (editable install),
falling back to ``./palr_plasticity_aware_lr`` for a non-editable install.
"""
from __future__ import annotations

import pathlib

_PACKAGE_DIR = pathlib.Path(__file__).resolve().parent


def tree_root() -> pathlib.Path:
    """The ``palr_plasticity_aware_lr`` directory."""
    candidate = _PACKAGE_DIR.parent.parent
    if candidate.name == "palr_plasticity_aware_lr":
        return candidate
    return pathlib.Path.cwd() / "palr_plasticity_aware_lr"


def results_dir() -> pathlib.Path:
    return tree_root() / "results"


def plots_dir() -> pathlib.Path:
    return tree_root() / "plots"
