"""Every backend against a linear-Gaussian problem whose posterior is known in closed form."""

from __future__ import annotations

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest

from tests._linear_gaussian import (
    M0,
    N_OBS,
    NOISE,
    S0,
    D,
    linear_gaussian_problem,
    make_linear_gaussian,
)
from vbinfer.inference import (
    fit,
    load_result,
    make_problem,
    posterior_shrinkage,
    posterior_zscore,
    sample_prior,
    simulate_data,
)
from vbinfer.inference._common import make_density


@pytest.fixture(scope="module")
def linear_gaussian():
    return linear_gaussian_problem()


def _ess(result):
    return az.ess(result.to_arviz(), var_names=["theta"])["theta"].values


NUTS_KW = dict(num_warmup=400, num_samples=1000, num_chains=2, chunk_size=250)


@pytest.fixture(scope="module")
def nuts_fits(linear_gaussian):
    """Both NUTS backends on the linear-Gaussian problem, sampled in 4 chunks of 250 draws."""
    problem, data, _, _, _, _ = linear_gaussian
    return {
        m: fit(problem, data, method=m, key=jax.random.key(2), **NUTS_KW)
        for m in ("nuts", "blackjax_nuts")
    }


@pytest.mark.parametrize("method", ["nuts", "blackjax_nuts"])
def test_nuts_recovers_the_exact_posterior(linear_gaussian, nuts_fits, method):
    _, _, mean, cov, _, _ = linear_gaussian
    res = nuts_fits[method]
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


def test_numpyro_and_blackjax_agree(linear_gaussian, nuts_fits):
    _, _, _, cov, _, _ = linear_gaussian
    a, b = nuts_fits["nuts"], nuts_fits["blackjax_nuts"]
    se = np.sqrt(np.diag(cov)) * np.sqrt(1 / _ess(a) + 1 / _ess(b))
    np.testing.assert_array_less(np.abs(a.mean("theta") - b.mean("theta")), 4 * se)


def _svi_fit(problem, data, guide, num_particles):
    """4000 Adam steps of SVI on the linear-Gaussian problem, 20000 posterior draws."""
    return fit(
        problem,
        data,
        method="svi",
        key=jax.random.key(5),
        guide=guide,
        num_steps=4000,
        learning_rate=2e-2,
        num_particles=num_particles,
        num_samples=20000,
    )


def test_full_rank_svi_is_essentially_exact(linear_gaussian):
    problem, data, mean, cov, _, _ = linear_gaussian
    res = _svi_fit(problem, data, "full_rank", num_particles=4)
    sd = np.sqrt(np.diag(cov))
    post = res.flat("theta")
    np.testing.assert_array_less(np.abs(post.mean(0) - mean) / sd, 0.05)
    np.testing.assert_allclose(np.cov(post.T), cov, atol=0.05 * sd.max() ** 2)
    assert res.loss.shape == (4000,) and res.loss[-1] < res.loss[0]


@pytest.mark.parametrize("guide", ["mean_field", "low_rank"])
def test_mean_field_and_low_rank_svi_match_their_exact_optima(linear_gaussian, guide):
    """On a Gaussian posterior the optimal mean-field Gaussian has the exact mean, variances
    1 / diag(precision) and no correlations (this posterior's are weak, so those variances are
    within 3 % of the marginal ones); the low-rank guide (rank 2 plus a diagonal in 3
    dimensions) can hold the exact covariance."""
    problem, data, mean, cov, _, _ = linear_gaussian
    res = _svi_fit(problem, data, guide, num_particles=16)
    sd = np.sqrt(np.diag(cov))
    post = res.flat("theta")
    np.testing.assert_array_less(np.abs(post.mean(0) - mean) / sd, 0.05)
    if guide == "mean_field":
        exact = 1.0 / np.sqrt(np.diag(np.linalg.inv(cov)))
        np.testing.assert_allclose(post.std(0), exact, rtol=0.05)
        np.testing.assert_allclose(np.corrcoef(post.T)[np.triu_indices(3, 1)], 0.0, atol=0.03)
    else:
        np.testing.assert_allclose(np.cov(post.T), cov, atol=0.05 * sd.max() ** 2)


