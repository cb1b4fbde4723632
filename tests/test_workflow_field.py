"""Workflow 3: the initial condition of vbjax's spherical field task, by NUTS.

References: vbjax 0.0.19's own definition of the operator (ported literally below, and run
itself in a subprocess by the slow test), the closed-form Gaussian posterior (the model is
linear-Gaussian), autodiff Hessians of the log density, and vbjax's pass criteria.
"""

from __future__ import annotations

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special as sp

from vbinfer.fields import make_sht
from vbinfer.inference._common import make_density
from vbinfer.workflows import field


def _vbjax_shtdiff_np(lmax: int, nlat: int, nlon: int, D: float):
    """vbjax 0.0.19 ``shtlc.make_shtdiff_np`` (with its ``make_lm`` / ``make_grid``), verbatim
    but for scipy's ``sph_harm`` -> ``sph_harm_y`` argument order (vbjax's own wrapper)."""
    lm = np.array([(l, m) for m in range(lmax + 1) for l in range(lmax + 1) if m <= l]).T
    points, weights = np.polynomial.legendre.leggauss(nlat)
    phi = np.arccos(-points)
    gw = weights[::-1]
    mats = []
    for m in range(lmax):
        l = lm[0, lm[0] >= m]
        fwd = gw[None, :] * sp.sph_harm_y(l[:, None], m, phi[None, :], 0).conjugate()
        bwd = sp.sph_harm_y(l[None, :], m, phi[:, None], 0)
        dll = D * l * (l + 1)
        mats.append(bwd.dot(dll[:, None] * fwd))
    mats = np.array(mats)

    def f(x):
        X = np.fft.rfft(x, axis=1)
        X[:, :lmax] = np.einsum("abc,ca->ba", mats, X[:, :lmax])
        X[:, lmax:] = 0.0
        return np.fft.irfft(X, axis=1).real

    return f


@pytest.fixture(scope="module")
def small():
    task = field.make_task(nlat=8)
    return task, field.exact_posterior(task)


@pytest.mark.parametrize("nlat", [8, 32])
def test_operator_is_vbjax_make_shtdiff(nlat):
    task = field.make_task(nlat=nlat, num_steps=1)
    lc_vbjax = _vbjax_shtdiff_np(nlat - 1, nlat, 2 * nlat, 4e-4)
    x = np.random.default_rng(0).normal(size=task.field_shape)
    want = lc_vbjax(x)
    got = np.asarray(field.lc_apply(task, jnp.asarray(x, jnp.float32)))
    scale = np.abs(want).max()
    assert scale > 0.01  # not vacuous: gains reach 0.03 at lmax 7, 2.0 at lmax 31
    np.testing.assert_allclose(got, want, atol=2e-6 * scale)


def test_vbjax_gains_formula():
    sht = make_sht(4, 3)
    g = field.vbjax_gains(sht)
    l = np.arange(4.0)
    np.testing.assert_allclose(g[0], 4e-4 * l * (l + 1) ** 2 / (2 * np.pi))
    np.testing.assert_array_equal(g[3], 0.0)  # vbjax's order loop stops at lmax - 1


def test_default_task_is_vbjax_definition():
    task = field.make_task(num_steps=3)
    assert task.field_shape == (32, 64) and task.sht.lmax == 31 and task.dim == 2048
    assert (task.k, task.dt, task.prior_sd, task.noise_sd) == (1.0, 0.01, 1.0, 1.0)
    truth = np.asarray(task.truth)
    np.testing.assert_array_equal(truth[:15, :15], 3.0)
    ref = np.asarray(jax.random.normal(jax.random.PRNGKey(42), (32, 64)))
    np.testing.assert_array_equal(truth[15:], ref[15:])
    np.testing.assert_array_equal(truth[:, 15:], ref[:, 15:])


def test_spectral_propagator_equals_heun_stepping(small):
    task, _ = small
    x = jax.random.normal(jax.random.key(3), task.field_shape)
    stepped = np.asarray(field.simulate_stepped(task, x))
    spectral = np.asarray(field.simulate(task, x))
    assert spectral.shape == (100, 8, 16)
    np.testing.assert_allclose(spectral, stepped, atol=2e-5 * np.abs(stepped).max())
    # the data are vbjax's scheme applied to the truth, without noise
    np.testing.assert_allclose(
        np.asarray(task.data), np.asarray(field.simulate_stepped(task, task.truth)), atol=0
    )


def test_fourier_forward_equals_the_grid_trajectory(small):
    task, _ = small
    x = jax.random.normal(jax.random.key(4), task.field_shape)
    factors = field.order_factors(task)
    g0 = np.asarray(x, np.float64) @ factors.basis
    got = np.asarray(field.simulate_fourier(factors, g0.T))
    want = np.asarray(field.to_fourier(field.simulate_stepped(task, x)))
    assert got.shape == (16, 100, 8)
    np.testing.assert_allclose(got, want, atol=2e-5 * np.abs(want).max())


def test_closed_form_posterior_is_the_stepped_models_gaussian(small):
    # the log density is quadratic, so its gradient must be -P (x - mean) everywhere, with P
    # the closed-form precision; checked on vbjax's stepped scheme, not the propagator
    task, post = small
    problem = field.field_problem(task, parameterisation="centred", forward="stepped")
    dens = make_density(jax.random.key(0), problem, task.data)
    grad = jax.jit(jax.grad(dens.logdensity))
    prec = post.precision()  # assembled from the per-order blocks
    xs = np.random.default_rng(1).normal(size=(3, task.dim))
    for x in np.vstack([post.mean.ravel(), xs]):
        want = -prec @ (x - post.mean.ravel())
        got = np.asarray(grad(jnp.asarray(x, jnp.float32)), np.float64)
        np.testing.assert_allclose(got, want, atol=2e-3 + 1e-5 * np.abs(prec @ x).max())
    np.testing.assert_allclose(post.sd.ravel() ** 2, np.diag(np.linalg.inv(prec)), rtol=1e-10)


