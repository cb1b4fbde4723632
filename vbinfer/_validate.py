"""Input checks that run before tracing and raise clear ``ValueError`` messages."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

__all__ = ["check_finite", "check_shape", "is_concrete"]


def is_concrete(x: Any) -> bool:
    """True when ``x`` holds values now (not a tracer inside jit / vmap / grad)."""
    return not isinstance(x, jax.core.Tracer)


def check_shape(name: str, x: Any, expected: tuple[int | None, ...], what: str = "") -> None:
    """Raise ``ValueError`` unless ``x.shape`` matches ``expected`` (``None`` = any size)."""
    shape = tuple(np.shape(x))
    ok = len(shape) == len(expected) and all(
        e is None or e == s for e, s in zip(expected, shape, strict=True)
    )
    if not ok:
        exp = "(" + ", ".join("*" if e is None else str(e) for e in expected) + ")"
        extra = f" ({what})" if what else ""
        raise ValueError(f"{name} must have shape {exp}{extra}, got shape {shape}")


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


def check_params_finite(params: Any, name: str = "params") -> None:
    """Raise ``ValueError`` naming the field if a concrete NamedTuple parameter is not finite."""
    for field, value in zip(params._fields, params, strict=True):
        if callable(value) or value is None:
            continue
        if isinstance(value, tuple) and hasattr(value, "_fields"):
            check_params_finite(value, f"{name}.{field}")
            continue
        check_finite(f"{name}.{field}", value)
