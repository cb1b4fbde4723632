"""Larter-Breakspear model: a Morris-Lecar-type excitatory column with inhibitory feedback.

The Virtual Brain's ``LarterBreakspear`` exactly (parameter names, defaults; dimensionless
variables, time in TVB's unit, ms, times ``t_scale``). With
:math:`m_{ion} = \\frac12 (1 + \\tanh((V - T_{ion}) / \\delta_{ion}))` for Ca, Na and K and the
firing rates :math:`Q_V = \\frac12 Q_{V,max} (1 + \\tanh((V - V_T) / \\delta_V))`,
:math:`Q_Z = \\frac12 Q_{Z,max} (1 + \\tanh((Z - Z_T) / \\delta_Z))`:

.. math::

    \\dot V = t_s \\big[ -(g_{Ca} + (1 - C) r_{NMDA} a_{ee} Q_V + C r_{NMDA} a_{ee} c)
              \\, m_{Ca} (V - V_{Ca}) - g_K W (V - V_K) - g_L (V - V_L)

              \\qquad - (g_{Na} m_{Na} + (1 - C) a_{ee} Q_V + C a_{ee} c)(V - V_{Na})
              - a_{ie} Z Q_Z + a_{ne} I_{ext} \\big]

    \\dot W = t_s\\, \\phi\\, (m_K - W) / \\tau_K, \\qquad
    \\dot Z = t_s\\, b\\, (a_{ni} I_{ext} + a_{ei} V Q_V)

**Coupling, as in TVB.** ``C`` splits the excitatory (AMPA and NMDA) drive between the node's
own rate ``Q_V`` (weight ``1 - C``) and the long-range input ``c`` (weight ``C``), which stands
for Breakspear's mean rate of the other nodes :math:`\\langle Q_V \\rangle`. The input row ``c``
is used as is: TVB's ``cvar = (0,)`` sends ``V``, so with a *linear* coupling ``c`` is a
weighted sum of the neighbours' potentials ``V_j``, not of their rates (TVB's behaviour, kept
for parity). To couple rates, as Breakspear et al. do, the coupling's ``pre`` must map ``V_j``
to ``Q_V(V_j)``: TVB's ``HyperbolicTangent(a=QV_max / 2, b=1, midpoint=VT, sigma=d_V)``
coupling, followed by a normalised weight matrix for a mean. Either way the coupling strength is
``C`` times the coupling's own scale; with an isolated node (``c = 0``) ``C = 0.1`` still removes
10 % of the node's recurrent excitation.

**Dynamics** (derived from these equations and checked in ``tests/test_models_more.py``;
isolated node, ``c = 0``). At TVB's defaults (``d_V = 0.65``) there are two fixed points, a
saddle at ``V = -0.829`` and an unstable focus at ``V = -0.157``, and the node oscillates on a
limit cycle of period 99.53 (TVB's ms: 10.05 Hz), ``-0.516 < V < 0.365``; it is periodic, not
chaotic. The upper fixed point is stable below a Hopf bifurcation at ``d_V = 0.51527`` (TVB's
docstring: fixed point dynamics for ``d_V < 0.55``). With Alstott et al. 2009's set (TVB's
table 2: ``gCa = 1``, ``aee = 0.36``, ``d_Z = d_V = 0.65``; ``C = 0``) the node is chaotic
(largest Lyapunov exponent about 0.009 per time unit). TVB gives no state bounds.

References: R. Larter, B. Speelman, R. M. Worth, A coupled ordinary differential equation
lattice model for the simulation of epileptic seizures, Chaos 9, 795-804 (1999);
M. Breakspear, J. R. Terry, K. J. Friston, Modulation of excitatory synaptic coupling
facilitates synchronization and complex dynamics in a biophysical model of neuronal dynamics,
Network: Comput. Neural Syst. 14, 703-732 (2003); J. Alstott, M. Breakspear, P. Hagmann,
L. Cammoun, O. Sporns, Modeling the impact of lesions in the human brain, PLoS Comput. Biol. 5,
e1000408 (2009).
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from vbinfer._typing import Array, ArrayLike
from vbinfer.models.base import Model

__all__ = ["LarterBreakspearParams", "larter_breakspear", "larter_breakspear_dfun"]


class LarterBreakspearParams(NamedTuple):
    """Parameters of the Larter-Breakspear model (TVB ``LarterBreakspear`` names and defaults).

    Attributes
    ----------
    gCa: Ca++ conductance (1.1).
    gK: K+ conductance (2.0).
    gL: leak conductance (0.5).
    phi: temperature scaling of the K+ relaxation (0.7).
    gNa: Na+ conductance (6.7).
    TK: K+ channel threshold (0.0).
    TCa: Ca++ channel threshold (-0.01).
    TNa: Na+ channel threshold (0.3).
    VCa: Ca++ Nernst potential (1.0).
    VK: K+ Nernst potential (-0.7).
    VL: leak Nernst potential (-0.5).
    VNa: Na+ Nernst potential (0.53).
    d_K: spread of the K+ channel threshold (0.3).
    tau_K: K+ relaxation time constant, ms (1.0).
    d_Na: spread of the Na+ channel threshold (0.15).
    d_Ca: spread of the Ca++ channel threshold (0.15).
    aei: excitatory-to-inhibitory synaptic strength (2.0).
    aie: inhibitory-to-excitatory synaptic strength (2.0).
    b: time-scale factor of the inhibitory population (0.1).
    C: share of the excitatory drive taken by the long-range input (0.1).
    ane: non-specific-to-excitatory synaptic strength (1.0).
    ani: non-specific-to-inhibitory synaptic strength (0.4).
    aee: excitatory-to-excitatory synaptic strength (0.4).
    Iext: subcortical (non-specific) input (0.3).
    rNMDA: ratio of NMDA to AMPA receptors (0.25).
    VT: mean excitatory threshold (0.0).
    d_V: spread of the excitatory threshold (0.65; the main bifurcation parameter, Hopf of the
        upper fixed point at 0.51527 with the other defaults).
    ZT: mean inhibitory threshold (0.0).
    d_Z: spread of the inhibitory threshold (0.7).
    QV_max: maximal excitatory firing rate (1.0).
    QZ_max: maximal inhibitory firing rate (1.0).
    t_scale: time-scale factor of all three equations (1.0).
    """

    gCa: ArrayLike = 1.1
    gK: ArrayLike = 2.0
    gL: ArrayLike = 0.5
    phi: ArrayLike = 0.7
    gNa: ArrayLike = 6.7
    TK: ArrayLike = 0.0
    TCa: ArrayLike = -0.01
    TNa: ArrayLike = 0.3
    VCa: ArrayLike = 1.0
    VK: ArrayLike = -0.7
    VL: ArrayLike = -0.5
    VNa: ArrayLike = 0.53
    d_K: ArrayLike = 0.3
    tau_K: ArrayLike = 1.0
    d_Na: ArrayLike = 0.15
    d_Ca: ArrayLike = 0.15
    aei: ArrayLike = 2.0
    aie: ArrayLike = 2.0
    b: ArrayLike = 0.1
    C: ArrayLike = 0.1
    ane: ArrayLike = 1.0
    ani: ArrayLike = 0.4
    aee: ArrayLike = 0.4
    Iext: ArrayLike = 0.3
    rNMDA: ArrayLike = 0.25
    VT: ArrayLike = 0.0
    d_V: ArrayLike = 0.65
    ZT: ArrayLike = 0.0
    d_Z: ArrayLike = 0.7
    QV_max: ArrayLike = 1.0
    QZ_max: ArrayLike = 1.0
    t_scale: ArrayLike = 1.0


def larter_breakspear_dfun(state: Array, coupling: Array, params: LarterBreakspearParams) -> Array:
    """Derivative of the Larter-Breakspear model.

    Parameters
    ----------
    state:
        ``(3, *space)``: rows ``V`` (mean excitatory potential), ``W`` (fraction of open K+
        channels), ``Z`` (mean inhibitory potential).
    coupling:
        ``(1, *space)``: long-range input standing for the neighbours' mean rate, weighted
        by ``C``.
    params:
        :class:`LarterBreakspearParams`; every field broadcasts against ``space``.

    Returns
    -------
    ``(3, *space)`` time derivative per ms (times ``t_scale``).

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> p = LarterBreakspearParams()
    >>> larter_breakspear_dfun(jnp.zeros((3, 4)), jnp.zeros((1, 4)), p).shape
    (3, 4)
    """
    p = params
    V, W, Z = state[0], state[1], state[2]
    c = coupling[0]
    m_Ca = 0.5 * (1.0 + jnp.tanh((V - p.TCa) / p.d_Ca))
    m_Na = 0.5 * (1.0 + jnp.tanh((V - p.TNa) / p.d_Na))
    m_K = 0.5 * (1.0 + jnp.tanh((V - p.TK) / p.d_K))
    QV = 0.5 * p.QV_max * (1.0 + jnp.tanh((V - p.VT) / p.d_V))
    QZ = 0.5 * p.QZ_max * (1.0 + jnp.tanh((Z - p.ZT) / p.d_Z))
    own = (1.0 - p.C) * QV
    dV = (
        -(p.gCa + p.rNMDA * p.aee * own + p.C * p.rNMDA * p.aee * c) * m_Ca * (V - p.VCa)
        - p.gK * W * (V - p.VK)
        - p.gL * (V - p.VL)
        - (p.gNa * m_Na + p.aee * own + p.C * p.aee * c) * (V - p.VNa)
        - p.aie * Z * QZ
        + p.ane * p.Iext
    )
    dW = p.phi * (m_K - W) / p.tau_K
    dZ = p.b * (p.ani * p.Iext + p.aei * V * QV)
    return p.t_scale * jnp.stack([dV, dW, dZ])


larter_breakspear = Model(
    name="larter_breakspear",
    state_names=("V", "W", "Z"),
    params_cls=LarterBreakspearParams,
    dfun=larter_breakspear_dfun,
    coupling_names=("QV_mean",),
    cvar=(0,),
    init=(0.0, 0.0, 0.0),
    bounds=((float("-inf"), float("inf")),) * 3,
)
"""Larter-Breakspear model; TVB's ``cvar = (0,)`` sends ``V``; the input (weighted by ``C``)
stands for the neighbours' mean rate, so a rate coupling (``pre = Q_V(V)``) matches the paper."""
