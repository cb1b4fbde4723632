"""Isotropic kernels on the sphere: spectral convolution against direct quadrature."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vbinfer.fields import kernels as K
from vbinfer.fields import sht as S

NLAT = 24
BAND = 10  # test fields are band-limited to this degree


def _band_limited_field(sht, seed=0):
    rng = np.random.default_rng(seed)
    n = sht.lmax + 1
    a = np.triu(rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n)))
    a[0] = a[0].real
    a[:, BAND + 1 :] = 0.0
    return np.asarray(S.synthesis(sht, a))


def _unit_vectors(sht):
    lat, lon = S.grid_lat_lon(sht)
    lat, lon = np.asarray(lat)[:, None], np.asarray(lon)[None, :]
    xyz = np.stack(
        np.broadcast_arrays(np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat))
    )
    return xyz.reshape(3, -1)  # (3, nlat * nlon)


def _direct_convolution(sht, field, kind, targets, **params):
    """Σ_y k(gamma(x, y)) f(y) dA_y at grid points ``targets`` (flat indices)."""
    xyz = _unit_vectors(sht)
    cosg = np.clip(xyz[:, targets].T @ xyz, -1.0, 1.0)  # (n_targets, n_points)
    k = np.asarray(K.kernel_values(kind, np.arccos(cosg), **params))
    area = np.repeat(np.asarray(sht.weights) * 2 * np.pi / sht.nlon, sht.nlon)
    return k @ (field.reshape(-1) * area)


CASES = [
    ("gaussian", {"sigma": 0.3, "amplitude": 1.7}),
    ("gaussian", {"sigma": 0.4}),
    ("dog", {"sigma_e": 0.25, "sigma_i": 0.4, "a_e": 2.0, "a_i": 1.5}),
    ("diffusion", {"t": 0.02}),
    ("diffusion", {"t": 0.15}),
]


@pytest.mark.parametrize(("kind", "params"), CASES)
def test_spectral_equals_direct_quadrature(x64, kind, params):
    """Funk-Hecke gains against the convolution integral done on the grid.

    The field is band-limited to degree 10 and the kernels' gains are below ~1e-13 beyond
    degree 37 (widths 0.25 to 0.4 rad; wider geodesic Gaussians have an algebraic tail from
    their cusp at the antipode, of relative size exp(-pi^2 / (2 sigma^2))), so the grid
    quadrature (exact to total degree 2 * 24 - 1 = 47) of k(gamma(x, y)) f(y) is exact to that
    level and the two must agree to rounding.
    """
    sht = S.make_sht(NLAT, dtype=jnp.float64)
    field = _band_limited_field(sht)
    gains = K.make_kernel_gains(kind, sht.lmax, **params)
    spectral = np.asarray(K.apply_kernel(sht, field, gains)).reshape(-1)
    targets = np.array([0, 37, 300, 611, sht.nlat * sht.nlon - 1])
    direct = _direct_convolution(sht, field, kind, targets, **params)
    err = np.max(np.abs(spectral[targets] - direct)) / np.max(np.abs(direct))
    assert err < 1e-11, err  # measured 1e-15 to 3e-13


def test_gains_against_adaptive_quadrature(x64):
    """Independent check of the Funk-Hecke integral with scipy's adaptive quadrature."""
    integrate = pytest.importorskip("scipy.integrate")
    special = pytest.importorskip("scipy.special")
    for sigma in (0.05, 0.4, 1.5):
        g = np.asarray(K.make_kernel_gains("gaussian", 40, sigma=sigma))

        def moment(l, sigma=sigma):
            def f(a):
                return (
                    np.exp(-0.5 * (a / sigma) ** 2)
                    * np.sin(a)
                    * special.eval_legendre(l, np.cos(a))
                )

            res = integrate.quad(
                f, 0.0, np.pi, epsabs=1e-14, epsrel=1e-12, limit=400, points=[sigma]
            )
            return res[0]

        z = moment(0)
        for l in (1, 2, 7, 25, 40):
            assert abs(moment(l) / z - g[l]) < 1e-11, (sigma, l)
        assert g[0] == pytest.approx(1.0, abs=1e-15)


def test_normalisation_and_limits(x64):
    lmax = 30
    g = K.make_kernel_gains("gaussian", lmax, sigma=0.2, amplitude=3.0)
    assert float(g[0]) == pytest.approx(3.0, rel=1e-14)  # integral over the sphere
    ge = K.make_kernel_gains("gaussian", lmax, sigma=0.1)
    gi = K.make_kernel_gains("gaussian", lmax, sigma=0.4)
    dog = K.make_kernel_gains("mexican_hat", lmax, sigma_e=0.1, sigma_i=0.4, a_e=2.0, a_i=0.5)
    np.testing.assert_allclose(dog, 2.0 * ge - 0.5 * gi, rtol=1e-14)
    # a narrow Gaussian is a short heat kernel: g_l ~ exp(-l (l + 1) sigma^2 / 2)
    narrow = K.make_kernel_gains("gaussian", lmax, sigma=0.01)
    heat = K.make_kernel_gains("heat", lmax, t=0.5e-4)
    np.testing.assert_allclose(narrow, heat, atol=2e-5)
    # the kernel in space integrates to its g_0
    gam, w = np.polynomial.legendre.leggauss(400)
    gam = 0.5 * np.pi * (gam + 1)
    for kind, params in CASES:
        k = np.asarray(K.kernel_values(kind, gam, **params))
        total = 2 * np.pi * np.sum(0.5 * np.pi * w * np.sin(gam) * k)
        g0 = float(K.make_kernel_gains(kind, lmax, **params)[0])
        assert total == pytest.approx(g0, rel=1e-12), kind


