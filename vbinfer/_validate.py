"""Input checks that run before tracing and raise clear ``ValueError`` messages."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

__all__ = ["check_finite", "check_nonnegative", "check_positive", "is_concrete"]


def is_concrete(x: Any) -> bool:
    """True when ``x`` holds values now (not a tracer inside jit / vmap / grad)."""
    return not isinstance(x, jax.core.Tracer)


def check_finite(name: str, x: Any) -> None:
    """Raise ``ValueError`` if a concrete ``x`` has NaN or infinite entries."""
    if not is_concrete(x):
        return
    arr = np.asarray(x)
    if arr.dtype.kind in "fc" and not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"{name} must be finite, got {bad} non-finite entries")


def check_nonnegative(name: str, x: Any) -> None:
    """Raise ``ValueError`` if a concrete ``x`` has negative entries."""
    if not is_concrete(x):
        return
    arr = np.asarray(x)
    if np.any(arr < 0):
        raise ValueError(f"{name} must be >= 0, got minimum {arr.min()!r}")


def check_positive(name: str, x: Any) -> None:
    """Raise ``ValueError`` if a concrete ``x`` has entries <= 0."""
    if not is_concrete(x):
        return
    arr = np.asarray(x)
    if np.any(arr <= 0):
        raise ValueError(f"{name} must be > 0, got minimum {arr.min()!r}")
