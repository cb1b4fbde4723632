"""Tests of the models most used to fit BOLD and FC: reduced Wong-Wang (one population and
excitatory-inhibitory), Kuramoto, generic 2D oscillator and Larter-Breakspear.

Every number asserted below is an identity of the equations, a value published for the model,
or a value derived here from the implemented derivative only (fixed points by root finding on
the nullclines, stability from ``jax.jacobian``, time series from a fixed-step RK4 or from
vbinfer's simulator); the derivations are spelled out next to each test, so a wrong equation,
sign or unit shows up as a wrong number.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import brentq, minimize_scalar

import vbinfer
from tests._models import dfun_inputs
from vbinfer.coupling import KuramotoParams, LinearParams
from vbinfer.models import (
    Generic2dOscillatorParams,
    KuramotoModelParams,
    LarterBreakspearParams,
    Model,
    ReducedWongWangExcInhParams,
    ReducedWongWangParams,
    default_state,
    generic_2d_oscillator,
    generic_2d_oscillator_dfun,
    kuramoto,
    kuramoto_dfun,
    larter_breakspear,
    larter_breakspear_dfun,
    reduced_wong_wang,
    reduced_wong_wang_dfun,
    reduced_wong_wang_exc_inh,
    reduced_wong_wang_exc_inh_dfun,
    reduced_wong_wang_exc_inh_rates,
    reduced_wong_wang_rate,
)

MODELS = [
    reduced_wong_wang,
    reduced_wong_wang_exc_inh,
    kuramoto,
    generic_2d_oscillator,
    larter_breakspear,
]


# jitted derivatives for the checks below (eager float64 dispatch compiles op by op: slow)
jit_reduced_wong_wang_exc_inh_dfun = jax.jit(reduced_wong_wang_exc_inh_dfun)
jit_reduced_wong_wang_exc_inh_rates = jax.jit(reduced_wong_wang_exc_inh_rates)
jit_reduced_wong_wang_dfun = jax.jit(reduced_wong_wang_dfun)
jit_reduced_wong_wang_rate = jax.jit(reduced_wong_wang_rate)
jit_kuramoto_dfun = jax.jit(kuramoto_dfun)
jit_generic_2d_oscillator_dfun = jax.jit(generic_2d_oscillator_dfun)
jit_larter_breakspear_dfun = jax.jit(larter_breakspear_dfun)


@pytest.fixture(scope="module", autouse=True)
def _x64():
    """Fixed points, folds and eigenvalues need float64, for this module only."""
    with jax.enable_x64(True):
        yield


# --------------------------------------------------------------------------------------------
# helpers


def _jacobian(dfun: Callable, n_coupling: int = 1) -> Callable:
    """Jacobian of the single-node derivative at ``x`` (no coupling input), as NumPy."""

    def f(x, p):
        return dfun(x[:, None], jnp.zeros((n_coupling, 1), x.dtype), p)[:, 0]

    jac = jax.jit(jax.jacobian(f))
    return lambda x, p: np.asarray(jac(jnp.asarray(x, jnp.float64), p))


def _eigvals(jac: Callable, x: Any, params: Any) -> np.ndarray:
    return np.linalg.eigvals(jac(x, params))


def _rk4(dfun: Callable, x0: Any, coupling: Any, params: Any, dt: float, n: int) -> np.ndarray:
    """Fixed-step RK4 of ``dfun`` with a constant input over ``n`` steps; every state."""
    x0 = jnp.asarray(x0, jnp.float64)
    coupling = jnp.asarray(coupling, jnp.float64)

    def one(x, _):
        k1 = dfun(x, coupling, params)
        k2 = dfun(x + 0.5 * dt * k1, coupling, params)
        k3 = dfun(x + 0.5 * dt * k2, coupling, params)
        k4 = dfun(x + dt * k3, coupling, params)
        x = x + dt / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
        return x, x

    _, ys = jax.jit(lambda x: jax.lax.scan(one, x, None, length=n))(x0)
    return np.asarray(ys)


def _periods(signal: np.ndarray, dt: float) -> np.ndarray:
    """Times between upward crossings of the mid level (linear interpolation), same unit as dt."""
    level = 0.5 * (signal.max() + signal.min())
    i = np.nonzero((signal[:-1] < level) & (signal[1:] >= level))[0]
    t = (i + (level - signal[i]) / (signal[i + 1] - signal[i])) * dt
    return np.diff(t)


def _finite_fields(params: Any) -> bool:
    return all(np.all(np.isfinite(np.asarray(v, dtype=float))) for v in params)


def _roots(g: Callable[[Any], Any], lo: float, hi: float, n: int) -> list[float]:
    """All roots of the vectorised ``g`` on ``[lo, hi]`` seen as sign changes on a grid of ``n``
    points (or exact zeros on it), refined by Brent's method."""
    xs = np.linspace(lo, hi, n)
    gs = np.asarray(g(xs))
    out = []
    for k in range(n):
        if gs[k] == 0.0:
            out.append(float(xs[k]))
        elif k + 1 < n and gs[k] * gs[k + 1] < 0.0:
            out.append(brentq(lambda x: float(g(np.float64(x))), xs[k], xs[k + 1], xtol=1e-15))
    return out


# --------------------------------------------------------------------------------------------
# every model: record, shapes, broadcasting, jit / vmap / grad, simulator


def test_models_export_sorted():
    import vbinfer.models as models

    assert list(models.__all__) == sorted(models.__all__)
    for m in MODELS:
        assert getattr(models, m.name) is m


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.name)
def test_model_record(model: Model):
    assert isinstance(model, Model)
    n = model.n_states
    assert len(model.init) == n and len(model.bounds) == n
    assert model.cvar == (0,)  # TVB's cvar for all five models
    assert model.n_coupling == 1
    params = model.params_cls()
    assert _finite_fields(params), params
    assert set(params._fields) == set(model.params_cls.__annotations__)
    for lo, hi in model.bounds:
        assert lo < hi
    for (lo, hi), x in zip(model.bounds, model.init, strict=True):
        assert lo <= x <= hi


