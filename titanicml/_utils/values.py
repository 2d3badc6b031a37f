"""Type checks of plain values read from users: YAML, JSON, keyword arguments."""

from __future__ import annotations

import math

__all__ = ["is_int", "is_number"]


def is_int(value: object) -> bool:
    """Tell whether ``value`` is an integer (``True`` and ``False`` are not)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    """Tell whether ``value`` is a finite int or float (booleans are not numbers)."""
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and not (isinstance(value, float) and not math.isfinite(value))
    )