def test_map_and_laplace_are_exact(linear_gaussian):
    problem, data, mean, cov, _, _ = linear_gaussian
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


def test_hierarchical_prior_function_gives_the_exact_posterior():
    import numpyro

    # theta_i ~ N(mu, 1), mu ~ N(0, 1): jointly Gaussian, so the posterior of (mu, theta) is
    # known in closed form and the Laplace approximation at the MAP is exact
    a = np.random.default_rng(1).normal(size=(N_OBS, D))

    def priors():
        mu = numpyro.sample("mu", dist.Normal(0.0, 1.0))
        theta = numpyro.sample("theta", dist.Normal(mu, 1.0).expand([D]).to_event(1))
        return {"theta": theta}

    problem = make_problem(
        priors,
        lambda th: jnp.matmul(jnp.asarray(a), th["theta"], precision="highest"),
        noise_sd=NOISE,
        truth={"mu": 0.5, "theta": np.array([0.2, 1.0, 0.4])},
    )
    assert problem.param_names == ("mu", "theta") and problem.data_shape == (N_OBS,)
    data = simulate_data(jax.random.key(1), problem)
    prior_cov = np.ones((D + 1, D + 1)) + np.diag([0.0] + [1.0] * D)
    b = np.hstack([np.zeros((N_OBS, 1)), a])
    prec = np.linalg.inv(prior_cov) + b.T @ b / NOISE**2
    cov = np.linalg.inv(prec)
    mean = cov @ b.T @ np.asarray(data) / NOISE**2
    lap = fit(
        problem,
        data,
        method="laplace",
        key=jax.random.key(7),
        optimizer="lbfgs",
        num_steps=100,
        num_samples=20000,
    )
    np.testing.assert_allclose(lap.info["unconstrained_map"], mean, rtol=1e-4, atol=1e-5)
    eig = np.sort(np.linalg.eigvalsh(prec))
    np.testing.assert_allclose(np.sort(lap.info["hessian_eigenvalues"]), eig, rtol=1e-4)
    post = np.hstack([lap.flat("mu")[:, None], lap.flat("theta")])
    np.testing.assert_allclose(np.cov(post.T), cov, atol=0.05 * cov.diagonal().max())


def test_adam_map_with_restarts(linear_gaussian):
    problem, data, mean, _, _, _ = linear_gaussian
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


def test_map_takes_any_optax_transformation(linear_gaussian):
    import optax

    problem, data, mean, _, _, _ = linear_gaussian
    # a plain transformation (gradient only) and a chained one with a line search, whose
    # state caches the value and gradient
    for opt, steps in ((optax.sgd(0.01, momentum=0.9), 2000), (optax.lbfgs(memory_size=5), 100)):
        m = fit(problem, data, method="map", key=jax.random.key(8), optimizer=opt, num_steps=steps)
        np.testing.assert_allclose(m.mean("theta"), mean, atol=1e-3)
        assert m.info["optimizer"] == type(opt).__name__
    with pytest.raises(ValueError, match="optimizer must be 'adam', 'lbfgs' or an optax"):
        fit(problem, data, method="map", key=jax.random.key(8), optimizer="sgd")


