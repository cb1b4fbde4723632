"""Every backend against a linear-Gaussian problem whose posterior is known in closed form."""

from __future__ import annotations

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest

from vbinfer.inference import (
    fit,
    load_result,
    make_problem,
    posterior_shrinkage,
    posterior_zscore,
    simulate_data,
)
from vbinfer.inference._common import make_density

D, N_OBS, NOISE = 3, 20, 0.5
M0 = np.array([0.0, 1.0, -1.0])
S0 = np.array([1.0, 2.0, 0.5])


@pytest.fixture(scope="module")
def linear_gaussian():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(N_OBS, D))
    truth = np.array([0.7, -0.4, -1.2])
    problem = make_problem(
        {"theta": dist.Normal(jnp.asarray(M0), jnp.asarray(S0)).to_event(1)},
        lambda th: jnp.asarray(a) @ th["theta"],
        noise_sd=NOISE,
        data_shape=(N_OBS,),
        truth={"theta": truth},
    )
    data = simulate_data(jax.random.key(1), problem)
    prec = np.diag(1 / S0**2) + a.T @ a / NOISE**2
    cov = np.linalg.inv(prec)
    mean = cov @ (M0 / S0**2 + a.T @ np.asarray(data) / NOISE**2)
    return problem, data, mean, cov


def _ess(result):
    return az.ess(result.to_arviz(), var_names=["theta"])["theta"].values


@pytest.mark.parametrize("method", ["nuts", "blackjax_nuts"])
def test_nuts_recovers_the_exact_posterior(linear_gaussian, method):
    problem, data, mean, cov = linear_gaussian
    res = fit(
        problem,
        data,
        method=method,
        key=jax.random.key(2),
        num_warmup=400,
        num_samples=1000,
        num_chains=2,
    )
    assert res.samples["theta"].shape == (2, 1000, D)
    sd = np.sqrt(np.diag(cov))
    ess = _ess(res)
    assert np.all(ess > 300), ess
    post = res.flat("theta")
    # means within 4 Monte Carlo standard errors, variances within 4 standard errors of a variance
    np.testing.assert_array_less(np.abs(post.mean(0) - mean), 4 * sd / np.sqrt(ess))
    np.testing.assert_array_less(np.abs(post.var(0, ddof=1) / sd**2 - 1), 4 * np.sqrt(2 / ess))
    assert int(res.divergences.sum()) == 0
    rhat = az.rhat(res.to_arviz(), var_names=["theta"])["theta"].values
    assert np.all(rhat < 1.02)
    assert res.compile_time_s > 0 and res.wall_time_s > res.compile_time_s


def test_numpyro_and_blackjax_agree(linear_gaussian):
    problem, data, _, cov = linear_gaussian
    kw = dict(num_warmup=400, num_samples=1000, num_chains=2)
    a = fit(problem, data, method="nuts", key=jax.random.key(3), **kw)
    b = fit(problem, data, method="blackjax_nuts", key=jax.random.key(4), **kw)
    se = np.sqrt(np.diag(cov)) * np.sqrt(1 / _ess(a) + 1 / _ess(b))
    np.testing.assert_array_less(np.abs(a.mean("theta") - b.mean("theta")), 4 * se)


def test_full_rank_svi_is_essentially_exact(linear_gaussian):
    problem, data, mean, cov = linear_gaussian
    res = fit(
        problem,
        data,
        method="svi",
        key=jax.random.key(5),
        guide="full_rank",
        num_steps=4000,
        learning_rate=2e-2,
        num_particles=4,
        num_samples=20000,
    )
    sd = np.sqrt(np.diag(cov))
    post = res.flat("theta")
    np.testing.assert_array_less(np.abs(post.mean(0) - mean) / sd, 0.05)
    np.testing.assert_allclose(np.cov(post.T), cov, atol=0.05 * sd.max() ** 2)
    assert res.loss.shape == (4000,) and res.loss[-1] < res.loss[0]