def test_fourier_basis_block_diagonalises_the_precision(small):
    _, post = small
    q = field.fourier_basis(16)
    np.testing.assert_allclose(q.T @ q, np.eye(16), atol=1e-12)
    # the blocks of an order are shared by its cosine and sine columns
    np.testing.assert_array_equal(post.blocks[1], post.blocks[2])
    assert not np.allclose(post.blocks[0], post.blocks[1])


def test_whitened_posterior_is_standard_normal(small):
    # log p(z) = -|z|^2 / 2 + const, so the value difference and gradient are known exactly
    task, post = small
    problem = field.field_problem(task, posterior=post)  # Fourier-basis forward and data
    dens = make_density(jax.random.key(0), problem, field.observed_data(task))
    vg = jax.jit(jax.value_and_grad(dens.logdensity))
    zero = jnp.zeros(dens.dim)
    l0, g0 = vg(zero)
    assert np.abs(np.asarray(g0)).max() < 1e-3
    for z in jax.random.normal(jax.random.key(1), (3, dens.dim)):
        lz, gz = vg(z)
        np.testing.assert_allclose(float(lz - l0), -0.5 * float(z @ z), rtol=1e-4)
        np.testing.assert_allclose(np.asarray(gz), -np.asarray(z), atol=1e-3)
    x0 = dens.constrain(dens.unravel(zero))["x0"]
    np.testing.assert_allclose(np.asarray(x0), post.mean, atol=1e-5)


@pytest.mark.parametrize("backend", ["nuts", pytest.param("blackjax_nuts", marks=pytest.mark.slow)])
def test_quick_run_recovers_the_exact_posterior(backend, tmp_path):
    rep = field.run(tmp_path, backend=backend, quick=True, progress=False)
    m = rep.metrics
    assert rep.passed, rep.format()
    assert m["unknowns"] == 128 and m["divergences"] == 0
    # Monte Carlo agreement with the closed form: means and sds within 5 standard errors
    assert m["max_mean_error_in_mcse"] < 5.0
    assert m["max_sd_error_in_se"] < 5.0
    assert abs(m["sd_ratio_to_exact_mean"] - 1.0) < 0.03
    names = {p.name for p in rep.files}
    assert names == {"posterior.npz", "fields.png", "shrinkage_z.png", "report.json"}
    assert all(p.stat().st_size > 0 for p in rep.files)


def test_bad_input_raises():
    with pytest.raises(ValueError, match="backend"):
        field.run(backend="hmc", progress=False)
    with pytest.raises(ValueError, match="parameterisation"):
        field.run(parameterisation="dense", progress=False)
    with pytest.raises(ValueError, match="num_samples"):
        field.run(num_samples=0, progress=False)
    with pytest.raises(ValueError, match="operator"):
        field.make_task(operator="wave")
    with pytest.raises(ValueError, match="dt"):
        field.make_task(nlat=4, dt=-0.1)
    with pytest.raises(ValueError, match="truth"):
        field.make_task(nlat=4, truth=np.zeros((4, 4)))
    with pytest.raises(ValueError, match="num_steps"):
        field.make_task(nlat=4, num_steps=0)


_VBJAX_DATA = """
import numpy as np, jax, jax.numpy as jnp, vbjax, sys
lc = vbjax.make_shtdiff(lmax=31, nlat=32, nlon=64)
x0 = jax.random.normal(jax.random.PRNGKey(42), (32, 64)).at[:15, :15].set(3.0)
_, run = vbjax.make_ode(0.01, lambda x, k: -x + k * lc(x))
np.save(sys.argv[1], np.asarray(run(x0, jnp.r_[:100] * 0.01, 1.0)))
"""


@pytest.mark.slow
def test_data_equal_vbjax_trajectory(tmp_path):
    pytest.importorskip("vbjax")
    out = tmp_path / "xt.npy"
    subprocess.run([sys.executable, "-c", _VBJAX_DATA, str(out)], check=True, timeout=300)
    want = np.load(out)
    got = np.asarray(field.make_task().data)
    assert got.shape == want.shape == (100, 32, 64)
    np.testing.assert_allclose(got, want, atol=1e-5 * np.abs(want).max())


@pytest.mark.slow
def test_full_problem_passes_vbjax_criteria_and_matches_exact_posterior():
    # numpyro; the blackjax path is the same model and is checked by the quick run
    rep = field.run(seed=0, progress=False)
    m = rep.metrics
    assert m["unknowns"] == 2048
    assert m["min_ess"] > 100
    assert m["min_shrinkage"] > 0.7
    assert m["max_abs_z"] < 1.5
    assert rep.passed
    # 2048 means and sds within 5 standard errors of the exact posterior (Bonferroni: ~1e-3
    # false alarms), and the sds right on average
    assert m["max_mean_error_in_mcse"] < 5.0
    assert m["max_sd_error_in_se"] < 5.0
    assert abs(m["sd_ratio_to_exact_mean"] - 1.0) < 0.02
