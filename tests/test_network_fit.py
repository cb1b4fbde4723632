"""Many-parameter network fits: connectome recovery from FC, transforms, bad input."""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpyro.distributions import constraints

import vbinfer as vb
from vbinfer.coupling import LinearParams
from vbinfer.inference import fisher_information, fit, spectrum
from vbinfer.inference.network_fit import fit_network, make_network_problem
from vbinfer.inference.transforms import (
    as_constraint,
    bounded,
    make_transform,
    positive,
    to_unconstrained,
)
from vbinfer.models import LinearModelParams, linear
from vbinfer.observe import fc_corr, functional_connectivity

N = 8
W_MAX = 0.02  # upper bound of every weight: keeps the linear network stable at any start


def _small_network():
    """A sparse symmetric 8-node connectome, its known perturbation and a linear simulator.

    Every weight lies in (0, W_MAX) and ``lam`` exceeds the largest possible row sum, so the
    network is stable for any weights the bounded transform allows. The simulation noise is a
    fixed key: the target FC is an exact function of the weights (no observation noise).
    """
    rng = np.random.default_rng(0)
    upper = np.triu(rng.uniform(size=(N, N)) < 0.4, 1)
    mask = upper | upper.T
    w0 = np.triu(rng.uniform(0.3, 0.7, (N, N)) * W_MAX, 1)
    w0 = (w0 + w0.T) * mask
    factor = np.triu(np.exp(0.3 * rng.normal(size=(N, N))), 1)
    w_true = np.minimum(w0 * (factor + factor.T), 0.95 * W_MAX)
    lam = 1.25 * W_MAX * mask.sum(1).max()
    sim = vb.make_simulator(
        linear,
        dt=1.0,
        num_steps=2000,
        noise=vb.AdditiveNoise(0.1),
        integrator="euler",
        sample_every=5,
    )
    base = vb.SimParams(LinearModelParams(lam=lam), LinearParams(a=1.0))
    return sim, base, mask, w0, w_true


@pytest.fixture(scope="module")
def small():
    sim, base, mask, w0, w_true = _small_network()
    key = jax.random.key(0)
    run = sim.run(key, base, vb.make_network(w_true))
    target = functional_connectivity(run.outputs["tavg"][:, 0])
    return sim, base, mask, w0, w_true, key, np.asarray(target)


def test_recovers_a_perturbed_connectome_from_fc(small):
    sim, base, mask, w0, w_true, key, target = small
    t0 = time.perf_counter()
    res = fit_network(
        jax.random.key(1),
        sim,
        vb.make_network(w0),
        base,
        target,
        free={"network.weights": "symmetric"},
        transforms={"network.weights": (0.0, W_MAX)},
        loss="fc",
        noise=key,
        optimizer="adam",
        learning_rate=0.05,
        num_steps=300,
        num_starts=2,
        init_radius=0.5,
    )
    wall = time.perf_counter() - t0
    n_pairs = int(np.triu(mask, 1).sum())
    assert res.num_free == n_pairs == len(res.setup.labels)
    w = np.asarray(res.network.weights)
    err0 = np.linalg.norm(w0[mask] - w_true[mask]) / np.linalg.norm(w_true[mask])
    err = np.linalg.norm(w[mask] - w_true[mask]) / np.linalg.norm(w_true[mask])
    assert err0 > 0.2  # the start is far off ...
    assert err < 1e-3, err  # ... the fit recovers every weight
    np.testing.assert_array_equal(w, w.T)
    np.testing.assert_array_equal(w[~mask], 0.0)  # zero entries stay zero
    assert res.loss.shape == (300,)
    assert res.loss[-1] < 1e-6 * res.loss[0]  # orders of magnitude
    assert res.final_losses.shape == (2,)
    assert res.best_start == int(np.argmin(res.final_losses))
    assert res.final_losses[res.best_start] == pytest.approx(float(res.loss[-1]), rel=0.5)
    # the fitted vector is the upper triangle of the returned matrix, in label order
    rows, cols = np.nonzero(np.triu(mask, 1))
    np.testing.assert_allclose(res.values["network.weights"], w[rows, cols], rtol=1e-6)
    assert res.setup.labels[0] == f"network.weights[{rows[0]}<->{cols[0]}]"
    fc_fit = functional_connectivity(sim.run(key, res.params, res.network).outputs["tavg"][:, 0])
    assert float(fc_corr(fc_fit, target)) > 0.9999
    print(f"\n  {n_pairs} weights, relative error {err0:.3f} -> {err:.1e}, {wall:.1f} s")


