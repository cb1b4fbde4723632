"""Constrained parameters for gradient fits: names for numpyro's constraints and bijections.

A fit moves in unconstrained coordinates ``u`` in R^d and maps them to the parameter's support
with numpyro's :func:`~numpyro.distributions.transforms.biject_to`:

- ``"real"``: the identity.
- ``"positive"``: ``exp(u)`` (multiplicative steps; the natural choice for connectome weights,
  which span several decades).
- ``"softplus"``: ``log(1 + exp(u))`` (additive far from 0).
- ``bounded(lower, upper)``: ``lower + (upper - lower) * sigmoid(u)``.

Specifications are given as a numpyro constraint, one of the names above, or a
``(lower, upper)`` pair; :func:`as_constraint` checks them (inverted bounds are an error) before
anything is traced.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpyro.distributions import constraints
from numpyro.distributions.transforms import Transform, biject_to

from vbinfer._typing import Array, ArrayLike

__all__ = [
    "TRANSFORM_NAMES",
    "as_constraint",
    "bounded",
    "make_transform",
    "positive",
    "real",
    "to_unconstrained",
]

TRANSFORM_NAMES = ("real", "positive", "softplus", "unit")
"""Names accepted by :func:`as_constraint` (``"unit"`` is ``bounded(0, 1)``)."""


def real() -> constraints.Constraint:
    """The real line (identity transform).

    Examples
    --------
    >>> make_transform(real())(2.0)
    2.0
    """
    return constraints.real


def positive(kind: str = "exp") -> constraints.Constraint:
    """Positive values: ``kind="exp"`` (``exp(u)``) or ``"softplus"`` (``log(1 + exp(u))``).

    Examples
    --------
    >>> round(float(make_transform(positive())(0.0)), 6)
    1.0
    """
    if kind == "exp":
        return constraints.positive
    if kind == "softplus":
        return constraints.softplus_positive
    raise ValueError(f"kind must be 'exp' or 'softplus', got {kind!r}")


def bounded(lower: ArrayLike, upper: ArrayLike, *, name: str = "bounds") -> constraints.Constraint:
    """Values in the open interval ``(lower, upper)`` through a sigmoid.

    Parameters
    ----------
    lower, upper:
        Finite bounds, scalars or arrays that broadcast against the parameter (e.g. per
        region); every ``lower`` must be below its ``upper``.
    name:
        What the bounds belong to, for error messages.

    Examples
    --------
    >>> float(make_transform(bounded(-2.0, 4.0))(0.0))
    1.0
    """
    lo = np.asarray(lower, dtype=float)
    hi = np.asarray(upper, dtype=float)
    try:
        np.broadcast_shapes(lo.shape, hi.shape)
    except ValueError:
        raise ValueError(
            f"{name}: lower and upper must broadcast, got shapes {lo.shape} and {hi.shape}"
        ) from None
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
        raise ValueError(
            f"{name}: bounds must be finite (use 'positive' or 'real' for half or no bounds), "
            f"got lower={lower!r}, upper={upper!r}"
        )
    if not np.all(lo < hi):
        raise ValueError(
            f"{name}: expected lower < upper, got lower={lower!r} >= upper={upper!r}"
            if lo.ndim == 0 and hi.ndim == 0
            else f"{name}: expected lower < upper everywhere, got lower >= upper at "
            f"{int(np.sum(~(lo < hi)))} entries"
        )
    return constraints.interval(lo if lo.ndim else float(lo), hi if hi.ndim else float(hi))


def as_constraint(spec: Any, name: str = "transform") -> constraints.Constraint:
    """A numpyro constraint from a specification.

    Parameters
    ----------
    spec:
        A numpyro ``Constraint``, one of :data:`TRANSFORM_NAMES`, or a ``(lower, upper)`` pair.
    name:
        Argument name used in error messages (e.g. ``"transforms['model.eta']"``).

    Examples
    --------
    >>> as_constraint((0.0, 2.0))
    Interval(lower_bound=0.0, upper_bound=2.0)
    """
    if isinstance(spec, constraints.Constraint):
        try:
            biject_to(spec)
        except NotImplementedError:
            raise ValueError(f"{name}: numpyro has no bijection onto {spec}") from None
        return spec
    if isinstance(spec, str):
        if spec == "real":
            return real()
        if spec == "positive":
            return positive("exp")
        if spec == "softplus":
            return positive("softplus")
        if spec == "unit":
            return bounded(0.0, 1.0, name=name)
        raise ValueError(f"{name} must be one of {TRANSFORM_NAMES} or (lower, upper), got {spec!r}")
    if isinstance(spec, tuple | list) and len(spec) == 2:
        return bounded(spec[0], spec[1], name=name)
    raise ValueError(
        f"{name} must be a numpyro constraint, one of {TRANSFORM_NAMES} or a (lower, upper) "
        f"pair, got {spec!r}"
    )


def make_transform(spec: Any, name: str = "transform") -> Transform:
    """The bijection from the real line onto the support named by ``spec``.

    Examples
    --------
    >>> t = make_transform("positive")
    >>> round(float(t.inv(t(0.5))), 6)
    0.5
    """
    return biject_to(as_constraint(spec, name))


def to_unconstrained(spec: Any, value: ArrayLike, name: str = "value") -> Array:
    """Map a concrete ``value`` to the unconstrained coordinates of ``spec``.

    Raises ``ValueError`` if ``value`` lies outside the support or on its boundary (where the
    unconstrained coordinate would be infinite).

    Examples
    --------
    >>> float(to_unconstrained("positive", 1.0))
    0.0
    """
    t = make_transform(spec, name)
    v = np.asarray(value, dtype=float)
    u = np.asarray(t.inv(v))
    if not np.all(np.isfinite(u)):
        bad = v[~np.isfinite(np.broadcast_to(u, v.shape))] if v.ndim else v
        raise ValueError(
            f"{name} must lie inside the support {as_constraint(spec, name)} of its transform, "
            f"got {np.ravel(bad)[:4].tolist()}"
        )
    return u
