"""Problems around a network simulator: recovery by MAP, -inf for blow-ups, name checks,
hierarchical priors and hand-written numpyro models around a simulator."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from numpyro.infer.util import log_density
from scipy import stats

import vbinfer as vb
from vbinfer.coupling import LinearParams
from vbinfer.inference import (
    fit,
    guard_finite,
    problem_from_model,
    simulate_data,
    simulator_problem,
)
from vbinfer.inference._common import make_density
from vbinfer.models import MPRParams, mpr


@pytest.fixture(scope="module")
def setup():
    rng = np.random.default_rng(0)
    w = rng.uniform(0, 1, (4, 4))
    np.fill_diagonal(w, 0)
    net = vb.make_network(w, rng.uniform(1, 10, (4, 4)), speed=2.0)
    sim = vb.make_simulator(
        mpr,
        dt=0.01,
        num_steps=600,
        max_lag=600,
        noise=vb.AdditiveNoise(0.05, states=(1,)),
        sample_every=20,
    )
    z = jax.random.normal(jax.random.key(0), sim.noise_shape(4))
    base = vb.SimParams(MPRParams(), LinearParams(a=0.2))
    return sim, net, base, z


def _observe(res):
    return res.outputs["tavg"][:, 0]  # firing rates, (30, 4)


@pytest.mark.slow
def test_laplace_recovers_eta_and_coupling(setup):
    sim, net, base, z = setup
    truth = {"model.eta": -4.5, "coupling.a": 0.5}
    problem = simulator_problem(
        sim,
        net,
        base,
        {"model.eta": dist.Normal(-5.0, 1.0), "coupling.a": dist.HalfNormal(1.0)},
        _observe,
        noise=z,
        noise_sd=0.002,
        data_shape=(30, 4),
        truth=truth,
    )
    data = simulate_data(jax.random.key(1), problem)
    res = fit(
        problem,
        data,
        method="laplace",
        key=jax.random.key(2),
        optimizer="lbfgs",
        num_steps=60,
        num_restarts=2,
        num_samples=4000,
    )
    # eta and the coupling trade off over a 6 ms window: judge recovery against the
    # posterior width (Laplace at the MAP), not an absolute tolerance
    for name, value in truth.items():
        z = abs(float(res.mean(name)) - value) / float(res.sd(name))
        assert z < 3.0, (name, float(res.mean(name)), float(res.sd(name)))
    assert float(res.sd("model.eta")) < 0.2  # the data are informative


def test_diverging_simulation_is_minus_inf(setup):
    sim, net, base, z = setup
    problem = simulator_problem(
        sim,
        net,
        base,
        {"model.eta": dist.Normal(-5.0, 100.0)},
        _observe,
        noise=z,
        data_shape=(30, 4),
    )
    dens = make_density(jax.random.key(0), problem, jnp.zeros((30, 4)))
    assert float(dens.logdensity(jnp.array([1e4]))) == -np.inf
    assert np.isfinite(float(dens.logdensity(jnp.array([-5.0]))))


def test_initial_state_and_sampled_noise_are_unknowns(setup):
    sim, net, base, _ = setup
    problem = simulator_problem(
        sim,
        net,
        base,
        {"init": dist.Normal(jnp.array([[0.1] * 4, [-2.0] * 4]), 0.1).to_event(2)},
        _observe,
        noise="sample",
        data_shape=(30, 4),
    )
    assert problem.param_names == ("init", "sim_noise")
    dens = make_density(jax.random.key(0), problem, jnp.full((30, 4), 0.1))
    assert dens.dim == 8 + int(np.prod(sim.noise_shape(4)))


def test_unknown_parameter_names_are_rejected(setup):
    sim, net, base, z = setup
    with pytest.raises(ValueError, match=r"unknown parameter 'model\.etaa'"):
        simulator_problem(sim, net, base, {"model.etaa": dist.Normal(0, 1)}, _observe, noise=z)
    with pytest.raises(ValueError, match="noise must be None"):
        simulator_problem(sim, net, base, {"model.eta": dist.Normal(0, 1)}, _observe, noise="fixed")


def test_prior_shapes_are_checked(setup):
    sim, net, base, z = setup
    with pytest.raises(ValueError, match=r"priors\['model.eta'\] has shape \(3,\)"):
        simulator_problem(
            sim,
            net,
            base,
            {"model.eta": dist.Normal(jnp.zeros(3), 1).to_event(1)},
            _observe,
            noise=z,
        )
    with pytest.raises(ValueError, match=r"priors\['init'\] has shape \(2, 3\)"):
        simulator_problem(
            sim,
            net,
            base,
            {"init": dist.Normal(jnp.zeros((2, 3)), 1).to_event(2)},
            _observe,
            noise=z,
        )
    ok = simulator_problem(
        sim,
        net,
        base,
        {"model.eta": dist.Normal(-5.0, 1.0).expand([4]).to_event(1)},
        _observe,
        noise=z,
    )
    assert ok.param_names == ("model.eta",)


def _hierarchical(n_nodes):
    """Per-node excitability around a population mean ``mu`` with spread ``tau``."""

    def priors():
        mu = numpyro.sample("mu", dist.Normal(-5.0, 1.0))
        tau = numpyro.sample("tau", dist.HalfNormal(0.5))
        eta = numpyro.sample("model.eta", dist.Normal(mu, tau).expand([n_nodes]).to_event(1))
        return {"model.eta": eta}

    return priors


def test_hierarchical_priors(setup):
    sim, net, base, z = setup
    problem = simulator_problem(sim, net, base, _hierarchical(4), _observe, noise=z, noise_sd=0.01)
    assert problem.param_names == ("mu", "tau", "model.eta")
    assert problem.data_shape == (30, 4)
    values = {"mu": -4.8, "tau": 0.3, "model.eta": jnp.array([-4.5, -5.0, -4.9, -4.6])}
    data = simulate_data(jax.random.key(1), problem, values)
    # the log joint: hyperpriors, per-node prior given them, Gaussian around the simulation
    lp, _ = log_density(problem.model, (), {"data": data}, values)
    params = vb.SimParams(MPRParams(eta=values["model.eta"]), base.coupling)
    pred = np.asarray(_observe(sim.run(z, params, net)))
    ref = (
        stats.norm(-5.0, 1.0).logpdf(-4.8)
        + stats.halfnorm(scale=0.5).logpdf(0.3)
        + stats.norm(-4.8, 0.3).logpdf(values["model.eta"]).sum()
        + stats.norm(pred, 0.01).logpdf(data).sum()
    )
    np.testing.assert_allclose(float(lp), ref, rtol=1e-5)


def test_non_centred_prior_function_records_the_derived_value(setup):
    sim, net, base, z = setup

    def priors():
        mu = numpyro.sample("mu", dist.Normal(-5.0, 1.0))
        tau = numpyro.sample("tau", dist.HalfNormal(0.5))
        eta_z = numpyro.sample("eta_z", dist.Normal(0.0, 1.0).expand([4]).to_event(1))
        return {"model.eta": mu + tau * eta_z}

    problem = simulator_problem(sim, net, base, priors, _observe, noise=z)
    assert problem.param_names == ("mu", "tau", "eta_z", "model.eta")
    values = {"mu": -4.8, "tau": 0.3, "eta_z": jnp.array([1.0, -0.5, 0.0, 2.0])}
    _, tr = log_density(problem.model, (), {"data": jnp.zeros((30, 4))}, values)
    assert tr["model.eta"]["type"] == "deterministic"
    np.testing.assert_allclose(tr["model.eta"]["value"], -4.8 + 0.3 * values["eta_z"])
    # a deterministic site cannot be conditioned on, so it cannot be a "truth"
    with pytest.raises(ValueError, match=r"truth has values for \['model.eta'\]"):
        simulator_problem(
            sim, net, base, priors, _observe, noise=z, truth={"model.eta": jnp.zeros(4)}
        )
    with pytest.raises(ValueError, match=r"priors\['model.eta'\] has shape \(3,\)"):
        simulator_problem(sim, net, base, _hierarchical(3), _observe, noise=z)
    with pytest.raises(ValueError, match="must return a non-empty mapping"):
        simulator_problem(sim, net, base, lambda: None, _observe, noise=z)


def test_hand_written_numpyro_model_around_a_simulator():
    # three Ornstein-Uhlenbeck nodes (vbinfer.models.linear), noise pre-drawn and held fixed
    sim = vb.make_simulator(
        vb.models.linear, dt=1.0, num_steps=200, integrator="euler", noise=vb.AdditiveNoise(0.1)
    )
    net = vb.make_network(0.05 * (1.0 - np.eye(3)))
    z = jax.random.normal(jax.random.key(0), sim.noise_shape(3))

    def model(data=None):
        # what make_problem does not offer: a per-node decay rate under a shared log-normal
        # hyperprior, and Student-t errors on the time series
        log_lam = numpyro.sample("log_lam", dist.Normal(np.log(0.1), 0.5))
        lam = numpyro.sample("lam", dist.LogNormal(log_lam, 0.1).expand([3]).to_event(1))
        params = vb.SimParams(vb.models.LinearModelParams(lam=lam), LinearParams(a=1.0))
        x = guard_finite(sim.run(z, params, net).outputs["tavg"][:, 0])
        numpyro.sample("obs", dist.StudentT(4.0, x, 0.01), obs=data)

    truth = {"log_lam": np.log(0.15), "lam": np.array([0.14, 0.15, 0.17])}
    problem = problem_from_model(model, truth=truth)
    assert problem.param_names == ("log_lam", "lam") and problem.data_shape == (200, 3)
    data = simulate_data(jax.random.key(1), problem)
    res = fit(
        problem,
        data,
        method="laplace",
        key=jax.random.key(2),
        optimizer="adam",
        learning_rate=0.05,
        num_steps=400,
        num_restarts=2,
        init="mean",
        init_radius=0.3,
        num_samples=4000,
    )
    zscore = np.abs(res.mean("lam") - truth["lam"]) / res.sd("lam")
    assert np.all(zscore < 3), (res.mean("lam"), res.sd("lam"))
    assert np.all(res.sd("lam") < 0.01)  # the time series pin each node's decay rate down
    with pytest.raises(ValueError, match=r"param_names \['lamm'\] are not latent"):
        problem_from_model(model, ("lamm",))
    with pytest.raises(ValueError, match="obs_name 'y' is not a site of the model"):
        problem_from_model(model, obs_name="y")
