"""Wilson-Cowan (1972) excitatory-inhibitory population model.

The equations and parameter names are The Virtual Brain's ``WilsonCowan`` (Eqs. 11-12 of
Wilson & Cowan 1972, time in ms, activities ``E`` and ``I`` dimensionless proportions of
active cells):

.. math::

    \\tau_e \\dot E = -E + (k_e - r_e E) S_e(\\alpha_e (c_{ee} E - c_{ei} I + P - \\theta_e + c))

    \\tau_i \\dot I = -I + (k_i - r_i I) S_i(\\alpha_i (c_{ie} E - c_{ii} I + Q - \\theta_i))

with :math:`S(x) = c / (1 + e^{-a (x - b)}) - s\\, c / (1 + e^{a b})`, where ``s`` is
``shift_sigmoid`` (1 by default, as in TVB and in Wilson & Cowan, so that ``S(0) = 0`` and
``E = I = 0`` is the resting state without input). As in TVB, ``c_ei`` is the weight *from* the
inhibitory *to* the excitatory population and ``c_ie`` the weight from E to I.

The long-range input ``c`` (one coupling row, ``cvar = (0,)``: the network sends ``E``) enters
the excitatory population only, like TVB's long-range coupling. TVB's local (surface) coupling
is not modelled.

The defaults are TVB's, i.e. Wilson & Cowan's (1972) parameter set for hysteresis
(c1..c4 = 12, 4, 13, 11, a_e = 1.2, theta_e = 2.8, a_i = 1, theta_i = 4, r = 1; here
``b_e``, ``b_i`` hold the thresholds), with 10 ms time constants: the resting state ``E = I = 0``
is stable at ``P = 0``, and a low- and a high-activity stable state coexist (hysteresis) for
``P`` between the folds at about -0.511 and 0.283. Their limit-cycle set
``c_ee=16, c_ei=12, c_ie=15, c_ii=3, a_e=1.3, b_e=4, a_i=2, b_i=3.7, P=1.25`` has a single,
unstable focus and oscillates at about 20 Hz with these time constants.

Reference: H. R. Wilson, J. D. Cowan, Excitatory and inhibitory interactions in localized
populations of model neurons, Biophys. J. 12, 1-24 (1972).
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from vbinfer._typing import Array, ArrayLike
from vbinfer.models.base import Model

__all__ = ["WilsonCowanParams", "wilson_cowan", "wilson_cowan_dfun"]


class WilsonCowanParams(NamedTuple):
    """Parameters of the Wilson-Cowan model (TVB names and defaults).

    Attributes
    ----------
    c_ee: E -> E weight (12.0).
    c_ei: I -> E weight (4.0).
    c_ie: E -> I weight (13.0).
    c_ii: I -> I weight (11.0).
    tau_e: excitatory time constant, ms (10.0).
    tau_i: inhibitory time constant, ms (10.0).
    a_e: slope of the excitatory sigmoid (1.2).
    b_e: position of the maximum slope (threshold) of the excitatory sigmoid (2.8).
    c_e: amplitude of the excitatory sigmoid (1.0).
    theta_e: excitatory threshold subtracted from the input (0.0).
    a_i: slope of the inhibitory sigmoid (1.0).
    b_i: position of the maximum slope (threshold) of the inhibitory sigmoid (4.0).
    c_i: amplitude of the inhibitory sigmoid (1.0).
    theta_i: inhibitory threshold subtracted from the input (0.0).
    r_e: excitatory refractory period, in units of ``tau_e`` (1.0).
    r_i: inhibitory refractory period, in units of ``tau_i`` (1.0).
    k_e: maximum of the excitatory response function (1.0).
    k_i: maximum of the inhibitory response function (1.0).
    P: external input to the excitatory population (0.0).
    Q: external input to the inhibitory population (0.0).
    alpha_e: gain of the excitatory input (1.0).
    alpha_i: gain of the inhibitory input (1.0).
    shift_sigmoid: 1.0 to shift the sigmoids so that ``S(0) = 0`` (TVB's default), 0.0 not to.
    """

    c_ee: ArrayLike = 12.0
    c_ei: ArrayLike = 4.0
    c_ie: ArrayLike = 13.0
    c_ii: ArrayLike = 11.0
    tau_e: ArrayLike = 10.0
    tau_i: ArrayLike = 10.0
    a_e: ArrayLike = 1.2
    b_e: ArrayLike = 2.8
    c_e: ArrayLike = 1.0
    theta_e: ArrayLike = 0.0
    a_i: ArrayLike = 1.0
    b_i: ArrayLike = 4.0
    c_i: ArrayLike = 1.0
    theta_i: ArrayLike = 0.0
    r_e: ArrayLike = 1.0
    r_i: ArrayLike = 1.0
    k_e: ArrayLike = 1.0
    k_i: ArrayLike = 1.0
    P: ArrayLike = 0.0
    Q: ArrayLike = 0.0
    alpha_e: ArrayLike = 1.0
    alpha_i: ArrayLike = 1.0
    shift_sigmoid: ArrayLike = 1.0


def _sigmoid(x: Array, a: ArrayLike, b: ArrayLike, c: ArrayLike, shift: ArrayLike) -> Array:
    return c / (1.0 + jnp.exp(-a * (x - b))) - shift * c / (1.0 + jnp.exp(a * b))


def wilson_cowan_dfun(state: Array, coupling: Array, params: WilsonCowanParams) -> Array:
    """Derivative of the Wilson-Cowan model.

    Parameters
    ----------
    state:
        ``(2, *space)``: rows ``E`` and ``I``.
    coupling:
        ``(1, *space)``: long-range input to the excitatory population.
    params:
        :class:`WilsonCowanParams`; every field broadcasts against ``space``.

    Returns
    -------
    ``(2, *space)`` time derivative per ms.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> d = wilson_cowan_dfun(jnp.zeros((2, 4)), jnp.zeros((1, 4)), WilsonCowanParams())
    >>> bool(jnp.abs(d).max() < 1e-7)
    True
    """
    E, I = state[0], state[1]
    p = params
    x_e = p.alpha_e * (p.c_ee * E - p.c_ei * I + p.P - p.theta_e + coupling[0])
    x_i = p.alpha_i * (p.c_ie * E - p.c_ii * I + p.Q - p.theta_i)
    s_e = _sigmoid(x_e, p.a_e, p.b_e, p.c_e, p.shift_sigmoid)
    s_i = _sigmoid(x_i, p.a_i, p.b_i, p.c_i, p.shift_sigmoid)
    dE = (-E + (p.k_e - p.r_e * E) * s_e) / p.tau_e
    dI = (-I + (p.k_i - p.r_i * I) * s_i) / p.tau_i
    return jnp.stack([dE, dI])


wilson_cowan = Model(
    name="wilson_cowan",
    state_names=("E", "I"),
    params_cls=WilsonCowanParams,
    dfun=wilson_cowan_dfun,
    coupling_names=("E",),
    cvar=(0,),
    init=(0.1, 0.05),
    bounds=((float("-inf"), float("inf")), (float("-inf"), float("inf"))),
)
"""Wilson-Cowan model; ``E`` is sent through the connectome into the excitatory input."""