def test_map_and_laplace_are_exact(linear_gaussian):
    problem, data, mean, cov = linear_gaussian
    m = fit(problem, data, method="map", key=jax.random.key(6), optimizer="lbfgs", num_steps=100)
    np.testing.assert_allclose(m.mean("theta"), mean, rtol=1e-4, atol=1e-5)
    lap = fit(
        problem,
        data,
        method="laplace",
        key=jax.random.key(7),
        optimizer="lbfgs",
        num_steps=100,
        num_samples=40000,
    )
    # the Hessian of the negative log density is the exact posterior precision
    eig = np.sort(np.linalg.eigvalsh(np.linalg.inv(cov)))
    np.testing.assert_allclose(np.sort(lap.info["hessian_eigenvalues"]), eig, rtol=1e-4)
    sd = np.sqrt(np.diag(cov))
    post = lap.flat("theta")
    np.testing.assert_array_less(np.abs(post.mean(0) - mean) / sd, 4 / np.sqrt(40000))
    np.testing.assert_allclose(post.std(0), sd, rtol=0.02)


def test_adam_map_with_restarts(linear_gaussian):
    problem, data, mean, _ = linear_gaussian
    m = fit(
        problem,
        data,
        method="map",
        key=jax.random.key(8),
        optimizer="adam",
        num_steps=3000,
        learning_rate=0.02,
        num_restarts=3,
    )
    assert len(m.info["restart_losses"]) == 3
    np.testing.assert_allclose(m.mean("theta"), mean, atol=2e-3)


def test_result_round_trip(tmp_path, linear_gaussian):
    problem, data, _, _ = linear_gaussian
    res = fit(
        problem,
        data,
        method="blackjax_nuts",
        key=jax.random.key(9),
        num_warmup=100,
        num_samples=100,
    )
    back = load_result(res.save(tmp_path / "fit.npz"))
    assert back.method == res.method and back.info["num_chains"] == 2
    np.testing.assert_array_equal(back.samples["theta"], res.samples["theta"])
    np.testing.assert_array_equal(back.divergences, res.divergences)
    idata = back.to_arviz(observed=data)
    assert "posterior" in idata.groups() and "observed_data" in idata.groups()


def test_shrinkage_and_zscore_conventions():
    post = np.random.default_rng(0).normal(1.0, 0.5, size=(100_000, 2))
    s = posterior_shrinkage(post, prior_sd=1.0)
    np.testing.assert_allclose(s, 1 - 0.25, atol=0.01)
    np.testing.assert_allclose(posterior_shrinkage(post, 1.0, convention="vbjax"), 0.5, atol=0.01)
    z = posterior_zscore(post, truth=np.array([2.0, 0.0]))
    np.testing.assert_allclose(z, [2.0, 2.0], atol=0.02)
    zs = posterior_zscore(post, truth=np.array([2.0, 0.0]), convention="vbjax")
    np.testing.assert_allclose(zs, [-2.0, 2.0], atol=0.02)
    with pytest.raises(ValueError, match="convention must be one of"):
        posterior_shrinkage(post, 1.0, convention="other")


def test_bad_data_is_rejected_before_compilation(linear_gaussian):
    problem, data, _, _ = linear_gaussian
    with pytest.raises(ValueError, match=r"data must have shape \(20,\)"):
        fit(problem, data[:5], method="nuts", key=jax.random.key(0))
    with pytest.raises(ValueError, match="method must be one of"):
        fit(problem, data, method="hmc", key=jax.random.key(0))
    with pytest.raises(ValueError, match="data must be finite"):
        fit(problem, data.at[0].set(jnp.nan), method="map", key=jax.random.key(0))


