"""The compiled delayed-sum kernel (vbinfer._ffi) against XLA's gather path."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vbinfer import _ffi, network, noise, simulate
from vbinfer.coupling import LinearParams
from vbinfer.models import MPRParams, mpr

pytestmark = pytest.mark.skipif(
    not _ffi.available(), reason=f"compiled kernel unavailable: {_ffi.build_error()}"
)

N, DT, SPEED = 12, 0.05, 2.0


def _net(seed=0):
    rng = np.random.default_rng(seed)
    w = rng.uniform(size=(N, N)) * (rng.uniform(size=(N, N)) < 0.6)  # some zero weights
    np.fill_diagonal(w, 0.0)
    lengths = rng.uniform(1.0, 20.0, size=(N, N))
    return w / N, (lengths + lengths.T) / 2


def _sims(lag_mode, steps=200, **kw):
    w, lengths = _net()
    max_lag = network.max_lag_steps(lengths, SPEED, DT, lag_mode)
    make = lambda kernel: simulate.make_simulator(  # noqa: E731
        mpr,
        dt=DT,
        num_steps=steps,
        max_lag=max_lag,
        lag_mode=lag_mode,
        noise=noise.AdditiveNoise(0.05, states=(1,)),
        delay_kernel=kernel,
        **kw,
    )
    return make("xla"), make("ffi"), network.make_network(w, lengths, speed=SPEED)


def _params(eta=-4.6, a=1.5):
    return simulate.SimParams(MPRParams(eta=eta), LinearParams(a=a))


def test_auto_picks_the_kernel_for_delayed_dense_networks():
    delayed = simulate.make_simulator(mpr, dt=DT, num_steps=10, max_lag=5)
    instant = simulate.make_simulator(mpr, dt=DT, num_steps=10)
    assert delayed.delay_kernel == "ffi"
    assert instant.delay_kernel == "xla"


@pytest.mark.parametrize("lag_mode", ["nearest", "floor", "linear"])
def test_kernel_equals_xla_path_float64(x64, lag_mode):
    xla, ffi, net = _sims(lag_mode)
    key = jax.random.key(3)
    a = xla.run(key, _params(), net).outputs["tavg"]
    b = ffi.run(key, _params(), net).outputs["tavg"]
    assert jnp.all(jnp.isfinite(a))
    np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-14)


def test_kernel_equals_xla_path_batched_float32():
    xla, ffi, net = _sims("nearest")
    p = _params(eta=jnp.linspace(-5.0, -4.0, 7))
    key = jax.random.key(1)
    a = xla.run_batch(key, p, net, batch_size=7).outputs["tavg"]
    b = ffi.run_batch(key, p, net, batch_size=7).outputs["tavg"]
    np.testing.assert_allclose(b, a, rtol=2e-5, atol=1e-6)


def test_kernel_under_vmap_matches_loop(x64):
    _, ffi, net = _sims("nearest", steps=100)
    speeds = jnp.array([2.0, 2.5, 3.0])
    key = jax.random.key(0)
    run = lambda s: ffi.run(key, _params(), net._replace(speed=s)).outputs["tavg"]  # noqa: E731
    batched = jax.vmap(run)(speeds)
    for k, s in enumerate(speeds):
        np.testing.assert_allclose(batched[k], run(s), rtol=1e-12)


def test_kernel_gradients_equal_xla_gradients(x64):
    xla, ffi, net = _sims("linear", steps=120)

    def loss(sim, eta, speed):
        key = jax.random.key(2)
        out = sim.run(key, _params(eta=eta), net._replace(speed=speed)).outputs["tavg"]
        return jnp.mean(out[:, 0] ** 2)

    g_xla = jax.grad(lambda e, s: loss(xla, e, s), argnums=(0, 1))(-4.6, SPEED)
    g_ffi = jax.grad(lambda e, s: loss(ffi, e, s), argnums=(0, 1))(-4.6, SPEED)
    np.testing.assert_allclose(g_ffi, g_xla, rtol=1e-9)
    assert abs(float(g_ffi[1])) > 0  # informative in speed with linear lags
    # forward mode goes through the kernel's JVP rule
    j_ffi = jax.jacfwd(lambda s: loss(ffi, -4.6, s))(SPEED)
    np.testing.assert_allclose(j_ffi, g_xla[1], rtol=1e-9)
    # and matches central finite differences
    h = 1e-5
    fd = (loss(ffi, -4.6, SPEED + h) - loss(ffi, -4.6, SPEED - h)) / (2 * h)
    np.testing.assert_allclose(g_ffi[1], fd, rtol=1e-5)


def test_bad_delay_kernel_is_rejected(monkeypatch):
    with pytest.raises(ValueError, match=r"delay_kernel must be one of .* got 'fast'"):
        simulate.make_simulator(mpr, dt=DT, num_steps=10, max_lag=5, delay_kernel="fast")
    monkeypatch.setattr(_ffi, "available", lambda: False)
    with pytest.raises(ValueError, match="delay_kernel='ffi': the compiled kernel is unavailable"):
        simulate.make_simulator(mpr, dt=DT, num_steps=10, max_lag=5, delay_kernel="ffi")
    assert simulate.make_simulator(mpr, dt=DT, num_steps=10, max_lag=5).delay_kernel == "xla"


def test_nested_differentiation_through_the_kernel(x64):
    """jax.hessian (forward over reverse) through a delayed scan with the kernel."""
    xla, ffi, net = _sims("linear", steps=60)

    def loss(sim, th):
        p = _params(eta=th[0], a=th[1])
        out = sim.run(jax.random.key(4), p, net._replace(speed=th[2])).outputs["tavg"]
        return jnp.mean(out[:, 0] ** 2)

    th = jnp.array([-4.6, 1.5, SPEED])
    h_ffi = jax.hessian(lambda t: loss(ffi, t))(th)
    h_xla = jax.hessian(lambda t: loss(xla, t))(th)
    np.testing.assert_allclose(h_ffi, h_xla, rtol=1e-9)
    np.testing.assert_allclose(h_ffi, h_ffi.T, rtol=1e-7, atol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_kernel_read_equals_xla_read_for_every_width(x64, dtype, mode):
    """The kernel splits the columns into chunks of 512/256/128/64 bytes and a scalar tail:
    widths from 1 to 300 columns go through every combination of them."""
    from vbinfer import delays

    rng = np.random.default_rng(4)
    n, max_lag = 9, 6
    slots = delays.num_slots(max_lag, mode)
    w = rng.uniform(size=(n, n)) * (rng.uniform(size=(n, n)) < 0.7)
    lags = rng.uniform(0.0, max_lag, size=(n, n))
    lags = lags if mode == "linear" else np.rint(lags)
    cols = np.tile(np.arange(n), n)
    plan = delays.make_read_plan(
        jnp.asarray(lags.ravel()), jnp.asarray(cols), jnp.asarray(w.ravel(), dtype), n, slots, mode
    )
    for batch in [(1,), (7,), (16,), (37,), (100,), (3, 100)]:
        h = rng.normal(size=(2 * slots * n, 2 * int(np.prod(batch))))
        buffer = jnp.asarray(h, dtype)
        for step in (0, 5, slots + 2):
            args = (buffer, plan, jnp.int32(step), slots, n, 2, batch)
            a = delays.read(*args, kernel="xla")
            b = delays.read(*args, kernel="ffi")
            tol = 1e-5 if dtype == "float32" else 1e-13
            np.testing.assert_allclose(b, a, rtol=tol, atol=tol, err_msg=f"batch {batch}")
