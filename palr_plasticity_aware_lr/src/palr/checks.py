"""Value checks shared by the configuration dataclasses (interventions, DQN, SAC, DD-PPO) and the
launchers' flags: the one implementation of every range check and of its wording.

Every check raises :class:`SettingError` (a ``ValueError``) whose message names the setting and
its valid range, e.g. ``sigma must be a finite number >= 0, got inf``; it carries the setting's
``name`` and the ``requirement`` so a launcher can name the flag, key or file that set it. NaN and
+-Inf are out of every range: a non-finite setting would otherwise pass ``value <= 0``-style tests
(NaN compares false) and silently poison a run. Torch-free, so launchers check their flags before
importing torch.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any, Sequence

__all__ = ["SettingError", "check_choice", "check_widths", "check_finite", "check_positive",
           "check_at_least", "check_range", "check_positive_int", "check_non_negative_int",
           "check_finite_fields"]


class SettingError(ValueError):
    """``name`` must be ``requirement`` but is ``value``."""

    def __init__(self, name: str, requirement: str, value: Any) -> None:
        super().__init__(f"{name} must be {requirement}, got {value!r}")
        self.name, self.requirement, self.value = name, requirement, value


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_finite(name: str, value: Any) -> None:
    """``value`` must be a finite number."""
    if not _is_number(value) or not math.isfinite(value):
        raise SettingError(name, "a finite number", value)


def check_positive(name: str, value: Any) -> None:
    """``value`` must be a finite number > 0."""
    if not _is_number(value) or not (math.isfinite(value) and value > 0):
        raise SettingError(name, "a finite number > 0", value)


def check_at_least(name: str, value: Any, low: float) -> None:
    """``value`` must be a finite number >= ``low``."""
    if not _is_number(value) or not (math.isfinite(value) and value >= low):
        raise SettingError(name, f"a finite number >= {low:g}", value)


def check_range(name: str, value: Any, low: float, high: float) -> None:
    """``value`` must be a finite number in ``[low, high]``."""
    if not _is_number(value) or not (math.isfinite(value) and low <= value <= high):
        raise SettingError(name, f"a finite number in [{low}, {high}]", value)


def check_positive_int(name: str, value: Any) -> None:
    """``value`` must be an integer > 0 (not a bool, not a float)."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value <= 0:
        raise SettingError(name, "a positive integer", value)


def check_non_negative_int(name: str, value: Any) -> None:
    """``value`` must be an integer >= 0 (not a bool, not a float)."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 0:
        raise SettingError(name, "a non-negative integer", value)


def check_choice(name: str, value: Any, choices: Sequence[Any]) -> None:
    """``value`` must be one of ``choices``."""
    if value not in choices:
        raise SettingError(name, f"one of {', '.join(map(str, choices))}", value)


def check_widths(name: str, value: Any) -> None:
    """``value`` must be a non-empty sequence of positive integers (layer widths, block
    counts)."""
    ok = isinstance(value, (list, tuple)) and len(value) > 0
    if not ok or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and v > 0
                         for v in value):
        raise SettingError(name, "a non-empty list of positive integers", value)


def check_finite_fields(config: Any) -> None:
    """Every float-valued field of the dataclass ``config`` must be finite (the safety net for
    float settings without a range of their own; ``None`` stays allowed where a field is
    optional)."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if isinstance(value, float):
            check_finite(f.name, value)
