"""Replay buffer: the original ``replay_buffer.py`` entry point.

Thin re-export of :mod:`palr.agents.replay` (NumPy ring buffer, uniform sampling).
"""
from __future__ import annotations

from palr.agents.replay import ReplayBuffer  # noqa: F401

__all__ = ["ReplayBuffer"]
