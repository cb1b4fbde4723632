"""Integrators: convergence order, SDE statistics, time-dependent drift."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests._models import OUParams, ZeroParams, ou, zero
from vbinfer import integrators, network, noise, simulate
from vbinfer.monitors import subsample


def _observed_order(name: str, dts: list[float]) -> float:
    # dx/dt = x cos(t), x(0) = 1  ->  x(t) = exp(sin t)
    f = lambda t, x, a: x * jnp.cos(t)  # noqa: E731
    t_end = 2.0
    errs = []
    for dt in dts:
        n = round(t_end / dt)
        xs = integrators.odeint(f, jnp.float64(1.0), 0.0, dt, n, integrator=name)
        errs.append(abs(float(xs[-1]) - math.exp(math.sin(t_end))))
    slope, _ = np.polyfit(np.log(dts), np.log(errs), 1)
    return slope


@pytest.mark.parametrize(("name", "order"), [("euler", 1), ("heun", 2), ("rk4", 4)])
def test_convergence_order(x64, name, order):
    dts = [0.1, 0.05, 0.025, 0.0125]
    slope = _observed_order(name, dts)
    assert abs(slope - order) < 0.15, f"{name}: observed order {slope:.3f}, expected {order}"


def test_odeint_rejects_bad_save_every():
    with pytest.raises(ValueError, match="save_every"):
        integrators.odeint(lambda t, x, a: -x, 1.0, 0.0, 0.1, 10, save_every=3)


def test_unknown_integrator():
    with pytest.raises(ValueError, match="integrator must be one of"):
        integrators.get_integrator("leapfrog")


def _ou_run(name: str, dt: float, theta: float, sigma: float, batch: int, steps: int):
    sim = simulate.make_simulator(
        ou,
        dt=dt,
        num_steps=steps,
        integrator=name,
        noise=noise.AdditiveNoise(sigma),
        monitors=[subsample()],
        sample_every=10,
    )
    net = network.make_network(np.zeros((1, 1)))
    p = simulate.SimParams(OUParams(theta=theta, mu=0.5))
    x0 = jnp.full((1, 1, batch), 0.5)
    res = sim.run(jax.random.key(1), p, net, x0)
    return np.asarray(res.outputs["raw"][:, 0, 0, :])  # (samples, batch)


@pytest.mark.parametrize("name", ["euler", "heun"])
def test_ornstein_uhlenbeck_stationary_moments(x64, name):
    theta, sigma, dt, mu = 0.5, 0.8, 0.05, 0.5
    xs = _ou_run(name, dt, theta, sigma, batch=4000, steps=2000)
    tail = xs[-50:]  # t >= 75 time constants... well past 1/theta = 2
    # Exact stationary variance of the discrete schemes (additive noise):
    g2 = sigma**2 * dt
    if name == "euler":
        a, b = 1 - theta * dt, 1.0
    else:
        a, b = 1 - theta * dt + (theta * dt) ** 2 / 2, 1 - theta * dt / 2
    var_exact = b**2 * g2 / (1 - a**2)
    assert abs(var_exact - sigma**2 / (2 * theta)) < 0.02  # close to the continuous value
    last = xs[-1]
    n = last.size
    se_mean = math.sqrt(var_exact / n)
    assert abs(last.mean() - mu) < 4 * se_mean
    se_var = var_exact * math.sqrt(2 / (n - 1))
    assert abs(last.var(ddof=1) - var_exact) < 4 * se_var
    # the pooled tail agrees too (samples are correlated, so only a loose sanity bound)
    assert abs(tail.var() - var_exact) < 0.1 * var_exact


def test_coloured_noise_is_ornstein_uhlenbeck(x64):
    sigma, tau, dt = 0.3, 5.0, 0.1
    steps, batch = 4000, 256
    sim = simulate.make_simulator(
        zero,
        dt=dt,
        num_steps=steps,
        integrator="euler",
        noise=noise.ColouredNoise(sigma=sigma, tau=tau),
        monitors=[subsample()],
    )
    res = sim.run(
        jax.random.key(3),
        simulate.SimParams(ZeroParams()),
        network.make_network(np.zeros((1, 1))),
        jnp.zeros((1, 1, batch)),
    )
    x = np.asarray(res.outputs["raw"][:, 0, 0, :])
    eta = np.diff(x, axis=0) / dt  # Euler: x[n+1] - x[n] = dt * eta[n]
    eta = eta[1000:]  # eta starts at 0: drop 20 correlation times
    n_eff = eta.shape[1] * eta.shape[0] * dt / (2 * tau)
    assert abs(eta.std() - sigma) < 4 * sigma / math.sqrt(2 * n_eff)
    rho = np.mean(eta[1:] * eta[:-1]) / np.mean(eta * eta)
    assert abs(rho - math.exp(-dt / tau)) < 2e-3


def test_time_reaches_the_derivative(x64):
    # dx/dt = cos(t) through the stimulus: x(t) = sin(t)
    sim = simulate.make_simulator(
        zero,
        dt=0.01,
        num_steps=300,
        integrator="rk4",
        monitors=[subsample()],
        stimulus=lambda t, p: jnp.cos(t),
        t0=0.5,
    )
    res = sim.run(
        None,
        simulate.SimParams(ZeroParams()),
        network.make_network(np.zeros((1, 1))),
        jnp.full((1, 1), math.sin(0.5)),
    )
    t = 0.5 + 0.01 * np.arange(1, 301)
    np.testing.assert_allclose(np.asarray(res.outputs["raw"][:, 0, 0]), np.sin(t), atol=1e-10)


def test_rk4_rejects_white_noise():
    with pytest.raises(ValueError, match="deterministic"):
        simulate.make_simulator(
            ou, dt=0.1, num_steps=10, integrator="rk4", noise=noise.AdditiveNoise()
        )
