"""Problems around a network simulator: recovery by MAP, -inf for blow-ups, name checks."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest

import vbinfer as vb
from vbinfer.coupling import LinearParams
from vbinfer.inference import fit, simulate_data, simulator_problem
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