@pytest.mark.slow
def test_laplace_of_a_network_fit_is_a_fit_result(small):
    """method="laplace" gives constrained samples and an arviz object like any other fit."""
    sim, base, _, _, w_true, key, target = small
    setup = make_network_problem(
        sim,
        vb.make_network(w_true),
        base,
        target,
        free={"network.weights": "symmetric"},
        transforms={"network.weights": (0.0, W_MAX)},
        loss="fc",
        noise=key,
        prior_sd=1.0,
    )
    assert setup.noise_sd == pytest.approx(np.sqrt(N * (N - 1) / 4))
    lap = fit(
        setup.problem,
        setup.data,
        method="laplace",
        key=jax.random.key(2),
        optimizer="adam",
        num_steps=5,
        num_restarts=1,
        init_radius=0.0,
        num_samples=500,
    )
    draws = lap.samples["network.weights"]
    assert draws.shape == (1, 500, setup.num_free)
    assert np.all((draws > 0) & (draws < W_MAX))  # the bounded transform holds
    idata = lap.to_arviz()
    assert idata.posterior["network.weights"].shape == (1, 500, setup.num_free)


def test_network_problem_losses_vanish_at_the_truth(small):
    """FC-correlation and spectral losses are 0 where the target was simulated."""
    sim, base, mask, _, w_true, key, target = small
    net = vb.make_network(w_true)
    free = {"network.weights": "nonzero", "model.lam": "per_region"}
    kw = {"free": free, "loss": "psd", "nperseg": 16, "noise": key}
    spec = make_network_problem(sim, net, base, np.zeros((9, N)), **kw)
    truth = spec.constrain(jnp.zeros(spec.num_free))
    lp = jax.jit(spec.predict)(truth)
    assert lp.shape == (9, N) and float(jnp.std(lp)) > 0.1
    spec = make_network_problem(sim, net, base, lp, **kw)
    assert float(spec.loss_fn(lp)) == 0.0
    s = make_network_problem(sim, net, base, target, free=free, loss="fc_corr", noise=key)
    assert abs(float(s.loss_fn(jax.jit(s.predict)(truth)))) < 1e-6
    # per-region parameters follow the weights in label order (sorted names)
    assert s.names == ("model.lam", "network.weights")
    assert s.labels[:2] == ("model.lam[0]", "model.lam[1]")
    assert s.num_free == N + int(mask.sum())
    np.testing.assert_allclose(s.unconstrain(truth), 0.0, atol=1e-6)


@pytest.mark.slow
def test_fits_thousands_of_parameters_of_the_hagmann_connectome():
    """Per-region I_o and all 4598 nonzero weights of the 84-region connectome against FC."""
    from vbinfer.models import ReducedWongWangParams, reduced_wong_wang

    conn = vb.datasets.load_hagmann84().normalized("max")
    w0 = np.asarray(conn.weights)
    n = w0.shape[0]
    sim = vb.make_simulator(
        reduced_wong_wang, dt=1.0, num_steps=4000, noise=vb.AdditiveNoise(0.01), sample_every=10
    )
    base = vb.SimParams(ReducedWongWangParams(w=0.9, I_o=0.3), LinearParams(a=0.3))
    key = jax.random.key(0)
    rng = np.random.default_rng(1)
    w_true = np.triu(w0 * np.exp(0.7 * rng.normal(size=(n, n))), 1)
    w_true = w_true + w_true.T
    i_true = 0.3 + 0.02 * rng.normal(size=n)
    true_params = base._replace(model=base.model._replace(I_o=i_true))

    def fc(params, weights):
        run = sim.run(key, params, vb.make_network(weights))
        return functional_connectivity(run.outputs["tavg"][:, 0])

    target = fc(true_params, w_true)
    corr0 = float(fc_corr(fc(base, w0), target))
    t0 = time.perf_counter()
    res = fit_network(
        jax.random.key(1),
        sim,
        vb.make_network(w0),
        base,
        target,
        free={"model.I_o": "per_region", "network.weights": "nonzero"},
        loss="fc",
        noise=key,
        optimizer="adam",
        learning_rate=0.05,
        num_steps=200,
        num_starts=2,
        init_radius=0.01,
    )
    wall = time.perf_counter() - t0
    assert res.num_free == n + int((w0 > 0).sum()) > 4000
    corr = float(fc_corr(fc(res.params, res.network.weights), target))
    assert corr0 < 0.75 and corr > 0.9, (corr0, corr)
    assert res.loss[-1] < 0.3 * res.loss[0]
    # identifiability of the 84 per-region parameters at the fit (a block of the Fisher matrix)
    labels = [f"model.I_o[{i}]" for i in range(n)]
    f = fisher_information(res, coordinates=labels, chunk_size=42)
    spec = spectrum(f, labels, num_directions=1)
    ev = spec.eigenvalues
    assert ev[-1] > -1e-5 * ev[0]  # positive semi-definite
    assert ev[0] > 100 * max(ev[-1], 0.0)  # stiff and sloppy directions, decades apart
    assert spec.sloppy[0].loadings[0][0].startswith("model.I_o[")
    print(
        f"\n  {res.num_free} parameters, FC correlation {corr0:.3f} -> {corr:.3f}, {wall:.0f} s;"
        f" I_o Fisher eigenvalues {ev[0]:.3g} .. {ev[-1]:.3g}"
    )


