"""Workflow 1, MVAR recovery: the transition likelihood against the simulator, the MAP against
the closed-form ridge solution, a quick end-to-end run, and (slow) recovery with NUTS against
the analytic posterior."""

from __future__ import annotations

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vbinfer as vb
from vbinfer.coupling import LinearParams
from vbinfer.inference import simulate_data
from vbinfer.models import LinearModelParams
from vbinfer.workflows import WorkflowReport, mvar


def _ridge_posterior(states, dt, lam, sigma, prior_sd):
    """Exact Gaussian posterior of W given sigma (each row of W is a Bayesian linear regression
    of x_{t+1} - (1 - lam dt) x_t on dt x_t with noise variance sigma^2 dt): mean, sd."""
    X = np.asarray(states, np.float64)[:-1]
    Y = np.asarray(states, np.float64)[1:] - (1.0 - lam * dt) * X
    n = X.shape[1]
    prec = (dt / sigma**2) * X.T @ X + np.eye(n) / prior_sd**2
    cov = np.linalg.inv(prec)
    mean = (cov @ X.T @ Y / sigma**2).T  # row i: cov X^T y_i / sigma^2
    sd = np.broadcast_to(np.sqrt(np.diag(cov)), (n, n))
    return mean, sd


@pytest.fixture(scope="module")
def data():
    return mvar.simulate_mvar(jax.random.key(0))


def test_transition_mean_reproduces_the_simulator():
    # x_{t+1} = transition_mean(x_t) + sigma sqrt(dt) z_t exactly, with the simulator's own
    # pre-drawn noise, per-node decay rates and a non-unit coupling gain
    n, steps, dt, sigma = 5, 200, 0.5, 0.3
    W = mvar.random_stable_weights(jax.random.key(1), n, lam=0.8, dt=dt)
    sim = mvar.make_mvar_simulator(steps, dt=dt, sigma=sigma)
    params = vb.SimParams(
        LinearModelParams(lam=jnp.linspace(0.6, 1.0, n), I=0.05, k=1.3), LinearParams(a=0.7)
    )
    net = vb.make_network(W)
    z = jax.random.normal(jax.random.key(2), sim.noise_shape(n))
    x0 = 0.1 * jnp.ones((1, n))
    xs = sim.run(z, params, net, x0).outputs["x"]  # (steps, 1, n)
    states = jnp.concatenate([x0[None], xs], axis=0)
    pred = mvar.transition_mean(sim, params, net, states[:-1])
    np.testing.assert_allclose(pred + sigma * math.sqrt(dt) * z, states[1:], atol=2e-6)
    # and the drift is the linear map A x + I of the model's docstring
    A = vb.models.linear_drift_matrix(0.7 * W, params.model._replace(k=1.3))
    x = np.asarray(states[:-1, 0, :])
    np.testing.assert_allclose(pred[:, 0, :], x + dt * (x @ np.asarray(A).T + 0.05), atol=2e-6)


def test_transition_mean_refuses_simulators_where_it_is_not_exact():
    net = vb.make_network(np.zeros((2, 2)))
    p = vb.SimParams(LinearModelParams())
    states = jnp.zeros((3, 1, 2))
    heun = vb.make_simulator(vb.models.linear, dt=1.0, num_steps=4, noise=vb.AdditiveNoise(0.1))
    with pytest.raises(ValueError, match="integrator 'heun'"):
        mvar.transition_mean(heun, p, net, states)
    ode = vb.make_simulator(vb.models.linear, dt=1.0, num_steps=4, integrator="euler")
    with pytest.raises(ValueError, match="noise NoneType"):
        mvar.transition_mean(ode, p, net, states)
    delayed = vb.make_simulator(
        vb.models.linear, dt=1.0, num_steps=4, integrator="euler", noise=vb.AdditiveNoise(0.1),
        max_lag=3,
    )  # fmt: skip
    with pytest.raises(ValueError, match="max_lag=3"):
        mvar.transition_mean(delayed, p, net, states)
    bounded = vb.make_simulator(
        vb.models.mpr, dt=0.1, num_steps=4, integrator="euler", noise=vb.AdditiveNoise(0.1)
    )
    with pytest.raises(ValueError, match="state bounds"):
        mvar.transition_mean(bounded, vb.SimParams(vb.models.MPRParams()), net, states)
    ok = mvar.make_mvar_simulator(4)
    with pytest.raises(ValueError, match=r"states must have shape \(num_times, n_states=1"):
        mvar.transition_mean(ok, p, net, jnp.zeros((3, 2)))


def test_random_stable_weights_are_stable_and_reproducible():
    key = jax.random.key(3)
    kw = {"weight_sd": 0.3, "lam": 0.5, "dt": 1.0, "max_radius": 0.9}
    W = mvar.random_stable_weights(key, 8, **kw)
    B = 0.5 * np.eye(8) + W
    assert np.abs(np.linalg.eigvals(B)).max() < 0.9
    np.testing.assert_array_equal(W, mvar.random_stable_weights(key, 8, **kw))
    with pytest.raises(ValueError, match="max_radius must lie in"):
        mvar.random_stable_weights(key, 8, max_radius=1.0)
    with pytest.raises(ValueError, match="n_nodes must be a positive integer"):
        mvar.random_stable_weights(key, 0)
    with pytest.raises(ValueError, match="no stable matrix in 5 draws"):
        mvar.random_stable_weights(key, 8, weight_sd=10.0, max_tries=5)