def test_diverging_simulation_gives_minus_inf_not_nan():
    # the "simulator" blows up (NaN) for theta > 1: the log density is -inf there
    problem = make_problem(
        {"theta": dist.Normal(0.0, 1.0)},
        lambda th: jnp.where(th["theta"] > 1.0, jnp.nan, th["theta"]) * jnp.ones(5),
        noise_sd=1.0,
        data_shape=(5,),
    )
    data = jnp.full(5, 0.9)
    dens = make_density(jax.random.key(0), problem, data)
    assert float(dens.logdensity(jnp.array([2.0]))) == -np.inf
    assert np.isfinite(float(dens.logdensity(jnp.array([0.5]))))
    res = fit(
        problem,
        data,
        method="nuts",
        key=jax.random.key(1),
        num_warmup=200,
        num_samples=300,
        num_chains=1,
    )
    post = res.flat("theta")
    assert np.all(np.isfinite(post)) and post.max() <= 1.0


def _lg_problem(noise_sd):
    a = np.random.default_rng(0).normal(size=(N_OBS, D))
    return make_problem(
        {"theta": dist.Normal(jnp.asarray(M0), jnp.asarray(S0)).to_event(1)},
        lambda th: jnp.asarray(a) @ th["theta"],
        noise_sd=noise_sd,
        data_shape=(N_OBS,),
    )


def test_sbc_ranks_are_uniform_and_the_test_can_fail():
    from vbinfer.inference import sbc

    good = sbc(
        jax.random.key(0),
        _lg_problem(NOISE),
        num_replicates=400,
        method="laplace",
        num_samples=400,
        thin=4,
        chunk_size=200,
    )
    assert good.ranks["theta"].shape == (400, D)
    assert good.num_draws == 100
    assert np.all(good.p_values["theta"] > 1e-3), good.p_values
    # data generated with twice the noise the inference assumes: overconfident posteriors
    bad = sbc(
        jax.random.key(0),
        _lg_problem(NOISE),
        generator=_lg_problem(2 * NOISE),
        num_replicates=400,
        method="laplace",
        num_samples=400,
        thin=4,
        chunk_size=200,
    )
    assert np.all(bad.p_values["theta"] < 1e-6), bad.p_values
    # the misfit shows as ranks piling up at both ends
    r = bad.ranks["theta"]
    assert np.mean((r < 10) | (r > 90)) > 0.4


@pytest.mark.slow
def test_sbc_with_nuts_is_uniform():
    from vbinfer.inference import sbc

    res = sbc(
        jax.random.key(1),
        _lg_problem(NOISE),
        num_replicates=200,
        method="blackjax_nuts",
        num_warmup=300,
        num_samples=400,
        thin=4,
        chunk_size=100,
    )
    assert np.all(res.p_values["theta"] > 1e-3), res.p_values


def test_blackjax_chunks_resume_after_interruption(tmp_path, linear_gaussian, monkeypatch, capsys):
    from vbinfer.inference import _chunks

    problem, data, _, _ = linear_gaussian
    kw = dict(num_warmup=100, num_samples=120, num_chains=2, chunk_size=30)
    ref = fit(problem, data, method="blackjax_nuts", key=jax.random.key(11), **kw)
    folder = tmp_path / "run"
    real_save = _chunks.ChunkStore.save
    calls = {"n": 0}

    def flaky_save(self, name, tree):
        if name == "chunk_00002":
            raise KeyboardInterrupt("simulated interruption")
        calls["n"] += 1
        real_save(self, name, tree)

    monkeypatch.setattr(_chunks.ChunkStore, "save", flaky_save)
    with pytest.raises(KeyboardInterrupt):
        fit(
            problem,
            data,
            method="blackjax_nuts",
            key=jax.random.key(11),
            checkpoint_dir=folder,
            **kw,
        )
    assert sorted(p.name for p in folder.glob("*.npz")) == [
        "adapted.npz",
        "chunk_00000.npz",
        "chunk_00001.npz",
    ]
    monkeypatch.setattr(_chunks.ChunkStore, "save", real_save)
    res = fit(
        problem,
        data,
        method="blackjax_nuts",
        key=jax.random.key(11),
        checkpoint_dir=folder,
        progress_bar=True,
        **kw,
    )
    assert "blackjax NUTS" in capsys.readouterr().err
    np.testing.assert_array_equal(res.samples["theta"], ref.samples["theta"])
    np.testing.assert_array_equal(res.divergences, ref.divergences)
    assert len(list(folder.glob("chunk_*.npz"))) == 4
    with pytest.raises(ValueError, match="holds a run with other settings"):
        fit(
            problem,
            data,
            method="blackjax_nuts",
            key=jax.random.key(12),
            checkpoint_dir=folder,
            **kw,
        )
    with pytest.raises(ValueError, match="chunk_size must be a positive divisor"):
        fit(
            problem,
            data,
            method="blackjax_nuts",
            key=jax.random.key(12),
            num_samples=100,
            chunk_size=30,
        )


