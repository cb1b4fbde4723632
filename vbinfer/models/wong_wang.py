"""Reduced Wong-Wang models: NMDA gating mean fields fitted to resting-state BOLD and FC.

Two models, with The Virtual Brain's equations, parameter names, defaults and units (time in
ms). Both use the Abbott-Chance transfer function :math:`H(x) = (a x - b) / (1 - e^{-d (a x -
b)})` of the input current :math:`x` (nA), here evaluated without overflow or a 0/0 at
:math:`a x = b` (the limit there is :math:`1/d`), so values and gradients stay finite everywhere.

**One population** (:data:`reduced_wong_wang`, TVB ``ReducedWongWang``; Deco et al. 2013,
p. 11242). :math:`H` in kHz (``a`` in nC^-1, ``b`` in kHz, ``d`` in ms):

.. math::

    x_k = w J_N S_k + I_o + J_N c_k, \\qquad
    \\dot S_k = -S_k / \\tau_s + (1 - S_k)\\, \\gamma\\, H(x_k)

The long-range input :math:`c_k = a \\sum_j W_{kj} S_j` (linear coupling of ``S``, TVB's
``cvar = (0,)``; Deco et al.'s global coupling ``G`` is the coupling strength ``a``) is scaled by
``J_N``, exactly as in TVB. A homogeneous network (all row sums of ``W`` equal to ``k``) at
a synchronous state is the single node with ``w`` replaced by ``w + a k``.

**Excitatory-inhibitory** (:data:`reduced_wong_wang_exc_inh`, TVB ``ReducedWongWangExcInh``;
Deco et al. 2014). Rates in Hz (``a_e``, ``a_i`` in nC^-1, ``b_e``, ``b_i`` in Hz, ``d_e``,
``d_i`` in s), so ``gamma_e = 0.641 / 1000`` and ``gamma_i = 1 / 1000`` turn Hz into ms^-1:

.. math::

    x_e = w_p J_N S_e - J_i S_i + W_e I_o + G J_N c + I_{ext}, \\qquad
    \\dot S_e = -S_e / \\tau_e + (1 - S_e)\\, \\gamma_e H_e(x_e)

    x_i = J_N S_e - S_i + W_i I_o + \\lambda G J_N c, \\qquad
    \\dot S_i = -S_i / \\tau_i + \\gamma_i H_i(x_i)

As in TVB, the global coupling ``G`` is a model parameter and multiplies the coupling input
``c`` (``cvar = (0,)``: the network sends ``S_e``) together with ``J_N``; vbinfer's linear
coupling multiplies by its own ``a`` first, so the effective global coupling is ``a * G``. For
TVB parity use the same linear coupling as TVB (``a`` there, ``G`` here); to fit one global
coupling, fix one of the two (e.g. ``a = 1``) and infer the other. ``lamda`` (TVB's spelling)
sends the coupling to the inhibitory population too (0: not at all, as in Deco et al. 2014).

**State bounds.** As in TVB (``state_variable_boundaries``), every gating variable lies in
[0, 1]; the integrator clips them after every stage (``bounds``), not the derivative.

**Behaviour** (derived from these equations; checked in ``tests/test_models_more.py``).
One population: at TVB's defaults (``w = 0.6``, ``I_o = 0.33``) the isolated node has a single
stable fixed point, ``S* = 0.09802``; with Deco et al. 2013's ``w = 0.9``, ``I_o = 0.3`` it is
``S* = 0.03436`` (``H = 0.555`` Hz), relaxing at 0.0078 /ms. At ``I_o = 0.3`` the node is
bistable (low and high activity states with a saddle between) for ``w`` between the folds
1.15474 and 1.79767; a homogeneous network with row sums ``k`` and ``w = 0.9`` is therefore
bistable at the synchronous state for ``a k`` in [0.2547, 0.8977]. ``[0, 1]`` is forward
invariant (``dS/dt = gamma H > 0`` at 0 and ``-1 / tau_s`` at 1). Excitatory-inhibitory: the
isolated node (``c = 0``) at the defaults, ``J_i = 1``, has a single stable fixed point (a node)
with ``H_e = 3.077`` Hz and ``H_i = 3.922`` Hz: Deco et al. 2014's feedback inhibition control
target of about 3 Hz (FIC for exactly 3 Hz gives ``J_i = 1.0107``).

TVB's ``sigma_noise`` of ``ReducedWongWang`` is not a model parameter: noise is the
simulator's (:class:`vbinfer.noise.AdditiveNoise`).

References: K.-F. Wong, X.-J. Wang, A recurrent network mechanism of time integration in
perceptual decisions, J. Neurosci. 26, 1314-1328 (2006); G. Deco, A. Ponce-Alvarez, D. Mantini,
G. L. Romani, P. Hagmann, M. Corbetta, Resting-state functional connectivity emerges from
structurally and dynamically shaped slow linear fluctuations, J. Neurosci. 33, 11239-11252
(2013); G. Deco, A. Ponce-Alvarez, P. Hagmann, G. L. Romani, D. Mantini, M. Corbetta, How local
excitation-inhibition ratio impacts the whole brain dynamics, J. Neurosci. 34, 7886-7898 (2014).
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from vbinfer._typing import Array, ArrayLike
from vbinfer.models.base import Model

__all__ = [
    "ReducedWongWangExcInhParams",
    "ReducedWongWangParams",
    "reduced_wong_wang",
    "reduced_wong_wang_dfun",
    "reduced_wong_wang_exc_inh",
    "reduced_wong_wang_exc_inh_dfun",
    "reduced_wong_wang_exc_inh_rates",
    "reduced_wong_wang_rate",
]


def _abbott_chance(y: Array, d: ArrayLike) -> Array:
    """``y / (1 - exp(-d y))`` without overflow, cancellation or 0/0 (limit ``1/d`` at 0).

    With ``u = d y`` and ``v = -|u|``: ``g(u) = u / (1 - e^-u)`` is ``u / -expm1(v)`` for
    ``u > 0`` and ``|u| e^v / -expm1(v)`` for ``u < 0`` (no overflow: ``v <= 0``), and a Taylor
    series for ``|u| < 1e-4``; the result is ``g(u) / d``. Every branch sees safe arguments, so
    the gradient is finite everywhere too.
    """
    u = d * y
    small = jnp.abs(u) < 1e-4
    u_safe = jnp.where(small, 1.0, u)
    v = -jnp.abs(u_safe)
    g = jnp.where(u_safe > 0.0, u_safe, -u_safe * jnp.exp(v)) / -jnp.expm1(v)
    g_small = 1.0 + u / 2.0 + u * u / 12.0
    return jnp.where(small, g_small, g) / d


# --------------------------------------------------------------------------------------------
# one population


class ReducedWongWangParams(NamedTuple):
    """Parameters of the reduced Wong-Wang model (TVB ``ReducedWongWang`` names and defaults).

    Attributes
    ----------
    a: input gain of the transfer function, nC^-1 (0.270; 270 n/C with rates in Hz).
    b: input shift of the transfer function, kHz (0.108).
    d: curvature of the transfer function, ms (154.0).
    gamma: kinetic parameter (0.641).
    tau_s: NMDA decay time constant, ms (100.0).
    w: excitatory recurrence (0.6; Deco et al. 2013 use 0.9).
    J_N: NMDA synaptic coupling, nA (0.2609); also scales the long-range input.
    I_o: effective external input, nA (0.33; Deco et al. 2013 use 0.3).
    """

    a: ArrayLike = 0.270
    b: ArrayLike = 0.108
    d: ArrayLike = 154.0
    gamma: ArrayLike = 0.641
    tau_s: ArrayLike = 100.0
    w: ArrayLike = 0.6
    J_N: ArrayLike = 0.2609
    I_o: ArrayLike = 0.33


def reduced_wong_wang_rate(state: Array, coupling: Array, params: ReducedWongWangParams) -> Array:
    """Population firing rate ``H(x)`` of the reduced Wong-Wang model, kHz.

    Parameters
    ----------
    state:
        ``(1, *space)``: row ``S``.
    coupling:
        ``(1, *space)``: long-range input (scaled by ``J_N`` inside).
    params:
        :class:`ReducedWongWangParams`.

    Returns
    -------
    ``space``-shaped rate in kHz (spikes per ms; times 1000 for Hz).

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> r = reduced_wong_wang_rate(jnp.zeros((1, 2)), jnp.zeros((1, 2)), ReducedWongWangParams())
    >>> r.shape
    (2,)
    """
    p = params
    x = p.w * p.J_N * state[0] + p.I_o + p.J_N * coupling[0]
    return _abbott_chance(p.a * x - p.b, p.d)


def reduced_wong_wang_dfun(state: Array, coupling: Array, params: ReducedWongWangParams) -> Array:
    """Derivative of the one-population reduced Wong-Wang model.

    Parameters
    ----------
    state:
        ``(1, *space)``: row ``S`` (NMDA gating, in [0, 1]).
    coupling:
        ``(1, *space)``: long-range input ``a * sum_j W_kj S_j`` (entering as ``J_N * c``).
    params:
        :class:`ReducedWongWangParams`; every field broadcasts against ``space``.

    Returns
    -------
    ``(1, *space)`` time derivative per ms.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> d = reduced_wong_wang_dfun(jnp.full((1, 3), 0.1), jnp.zeros((1, 3)), ReducedWongWangParams())
    >>> d.shape
    (1, 3)
    """
    p = params
    S = state[0]
    H = reduced_wong_wang_rate(state, coupling, p)
    return (-S / p.tau_s + (1.0 - S) * H * p.gamma)[None]


reduced_wong_wang = Model(
    name="reduced_wong_wang",
    state_names=("S",),
    params_cls=ReducedWongWangParams,
    dfun=reduced_wong_wang_dfun,
    coupling_names=("S",),
    cvar=(0,),
    init=(0.1,),
    bounds=((0.0, 1.0),),
)
"""Reduced Wong-Wang model (one population); ``S`` is coupled and bounded to [0, 1] as in TVB."""


# --------------------------------------------------------------------------------------------
# excitatory-inhibitory


class ReducedWongWangExcInhParams(NamedTuple):
    """Parameters of the E-I reduced Wong-Wang model (TVB ``ReducedWongWangExcInh`` defaults).

    Attributes
    ----------
    a_e: excitatory input gain, nC^-1 (310.0).
    b_e: excitatory input shift, Hz (125.0).
    d_e: excitatory curvature, s (0.160).
    gamma_e: excitatory kinetic parameter, per ms and Hz (0.641 / 1000).
    tau_e: excitatory (NMDA) decay time constant, ms (100.0).
    w_p: excitatory recurrence weight (1.4).
    J_N: NMDA current, nA (0.15); also scales the long-range input.
    W_e: scaling of the external input to the excitatory population (1.0).
    a_i: inhibitory input gain, nC^-1 (615.0).
    b_i: inhibitory input shift, Hz (177.0).
    d_i: inhibitory curvature, s (0.087).
    gamma_i: inhibitory kinetic parameter, per ms and Hz (1 / 1000).
    tau_i: inhibitory (GABA) decay time constant, ms (10.0).
    J_i: local feedback inhibition, nA (1.0; tuned per node by feedback inhibition control).
    W_i: scaling of the external input to the inhibitory population (0.7).
    I_o: effective external input, nA (0.382).
    I_ext: external stimulus to the excitatory population, nA (0.0).
    G: global coupling scaling (2.0), multiplying ``J_N * c`` as in TVB.
    lamda: scaling of the long-range input to the inhibitory population (0.0).
    """

    a_e: ArrayLike = 310.0
    b_e: ArrayLike = 125.0
    d_e: ArrayLike = 0.160
    gamma_e: ArrayLike = 0.641 / 1000.0
    tau_e: ArrayLike = 100.0
    w_p: ArrayLike = 1.4
    J_N: ArrayLike = 0.15
    W_e: ArrayLike = 1.0
    a_i: ArrayLike = 615.0
    b_i: ArrayLike = 177.0
    d_i: ArrayLike = 0.087
    gamma_i: ArrayLike = 1.0 / 1000.0
    tau_i: ArrayLike = 10.0
    J_i: ArrayLike = 1.0
    W_i: ArrayLike = 0.7
    I_o: ArrayLike = 0.382
    I_ext: ArrayLike = 0.0
    G: ArrayLike = 2.0
    lamda: ArrayLike = 0.0


def reduced_wong_wang_exc_inh_rates(
    state: Array, coupling: Array, params: ReducedWongWangExcInhParams
) -> Array:
    """Firing rates ``(H_e, H_i)`` of the E-I reduced Wong-Wang model, Hz.

    Parameters
    ----------
    state:
        ``(2, *space)``: rows ``S_e``, ``S_i``.
    coupling:
        ``(1, *space)``: long-range input (scaled by ``G * J_N`` inside).
    params:
        :class:`ReducedWongWangExcInhParams`.

    Returns
    -------
    ``(2, *space)``: ``H_e`` and ``H_i`` in Hz.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> p = ReducedWongWangExcInhParams()
    >>> reduced_wong_wang_exc_inh_rates(jnp.zeros((2, 4)), jnp.zeros((1, 4)), p).shape
    (2, 4)
    """
    p = params
    S_e, S_i = state[0], state[1]
    cc = p.G * p.J_N * coupling[0]
    jn_se = p.J_N * S_e
    x_e = p.w_p * jn_se - p.J_i * S_i + p.W_e * p.I_o + cc + p.I_ext
    x_i = jn_se - S_i + p.W_i * p.I_o + p.lamda * cc
    H_e = _abbott_chance(p.a_e * x_e - p.b_e, p.d_e)
    H_i = _abbott_chance(p.a_i * x_i - p.b_i, p.d_i)
    return jnp.stack([H_e, H_i])


def reduced_wong_wang_exc_inh_dfun(
    state: Array, coupling: Array, params: ReducedWongWangExcInhParams
) -> Array:
    """Derivative of the excitatory-inhibitory reduced Wong-Wang model.

    Parameters
    ----------
    state:
        ``(2, *space)``: rows ``S_e``, ``S_i`` (NMDA and GABA gating, in [0, 1]).
    coupling:
        ``(1, *space)``: long-range input ``a * sum_j W_kj S_e,j`` (entering as ``G J_N c``).
    params:
        :class:`ReducedWongWangExcInhParams`; every field broadcasts against ``space``.

    Returns
    -------
    ``(2, *space)`` time derivative per ms.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> p = ReducedWongWangExcInhParams()
    >>> reduced_wong_wang_exc_inh_dfun(jnp.full((2, 3), 0.1), jnp.zeros((1, 3)), p).shape
    (2, 3)
    """
    p = params
    S_e, S_i = state[0], state[1]
    H = reduced_wong_wang_exc_inh_rates(state, coupling, p)
    dS_e = -S_e / p.tau_e + (1.0 - S_e) * H[0] * p.gamma_e
    dS_i = -S_i / p.tau_i + H[1] * p.gamma_i
    return jnp.stack([dS_e, dS_i])


reduced_wong_wang_exc_inh = Model(
    name="reduced_wong_wang_exc_inh",
    state_names=("S_e", "S_i"),
    params_cls=ReducedWongWangExcInhParams,
    dfun=reduced_wong_wang_exc_inh_dfun,
    coupling_names=("S_e",),
    cvar=(0,),
    init=(0.1, 0.04),
    bounds=((0.0, 1.0), (0.0, 1.0)),
)
"""E-I reduced Wong-Wang model; ``S_e`` is coupled, ``S_e`` and ``S_i`` bounded to [0, 1] as in
TVB. The long-range input is scaled by the model's ``G`` (TVB) on top of the coupling's ``a``."""
