"""Errors the launchers report in one line (``prog: error: ...``) with exit status 2.

Kept free of heavy imports, so the run-identity, lock and file helpers can raise them without
importing torch.
"""
from __future__ import annotations


class UsageError(ValueError):
    """Bad user input, or a state on disk that the user must resolve (another run's settings in
    the output directory, a run in use by another process, a full disk): reported in one line
    that names the fix, exit status 2."""


__all__ = ["UsageError"]