def test_bounds_as_tvb():
    """TVB's state_variable_boundaries: the gating variables of both Wong-Wang models in [0, 1];
    the other three models have none."""
    assert reduced_wong_wang.bounds == ((0.0, 1.0),)
    assert reduced_wong_wang_exc_inh.bounds == ((0.0, 1.0), (0.0, 1.0))
    for m in (kuramoto, generic_2d_oscillator, larter_breakspear):
        assert not m.has_bounds


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.name)
def test_dfun_shapes_and_broadcast(model: Model):
    space = (5, 3)  # (n_nodes, batch)
    state, coupling = dfun_inputs(model, space)
    params = model.params_cls()
    dfun = jax.jit(model.dfun)
    out = dfun(state, coupling, params)
    assert out.shape == (model.n_states, *space)
    assert out.dtype == jnp.float64
    assert np.all(np.isfinite(np.asarray(out)))

    # every parameter gets one value per (node, batch) entry, scaled by 1.0 .. 1.1 (each with
    # its own pattern; 0.01 times it where the default is 0): broadcasting must match a
    # node-by-node evaluation with scalar parameters
    rng = np.random.default_rng(2)
    values = {}
    for name in params._fields:
        base = float(getattr(params, name))
        scale = 1.0 + 0.1 * rng.permutation(np.linspace(0.0, 1.0, 15)).reshape(space)
        values[name] = base * scale if base != 0.0 else 0.01 * scale
    out = np.asarray(dfun(state, coupling, params._replace(**values)))
    for i, j in [(0, 0), (2, 1), (4, 2)]:
        p_ij = params._replace(**{k: jnp.asarray(v[i, j]) for k, v in values.items()})
        single = dfun(state[:, i, j][:, None], coupling[:, i, j][:, None], p_ij)[:, 0]
        np.testing.assert_allclose(out[:, i, j], np.asarray(single), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.name)