@pytest.mark.parametrize("method", ["svi", "map"])
def test_optimisers_run_in_chunks_and_resume(tmp_path, linear_gaussian, monkeypatch, method):
    from vbinfer.inference import _chunks

    problem, data, _, _ = linear_gaussian
    kw = dict(num_steps=400, chunk_size=100)
    ref = fit(problem, data, method=method, key=jax.random.key(13), **kw)
    real_save = _chunks.ChunkStore.save

    def flaky_save(self, name, tree):
        if name == "chunk_00002":
            raise KeyboardInterrupt("simulated interruption")
        real_save(self, name, tree)

    monkeypatch.setattr(_chunks.ChunkStore, "save", flaky_save)
    with pytest.raises(KeyboardInterrupt):
        fit(problem, data, method=method, key=jax.random.key(13), checkpoint_dir=tmp_path, **kw)
    monkeypatch.setattr(_chunks.ChunkStore, "save", real_save)
    res = fit(problem, data, method=method, key=jax.random.key(13), checkpoint_dir=tmp_path, **kw)
    np.testing.assert_array_equal(res.loss, ref.loss)
    np.testing.assert_array_equal(res.samples["theta"], ref.samples["theta"])
    assert res.loss.shape == (400,)


def test_plots_and_posterior_predictive(tmp_path, linear_gaussian):
    from vbinfer.inference import plots, posterior_predictive, sbc

    problem, data, _, _ = linear_gaussian
    res = fit(
        problem,
        data,
        method="laplace",
        key=jax.random.key(20),
        optimizer="lbfgs",
        num_steps=50,
        num_samples=2000,
    )
    pred = posterior_predictive(jax.random.key(21), problem, res, num_draws=300)
    assert pred.shape == (300, N_OBS)
    # predictive sd = sqrt(a cov a^T + noise^2) pointwise: check the band is of that size
    a_mean = pred.mean(0)
    assert np.all(np.abs(a_mean - np.asarray(pred).mean(0)) < 1e-9)
    assert 0.8 * NOISE < pred.std(0).mean() < 1.5 * NOISE
    prior = {"theta": np.random.default_rng(0).normal(M0, S0, size=(2000, D))}
    figs = {
        "shrinkage": plots.plot_shrinkage_zscore(
            res, {"theta": problem.truth["theta"]}, {"theta": S0}
        ),
        "posteriors": plots.plot_posteriors(res, prior, problem.truth),
        "sbc": plots.plot_sbc_ranks(
            sbc(
                jax.random.key(0),
                problem,
                num_replicates=60,
                method="laplace",
                num_samples=80,
                thin=4,
                chunk_size=60,
            )
        ),
        "ppc": plots.plot_predictive(data, pred),
    }
    for name, fig in figs.items():
        path = tmp_path / f"{name}.png"
        fig.savefig(path)
        assert path.stat().st_size > 5000
    assert len([ax for ax in figs["posteriors"].axes if ax.get_visible()]) == D
