"""Real spherical harmonic transforms on a Gauss-Legendre grid, in pure JAX.

Grid
----
``nlat`` latitudes at the Gauss-Legendre nodes ``x_k = cos(theta_k)`` (``theta`` the
colatitude), ordered north to south (``x`` decreasing, row 0 nearest the north pole), and
``nlon = 2 * nlat`` equispaced longitudes ``phi_j = 2 pi j / nlon`` starting at 0. A field is
an array ``(..., nlat, nlon)``; any leading axes are a batch.

Spherical harmonics
-------------------
Orthonormal complex harmonics with the Condon-Shortley phase (the physics convention of
``scipy.special.sph_harm_y`` and most textbooks):

.. math::

    Y_l^m(\\theta, \\phi) = \\lambda_l^m(\\cos\\theta)\\, e^{i m \\phi}, \\qquad
    \\lambda_l^m(x) = (-1)^m \\sqrt{\\frac{2l+1}{4\\pi}\\frac{(l-m)!}{(l+m)!}}\\,
    (1-x^2)^{m/2} \\frac{d^m P_l(x)}{dx^m},

so that ``Y_1^0 = sqrt(3/(4 pi)) cos(theta)``, ``Y_1^1 = -sqrt(3/(8 pi)) sin(theta) e^{i phi}``
and ``∫ Y_l^m conj(Y_l'^m') dΩ = δ_ll' δ_mm'``.

Coefficients
------------
A real field is ``f = Σ_l Σ_{m=-l..l} a_l^m Y_l^m`` with ``a_l^{-m} = (-1)^m conj(a_l^m)``;
only ``m >= 0`` is stored: a complex array ``(..., lmax + 1, lmax + 1)`` indexed ``[m, l]``
(order first, ``mmax = lmax``; a gain per degree ``g`` of shape ``(lmax + 1,)`` broadcasts
against it as ``g * coeffs``), so that

.. math::

    f = \\sum_l \\Big[a_l^0 Y_l^0 + 2\\,\\mathrm{Re} \\sum_{m=1}^{l} a_l^m Y_l^m\\Big],
    \\qquad a_l^m = \\int f\\, \\overline{Y_l^m}\\, d\\Omega .

:func:`analysis` returns exact zeros where ``m > l`` (below the diagonal of the ``[m, l]``
array) and a zero imaginary part for ``m = 0``; :func:`synthesis` ignores those entries. Every
order up to ``m = lmax`` is kept. With ``lmax <= nlat - 1`` a field band-limited to ``lmax`` is
recovered exactly (to rounding): Gauss-Legendre quadrature on ``nlat`` nodes is exact for
polynomials of degree ``2 nlat - 1``.

Algorithm
---------
A real Fourier transform along longitude (``rfft``, or on small grids with several fields a
dense matrix product of cosines and sines, where that measured faster), then per order ``m`` a
Legendre quadrature (analysis) or sum (synthesis) as batched real matrix products with tables
of ``λ_l^m`` precomputed once by :func:`make_sht`. The grid is symmetric about the equator and
``λ_l^m(-x) = (-1)^{l+m} λ_l^m(x)``, so the tables only hold the northern nodes and the degrees with ``l + m`` even
(odd) meet the sum (difference) of the two hemispheres: half the work of a full quadrature.
:func:`make_spectral_operator` goes one step further for fixed gains and multiplies analysis,
gains and synthesis into one ``(nh, nh)`` matrix per order and parity.

The tables are computed in float64 by the stable three-term recurrence of the orthonormal
functions in ``l`` for fixed ``m``, seeded by the square-root product recurrence for
``λ_m^m`` (no factorials, nothing overflows; :func:`assoc_legendre` is tested to
``lmax = 1000``). The Gauss-Legendre nodes are those of
:func:`numpy.polynomial.legendre.leggauss` polished by Newton steps (:func:`gauss_legendre`).
The tables are dense, about ``nlat^3 / 4`` floats each, which keeps this practical up to
``nlat`` of a few hundred.

Every function is pure and works under ``jax.jit``, ``jax.vmap`` and ``jax.grad``; the
:class:`SHT` record is a pytree of arrays (its sizes are read from array shapes), so it can be
closed over or passed as an argument.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from vbinfer._precision import HIGHEST
from vbinfer._typing import Array, ArrayLike

__all__ = [
    "SHT",
    "SpectralOperator",
    "analysis",
    "apply_operator",
    "apply_spectral",
    "assoc_legendre",
    "gauss_legendre",
    "grid_lat_lon",
    "integrate",
    "laplacian_eigenvalues",
    "make_sht",
    "make_spectral_operator",
    "synthesis",
]


class SHT(NamedTuple):
    """Precomputed tables of a spherical harmonic transform; build it with :func:`make_sht`.

    Attributes
    ----------
    cos_theta:
        ``(nlat,)`` Gauss-Legendre nodes ``cos(colatitude)``, north to south (decreasing).
    weights:
        ``(nlat,)`` Gauss-Legendre weights (they sum to 2; ``2 pi / nlon`` times them are the
        area weights of the grid points).
    degrees:
        ``(lmax + 1,)`` the degrees ``0 .. lmax`` (float).
    analysis_table:
        ``(2, lmax + 1, nh, n_even)``: ``[q, m, k, i] = w_k λ_l^m(cos_theta[k]) / nlon`` with
        ``l = 2i + ((q + m) % 2)`` (``q = 0``: the degrees with ``l + m`` even, symmetric about
        the equator; ``q = 1``: the antisymmetric ones), for the ``nh = ceil(nlat / 2)``
        northern nodes and ``n_even = ceil((lmax + 1) / 2)``; ``w_k = 2 pi weights[k]``
        (halved at the equator node of an odd ``nlat``, which both hemispheres count) and the
        ``1 / nlon`` of the forward FFT. Zero where ``l`` is below ``m`` or above ``lmax``.
    synthesis_table:
        ``(2, lmax + 1, n_even, nh)``: ``[q, m, i, k] = nlon λ_l^m(cos_theta[k])`` (the
        ``nlon`` undoes the ``1 / nlon`` of the inverse FFT).
    """

    cos_theta: Array
    weights: Array
    degrees: Array
    analysis_table: Array
    synthesis_table: Array

    @property
    def nlat(self) -> int:
        """Number of latitudes."""
        return self.cos_theta.shape[0]

    @property
    def nlon(self) -> int:
        """Number of longitudes, ``2 * nlat``."""
        return 2 * self.cos_theta.shape[0]

    @property
    def lmax(self) -> int:
        """Largest degree (and order) kept."""
        return self.degrees.shape[0] - 1

    @property
    def dtype(self) -> Any:
        """Real floating dtype of the tables."""
        return self.synthesis_table.dtype

    @property
    def field_shape(self) -> tuple[int, int]:
        """Shape of one grid field, ``(nlat, nlon)``."""
        return (self.nlat, self.nlon)

    @property
    def coeffs_shape(self) -> tuple[int, int]:
        """Shape of one set of coefficients, ``(lmax + 1, lmax + 1)`` indexed ``[m, l]``."""
        return (self.lmax + 1, self.lmax + 1)


# ----------------------------------------------------------------------------- tables


def assoc_legendre(lmax: int, x: ArrayLike, mmax: int | None = None) -> np.ndarray:
    """Fully normalised associated Legendre functions ``λ_l^m(x)`` (NumPy, float64).

    ``λ_l^m(cos θ) e^{imφ}`` is the orthonormal spherical harmonic ``Y_l^m`` with the
    Condon-Shortley phase (see the module docstring). Computed by the square-root product
    recurrence ``λ_m^m = -sqrt((2m+1)/(2m)) sin θ λ_{m-1}^{m-1}``, ``λ_0^0 = 1/sqrt(4 pi)``, and
    the three-term recurrence in ``l``

    .. math::

        \\lambda_l^m = a_l^m\\big(x \\lambda_{l-1}^m - \\lambda_{l-2}^m / a_{l-1}^m\\big),
        \\qquad a_l^m = \\sqrt{(4l^2 - 1)/(l^2 - m^2)},

    which is stable for all degrees (values far below 1e-300 underflow to zero, nothing
    overflows).

    Parameters
    ----------
    lmax:
        Largest degree, ``>= 0``.
    x:
        ``(n,)`` points in ``[-1, 1]`` (``cos θ``); a scalar is treated as ``(1,)``.
    mmax:
        Largest order, ``0 <= mmax <= lmax``; default ``lmax``.

    Returns
    -------
    ``(mmax + 1, lmax + 1, n)`` array ``[m, l, k]``, zero where ``l < m``.

    Examples
    --------
    >>> import numpy as np
    >>> p = assoc_legendre(2, [0.5])
    >>> bool(np.isclose(p[0, 1, 0], np.sqrt(3 / (4 * np.pi)) * 0.5))
    True
    """
    lmax = _check_int("lmax", lmax, 0)
    mmax = lmax if mmax is None else _check_int("mmax", mmax, 0)
    if mmax > lmax:
        raise ValueError(f"mmax must be <= lmax={lmax}, got mmax={mmax}")
    x = np.atleast_1d(np.asarray(x, dtype=np.float64))
    if x.ndim != 1:
        raise ValueError(f"x must be a 1-d array of cos(theta) values, got shape {x.shape}")
    if np.any(~np.isfinite(x)) or np.any(np.abs(x) > 1.0):
        bad = x[~(np.abs(x) <= 1.0)]
        raise ValueError(
            f"x must hold finite values in [-1, 1] (cos theta), got {bad.size} outside, "
            f"e.g. {bad[0]!r}"
        )
    out = np.zeros((mmax + 1, lmax + 1, x.size))
    # sin(theta) from (1 - x)(1 + x): no cancellation near the poles.
    s = np.sqrt((1.0 - x) * (1.0 + x))
    m = np.arange(mmax + 1, dtype=np.float64)
    rows = np.arange(mmax + 1)
    with np.errstate(under="ignore"):
        # diagonal λ_m^m: a running product of -sqrt((2m+1)/(2m)) sin(theta), no factorials
        diag = np.empty((mmax + 1, x.size))
        diag[0] = 1.0 / math.sqrt(4.0 * math.pi)
        for k in range(1, mmax + 1):
            diag[k] = diag[k - 1] * (-math.sqrt((2.0 * k + 1.0) / (2.0 * k)) * s)
        out[rows, rows] = diag
        # then λ_{m+j}^m for all m at once, j = 1, 2, ... (entries with m + j > lmax unused)
        prev2, prev1 = np.zeros_like(diag), diag
        a_prev = np.ones(mmax + 1)
        for j in range(1, lmax + 1):
            l = m + j
            a = np.sqrt((4.0 * l * l - 1.0) / (j * (2.0 * m + j)))
            cur = a[:, None] * (x * prev1 - prev2 / a_prev[:, None])
            keep = rows[rows + j <= lmax]
            out[keep, keep + j] = cur[keep]
            prev2, prev1, a_prev = prev1, cur, a
    return out


def gauss_legendre(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and weights on ``[-1, 1]``, nodes decreasing (NumPy, float64).

    Starts from :func:`numpy.polynomial.legendre.leggauss` and polishes the nodes with Newton
    steps on the three-term recurrence of ``P_n`` (weights ``2 / ((1 - x^2) P_n'(x)^2)``), then
    symmetrises: ``leggauss`` alone leaves quadrature errors of ~4e-13 at ``n = 128``, the
    polished rule ~1e-14.

    Examples
    --------
    >>> x, w = gauss_legendre(3)
    >>> bool(np.allclose(x, [np.sqrt(0.6), 0, -np.sqrt(0.6)]) and np.isclose(w.sum(), 2))
    True
    """
    n = _check_int("n", n, 1)
    x = np.polynomial.legendre.leggauss(n)[0][::-1].copy()
    for _ in range(2):
        p, dp = _legendre_p(n, x)
        x = x - p / dp
    x = 0.5 * (x - x[::-1])  # exactly symmetric, x = 0 at the centre of an odd rule
    _, dp = _legendre_p(n, x)
    w = 2.0 / ((1.0 - x) * (1.0 + x) * dp * dp)
    return x, 0.5 * (w + w[::-1])


