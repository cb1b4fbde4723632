"""Network simulator: purity, transforms, noise paths, batching, resume, gradients, errors."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests._models import LinParams, lin
from vbinfer import network, noise, simulate
from vbinfer.coupling import LinearParams, difference
from vbinfer.models import MPRParams, mpr
from vbinfer.monitors import subsample, temporal_average

N = 5


@pytest.fixture
def net():
    rng = np.random.default_rng(0)
    w = rng.uniform(0, 1, (N, N))
    np.fill_diagonal(w, 0)
    lengths = rng.uniform(1, 20, (N, N))
    return network.make_network(w, lengths, speed=2.0)


def _sim(**kw):
    base = dict(dt=0.01, num_steps=400, max_lag=1000, sample_every=10)
    base.update(kw)
    return simulate.make_simulator(mpr, **base)


P = simulate.SimParams(MPRParams(), LinearParams(a=0.2))


def test_key_and_predrawn_noise_are_bit_identical(net):
    sim = _sim(noise=noise.AdditiveNoise(0.05), block_steps=100)
    key = jax.random.key(7)
    a = sim.run(key, P, net).outputs["tavg"]
    z = noise.draw_noise(key, sim.num_steps, sim.noise_shape(N)[1:], sim.block_steps)
    b = sim.run(z, P, net).outputs["tavg"]
    assert np.array_equal(np.asarray(a), np.asarray(b))


def test_checkpointed_run_equals_plain_run(net):
    kw = dict(noise=noise.AdditiveNoise(0.05), block_steps=100)
    a = _sim(**kw).run(jax.random.key(0), P, net).outputs["tavg"]
    b = _sim(checkpoint=True, **kw).run(jax.random.key(0), P, net).outputs["tavg"]
    assert np.array_equal(np.asarray(a), np.asarray(b))


def test_checkpointed_gradient_equals_plain_gradient(x64, net):
    kw = dict(noise=noise.AdditiveNoise(0.05), block_steps=50)
    z = jax.random.normal(jax.random.key(0), _sim(**kw).noise_shape(N))

    def loss(eta, sim):
        p = P._replace(model=MPRParams(eta=eta))
        return jnp.sum(sim.run(z, p, net).outputs["tavg"] ** 2)

    g1 = jax.grad(loss)(-5.0, _sim(**kw))
    g2 = jax.grad(loss)(-5.0, _sim(checkpoint=True, **kw))
    np.testing.assert_allclose(g1, g2, rtol=1e-12)


def test_resume_equals_one_run(net):
    kw = dict(noise=noise.AdditiveNoise(0.05), block_steps=100)
    whole = _sim(**kw).run(jax.random.key(3), P, net)
    half = _sim(**{**kw, "num_steps": 200})
    first = half.run(jax.random.key(3), P, net)
    second = half.run(jax.random.key(3), P, net, first.final)
    joined = np.concatenate([first.outputs["tavg"], second.outputs["tavg"]])
    assert np.array_equal(joined, np.asarray(whole.outputs["tavg"]))
    assert int(second.final.step) == 400


def test_run_batch_matches_single_runs(x64, net):
    sim = _sim()
    etas = jnp.array([-5.0, -4.6, -4.2])
    res = sim.run_batch(None, P._replace(model=MPRParams(eta=etas)), net, batch_size=3)
    for b, eta in enumerate(etas):
        one = sim.run(None, P._replace(model=MPRParams(eta=eta)), net)
        np.testing.assert_allclose(res.outputs["tavg"][b], one.outputs["tavg"], rtol=1e-12)
    vm = jax.vmap(lambda e: sim.run(None, P._replace(model=MPRParams(eta=e)), net).outputs["tavg"])
    np.testing.assert_allclose(vm(etas), res.outputs["tavg"], rtol=1e-12)


def test_run_batch_with_predrawn_noise_matches_single_runs(x64, net):
    sim = _sim(noise=noise.AdditiveNoise(0.05))
    z = jax.random.normal(jax.random.key(0), (2, *sim.noise_shape(N)))
    res = sim.run_batch(z, P, net, batch_size=2, params_axes=None)
    for b in range(2):
        one = sim.run(z[b], P, net)
        np.testing.assert_allclose(res.outputs["tavg"][b], one.outputs["tavg"], rtol=1e-12)


def test_per_node_parameters_broadcast(x64, net):
    eta = jnp.linspace(-5.0, -4.0, N)
    sim = _sim()
    res = sim.run(None, P._replace(model=MPRParams(eta=eta)), net)
    rb = sim.run_batch(
        None, P._replace(model=MPRParams(eta=jnp.stack([eta, eta]))), net, batch_size=2
    )
    np.testing.assert_allclose(rb.outputs["tavg"][1], res.outputs["tavg"], rtol=1e-12)


def test_jit_vmap_grad_compose(net):
    sim = _sim(noise=noise.AdditiveNoise(0.05))

    def loss(a, key):
        return (
            sim.run(key, P._replace(coupling=LinearParams(a=a)), net).outputs["tavg"][:, 0].mean()
        )

    keys = jax.random.split(jax.random.key(0), 3)
    vals = jax.jit(jax.vmap(loss, in_axes=(None, 0)))(0.2, keys)
    grads = jax.jit(jax.vmap(jax.grad(loss), in_axes=(None, 0)))(0.2, keys)
    assert vals.shape == grads.shape == (3,)
    assert np.all(np.isfinite(grads))


def _fd(f, x, h):
    return (f(x + h) - f(x - h)) / (2 * h)


def test_gradients_match_finite_differences(x64, net):
    z = jax.random.normal(jax.random.key(2), _sim(noise=noise.AdditiveNoise(0.02)).noise_shape(N))
    sim = _sim(noise=noise.AdditiveNoise(0.02))
    x0 = jnp.stack([jnp.full(N, 0.3), jnp.full(N, -1.5)])

    def loss(eta, a, x0):
        p = simulate.SimParams(MPRParams(eta=eta), LinearParams(a=a))
        return jnp.mean(sim.run(z, p, net, x0).outputs["tavg"][:, 0] ** 2)

    g_eta, g_a, g_x0 = jax.grad(loss, argnums=(0, 1, 2))(-4.8, 0.2, x0)
    np.testing.assert_allclose(g_eta, _fd(lambda e: loss(e, 0.2, x0), -4.8, 1e-5), rtol=1e-6)
    np.testing.assert_allclose(g_a, _fd(lambda a: loss(-4.8, a, x0), 0.2, 1e-5), rtol=1e-6)
    e = jnp.zeros_like(x0).at[0, 2].set(1.0)
    fd_x = _fd(lambda s: loss(-4.8, 0.2, x0 + s * e), 0.0, 1e-5)
    np.testing.assert_allclose(g_x0[0, 2], fd_x, rtol=1e-6)


def test_gradient_wrt_speed_with_linear_lags(x64, net):
    sim = _sim(lag_mode="linear", max_lag=1001)

    def loss(speed):
        res = sim.run(None, P._replace(coupling=LinearParams(a=0.5)), net._replace(speed=speed))
        return jnp.mean(res.outputs["tavg"][:, 0] ** 2)

    g = jax.grad(loss)(2.0)
    fd = _fd(loss, 2.0, 1e-5)
    assert abs(g) > 1e-8  # informative, unlike rounded lags
    np.testing.assert_allclose(g, fd, rtol=1e-5)


def test_network_construction_inside_transforms(net):
    w, lengths = net.weights, net.lengths
    sim = _sim()

    def loss(scale):
        n = network.make_network(w * scale, lengths, speed=2.0 + scale)
        return sim.run(None, P, n).outputs["tavg"][:, 0].mean()

    assert np.isfinite(jax.jit(loss)(1.0))
    assert jax.vmap(loss)(jnp.array([0.5, 1.0])).shape == (2,)
    assert np.isfinite(jax.grad(loss)(1.0))


def _lin_error(stages: str, dt: float) -> float:
    # dx/dt = -x + a W x (no delays) has the exact solution expm(t (a W - I)) x0
    from scipy.linalg import expm

    w = np.array([[0.0, 1.0, 0.5], [0.3, 0.0, 1.0], [1.0, 0.2, 0.0]])
    a, t_end = 0.8, 1.0
    steps = round(t_end / dt)
    sim = simulate.make_simulator(
        lin,
        dt=dt,
        num_steps=steps,
        integrator="heun",
        coupling_stages=stages,
        monitors=[subsample()],
        sample_every=steps,
    )
    x0 = jnp.asarray([[1.0, -0.5, 0.25]])
    res = sim.run(
        None, simulate.SimParams(LinParams(k=1.0), LinearParams(a=a)), network.make_network(w), x0
    )
    exact = expm(t_end * (a * w - np.eye(3))) @ np.asarray(x0[0])
    return float(np.max(np.abs(np.asarray(res.outputs["raw"][-1, 0]) - exact)))


@pytest.mark.parametrize(("stages", "order"), [("held", 1), ("per_stage", 2)])
def test_heun_coupling_conventions_have_their_order(x64, stages, order):
    dts = [0.1, 0.05, 0.025, 0.0125]
    errs = [_lin_error(stages, dt) for dt in dts]
    slope, _ = np.polyfit(np.log(dts), np.log(errs), 1)
    assert abs(slope - order) < 0.15, f"{stages}: observed order {slope:.3f}"


def test_difference_coupling_is_diffusive(x64):
    # two nodes with difference coupling relax to their mean
    sim = simulate.make_simulator(
        lin, dt=0.01, num_steps=2000, coupling=difference, monitors=[subsample()], sample_every=2000
    )
    res = sim.run(
        None,
        simulate.SimParams(LinParams(k=0.0), difference.params_cls(a=1.0)),
        network.make_network(np.array([[0.0, 1.0], [1.0, 0.0]])),
        jnp.asarray([[1.0, 3.0]]),
    )
    np.testing.assert_allclose(res.outputs["raw"][-1, 0], [2.0, 2.0], atol=1e-6)


def test_diverging_run_is_reported_not_hung():
    sim = simulate.make_simulator(mpr, dt=0.5, num_steps=200)
    p = simulate.SimParams(MPRParams(eta=50.0), LinearParams(a=5.0))
    res = sim.run(None, p, network.make_network(np.ones((3, 3))))
    assert bool(simulate.diverged(res))
    ok = simulate.make_simulator(mpr, dt=0.01, num_steps=20).run(
        None, P, network.make_network(np.ones((3, 3)))
    )
    assert not bool(simulate.diverged(ok))


def test_monitors_record_means_and_ends(x64, net):
    sim = _sim(monitors=[temporal_average(name="tavg"), subsample(name="raw")], sample_every=1)
    full = sim.run(None, P, net).outputs
    sim10 = _sim(monitors=[temporal_average(name="tavg"), subsample(name="raw")], sample_every=10)
    out = sim10.run(None, P, net).outputs
    raw = np.asarray(full["raw"])
    np.testing.assert_allclose(out["raw"], raw[9::10], rtol=1e-12)
    np.testing.assert_allclose(out["tavg"], raw.reshape(40, 10, 2, N).mean(axis=1), rtol=1e-12)


# ---------------------------------------------------------------------- bad input
def test_bad_inputs_raise_clear_errors(net):
    sim = _sim()
    with pytest.raises(ValueError, match="weights must be a square"):
        network.make_network(np.ones((3, 4)))
    with pytest.raises(ValueError, match="lengths must have the shape of weights"):
        network.make_network(np.ones((3, 3)), np.ones((3, 2)))
    with pytest.raises(ValueError, match="lengths must be >= 0"):
        network.make_network(np.ones((3, 3)), -np.ones((3, 3)))
    with pytest.raises(ValueError, match="speed must be > 0"):
        network.make_network(np.ones((3, 3)), np.ones((3, 3)), speed=-1.0)
    with pytest.raises(ValueError, match="weights must be finite"):
        network.make_network(np.full((3, 3), np.nan))
    with pytest.raises(ValueError, match=r"init must have shape \(n_states=2"):
        sim.run(None, P, net, jnp.zeros((3, N)))
    with pytest.raises(ValueError, match=r"params\.model\.eta must be finite"):
        sim.run(None, P._replace(model=MPRParams(eta=np.nan)), net)
    with pytest.raises(ValueError, match=r"network\.speed must be > 0"):
        sim.run(None, P, net._replace(speed=0.0))
    with pytest.raises(ValueError, match=r"network\.lengths is None"):
        sim.run(None, P, network.make_network(np.ones((N, N))))
    with pytest.raises(ValueError, match="num_steps must be a multiple of sample_every"):
        simulate.make_simulator(mpr, dt=0.1, num_steps=15, sample_every=10)
    with pytest.raises(ValueError, match="block_steps must be"):
        simulate.make_simulator(mpr, dt=0.1, num_steps=100, block_steps=30)
    with pytest.raises(ValueError, match="block_steps must be a positive integer"):
        simulate.make_simulator(mpr, dt=0.1, num_steps=100, block_steps=0)
    with pytest.raises(ValueError, match="dt must be a positive"):
        simulate.make_simulator(mpr, dt=-0.1, num_steps=100)
    with pytest.raises(ValueError, match="lag_mode must be one of"):
        simulate.make_simulator(mpr, dt=0.1, num_steps=100, lag_mode="cubic")
    with pytest.raises(ValueError, match="key: this simulator is stochastic"):
        _sim(noise=noise.AdditiveNoise(0.1)).run(None, P, net)
    with pytest.raises(ValueError, match=r"key \(pre-drawn noise\) must have shape"):
        _sim(noise=noise.AdditiveNoise(0.1)).run(jnp.zeros((3, 2)), P, net)
    with pytest.raises(ValueError, match="per_stage"):
        simulate.make_simulator(
            mpr, dt=0.1, num_steps=10, integrator="rk4", max_lag=3, coupling_stages="per_stage"
        )


def test_errors_are_raised_before_compilation(net):
    # the shape check fires while tracing, before XLA compiles anything
    sim = _sim()
    f = jax.jit(lambda x0: sim.run(None, P, net, x0).outputs)
    with pytest.raises(ValueError, match="init must have shape"):
        f.lower(jnp.zeros((2, N + 1)))


def test_noise_sigma_per_state_and_function(x64, net):
    sim_vec = _sim(noise=noise.AdditiveNoise(jnp.array([0.0, 0.05])))
    sim_fn = _sim(noise=noise.AdditiveNoise(lambda p: jnp.array([0.0, 0.05])))
    sim_sub = _sim(noise=noise.AdditiveNoise(0.05, states=(1,)))
    z = jax.random.normal(jax.random.key(0), sim_vec.noise_shape(N))
    a = sim_vec.run(z, P, net).outputs["tavg"]
    b = sim_fn.run(z, P, net).outputs["tavg"]
    c = sim_sub.run(z[:, 1:], P, net).outputs["tavg"]
    np.testing.assert_allclose(a, b, rtol=1e-13)
    np.testing.assert_allclose(a, c, rtol=1e-13)
    assert not math.isclose(
        float(a[-1, 1, 0]), float(_sim().run(None, P, net).outputs["tavg"][-1, 1, 0])
    )


def test_initial_state_and_history_are_clipped_to_bounds(x64, net):
    # as TVB does: r < 0 at the start is clipped to 0 before the first step
    sim = _sim(monitors=[subsample()], sample_every=1, num_steps=10)
    x0 = jnp.stack([jnp.full(N, -0.2), jnp.full(N, -2.0)])
    a = sim.run(None, P, net, x0).outputs["raw"]
    b = sim.run(None, P, net, x0.at[0].set(0.0)).outputs["raw"]
    np.testing.assert_array_equal(a, b)
    hist = jnp.full((1000, 1, N), -0.5)
    c = sim.run(None, P, net, x0, history=hist).outputs["raw"]
    d = sim.run(None, P, net, x0, history=jnp.zeros_like(hist)).outputs["raw"]
    np.testing.assert_array_equal(c, d)
