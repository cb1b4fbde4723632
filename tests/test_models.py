"""Tests of the neural mass models against published behaviour.

Every number asserted below is either an identity of the equations or a value published for
the original model (bifurcation points, oscillation frequencies, fixed points); the helpers
compute them from the implemented derivative only (``jax.jacobian`` for stability, a fixed-step
RK4 for time series), so a wrong equation or unit shows up as a wrong number.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import brentq, minimize_scalar

from tests._models import dfun_inputs
from vbinfer.models import (
    BalloonParams,
    Epileptor2DParams,
    JansenRitParams,
    LinearModelParams,
    Model,
    MPRParams,
    StuartLandauParams,
    WilsonCowanParams,
    balloon,
    balloon_dfun,
    bold_coefficients,
    bold_signal,
    epileptor2d,
    epileptor2d_dfun,
    jansen_rit,
    jansen_rit_dfun,
    jansen_rit_eeg,
    linear,
    linear_dfun,
    linear_drift_matrix,
    mpr,
    mpr_dfun,
    stuart_landau,
    stuart_landau_dfun,
    wilson_cowan,
    wilson_cowan_dfun,
)

ALL_MODELS = [balloon, epileptor2d, jansen_rit, linear, mpr, stuart_landau, wilson_cowan]


@pytest.fixture(scope="module", autouse=True)
def _x64():
    """Bifurcation points and eigenvalues need float64, for this module only."""
    with jax.enable_x64(True):
        yield


# --------------------------------------------------------------------------------------------
# helpers


def _node(dfun: Callable, n_coupling: int) -> Callable:
    """Single-node derivative ``f(x, params, c)`` with ``x`` ``(n_states,)``, ``c`` optional."""

    def f(x, params, c=None):
        c = jnp.zeros((n_coupling,), x.dtype) if c is None else jnp.asarray(c, x.dtype)
        return dfun(x[:, None], c[:, None], params)[:, 0]

    return f


def _jacobian(dfun: Callable, n_coupling: int) -> Callable:
    f = _node(dfun, n_coupling)
    jac = jax.jit(jax.jacobian(lambda x, p: f(x, p)))
    return lambda x, p: np.asarray(jac(jnp.asarray(x, jnp.float64), p))


def _eigvals(jac: Callable, x: Any, params: Any) -> np.ndarray:
    return np.asarray(jnp.linalg.eigvals(jac(x, params)))


def _rk4(dfun: Callable, x0: Any, coupling: Any, params: Any, dt: float, n: int, stride: int = 1):
    """Fixed-step RK4 of ``dfun`` over ``n`` steps; returns every ``stride``-th state."""
    x0 = jnp.asarray(x0, jnp.float64)
    coupling = jnp.asarray(coupling, jnp.float64)

    def f(x, c):
        return dfun(x, c, params)

    def one(x, c):
        k1 = f(x, c)
        k2 = f(x + 0.5 * dt * k1, c)
        k3 = f(x + 0.5 * dt * k2, c)
        k4 = f(x + dt * k3, c)
        return x + dt / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)

    def block(x, c):
        x = jax.lax.fori_loop(0, stride, lambda _, y: one(y, c), x)
        return x, x

    if coupling.ndim == x0.ndim:  # constant input
        _, ys = jax.lax.scan(lambda x, _: block(x, coupling), x0, None, length=n // stride)
    else:  # one input per saved sample
        _, ys = jax.lax.scan(block, x0, coupling)
    return np.asarray(ys)


def _frequency_hz(signal: np.ndarray, dt_ms: float) -> tuple[float, float]:
    """Mean frequency (Hz) from upward crossings of the mid level, and the period's std (ms)."""
    level = 0.5 * (signal.max() + signal.min())
    i = np.nonzero((signal[:-1] < level) & (signal[1:] >= level))[0]
    t = (i + (level - signal[i]) / (signal[i + 1] - signal[i])) * dt_ms
    periods = np.diff(t)
    return 1000.0 / periods.mean(), periods.std()


def _finite_fields(params: Any) -> bool:
    return all(np.all(np.isfinite(np.asarray(v, dtype=float))) for v in params)


# --------------------------------------------------------------------------------------------
# every model: record, shapes, broadcasting, jit / vmap / grad


def test_models_export_sorted():
    import vbinfer.models as models

    assert list(models.__all__) == sorted(models.__all__)