def test_dfun_jit_vmap_grad(model: Model):
    """jit (against eager), vmap over nodes and over a parameter, and grad with respect to
    every parameter, the state and the coupling: one compiled program per model."""
    space = (4,)
    state, coupling = dfun_inputs(model, space, seed=1)
    params = model.params_cls()
    float_params = model.params_cls(*(jnp.asarray(v, jnp.float64) for v in params))
    ref = np.asarray(model.dfun(state, coupling, params))  # eager
    name = params._fields[0]
    values = float(getattr(params, name)) * jnp.array([0.9, 1.0, 1.1])

    @jax.jit
    def checks(state, coupling, p, values):
        plain = model.dfun(state, coupling, p)
        per_node = jax.vmap(
            lambda s, c: model.dfun(s[:, None], c[:, None], p)[:, 0], in_axes=(1, 1), out_axes=1
        )(state, coupling)
        batched = jax.vmap(lambda v: model.dfun(state, coupling, p._replace(**{name: v})))(values)

        def loss(q, s, c):
            return jnp.sum(model.dfun(s, c, q) ** 2)

        grads = jax.grad(loss, argnums=(0, 1, 2))(p, state, coupling)
        return plain, per_node, batched, grads

    plain, per_node, batched, (g_params, g_state, g_coupling) = checks(
        state, coupling, float_params, values
    )
    np.testing.assert_allclose(np.asarray(plain), ref, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(np.asarray(per_node), ref, rtol=1e-12)
    assert batched.shape == (3, model.n_states, *space)
    np.testing.assert_allclose(np.asarray(batched[1]), ref, rtol=1e-12)
    assert _finite_fields(g_params)
    assert g_state.shape == state.shape and np.all(np.isfinite(np.asarray(g_state)))
    assert np.all(np.isfinite(np.asarray(g_coupling))) and float(jnp.abs(g_coupling).max()) > 0
    assert any(float(jnp.abs(g)) > 0 for g in g_params)


_SIM_CASES = [  # model, coupling, its parameters, dt (ms), additive noise sigma, delays
    (reduced_wong_wang, vbinfer.coupling.linear, LinearParams(a=0.6), 0.5, 0.05, True),
    (reduced_wong_wang_exc_inh, vbinfer.coupling.linear, LinearParams(a=1.0), 0.1, 1e-3, True),
    (kuramoto, vbinfer.coupling.kuramoto, KuramotoParams(a=0.05), 0.1, 1e-3, False),
    (generic_2d_oscillator, vbinfer.coupling.linear, LinearParams(a=0.1), 0.1, 1e-3, False),
    (larter_breakspear, vbinfer.coupling.linear, LinearParams(a=0.1), 0.05, 1e-3, False),
]


@pytest.mark.parametrize("case", _SIM_CASES, ids=lambda c: c[0].name)
def test_network_simulation(case):
    """A short noisy network run through vbinfer's simulator (with conduction delays for the
    Wong-Wang models): finite output within the model's bounds. For the one-population
    Wong-Wang node the noise is strong (sigma = 0.05): S visits both ends of [0, 1] and the
    integrator's clipping keeps it inside."""
    model, coupling, cpl, dt, sigma, delayed = case
    n = 5
    rng = np.random.default_rng(7)
    W = rng.uniform(size=(n, n))
    np.fill_diagonal(W, 0.0)
    W /= W.sum(axis=1, keepdims=True)
    L = rng.uniform(10.0, 40.0, size=(n, n))
    net = vbinfer.make_network(W, L if delayed else None, speed=10.0)
    sim = vbinfer.make_simulator(
        model,
        dt=dt,
        num_steps=400,
        coupling=coupling,
        max_lag=vbinfer.max_lag_steps(L, 10.0, dt) if delayed else None,
        noise=vbinfer.AdditiveNoise(sigma=sigma),
    )
    init = default_state(model, n) + 0.1 * jnp.asarray(rng.uniform(size=(model.n_states, n)))
    res = sim.run(jax.random.PRNGKey(0), vbinfer.SimParams(model.params_cls(), cpl), net, init)
    y = np.asarray(res.outputs["tavg"])
    assert y.shape == (400, model.n_states, n)
    assert np.all(np.isfinite(y))
    for k, (lo, hi) in enumerate(model.bounds):
        assert np.all((y[:, k] >= lo) & (y[:, k] <= hi))
    if model is reduced_wong_wang:
        assert y.min() < 0.01 and y.max() > 0.5


# --------------------------------------------------------------------------------------------
# Reduced Wong-Wang, one population (Deco et al. 2013)
#
# dS/dt = -S / tau_s + (1 - S) gamma H(x), x = w J_N S + I_o + J_N c. Since dS/dt increases
# with w for every S in (0, 1), each S in (0, 1) is a fixed point for exactly one w:
# H(x) = S / (tau_s gamma (1 - S)) gives x by inverting the increasing H, then
# w(S) = (x - I_o) / (J_N S). The fixed points for a given w are the solutions of w(S) = w, and
# the folds (saddle-nodes) are the local extrema of w(S).

_rww_jac = _jacobian(reduced_wong_wang_dfun)


@jax.jit
def _rww_dS(S: Any, p: ReducedWongWangParams) -> jax.Array:
    """dS/dt of an isolated node for any shape of ``S``."""
    return jit_reduced_wong_wang_dfun(S[None], jnp.zeros((1, *S.shape)), p)[0]


def _rww_H_khz(y: Any, d: float) -> np.ndarray:
    """H as written in TVB and Deco et al.: ``y / (1 - exp(-d y))``, NumPy, kHz."""
    y = np.asarray(y, dtype=float)
    return y / (1.0 - np.exp(-d * y))


def rww_w_of_S(S: float, p: ReducedWongWangParams) -> float:
    """The recurrence ``w`` for which ``S`` is a fixed point (inverse of the transfer function)."""
    H = S / (p.tau_s * p.gamma * (1.0 - S))
    y = brentq(lambda y: _rww_H_khz(y, p.d) - H, -1.0, 10.0, xtol=1e-15)
    x = (y + p.b) / p.a
    return (x - p.I_o) / (p.J_N * S)


def rww_fixed_points(p: ReducedWongWangParams) -> list[tuple[float, float]]:
    """``(S*, eigenvalue)`` for every fixed point in (0, 1): roots of dS/dt on S."""

    roots = _roots(lambda S: _rww_dS(jnp.asarray(S), p), 1e-9, 1.0 - 1e-9, 2001)
    return [(S, float(_rww_jac([S], p)[0, 0])) for S in roots]


def rww_folds(p: ReducedWongWangParams) -> tuple[tuple[float, float], tuple[float, float]]:
    """``(S, w)`` at the two folds: the maximum and the minimum of ``w(S)``."""
    opts = {"xatol": 1e-12}
    hi = minimize_scalar(
        lambda S: -rww_w_of_S(S, p), bounds=(0.05, 0.3), method="bounded", options=opts
    )
    lo = minimize_scalar(
        lambda S: rww_w_of_S(S, p), bounds=(0.3, 0.9), method="bounded", options=opts
    )
    return (lo.x, rww_w_of_S(lo.x, p)), (hi.x, rww_w_of_S(hi.x, p))


def test_rww_transfer_function():
    """H is TVB's (a x - b) / (1 - exp(-d (a x - b))), with the limit 1/d at a x = b and no
    overflow for strongly negative input; its derivative is the analytic one."""
    p = ReducedWongWangParams()
    S = jnp.array([[0.0, 0.2, 0.5, 1.0, 0.3]])
    c = jnp.array([[0.0, 0.1, -0.2, 0.3, -100.0]])
    x = p.w * p.J_N * S[0] + p.I_o + p.J_N * c[0]
    y = np.asarray(p.a * x - p.b)
    H = np.asarray(jit_reduced_wong_wang_rate(S, c, p))
    np.testing.assert_allclose(H[:4], _rww_H_khz(y[:4], p.d), rtol=1e-13)
    assert H[4] >= 0.0 and H[4] < 1e-300  # e^{-d |y|} underflows: no inf / nan
    # removable singularity at y = 0 (x = b / a), and next to it (Taylor branch, |d y| < 1e-4)
    S0 = (p.b / p.a - p.I_o) / (p.w * p.J_N)
    for eps in (0.0, 1e-9, -1e-9, 1e-5, -1e-5, 1e-3):
        h = float(jit_reduced_wong_wang_rate(jnp.array([[S0 + eps]]), jnp.zeros((1, 1)), p)[0])
        y0 = p.a * (p.w * p.J_N * (S0 + eps) + p.I_o) - p.b
        ref = 1.0 / p.d if y0 == 0.0 else y0 / -math.expm1(-p.d * y0)
        assert h == pytest.approx(ref, rel=1e-13)
    # dH/dy = (1 - e^{-dy} (1 + d y)) / (1 - e^{-dy})^2, checked through dH/dS = a w J_N dH/dy
    dH = jax.jit(
        jax.vmap(
            jax.grad(lambda s: jit_reduced_wong_wang_rate(s[None, None], jnp.zeros((1, 1)), p)[0])
        )
    )(jnp.array([0.0, 0.1, S0, 0.6]))
    y = p.a * (p.w * p.J_N * np.array([0.0, 0.1, S0, 0.6]) + p.I_o) - p.b
    e = np.exp(-p.d * y)
    with np.errstate(invalid="ignore", divide="ignore"):
        ref = (1.0 - e * (1.0 + p.d * y)) / (1.0 - e) ** 2
    ref[2] = 0.5  # limit at y = 0
    np.testing.assert_allclose(np.asarray(dH), p.a * p.w * p.J_N * ref, rtol=1e-7)


def test_rww_fixed_point_Io_03():
    """Deco et al. 2013's isolated node (w = 0.9, I_o = 0.3 nA): one fixed point, stable, which
    solves the steady-state equation S = tau gamma H / (1 + tau gamma H)."""
    p = ReducedWongWangParams(w=0.9, I_o=0.3)
    ((S, lam),) = rww_fixed_points(p)
    H = float(jit_reduced_wong_wang_rate(jnp.array([[S]]), jnp.zeros((1, 1)), p)[0])
    assert S == pytest.approx(p.tau_s * p.gamma * H / (1.0 + p.tau_s * p.gamma * H), rel=1e-12)
    assert rww_w_of_S(S, p) == pytest.approx(0.9, rel=1e-10)  # same point, other way round
    assert S == pytest.approx(0.034355, abs=1e-6)
    assert 1000.0 * H == pytest.approx(0.5550, abs=1e-4)  # Hz
    # analytic derivative: -1/tau_s - gamma H + (1 - S) gamma a w J_N H'(y)
    y = p.a * (p.w * p.J_N * S + p.I_o) - p.b
    e = math.exp(-p.d * y)
    dH = (1.0 - e * (1.0 + p.d * y)) / (1.0 - e) ** 2
    ref = -1.0 / p.tau_s - p.gamma * H + (1.0 - S) * p.gamma * p.a * p.w * p.J_N * dH
    assert lam == pytest.approx(ref, rel=1e-10)
    assert lam < 0  # stable, relaxing in about 1 / 0.0078 = 128 ms
    assert lam == pytest.approx(-0.007804, abs=1e-6)
    # the attractor is reached from anywhere in [0, 1]
    ys = _rk4(reduced_wong_wang_dfun, [[0.0, 0.5, 1.0]], jnp.zeros((1, 3)), p, 1.0, 4000)
    np.testing.assert_allclose(ys[-1, 0], S, atol=1e-9)


def test_rww_defaults_fixed_point():
    """TVB defaults (w = 0.6, I_o = 0.33): a single stable fixed point, S* = 0.09802."""
    ((S, lam),) = rww_fixed_points(ReducedWongWangParams())
    assert S == pytest.approx(0.098018, abs=1e-6) and lam < 0


def test_rww_bistability_in_w():
    """At I_o = 0.3 nA the isolated node is bistable (low and high activity, with a saddle in
    between) for w between two folds, w = 1.15474 (saddle and high state merge, S = 0.520) and
    w = 1.79767 (saddle and low state merge, S = 0.080): derived from the fixed-point curve
    w(S), confirmed by the Jacobian (zero at the folds) and by counting fixed points."""
    p = ReducedWongWangParams(I_o=0.3)
    (S_lo, w_lo), (S_hi, w_hi) = rww_folds(p)
    assert (w_lo, w_hi) == pytest.approx((1.15474, 1.79767), abs=1e-5)
    assert (S_lo, S_hi) == pytest.approx((0.5199, 0.0802), abs=1e-4)
    for S, w in [(S_lo, w_lo), (S_hi, w_hi)]:
        assert abs(_rww_jac([S], p._replace(w=w))[0, 0]) < 1e-8  # saddle-node
    counts = {w: len(rww_fixed_points(p._replace(w=w))) for w in (0.9, 1.15, 1.16, 1.79, 1.81)}
    assert counts == {0.9: 1, 1.15: 1, 1.16: 3, 1.79: 3, 1.81: 1}
    (S1, l1), (S2, l2), (S3, l3) = rww_fixed_points(p._replace(w=1.4))
    assert l1 < 0 and l2 > 0 and l3 < 0  # stable, saddle, stable
    # both attractors are reached, depending on the initial state
    ys = _rk4(
        reduced_wong_wang_dfun,
        [[S2 - 0.01, S2 + 0.01]],
        jnp.zeros((1, 2)),
        p._replace(w=1.4),
        1.0,
        4000,
    )
    np.testing.assert_allclose(ys[-1, 0], [S1, S3], atol=1e-8)


def test_rww_homogeneous_network():
    """With linear coupling and row sums of W equal to k, a synchronous network state is the
    isolated node with w -> w + a k (the coupling enters as J_N c): with Deco et al.'s w = 0.9,
    the network is bistable for a k between the folds minus 0.9 (0.2547 .. 0.8977). Checked
    through vbinfer's simulator: a four-node all-to-all network, a = 0.5, converges to the low or
    the high fixed point of the isolated node with w = 1.4."""
    p = ReducedWongWangParams(w=0.9, I_o=0.3)
    S = jnp.linspace(0.0, 1.0, 11)[None]
    np.testing.assert_allclose(
        np.asarray(jit_reduced_wong_wang_dfun(S, 0.5 * S, p)),
        np.asarray(jit_reduced_wong_wang_dfun(S, jnp.zeros_like(S), p._replace(w=1.4))),
        rtol=1e-12,
        atol=1e-17,
    )
    (S1, _), (S2, _), (S3, _) = rww_fixed_points(p._replace(w=1.4))
    n = 4
    W = (np.ones((n, n)) - np.eye(n)) / (n - 1)
    sim = vbinfer.make_simulator(reduced_wong_wang, dt=0.5, num_steps=6000, sample_every=6000)
    init = jnp.array([[[S2 - 0.02, S2 + 0.02]] * n])  # (1 state, 4 nodes, batch 2)
    res = sim.run(None, vbinfer.SimParams(p, LinearParams(a=0.5)), vbinfer.make_network(W), init)
    final = np.asarray(res.final.x[0])
    np.testing.assert_allclose(final[:, 0], S1, atol=1e-7)
    np.testing.assert_allclose(final[:, 1], S3, atol=1e-7)


def test_rww_S_stays_in_unit_interval():
    """[0, 1] is forward invariant: dS/dt = gamma H > 0 at S = 0 and -1/tau_s < 0 at S = 1 for
    any input (H > 0 everywhere); the integrator also clips to TVB's bounds [0, 1] (see
    test_network_simulation, with strong noise)."""
    p = ReducedWongWangParams()
    c = jnp.array([[-50.0, -1.0, 0.0, 1.0, 50.0]])
    d0 = np.asarray(jit_reduced_wong_wang_dfun(jnp.zeros((1, 5)), c, p))[0]
    d1 = np.asarray(jit_reduced_wong_wang_dfun(jnp.ones((1, 5)), c, p))[0]
    assert np.all(d0 >= 0.0) and np.all(d0[1:] > 0.0)
    np.testing.assert_allclose(d1, -1.0 / p.tau_s, rtol=1e-14)


# --------------------------------------------------------------------------------------------
# Reduced Wong-Wang, excitatory-inhibitory (Deco et al. 2014)
#
# dS_i/dt decreases with S_i, so for each S_e the S_i-nullcline point is unique (bisection); the
# fixed points are the roots of dS_e/dt along it.

_ei_jac = _jacobian(reduced_wong_wang_exc_inh_dfun)


@jax.jit
def _ei_Si(Se: Any, p: ReducedWongWangExcInhParams) -> jax.Array:
    """The unique S_i with dS_i/dt = 0 for each S_e (dS_i/dt decreases with S_i): bisection."""
    Se = jnp.asarray(Se, jnp.float64)

    def dSi(Si):
        x = jnp.stack([Se, Si])
        return jit_reduced_wong_wang_exc_inh_dfun(x, jnp.zeros((1, *Se.shape)), p)[1]

    def halve(_, bracket):
        lo, hi = bracket
        mid = 0.5 * (lo + hi)
        up = dSi(mid) > 0
        return jnp.where(up, mid, lo), jnp.where(up, hi, mid)

    lo, hi = jax.lax.fori_loop(0, 64, halve, (jnp.zeros_like(Se), jnp.full_like(Se, 2.0)))
    return 0.5 * (lo + hi)


@jax.jit
def _ei_dSe(Se: Any, p: ReducedWongWangExcInhParams) -> jax.Array:
    """dS_e/dt along the S_i-nullcline."""
    Se = jnp.asarray(Se, jnp.float64)
    x = jnp.stack([Se, _ei_Si(Se, p)])
    return jit_reduced_wong_wang_exc_inh_dfun(x, jnp.zeros((1, *Se.shape)), p)[0]


def ei_fixed_points(p: ReducedWongWangExcInhParams) -> list[np.ndarray]:
    roots = _roots(lambda Se: _ei_dSe(Se, p), 1e-9, 1.0 - 1e-9, 201)
    return [np.array([Se, float(_ei_Si(Se, p))]) for Se in roots]


def _ei_rates(x: np.ndarray, p: ReducedWongWangExcInhParams) -> np.ndarray:
    return np.asarray(
        jit_reduced_wong_wang_exc_inh_rates(jnp.asarray(x)[:, None], jnp.zeros((1, 1)), p)
    )[:, 0]


def test_rww_exc_inh_fic_target():
    """Deco et al. 2014: with J_i = 1 the isolated node's excitatory rate is about 3 Hz, the
    target of feedback inhibition control (FIC). Derived here: one fixed point, stable node,
    H_e = 3.077 Hz (within 0.1 Hz of 3 Hz), H_i = 3.922 Hz; FIC for 3 Hz exactly gives
    J_i = 1.0107."""
    p = ReducedWongWangExcInhParams()
    (x,) = ei_fixed_points(p)
    H_e, H_i = _ei_rates(x, p)
    assert abs(H_e - 3.0) < 0.1  # the published FIC target
    assert (H_e, H_i) == pytest.approx((3.0773, 3.9218), abs=1e-4)
    # steady-state identities: S_e = g tau H / (1 + g tau H), S_i = gamma_i tau_i H_i
    ge = p.gamma_e * p.tau_e * H_e
    np.testing.assert_allclose(x, [ge / (1.0 + ge), p.gamma_i * p.tau_i * H_i], rtol=1e-12)
    e = _eigvals(_ei_jac, x, p)
    assert np.all(np.abs(e.imag) < 1e-12) and np.all(e.real < 0)  # stable node
    np.testing.assert_allclose(np.sort(e.real), [-0.231452, -0.005982], atol=1e-6)
    ys = _rk4(reduced_wong_wang_exc_inh_dfun, [[0.5], [0.5]], jnp.zeros((1, 1)), p, 0.5, 8000)
    np.testing.assert_allclose(ys[-1, :, 0], x, atol=1e-9)

    def excess(J_i):
        q = p._replace(J_i=J_i)
        (y,) = ei_fixed_points(q)
        return _ei_rates(y, q)[0] - 3.0

    J_fic = brentq(excess, 0.9, 1.2, xtol=1e-8)
    assert J_fic == pytest.approx(1.0, abs=0.02)  # Deco et al.: J_i = 1 for an isolated node
    assert J_fic == pytest.approx(1.0107, abs=1e-4)


def test_rww_exc_inh_coupling_entry():
    """The long-range input enters as G J_N c in x_e and lamda G J_N c in x_i (TVB), so a
    linear coupling strength a and the model's G act only through the product a G."""
    p = ReducedWongWangExcInhParams(lamda=0.3)
    x = jnp.array([[0.2, 0.4], [0.05, 0.1]])
    c = jnp.array([[0.3, 0.7]])
    base = np.asarray(jit_reduced_wong_wang_exc_inh_rates(x, jnp.zeros_like(c), p))
    # the same shift applied through I_ext (excitatory) and through W_i I_o (inhibitory)
    q = p._replace(I_ext=p.G * p.J_N * c[0], W_i=p.W_i + p.lamda * p.G * p.J_N * c[0] / p.I_o)
    np.testing.assert_allclose(
        np.asarray(jit_reduced_wong_wang_exc_inh_rates(x, c, p)),
        np.asarray(jit_reduced_wong_wang_exc_inh_rates(x, jnp.zeros_like(c), q)),
        rtol=1e-13,
    )
    assert np.all(np.asarray(jit_reduced_wong_wang_exc_inh_rates(x, c, p)) > base)
    np.testing.assert_allclose(
        np.asarray(jit_reduced_wong_wang_exc_inh_dfun(x, 2.0 * c, p._replace(G=1.0))),
        np.asarray(jit_reduced_wong_wang_exc_inh_dfun(x, c, p._replace(G=2.0))),
        rtol=1e-14,
    )


# --------------------------------------------------------------------------------------------
# Kuramoto


def test_kuramoto_uncoupled_phase_advance(kuramoto_pair):
    """Without coupling every phase advances at its own omega (rad/ms), and is not wrapped."""
    omega = jnp.array([0.5, 1.0, 2.0 * math.pi * 0.04])  # the last is 40 Hz
    theta = jnp.array([[0.1, 7.0, -3.0]])
    d = jit_kuramoto_dfun(theta, jnp.zeros((1, 3)), KuramotoModelParams(omega=omega))
    np.testing.assert_array_equal(np.asarray(d[0]), np.asarray(omega))
    # a = 0 in the simulated pair: theta = omega t exactly (Heun is exact for constant speed)
    th = kuramoto_pair[:, :, 2]
    t = 0.05 * th.shape[0]
    np.testing.assert_allclose(th[-1], [1.0 * t, 1.1 * t], rtol=1e-12)
    assert th[-1, 0] > 2.0 * math.pi  # not wrapped


def test_kuramoto_coupling_convention():
    """vbinfer.coupling.kuramoto gives a sum_j W_ij sin(theta_j - theta_i), without 1/N (as
    TVB 2.10 computes it for this model: its post divides by the number of coupled variables)."""
    rng = np.random.default_rng(3)
    n = 6
    W = jnp.asarray(rng.uniform(size=(n, n)))
    theta = jnp.asarray(rng.uniform(0.0, 2.0 * math.pi, size=(1, n)))
    cp = vbinfer.coupling.kuramoto
    a = KuramotoParams(a=0.7)
    summed = jnp.einsum("ij,kj->ki", W, cp.pre(theta, a))
    c = cp.post(summed, theta, W.sum(axis=1), a)
    ref = 0.7 * jnp.sum(W * jnp.sin(theta[0][None, :] - theta[0][:, None]), axis=1)
    np.testing.assert_allclose(np.asarray(c[0]), np.asarray(ref), rtol=1e-12, atol=1e-15)
    d = jit_kuramoto_dfun(theta, c, KuramotoModelParams(omega=0.3))
    np.testing.assert_allclose(np.asarray(d[0]), 0.3 + np.asarray(ref), rtol=1e-12)


@pytest.fixture(scope="module")
def kuramoto_pair() -> np.ndarray:
    """Phases ``(num_steps, 2 oscillators, 3 couplings)`` of two mutually coupled oscillators
    (W = [[0, 1], [1, 0]], omega = 1.0 and 1.1 rad/ms, both starting at 0) through vbinfer's
    simulator, for a = 0.06, 0.04 and 0 as a batch: dt = 0.05 ms, 2 s."""
    sim = vbinfer.make_simulator(
        kuramoto, dt=0.05, num_steps=40_000, coupling=vbinfer.coupling.kuramoto
    )
    p = vbinfer.SimParams(
        KuramotoModelParams(omega=jnp.array([[1.0], [1.1]])),
        KuramotoParams(a=jnp.array([0.06, 0.04, 0.0])),
    )
    net = vbinfer.make_network(np.array([[0.0, 1.0], [1.0, 0.0]]))
    res = sim.run(None, p, net, jnp.zeros((1, 2, 3)))
    return np.asarray(res.outputs["tavg"][:, 0])


def test_kuramoto_two_oscillators_lock(kuramoto_pair):
    """phi = theta_2 - theta_1 obeys dphi/dt = d_omega - 2 a sin(phi) (Adler): with
    d_omega = 0.1 rad/ms the pair locks iff a >= 0.05. At a = 0.06 it locks at
    phi* = arcsin(d_omega / (2a)) = 0.98511 and both phases advance at the mean omega."""
    dw, a = 0.1, 0.06
    th = kuramoto_pair[:, :, 0]
    phi = th[:, 1] - th[:, 0]
    assert phi[-1] == pytest.approx(math.asin(dw / (2 * a)), abs=1e-9)
    assert np.ptp(phi[-5000:]) < 1e-9
    # d(theta_1 + theta_2)/dt = omega_1 + omega_2 exactly (the coupling terms cancel)
    rate = (th[-1] - th[-2001]) / (2000 * 0.05)
    np.testing.assert_allclose(rate, 1.05, rtol=1e-9)


def test_kuramoto_two_oscillators_slip(kuramoto_pair):
    """Below the threshold (a = 0.04 < 0.05) the phase difference slips by 2 pi with the beat
    angular frequency sqrt(d_omega^2 - 4 a^2) = 0.06 rad/ms (period 104.72 ms)."""
    dw, a = 0.1, 0.04
    th = kuramoto_pair[:, :, 1]
    phi = th[:, 1] - th[:, 0]
    assert phi[-1] > 6 * 2 * math.pi  # unbounded drift, not locked
    k = np.arange(1, int(phi[-1] // (2 * math.pi)) + 1)
    t = np.interp(2 * math.pi * k, phi, (np.arange(phi.size) + 1) * 0.05)
    period = np.diff(t).mean()
    assert period == pytest.approx(2 * math.pi / math.sqrt(dw**2 - 4 * a**2), rel=1e-5)


# --------------------------------------------------------------------------------------------
# Generic 2D oscillator (TVB defaults: the "excitable configuration")
#
# With tau = beta = alpha = f = 1, c = g = 0, e = 3, I = 0 the fixed point satisfies
# W = a + b V and V^3 - 3 V^2 - b V - a = 0, with a unique real root (the derivative
# 3 V^2 - 6 V + 10 > 0). The Jacobian is d [[-3 V^2 + 6 V, 1], [b, -1]]: its trace vanishes at
# V_H = 1 - sqrt(2/3) (on the branch V < 1), a Hopf bifurcation at a_H = V_H^3 - 3 V_H^2 - b V_H
# with frequency d sqrt(-b - 1) = 0.06 rad/ms (9.549 Hz).

_g2d_jac = _jacobian(generic_2d_oscillator_dfun)


def g2d_fixed_point(p: Generic2dOscillatorParams) -> np.ndarray:
    def nullclines(V):
        W = (p.a + p.b * V + p.c * V * V) / p.beta
        return p.alpha * W - p.f * V**3 + p.e * V * V + p.g * V + p.gamma * p.I

    (V,) = _roots(nullclines, -5.0, 5.0, 1001)
    return np.array([V, (p.a + p.b * V + p.c * V * V) / p.beta])


def test_g2d_defaults_stable_focus():
    """TVB defaults: unique fixed point (-0.18865, -0.11348), a stable focus with eigenvalues
    -0.022387 ± 0.063200i per ms: damped oscillations at 10.06 Hz. A simulation from a small
    perturbation shows that frequency and decay rate."""
    p = Generic2dOscillatorParams()
    x = g2d_fixed_point(p)
    np.testing.assert_allclose(x, [-0.188652, -0.113482], atol=1e-6)
    d = jit_generic_2d_oscillator_dfun(jnp.asarray(x)[:, None], jnp.zeros((1, 1)), p)
    assert float(jnp.abs(d).max()) < 1e-15
    e = _eigvals(_g2d_jac, x, p)
    assert np.all(e.real < 0) and np.all(np.abs(e.imag) > 0)
    np.testing.assert_allclose(e.real, -0.022387, atol=1e-6)
    omega = float(np.abs(e.imag).max())
    assert omega == pytest.approx(0.063200, abs=1e-6)
    assert 1000.0 * omega / (2.0 * math.pi) == pytest.approx(10.06, abs=0.01)  # Hz
    # linear regime: V - V* ~ exp(Re(lambda) t) cos(omega t + phase)
    dt = 0.05
    ys = _rk4(
        generic_2d_oscillator_dfun,
        (x + np.array([1e-6, 0.0]))[:, None],
        jnp.zeros((1, 1)),
        p,
        dt,
        6000,
    )
    v = ys[:, 0, 0] - x[0]
    sign = np.nonzero(np.sign(v[1:]) != np.sign(v[:-1]))[0]
    t0 = (sign + v[sign] / (v[sign] - v[sign + 1]) + 1) * dt  # zero crossings
    assert np.diff(t0).mean() == pytest.approx(math.pi / omega, rel=1e-5)
    peaks = [np.abs(v[i:j]).max() for i, j in itertools.pairwise(sign)]
    decay = np.polyfit(t0[:-1], np.log(peaks), 1)[0]
    assert decay == pytest.approx(float(e.real[0]), rel=2e-3)


def test_g2d_hopf_and_limit_cycle():
    """Hopf at a_H = 1.740193 with angular frequency d sqrt(-b - 1) = 0.06 rad/ms (analytic,
    see above); at a = 2 (TVB: "limit cycle if a is 2.0") an unstable focus and a limit cycle of
    V-amplitude 1.159 at 9.212 Hz; at the defaults even a large perturbation decays."""
    p = Generic2dOscillatorParams()
    V_H = 1.0 - math.sqrt(2.0 / 3.0)
    a_H = V_H**3 - 3.0 * V_H**2 - p.b * V_H
    assert a_H == pytest.approx(1.740193, abs=1e-6)

    def growth(a):
        q = p._replace(a=a)
        return _eigvals(_g2d_jac, g2d_fixed_point(q), q)

    assert brentq(lambda a: growth(a).real.max(), 0.5, 2.0, xtol=1e-14) == pytest.approx(
        a_H, abs=1e-10
    )
    np.testing.assert_allclose(np.abs(growth(a_H).imag), p.d * math.sqrt(-p.b - 1.0), rtol=1e-10)
    assert np.all(growth(a_H - 0.01).real < 0) and np.all(growth(a_H + 0.01).real > 0)
    e = growth(2.0)
    assert np.all(e.real > 0) and np.all(np.abs(e.imag) > 0)  # unstable focus

    # a = 2 (limit cycle) and the defaults (stable focus), from 0.5 off the fixed point
    a = jnp.array([2.0, p.a])
    q = p._replace(a=a)
    fps = np.stack([g2d_fixed_point(p._replace(a=float(v))) for v in a], axis=1)
    dt = 0.1
    ys = _rk4(generic_2d_oscillator_dfun, fps + 0.5, jnp.zeros((1, 2)), q, dt, 40_000)
    cycle = ys[20_000:, 0, 0]
    per = _periods(cycle, dt)
    assert per.std() < 1e-3 * per.mean()  # periodic
    assert 1000.0 / per.mean() == pytest.approx(9.212, abs=0.002)
    assert np.ptp(cycle) == pytest.approx(1.159, abs=0.002)
    np.testing.assert_allclose(ys[-1, :, 1], fps[:, 1], atol=1e-12)


def test_g2d_coupling_entry():
    """The long-range input is added to I in the V equation, both scaled by gamma (TVB)."""
    p = Generic2dOscillatorParams(gamma=-1.0, I=0.2, tau=1.25)
    x = jnp.array([[0.3, -1.0], [0.1, 0.5]])
    c = jnp.array([[0.4, -0.2]])
    np.testing.assert_allclose(
        np.asarray(jit_generic_2d_oscillator_dfun(x, c, p)),
        np.asarray(jit_generic_2d_oscillator_dfun(x, jnp.zeros_like(c), p._replace(I=0.2 + c[0]))),
        rtol=1e-14,
    )


# --------------------------------------------------------------------------------------------
# Larter-Breakspear
#
# Fixed points: dZ/dt = 0 gives V Q_V(V) = -a_ni I / a_ei (two roots V < 0, because V Q_V(V)
# has a single minimum on V < 0), dW/dt = 0 gives W = m_K(V), and dV/dt = 0 is then solved for Z.

_lb_jac = _jacobian(larter_breakspear_dfun)
# Alstott et al. 2009 (TVB's docstring, table 2): d_Z = d_V, aee = 0.36, gCa = 1; isolated: C = 0
_LB_ALSTOTT = LarterBreakspearParams(gCa=1.0, aee=0.36, d_Z=0.65, C=0.0)


@jax.jit
def _lb_dV(V: Any, W: Any, Z: Any, p: LarterBreakspearParams) -> jax.Array:
    x = jnp.stack(jnp.broadcast_arrays(V, W, Z))
    return jit_larter_breakspear_dfun(x, jnp.zeros((1, *x.shape[1:])), p)[0]


def lb_fixed_points(p: LarterBreakspearParams) -> list[np.ndarray]:
    def QV(V):
        return 0.5 * p.QV_max * (1.0 + np.tanh((V - p.VT) / p.d_V))

    out = []
    for V in _roots(lambda V: p.ani * p.Iext + p.aei * V * QV(V), -3.0, 0.0, 3001):
        W = 0.5 * (1.0 + math.tanh((V - p.TK) / p.d_K))
        out += [np.array([V, W, Z]) for Z in _roots(lambda Z: _lb_dV(V, W, Z, p), -5.0, 5.0, 1001)]  # noqa: B023
    return out


def test_lb_fixed_points_defaults():
    """TVB defaults, isolated node (c = 0): two fixed points, a saddle and an unstable focus, so
    no stable fixed point (the node oscillates, see below)."""
    p = LarterBreakspearParams()
    (low, high) = lb_fixed_points(p)
    for x in (low, high):
        d = jit_larter_breakspear_dfun(jnp.asarray(x)[:, None], jnp.zeros((1, 1)), p)
        assert float(jnp.abs(d).max()) < 1e-12
    np.testing.assert_allclose(low, [-0.828987, 0.003964, 0.344176], atol=1e-6)
    np.testing.assert_allclose(high, [-0.157376, 0.259384, 0.099257], atol=1e-6)
    e = _eigvals(_lb_jac, low, p)
    assert np.all(np.abs(e.imag) < 1e-12) and np.sum(e.real > 0) == 1  # saddle
    e = _eigvals(_lb_jac, high, p)
    assert np.sum(e.real > 0) == 2 and np.all(np.abs(e[e.real > 0].imag) > 0.5)  # unstable focus


def test_lb_hopf_in_dV():
    """The upper fixed point loses stability in a Hopf bifurcation at d_V = 0.51527 (TVB's
    docstring: fixed point dynamics below about 0.55); below it the node settles there."""
    p = LarterBreakspearParams()

    def eigs(dv):
        q = p._replace(d_V=dv)
        return _eigvals(_lb_jac, lb_fixed_points(q)[-1], q)

    d_H = brentq(lambda dv: eigs(dv).real.max(), 0.50, 0.55, xtol=1e-13)
    assert d_H == pytest.approx(0.515272, abs=1e-6)
    e = eigs(d_H)
    assert np.abs(e.imag).max() == pytest.approx(0.678780, abs=1e-6)
    assert np.all(eigs(0.5).real < 0) and np.sum(eigs(0.53).real > 0) == 2
    q = p._replace(d_V=0.5)
    x = lb_fixed_points(q)[-1]
    ys = _rk4(larter_breakspear_dfun, (x + 0.01)[:, None], jnp.zeros((1, 1)), q, 0.05, 20_000)
    np.testing.assert_allclose(ys[-1, :, 0], x, atol=1e-6)


def test_lb_defaults_periodic_alstott_chaotic():
    """Isolated nodes, 3000 time units after a 2000-unit transient (RK4, dt = 0.05):

    * TVB defaults (d_V = 0.65, aee = 0.4, gCa = 1.1, d_Z = 0.7, C = 0.1): a limit cycle,
      period 99.53 (TVB's ms; 10.05 Hz), bounded (-0.516 < V < 0.365); a trajectory started
      1e-9 away stays within 1e-6 (no exponential divergence).
    * Alstott et al. 2009's set (d_Z = d_V = 0.65, aee = 0.36, gCa = 1, C = 0): chaotic; the
      periods are irregular and the 1e-9 perturbation grows to O(0.1) (largest Lyapunov
      exponent about 0.009 per time unit, measured separately)."""
    stack = lambda a, b: jax.tree.map(lambda u, v: jnp.asarray([u, u, v, v]), a, b)  # noqa: E731
    p = stack(LarterBreakspearParams(), _LB_ALSTOTT)
    dt = 0.05
    x0 = jnp.zeros((3, 4)).at[0].set(jnp.array([0.0, 1e-9, 0.0, 1e-9]))
    ys = _rk4(larter_breakspear_dfun, x0, jnp.zeros((1, 4)), p, dt, 100_000)[40_000:]
    assert np.all(np.isfinite(ys)) and np.abs(ys).max() < 1.5
    V = ys[:, 0]
    per = _periods(V[:, 0], dt)
    assert per.mean() == pytest.approx(99.53, abs=0.01) and per.std() < 0.01
    assert (V[:, 0].min(), V[:, 0].max()) == pytest.approx((-0.5157, 0.3649), abs=1e-3)
    assert np.abs(ys[:, :, 1] - ys[:, :, 0]).max() < 1e-6
    per = _periods(V[:, 2], dt)
    assert per.std() > 0.1 * per.mean()  # irregular
    assert np.abs(ys[-20_000:, :, 3] - ys[-20_000:, :, 2]).max() > 0.1


def test_lb_coupling_split():
    """C shares the excitatory drive between the node's own rate and the input: a node fed its
    own rate Q_V (self loop, rate coupling) behaves as C = 0 for any C."""
    rng = np.random.default_rng(5)
    x = jnp.asarray(rng.uniform(-0.6, 0.4, size=(3, 6)))
    p = LarterBreakspearParams(C=jnp.linspace(0.0, 0.9, 6))
    QV = 0.5 * p.QV_max * (1.0 + jnp.tanh((x[0] - p.VT) / p.d_V))
    np.testing.assert_allclose(
        np.asarray(jit_larter_breakspear_dfun(x, QV[None], p)),
        np.asarray(jit_larter_breakspear_dfun(x, jnp.zeros((1, 6)), p._replace(C=0.0))),
        rtol=1e-12,
        atol=1e-15,
    )
    # t_scale scales all three equations
    q = LarterBreakspearParams(t_scale=0.3)
    np.testing.assert_allclose(
        np.asarray(jit_larter_breakspear_dfun(x, QV[None], q)),
        0.3 * np.asarray(jit_larter_breakspear_dfun(x, QV[None], LarterBreakspearParams())),
        rtol=1e-13,
        atol=1e-16,
    )