def _legendre_p(n: int, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``P_n(x)`` and ``P_n'(x)`` by the three-term recurrence (``|x| < 1``)."""
    p_prev, p = np.ones_like(x), x.copy()
    if n == 0:
        return p_prev, np.zeros_like(x)
    for k in range(2, n + 1):
        p_prev, p = p, ((2 * k - 1) * x * p - (k - 1) * p_prev) / k
    return p, n * (p_prev - x * p) / ((1.0 - x) * (1.0 + x))


def make_sht(nlat: int, lmax: int | None = None, *, dtype: Any = None) -> SHT:
    """Build the tables of a real spherical harmonic transform on a Gauss-Legendre grid.

    Parameters
    ----------
    nlat:
        Number of Gauss-Legendre latitudes, ``>= 1``; the grid has ``nlon = 2 * nlat``
        longitudes.
    lmax:
        Largest degree and order, ``0 <= lmax <= nlat - 1``; default ``nlat - 1``.
    dtype:
        Real floating dtype of the tables, ``float32`` or ``float64``; default JAX's default
        float (float64 only with ``jax_enable_x64``). A float64 transform serves float32 fields
        too (its tables are cast per call); a float32 one refuses float64 fields.

    Returns
    -------
    :class:`SHT`. Its two tables hold about ``(lmax + 1)^2 * ceil(nlat / 2)`` floats each
    (4.2 MB each at ``nlat = 128`` in float32, 67 MB each at ``nlat = 256`` in float64).

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> sht = make_sht(16)
    >>> sht.field_shape, sht.coeffs_shape
    ((16, 32), (16, 16))
    >>> coeffs = analysis(sht, jnp.ones(sht.field_shape))
    >>> round(float(coeffs[0, 0].real), 5)  # a_0^0 = sqrt(4 pi)
    3.54491
    """
    nlat = _check_int("nlat", nlat, 1)
    if lmax is None:
        lmax = nlat - 1
    lmax = _check_int("lmax", lmax, 0)
    if lmax > nlat - 1:
        raise ValueError(
            f"lmax must be <= nlat - 1 = {nlat - 1} for exact Gauss-Legendre quadrature, "
            f"got lmax={lmax} with nlat={nlat}"
        )
    dtype = _resolve_dtype(dtype)
    nodes, weights = gauss_legendre(nlat)
    nh = (nlat + 1) // 2
    table = assoc_legendre(lmax, nodes[:nh])  # [m, l, k]
    n_even = (lmax + 2) // 2
    legendre = np.zeros((2, lmax + 1, n_even, nh))  # [p, m, i, k], l = 2i + p
    legendre[0] = table[:, 0::2]
    legendre[1, :, : (lmax + 1) // 2] = table[:, 1::2]
    del table
    legendre[:, 1::2] = legendre[::-1, 1::2].copy()  # [q, m, i, k], q = (l + m) % 2
    nlon = 2 * nlat
    q = 2.0 * math.pi * weights[:nh]
    if nlat % 2:
        q[nh - 1] *= 0.5
    synthesis_table = jnp.asarray(legendre * nlon, dtype)
    legendre *= q / nlon
    return SHT(
        cos_theta=jnp.asarray(nodes, dtype),
        weights=jnp.asarray(weights, dtype),
        degrees=jnp.arange(lmax + 1, dtype=dtype),
        analysis_table=jnp.asarray(np.swapaxes(legendre, -1, -2), dtype),
        synthesis_table=synthesis_table,
    )


# ----------------------------------------------------------------------------- transforms


def analysis(sht: SHT, field: ArrayLike) -> Array:
    """Spherical harmonic coefficients of a real field (forward transform).

    Parameters
    ----------
    sht:
        :class:`SHT` from :func:`make_sht`.
    field:
        ``(..., nlat, nlon)`` real values on the grid (rows north to south).

    Returns
    -------
    ``(..., lmax + 1, lmax + 1)`` complex coefficients ``a[m, l] = ∫ f conj(Y_l^m) dΩ``
    (complex64 for a float32 field, complex128 for float64); zero where ``m > l``.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> sht = make_sht(8)
    >>> lat, lon = grid_lat_lon(sht)
    >>> f = jnp.sin(lat)[:, None] * jnp.ones(sht.nlon)  # cos(theta) = sqrt(4 pi / 3) Y_1^0
    >>> a = analysis(sht, f)
    >>> round(float(a[0, 1].real), 5), round(float(jnp.abs(a).sum() - jnp.abs(a[0, 1])), 5)
    (2.04665, 0.0)
    """
    return _analysis(sht, _check_field(sht, field))


def synthesis(sht: SHT, coeffs: ArrayLike) -> Array:
    """Real field from spherical harmonic coefficients (inverse transform).

    Parameters
    ----------
    sht:
        :class:`SHT` from :func:`make_sht`.
    coeffs:
        ``(..., lmax + 1, lmax + 1)`` complex coefficients indexed ``[m, l]`` (layout of
        :func:`analysis`). Entries with ``m > l`` and the imaginary part of ``m = 0`` are
        ignored; a real array is taken as complex with zero imaginary part.

    Returns
    -------
    ``(..., nlat, nlon)`` real field, ``Σ_l [a_l^0 Y_l^0 + 2 Re Σ_{m>0} a_l^m Y_l^m]``.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> sht = make_sht(8)
    >>> a = jnp.zeros(sht.coeffs_shape, jnp.complex64).at[0, 0].set(1.0)
    >>> f = synthesis(sht, a)  # Y_0^0 = 1 / sqrt(4 pi) everywhere
    >>> bool(jnp.allclose(f, 0.5 / jnp.sqrt(jnp.pi)))
    True
    """
    return _synthesis(sht, _check_coeffs(sht, coeffs))


def apply_spectral(sht: SHT, field: ArrayLike, gains: ArrayLike) -> Array:
    """Apply an isotropic linear operator given by one gain per degree: ``Σ g_l a_l^m Y_l^m``.

    Equal to ``synthesis(sht, gains[..., None, :] * analysis(sht, field))`` without the
    conversions to and from the complex coefficient layout. Isotropic operators (diffusion,
    convolution with a kernel of the angular distance, powers of the Laplacian) are exactly the
    ones diagonal in this way.

    Parameters
    ----------
    sht:
        :class:`SHT` from :func:`make_sht`.
    field:
        ``(..., nlat, nlon)`` real field.
    gains:
        ``(lmax + 1,)`` real gain per degree ``l`` (e.g. ``-l (l + 1)`` for the Laplacian on the
        unit sphere), or ``(*gbatch, lmax + 1)`` broadcasting against the field's batch axes.
        May be traced and differentiated.

    Returns
    -------
    ``(..., nlat, nlon)`` field, batch axes broadcast between ``field`` and ``gains``.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> sht = make_sht(8)
    >>> lat, lon = grid_lat_lon(sht)
    >>> f = jnp.sin(lat)[:, None] * jnp.ones(sht.nlon)  # degree 1
    >>> lap = apply_spectral(sht, f, -sht.degrees * (sht.degrees + 1))
    >>> bool(jnp.allclose(lap, -2 * f, atol=1e-5))
    True
    """
    field = _check_field(sht, field)
    return _apply_spectral(sht, field, _check_gains(sht, gains, field.dtype))


class SpectralOperator(NamedTuple):
    """Analysis, gains and synthesis in one matrix per order; see :func:`make_spectral_operator`.

    Attributes
    ----------
    matrix:
        ``(2, lmax + 1, nh, nh)``: for each equatorial parity ``q`` and order ``m`` the matrix
        taking the folded Fourier modes of the ``nh`` northern latitudes to those of the
        output (analysis, gains, synthesis in one product).
    """

    matrix: Array


def make_spectral_operator(sht: SHT, gains: ArrayLike) -> SpectralOperator:
    """Precompute the operator of :func:`apply_spectral` for fixed gains.

    ``apply_operator(sht, make_spectral_operator(sht, g), f)`` equals
    ``apply_spectral(sht, f, g)`` with one matrix product per order instead of two (and no
    coefficient array), at the cost of ``2 (lmax + 1) ceil(nlat / 2)^2`` floats (4.2 MB at
    ``nlat = 128`` in float32) and, once, ``(lmax + 1) nlat^3 / 4`` multiply-adds. Worth it
    when the same gains are applied many times, e.g. the local coupling of a neural field at
    every time step; the gains may be traced (build the operator inside the jitted function,
    outside the time loop).

    Parameters
    ----------
    sht:
        :class:`SHT` from :func:`make_sht`.
    gains:
        ``(lmax + 1,)`` real gain per degree (use ``jax.vmap`` for several).

    Returns
    -------
    :class:`SpectralOperator` in the dtype of the transform's tables.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> sht = make_sht(8)
    >>> gains = jnp.exp(-0.1 * sht.degrees * (sht.degrees + 1))
    >>> op = make_spectral_operator(sht, gains)
    >>> f = jnp.cos(grid_lat_lon(sht)[0])[:, None] * jnp.ones(sht.nlon)
    >>> bool(jnp.allclose(apply_operator(sht, op, f), apply_spectral(sht, f, gains), atol=1e-6))
    True
    """
    gains = _check_gains(sht, gains, sht.dtype)
    if gains.ndim != 1:
        raise ValueError(
            f"gains must have shape (lmax + 1,) = ({sht.lmax + 1},) for an operator "
            f"(jax.vmap for several), got shape {tuple(gains.shape)}"
        )
    return SpectralOperator(_make_operator(sht, gains))


def apply_operator(sht: SHT, operator: SpectralOperator, field: ArrayLike) -> Array:
    """Apply a :class:`SpectralOperator` to a field (same result as :func:`apply_spectral`).

    Parameters
    ----------
    sht:
        The :class:`SHT` the operator was built with.
    operator:
        From :func:`make_spectral_operator`.
    field:
        ``(..., nlat, nlon)`` real field, at most as wide as the operator's dtype (a float64
        operator serves float32 fields too).

    Returns
    -------
    ``(..., nlat, nlon)`` field.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> sht = make_sht(8)
    >>> op = make_spectral_operator(sht, 2.0 * jnp.ones(sht.lmax + 1))  # times 2
    >>> bool(jnp.allclose(apply_operator(sht, op, jnp.ones(sht.field_shape)), 2.0))
    True
    """
    field = _check_field(sht, field)
    expected = (2, sht.lmax + 1, sht.synthesis_table.shape[3], sht.synthesis_table.shape[3])
    if not isinstance(operator, SpectralOperator) or tuple(operator.matrix.shape) != expected:
        got = getattr(getattr(operator, "matrix", None), "shape", type(operator).__name__)
        raise ValueError(
            f"operator must be a SpectralOperator built for this transform, with matrix shape "
            f"{expected}, got {got}"
        )
    _check_precision(operator.matrix, field.dtype, "field", what="the operator's matrices")
    return _apply_operator(sht, operator.matrix, field)


def integrate(sht: SHT, field: ArrayLike) -> Array:
    """Integral of a field over the unit sphere, ``∫ f dΩ``, by the grid's quadrature.

    Exact for fields band-limited to degree ``2 nlat - 1`` in latitude and ``nlon - 1`` in
    longitude (up to rounding); multiply by ``R^2`` for a sphere of radius ``R``.

    Parameters
    ----------
    sht:
        :class:`SHT` from :func:`make_sht`.
    field:
        ``(..., nlat, nlon)`` real field.

    Returns
    -------
    ``(...)`` integrals.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> sht = make_sht(8)
    >>> round(float(integrate(sht, jnp.ones(sht.field_shape))), 5)  # 4 pi
    12.56637
    """
    return _integrate(sht, _check_field(sht, field))


# ----------------------------------------------------------------------------- helpers


def grid_lat_lon(sht: SHT) -> tuple[Array, Array]:
    """Latitudes and longitudes of the grid, in radians.

    Returns
    -------
    ``lat``: ``(nlat,)`` latitudes ``pi/2 - theta`` in ``(-pi/2, pi/2)``, north to south
    (decreasing); ``lon``: ``(nlon,)`` longitudes ``2 pi j / nlon`` in ``[0, 2 pi)``.

    Examples
    --------
    >>> lat, lon = grid_lat_lon(make_sht(4))
    >>> lat.shape, lon.shape, bool(lat[0] > 0 > lat[-1])
    ((4,), (8,), True)
    """
    x = sht.cos_theta
    lat = jnp.arcsin(x)
    lon = jnp.arange(sht.nlon, dtype=x.dtype) * (2.0 * math.pi / sht.nlon)
    return lat, lon


def laplacian_eigenvalues(sht: SHT) -> Array:
    """Eigenvalues ``-l (l + 1)`` of the Laplace-Beltrami operator on the unit sphere.

    Returns
    -------
    ``(lmax + 1, lmax + 1)`` array in the coefficient layout ``[m, l]`` (the same in every
    row ``m``); divide by ``R^2`` for a sphere of radius ``R``. For a gain per degree use
    ``-sht.degrees * (sht.degrees + 1)``.

    Examples
    --------
    >>> ev = laplacian_eigenvalues(make_sht(4))
    >>> ev[0].tolist()
    [-0.0, -2.0, -6.0, -12.0]
    """
    l = sht.degrees
    return jnp.broadcast_to(-l * (l + 1.0), (l.shape[0], l.shape[0]))


# ----------------------------------------------------------------------------- internals
#
# "parts" is the real internal spectral layout (2, M, 2, B, n_even): the parity q of l + m
# (q = 0: the degrees l = m, m + 2, ... whose functions are symmetric about the equator; q = 1:
# the antisymmetric ones), the order m, real / imaginary part, the flattened batch, and i, with
# l = 2i + p, p = (q + m) % 2. Orders lead so that each transform is one batched matrix
# product over (q, m); the batch sits before the latitude / degree axis so that the only
# transposes move whole (batch x latitude) blocks; q = 0 meets the sum of the hemispheres and
# q = 1 their difference, so the large arrays see no per-order selection.
#
# The public functions validate their inputs in Python, then call these jitted kernels (one
# compiled executable per shape and dtype instead of a dispatch per primitive; inside a user's
# jit they are simply inlined).


@jax.jit
def _analysis(sht: SHT, field: Array) -> Array:
    return _parts_to_coeffs(sht, _analysis_parts(sht, field), field.shape[:-2])


@jax.jit
def _synthesis(sht: SHT, coeffs: Array) -> Array:
    return _synthesis_parts(sht, _coeffs_to_parts(sht, coeffs), coeffs.shape[:-2])


@jax.jit
def _apply_spectral(sht: SHT, field: Array, gains: Array) -> Array:
    batch = jnp.broadcast_shapes(field.shape[:-2], gains.shape[:-1])
    field = jnp.broadcast_to(field, (*batch, *field.shape[-2:]))
    n_even = sht.synthesis_table.shape[2]
    L = gains.shape[-1]
    if math.prod(gains.shape[:-1]) == 1:
        g = gains.reshape(1, L)
    else:
        g = jnp.broadcast_to(gains, (*batch, L)).reshape(math.prod(batch), L)
    g = jnp.pad(g, [(0, 0), (0, 2 * n_even - L)]).reshape(g.shape[0], n_even, 2)
    g = g.transpose(2, 0, 1)[:, None, None]  # [p, 1, 1, b, i]: the gain of l = 2i + p
    g = _swap_odd_orders(sht, g)  # [q, m, 1, b, i]
    parts = _analysis_parts(sht, field)
    return _synthesis_parts(sht, parts * g, batch)


@jax.jit
def _make_operator(sht: SHT, gains: Array) -> Array:
    n_even = sht.synthesis_table.shape[2]
    g = jnp.pad(gains, (0, 2 * n_even - gains.shape[0])).reshape(n_even, 2).T[:, None]
    g = _swap_odd_orders(sht, g)  # [q, m, i]
    a = sht.analysis_table.astype(gains.dtype) * g[:, :, None, :]
    return jnp.matmul(a, sht.synthesis_table.astype(gains.dtype), precision=HIGHEST)


@jax.jit
def _apply_operator(sht: SHT, matrix: Array, field: Array) -> Array:
    x = jnp.matmul(_fold_in(sht, field), matrix.astype(field.dtype), precision=HIGHEST)
    return _fold_out(sht, x, field.shape[:-2])


@jax.jit
def _integrate(sht: SHT, field: Array) -> Array:
    w = sht.weights.astype(field.dtype) * (2.0 * math.pi / sht.nlon)
    return jnp.einsum("...kj,k->...", field, w, precision=HIGHEST)


def _swap_odd_orders(sht: SHT, x: Array) -> Array:
    """Exchange the two halves of axis 0 at odd orders (axis 1): ``p <-> q = (p + m) % 2``."""
    even = (np.arange(sht.lmax + 1) % 2 == 0).reshape((1, -1) + (1,) * (x.ndim - 2))
    return jnp.where(even, x, jnp.flip(x, axis=0))


def _sizes(sht: SHT) -> tuple[int, int, int, int, int]:
    _, M, n_even, nh = sht.synthesis_table.shape
    return sht.nlat, sht.nlon, M, nh, n_even


# The Fourier transform along longitude can be a dense matrix product with ``(2M, nlon)``
# cosines and sines instead of an FFT: the forward product leaves the orders outermost, where
# the Legendre products want them, and the inverse one maps each parity part to the grid, where
# the hemispheres unfold; the FFT wants the orders innermost, a transposing copy on each side.
# The copies grow with the number of fields, the products' cost with ``nlon``. Measured on the
# 2-core VM (float32, 2026-11-26). apply_operator, us per call, FFT / dense forward / dense
# inverse: nlat 32, 4 fields 34.3 / 39.1 / 33.4, 8 fields 73.8 / 84.3 / 60.2, 16 fields
# 209 / 188 / 170 (both dense 149); nlat 64, 8 fields 358 / 478 / 395, 16 fields
# 878 / 896 / 673; at nlat 128 the FFT wins. A single field (a field simulator's step, us):
# nlat 32, FFT 32.6, dense inverse 34.5; nlat 64, 86.9 vs 120.5. (One-off A/B runs, each
# variant compiled in one process and timed interleaved; benchmarks/sht_throughput.py times
# the chosen paths.)
_DENSE_MAX_NLON = 64
_DENSE_MAX_NLON_MANY = 128
_SOME_FIELDS = 4
_MANY_FIELDS = 16


def _dense_longitude_transform(nlon: int, n_fields: int, inverse: bool) -> bool:
    """Whether the longitude transform of ``n_fields`` fields is a dense product (see above)."""
    if inverse:
        return (nlon <= _DENSE_MAX_NLON and n_fields >= _SOME_FIELDS) or (
            nlon <= _DENSE_MAX_NLON_MANY and n_fields >= _MANY_FIELDS
        )
    return nlon <= _DENSE_MAX_NLON and n_fields >= _MANY_FIELDS


def _dft_basis(M: int, nlon: int, dtype: Any, inverse: bool) -> np.ndarray:
    """``(M, 2, nlon)`` real DFT matrix: ``[m, 0, k] = cos``, ``[m, 1, k] = -sin`` of
    ``2 pi m k / nlon``; for the inverse scaled like ``irfft`` (``1 / nlon``, twice that for
    ``m > 0``; ``M <= nlon / 2``, so no Nyquist term)."""
    m = np.arange(M)[:, None]
    angle = 2.0 * np.pi * ((m * np.arange(nlon)[None, :]) % nlon) / nlon  # reduced exactly
    scale = np.where(m == 0, 1.0, 2.0) / nlon if inverse else np.ones((M, 1))
    return np.stack([scale * np.cos(angle), -scale * np.sin(angle)], axis=1).astype(dtype)


def _fold(x: Array, axis: int, nh: int) -> Array:
    """``x`` with ``nlat`` latitudes on ``axis`` -> ``(2, ...)`` with ``nh`` there: each northern
    node plus (row 0) and minus (row 1) its southern partner ``-x``."""
    north = jax.lax.slice_in_dim(x, 0, nh, axis=axis)
    south = jax.lax.slice_in_dim(jnp.flip(x, axis=axis), 0, nh, axis=axis)
    return jnp.stack([north + south, north - south])


def _unfold(sym: Array, anti: Array, axis: int, nlat: int) -> Array:
    """Inverse of :func:`_fold`: northern nodes ``sym + anti``, southern ``sym - anti``
    (mirrored), the equator node of an odd ``nlat`` once."""
    south = jnp.flip(sym - anti, axis=axis)
    south = jax.lax.slice_in_dim(south, nlat % 2, south.shape[axis], axis=axis)
    return jnp.concatenate([sym + anti, south], axis=axis)


def _fold_in(sht: SHT, field: Array) -> Array:
    """``(..., nlat, nlon)`` -> ``(2, M, 2 B, nh)``: Fourier modes per order, hemispheres folded.

    Row ``q = 0`` holds the sum of each northern node's modes and its southern partner's,
    ``q = 1`` their difference; then real / imaginary part and batch. Small grids go through a
    dense product and are folded in Fourier space; large ones are folded on the grid (the
    transform is linear), then one FFT.
    """
    nlat, nlon, M, nh, _ = _sizes(sht)
    B = math.prod(field.shape[:-2])
    f = field.reshape(B, nlat, nlon)
    if _dense_longitude_transform(nlon, B, inverse=False):
        basis = _dft_basis(M, nlon, f.dtype, inverse=False)  # (M, 2, nlon)
        spec = jnp.einsum("mrk,bjk->mrbj", basis, f, precision=HIGHEST)  # (M, 2, B, nlat)
        return _fold(spec, 3, nh).reshape(2, M, 2 * B, nh)
    folded = _fold(f, 1, nh)  # (2, B, nh, nlon)
    spec = jnp.fft.rfft(folded, axis=-1)[..., :M].transpose(0, 3, 1, 2)  # (2, M, B, nh)
    return jnp.stack([jnp.real(spec), jnp.imag(spec)], axis=2).reshape(2, M, 2 * B, nh)


def _fold_out(sht: SHT, g: Array, batch: tuple[int, ...]) -> Array:
    """``(2, M, 2 B, nh)`` symmetric / antisymmetric parts per order -> ``(*batch, nlat, nlon)``.

    On small grids each part goes to the grid by a dense product and the hemispheres are
    unfolded there; on large ones the modes are unfolded first, then one inverse FFT.
    """
    nlat, nlon, M, nh, _ = _sizes(sht)
    g = g.reshape(2, M, 2, -1, nh)
    if _dense_longitude_transform(nlon, g.shape[3], inverse=True):
        basis = _dft_basis(M, nlon, g.dtype, inverse=True)  # (M, 2, nlon)
        h = jnp.einsum("qmrbj,mrk->qbjk", g, basis, precision=HIGHEST)  # (2, B, nh, nlon)
        return _unfold(h[0], h[1], 1, nlat).reshape(*batch, nlat, nlon)
    g = jax.lax.complex(g[:, :, 0], g[:, :, 1])  # (2, M, B, nh)
    spec = _unfold(g[0], g[1], 2, nlat).transpose(1, 2, 0)  # (B, nlat, M)
    spec = jnp.pad(spec, [(0, 0), (0, 0), (0, nlon // 2 + 1 - M)])
    return jnp.fft.irfft(spec, n=nlon, axis=-1).reshape(*batch, nlat, nlon)


def _analysis_parts(sht: SHT, field: Array) -> Array:
    """``(..., nlat, nlon)`` -> parts ``(2, M, 2, B, n_even)``."""
    _, _, M, _, n_even = _sizes(sht)
    table = sht.analysis_table.astype(field.dtype)
    out = jnp.matmul(_fold_in(sht, field), table, precision=HIGHEST)
    return out.reshape(2, M, 2, -1, n_even)


def _synthesis_parts(sht: SHT, parts: Array, batch: tuple[int, ...]) -> Array:
    """parts ``(2, M, 2, B, n_even)`` -> ``(*batch, nlat, nlon)``."""
    _, _, M, _, n_even = _sizes(sht)
    x = parts.reshape(2, M, -1, n_even)
    table = sht.synthesis_table.astype(parts.dtype)
    return _fold_out(sht, jnp.matmul(x, table, precision=HIGHEST), batch)


def _parts_to_coeffs(sht: SHT, parts: Array, batch: tuple[int, ...]) -> Array:
    """parts ``(2, M, 2, B, n_even)`` -> complex ``(*batch, M, L)``."""
    M = sht.lmax + 1
    parts = _swap_odd_orders(sht, parts)  # [p, m, r, b, i]
    a = jax.lax.complex(parts[:, :, 0], parts[:, :, 1])  # (2, M, B, n_even)
    a = a.transpose(2, 1, 3, 0).reshape(a.shape[2], M, a.shape[3] * 2)  # [b, m, l = 2i + p]
    return a[..., :M].reshape(*batch, M, M)


def _coeffs_to_parts(sht: SHT, coeffs: Array) -> Array:
    """complex ``(..., M, L)`` -> parts ``(2, M, 2, B, n_even)``."""
    M = sht.lmax + 1
    n_even = sht.synthesis_table.shape[2]
    B = math.prod(coeffs.shape[:-2])
    c = coeffs.reshape(B, M, M)
    c = jnp.pad(c, [(0, 0), (0, 0), (0, 2 * n_even - M)]).reshape(B, M, n_even, 2)
    # the imaginary part of m = 0 does not exist for a real field: drop it
    parts = jnp.stack([jnp.real(c), jnp.imag(c).at[:, 0].set(0.0)])
    return _swap_odd_orders(sht, parts.transpose(4, 2, 0, 1, 3))  # [p, m, r, b, i] -> [q, ...]


# ----------------------------------------------------------------------------- validation


def _check_int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _resolve_dtype(dtype: Any) -> np.dtype:
    if dtype is None:
        return np.dtype(jnp.result_type(float))
    dt = np.dtype(dtype)
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype must be float32 or float64, got {dt}")
    if dt == np.float64 and not jax.config.jax_enable_x64:
        raise ValueError(
            "dtype float64 needs 64-bit JAX: run inside `with jax.enable_x64(True):` or set "
            "JAX_ENABLE_X64=1 (got dtype=float64 with x64 disabled)"
        )
    return dt


def _check_precision(
    sht: SHT | Array, dtype: Any, name: str, what: str = "the transform's tables"
) -> None:
    have = sht.dtype
    if np.finfo(dtype).bits > np.finfo(have).bits:
        raise ValueError(
            f"{name} is {np.dtype(dtype)} but {what} are {np.dtype(have)}; build the transform "
            f"(and any operator) with make_sht(..., dtype={np.dtype(dtype)})"
        )


def _check_field(sht: SHT, field: ArrayLike) -> Array:
    field = jnp.asarray(field)
    if jnp.issubdtype(field.dtype, jnp.complexfloating):
        raise ValueError(f"field must be real (these are real transforms), got {field.dtype}")
    if field.dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        field = field.astype(sht.dtype)  # integers, float16, bfloat16
    _check_precision(sht, field.dtype, "field")
    expected = sht.field_shape
    if field.ndim < 2 or tuple(field.shape[-2:]) != expected:
        raise ValueError(
            f"field must have shape (..., nlat, nlon) = (..., {expected[0]}, {expected[1]}), "
            f"got shape {tuple(field.shape)}"
        )
    return field


def _check_coeffs(sht: SHT, coeffs: ArrayLike) -> Array:
    coeffs = jnp.asarray(coeffs)
    real = (
        np.dtype(jnp.finfo(coeffs.dtype).dtype)
        if jnp.issubdtype(coeffs.dtype, jnp.inexact)
        else np.dtype(sht.dtype)
    )
    _check_precision(sht, real, "coeffs")
    expected = sht.coeffs_shape
    if coeffs.ndim < 2 or tuple(coeffs.shape[-2:]) != expected:
        raise ValueError(
            f"coeffs must have shape (..., mmax + 1, lmax + 1) = (..., {expected[0]}, "
            f"{expected[1]}), got shape {tuple(coeffs.shape)}"
        )
    complex_dtype = jnp.result_type(real, jnp.complex64)
    return coeffs.astype(complex_dtype)


def _check_gains(sht: SHT, gains: ArrayLike, dtype: Any) -> Array:
    gains = jnp.asarray(gains)
    if jnp.issubdtype(gains.dtype, jnp.complexfloating):
        raise ValueError(f"gains must be real (one gain per degree), got {gains.dtype}")
    n = sht.lmax + 1
    if gains.ndim < 1 or gains.shape[-1] != n:
        raise ValueError(
            f"gains must have shape (..., lmax + 1) = (..., {n}), one per degree, "
            f"got shape {tuple(gains.shape)}"
        )
    return gains.astype(dtype)
