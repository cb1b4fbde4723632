"""Spherical harmonic transforms: exactness, conventions, quadrature, batching, autodiff."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vbinfer.fields import sht as S


def _random_coeffs(rng, shape, lmax, band=None, dtype=np.complex128):
    """Random coefficients ``(*shape, lmax + 1, lmax + 1)`` [m, l] of a real field."""
    n = lmax + 1
    a = rng.standard_normal((*shape, n, n)) + 1j * rng.standard_normal((*shape, n, n))
    a = np.triu(a)  # m <= l
    a[..., 0, :] = a[..., 0, :].real  # m = 0 is real for a real field
    if band is not None:
        a[..., band + 1 :] = 0.0
    return a.astype(dtype)


def _rel_err(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def _grid(sht):
    lat, lon = S.grid_lat_lon(sht)
    theta = np.pi / 2 - np.asarray(lat, np.float64)
    return theta[:, None], np.asarray(lon, np.float64)[None, :]


# ----------------------------------------------------------------------------- exactness


@pytest.mark.parametrize(("nlat", "lmax"), [(128, None), (17, None), (20, 12)])
def test_round_trip_float64(x64, nlat, lmax):
    sht = S.make_sht(nlat, lmax, dtype=jnp.float64)
    a = _random_coeffs(np.random.default_rng(0), (2,), sht.lmax)
    field = S.synthesis(sht, a)
    assert field.shape == (2, nlat, 2 * nlat) and field.dtype == jnp.float64
    back = S.analysis(sht, field)
    assert back.dtype == jnp.complex128
    err = _rel_err(back, a)
    assert err < 1e-12, err  # measured 3e-14 at nlat = 128
    # and grid -> coefficients -> grid is a projection that keeps band-limited fields
    assert _rel_err(S.synthesis(sht, back), field) < 1e-12


def test_round_trip_float32():
    sht = S.make_sht(128, dtype=jnp.float32)
    a = _random_coeffs(np.random.default_rng(1), (2,), sht.lmax, dtype=np.complex64)
    field = S.synthesis(sht, a)
    assert field.dtype == jnp.float32
    back = S.analysis(sht, field)
    assert back.dtype == jnp.complex64
    err = _rel_err(back, a)
    assert err < 1e-5, err  # measured 4e-7


@pytest.mark.parametrize("nlat", [16, 17, 32])
@pytest.mark.parametrize("n_fields", [1, 4, 16])
def test_round_trip_float32_on_every_longitude_path(nlat, n_fields):
    """On small grids and several fields the longitude transform is a dense product (from 4
    fields for the inverse, 16 also forward): the same accuracy as the FFT."""
    sht = S.make_sht(nlat, dtype=jnp.float32)
    a = _random_coeffs(np.random.default_rng(2), (n_fields,), sht.lmax, dtype=np.complex64)
    back = S.analysis(sht, S.synthesis(sht, a))
    assert _rel_err(back, a) < 1e-5


def test_dense_longitude_transform_choice():
    assert not S._dense_longitude_transform(64, 1, inverse=True)
    assert S._dense_longitude_transform(64, 4, inverse=True)
    assert not S._dense_longitude_transform(64, 4, inverse=False)
    assert S._dense_longitude_transform(64, 16, inverse=False)
    assert S._dense_longitude_transform(128, 16, inverse=True)
    assert not S._dense_longitude_transform(128, 1, inverse=True)
    assert not S._dense_longitude_transform(256, 64, inverse=True)


@pytest.mark.parametrize("nlat", [16, 17, 32, 64])
def test_dense_longitude_transform_equals_fft(x64, nlat, monkeypatch):
    """The matrix-product path of the longitude transform equals the FFT path, both ways."""
    sht = S.make_sht(nlat, dtype=jnp.float64)
    rng = np.random.default_rng(3)
    field = jnp.asarray(rng.standard_normal((2, nlat, 2 * nlat)))
    _, M, _, nh = sht.synthesis_table.shape
    g = jnp.asarray(rng.standard_normal((2, M, 2 * 2, nh)))
    monkeypatch.setattr(S, "_dense_longitude_transform", lambda *a, **k: True)
    dense_in, dense_out = S._fold_in(sht, field), S._fold_out(sht, g, (2,))
    monkeypatch.setattr(S, "_dense_longitude_transform", lambda *a, **k: False)
    fft_in, fft_out = S._fold_in(sht, field), S._fold_out(sht, g, (2,))
    assert dense_in.shape == fft_in.shape
    assert dense_out.shape == fft_out.shape == (2, nlat, 2 * nlat)
    assert _rel_err(dense_in, fft_in) < 1e-13
    assert _rel_err(dense_out, fft_out) < 1e-13


def test_analysis_zeros_outside_triangle(x64):
    sht = S.make_sht(12, dtype=jnp.float64)
    field = np.random.default_rng(2).standard_normal(sht.field_shape)
    a = np.asarray(S.analysis(sht, field))
    below = np.tril(np.ones(sht.coeffs_shape, bool), -1)  # m > l
    assert np.all(a[below] == 0.0)
    assert np.all(a[0].imag == 0.0)
    # synthesis ignores those entries
    junk = a.copy()
    junk[below] = 5.0 + 3.0j
    junk[0] += 7.0j
    np.testing.assert_array_equal(S.synthesis(sht, junk), S.synthesis(sht, a))


# ----------------------------------------------------------------------------- conventions


def test_harmonics_against_closed_forms(x64):
    """Normalisation and Condon-Shortley phase: Y_l^m = λ_l^m(cos θ) e^{imφ}."""
    sht = S.make_sht(16, dtype=jnp.float64)
    th, ph = _grid(sht)
    c, s = np.cos(th), np.sin(th)
    pi = np.pi
    closed = {  # (l, m): complex Y_l^m on the grid
        (0, 0): np.full_like(th, 0.5 / np.sqrt(pi)) + 0 * ph,
        (1, 0): np.sqrt(3 / (4 * pi)) * c + 0 * ph,
        (1, 1): -np.sqrt(3 / (8 * pi)) * s * np.exp(1j * ph),
        (2, 0): np.sqrt(5 / (16 * pi)) * (3 * c**2 - 1) + 0 * ph,
        (2, 1): -np.sqrt(15 / (8 * pi)) * s * c * np.exp(1j * ph),
        (2, 2): np.sqrt(15 / (32 * pi)) * s**2 * np.exp(2j * ph),
        (3, 3): -np.sqrt(35 / (64 * pi)) * s**3 * np.exp(3j * ph),
        (4, 2): 3 / 8 * np.sqrt(5 / (2 * pi)) * s**2 * (7 * c**2 - 1) * np.exp(2j * ph),
    }
    for (l, m), y in closed.items():
        for value, expected in ((1.0, y.real), (1.0j, -y.imag)):
            a = np.zeros(sht.coeffs_shape, complex)
            a[m, l] = value
            f = np.asarray(S.synthesis(sht, a))
            # a_l^m = v and a_l^{-m} = (-1)^m conj(v) give f = 2 Re(v Y_l^m) for m > 0
            scale = 1.0 if m == 0 else 2.0
            if m == 0 and value == 1.0j:
                continue  # no imaginary part for m = 0
            np.testing.assert_allclose(f, scale * expected, atol=1e-14, err_msg=f"{(l, m)}")
    # the table function itself against the same closed forms at arbitrary points
    x = np.array([-0.9, -0.2, 0.3, 0.99])
    p = S.assoc_legendre(2, x)
    np.testing.assert_allclose(p[1, 1], -np.sqrt(3 / (8 * pi)) * np.sqrt(1 - x**2), rtol=1e-14)
    np.testing.assert_allclose(p[2, 2], np.sqrt(15 / (32 * pi)) * (1 - x**2), rtol=1e-14)
    assert np.all(p[2, :2] == 0.0)  # zero where l < m


def test_assoc_legendre_against_scipy():
    sph_harm_y = pytest.importorskip("scipy.special").sph_harm_y
    theta = np.array([1e-3, 0.4, 1.3, 2.0, 3.1])
    lmax = 60
    p = S.assoc_legendre(lmax, np.cos(theta))
    l, m = np.meshgrid(np.arange(lmax + 1), np.arange(lmax + 1))
    ok = m <= l
    ref = sph_harm_y(l[ok][:, None], m[ok][:, None], theta[None, :], 0.0).real
    # values reach sqrt((2l + 1) / (4 pi)) ~ 3; near the pole cos(theta) itself is rounded
    np.testing.assert_allclose(p[m[ok], l[ok]], ref, rtol=1e-12, atol=1e-12)


def test_assoc_legendre_stable_to_degree_1000():
    """Addition theorem λ_l^0(x)^2 + 2 Σ_m λ_l^m(x)^2 = (2l + 1) / (4 pi) for all l <= 1000."""
    x = np.cos(np.array([1e-3, 0.05, 0.7, np.pi / 2, 2.5]))
    p = S.assoc_legendre(1000, x)
    assert np.all(np.isfinite(p))
    total = p[0] ** 2 + 2 * np.sum(p[1:] ** 2, axis=0)
    l = np.arange(1001)[:, None]
    err = np.max(np.abs(total / ((2 * l + 1) / (4 * np.pi)) - 1))
    assert err < 1e-10, err  # measured 1e-12


def test_gauss_legendre_rule():
    x, w = S.gauss_legendre(40)
    assert np.all(np.diff(x) < 0)  # north first
    np.testing.assert_allclose(x, -x[::-1], atol=0)
    for k in range(0, 80, 7):  # exact for degree <= 79
        np.testing.assert_allclose(np.sum(w * x**k), 2 / (k + 1) if k % 2 == 0 else 0, atol=1e-15)


# ----------------------------------------------------------------------------- operators


def test_harmonics_are_laplacian_eigenfunctions(x64):
    sht = S.make_sht(24, dtype=jnp.float64)
    lap = -sht.degrees * (sht.degrees + 1)
    for l, m, v in [(0, 0, 1.0), (3, 0, 1.0), (5, 2, 1.0j), (13, 13, 1.0), (23, 7, 0.5 - 2j)]:
        a = np.zeros(sht.coeffs_shape, complex)
        a[m, l] = v
        y = S.synthesis(sht, a)
        back = np.asarray(S.analysis(sht, y))
        np.testing.assert_allclose(back, a, atol=1e-13)  # one-hot
        np.testing.assert_allclose(S.apply_spectral(sht, y, lap), -l * (l + 1) * y, atol=1e-11)
    ev = np.asarray(S.laplacian_eigenvalues(sht))
    assert ev.shape == sht.coeffs_shape
    np.testing.assert_array_equal(ev[5], np.asarray(lap))


def test_laplacian_of_smooth_field_against_analytic(x64):
    """Δ g(n·r) = (1 - t^2) g''(t) - 2 t g'(t): here g = exp, n the x axis (not an eigenfunction)."""
    sht = S.make_sht(32, dtype=jnp.float64)
    th, ph = _grid(sht)
    t = np.sin(th) * np.cos(ph)
    f = np.exp(t)
    lap = S.apply_spectral(sht, f, -sht.degrees * (sht.degrees + 1))
    np.testing.assert_allclose(lap, (1 - t**2 - 2 * t) * np.exp(t), atol=1e-11)
    # and the spectral gain 1 is the identity on a smooth field
    np.testing.assert_allclose(S.apply_spectral(sht, f, jnp.ones(sht.lmax + 1)), f, atol=1e-13)


