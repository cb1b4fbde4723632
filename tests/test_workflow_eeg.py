"""Workflow 2 (EEG spectra): the pieces against references, a quick run, and recovery (slow)."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vbinfer.workflows import eeg
from vbinfer.workflows.eeg import (
    PARAMS,
    EEGConfig,
    cross_entropy_search,
    forward_mode_vjp,
    make_eeg_model,
    prior_sd,
    to_physical,
    to_standard,
)


def test_parameter_transforms_round_trip_and_prior_moments():
    u = np.random.default_rng(0).standard_normal((5000, len(PARAMS)))
    theta = np.asarray(to_physical(jnp.asarray(u)))
    np.testing.assert_allclose(to_standard(theta), u, atol=1e-5)
    for k, p in enumerate(PARAMS):
        # the analytic prior sd against draws (lognormal: m e^(s^2/2) sqrt(e^(s^2) - 1))
        np.testing.assert_allclose(theta[:, k].std(), prior_sd(p), rtol=0.05)
    assert to_standard([p.truth for p in PARAMS]).shape == (len(PARAMS),)


def test_forward_mode_vjp_matches_reverse_mode():
    a = jnp.array([[1.0, 2.0, 0.5], [0.3, -1.0, 2.0]])

    def fn(x):
        return jnp.tanh(a @ x) * x[0] ** 2

    x = jnp.array([0.4, -0.2, 1.3])
    wrapped = forward_mode_vjp(fn)
    np.testing.assert_allclose(wrapped(x), fn(x))
    ct = jnp.array([1.5, -0.7])
    g_ref = jax.grad(lambda v: ct @ fn(v))(x)
    g = jax.grad(lambda v: ct @ wrapped(v))(x)
    np.testing.assert_allclose(g, g_ref, rtol=1e-6)
    # and under jit and vmap (vectorised chains)
    xs = jnp.stack([x, 2 * x])
    gv = jax.jit(jax.vmap(jax.grad(lambda v: ct @ wrapped(v))))(xs)
    np.testing.assert_allclose(gv[1], jax.grad(lambda v: ct @ fn(v))(2 * x), rtol=1e-6)


def test_cross_entropy_search_finds_the_global_mode_past_local_ones():
    # a smooth trend towards 1.5 with ripples that make local maxima every ~0.6 (the EEG
    # likelihood with fixed noise looks like this: a global trend and chaotic roughness)
    def logdensity(u):
        return jnp.sum(-0.5 * (u - 1.5) ** 2 + 0.4 * jnp.cos(10.0 * (u - 1.5)), axis=-1)

    # gradient ascent from the prior mean stops at the first ripple ...
    grad = jax.grad(lambda v: logdensity(v[None])[0])
    u = jax.lax.fori_loop(0, 500, lambda _, v: v + 0.01 * grad(v), jnp.zeros(3))
    assert np.all(np.abs(np.asarray(u) - 1.5) > 0.5)
    # ... the population search, started from N(0, 1), ends at the global maximum
    res = cross_entropy_search(
        jax.random.key(0), jax.jit(logdensity), 3, num_iters=10, population=48
    )
    np.testing.assert_allclose(res.best, 1.5, atol=0.1)
    np.testing.assert_allclose(res.mean, 1.5, atol=0.1)
    assert np.all(np.diff(res.history) >= 0) and res.best_logdensity == res.history[-1]
    with pytest.raises(ValueError, match="num_elite"):
        cross_entropy_search(jax.random.key(0), logdensity, 3, population=8, num_elite=9)


@pytest.fixture(scope="module")
def small_model():
    cfg = EEGConfig(analysis_ms=256.0, skip_ms=64.0, nperseg=32, burn_in_ms=100.0)
    return make_eeg_model(jax.random.key(0), cfg)


def test_forward_model_spectra_and_alpha_peak(small_model):
    m = small_model
    theta = jnp.asarray([p.truth for p in PARAMS], jnp.float32)
    eeg_uv = np.asarray(jax.jit(m.simulate_eeg)(theta))
    assert eeg_uv.shape == (64, 21) and np.all(np.isfinite(eeg_uv))
    np.testing.assert_allclose(eeg_uv.sum(axis=1), 0.0, atol=1e-3 * np.abs(eeg_uv).max())
    # tens of uV: a realistic EEG amplitude for 10 nAm/mV and a 0.1-0.4 uV/nAm lead field
    assert 1.0 < eeg_uv.std() < 200.0
    lp = np.asarray(jax.jit(m.predict)(theta))
    assert lp.shape == (len(m.freqs), 21) and np.all(np.isfinite(lp))
    # Jansen-Rit (v0 = 6 mV) near p = 220 /s oscillates in the alpha band (7.8-11.7 Hz bins)
    peak = m.freqs[np.argmax(lp.mean(axis=1))]
    assert 7.0 < peak < 12.5


def test_forward_mode_gradient_of_the_simulation_matches_finite_differences(small_model):
    m = small_model
    u0 = jnp.asarray(to_standard([p.truth for p in PARAMS]), jnp.float32)
    direction = jnp.array([0.6, -0.5, 0.4, 0.5], jnp.float32)

    def loss(u):
        return jnp.mean(forward_mode_vjp(lambda v: m.predict(to_physical(v)))(u))

    g = jax.jit(jax.grad(loss))(u0)
    f = jax.jit(lambda u: jnp.mean(m.predict(to_physical(u))))
    h = 1e-2  # central difference in float32, O(h^2) error
    fd = (f(u0 + h * direction) - f(u0 - h * direction)) / (2 * h)
    assert float(g @ direction) == pytest.approx(float(fd), rel=0.05, abs=1e-3)


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="backend must be one of"):
        eeg.run(None, backend="mcmc")
    with pytest.raises(ValueError, match="num_samples must be a positive integer"):
        eeg.run(None, num_samples=0)
    with pytest.raises(ValueError, match="nperseg"):
        make_eeg_model(jax.random.key(0), EEGConfig(analysis_ms=64.0, nperseg=128))
    bad = (PARAMS[0]._replace(name="model.nope"),)
    with pytest.raises(ValueError, match=r"unknown parameter 'model\.nope'"):
        make_eeg_model(jax.random.key(0), EEGConfig(), bad)


@pytest.mark.slow  # about 70 s of CPU (seven compilations of a delayed network and its tangents)
def test_quick_run_writes_its_files(tmp_path):
    report = eeg.run(tmp_path, quick=True, progress=False)
    names = {p.name for p in report.files}
    assert names == {
        "spectra.png",
        "posteriors.png",
        "shrinkage_z.png",
        "results.npz",
        "report.json",
    }
    assert all(p.stat().st_size > 0 for p in report.files)
    assert [(r["backend"], r["parameter"]) for r in report.rows] == [
        (b, p.name) for b in ("svi", "nuts") for p in PARAMS
    ]
    with np.load(tmp_path / "results.npz") as f:
        assert f["observed"].shape == f["truth_spectrum"].shape == (10, 21)
        assert f["nuts/samples"].shape == (2, 40, len(PARAMS))
        assert f["svi/predicted_mean"].shape[1:] == (10, 21)
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["name"] == "eeg" and len(saved["rows"]) == 2 * len(PARAMS)
    for r in report.rows:
        assert np.isfinite(r["mean"]) and r["sd"] > 0
    assert report.metrics["nuts_divergences"] >= 0


@pytest.mark.slow
def test_recovery_from_spectra_with_nuts_and_svi():
    report = eeg.run(None, seed=0, progress=False)
    rows = {(r["backend"], r["parameter"]): r for r in report.rows}
    for p in PARAMS:
        for backend in ("nuts", "svi"):
            r = rows[(backend, p.name)]
            assert r["z"] < 3.0, (backend, p.name, r)
            assert r["shrinkage"] > 0.9, (backend, p.name, r)
        r = rows[("nuts", p.name)]
        assert r["r_hat"] < 1.05 and r["ess_bulk"] > 50, (p.name, r)
        # NUTS and SVI agree to within a posterior sd
        assert (
            abs(r["mean"] - rows[("svi", p.name)]["mean"]) < r["sd"] + rows[("svi", p.name)]["sd"]
        )
    assert report.metrics["nuts_divergences"] == 0
    assert report.passed
