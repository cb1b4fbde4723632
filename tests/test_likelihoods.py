"""Gaussian likelihoods on time series, log power spectra and FC: each observation model against
an independent reference (scipy / numpy), and each in a small end-to-end fit."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest
from numpyro.infer.util import log_density
from scipy import signal, stats

import vbinfer as vb
from vbinfer.inference import fit, likelihoods, simulate_data, simulator_problem

DT = 1.0  # ms: fs = 1000 Hz
LAM = 0.15  # true decay rate, ms^-1
PRIOR_LAM = dist.LogNormal(np.log(0.1), 0.5)


def _ou_network(n_nodes: int, num_steps: int, weight: float = 0.05):
    """A network of linear (Ornstein-Uhlenbeck) nodes, with pre-drawn noise held fixed."""
    sim = vb.make_simulator(
        vb.models.linear,
        dt=DT,
        num_steps=num_steps,
        integrator="euler",
        noise=vb.AdditiveNoise(0.1),
    )
    net = vb.make_network(weight * (1.0 - np.eye(n_nodes)))
    z = jax.random.normal(jax.random.key(0), sim.noise_shape(n_nodes))
    base = vb.SimParams(vb.models.LinearModelParams(lam=LAM), vb.coupling.LinearParams(a=1.0))
    return sim, net, base, z


def _signal(sim, net, base, z):
    return np.asarray(sim.run(z, base, net).outputs["tavg"][:, 0])


def _laplace(problem, data, key):
    return fit(
        problem,
        data,
        method="laplace",
        key=key,
        optimizer="adam",
        learning_rate=0.05,
        num_steps=400,
        num_restarts=4,
        init="mean",
        init_radius=0.3,
        num_samples=4000,
    )


def _assert_recovered(res, truth):
    for name, value in truth.items():
        z = abs(float(res.mean(name)) - value) / float(res.sd(name))
        assert z < 3.0, (name, float(res.mean(name)), float(res.sd(name)), value)


def test_summaries_and_log_density_match_references():
    """The fast half of the three tests below (no fit): summaries against scipy and numpy, the
    time-series log joint against scipy's densities."""
    sim, net, base, z = _ou_network(3, 512)
    x = _signal(sim, net, base, z)
    obs = likelihoods.log_spectrum(fs=1000.0 / DT, nperseg=64, fmin=10.0, fmax=200.0)
    freqs, psd = signal.welch(x, fs=1000.0 / DT, nperseg=64, axis=0)
    band = (freqs >= 10.0) & (freqs <= 200.0)
    np.testing.assert_allclose(obs.freqs, freqs[band])
    np.testing.assert_allclose(obs.summarize(x), np.log10(psd[band]), atol=1e-4)
    iu = np.triu_indices(3, k=1)
    np.testing.assert_allclose(
        likelihoods.fc(skip=20).summarize(x[20:]), np.corrcoef(x[20:].T)[iu], atol=1e-5
    )
    problem = simulator_problem(
        sim,
        net,
        base,
        {"model.lam": PRIOR_LAM},
        likelihoods.timeseries(skip=10),
        noise=z,
        noise_sd=0.01,
        truth={"model.lam": LAM},
    )
    data = simulate_data(jax.random.key(1), problem)
    lp, _ = log_density(problem.model, (), {"data": data}, {"model.lam": LAM})
    ref = stats.lognorm(0.5, scale=0.1).logpdf(LAM) + stats.norm(x[10:], 0.01).logpdf(data).sum()
    np.testing.assert_allclose(float(lp), ref, rtol=1e-5)


