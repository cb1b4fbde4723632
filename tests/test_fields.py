"""Field simulations on the sphere: exact spectral solutions, kernel and region coupling, noise,
transforms (jit / vmap / grad) and finite differences, bad input."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vbinfer import fields, models, monitors, noise, simulate
from vbinfer.coupling import DifferenceParams, LinearParams, difference
from vbinfer.models import LinearModelParams, MPRParams
from vbinfer.network import make_network


def _random_band_limited(sht, rng, band, batch=()):
    """A real field band-limited to ``band`` and its coefficients ``[m, l]``."""
    n = sht.lmax + 1
    a = rng.standard_normal((*batch, n, n)) + 1j * rng.standard_normal((*batch, n, n))
    a = np.triu(a)
    a[..., 0, :] = a[..., 0, :].real
    a[..., band + 1 :] = 0.0
    return np.asarray(fields.synthesis(sht, a)), a


def _heat_sim(sht, dt, num_steps, integrator="heun"):
    """du/dt = D Δu as a linear model (lam = 0, k = 1) with local coupling a = D, gains -l(l+1)."""
    lap = -sht.degrees * (sht.degrees + 1.0)
    return fields.make_field_simulator(
        models.linear,
        sht,
        lap,
        dt=dt,
        num_steps=num_steps,
        integrator=integrator,
        monitors=[monitors.subsample()],
        sample_every=num_steps,
    )


# ----------------------------------------------------------------------------- local coupling


def test_heat_equation_against_exact_spectral_solution(x64):
    """Each degree decays as exp(-D l (l + 1) t); Heun converges at order 2, RK4 at order 4."""
    sht = fields.make_sht(12, dtype=jnp.float64)
    D, T = 0.02, 1.0
    u0, a = _random_band_limited(sht, np.random.default_rng(0), band=8)
    l = np.arange(sht.lmax + 1.0)
    exact = np.asarray(fields.synthesis(sht, a * np.exp(-D * l * (l + 1) * T)))
    params = fields.FieldParams(
        LinearModelParams(lam=0.0, I=0.0, k=1.0), local=LinearParams(a=D, b=0.0)
    )

    def error(n, integrator):
        sim = _heat_sim(sht, T / n, n, integrator)
        res = jax.jit(sim.run)(None, params, None, u0.reshape(1, -1))
        out = sim.to_grid(res.final.x[0])
        np.testing.assert_array_equal(res.outputs["raw"][-1, 0], res.final.x[0])
        return float(np.max(np.abs(out - exact)) / np.max(np.abs(exact)))

    heun = [error(n, "heun") for n in (10, 20)]
    assert abs(math.log2(heun[0] / heun[1]) - 2.0) < 0.1, heun
    assert heun[-1] < 1e-3
    rk4 = [error(n, "rk4") for n in (10, 20)]
    assert abs(math.log2(rk4[0] / rk4[1]) - 4.0) < 0.2, rk4
    assert rk4[-1] < 1e-7


def test_kernel_coupling_of_a_constant_field(x64):
    """A constant field stays constant and grows as exp((a g_0 - lam) t), g_0 = a_e - a_i the
    integral of a difference of Gaussians; difference coupling of a constant field is zero."""
    sht = fields.make_sht(10, dtype=jnp.float64)
    gains = fields.make_kernel_gains("dog", sht.lmax, sigma_e=0.2, sigma_i=0.6, a_e=2.5, a_i=1.0)
    g0, lam, a, T, n = 1.5, 0.3, 0.5, 2.0, 100
    sim = fields.make_field_simulator(
        models.linear, sht, gains, dt=T / n, num_steps=n, integrator="rk4"
    )
    x0 = jnp.full((1, sim.n_points), 0.7)
    p = fields.FieldParams(LinearModelParams(lam=lam), local=LinearParams(a=a, b=0.0))
    x = np.asarray(jax.jit(sim.run)(None, p, None, x0).final.x[0])
    expected = 0.7 * math.exp((a * g0 - lam) * T)
    np.testing.assert_allclose(x, expected, rtol=1e-10)

    sim_d = fields.make_field_simulator(
        models.linear, sht, gains, dt=T / n, num_steps=n, integrator="rk4",
        local_coupling=difference,
    )  # fmt: skip
    pd = fields.FieldParams(LinearModelParams(lam=lam), local=DifferenceParams(a=a))
    x = np.asarray(jax.jit(sim_d.run)(None, pd, None, x0).final.x[0])
    np.testing.assert_allclose(x, 0.7 * math.exp(-lam * T), rtol=1e-10)


def test_local_coupling_is_the_spherical_convolution(x64):
    """One Euler step equals x + dt (-lam x + a (k * x)) with k * x from apply_kernel."""
    sht = fields.make_sht(10, dtype=jnp.float64)
    gains = fields.make_kernel_gains("gaussian", sht.lmax, sigma=0.4)
    u0, _ = _random_band_limited(sht, np.random.default_rng(3), band=sht.lmax)
    sim = fields.make_field_simulator(
        models.linear, sht, gains, dt=0.1, num_steps=1, integrator="euler"
    )
    p = fields.FieldParams(LinearModelParams(lam=0.2), local=LinearParams(a=0.8, b=0.0))
    x1 = sim.to_grid(jax.jit(sim.run)(None, p, None, u0.reshape(1, -1)).final.x[0])
    expected = u0 + 0.1 * (-0.2 * u0 + 0.8 * np.asarray(fields.apply_kernel(sht, u0, gains)))
    np.testing.assert_allclose(x1, expected, rtol=0, atol=1e-13)


# ----------------------------------------------------------------------------- region coupling


def test_region_pulse_arrives_after_the_lag(x64):
    """Two hemispheres, 0 -> 1 with a 10 ms delay: region 1 moves exactly `lag` steps after a
    stimulus of region 0 starts, by the area-weighted mean of region 0 (independent numpy
    recurrence with the Gauss-Legendre area weights)."""
    sht = fields.make_sht(8, dtype=jnp.float64)
    nlat, nlon = sht.nlat, sht.nlon
    rmap = np.repeat([0, 1], nlat // 2 * nlon)  # northern rows -> region 0
    dt, speed, length, t_on, n = 0.5, 2.0, 10.0, 3.0, 60
    lag = round(length / speed / dt)  # 10 steps
    lat = np.asarray(fields.grid_lat_lon(sht)[0])
    pattern = np.where(rmap == 0, np.repeat(1.0 + np.sin(lat) ** 2, nlon), 0.0)

    def stim(t, params):
        return (t >= t_on) * jnp.asarray(pattern)[None]

    sim = fields.make_field_simulator(
        models.linear,
        sht,
        None,
        dt=dt,
        num_steps=n,
        integrator="euler",
        region_map=rmap.reshape(nlat, nlon),
        max_lag=lag,
        stimulus=stim,
        monitors=[monitors.subsample()],
    )
    net = make_network(np.array([[0.0, 0.0], [1.0, 0.0]]), np.full((2, 2), length), speed)
    p = fields.FieldParams(LinearModelParams(lam=0.0, I=0.0, k=1.0), coupling=LinearParams(a=0.7))
    x = jax.jit(sim.run)(None, p, net, jnp.zeros((1, sim.n_points))).outputs["raw"][:, 0]
    x = np.asarray(x)

    # independent computation in region space
    area = np.repeat(np.asarray(sht.weights) * 2 * np.pi / nlon, nlon)
    mean0 = (pattern * area)[rmap == 0].sum() / area[rmap == 0].sum()
    x0 = np.zeros(n + 1)  # region 0 value per unit pattern, steps 0..n
    x1 = np.zeros(n + 1)  # region 1 (uniform)
    for k in range(n):
        x0[k + 1] = x0[k] + dt * (k * dt >= t_on)
        src = x0[k - lag] if k - lag >= 0 else x0[0]
        x1[k + 1] = x1[k] + dt * 0.7 * mean0 * src
    np.testing.assert_allclose(x[:, rmap == 0], np.outer(x0[1:], pattern[rmap == 0]), atol=1e-13)
    np.testing.assert_allclose(x[:, rmap == 1], np.repeat(x1[1:, None], (rmap == 1).sum(), 1))
    first = int(np.argmax(x1 > 0))  # first step (index into x1) at which region 1 has moved
    assert first == round(t_on / dt) + 1 + lag + 1
    assert np.all(x[: first - 1, rmap == 1] == 0.0) and np.all(x[first - 1, rmap == 1] > 0)
    np.testing.assert_allclose(
        fields.region_areas(sht, rmap), [area[rmap == 0].sum(), area[rmap == 1].sum()]
    )


def test_region_field_equals_network_simulator(x64):
    """Without local coupling a field whose regions start uniform is the network simulation of
    its regions (MPR, 3 regions, delays, stochastic-free Heun)."""
    sht = fields.make_sht(8, dtype=jnp.float64)
    rng = np.random.default_rng(4)
    rmap = rng.integers(0, 3, sht.nlat * sht.nlon)
    w = rng.uniform(0, 1, (3, 3))
    np.fill_diagonal(w, 0.0)
    lengths = rng.uniform(1, 20, (3, 3))
    dt, speed, n = 0.01, 10.0, 300
    max_lag = int(np.ceil(lengths.max() / speed / dt))
    net = make_network(w, lengths, speed)
    params_net = simulate.SimParams(MPRParams(eta=-4.8), LinearParams(a=0.6))
    init_regions = np.array([[0.3, 0.1, 0.6], [-1.5, -2.0, -1.0]])
    net_sim = simulate.make_simulator(models.mpr, dt=dt, num_steps=n, max_lag=max_lag)
    ref = jax.jit(net_sim.run)(None, params_net, net, jnp.asarray(init_regions)).outputs["tavg"]

    sim = fields.make_field_simulator(
        models.mpr, sht, None, dt=dt, num_steps=n, region_map=rmap, max_lag=max_lag
    )
    p = fields.FieldParams(MPRParams(eta=-4.8), coupling=LinearParams(a=0.6))
    out = jax.jit(sim.run)(None, p, net, jnp.asarray(init_regions[:, rmap])).outputs["tavg"]
    np.testing.assert_allclose(out, np.asarray(ref)[:, :, rmap], rtol=1e-12, atol=1e-13)


# ----------------------------------------------------------------------------- noise


def test_noise_key_reproducible_and_equal_to_predrawn():
    sht = fields.make_sht(8)
    gains = fields.make_kernel_gains("gaussian", sht.lmax, sigma=0.3)
    sim = fields.make_field_simulator(
        models.mpr,
        sht,
        gains,
        dt=0.01,
        num_steps=40,
        block_steps=20,
        noise=noise.AdditiveNoise(0.05, states=(1,)),
    )
    p = fields.FieldParams(MPRParams(), local=LinearParams(a=0.5))
    key = jax.random.key(7)
    run = jax.jit(sim.run)
    a = run(key, p).outputs["tavg"]
    b = run(key, p).outputs["tavg"]
    z = noise.draw_noise(key, sim.num_steps, sim.noise_shape[1:], sim.block_steps)
    assert z.shape == sim.noise_shape == (40, 1, 128)
    c = run(z, p).outputs["tavg"]
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)
    d = run(jax.random.key(8), p).outputs["tavg"]
    assert not np.allclose(a, d)
    # noise only on V: r sees it only through V, and every point gets its own draw
    assert np.std(np.asarray(a[-1, 1])) > 0


def test_noise_is_independent_per_point_with_exact_variance(x64):
    """Euler-Maruyama OU at every point, no coupling: the variance over points after n steps is
    sigma^2 dt (1 - q^(2n)) / (1 - q^2), q = 1 - lam dt."""
    sht = fields.make_sht(32, dtype=jnp.float64)
    lam, sigma, dt, n = 0.5, 0.3, 0.05, 100
    sim = fields.make_field_simulator(
        models.linear, sht, None, dt=dt, num_steps=n, integrator="euler",
        noise=noise.AdditiveNoise(sigma),
    )  # fmt: skip
    p = fields.FieldParams(LinearModelParams(lam=lam))
    x = jax.jit(sim.run)(jax.random.key(0), p).final.x[0]
    q = 1 - lam * dt
    var = sigma**2 * dt * (1 - q ** (2 * n)) / (1 - q**2)
    # 2048 independent points: the sample variance has a relative sd of sqrt(2 / 2047) = 3 %
    assert abs(float(jnp.var(x)) / var - 1) < 0.12
    assert abs(float(jnp.mean(x))) < 4 * math.sqrt(var / x.size)


def test_coloured_noise_key_equals_predrawn(x64):
    sht = fields.make_sht(6, dtype=jnp.float64)
    sim = fields.make_field_simulator(
        models.linear, sht, None, dt=0.1, num_steps=20, noise=noise.ColouredNoise(0.2, tau=2.0)
    )
    p = fields.FieldParams(LinearModelParams())
    key = jax.random.key(3)
    z = noise.draw_noise(key, 20, sim.noise_shape[1:], sim.block_steps, dtype=jnp.float64)
    run = jax.jit(sim.run)
    x = run(key, p).final.x
    np.testing.assert_array_equal(x, run(z, p).final.x)
    assert float(jnp.std(x)) > 0


# ----------------------------------------------------------------------------- transforms


def _mpr_region_sim(sht, **kw):
    rmap = np.repeat([0, 1], sht.nlat // 2 * sht.nlon)
    return fields.make_field_simulator(
        models.mpr,
        sht,
        fields.make_kernel_gains("gaussian", sht.lmax, sigma=0.4),
        dt=0.01,
        num_steps=60,
        sample_every=10,
        region_map=rmap,
        max_lag=30,
        lag_mode="linear",
        **kw,
    )


def _net(speed=1.0):
    return make_network(np.array([[0.0, 0.8], [0.5, 0.0]]), np.full((2, 2), 0.17), speed)


def _loss_problem(sim):
    """A scalar loss of (eta, local strength, kernel width, global strength, speed) and noise."""
    sht = sim.sht
    lat = fields.grid_lat_lon(sht)[0]
    x0 = jnp.stack([jnp.repeat(0.3 + 0.1 * jnp.sin(lat), sht.nlon), jnp.full(sim.n_points, -1.5)])
    eta_map = 0.2 * jnp.repeat(jnp.sin(lat), sht.nlon)  # added to eta: one value per point

    def loss(theta, z, sim=sim):
        eta, a_loc, sigma, a_net, speed = theta
        p = fields.FieldParams(
            MPRParams(eta=eta + eta_map),
            local=LinearParams(a=a_loc),
            coupling=LinearParams(a=a_net),
            gains=fields.make_kernel_gains("gaussian", sht.lmax, sigma=sigma),
        )
        return jnp.mean(sim.run(z, p, _net(speed), x0).outputs["tavg"][:, 0] ** 2)

    theta = jnp.array([-4.6, 0.4, 0.35, 0.3, 1.3])  # lags 13.1 steps: fractional, linear mode
    thetas = theta + jnp.array([[0.0] * 5, [0.3, 0.1, -0.05, 0.1, 0.2], [0.6, -0.1, 0.1, 0.2, 0.5]])
    z = jax.random.normal(jax.random.key(2), (3, *sim.noise_shape))
    return loss, theta, thetas, z


def test_jit_vmap_grad_and_finite_differences(x64):
    """The gradient of a loss over a stochastic run (pre-drawn noise, per-point eta map) with
    respect to eta, the local strength, the kernel width, the global strength and the conduction
    speed matches central finite differences; vmap over parameter sets and noise equals the
    single runs."""
    sht = fields.make_sht(8, dtype=jnp.float64)
    sim = _mpr_region_sim(sht, noise=noise.AdditiveNoise(0.02))
    loss, theta, thetas, z = _loss_problem(sim)
    f = jax.jit(loss)
    grad = np.asarray(jax.jit(jax.grad(loss))(theta, z[0]))
    h = 1e-5
    fd = np.array(
        [(f(theta.at[i].add(h), z[0]) - f(theta.at[i].add(-h), z[0])) / (2 * h) for i in range(5)]
    )
    np.testing.assert_allclose(grad, fd, rtol=2e-6)
    assert np.all(np.abs(grad) > 1e-8)
    vals = jax.jit(jax.vmap(loss))(thetas, z)
    for i in range(3):
        np.testing.assert_allclose(vals[i], f(thetas[i], z[i]), rtol=1e-12)


@pytest.mark.slow
def test_vmapped_and_checkpointed_gradients(x64):
    """vmap of grad equals the single gradients; checkpointed blocks change no gradient (12 s)."""
    sht = fields.make_sht(8, dtype=jnp.float64)
    sim = _mpr_region_sim(sht, noise=noise.AdditiveNoise(0.02))
    sim_ck = _mpr_region_sim(sht, noise=noise.AdditiveNoise(0.02), checkpoint=True, block_steps=20)
    loss, theta, thetas, z = _loss_problem(sim)
    g = jax.jit(jax.grad(loss))
    grads = jax.jit(jax.vmap(jax.grad(loss)))(thetas, z)
    for i in range(3):
        np.testing.assert_allclose(grads[i], g(thetas[i], z[i]), rtol=1e-10)
    g_ck = jax.jit(jax.grad(lambda t: loss(t, z[0], sim_ck)))(theta)
    np.testing.assert_allclose(g_ck, grads[0], rtol=1e-10)


# ----------------------------------------------------------------------------- bad input


def test_bad_input_raises_clear_errors():
    sht = fields.make_sht(8)
    P = sht.nlat * sht.nlon
    g = fields.make_kernel_gains("gaussian", sht.lmax, sigma=0.3)
    make = fields.make_field_simulator

    with pytest.raises(
        ValueError,
        match=r"region_map must have shape \(n_points,\) = \(128,\) .* got shape \(100,\)",
    ):
        make(models.mpr, sht, g, dt=0.1, num_steps=10, region_map=np.zeros(100, int))
    with pytest.raises(
        ValueError, match=r"region_map must hold region indices >= 0, got minimum -1"
    ):
        make(models.mpr, sht, g, dt=0.1, num_steps=10, region_map=np.full(P, -1))
    with pytest.raises(ValueError, match=r"indices in 0..n_regions - 1 = 0..1, got index 2"):
        make(models.mpr, sht, g, dt=0.1, num_steps=10, region_map=np.arange(P) % 3, n_regions=2)
    with pytest.raises(
        ValueError, match=r"at least one grid point, got none for 1 of 3 regions \(1\)"
    ):
        make(models.mpr, sht, g, dt=0.1, num_steps=10, region_map=np.repeat([0, 2], P // 2))
    with pytest.raises(ValueError, match="region_map must hold integer region indices"):
        make(models.mpr, sht, g, dt=0.1, num_steps=10, region_map=np.full(P, 0.5))
    with pytest.raises(
        ValueError, match=r"kernel_gains must be real with shape \(lmax \+ 1,\) = \(8,\).* \(9,\)"
    ):
        make(models.mpr, sht, np.ones(9), dt=0.1, num_steps=10)
    with pytest.raises(ValueError, match="max_lag is set but region_map is None"):
        make(models.mpr, sht, g, dt=0.1, num_steps=10, max_lag=3)
    # existing checks of the transform and the kernels, reached through the field's set-up
    with pytest.raises(ValueError, match=r"lmax must be <= nlat - 1 = 7.*lmax=8 with nlat=8"):
        fields.make_sht(8, 8)
    with pytest.raises(
        ValueError, match=r"sigma must be > 0 \(kernel width in radians\), got -0.1"
    ):
        fields.make_kernel_gains("gaussian", 7, sigma=-0.1)

    rmap = np.repeat([0, 1, 2], [40, 40, 48])
    sim = make(models.mpr, sht, g, dt=0.1, num_steps=10, region_map=rmap, max_lag=5)
    p = fields.FieldParams(MPRParams())
    net2 = make_network(np.ones((2, 2)), np.ones((2, 2)), 1.0)
    with pytest.raises(
        ValueError, match=r"network must have n_nodes equal .*n_regions=3.*got 2 nodes"
    ):
        sim.run(None, p, net2)
    with pytest.raises(ValueError, match="network: pass the connectome between regions exactly"):
        sim.run(None, p, None)
    net3 = make_network(np.ones((3, 3)), np.full((3, 3), 10.0), 1.0)
    with pytest.raises(ValueError, match=r"largest lag is 100 steps .* max_lag=5"):
        sim.run(None, p, net3)
    net_ok = make_network(np.ones((3, 3)), np.full((3, 3), 0.2), 1.0)
    with pytest.raises(
        ValueError, match=r"init must have shape \(n_states, n_points\) = \(2, 128\)"
    ):
        sim.run(None, p, net_ok, jnp.zeros((2, 8, 16)))
    with pytest.raises(ValueError, match=r"params.gains must have shape \(lmax \+ 1,\) = \(8,\)"):
        sim.run(None, p._replace(gains=jnp.ones(3)), net_ok)
    with pytest.raises(ValueError, match="params must be a FieldParams"):
        sim.run(None, simulate.SimParams(MPRParams()), net_ok)
    with pytest.raises(ValueError, match="key must be None for a deterministic simulator"):
        sim.run(jax.random.key(0), p, net_ok)
