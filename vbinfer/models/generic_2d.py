"""Generic 2D oscillator: a cubic (FitzHugh-Nagumo-like) nullcline and a configurable one.

The Virtual Brain's ``Generic2dOscillator`` exactly (parameter names, defaults, time in ms):

.. math::

    \\dot V = d\\, \\tau\\, (\\alpha W - f V^3 + e V^2 + g V + \\gamma I + \\gamma c)

    \\dot W = \\frac{d}{\\tau}\\, (a + b V + c V^2 - \\beta W)

The long-range input ``c`` (one coupling row, TVB's ``cvar = (0,)``: the network sends ``V``)
is scaled by ``gamma`` like the external current ``I``, as in TVB (``gamma = -1`` gives
FitzHugh-Nagumo's sign convention). TVB's local (surface) coupling is not modelled, and TVB
gives the model no state bounds.

**Behaviour at the defaults** (``a = -2, b = -10, c = 0, d = 0.02, e = 3, f = 1, g = 0,
alpha = beta = gamma = 1, tau = 1, I = 0``; TVB's "excitable configuration"; derived from these
equations and checked in ``tests/test_models_more.py``). The fixed point is unique,
``V* = -0.18865`` (the real root of ``V^3 - 3 V^2 + 10 V + 2``), ``W* = a + b V* = -0.11348``,
a stable focus with eigenvalues ``-0.02239 ± 0.06320i`` per ms: damped oscillations at
10.06 Hz. Increasing ``a`` moves it to the right; the trace of the Jacobian vanishes at
``V_H = 1 - sqrt(2/3)``, a Hopf bifurcation at ``a_H = V_H^3 - 3 V_H^2 + 10 V_H = 1.74019``
with angular frequency ``d sqrt(-b - 1) = 0.06`` rad/ms (9.55 Hz). For ``a = 2`` (TVB: "limit
cycle if a is 2.0") the fixed point is an unstable focus and the node oscillates on a limit
cycle at 9.21 Hz (peak-to-peak ``V`` 1.16).

References: R. FitzHugh, Impulses and physiological states in theoretical models of nerve
membrane, Biophys. J. 1, 445-466 (1961); P. Sanz Leon, S. A. Knock, M. M. Woodman, et al.,
The Virtual Brain: a simulator of primate brain network dynamics, Front. Neuroinform. 7, 10
(2013).
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from vbinfer._typing import Array, ArrayLike
from vbinfer.models.base import Model

__all__ = ["Generic2dOscillatorParams", "generic_2d_oscillator", "generic_2d_oscillator_dfun"]


class Generic2dOscillatorParams(NamedTuple):
    """Parameters of the generic 2D oscillator (TVB ``Generic2dOscillator`` names and defaults).

    Attributes
    ----------
    tau: time-scale separation of ``V`` (fast, times ``tau``) and ``W`` (slow, over ``tau``) (1.0).
    I: external input, baseline shift of the cubic nullcline (0.0).
    a: vertical shift of the configurable nullcline (-2.0).
    b: linear slope of the configurable nullcline (-10.0).
    c: parabolic term of the configurable nullcline (0.0).
    d: temporal scale factor, ms^-1 (0.02).
    e: quadratic coefficient of the cubic nullcline (3.0).
    f: cubic coefficient of the cubic nullcline (1.0).
    g: linear coefficient of the cubic nullcline (0.0).
    alpha: feedback of the slow variable on the fast one (1.0).
    beta: self-feedback of the slow variable (1.0).
    gamma: scaling of ``I`` and of the long-range input (1.0).
    """

    tau: ArrayLike = 1.0
    I: ArrayLike = 0.0
    a: ArrayLike = -2.0
    b: ArrayLike = -10.0
    c: ArrayLike = 0.0
    d: ArrayLike = 0.02
    e: ArrayLike = 3.0
    f: ArrayLike = 1.0
    g: ArrayLike = 0.0
    alpha: ArrayLike = 1.0
    beta: ArrayLike = 1.0
    gamma: ArrayLike = 1.0


def generic_2d_oscillator_dfun(
    state: Array, coupling: Array, params: Generic2dOscillatorParams
) -> Array:
    """Derivative of the generic 2D oscillator.

    Parameters
    ----------
    state:
        ``(2, *space)``: rows ``V`` and ``W``.
    coupling:
        ``(1, *space)``: long-range input, added to ``I`` (both scaled by ``gamma``).
    params:
        :class:`Generic2dOscillatorParams`; every field broadcasts against ``space``.

    Returns
    -------
    ``(2, *space)`` time derivative per ms.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> x = jnp.array([[-0.188652], [-0.113482]])  # near the default fixed point
    >>> d = generic_2d_oscillator_dfun(x, jnp.zeros((1, 1)), Generic2dOscillatorParams())
    >>> bool(jnp.abs(d).max() < 1e-6)
    True
    """
    p = params
    V, W = state[0], state[1]
    V2 = V * V
    dV = p.d * p.tau * (p.alpha * W - p.f * V2 * V + p.e * V2 + p.g * V + p.gamma * p.I)
    dV = dV + p.d * p.tau * p.gamma * coupling[0]
    dW = p.d * (p.a + p.b * V + p.c * V2 - p.beta * W) / p.tau
    return jnp.stack([dV, dW])


generic_2d_oscillator = Model(
    name="generic_2d_oscillator",
    state_names=("V", "W"),
    params_cls=Generic2dOscillatorParams,
    dfun=generic_2d_oscillator_dfun,
    coupling_names=("V",),
    cvar=(0,),
    init=(0.0, 0.0),
    bounds=((float("-inf"), float("inf")), (float("-inf"), float("inf"))),
)
"""Generic 2D oscillator; TVB's ``cvar = (0,)``: ``V`` is coupled, into the ``V`` equation."""