# ------------------------------------------------------------------------------ transforms
def test_transforms_are_numpyro_bijections():
    assert isinstance(make_transform("positive").codomain, type(constraints.positive))
    t = make_transform(bounded(-2.0, 4.0))
    u = jnp.linspace(-30.0, 30.0, 7)
    x = t(u)
    assert np.all((np.asarray(x) >= -2.0) & (np.asarray(x) <= 4.0))
    np.testing.assert_allclose(t.inv(t(jnp.array([-1.0, 0.5]))), [-1.0, 0.5], rtol=1e-5)
    np.testing.assert_allclose(make_transform(positive("softplus"))(0.0), np.log(2.0), rtol=1e-6)
    per_region = make_transform((np.zeros(3), np.array([1.0, 2.0, 3.0])))
    np.testing.assert_allclose(per_region(jnp.zeros(3)), [0.5, 1.0, 1.5], rtol=1e-6)
    assert as_constraint("unit") == constraints.interval(0.0, 1.0)
    np.testing.assert_allclose(to_unconstrained("positive", np.e), 1.0, rtol=1e-6)


# ------------------------------------------------------------------------------- bad input
def test_bad_transform_specs_are_rejected():
    with pytest.raises(ValueError, match=r"transforms\['model.lam'\]: expected lower < upper"):
        as_constraint((1.0, 0.5), "transforms['model.lam']")
    with pytest.raises(ValueError, match=r"lower < upper everywhere.*1 entries"):
        bounded(np.zeros(3), np.array([1.0, 0.0, 1.0]))
    with pytest.raises(ValueError, match="finite"):
        bounded(0.0, np.inf)
    with pytest.raises(ValueError, match="must be one of"):
        as_constraint("log")
    with pytest.raises(ValueError, match="must lie inside the support"):
        to_unconstrained("positive", [1.0, -1.0])


@pytest.fixture(scope="module")
def bad_setup():
    sim, base, _, w0, _ = _small_network()
    return sim, base, vb.make_network(w0), np.eye(N)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"transforms": {"model.lam": (1.0, 0.0)}, "free": {"model.lam": "global"}},
            r"transforms\['model.lam'\]: expected lower < upper, got lower=1.0 >= upper=0.0",
        ),
        (
            {"free": {"network.weights": np.ones((N, N - 1), bool)}},
            rf"free\['network.weights'\]: the mask must have shape \({N}, {N}\).*got shape "
            rf"\({N}, {N - 1}\)",
        ),
        ({"free": {"network.weights": np.ones((N, N))}}, "mask must be boolean"),
        ({"target": np.eye(N + 1)}, rf"target: .*shape \({N}, {N}\).*got shape \(9, 9\)"),
        (
            {"target": np.zeros((5, N)), "loss": "mse", "noise": jax.random.key(0)},
            r"target must have the shape of the prediction \(400, 8\).*got shape \(5, 8\)",
        ),
        ({"free": {"model.eta": "global"}}, r"free: unknown parameter 'model.eta'.*'lam'"),
        ({"free": {"cpl.a": "global"}}, r"free: unknown parameter 'cpl.a'"),
        (
            {"free": {"model.lam": "global"}, "transforms": {"coupling.a": "positive"}},
            r"transforms: 'coupling.a' is not a freed parameter",
        ),
        ({"free": {"model.lam": "nonzero"}}, r"free\['model.lam'\] must be one of"),
        ({"free": {}}, "free must be a non-empty mapping"),
        (
            {"free": {"model.lam": "global"}, "transforms": {"model.lam": (0.5, 1.0)}},
            r"the base value of 'model.lam' must lie inside the support",
        ),
        ({"loss": "l1"}, "loss must be one of"),
        ({"target": np.full((N, N), np.nan)}, "target must be finite"),
    ],
)
def test_bad_input_is_rejected_before_compilation(bad_setup, kwargs, match):
    sim, base, net, target = bad_setup
    args = {"free": {"network.weights": "nonzero"}, "target": target} | kwargs
    target = args.pop("target")
    with pytest.raises(ValueError, match=match):
        make_network_problem(sim, net, base, target, **args)


def test_bad_fit_options_are_rejected(bad_setup):
    sim, base, net, target = bad_setup
    kw = {"free": {"network.weights": "nonzero"}}
    with pytest.raises(ValueError, match="num_starts must be a positive integer, got 0"):
        fit_network(jax.random.key(0), sim, net, base, target, num_starts=0, **kw)
    with pytest.raises(ValueError, match="method must be 'map' or 'laplace'"):
        fit_network(jax.random.key(0), sim, net, base, target, method="nuts", **kw)
    with pytest.raises(ValueError, match="'symmetric' needs a symmetric base"):
        asym = vb.make_network(np.triu(np.asarray(net.weights)))
        make_network_problem(sim, asym, base, target, free={"network.weights": "symmetric"})