@pytest.mark.parametrize("model", ALL_MODELS, ids=lambda m: m.name)
def test_model_record(model: Model):
    assert isinstance(model, Model)
    n = model.n_states
    assert len(model.init) == n and len(model.bounds) == n
    assert all(0 <= k < n for k in model.cvar)
    assert model.n_coupling >= 1
    params = model.params_cls()
    assert _finite_fields(params), params
    assert set(params._fields) == set(model.params_cls.__annotations__)
    for lo, hi in model.bounds:
        assert lo < hi


@pytest.mark.parametrize("model", ALL_MODELS, ids=lambda m: m.name)
def test_dfun_shapes_and_broadcast(model: Model):
    space = (5, 3)  # (n_nodes, batch)
    state, coupling = dfun_inputs(model, space)
    params = model.params_cls()
    dfun = jax.jit(model.dfun)
    out = dfun(state, coupling, params)
    assert out.shape == (model.n_states, *space)
    assert out.dtype == jnp.float64
    assert np.all(np.isfinite(np.asarray(out)))

    # One parameter per (node, batch) entry, scaled by 1.0 .. 1.1: broadcasting must match a
    # node-by-node evaluation with scalar parameters.
    name = params._fields[0]
    base = float(getattr(params, name))
    scale = 1.0 + 0.1 * np.linspace(0.0, 1.0, 15).reshape(space)
    spatial = params._replace(**{name: jnp.asarray(base * scale)})
    out = np.asarray(dfun(state, coupling, spatial))
    for i, j in [(0, 0), (2, 1), (4, 2)]:
        p_ij = params._replace(**{name: jnp.asarray(base * scale[i, j])})
        single = dfun(state[:, i, j][:, None], coupling[:, i, j][:, None], p_ij)[:, 0]
        np.testing.assert_allclose(out[:, i, j], np.asarray(single), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("model", ALL_MODELS, ids=lambda m: m.name)
def test_dfun_jit_vmap_grad(model: Model):
    space = (4,)
    state, coupling = dfun_inputs(model, space, seed=1)
    params = model.params_cls()
    ref = np.asarray(model.dfun(state, coupling, params))  # eager

    np.testing.assert_allclose(np.asarray(jax.jit(model.dfun)(state, coupling, params)), ref)

    # vmap over the node axis (axis 1 of state and coupling)
    per_node = jax.vmap(
        lambda s, c: model.dfun(s[:, None], c[:, None], params)[:, 0], in_axes=(1, 1), out_axes=1
    )
    np.testing.assert_allclose(np.asarray(jax.jit(per_node)(state, coupling)), ref, rtol=1e-12)

    # vmap over a batch of values of the first parameter
    name = params._fields[0]
    values = float(getattr(params, name)) * jnp.array([0.9, 1.0, 1.1])
    batched = jax.jit(
        jax.vmap(lambda v: model.dfun(state, coupling, params._replace(**{name: v})))
    )(values)
    assert batched.shape == (3, model.n_states, *space)
    np.testing.assert_allclose(np.asarray(batched[1]), ref, rtol=1e-12)

    # gradients of a scalar loss with respect to every parameter and to the state
    float_params = model.params_cls(*(jnp.asarray(v, jnp.float64) for v in params))

    def loss(p, s):
        return jnp.sum(model.dfun(s, coupling, p) ** 2)

    g_params, g_state = jax.jit(jax.grad(loss, argnums=(0, 1)))(float_params, state)
    assert _finite_fields(g_params)
    assert g_state.shape == state.shape and np.all(np.isfinite(np.asarray(g_state)))
    assert any(float(jnp.abs(g)) > 0 for g in g_params)


# --------------------------------------------------------------------------------------------
# Jansen-Rit (v0 = 6 mV as in Jansen & Rit 1995; Grimbert & Faugeras 2006 bifurcations)

_jr_jac = _jacobian(jansen_rit_dfun, 1)


def jr_frequency(v0: float, p_per_s: float = 220.0) -> tuple[float, float]:
    """Frequency (Hz) of ``y1 - y2`` for a single node with constant input ``p`` (pulses/s)."""
    params = JansenRitParams(v0=v0, mu=p_per_s / 1000.0)
    x0 = jnp.array(jansen_rit.init)[:, None]  # (0, 5, 5, 0, 0, 0) as in TVB-based tools
    ys = _rk4(jansen_rit_dfun, x0, jnp.zeros((1, 1)), params, dt=0.1, n=40_000)
    eeg = jansen_rit_eeg(ys[20_000:, :, 0].T)  # discard the first 2 s
    return _frequency_hz(np.asarray(eeg), 0.1)


def _jr_sigmoid(v, p):
    return 2.0 * p.nu_max / (1.0 + np.exp(p.r * (p.v0 - v)))


def jr_branch(u: float, p: JansenRitParams) -> tuple[float, np.ndarray]:
    """Fixed point with pyramidal potential ``u = y1 - y2``: input ``p`` (pulses/s), state."""
    y0 = p.A / p.a * _jr_sigmoid(u, p)
    y2 = p.B / p.b * p.a_4 * p.J * _jr_sigmoid(p.a_3 * p.J * y0, p)
    y1 = u + y2
    mu = p.a / p.A * y1 - p.a_2 * p.J * _jr_sigmoid(p.a_1 * p.J * y0, p)
    return 1000.0 * mu, np.array([y0, y1, y2, 0.0, 0.0, 0.0])


def _jr_eigs(u: float, p: JansenRitParams) -> np.ndarray:
    p_in, x = jr_branch(u, p)
    return _eigvals(_jr_jac, x, p._replace(mu=p_in / 1000.0))


def _jr_focus_growth(u: float, p: JansenRitParams) -> float:
    """Largest real part among the complex eigenvalues at the fixed point ``u``."""
    e = _jr_eigs(u, p)
    return float(e[np.abs(e.imag) > 1e-9].real.max())


def jr_folds(p: JansenRitParams | None = None) -> list[tuple[float, float]]:
    """``(u, p)`` at the two folds (local extrema of the input ``p(u)``, pulses/s)."""
    p = JansenRitParams() if p is None else p
    neg = minimize_scalar(
        lambda u: -jr_branch(u, p)[0], bounds=(0.0, 4.0), method="bounded", options={"xatol": 1e-10}
    )
    pos = minimize_scalar(
        lambda u: jr_branch(u, p)[0], bounds=(4.0, 6.0), method="bounded", options={"xatol": 1e-10}
    )
    return [(u, jr_branch(u, p)[0]) for u in (neg.x, pos.x)]


def jr_hopfs(p: JansenRitParams | None = None) -> list[tuple[float, float, float]]:
    """``(u, p, omega)`` where a complex pair crosses the imaginary axis on the branch."""
    p = JansenRitParams() if p is None else p
    us = np.linspace(2.0, 12.0, 201)
    g = np.array([_jr_focus_growth(u, p) for u in us])
    out = []
    for k in np.nonzero(np.sign(g[1:]) != np.sign(g[:-1]))[0]:
        u = brentq(_jr_focus_growth, us[k], us[k + 1], args=(p,), xtol=1e-12)
        if abs(_jr_focus_growth(u, p)) > 1e-9:
            # not a crossing but a jump: two real eigenvalues > 0 merging into a complex pair
            continue
        e = _jr_eigs(u, p)
        omega = float(np.abs(e[np.argmin(np.abs(e.real))].imag))
        out.append((u, jr_branch(u, p)[0], omega))
    return out


def test_jansen_rit_eeg_and_input():
    state = jnp.array([[0.1], [7.0], [4.0], [0.0], [0.0], [0.0]])
    assert float(jansen_rit_eeg(state)[0]) == pytest.approx(3.0)
    # the coupling input adds to mu (both in ms^-1) in the y4 equation only
    p = JansenRitParams()
    d0 = jansen_rit_dfun(state, jnp.array([[0.05]]), p)
    d1 = jansen_rit_dfun(state, jnp.zeros((1, 1)), p._replace(mu=p.mu + 0.05))
    np.testing.assert_allclose(np.asarray(d0), np.asarray(d1), rtol=1e-14)
    d2 = jansen_rit_dfun(state, jnp.zeros((1, 1)), p)
    assert np.flatnonzero(np.asarray(d0 - d2)[:, 0]).tolist() == [4]


@pytest.mark.parametrize(("v0", "expected_hz"), [(6.0, 11.0), (5.52, 6.7)])
def test_jansen_rit_frequency(v0, expected_hz):
    """p = 220 /s: alpha (~11 Hz) with Jansen & Rit's v0 = 6 mV, ~6.7 Hz with TVB's 5.52 mV.

    Measured with RK4, dt = 0.1 ms, 2 s after a 2 s transient: 10.93 Hz and 6.80 Hz.
    """
    hz, period_std = jr_frequency(v0)
    assert hz == pytest.approx(expected_hz, abs=0.3)
    assert period_std < 0.5  # ms: a periodic orbit, not a transient


def test_jansen_rit_folds():
    """Saddle-node bifurcations at p = 113.6 and -41.3 /s (Grimbert & Faugeras 2006)."""
    p = JansenRitParams()
    folds = jr_folds(p)
    assert [fold[1] for fold in folds] == pytest.approx([113.6, -41.3], abs=0.2)
    for u, _ in folds:  # a real eigenvalue is zero at the fold
        e = _jr_eigs(u, p)
        real = e[np.abs(e.imag) < 1e-12].real
        assert np.min(np.abs(real)) < 1e-6


def test_jansen_rit_hopf():
    """Hopf bifurcations at p = -12.15, 89.83 and 315.70 /s (Grimbert & Faugeras 2006)."""
    p = JansenRitParams()
    hopfs = jr_hopfs(p)
    assert [h[1] for h in hopfs] == pytest.approx([-12.15, 89.83, 315.70], abs=0.2)
    assert all(h[2] > 0.01 for h in hopfs)  # a complex pair (omega in rad/ms), not a fold

    # On the upper branch the focus is stable at 85 and 320 /s, unstable at 95 and 310 /s.
    u_fold = jr_folds(p)[1][0]

    def growth_at(p_in):
        u = brentq(lambda u: jr_branch(u, p)[0] - p_in, u_fold, 20.0, xtol=1e-12)
        return _jr_focus_growth(u, p)

    assert growth_at(85.0) < 0 < growth_at(95.0)
    assert growth_at(310.0) > 0 > growth_at(320.0)


# --------------------------------------------------------------------------------------------
# Montbrio-Pazo-Roxin (Montbrio et al. 2015, Fig. 1: Delta = 1, J = 15, tau = 1)

_mpr_jac = _jacobian(mpr_dfun, 1)


def mpr_fixed_points(eta: float) -> list[tuple[float, float, np.ndarray]]:
    """Fixed points ``(r, V, eigenvalues)``: ``r = -Delta / (2 pi tau V)`` on the V-line."""
    p = MPRParams(eta=eta)

    def g(V):
        r = -p.Delta / (2.0 * np.pi * p.tau * V)
        return V * V - (np.pi * p.tau * r) ** 2 + p.eta + p.J * p.tau * r

    Vs = np.linspace(-6.0, -1e-3, 60_001)
    gv = g(Vs)
    out = []
    for k in np.nonzero(np.sign(gv[1:]) != np.sign(gv[:-1]))[0]:
        V = brentq(g, Vs[k], Vs[k + 1], xtol=1e-14)
        r = -p.Delta / (2.0 * np.pi * p.tau * V)
        out.append((r, V, _eigvals(_mpr_jac, [r, V], p)))
    return out


def mpr_folds() -> list[float]:
    """Values of ``eta`` where two fixed points merge: extrema of ``eta(V)`` on the V-line."""
    p = MPRParams()

    def eta_of(V):
        r = -p.Delta / (2.0 * np.pi * p.tau * V)
        return -(V * V - (np.pi * p.tau * r) ** 2 + p.J * p.tau * r)

    # between the focus and the saddle (V ~ -0.2) eta(V) has a minimum, between the saddle and
    # the node (V ~ -1) a maximum
    opts = {"xatol": 1e-12}
    lo = minimize_scalar(eta_of, bounds=(-0.5, -0.1), method="bounded", options=opts)
    hi = minimize_scalar(lambda V: -eta_of(V), bounds=(-1.9, -0.5), method="bounded", options=opts)
    return [(lo.x, eta_of(lo.x)), (hi.x, eta_of(hi.x))]


def test_mpr_fixed_points():
    (r1, V1, e1), (r2, _, e2), (r3, V3, e3) = mpr_fixed_points(-5.0)
    # stable node
    assert (r1, V1) == pytest.approx((0.0811, -1.9616), abs=1e-4)
    assert np.all(np.abs(e1.imag) < 1e-12) and np.all(e1.real < 0)
    # saddle
    assert r2 == pytest.approx(0.4730, abs=1e-4)
    assert np.all(np.abs(e2.imag) < 1e-12) and np.sum(e2.real > 0) == 1
    # stable focus
    assert (r3, V3) == pytest.approx((1.0306, -0.1544), abs=1e-4)
    assert np.all(np.abs(e3.imag) > 0.1) and np.all(e3.real < 0)


def test_mpr_bistability_range():
    """Two stable fixed points for eta in about [-5.74, -3.14] (two folds)."""
    (V_lo, eta_lo), (V_hi, eta_hi) = mpr_folds()
    assert (eta_lo, eta_hi) == pytest.approx((-5.74, -3.14), abs=0.02)
    for V, eta in [(V_lo, eta_lo), (V_hi, eta_hi)]:  # det J = 0 at the folds
        r = -1.0 / (2.0 * np.pi * V)
        assert abs(np.linalg.det(_mpr_jac([r, V], MPRParams(eta=eta)))) < 1e-6
    counts = {eta: len(mpr_fixed_points(eta)) for eta in (-6.0, -5.6, -4.0, -3.2, -3.0)}
    assert counts == {-6.0: 1, -5.6: 3, -4.0: 3, -3.2: 3, -3.0: 1}


# --------------------------------------------------------------------------------------------
# Stuart-Landau (Hopf normal form)

_sl_jac = _jacobian(stuart_landau_dfun, 2)


@pytest.mark.parametrize("a", [-0.3, -0.01, 0.0, 0.2])
def test_stuart_landau_origin(a):
    """Eigenvalues ``a +- i omega`` at the origin: the Hopf bifurcation is at a = 0."""
    p = StuartLandauParams(a=a, omega=0.7)
    e = np.sort_complex(_eigvals(_sl_jac, [0.0, 0.0], p))
    np.testing.assert_allclose(e, [a - 0.7j, a + 0.7j], atol=1e-14)


def test_stuart_landau_limit_cycle():
    """For a > 0, radius sqrt(a) and angular frequency omega; for a < 0, decay to 0."""
    p = StuartLandauParams(a=jnp.array([0.25, -0.05]), omega=0.5)
    # exact: on the circle of radius sqrt(a) the flow is a rotation at speed omega
    theta = np.linspace(0, 2 * np.pi, 7)
    on_circle = 0.5 * jnp.stack([jnp.cos(theta), jnp.sin(theta)])
    d = stuart_landau_dfun(on_circle, jnp.zeros((2, 7)), StuartLandauParams(a=0.25, omega=0.5))
    rotation = jnp.stack([-on_circle[1], on_circle[0]])
    np.testing.assert_allclose(np.asarray(d), 0.5 * np.asarray(rotation), atol=1e-15)

    x0 = jnp.array([[0.01, 0.5], [0.0, 0.0]])
    ys = _rk4(stuart_landau_dfun, x0, jnp.zeros((2, 2)), p, dt=0.01, n=20_000, stride=10)
    radius = np.hypot(ys[:, 0], ys[:, 1])
    assert radius[-500:, 0] == pytest.approx(0.5, rel=1e-8)
    assert radius[-1, 1] < 1e-3  # a < 0: exp(-0.05 * 200) * 0.5 = 2.3e-5
    phase = np.unwrap(np.arctan2(ys[-500:, 1, 0], ys[-500:, 0, 0]))
    slope = np.polyfit(np.arange(500) * 0.1, phase, 1)[0]
    assert slope == pytest.approx(0.5, rel=1e-8)


# --------------------------------------------------------------------------------------------
# Wilson-Cowan (Wilson & Cowan 1972): hysteresis set (TVB defaults) and limit-cycle set

_wc_jac = _jacobian(wilson_cowan_dfun, 1)
_WC_LIMIT_CYCLE = WilsonCowanParams(
    c_ee=16.0, c_ei=12.0, c_ie=15.0, c_ii=3.0, a_e=1.3, b_e=4.0, a_i=2.0, b_i=3.7, P=1.25
)


@jax.jit
def _wc_I_of_E(E: Any, p: WilsonCowanParams) -> jax.Array:
    """The unique ``I`` with dI/dt = 0 for each ``E`` (dI/dt decreases with I): bisection."""
    E = jnp.asarray(E, jnp.float64)

    def dI(I):
        return wilson_cowan_dfun(jnp.stack([E, I]), jnp.zeros((1, *E.shape)), p)[1]

    def halve(_, bracket):
        lo, hi = bracket
        mid = 0.5 * (lo + hi)
        up = dI(mid) > 0
        return jnp.where(up, mid, lo), jnp.where(up, hi, mid)

    lo, hi = jax.lax.fori_loop(0, 64, halve, (jnp.full_like(E, -1.0), jnp.full_like(E, 1.0)))
    return 0.5 * (lo + hi)


def _wc_P_of_E(E: Any, p: WilsonCowanParams) -> np.ndarray:
    """External input ``P`` for which ``(E, I(E))`` is a fixed point (inverse sigmoid)."""
    E = np.asarray(E, dtype=float)
    I = np.asarray(_wc_I_of_E(E, p))
    S = E / (p.k_e - p.r_e * E)
    z = S / p.c_e + p.shift_sigmoid / (1.0 + np.exp(p.a_e * p.b_e))
    x_e = p.b_e - np.log(1.0 / z - 1.0) / p.a_e
    return x_e / p.alpha_e - p.c_ee * E + p.c_ei * I + p.theta_e


def _wc_E_grid(p: WilsonCowanParams, n: int) -> np.ndarray:
    """``n`` values inside the range of ``E = k S / (1 + r S)`` for ``S`` in the sigmoid's range."""
    s_lo = -p.shift_sigmoid * p.c_e / (1.0 + np.exp(p.a_e * p.b_e))
    s_hi = p.c_e + s_lo
    e_lo, e_hi = (p.k_e * S / (1.0 + p.r_e * S) for S in (s_lo, s_hi))
    return np.linspace(e_lo, e_hi, n + 2)[1:-1]


def wc_fixed_points(p: WilsonCowanParams) -> list[tuple[np.ndarray, np.ndarray]]:
    Es = _wc_E_grid(p, 1201)
    g = _wc_P_of_E(Es, p) - p.P
    out = []
    for k in np.nonzero(np.sign(g[1:]) != np.sign(g[:-1]))[0]:
        E = brentq(lambda E: float(_wc_P_of_E(E, p)) - p.P, Es[k], Es[k + 1], xtol=1e-14)
        x = np.array([E, float(_wc_I_of_E(E, p))])
        out.append((x, _eigvals(_wc_jac, x, p)))
    return out


def wc_folds(p: WilsonCowanParams | None = None) -> list[float]:
    """Values of ``P`` at the folds (local extrema of ``P(E)`` on the fixed-point curve)."""
    p = WilsonCowanParams() if p is None else p
    Es = _wc_E_grid(p, 601)
    dP = np.diff(_wc_P_of_E(Es, p))
    folds = []
    for k in np.nonzero(np.sign(dP[1:]) != np.sign(dP[:-1]))[0]:
        sign = 1.0 if dP[k] < 0 else -1.0  # a minimum or a maximum of P(E)
        res = minimize_scalar(
            lambda E, sign=sign: sign * float(_wc_P_of_E(E, p)),
            bounds=(Es[k], Es[k + 2]),
            method="bounded",
            options={"xatol": 1e-12},
        )
        folds.append(float(_wc_P_of_E(res.x, p)))
    return sorted(folds)


def test_wilson_cowan_rest_state():
    """With shifted sigmoids E = I = 0 is a fixed point without input, and it is stable."""
    p = WilsonCowanParams()
    d = wilson_cowan_dfun(jnp.zeros((2, 1)), jnp.zeros((1, 1)), p)
    assert float(jnp.abs(d).max()) < 1e-15
    assert np.all(_eigvals(_wc_jac, [0.0, 0.0], p).real < 0)
    # the long-range input drives E only
    d = wilson_cowan_dfun(jnp.zeros((2, 1)), jnp.ones((1, 1)), p)
    assert float(d[0, 0]) > 0 and float(d[1, 0]) == 0.0


def test_wilson_cowan_hysteresis():
    """TVB defaults = Wilson & Cowan's hysteresis set: two stable states over a range of P."""
    p_lo, p_hi = wc_folds()  # Wilson & Cowan's hysteresis loop
    assert p_lo < 0.0 < p_hi  # the bistable window contains the default P = 0
    for P, n in [(p_lo - 0.05, 1), (0.5 * (p_lo + p_hi), 3), (0.0, 3), (p_hi + 0.05, 1)]:
        assert len(wc_fixed_points(WilsonCowanParams(P=P))) == n, P
    (low, e_low), (_, e_mid), (high, e_high) = wc_fixed_points(WilsonCowanParams())
    np.testing.assert_allclose(low, 0.0, atol=1e-12)
    assert np.all(e_low.real < 0) and np.all(e_high.real < 0)
    assert np.sum(e_mid.real > 0) == 1 and np.all(np.abs(e_mid.imag) < 1e-12)  # saddle
    # both attractors are reached, depending on the initial state
    x0 = jnp.array([[0.1, 0.3], [0.05, 0.1]])
    ys = _rk4(wilson_cowan_dfun, x0, jnp.zeros((1, 2)), WilsonCowanParams(), 0.1, 5000, 100)
    np.testing.assert_allclose(ys[-1, :, 0], low, atol=1e-6)
    np.testing.assert_allclose(ys[-1, :, 1], high, atol=1e-6)


def test_wilson_cowan_limit_cycle():
    """Wilson & Cowan's oscillatory set: one unstable focus, hence a stable limit cycle."""
    ((x, e),) = wc_fixed_points(_WC_LIMIT_CYCLE)
    assert np.all(e.real > 0) and np.all(np.abs(e.imag) > 0)
    ys = _rk4(wilson_cowan_dfun, x + 0.01, jnp.zeros((1,)), _WC_LIMIT_CYCLE, 0.05, 40_000)
    E = ys[20_000:, 0]
    assert E.max() - E.min() > 0.1
    _, period_std = _frequency_hz(E, 0.05)
    assert period_std < 0.05


# --------------------------------------------------------------------------------------------
# 2D Epileptor (Proix et al. 2014)

_ep_jac = _jacobian(epileptor2d_dfun, 1)


def ep_fixed_point(p: Epileptor2DParams) -> np.ndarray:
    """The unique fixed point: the cubic x-nullcline meets the line z = 4 (x - x0) once."""
    x = brentq(lambda x: p.y0 - x**3 - 2 * x**2 + p.I1 - 4 * (x - p.x0), -5.0, 5.0, xtol=1e-14)
    return np.array([x, 4.0 * (x - p.x0)])


def ep_critical_x0(p: Epileptor2DParams | None = None) -> float:
    """Analytic Hopf point: trace J = -3x^2 - 4x - 1/tau0 = 0 near the fold x = -4/3."""
    p = Epileptor2DParams() if p is None else p
    x = (-4.0 - math.sqrt(16.0 - 12.0 / p.tau0)) / 6.0
    z = p.y0 - x**3 - 2.0 * x**2 + p.I1
    return x - z / 4.0


def test_epileptor2d_excitability_threshold():
    """Stable (healthy) for x0 below x0c ~ -2.06, seizing above; x0c from the Jacobian."""
    p = Epileptor2DParams()

    def growth(x0):
        return _eigvals(_ep_jac, ep_fixed_point(p._replace(x0=x0)), p._replace(x0=x0))

    x0c = brentq(lambda x0: growth(x0).real.max(), -2.3, -1.9, xtol=1e-13)
    assert x0c == pytest.approx(ep_critical_x0(p), abs=1e-9)
    assert x0c == pytest.approx(-2.05, abs=0.02)  # literature value, to two digits
    e = growth(x0c)
    np.testing.assert_allclose(np.abs(e.imag), 2.0 / math.sqrt(p.tau0), rtol=1e-3)  # Hopf
    assert np.all(growth(-2.5).real < 0) and np.all(growth(-1.6).real > 0)


def test_epileptor2d_seizures():
    """Healthy node (x0 = -2.5) rests on the left branch; x0 = -1.6 seizes repeatedly."""
    p = Epileptor2DParams(x0=jnp.array([-2.5, -1.6]))
    x0 = jnp.array([[-1.7, -1.7], [3.2, 3.2]])
    ys = _rk4(epileptor2d_dfun, x0, jnp.zeros((1, 2)), p, dt=0.05, n=400_000, stride=20)
    healthy, seizing = ys[:, 0, 0], ys[:, 0, 1]
    assert healthy.max() < -4.0 / 3.0
    np.testing.assert_allclose(ys[-1, :, 0], ep_fixed_point(Epileptor2DParams(x0=-2.5)), atol=1e-3)
    onsets = np.count_nonzero((seizing[:-1] < 0.0) & (seizing[1:] >= 0.0))
    assert onsets >= 2 and seizing.max() > 0.5


def test_epileptor2d_permittivity_coupling():
    """A seizing neighbour (positive difference coupling) lowers dz: it recruits the node."""
    p = Epileptor2DParams()
    x = jnp.array([[-1.7], [3.2]])
    d0 = epileptor2d_dfun(x, jnp.zeros((1, 1)), p)
    d1 = epileptor2d_dfun(x, jnp.array([[0.5]]), p)
    assert float(d1[0, 0]) == float(d0[0, 0])
    assert float(d1[1, 0] - d0[1, 0]) == pytest.approx(-0.5 / p.tau0, rel=1e-12)


# --------------------------------------------------------------------------------------------
# Balloon-Windkessel (derivative per ms, parameters in s)


def test_balloon_rest_and_steady_state():
    p = BalloonParams()
    rest = jnp.array([[0.0], [1.0], [1.0], [1.0]])
    assert float(jnp.abs(balloon_dfun(rest, jnp.zeros((1, 1)), p)).max()) < 1e-15
    assert float(bold_signal(rest, p)[0]) == 0.0
    assert BalloonParams()[6:] == pytest.approx(bold_coefficients())

    # analytic steady state for a constant input x: f = 1 + x / gamma, v = f^alpha,
    # q = v E(f) / E0 with E(f) = 1 - (1 - E0)^(1/f)
    x = 0.1
    f = 1.0 + x / p.gamma
    v = f**p.alpha
    q = v * (1.0 - (1.0 - p.E0) ** (1.0 / f)) / p.E0
    steady = jnp.array([[0.0], [f], [v], [q]])
    assert float(jnp.abs(balloon_dfun(steady, jnp.full((1, 1), x), p)).max()) < 1e-15
    ys = _rk4(balloon_dfun, rest, jnp.full((1, 1), x), p, dt=10.0, n=12_000, stride=100)
    np.testing.assert_allclose(ys[-1, :, 0], np.asarray(steady[:, 0]), atol=1e-8)
    assert float(bold_signal(steady, p)[0]) > 0


def test_balloon_ms_time_unit():
    """The derivative is per ms: 1000 times it is the per-second equation."""
    p = BalloonParams()
    state = jnp.array([[0.3], [1.2], [1.05], [0.9]])
    x = 0.5
    s, f, v, q = (float(state[k, 0]) for k in range(4))
    per_s = [
        x - p.kappa * s - p.gamma * (f - 1.0),
        s,
        (f - v ** (1.0 / p.alpha)) / p.tau,
        (f * (1.0 - (1.0 - p.E0) ** (1.0 / f)) / p.E0 - v ** (1.0 / p.alpha) * q / v) / p.tau,
    ]
    d = np.asarray(balloon_dfun(state, jnp.full((1, 1), x), p))[:, 0]
    np.testing.assert_allclose(1000.0 * d, per_s, rtol=1e-13)


def test_balloon_haemodynamic_response():
    """A brief input gives a positive BOLD response peaking 4-6 s later (canonical HRF: ~5 s),
    followed by an undershoot (canonical: ~15 s)."""
    p = BalloonParams()
    dt, stride = 1.0, 10  # ms; one sample every 10 ms
    n_samples = 3000  # 30 s
    drive = np.zeros((n_samples, 1, 1))
    drive[:10] = 1.0  # 100 ms of input x = 1 s^-1
    rest = jnp.array([[0.0], [1.0], [1.0], [1.0]])
    ys = _rk4(balloon_dfun, rest, drive, p, dt=dt, n=n_samples * stride, stride=stride)
    y = np.asarray(bold_signal(ys[:, :, 0].T, p))
    t_s = (np.arange(n_samples) + 1) * dt * stride / 1000.0
    assert y.max() > 0
    assert 4.0 <= t_s[y.argmax()] <= 6.0
    assert y.min() < 0 and t_s[y.argmin()] > t_s[y.argmax()] + 4.0


# --------------------------------------------------------------------------------------------
# Linear


def test_linear_drift():
    rng = np.random.default_rng(3)
    x = jnp.asarray(rng.standard_normal((1, 6)))
    c = jnp.asarray(rng.standard_normal((1, 6)))
    p = LinearModelParams(lam=jnp.linspace(0.1, 0.6, 6), I=0.2, k=0.7)
    np.testing.assert_allclose(
        np.asarray(linear_dfun(x, c, p))[0], np.asarray(-p.lam * x[0] + 0.2 + 0.7 * c[0])
    )
    # with linear coupling c = W x the network drift is A x + I, A = -diag(lam) + k W
    W = jnp.asarray(0.1 * rng.uniform(size=(6, 6)))
    A = linear_drift_matrix(W, p)
    np.testing.assert_allclose(
        np.asarray(linear_dfun(x, (W @ x[0])[None], p))[0], np.asarray(A @ x[0] + 0.2), rtol=1e-12
    )
    # one Euler step is the MVAR(1) transition x + dt (A x + I)
    dt = 0.5
    step = x[0] + dt * linear_dfun(x, (W @ x[0])[None], p)[0]
    np.testing.assert_allclose(
        np.asarray(step), np.asarray((jnp.eye(6) + dt * A) @ x[0] + dt * 0.2), rtol=1e-12
    )
    assert np.all(np.linalg.eigvals(np.asarray(A)).real < 0)  # lam > k * row sums of W


@pytest.mark.parametrize("lam", [0.05, 1.0, -0.1])
def test_linear_stability(lam):
    jac = _jacobian(linear_dfun, 1)(jnp.zeros(1), LinearModelParams(lam=lam))
    np.testing.assert_allclose(jac, [[-lam]])
    assert (jac[0, 0] < 0) == (lam > 0)
