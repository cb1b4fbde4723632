"""Stuart-Landau oscillator: the normal form of a supercritical Hopf bifurcation.

In Cartesian coordinates, with time in ms:

.. math::

    \\dot x = (a - x^2 - y^2) x - \\omega y + c_x

    \\dot y = (a - x^2 - y^2) y + \\omega x + c_y

i.e. :math:`\\dot z = (a + i\\omega) z - |z|^2 z + c` for :math:`z = x + i y`. For ``a < 0`` the
origin is a stable focus (eigenvalues :math:`a \\pm i\\omega`); at ``a = 0`` it loses stability
in a supercritical Hopf bifurcation, and for ``a > 0`` every trajectory except the origin
converges to the limit cycle of radius :math:`\\sqrt a` traversed at angular frequency
:math:`\\omega` (frequency :math:`1000\\,\\omega / 2\\pi` Hz with ``omega`` in rad/ms).

Both state variables are coupled (``cvar = (0, 1)``), each into its own equation, as in the
Hopf whole-brain models of Deco et al. (2017), where a diffusive coupling supplies
:math:`c_x = G \\sum_j W_{ij} (x_j - x_i)` and likewise for ``y``.

References: Y. Kuramoto, Chemical Oscillations, Waves, and Turbulence (Springer, 1984);
G. Deco et al., The dynamics of resting fluctuations in the brain: metastability and its
dynamical cortical core, Sci. Rep. 7, 3095 (2017).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax.numpy as jnp

from vbinfer._typing import Array, ArrayLike
from vbinfer.models.base import Model

__all__ = ["StuartLandauParams", "stuart_landau", "stuart_landau_dfun"]


class StuartLandauParams(NamedTuple):
    """Parameters of the Stuart-Landau oscillator.

    Attributes
    ----------
    a: bifurcation parameter, ms^-1 (-0.01): the linear growth rate of the amplitude; the
        origin is stable for ``a < 0`` (damped oscillations relaxing in ``1 / |a|`` = 100 ms),
        a limit cycle of radius ``sqrt(a)`` exists for ``a > 0``.
    omega: angular frequency, rad/ms (``2 pi * 0.01`` = 0.0628, i.e. 10 Hz).
    """

    a: ArrayLike = -0.01
    omega: ArrayLike = 2.0 * math.pi * 0.01


def stuart_landau_dfun(state: Array, coupling: Array, params: StuartLandauParams) -> Array:
    """Derivative of the Stuart-Landau oscillator.

    Parameters
    ----------
    state:
        ``(2, *space)``: rows ``x`` and ``y``.
    coupling:
        ``(2, *space)``: inputs added to the ``x`` and ``y`` equations.
    params:
        :class:`StuartLandauParams`; every field broadcasts against ``space``.

    Returns
    -------
    ``(2, *space)`` time derivative per ms.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> p = StuartLandauParams(a=1.0, omega=0.5)
    >>> stuart_landau_dfun(jnp.array([[1.0], [0.0]]), jnp.zeros((2, 1)), p)[:, 0].tolist()
    [0.0, 0.5]
    """
    x, y = state[0], state[1]
    p = params
    g = p.a - x * x - y * y
    dx = g * x - p.omega * y + coupling[0]
    dy = g * y + p.omega * x + coupling[1]
    return jnp.stack([dx, dy])


stuart_landau = Model(
    name="stuart_landau",
    state_names=("x", "y"),
    params_cls=StuartLandauParams,
    dfun=stuart_landau_dfun,
    coupling_names=("x", "y"),
    cvar=(0, 1),
    init=(0.1, 0.0),
    bounds=((float("-inf"), float("inf")), (float("-inf"), float("inf"))),
)
"""Stuart-Landau (Hopf normal form) oscillator; ``x`` and ``y`` are both coupled."""