def test_result_round_trip(tmp_path, linear_gaussian, nuts_fits):
    problem, data, _, _, _, _ = linear_gaussian
    res = nuts_fits["blackjax_nuts"]
    back = load_result(res.save(tmp_path / "fit.npz"))
    assert back.method == res.method and back.info["num_chains"] == 2
    np.testing.assert_array_equal(back.samples["theta"], res.samples["theta"])
    np.testing.assert_array_equal(back.divergences, res.divergences)
    for k, v in res.info["sample_stats"].items():
        np.testing.assert_array_equal(back.info["sample_stats"][k], v)
    assert back.wall_time_s == res.wall_time_s and back.compile_time_s == res.compile_time_s
    prior = sample_prior(jax.random.key(0), problem, 4000)
    assert prior["theta"].shape == (4000, D)
    np.testing.assert_allclose(prior["theta"].std(0), S0, rtol=0.05)
    idata = back.to_arviz(prior=prior, observed=data)
    assert {"posterior", "sample_stats", "prior", "observed_data"} <= set(idata.groups())
    assert "diverging" in idata.sample_stats


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
    problem, data, _, _, _, _ = linear_gaussian
    with pytest.raises(ValueError, match=r"data must have shape \(20,\)"):
        fit(problem, data[:5], method="nuts", key=jax.random.key(0))
    with pytest.raises(ValueError, match="method must be one of"):
        fit(problem, data, method="hmc", key=jax.random.key(0))
    with pytest.raises(ValueError, match="data must be finite"):
        fit(problem, data.at[0].set(jnp.nan), method="map", key=jax.random.key(0))
    for method in ("nuts", "blackjax_nuts", "map", "laplace"):
        with pytest.raises(ValueError, match="init must be one of"):
            fit(problem, data, method=method, key=jax.random.key(0), init="prior")


@pytest.mark.parametrize("method", ["nuts", "blackjax_nuts"])
def test_diverging_simulation_gives_minus_inf_not_nan(method):
    from scipy import stats

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
        method=method,
        key=jax.random.key(1),
        num_warmup=200,
        num_samples=400,
        num_chains=2,
    )
    post = res.flat("theta")
    assert np.all(np.isfinite(post)) and post.max() <= 1.0
    # trajectories that hit the wall are counted as divergences, and the chains go on
    assert 0 < int(res.divergences.sum()) < res.divergences.size
    # the exact posterior: N(5 * 0.9 / 6, 1 / 6) truncated to theta <= 1
    sd = np.sqrt(1 / 6)
    exact = stats.truncnorm(-np.inf, (1.0 - 0.75) / sd, loc=0.75, scale=sd)
    ess = float(az.ess(res.to_arviz())["theta"])
    assert ess > 50
    assert abs(post.mean() - exact.mean()) < 4 * exact.std() / np.sqrt(ess)


def _lg_problem(noise_sd):
    return make_linear_gaussian(noise_sd, truth=None)


@pytest.mark.slow
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


@pytest.mark.slow
@pytest.mark.parametrize("method", ["nuts", "blackjax_nuts"])
def test_nuts_chunks_resume_after_interruption(
    tmp_path, linear_gaussian, nuts_fits, monkeypatch, capsys, method
):
    from numpyro.infer import MCMC

    from vbinfer.inference import _chunks

    problem, data, _, _, _, _ = linear_gaussian
    ref = nuts_fits[method]  # the same run, uninterrupted
    folder = tmp_path / "run"
    real_save = _chunks.ChunkStore.save

    def flaky_save(self, name, tree):
        if name == "chunk_00002":
            raise KeyboardInterrupt("simulated interruption")
        real_save(self, name, tree)

    monkeypatch.setattr(_chunks.ChunkStore, "save", flaky_save)
    with pytest.raises(KeyboardInterrupt):
        fit(problem, data, method=method, key=jax.random.key(2), checkpoint_dir=folder, **NUTS_KW)
    assert sorted(p.name for p in folder.glob("*.npz")) == [
        "adapted.npz",
        "chunk_00000.npz",
        "chunk_00001.npz",
    ]
    saved = []

    def logged_save(self, name, tree):
        saved.append(name)
        real_save(self, name, tree)

    def no_warmup(*args, **kwargs):
        raise AssertionError("a resumed run must not warm up again")

    monkeypatch.setattr(_chunks.ChunkStore, "save", logged_save)
    monkeypatch.setattr(MCMC, "warmup", no_warmup)
    # numpyro silences its progress bars when these are set (CI, pytest-xdist workers)
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    res = fit(
        problem,
        data,
        method=method,
        key=jax.random.key(2),
        checkpoint_dir=folder,
        progress_bar=True,
        **NUTS_KW,
    )
    assert ("blackjax NUTS" if method == "blackjax_nuts" else "sample") in capsys.readouterr().err
    assert saved == ["chunk_00002", "chunk_00003"]  # the warm-up state was loaded, not redone
    # two chunks loaded from disk and two sampled after resuming: bit for bit the same draws
    np.testing.assert_array_equal(res.samples["theta"], ref.samples["theta"])
    np.testing.assert_array_equal(res.divergences, ref.divergences)
    for k, v in ref.info["sample_stats"].items():
        np.testing.assert_array_equal(res.info["sample_stats"][k], v)
    assert res.info["step_size"] == ref.info["step_size"]
    assert len(list(folder.glob("chunk_*.npz"))) == 4
    with pytest.raises(ValueError, match="holds a run with other settings"):
        fit(problem, data, method=method, key=jax.random.key(12), checkpoint_dir=folder, **NUTS_KW)
    with pytest.raises(ValueError, match="chunk_size must be a positive divisor"):
        fit(problem, data, method=method, key=jax.random.key(12), num_samples=100, chunk_size=30)


