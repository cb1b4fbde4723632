"""Long-range coupling functions.

A network sends the coupled state variables of every node through the connectome. vbinfer
splits a coupling function, as TVB does, into a node-local ``pre`` applied to the sending node
and a ``post`` applied to the summed input of the receiving node:

.. math::

    c_i(t) = \\mathrm{post}\\Big(\\sum_j W_{ij}\\, \\mathrm{pre}(x_j(t - d_{ij})),\\ x_i(t)\\Big)

``pre`` depends only on the sender, so the history buffer stores ``pre(x)`` instead of the raw
state: one gather per edge and step, and sigmoidal couplings cost no more than linear ones.
The diffusive (difference) coupling ``sum_j W_ij (x_j(t - d_ij) - x_i(t))`` fits this form
through the row sums of ``W`` (``post`` receives them).

Every coupling is a :class:`Coupling` of pure functions plus a parameter NamedTuple, so the
global coupling strength is an ordinary (vmappable, differentiable) parameter.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax.numpy as jnp

from vbinfer._typing import Array, ArrayLike

__all__ = [
    "Coupling",
    "DifferenceParams",
    "KuramotoParams",
    "LinearParams",
    "SigmoidalJansenRitParams",
    "difference",
    "kuramoto",
    "linear",
    "sigmoidal_jansen_rit",
]


class Coupling(NamedTuple):
    """A separable coupling function.

    Attributes
    ----------
    name:
        Identifier.
    params_cls:
        NamedTuple of parameters with defaults.
    pre:
        ``pre(xc, params) -> h``: ``xc`` is ``(n_cvar, n_nodes, *batch)`` (the coupled state
        variables of the senders), ``h`` is ``(n_pre, n_nodes, *batch)``; this is what the
        history buffer stores.
    post:
        ``post(summed, xc, row_sums, params) -> c``: ``summed`` is ``sum_j W_ij h_j`` shaped
        ``(n_pre, n_nodes, *batch)``, ``xc`` the receivers' own coupled variables at the current
        time, ``row_sums`` the row sums of ``W`` shaped ``(n_nodes, *batch)`` or broadcastable.
        Returns the coupling input of the model, ``(n_coupling, n_nodes, *batch)``.
    n_pre:
        ``n_pre(n_cvar) -> int``: number of rows ``pre`` produces for ``n_cvar`` coupled variables.
    n_out:
        ``n_out(n_cvar) -> int``: number of coupling inputs ``post`` returns to the model.
    """

    name: str
    params_cls: type
    pre: Callable[[Array, Any], Array]
    post: Callable[[Array, Array, Array, Any], Array]
    n_pre: Callable[[int], int]
    n_out: Callable[[int], int]


class LinearParams(NamedTuple):
    """Linear coupling ``c = a * sum_j W_ij x_j + b`` (TVB ``Linear``).

    Attributes
    ----------
    a: global coupling strength (0.00390625 in TVB; vbinfer default 0.01).
    b: offset (0.0).
    """

    a: ArrayLike = 0.01
    b: ArrayLike = 0.0


def _identity_pre(xc: Array, params: Any) -> Array:
    return xc


def _linear_post(summed: Array, xc: Array, row_sums: Array, params: LinearParams) -> Array:
    return params.a * summed + params.b


linear = Coupling("linear", LinearParams, _identity_pre, _linear_post, lambda n: n, lambda n: n)
"""Linear coupling: ``c_i = a * sum_j W_ij x_j(t - d_ij) + b``."""


class DifferenceParams(NamedTuple):
    """Diffusive coupling ``c = a * sum_j W_ij (x_j - x_i)`` (TVB ``Difference``).

    Attributes
    ----------
    a: global coupling strength (0.1).
    """

    a: ArrayLike = 0.1


def _difference_post(summed: Array, xc: Array, row_sums: Array, params: DifferenceParams) -> Array:
    return params.a * (summed - row_sums * xc)


difference = Coupling(
    "difference", DifferenceParams, _identity_pre, _difference_post, lambda n: n, lambda n: n
)
"""Difference coupling: ``c_i = a * sum_j W_ij (x_j(t - d_ij) - x_i(t))``."""


class SigmoidalJansenRitParams(NamedTuple):
    """Sigmoidal coupling of Jansen-Rit columns (TVB ``SigmoidalJansenRit``).

    The sender's pyramidal potential ``y1 - y2`` (mV) passes a sigmoid of firing rate:
    ``pre = cmin + (cmax - cmin) / (1 + exp(r * (midpoint - (y1 - y2))))``; ``c = a * sum``.

    Attributes
    ----------
    a: global coupling strength (1.0).
    cmin: minimum of the sigmoid, ms^-1 (0.0).
    cmax: maximum of the sigmoid, ms^-1 (2 * 0.0025 = 0.005, i.e. 2 e0).
    midpoint: potential at half maximum, mV (6.0, the 1995 paper's v0).
    r: steepness, mV^-1 (0.56).
    """

    a: ArrayLike = 1.0
    cmin: ArrayLike = 0.0
    cmax: ArrayLike = 0.005
    midpoint: ArrayLike = 6.0
    r: ArrayLike = 0.56


def _sjr_pre(xc: Array, params: SigmoidalJansenRitParams) -> Array:
    p = params
    v = xc[0] - xc[1]
    return (p.cmin + (p.cmax - p.cmin) / (1.0 + jnp.exp(p.r * (p.midpoint - v))))[None]


def _sjr_post(summed: Array, xc: Array, row_sums: Array, params: SigmoidalJansenRitParams) -> Array:
    return params.a * summed


sigmoidal_jansen_rit = Coupling(
    "sigmoidal_jansen_rit", SigmoidalJansenRitParams, _sjr_pre, _sjr_post, lambda n: 1, lambda n: 1
)
"""Sigmoidal Jansen-Rit coupling; the coupled variables must be ``(y1, y2)``."""


class KuramotoParams(NamedTuple):
    """Kuramoto coupling ``c_i = a * sum_j W_ij sin(theta_j(t - d_ij) - theta_i(t))``.

    Attributes
    ----------
    a: global coupling strength (1.0).
    """

    a: ArrayLike = 1.0


def _kuramoto_pre(xc: Array, params: KuramotoParams) -> Array:
    theta = xc[0]
    return jnp.stack([jnp.sin(theta), jnp.cos(theta)])


def _kuramoto_post(summed: Array, xc: Array, row_sums: Array, params: KuramotoParams) -> Array:
    theta = xc[0]
    # sin(a - b) = sin a cos b - cos a sin b
    return (params.a * (summed[0] * jnp.cos(theta) - summed[1] * jnp.sin(theta)))[None]


kuramoto = Coupling(
    "kuramoto", KuramotoParams, _kuramoto_pre, _kuramoto_post, lambda n: 2, lambda n: 1
)
"""Kuramoto phase coupling; the coupled variable is the phase ``theta``."""