def test_heat_kernel_semigroup(x64):
    sht = S.make_sht(32, dtype=jnp.float64)
    t1, t2 = 0.03, 0.05
    g1, g2, g12 = (K.make_kernel_gains("diffusion", sht.lmax, t=t) for t in (t1, t2, t1 + t2))
    np.testing.assert_allclose(g1 * g2, g12, rtol=1e-13)
    field = np.asarray(S.synthesis(sht, np.triu(np.ones(sht.coeffs_shape)) * 0.1))
    twice = K.apply_kernel(sht, K.apply_kernel(sht, field, g1), g2)
    np.testing.assert_allclose(twice, K.apply_kernel(sht, field, g12), atol=1e-13)
    # in space: ∫ k_t1(x . z) k_t2(z . y) dz = k_{t1 + t2}(x . y), by quadrature on the grid
    xyz = _unit_vectors(sht)
    area = np.repeat(np.asarray(sht.weights) * 2 * np.pi / sht.nlon, sht.nlon)
    x, y = np.array([0.0, 0.0, 1.0]), np.array([np.sin(0.4), 0.0, np.cos(0.4)])
    k1 = np.asarray(K.kernel_values("diffusion", np.arccos(np.clip(x @ xyz, -1, 1)), t=t1))
    k2 = np.asarray(K.kernel_values("diffusion", np.arccos(np.clip(y @ xyz, -1, 1)), t=t2))
    k12 = float(K.kernel_values("diffusion", 0.4, t=t1 + t2))
    assert np.sum(k1 * k2 * area) == pytest.approx(k12, rel=1e-10)


def test_gains_differentiable_in_width(x64):
    sht = S.make_sht(12, dtype=jnp.float64)
    field = jnp.asarray(_band_limited_field(sht, seed=1))

    @jax.jit
    def loss(sigma_e, sigma_i, t):
        g = K.make_kernel_gains("dog", sht.lmax, sigma_e=sigma_e, sigma_i=sigma_i, a_i=0.7)
        h = K.make_kernel_gains("diffusion", sht.lmax, t=t)
        return jnp.sum(K.apply_kernel(sht, field, g * h) ** 2)

    args = (0.3, 0.6, 0.05)
    grads = jax.grad(loss, argnums=(0, 1, 2))(*args)
    h = 1e-6
    for i, gi in enumerate(grads):
        up = list(args)
        dn = list(args)
        up[i] += h
        dn[i] -= h
        fd = (loss(*up) - loss(*dn)) / (2 * h)
        assert float(gi) == pytest.approx(float(fd), rel=1e-6), i
    # and vmap over widths
    sig = jnp.array([0.2, 0.3, 0.5])
    gs = jax.vmap(lambda s: K.make_kernel_gains("gaussian", 8, sigma=s))(sig)
    np.testing.assert_allclose(gs[1], K.make_kernel_gains("gaussian", 8, sigma=0.3), rtol=1e-13)


def test_float32():
    sht = S.make_sht(16, dtype=jnp.float32)
    g = K.make_kernel_gains("gaussian", sht.lmax, sigma=0.3)
    assert g.dtype == jnp.float32
    out = K.apply_kernel(sht, jnp.ones(sht.field_shape, jnp.float32), g)
    assert out.dtype == jnp.float32
    np.testing.assert_allclose(out, 1.0, atol=1e-5)


def test_bad_input():
    with pytest.raises(ValueError, match=r"sigma must be > 0 \(kernel width in radians\), got 0.0"):
        K.make_kernel_gains("gaussian", 8, sigma=0.0)
    with pytest.raises(ValueError, match=r"sigma_i must be > 0 .* got -0.1"):
        K.make_kernel_gains("dog", 8, sigma_e=0.1, sigma_i=-0.1)
    with pytest.raises(ValueError, match=r"t must be >= 0 .* got -1.0"):
        K.make_kernel_gains("diffusion", 8, t=-1.0)
    with pytest.raises(ValueError, match=r"t must be > 0 for the diffusion kernel in space"):
        K.kernel_values("diffusion", 0.1, t=0.0)
    with pytest.raises(ValueError, match="kind must be one of"):
        K.make_kernel_gains("lorentzian", 8, sigma=0.1)
    with pytest.raises(ValueError, match="needs parameter"):
        K.make_kernel_gains("gaussian", 8)
    with pytest.raises(ValueError, match="got unknown width"):
        K.make_kernel_gains("gaussian", 8, sigma=0.1, width=0.2)
    with pytest.raises(ValueError, match="sigma must be a scalar"):
        K.make_kernel_gains("gaussian", 8, sigma=np.ones(2))
    with pytest.raises(ValueError, match="lmax must be an integer >= 0"):
        K.make_kernel_gains("gaussian", -1, sigma=0.1)
    with pytest.raises(ValueError, match="dtype float64 needs 64-bit JAX"):
        K.make_kernel_gains("gaussian", 8, sigma=0.1, dtype=np.float64)  # x64 is off here
    sht = S.make_sht(8)
    with pytest.raises(
        ValueError, match=r"gains must have shape \(\.\.\., lmax \+ 1\) = \(\.\.\., 8\)"
    ):
        K.apply_kernel(sht, jnp.zeros(sht.field_shape), K.make_kernel_gains("heat", 9, t=0.1))
