"""Jansen-Rit (1995) cortical column: pyramidal cells with excitatory and inhibitory interneurons.

The equations are The Virtual Brain's ``JansenRit`` exactly (time in ms, potentials in mV,
rates in ms^-1). With :math:`S(v) = 2 \\nu_{max} / (1 + e^{r (v_0 - v)})`:

.. math::

    \\dot y_0 = y_3, \\qquad \\dot y_1 = y_4, \\qquad \\dot y_2 = y_5

    \\dot y_3 = A a S(y_1 - y_2) - 2 a y_3 - a^2 y_0

    \\dot y_4 = A a (\\mu + a_2 J S(a_1 J y_0) + c) - 2 a y_4 - a^2 y_1

    \\dot y_5 = B b a_4 J S(a_3 J y_0) - 2 b y_5 - b^2 y_2

``y0`` is the output PSP of the pyramidal population (felt by the interneurons), ``y1`` the
excitatory and ``y2`` the inhibitory PSP on the pyramidal cells, ``y3..y5`` their derivatives;
``y1 - y2`` is the pyramidal membrane potential, the usual EEG proxy (:func:`jansen_rit_eeg`).
The long-range input ``c`` (one coupling row, in ms^-1 like ``mu``) is added to the
extrinsic input of the pyramidal cells, as in TVB.

**Differences from TVB's defaults.** The firing threshold defaults to ``v0 = 6.0`` mV, the
value of Jansen & Rit (1995), not TVB's 5.52 mV: with the default input ``mu = 0.22`` ms^-1
the node oscillates at about 10.9 Hz (alpha) with 6.0 mV, but at about 6.8 Hz with 5.52 mV.
The input ``mu`` keeps TVB's unit, ms^-1: ``mu = 0.22`` is Jansen & Rit's ``p = 220`` pulses/s.
With ``v0 = 6`` the fixed-point branch has Hopf bifurcations at ``p`` ≈ -12.15, 89.83 and
315.70 /s and folds (saddle-nodes) at ``p`` ≈ 113.59 and -41.30 /s (Grimbert & Faugeras 2006);
between 89.83 and 315.70 /s the upper fixed point is an unstable focus and the node
oscillates (alpha at 220 /s); below 113.59 /s a stable low fixed point coexists with it.

References: B. H. Jansen, V. G. Rit, Electroencephalogram and visual evoked potential generation
in a mathematical model of coupled cortical columns, Biol. Cybern. 73, 357-366 (1995);
F. Grimbert, O. Faugeras, Bifurcation analysis of Jansen's neural mass model, Neural Comput.
18, 3052-3068 (2006).
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from vbinfer._typing import Array, ArrayLike
from vbinfer.models.base import Model

__all__ = ["JansenRitParams", "jansen_rit", "jansen_rit_dfun", "jansen_rit_eeg"]


class JansenRitParams(NamedTuple):
    """Parameters of the Jansen-Rit model (TVB names and units; ``v0`` from Jansen & Rit 1995).

    Attributes
    ----------
    A: maximum amplitude of the excitatory PSP, mV (3.25).
    B: maximum amplitude of the inhibitory PSP, mV (22.0).
    a: reciprocal of the excitatory membrane time constant, ms^-1 (0.1).
    b: reciprocal of the inhibitory membrane time constant, ms^-1 (0.05).
    v0: firing threshold (potential at half-maximal firing), mV (6.0; TVB uses 5.52).
    nu_max: half the maximal firing rate, ms^-1 (0.0025, i.e. ``2 nu_max`` = 5 /s).
    r: steepness of the sigmoid, mV^-1 (0.56).
    J: average number of synapses between the populations (135.0).
    a_1: fraction of ``J`` from pyramidal to excitatory interneurons (1.0).
    a_2: fraction of ``J`` from excitatory interneurons back to pyramidal cells (0.8).
    a_3: fraction of ``J`` from pyramidal to inhibitory interneurons (0.25).
    a_4: fraction of ``J`` from inhibitory interneurons back to pyramidal cells (0.25).
    mu: mean extrinsic input rate to the pyramidal cells, ms^-1 (0.22, i.e. 220 pulses/s).
    """

    A: ArrayLike = 3.25
    B: ArrayLike = 22.0
    a: ArrayLike = 0.1
    b: ArrayLike = 0.05
    v0: ArrayLike = 6.0
    nu_max: ArrayLike = 0.0025
    r: ArrayLike = 0.56
    J: ArrayLike = 135.0
    a_1: ArrayLike = 1.0
    a_2: ArrayLike = 0.8
    a_3: ArrayLike = 0.25
    a_4: ArrayLike = 0.25
    mu: ArrayLike = 0.22


def _sigmoid(v: Array, p: JansenRitParams) -> Array:
    return 2.0 * p.nu_max / (1.0 + jnp.exp(p.r * (p.v0 - v)))


def jansen_rit_dfun(state: Array, coupling: Array, params: JansenRitParams) -> Array:
    """Derivative of the Jansen-Rit model.

    Parameters
    ----------
    state:
        ``(6, *space)``: rows ``y0..y5`` (mV for ``y0..y2``, mV/ms for ``y3..y5``).
    coupling:
        ``(1, *space)``: long-range input added to ``mu`` in the ``y4`` equation, ms^-1.
    params:
        :class:`JansenRitParams`; every field broadcasts against ``space``.

    Returns
    -------
    ``(6, *space)`` time derivative per ms.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> d = jansen_rit_dfun(jnp.zeros((6, 3)), jnp.zeros((1, 3)), JansenRitParams())
    >>> d.shape
    (6, 3)
    """
    y0, y1, y2, y3, y4, y5 = (state[k] for k in range(6))
    p = params
    c = coupling[0]
    dy3 = p.A * p.a * _sigmoid(y1 - y2, p) - 2.0 * p.a * y3 - p.a**2 * y0
    dy4 = (
        p.A * p.a * (p.mu + p.a_2 * p.J * _sigmoid(p.a_1 * p.J * y0, p) + c)
        - 2.0 * p.a * y4
        - p.a**2 * y1
    )
    dy5 = p.B * p.b * (p.a_4 * p.J * _sigmoid(p.a_3 * p.J * y0, p)) - 2.0 * p.b * y5 - p.b**2 * y2
    return jnp.stack([y3, y4, y5, dy3, dy4, dy5])


def jansen_rit_eeg(state: Array) -> Array:
    """EEG proxy of the Jansen-Rit model: the pyramidal membrane potential ``y1 - y2``.

    Parameters
    ----------
    state:
        ``(6, *space)`` Jansen-Rit state; axis 0 must be the state axis.

    Returns
    -------
    ``space``-shaped array, mV.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> float(jansen_rit_eeg(jnp.array([0.0, 5.0, 3.0, 0.0, 0.0, 0.0])))
    2.0
    """
    return state[1] - state[2]


jansen_rit = Model(
    name="jansen_rit",
    state_names=("y0", "y1", "y2", "y3", "y4", "y5"),
    params_cls=JansenRitParams,
    dfun=jansen_rit_dfun,
    coupling_names=("lrc",),
    cvar=(1, 2),
    init=(0.0, 5.0, 5.0, 0.0, 0.0, 0.0),
    bounds=((float("-inf"), float("inf")),) * 6,
)
"""Jansen-Rit model; TVB's ``cvar = (1, 2)``: a coupling function maps ``y1``, ``y2`` (usually
through a sigmoid of ``y1 - y2``) to the single input ``lrc``."""