def test_quadrature_and_orthonormality(x64):
    sht = S.make_sht(20, dtype=jnp.float64)
    np.testing.assert_allclose(S.integrate(sht, jnp.ones(sht.field_shape)), 4 * np.pi, rtol=1e-14)
    # every real harmonic with l > 0 integrates to zero
    m_idx, l_idx = np.triu_indices(sht.lmax + 1)  # every [m, l] with m <= l
    a = np.zeros((l_idx.size, *sht.coeffs_shape), complex)
    a[np.arange(l_idx.size), m_idx, l_idx] = 1.0
    ys = S.synthesis(sht, a)
    ints = np.asarray(S.integrate(sht, ys))
    np.testing.assert_allclose(ints[l_idx > 0], 0.0, atol=1e-13)
    np.testing.assert_allclose(ints[l_idx == 0], np.sqrt(4 * np.pi), rtol=1e-14)  # Y_0^0
    # orthonormality of the real harmonics 2 Re Y_l^m: ∫ squared = 2 for m > 0, 1 for m = 0
    pairs = [
        ((2, 1), (2, 1)),
        ((5, 3), (5, 3)),
        ((5, 3), (6, 3)),
        ((7, 0), (7, 0)),
        ((4, 2), (4, 1)),
    ]
    for (l1, m1), (l2, m2) in pairs:
        y1 = ys[np.flatnonzero((m_idx == m1) & (l_idx == l1))[0]]
        y2 = ys[np.flatnonzero((m_idx == m2) & (l_idx == l2))[0]]
        norm = (1.0 if m1 == 0 else 2.0) if (l1, m1) == (l2, m2) else 0.0
        np.testing.assert_allclose(S.integrate(sht, y1 * y2), norm, atol=1e-13)


