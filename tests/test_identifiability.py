"""Identifiability at a MAP against closed forms: Hessian, Fisher, Laplace, sloppy directions,
profile likelihoods."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest

import vbinfer as vb
from tests._linear_gaussian import D, linear_gaussian_problem
from vbinfer.coupling import LinearParams
from vbinfer.inference import FitResult, fit, make_problem
from vbinfer.inference.identifiability import (
    fisher_information,
    hessian,
    identifiability,
    profile_likelihood,
    spectrum,
)
from vbinfer.inference.identifiability_plots import (
    plot_eigenvalues,
    plot_loadings,
    plot_profiles,
)
from vbinfer.inference.network_fit import make_network_problem
from vbinfer.models import LinearModelParams, linear


@pytest.fixture(scope="module")
def linear_gaussian():
    return linear_gaussian_problem()


def test_hessian_and_fisher_are_exact_on_the_linear_gaussian(linear_gaussian):
    problem, data, mean, cov, prec, fisher = linear_gaussian
    point = {"theta": mean}  # the closed-form MAP, given as constrained values
    ident = identifiability(problem, data, point)
    np.testing.assert_allclose(ident.hessian, prec, rtol=1e-5)
    np.testing.assert_allclose(ident.fisher, fisher, rtol=1e-5)
    np.testing.assert_allclose(ident.covariance, cov, rtol=1e-4)
    np.testing.assert_allclose(
        ident.hessian_spectrum.eigenvalues, np.sort(np.linalg.eigvalsh(prec))[::-1], rtol=1e-5
    )
    # J^T S^-1 J + prior precision; a linear model has it everywhere (here at u = 0)
    gn = fisher_information(problem, data, np.zeros(D), include_prior=True)
    np.testing.assert_allclose(gn, prec, rtol=1e-5)
    np.testing.assert_allclose(hessian(problem, data, np.zeros(D)), prec, rtol=1e-5)
    # a block of chosen coordinates
    block = hessian(problem, data, point, coordinates=["theta[2]", 0])
    np.testing.assert_allclose(block, prec[np.ix_([2, 0], [2, 0])], rtol=1e-5)
    assert ident.labels == ("theta[0]", "theta[1]", "theta[2]")


def test_laplace_is_a_fit_result_and_exact(linear_gaussian):
    problem, data, mean, cov, _, _ = linear_gaussian
    n = 40000
    lap = fit(
        problem,
        data,
        method="laplace",
        key=jax.random.key(7),
        optimizer="adam",
        learning_rate=0.05,
        num_steps=1000,
        num_restarts=1,
        num_samples=n,
    )
    assert isinstance(lap, FitResult) and lap.method == "laplace"
    assert lap.to_arviz().posterior["theta"].shape == (1, n, D)
    # exact Gaussian: the MAP is the mean, the inverse Hessian the covariance ...
    ident = identifiability(problem, data, lap)
    np.testing.assert_allclose(ident.point, mean, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ident.covariance, cov, rtol=1e-4)
    # ... and its draws agree within Monte Carlo error
    post = lap.flat("theta")
    sd = np.sqrt(np.diag(cov))
    np.testing.assert_array_less(np.abs(post.mean(0) - mean), 4 * sd / np.sqrt(n))
    se_cov = np.sqrt((cov**2 + np.outer(sd**2, sd**2)) / n)
    np.testing.assert_array_less(np.abs(np.cov(post.T) - cov), 4 * se_cov)


def test_sloppy_product_has_a_near_zero_direction_named_by_both(x64):
    """y = a * b * x: only the product is identified (float64: the sloppy eigenvalue is 1e-6
    of the stiff one)."""
    x = jnp.linspace(0.5, 2.0, 12)
    problem = make_problem(
        {"a": dist.Normal(0.0, 10.0), "b": dist.Normal(0.0, 10.0)},
        lambda th: th["a"] * th["b"] * x,
        noise_sd=0.1,
    )
    data = 2.0 * x
    s = np.sqrt(2.0)  # a = b = sqrt(2) fits exactly; the prior picks |a| = |b|
    ident = identifiability(problem, data, {"a": s, "b": s}, num_directions=1)
    ev = ident.hessian_spectrum.eigenvalues
    # stiff: d^2/da^2 of sum((ab x - y)^2) / (2 sd^2) along (1, 1): 2 s^2 |x|^2 / sd^2 + prior
    stiff = 2 * s**2 * float(x @ x) / 0.1**2 + 1e-2
    np.testing.assert_allclose(ev[0], stiff, rtol=1e-9)
    # sloppy: only the prior's curvature 1 / 10^2 is left along (1, -1)
    np.testing.assert_allclose(ev[1], 1e-2, rtol=1e-6)
    assert ev[1] / ev[0] < 1e-5
    sloppy_dir = ident.hessian_spectrum.sloppy[0]
    assert {lab for lab, _ in sloppy_dir.loadings} == {"a", "b"}
    np.testing.assert_allclose([w for _, w in sloppy_dir.loadings], [0.5, 0.5], atol=1e-3)
    v = ident.hessian_spectrum.eigenvectors[:, -1]
    assert v[0] * v[1] < 0  # along the hyperbola a b = const
    assert "a" in sloppy_dir.describe() and "b" in sloppy_dir.describe()
    # the Fisher information of the data alone is singular: rank one
    f = ident.fisher_spectrum.eigenvalues
    assert abs(f[1]) / f[0] < 1e-12


@pytest.fixture(scope="module")
def profile_of_theta1(linear_gaussian):
    problem, data, mean, cov, _, _ = linear_gaussian
    grid = mean[1] + np.sqrt(cov[1, 1]) * np.linspace(-3, 3, 7)
    return profile_likelihood(
        problem, data, {"theta": mean}, coordinate="theta[1]", grid=grid, num_steps=30
    )


def test_profile_matches_the_analytic_profile_of_a_quadratic(linear_gaussian, profile_of_theta1):
    _, _, mean, cov, _, _ = linear_gaussian
    prof, k = profile_of_theta1, 1
    grid = prof.grid
    # min over the other coordinates of a Gaussian's negative log density
    analytic = 0.5 * (grid - mean[k]) ** 2 / cov[k, k]
    np.testing.assert_allclose(prof.delta, analytic, atol=2e-4, rtol=1e-4)
    np.testing.assert_allclose(prof.values, grid, rtol=1e-6)
    assert prof.map_value == pytest.approx(mean[k], rel=1e-6)
    # the other coordinates follow the conditional mean
    cond = mean[None, :] + np.outer(grid - mean[k], cov[:, k] / cov[k, k])
    np.testing.assert_allclose(prof.points, cond, atol=1e-3)


def test_profile_on_a_constrained_grid():
    """A positive parameter: the grid in its own units maps through log."""
    x = jnp.linspace(-1.0, 1.0, 8)
    problem = make_problem(
        {"s": dist.LogNormal(0.0, 1.0)}, lambda th: jnp.log(th["s"]) * x, noise_sd=0.5
    )
    data = 0.3 * x
    grid_s = np.array([0.5, 1.0, 2.0])
    # one coordinate: nothing is left to optimise (one cheap Adam step)
    prof = profile_likelihood(
        problem,
        data,
        {"s": 1.0},
        coordinate="s",
        grid=grid_s,
        constrained=True,
        optimizer="adam",
        num_steps=1,
    )
    u = np.log(grid_s)
    np.testing.assert_allclose(prof.grid, u, rtol=1e-6)
    np.testing.assert_allclose(prof.values, grid_s, rtol=1e-5)
    # the profile is the negative log density itself, a quadratic in u = log s (the Jacobian
    # of exp cancels the LogNormal's 1 / s)
    expected = 0.5 * u**2 + 0.5 * np.sum((np.outer(u, x) - 0.3 * x) ** 2, axis=1) / 0.25
    np.testing.assert_allclose(prof.delta, expected - expected[1], rtol=1e-4, atol=1e-5)


def test_network_problem_hessian_equals_gauss_newton_at_an_exact_fit():
    """At zero residual the Hessian of a squared-error loss is its Gauss-Newton matrix."""
    n = 4
    rng = np.random.default_rng(3)
    w = (1 - np.eye(n)) * rng.uniform(0.005, 0.02, (n, n))
    sim = vb.make_simulator(
        linear, dt=1.0, num_steps=200, noise=vb.AdditiveNoise(0.1), integrator="euler"
    )
    base = vb.SimParams(LinearModelParams(lam=0.1), LinearParams(a=1.0))
    key = jax.random.key(0)
    net = vb.make_network(w)
    target = sim.run(key, base, net).outputs["tavg"][:, 0]
    setup = make_network_problem(
        sim,
        net,
        base,
        target,
        free={"network.weights": "nonzero", "coupling.a": "global"},
        loss="mse",
        noise=key,
    )
    truth = setup.constrain(jnp.zeros(setup.num_free))
    ident = identifiability(setup, None, {k: np.asarray(v) for k, v in truth.items()})
    np.testing.assert_allclose(ident.point, 0.0, atol=1e-6)
    scale = np.abs(ident.hessian).max()
    np.testing.assert_allclose(ident.hessian, ident.fisher, atol=1e-4 * scale)
    # a enters only as a * W: raising a by e and every log-weight by -e changes nothing
    ev = ident.hessian_spectrum.eigenvalues
    assert ev[-1] < 1e-5 * ev[0] < ev[-2]
    v = ident.hessian_spectrum.eigenvectors[:, -1]
    np.testing.assert_allclose(np.abs(v), 1 / np.sqrt(setup.num_free), atol=1e-3)
    assert np.all(v[0] * v[1:] < 0)
    assert len(ident.hessian_spectrum.sloppy[0].loadings) == 6  # spread over all: max_loadings
    assert ident.labels[0] == "coupling.a" and ident.labels[1] == "network.weights[0<-1]"


def test_plots(tmp_path, linear_gaussian, profile_of_theta1):
    problem, data, mean, _, _, _ = linear_gaussian
    ident = identifiability(problem, data, {"theta": mean})
    for name, fig in [
        ("spectrum", plot_eigenvalues(ident)),
        ("loadings", plot_loadings(ident.hessian_spectrum)),
        ("profiles", plot_profiles([profile_of_theta1, profile_of_theta1])),
    ]:
        fig.savefig(tmp_path / f"{name}.png")
        assert (tmp_path / f"{name}.png").stat().st_size > 1000


def test_bad_input(linear_gaussian):
    problem, data, mean, _, _, _ = linear_gaussian
    with pytest.raises(
        ValueError, match=r"point: expected an unconstrained vector of shape \(3,\)"
    ):
        hessian(problem, data, np.zeros(2))
    nuts_like = FitResult("nuts", {"theta": np.zeros((1, 2, 3))}, None, None, 0.0, 0.0, {})
    with pytest.raises(ValueError, match=r"FitResult of method 'map' or 'laplace'.*'nuts'"):
        hessian(problem, data, nuts_like)
    with pytest.raises(ValueError, match="coordinate: unknown label 'eta'"):
        profile_likelihood(problem, data, mean, coordinate="eta", grid=[0.0])
    with pytest.raises(ValueError, match=r"coordinate must be in \[0, 3\), got 3"):
        profile_likelihood(problem, data, mean, coordinate=3, grid=[0.0])
    with pytest.raises(ValueError, match="grid must be a finite 1-D array"):
        profile_likelihood(problem, data, mean, coordinate=0, grid=[[0.0]])
    with pytest.raises(ValueError, match="coordinates: unknown label 'eta'"):
        hessian(problem, data, mean, coordinates=["eta"])
    with pytest.raises(ValueError, match="coordinates must be non-empty and distinct"):
        hessian(problem, data, mean, coordinates=[0, 0])
    with pytest.raises(ValueError, match="matrix must be square"):
        spectrum(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="labels must have 2 entries, got 1"):
        spectrum(np.eye(2), ["a"])
    with pytest.raises(ValueError, match="data must have shape"):
        hessian(problem, data[:3], mean)