@pytest.mark.slow
def test_timeseries_likelihood_is_gaussian_and_recovers_the_decay_rate():
    sim, net, base, z = _ou_network(3, 200)
    obs = likelihoods.timeseries(skip=10)
    problem = simulator_problem(
        sim,
        net,
        base,
        {"model.lam": PRIOR_LAM},
        obs,
        noise=z,
        noise_sd=0.01,
        truth={"model.lam": LAM},
    )
    assert problem.data_shape == (190, 3)
    data = simulate_data(jax.random.key(1), problem)
    # the log joint is the prior plus independent Gaussians around the simulated series
    x = _signal(sim, net, base, z)[10:]
    lp, _ = log_density(problem.model, (), {"data": data}, {"model.lam": LAM})
    ref = stats.lognorm(0.5, scale=0.1).logpdf(LAM) + stats.norm(x, 0.01).logpdf(data).sum()
    np.testing.assert_allclose(float(lp), ref, rtol=1e-5)
    res = _laplace(problem, data, jax.random.key(2))
    _assert_recovered(res, {"model.lam": LAM})
    assert float(res.sd("model.lam")) < 0.1 * float(PRIOR_LAM.variance**0.5)


@pytest.mark.slow
def test_log_spectrum_likelihood_matches_scipy_and_infers_the_noise_scale():
    sim, net, base, z = _ou_network(3, 512)
    obs = likelihoods.log_spectrum(fs=1000.0 / DT, nperseg=64, fmin=10.0, fmax=200.0)
    x = _signal(sim, net, base, z)
    freqs, psd = signal.welch(x, fs=1000.0 / DT, nperseg=64, axis=0)
    band = (freqs >= 10.0) & (freqs <= 200.0)
    np.testing.assert_allclose(obs.freqs, freqs[band])
    np.testing.assert_allclose(obs.summarize(x), np.log10(psd[band]), atol=1e-4)
    truth = {"model.lam": LAM, "noise_sd": 0.05}
    problem = simulator_problem(
        sim,
        net,
        base,
        {"model.lam": PRIOR_LAM},
        obs,
        noise=z,
        noise_sd=dist.HalfNormal(0.5),
        truth=truth,
    )
    assert problem.param_names == ("model.lam", "noise_sd")
    assert problem.data_shape == (int(band.sum()), 3)
    data = simulate_data(jax.random.key(3), problem)
    res = _laplace(problem, data, jax.random.key(4))
    _assert_recovered(res, truth)


@pytest.mark.slow
def test_fc_likelihood_matches_numpy_and_recovers_the_coupling():
    sim, net, base, z = _ou_network(4, 400, weight=0.03)
    obs = likelihoods.fc(skip=20)
    x = _signal(sim, net, base, z)[20:]
    iu = np.triu_indices(4, k=1)
    np.testing.assert_allclose(obs.summarize(x), np.corrcoef(x.T)[iu], atol=1e-5)
    truth = {"coupling.a": 0.6}
    problem = simulator_problem(
        sim,
        net,
        base,
        {"coupling.a": dist.HalfNormal(1.0)},
        obs,
        noise=z,
        noise_sd=0.02,
        truth=truth,
    )
    assert problem.data_shape == (6,)
    data = simulate_data(jax.random.key(5), problem)
    res = _laplace(problem, data, jax.random.key(6))
    _assert_recovered(res, truth)


def test_observations_reject_bad_settings_before_compilation():
    with pytest.raises(ValueError, match="no frequency bin"):
        likelihoods.log_spectrum(fs=1000.0, nperseg=16, fmin=10.0, fmax=20.0)
    with pytest.raises(ValueError, match="fmin, fmax must satisfy"):
        likelihoods.log_spectrum(fs=1000.0, nperseg=64, fmin=10.0, fmax=600.0)
    with pytest.raises(ValueError, match="skip must be an int"):
        likelihoods.fc(skip=-1)
    sim, net, base, z = _ou_network(3, 64)
    with pytest.raises(ValueError, match="nperseg must be <= the number of samples"):
        simulator_problem(
            sim,
            net,
            base,
            {"model.lam": PRIOR_LAM},
            likelihoods.log_spectrum(fs=1000.0, nperseg=128, fmin=10.0, fmax=100.0),
            noise=z,
        )
    with pytest.raises(ValueError, match="monitor 'eeg' is not an output"):
        simulator_problem(
            sim, net, base, {"model.lam": PRIOR_LAM}, likelihoods.timeseries("eeg"), noise=z
        )
    with pytest.raises(ValueError, match=r"x must be a signal of shape \(n_time, n_nodes\)"):
        likelihoods.timeseries().summarize(jnp.ones(5))