def test_spectral_operator_equals_apply_spectral(x64):
    sht = S.make_sht(15, 9, dtype=jnp.float64)  # odd nlat (an equator node), lmax < nlat - 1
    rng = np.random.default_rng(6)
    fields = rng.standard_normal((2, 3, *sht.field_shape))
    gains = rng.standard_normal(sht.lmax + 1)
    op = S.make_spectral_operator(sht, gains)
    assert op.matrix.dtype == jnp.float64
    expected = S.apply_spectral(sht, fields, gains)
    np.testing.assert_allclose(S.apply_operator(sht, op, fields), expected, atol=1e-12)
    out32 = S.apply_operator(sht, op, fields.astype(np.float32))
    assert out32.dtype == jnp.float32
    np.testing.assert_allclose(out32, expected, atol=1e-4)
    # differentiable in the gains, through the precomputation
    f0 = fields[0, 0]

    def loss(g, apply):
        return jnp.sum(apply(g) ** 2)

    ga = jax.grad(loss)(jnp.asarray(gains), lambda g: S.apply_spectral(sht, f0, g))
    go = jax.grad(loss)(
        jnp.asarray(gains), lambda g: S.apply_operator(sht, S.make_spectral_operator(sht, g), f0)
    )
    np.testing.assert_allclose(go, ga, rtol=1e-10)
    with pytest.raises(ValueError, match=r"gains must have shape \(lmax \+ 1,\) = \(10,\)"):
        S.make_spectral_operator(sht, np.ones((2, 10)))
    with pytest.raises(ValueError, match=r"operator must be a SpectralOperator .* \(2, 10, 8, 8\)"):
        S.apply_operator(sht, S.make_spectral_operator(S.make_sht(16), np.ones(16)), f0)
    op32 = S.make_spectral_operator(S.make_sht(15, 9, dtype=jnp.float32), np.ones(10))
    with pytest.raises(
        ValueError, match="field is float64 but the operator's matrices are float32"
    ):
        S.apply_operator(sht, op32, f0)


