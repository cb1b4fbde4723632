"""Montbrio-Pazo-Roxin (2015) exact mean field of quadratic integrate-and-fire neurons.

Conventions follow The Virtual Brain's ``MontbrioPazoRoxin``: time in ms, firing rate ``r``
in kHz (spikes per ms), mean membrane potential ``V`` (dimensionless, as in the paper):

.. math::

    \\tau \\dot r = \\Delta / (\\pi \\tau) + 2 r V

    \\tau \\dot V = V^2 - (\\pi \\tau r)^2 + \\eta + J \\tau r + I + c_r C_r + c_v C_V

The firing rate must stay non-negative; as in TVB this is enforced by the integrator after
every stage (``bounds``), not inside the derivative, so the derivative stays smooth.

Reference: E. Montbrió, D. Pazó, A. Roxin, Macroscopic description for networks of spiking
neurons, Phys. Rev. X 5, 021028 (2015).
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from vbinfer._typing import Array, ArrayLike
from vbinfer.models.base import Model

__all__ = ["MPRParams", "mpr", "mpr_dfun"]


class MPRParams(NamedTuple):
    """Parameters of the Montbrio-Pazo-Roxin model (TVB defaults).

    Attributes
    ----------
    tau: membrane time constant, ms (1.0).
    Delta: half-width of the Lorentzian distribution of excitabilities (1.0).
    J: mean synaptic weight (15.0).
    eta: mean excitability (-5.0). Bistable for eta in about [-5.74, -3.14] at the defaults.
    I: external input current (0.0).
    cr: gain of the long-range coupling of ``r`` into the ``V`` equation (1.0).
    cv: gain of the long-range coupling of ``V`` into the ``V`` equation (0.0).
    """

    tau: ArrayLike = 1.0
    Delta: ArrayLike = 1.0
    J: ArrayLike = 15.0
    eta: ArrayLike = -5.0
    I: ArrayLike = 0.0
    cr: ArrayLike = 1.0
    cv: ArrayLike = 0.0


def mpr_dfun(state: Array, coupling: Array, params: MPRParams) -> Array:
    """Derivative of the MPR model.

    Parameters
    ----------
    state:
        ``(2, *space)``: rows ``r`` (kHz) and ``V``.
    coupling:
        ``(1, *space)`` or ``(2, *space)``: the long-range input of ``r`` and optionally ``V``.
    params:
        :class:`MPRParams`; every field broadcasts against ``space``.

    Returns
    -------
    ``(2, *space)`` time derivative per ms.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> d = mpr_dfun(jnp.array([[0.0811], [-1.9616]]), jnp.zeros((1, 1)), MPRParams())
    >>> bool(jnp.abs(d).max() < 1e-3)
    True
    """
    r, V = state[0], state[1]
    p = params
    c_r = coupling[0]
    c_v = coupling[1] if coupling.shape[0] > 1 else 0.0
    dr = (p.Delta / (jnp.pi * p.tau) + 2.0 * r * V) / p.tau
    dV = (
        V * V - (jnp.pi * p.tau * r) ** 2 + p.eta + p.J * p.tau * r + p.I + p.cr * c_r + p.cv * c_v
    ) / p.tau
    return jnp.stack([dr, dV])


mpr = Model(
    name="mpr",
    state_names=("r", "V"),
    params_cls=MPRParams,
    dfun=mpr_dfun,
    coupling_names=("r", "V"),
    cvar=(0,),
    init=(0.1, -2.0),
    bounds=((0.0, float("inf")), (float("-inf"), float("inf"))),
)
"""Montbrio-Pazo-Roxin model; by default only ``r`` is coupled (``cv`` is 0 in TVB too)."""
