"""Linear (Ornstein-Uhlenbeck) node for multivariate autoregressive work.

One state per node, time in ms:

.. math::

    \\dot x_i = -\\lambda_i x_i + I_i + k\\, c_i

With the linear network coupling :math:`c_i = \\sum_j W_{ij} x_j` the network drift is the
general linear map :math:`\\dot x = A x + I` with :math:`A = -\\mathrm{diag}(\\lambda) + k W`
(:func:`linear_drift_matrix`), so that the weights ``W`` carry all the interactions. With
additive noise and an Euler-Maruyama step ``dt`` this is exactly the first-order MVAR process
:math:`x_{t+1} = (\\mathbb 1 + dt\\, A) x_t + dt\\, I + \\sqrt{dt}\\, \\sigma \\xi_t`, which
makes the model the reference case for recovering a connectome from time series. A single
node is stable for ``lam > 0``; the network is stable when every eigenvalue of ``A`` has a
negative real part (e.g. when ``lam`` exceeds ``k`` times every row sum of ``|W|``).

Reference: TVB's ``Linear`` model; H. Lütkepohl, New Introduction to Multiple Time Series
Analysis (Springer, 2005) for the MVAR side.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from vbinfer._typing import Array, ArrayLike
from vbinfer.models.base import Model

__all__ = ["LinearModelParams", "linear", "linear_dfun", "linear_drift_matrix"]


class LinearModelParams(NamedTuple):
    """Parameters of the linear node.

    Attributes
    ----------
    lam: decay rate, ms^-1 (0.1, i.e. a 10 ms time constant); stable for ``lam > 0``.
    I: constant input, state units per ms (0.0); the fixed point is ``I / lam``.
    k: gain of the coupling input (1.0).
    """

    lam: ArrayLike = 0.1
    I: ArrayLike = 0.0
    k: ArrayLike = 1.0


def linear_dfun(state: Array, coupling: Array, params: LinearModelParams) -> Array:
    """Derivative of the linear node.

    Parameters
    ----------
    state:
        ``(1, *space)``: row ``x``.
    coupling:
        ``(1, *space)``: the network input, e.g. ``W @ x``.
    params:
        :class:`LinearModelParams`; every field broadcasts against ``space``.

    Returns
    -------
    ``(1, *space)`` time derivative per ms.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> linear_dfun(jnp.array([[2.0]]), jnp.array([[0.5]]), LinearModelParams(lam=0.25)).tolist()
    [[0.0]]
    """
    p = params
    return (-p.lam * state[0] + p.I + p.k * coupling[0])[None]


def linear_drift_matrix(weights: ArrayLike, params: LinearModelParams) -> Array:
    """Drift matrix ``A = -diag(lam) + k W`` of a network of linear nodes with linear coupling.

    Parameters
    ----------
    weights:
        ``(n_nodes, n_nodes)`` coupling weights, ``W[i, j]`` from node ``j`` to node ``i``.
    params:
        :class:`LinearModelParams` with ``lam`` and ``k`` scalars or ``(n_nodes,)`` (``k`` per
        receiving node).

    Returns
    -------
    ``(n_nodes, n_nodes)`` matrix ``A`` such that ``dx/dt = A x + I``.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> linear_drift_matrix(jnp.array([[0.0, 1.0], [0.0, 0.0]]), LinearModelParams(lam=0.5)).tolist()
    [[-0.5, 1.0], [0.0, -0.5]]
    """
    W = jnp.asarray(weights)
    n = W.shape[0]
    lam = jnp.broadcast_to(jnp.asarray(params.lam, dtype=W.dtype), (n,))
    k = jnp.broadcast_to(jnp.asarray(params.k, dtype=W.dtype), (n,))
    return -jnp.diag(lam) + k[:, None] * W


linear = Model(
    name="linear",
    state_names=("x",),
    params_cls=LinearModelParams,
    dfun=linear_dfun,
    coupling_names=("x",),
    cvar=(0,),
    init=(0.0,),
    bounds=((float("-inf"), float("inf")),),
)
"""Linear node; with linear coupling the network is an MVAR(1) process after discretisation."""