# ----------------------------------------------------------------------------- batching, autodiff


def test_batched_leading_axes(x64):
    sht = S.make_sht(10, dtype=jnp.float64)
    fields = np.random.default_rng(3).standard_normal((2, 3, *sht.field_shape))
    a = S.analysis(sht, fields)
    assert a.shape == (2, 3, *sht.coeffs_shape)
    np.testing.assert_allclose(a[1, 2], S.analysis(sht, fields[1, 2]), atol=1e-14)
    f = S.synthesis(sht, a)
    np.testing.assert_allclose(f[0, 1], S.synthesis(sht, a[0, 1]), atol=1e-14)
    # gains broadcast against the batch
    gains = np.random.default_rng(4).standard_normal((3, sht.lmax + 1))
    out = S.apply_spectral(sht, fields, gains)
    assert out.shape == fields.shape
    np.testing.assert_allclose(out[1, 2], S.apply_spectral(sht, fields[1, 2], gains[2]), atol=1e-13)
    out = S.apply_spectral(sht, fields[0, 0], gains)  # gains batch only
    assert out.shape == (3, *sht.field_shape)
    np.testing.assert_allclose(S.integrate(sht, fields).shape, (2, 3))


def test_jit_vmap_grad(x64):
    sht = S.make_sht(12, dtype=jnp.float64)
    rng = np.random.default_rng(5)
    fields = jnp.asarray(rng.standard_normal((4, *sht.field_shape)))
    # the SHT record is a pytree: pass it through jit as an argument
    jitted = jax.jit(S.analysis)(sht, fields)
    np.testing.assert_allclose(jitted, S.analysis(sht, fields), atol=1e-14)
    vmapped = jax.vmap(S.analysis, in_axes=(None, 0))(sht, fields)
    np.testing.assert_allclose(vmapped, S.analysis(sht, fields), atol=1e-14)

    gains0 = jnp.asarray(np.exp(-0.01 * np.arange(sht.lmax + 1)))

    @jax.jit
    def loss(field, gains):
        a = S.analysis(sht, field)
        smooth = S.synthesis(sht, gains * a)
        return jnp.sum(jnp.sin(smooth) ** 2) + jnp.sum(jnp.abs(a[..., 3]) ** 2)

    field0 = fields[0]
    gf, gg = jax.jit(jax.grad(loss, argnums=(0, 1)))(field0, gains0)
    direction = jnp.asarray(rng.standard_normal(field0.shape))
    h = 1e-6
    fd = (loss(field0 + h * direction, gains0) - loss(field0 - h * direction, gains0)) / (2 * h)
    np.testing.assert_allclose(jnp.vdot(gf, direction), fd, rtol=1e-7)
    dg = jnp.asarray(rng.standard_normal(gains0.shape))
    fd = (loss(field0, gains0 + h * dg) - loss(field0, gains0 - h * dg)) / (2 * h)
    np.testing.assert_allclose(jnp.vdot(gg, dg), fd, rtol=1e-7)