@pytest.mark.parametrize("method", [pytest.param("svi", marks=pytest.mark.slow), "map"])
def test_optimisers_run_in_chunks_and_resume(tmp_path, linear_gaussian, monkeypatch, method):
    from vbinfer.inference import _chunks

    problem, data, _, _, _, _ = linear_gaussian
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


@pytest.mark.slow
def test_plots_and_posterior_predictive(tmp_path, linear_gaussian):
    from vbinfer.inference import plots, posterior_predictive, sbc

    problem, data, _, _, _, _ = linear_gaussian
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


def test_svi_init_mean_finds_the_posterior_of_a_simulator_problem():
    """numpyro's autoguides start at a uniform draw in [-2, 2] of the unconstrained space, far
    from MPR's eta ~ Normal(-5, 1): from there SVI sticks in a local optimum near eta -3.8, more
    than 10 posterior sd from the answer. ``init="mean"`` starts the guide at the prior mean."""
    import vbinfer as vb
    from vbinfer.inference import simulator_problem

    rng = np.random.default_rng(0)
    w = rng.uniform(0, 1, (2, 2))
    np.fill_diagonal(w, 0)
    net = vb.make_network(w, rng.uniform(1, 10, (2, 2)), speed=2.0)
    sim = vb.make_simulator(
        vb.models.mpr,
        dt=0.01,
        num_steps=100,
        max_lag=600,
        noise=vb.AdditiveNoise(0.05, states=(1,)),
        sample_every=10,
    )
    truth = {"model.eta": -4.5, "coupling.a": 0.5}
    problem = simulator_problem(
        sim,
        net,
        vb.SimParams(vb.models.MPRParams(), vb.coupling.LinearParams(a=0.2)),
        {"model.eta": dist.Normal(-5.0, 1.0), "coupling.a": dist.HalfNormal(1.0)},
        lambda r: r.outputs["tavg"][:, 0],
        noise=jax.random.normal(jax.random.key(0), sim.noise_shape(2)),
        noise_sd=0.002,
        truth=truth,
    )
    data = simulate_data(jax.random.key(1), problem)
    with pytest.raises(ValueError, match="init must be one of"):
        fit(problem, data, method="svi", key=jax.random.key(3), init="zero")
    res = fit(
        problem,
        data,
        method="svi",
        key=jax.random.key(3),
        num_steps=500,
        learning_rate=0.05,
        init="mean",
        num_samples=2000,
    )
    assert res.info["init"] == "mean"
    assert res.sd("model.eta") < 0.2  # the data pin eta down (prior sd 1)
    for name, value in truth.items():
        assert abs(res.mean(name) - value) < 3 * res.sd(name), name