def test_problem_generates_data_with_the_simulator(data):
    # with data=None the problem simulates with the simulator itself: the one-step residuals
    # of a generated trajectory are N(0, sigma^2 dt)
    problem = mvar.mvar_problem(data.simulator, data.params, 8)
    truth = {"weights": data.weights, "sigma": 0.5}
    y = np.asarray(simulate_data(jax.random.key(4), problem, truth))
    assert y.shape == problem.data_shape == (1001, 8)
    np.testing.assert_array_equal(y[0], 0.0)
    x, x_next = y[:-1], y[1:]
    resid = x_next - (0.5 * x + x @ data.weights.T)  # B = (1 - lam dt) I + dt W, dt = 1
    assert abs(resid.std() / 0.5 - 1.0) < 0.05  # 8000 residuals: sd of the ratio about 0.008
    assert abs(resid.mean()) < 0.03


def test_expected_mse_matches_least_squares_error_over_replicates():
    # Monte Carlo over noise replicates with a fixed design is exactly what the bound predicts:
    # E[mse of least squares] = (sigma^2 / dt) tr((X^T X)^-1) / n
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    W = rng.normal(size=(3, 3)) * 0.1
    sigma, dt = 0.4, 0.5
    errs = []
    for _ in range(400):
        Y = dt * X @ W.T + sigma * math.sqrt(dt) * rng.normal(size=(200, 3))
        W_hat = np.linalg.lstsq(dt * X, Y, rcond=None)[0].T
        errs.append(np.mean((W_hat - W) ** 2))
    states = np.vstack([X, np.zeros((1, 3))])  # expected_mse uses rows 0 .. T-1
    ref = mvar.expected_mse(states, dt, sigma)
    assert abs(np.mean(errs) / ref - 1.0) < 0.08  # 400 replicates of a chi2_9 / 9: sd 0.024


def test_quick_nuts_run_writes_files(tmp_path):
    report = mvar.run(tmp_path, backend="nuts", quick=True, progress=False, num_samples=150)
    assert isinstance(report, WorkflowReport) and report.name == "mvar"
    names = {p.name for p in report.files}
    assert names == {
        "entries.csv",
        "results.npz",
        "nuts_fit.npz",
        "matrices.png",
        "scatter.png",
        "shrinkage_z.png",
        "report.json",
    }
    assert all(p.exists() and p.stat().st_size > 0 for p in report.files)
    m = report.metrics
    for k in ("expected_mse", "mse_post_mean", "coverage_2sd", "max_abs_z", "min_shrinkage"):
        assert np.isfinite(m[k])
    for k in ("min_ess", "max_rhat", "nuts_s", "simulate_s", "sigma_post_mean"):
        assert np.isfinite(m[k])
    assert m["nuts_draws"] == 300 and "mse_map" not in m
    assert len((tmp_path / "entries.csv").read_text().splitlines()) == 65
    with np.load(tmp_path / "results.npz") as f:
        assert f["states"].shape == (1001, 8)
        assert f["weights_post_sd"].shape == (8, 8)
        # the rows report what the arrays hold: the worst |z| row is the largest z
        assert max(r["z"] for r in report.rows if r["row"] != "noise sigma") == pytest.approx(
            float(f["weights_z"].max())
        )
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["metrics"]["coverage_2sd"] == pytest.approx(m["coverage_2sd"])
    assert "median over entries" in report.format()


def test_map_run_equals_the_ridge_solution(tmp_path):
    # the MAP of W given sigma_MAP is the closed-form ridge regression (Gaussian prior)
    report = mvar.run(tmp_path, backend="map", quick=True, progress=False)
    assert {p.name for p in report.files} >= {"matrices.png", "scatter.png", "map_loss.png"}
    m = report.metrics
    with np.load(tmp_path / "results.npz") as f:
        W_map, W, states = f["weights_map"], f["weights_truth"], f["states"]
    mean, sd = _ridge_posterior(states, 1.0, 0.5, m["sigma_map"], mvar.PRIOR_SD)
    assert np.max(np.abs(W_map - mean) / sd) < 0.02
    assert abs(m["sigma_map"] - m["sigma_true"]) < 4 * m["sigma_true"] / math.sqrt(2 * 8000)
    assert m["mse_map"] == pytest.approx(np.mean((W_map - W) ** 2))
    assert m["mse_map"] < mvar.MSE_FACTOR * m["expected_mse"]
    assert report.passed is True and "coverage_2sd" not in m


def test_run_validates_its_arguments():
    with pytest.raises(ValueError, match="backend must be one of"):
        mvar.run(None, backend="laplace")
    with pytest.raises(ValueError, match="num_samples must be a positive integer"):
        mvar.run(None, num_samples=0)


@pytest.mark.slow
def test_mvar_recovery(tmp_path):
    """Full workflow, seed 0: MAP within twice the Cramer-Rao error, NUTS calibrated, converged
    and equal to the analytic posterior (Gaussian given sigma) within Monte Carlo error."""
    report = mvar.run(tmp_path, seed=0, progress=False)
    m = report.metrics
    # 64 entries from 1000 steps: expected MSE ~ 6e-4 against a weight variance ~ 2e-2
    assert m["mse_map"] < mvar.MSE_FACTOR * m["expected_mse"]
    assert m["mse_map"] < 0.05 * m["weights_variance"]
    assert m["coverage_2sd"] >= 0.9
    assert m["min_shrinkage"] > 0.9
    assert m["max_rhat"] < 1.05
    assert m["min_ess"] > 100
    assert m["divergences"] == 0
    assert report.passed is True
    with np.load(tmp_path / "results.npz") as f:
        post_mean, post_sd, states = f["weights_post_mean"], f["weights_post_sd"], f["states"]
    mean, sd = _ridge_posterior(states, 1.0, 0.5, m["sigma_post_mean"], mvar.PRIOR_SD)
    # 2000 draws with ESS > 100: Monte Carlo error of the mean below sd / 10
    assert np.max(np.abs(post_mean - mean) / sd) < 0.4
    assert np.max(np.abs(post_sd / sd - 1.0)) < 0.15
