"""Two-dimensional Epileptor (Proix et al. 2014), the slow-fast reduction used in the VEP.

Eliminating the fast ``y1`` and the second population of the 6D Epileptor (Jirsa et al. 2014)
leaves the fast membrane variable ``x1`` and the slow permittivity ``z``:

.. math::

    \\dot x_1 = y_0 - x_1^3 - 2 x_1^2 - z + I_1

    \\tau_0 \\dot z = 4 (x_1 - x_0) - z - K c

(``y0 = 1`` is the 6D model's ``c`` constant; with ``I1 = 3.1`` the first line is the
familiar ``1 - x^3 - 2x^2 - z + 3.1``). The cubic holds for every ``x1``, as in Proix et al.
(2014) and vbjax's ``bvep_dfun``; TVB's ``Epileptor2D`` instead switches to a different right
branch for ``x1 >= 0``, which changes the seizure waveform but not the resting state or its
bifurcation below.

**Coupling** (one row, ``cvar = (0,)``): ``c`` must be Proix's *permittivity* coupling, the
difference coupling of the fast variable :math:`c_i = \\sum_j W_{ij} (x_{1,j} - x_{1,i})`,
entering the slow equation with a minus sign, so that seizing neighbours (larger ``x1``)
lower ``z`` and pull the node towards seizure. The same sign convention is vbjax's.

**Excitability.** ``x0`` sets the node's epileptogenicity. The system has a single fixed point
for all ``x0`` (the ``z``-nullcline has slope 4, steeper than any part of the cubic), which
sits on the left (healthy) branch and is stable for ``x0`` below a critical value; it loses
stability in a Hopf bifurcation just where it crosses the fold ``x1 = -4/3`` of the cubic,
at :math:`x_{0c} \\approx -2.062` for the defaults (quoted as about -2.05 in the literature);
above it the node seizes (a relaxation oscillation between the two branches of the cubic).

Time is the Epileptor's own unit; like TVB we treat it as ms (``tau0 = 2857`` is TVB's
``1 / r`` with ``r = 0.00035``).

References: T. Proix, F. Bartolomei, P. Chauvel, C. Bernard, V. K. Jirsa, Permittivity coupling
across brain regions determines seizure recruitment in partial epilepsy, J. Neurosci. 34,
15009-15021 (2014); V. K. Jirsa et al., On the nature of seizure dynamics, Brain 137,
2210-2230 (2014).
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from vbinfer._typing import Array, ArrayLike
from vbinfer.models.base import Model

__all__ = ["Epileptor2DParams", "epileptor2d", "epileptor2d_dfun"]


class Epileptor2DParams(NamedTuple):
    """Parameters of the 2D Epileptor.

    Attributes
    ----------
    x0: excitability (-2.5, healthy; the node seizes above about -2.062; TVB's 6D Epileptor
        default -1.6 is an epileptogenic node).
    I1: external input to the fast subsystem (3.1).
    tau0: time scale separation of the slow permittivity variable, ms (2857.0).
    y0: constant of the fast subsystem (1.0).
    K: gain of the permittivity (difference) coupling into ``z`` (1.0).
    """

    x0: ArrayLike = -2.5
    I1: ArrayLike = 3.1
    tau0: ArrayLike = 2857.0
    y0: ArrayLike = 1.0
    K: ArrayLike = 1.0


def epileptor2d_dfun(state: Array, coupling: Array, params: Epileptor2DParams) -> Array:
    """Derivative of the 2D Epileptor.

    Parameters
    ----------
    state:
        ``(2, *space)``: rows ``x1`` and ``z``.
    coupling:
        ``(1, *space)``: difference coupling of ``x1``, ``sum_j W_ij (x1_j - x1_i)``.
    params:
        :class:`Epileptor2DParams`; every field broadcasts against ``space``.

    Returns
    -------
    ``(2, *space)`` time derivative per (Epileptor) time unit, treated as ms.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> d = epileptor2d_dfun(jnp.array([[-1.5], [3.0]]), jnp.zeros((1, 1)), Epileptor2DParams())
    >>> d.shape
    (2, 1)
    """
    x1, z = state[0], state[1]
    p = params
    x2 = x1 * x1
    dx1 = p.y0 - x1 * x2 - 2.0 * x2 - z + p.I1
    dz = (4.0 * (x1 - p.x0) - z - p.K * coupling[0]) / p.tau0
    return jnp.stack([dx1, dz])


epileptor2d = Model(
    name="epileptor2d",
    state_names=("x1", "z"),
    params_cls=Epileptor2DParams,
    dfun=epileptor2d_dfun,
    coupling_names=("x1",),
    cvar=(0,),
    init=(-1.7, 3.2),
    bounds=((float("-inf"), float("inf")), (float("-inf"), float("inf"))),
)
"""2D Epileptor; ``x1`` is coupled, through a *difference* coupling, into the ``z`` equation."""
