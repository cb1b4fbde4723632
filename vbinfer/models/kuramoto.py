"""Kuramoto phase oscillator.

The Virtual Brain's ``Kuramoto`` model: one phase per node, advancing at the natural angular
frequency ``omega`` (rad/ms) plus the long-range input,

.. math::

    \\dot\\theta_k = \\omega_k + c_k .

With :data:`vbinfer.coupling.kuramoto` the input is
:math:`c_k = a \\sum_j W_{kj} \\sin(\\theta_j(t - d_{kj}) - \\theta_k(t))` (``cvar = (0,)``:
the network sends ``theta``). The phase is not wrapped, neither here nor by the integrator
(no ``bounds``), so it grows without limit and stays differentiable; wrap it (``theta % (2
pi)``) or take ``sin theta`` when observing it.

**TVB's coupling normalisation.** TVB's ``coupling.Kuramoto`` documents ``a / N sum_j G_kj
sin(x_j - x_k)``, but its ``post`` divides by ``gx.shape[0]``, which in TVB's (sparse) coupling
path is the number of coupled variables (1 for this model), not the number of nodes: TVB 2.10
computes ``a * sum_j W_kj sin(theta_j - theta_k)``, exactly vbinfer's kuramoto coupling with the
same ``a`` (checked numerically against TVB 2.10.0). For the classical mean-field form
``K / N sum_j sin(...)`` set ``a = K / N``.

**Two oscillators.** For ``W = [[0, 1], [1, 0]]`` the phase difference
:math:`\\phi = \\theta_2 - \\theta_1` obeys Adler's equation
:math:`\\dot\\phi = \\Delta\\omega - 2 a \\sin\\phi`: the pair locks (at
:math:`\\sin\\phi^* = \\Delta\\omega / (2a)`) iff :math:`a \\ge |\\Delta\\omega| / 2`, and
otherwise slips with the beat angular frequency :math:`\\sqrt{\\Delta\\omega^2 - 4 a^2}`.

TVB's local (surface) coupling term ``sin(local_coupling * theta)`` is zero without a surface
and is not modelled.

References: Y. Kuramoto, Self-entrainment of a population of coupled non-linear oscillators,
in: International Symposium on Mathematical Problems in Theoretical Physics, Lecture Notes in
Physics 39, 420-422 (1975); J. Cabral, E. Hugues, O. Sporns, G. Deco, Role of local network
oscillations in resting-state functional connectivity, NeuroImage 57, 130-139 (2011).
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from vbinfer._typing import Array, ArrayLike
from vbinfer.models.base import Model

__all__ = ["KuramotoModelParams", "kuramoto", "kuramoto_dfun"]


class KuramotoModelParams(NamedTuple):
    """Parameters of the Kuramoto model (TVB ``Kuramoto``).

    Named ``KuramotoModelParams`` to differ from the coupling's
    :class:`vbinfer.coupling.KuramotoParams` (which holds the coupling strength ``a``).

    Attributes
    ----------
    omega: natural angular frequency, rad/ms (1.0; 2 pi * 0.01 rad/ms is 10 Hz).
    """

    omega: ArrayLike = 1.0


def kuramoto_dfun(state: Array, coupling: Array, params: KuramotoModelParams) -> Array:
    """Derivative of the Kuramoto model.

    Parameters
    ----------
    state:
        ``(1, *space)``: row ``theta`` (rad, not wrapped).
    coupling:
        ``(1, *space)``: phase interaction, e.g. ``a * sum_j W_kj sin(theta_j - theta_k)``,
        rad/ms.
    params:
        :class:`KuramotoModelParams`; ``omega`` broadcasts against ``space``.

    Returns
    -------
    ``(1, *space)`` time derivative, rad/ms.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> kuramoto_dfun(jnp.zeros((1, 2)), jnp.array([[0.5, -0.5]]), KuramotoModelParams()).tolist()
    [[1.5, 0.5]]
    """
    theta = state[0]
    return (jnp.zeros_like(theta) + params.omega + coupling[0])[None]


kuramoto = Model(
    name="kuramoto",
    state_names=("theta",),
    params_cls=KuramotoModelParams,
    dfun=kuramoto_dfun,
    coupling_names=("phase_interaction",),
    cvar=(0,),
    init=(0.0,),
    bounds=((float("-inf"), float("inf")),),
)
"""Kuramoto phase oscillator; couple it with :data:`vbinfer.coupling.kuramoto` (sends ``theta``)."""
