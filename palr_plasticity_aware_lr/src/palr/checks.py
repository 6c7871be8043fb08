"""Value checks shared by the configuration dataclasses (interventions, DQN, SAC).

Every check raises ``ValueError`` whose message names the setting and its valid range, e.g.
``sigma must be a finite number >= 0, got inf``. NaN and +-Inf are out of every range: a
non-finite setting would otherwise pass ``value <= 0``-style tests (NaN compares false) and
silently poison a run. Torch-free, so launchers check their flags before importing torch.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any

__all__ = ["check_finite", "check_positive", "check_at_least", "check_range",
           "check_positive_int", "check_non_negative_int", "check_finite_fields"]


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_finite(name: str, value: Any) -> None:
    """``value`` must be a finite number."""
    if not _is_number(value) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")


def check_positive(name: str, value: Any) -> None:
    """``value`` must be a finite number > 0."""
    if not _is_number(value) or not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


def check_at_least(name: str, value: Any, low: float) -> None:
    """``value`` must be a finite number >= ``low``."""
    if not _is_number(value) or not (math.isfinite(value) and value >= low):
        raise ValueError(f"{name} must be a finite number >= {low:g}, got {value!r}")


def check_range(name: str, value: Any, low: float, high: float) -> None:
    """``value`` must be a finite number in ``[low, high]``."""
    if not _is_number(value) or not (math.isfinite(value) and low <= value <= high):
        raise ValueError(f"{name} must be a finite number in [{low}, {high}], got {value!r}")


def check_positive_int(name: str, value: Any) -> None:
    """``value`` must be an integer > 0 (not a bool, not a float)."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def check_non_negative_int(name: str, value: Any) -> None:
    """``value`` must be an integer >= 0 (not a bool, not a float)."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")


def check_finite_fields(config: Any) -> None:
    """Every float-valued field of the dataclass ``config`` must be finite (the safety net for
    float settings without a range of their own; ``None`` stays allowed where a field is
    optional)."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if isinstance(value, float):
            check_finite(f.name, value)
