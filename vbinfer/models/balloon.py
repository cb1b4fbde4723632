"""Balloon-Windkessel haemodynamic model and BOLD observation (Friston 2000, Stephan 2007).

.. warning::

    **The derivative is per millisecond**, like every other vbinfer model, so the BOLD states
    can be integrated alongside a neural model with the same ``dt`` in ms. The physiological
    parameters keep their customary units, **seconds** (``tau``) and **s^-1** (``kappa``,
    ``gamma``); :func:`balloon_dfun` evaluates the usual per-second equations and multiplies
    them by ``1e-3``. To integrate with ``dt`` in seconds, multiply the derivative by 1000.

Per second, with neural input :math:`x` (s^-1, already scaled by the neuronal efficacy):

.. math::

    \\dot s = x - \\kappa s - \\gamma (f - 1), \\qquad \\dot f = s

    \\tau \\dot v = f - v^{1/\\alpha}, \\qquad
    \\tau \\dot q = f \\frac{1 - (1 - E_0)^{1/f}}{E_0} - v^{1/\\alpha} \\frac{q}{v}

with ``s`` the vasodilatory signal (s^-1), ``f`` the normalised inflow, ``v`` the normalised
venous volume and ``q`` the normalised deoxyhaemoglobin content; rest is ``(0, 1, 1, 1)``.
:func:`bold_signal` gives Stephan et al.'s (2007, Eq. 12) non-linear observation
:math:`y = V_0 (k_1 (1 - q) + k_2 (1 - q / v) + k_3 (1 - v))`, in percent signal change for
``V0 = 4`` (resting venous volume fraction 0.04 times 100).

**Defaults.** The haemodynamic rates are Stephan et al.'s (2007) / SPM's DCM priors
(``kappa = 0.64`` s^-1, ``gamma = 0.32`` s^-1, ``tau = 2`` s, ``alpha = 0.32``,
``E0 = 0.4``): a brief input gives a BOLD response peaking about 4.8 s later with an undershoot
near 13 s, like the canonical haemodynamic response. The observation coefficients are TVB's
"revised" ones (:func:`bold_coefficients` with ``TE = 0.04`` s, ``nu_0 = 40.3`` Hz,
``r_0 = 25`` Hz, ``epsilon = 0.5``). TVB's own ``BalloonModel`` uses ``tau_s = 1.54`` s,
``tau_f = 1.44`` s (i.e. ``kappa = 0.65``, ``gamma = 0.69`` s^-1) and ``tau_o = 0.98`` s, whose
response peaks at about 3 s; pass those values to reproduce it.

The state ``f, v, q`` must stay positive (it does for physiological inputs); no bounds are set.

References: K. J. Friston, A. Mechelli, R. Turner, C. J. Price, Nonlinear responses in fMRI:
the Balloon model, Volterra kernels, and other hemodynamics, NeuroImage 12, 466-477 (2000);
K. E. Stephan, N. Weiskopf, P. M. Drysdale, P. A. Robinson, K. J. Friston, Comparing
hemodynamic models with DCM, NeuroImage 38, 387-401 (2007).
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from vbinfer._typing import Array, ArrayLike
from vbinfer.models.base import Model

__all__ = [
    "BalloonParams",
    "balloon",
    "balloon_dfun",
    "balloon_rates",
    "bold_coefficients",
    "bold_signal",
]

MS_PER_S = 1000.0


def bold_coefficients(
    E0: float = 0.4,
    TE: float = 0.04,
    nu_0: float = 40.3,
    r_0: float = 25.0,
    epsilon: float = 0.5,
) -> tuple[float, float, float]:
    """Coefficients ``(k1, k2, k3)`` of the BOLD observation (Stephan et al. 2007, Eq. 12).

    ``k1 = 4.3 nu_0 E0 TE``, ``k2 = epsilon r_0 E0 TE``, ``k3 = 1 - epsilon``, with the echo
    time ``TE`` in s, the frequency offset ``nu_0`` and the relaxation slope ``r_0`` in Hz
    (values for 1.5 T), and ``epsilon`` the ratio of intra- to extravascular signal.

    Examples
    --------
    >>> [round(k, 4) for k in bold_coefficients()]
    [2.7726, 0.2, 0.5]
    """
    return (4.3 * nu_0 * E0 * TE, epsilon * r_0 * E0 * TE, 1.0 - epsilon)


_K1, _K2, _K3 = bold_coefficients()


class BalloonParams(NamedTuple):
    """Parameters of the Balloon-Windkessel model and BOLD observation (times in **seconds**).

    Attributes
    ----------
    kappa: rate of decay of the vasodilatory signal, s^-1 (0.64).
    gamma: rate of flow-dependent elimination (autoregulation), s^-1 (0.32).
    tau: haemodynamic transit time, s (2.0).
    alpha: Grubb's exponent, vessel stiffness (0.32).
    E0: resting oxygen extraction fraction (0.4).
    V0: resting venous volume fraction, times 100 so that the BOLD is in percent (4.0).
    k1: intravascular coefficient of the observation (``4.3 nu_0 E0 TE`` = 2.7726).
    k2: concentration coefficient (``epsilon r_0 E0 TE`` = 0.2).
    k3: extravascular volume coefficient (``1 - epsilon`` = 0.5).
    """

    kappa: ArrayLike = 0.64
    gamma: ArrayLike = 0.32
    tau: ArrayLike = 2.0
    alpha: ArrayLike = 0.32
    E0: ArrayLike = 0.4
    V0: ArrayLike = 4.0
    k1: ArrayLike = _K1
    k2: ArrayLike = _K2
    k3: ArrayLike = _K3


def balloon_dfun(state: Array, coupling: Array, params: BalloonParams) -> Array:
    """Derivative of the Balloon-Windkessel model, **per millisecond**.

    Parameters
    ----------
    state:
        ``(4, *space)``: rows ``s`` (s^-1), ``f``, ``v``, ``q``.
    coupling:
        ``(1, *space)``: the neural input ``x`` driving the vasodilatory signal, s^-1.
    params:
        :class:`BalloonParams` (in seconds); every field broadcasts against ``space``.

    Returns
    -------
    ``(4, *space)`` time derivative per ms (the per-second derivative divided by 1000).

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> rest = jnp.array([[0.0], [1.0], [1.0], [1.0]])
    >>> d = balloon_dfun(rest, jnp.array([[1.0]]), BalloonParams())
    >>> bool(jnp.allclose(d[:, 0], jnp.array([1e-3, 0.0, 0.0, 0.0]), atol=1e-9))
    True
    """
    return jnp.stack(balloon_rates(tuple(state), coupling[0], params))


def balloon_rates(
    state: tuple[Array, Array, Array, Array], x: Array, params: BalloonParams
) -> tuple[Array, Array, Array, Array]:
    """:func:`balloon_dfun` on the four state variables as separate arrays, per ms.

    Integrators that step the Balloon model many times (the BOLD monitor) use this form: on
    CPUs XLA compiles the unstacked variables into fewer, larger kernels, and the powers are
    written as ``exp`` / ``log`` (``v^(1/alpha) = exp(log(v) / alpha)``, ``1 - (1 - E0)^(1/f) =
    -expm1(log1p(-E0) / f)``), whose derivatives are cheaper than those of a general power.

    Parameters
    ----------
    state:
        ``(s, f, v, q)``, each ``space``-shaped.
    x:
        ``space``-shaped neural drive, s^-1.
    params:
        :class:`BalloonParams`.

    Returns
    -------
    ``(ds, df, dv, dq)`` per ms.
    """
    s, f, v, q = state
    p = params
    per_ms = 1.0 / MS_PER_S
    v_out = jnp.exp(jnp.log(v) / p.alpha)  # outflow v^(1/alpha)
    extraction = 1.0 - jnp.exp(jnp.log(1.0 - p.E0) / f)  # 1 - (1 - E0)^(1/f)
    ds = (x - p.kappa * s - p.gamma * (f - 1.0)) * per_ms
    df = s * per_ms
    dv = (f - v_out) * (per_ms / p.tau)
    dq = (f * extraction / p.E0 - v_out * q / v) * (per_ms / p.tau)
    return ds, df, dv, dq


def bold_signal(state: Array, params: BalloonParams) -> Array:
    """BOLD observation of a Balloon state (Stephan et al. 2007, non-linear form).

    Parameters
    ----------
    state:
        ``(4, *space)`` Balloon state (axis 0 the state axis: ``s, f, v, q``).
    params:
        :class:`BalloonParams`; uses ``V0, k1, k2, k3``.

    Returns
    -------
    ``space``-shaped BOLD signal, percent signal change for ``V0 = 4``; 0 at rest.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> float(bold_signal(jnp.array([0.0, 1.0, 1.0, 1.0]), BalloonParams()))
    0.0
    """
    v, q = state[2], state[3]
    p = params
    return p.V0 * (p.k1 * (1.0 - q) + p.k2 * (1.0 - q / v) + p.k3 * (1.0 - v))


balloon = Model(
    name="balloon",
    state_names=("s", "f", "v", "q"),
    params_cls=BalloonParams,
    dfun=balloon_dfun,
    coupling_names=("x",),
    cvar=(),
    init=(0.0, 1.0, 1.0, 1.0),
    bounds=((float("-inf"), float("inf")),) * 4,
)
"""Balloon-Windkessel model: the single input row is the neural drive (not a network coupling,
hence ``cvar = ()``); the derivative is per ms, the parameters in seconds."""