def test_dtypes(x64):
    sht64 = S.make_sht(8, dtype=jnp.float64)
    f32 = jnp.ones(sht64.field_shape, jnp.float32)
    assert S.analysis(sht64, f32).dtype == jnp.complex64  # follows the field
    assert S.apply_spectral(sht64, f32, jnp.ones(8)).dtype == jnp.float32
    assert S.synthesis(sht64, jnp.zeros(sht64.coeffs_shape, jnp.complex64)).dtype == jnp.float32
    assert S.analysis(sht64, np.ones(sht64.field_shape, np.int32)).dtype == jnp.complex128
    sht32 = S.make_sht(8, dtype=jnp.float32)
    assert sht32.dtype == jnp.float32
    with pytest.raises(ValueError, match=r"field is float64 .* make_sht\(\.\.\., dtype=float64\)"):
        S.analysis(sht32, np.ones(sht32.field_shape))


def test_grid_lat_lon():
    sht = S.make_sht(6)
    lat, lon = S.grid_lat_lon(sht)
    assert lat.shape == (6,) and lon.shape == (12,)
    assert np.all(np.diff(np.asarray(lat)) < 0)
    np.testing.assert_allclose(np.sin(lat), sht.cos_theta, atol=1e-6)
    np.testing.assert_allclose(lon[1], 2 * math.pi / 12, rtol=1e-6)


# ----------------------------------------------------------------------------- bad input


def test_bad_input():
    with pytest.raises(ValueError, match=r"lmax must be <= nlat - 1 = 7.*lmax=8 with nlat=8"):
        S.make_sht(8, lmax=8)
    with pytest.raises(ValueError, match="nlat must be an integer >= 1"):
        S.make_sht(0)
    with pytest.raises(ValueError, match="nlat must be an integer"):
        S.make_sht(8.0)
    sht = S.make_sht(8)
    with pytest.raises(ValueError, match=r"nlat, nlon\) = \(\.\.\., 8, 16\), got shape \(8, 15\)"):
        S.analysis(sht, jnp.zeros((8, 15)))
    with pytest.raises(ValueError, match=r"\(\.\.\., 8, 16\), got shape \(16,\)"):
        S.apply_spectral(sht, jnp.zeros(16), jnp.ones(8))
    with pytest.raises(ValueError, match="field must be real"):
        S.analysis(sht, jnp.zeros((8, 16), jnp.complex64))
    with pytest.raises(ValueError, match=r"coeffs must have shape .* \(\.\.\., 8, 8\), got shape"):
        S.synthesis(sht, jnp.zeros((8, 7), jnp.complex64))
    with pytest.raises(
        ValueError, match=r"gains must have shape \(\.\.\., lmax \+ 1\) = \(\.\.\., 8\)"
    ):
        S.apply_spectral(sht, jnp.zeros((8, 16)), jnp.ones(7))
    with pytest.raises(ValueError, match="dtype must be float32 or float64"):
        S.make_sht(8, dtype=jnp.int32)
    with pytest.raises(ValueError, match="dtype float64 needs 64-bit JAX"):
        S.make_sht(8, dtype=jnp.float64)  # x64 is off here
    with pytest.raises(ValueError, match="x must hold finite values in"):
        S.assoc_legendre(3, [1.5])
