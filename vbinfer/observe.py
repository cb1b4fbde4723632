"""Observation functions: from simulated activity to the quantities data are compared with.

Every function here is pure, differentiable where the maths allows (exceptions are stated),
and composes with ``jax.jit``, ``jax.vmap`` and ``jax.grad``. Bad input raises ``ValueError``
from Python before tracing: shapes and the integer settings (``nperseg``, ``window``, ``period``,
...) are static.

Axis conventions
----------------
* The **time axis** is an explicit ``axis`` argument (default ``0``: arrays shaped
  ``(n_time, ...)``). Sampling frequencies ``fs`` are in Hz; frequencies returned are in Hz.
* Functions that work across regions (:func:`functional_connectivity`, :func:`windowed_fc`,
  :func:`fcd`, :func:`project_lead_field`) take the **region axis to be the first axis of
  ``x`` that is not the time axis**. With the default ``axis=0`` this is the
  ``(n_time, n_regions, *batch)`` layout, the time-resolved version of vbinfer's
  ``(n_nodes, *batch)`` convention. Any remaining axes are batch axes and keep their order.
* Connectivity matrices are shaped ``(n_regions, n_regions, *batch)``.

Examples
--------
>>> import numpy as np
>>> from vbinfer.observe import functional_connectivity, spectral_peak, welch_psd
>>> t = np.arange(2000) / 1000.0                       # 2 s sampled at 1 kHz
>>> x = np.stack([np.sin(2 * np.pi * 10 * t), np.cos(2 * np.pi * 10 * t)], axis=1)
>>> freqs, psd = welch_psd(x, fs=1000.0, nperseg=500)  # x: (n_time, n_regions)
>>> psd.shape, spectral_peak(freqs, psd).tolist()
((251, 2), [10.0, 10.0])
>>> functional_connectivity(x).shape
(2, 2)
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from vbinfer._precision import HIGHEST
from vbinfer._typing import Array, ArrayLike
from vbinfer._validate import is_concrete

__all__ = [
    "band_power",
    "fc_corr",
    "fc_upper",
    "fcd",
    "functional_connectivity",
    "log_psd",
    "project_lead_field",
    "spectral_peak",
    "subsample",
    "temporal_average",
    "welch_psd",
    "windowed_fc",
    "zscore",
]

_WINDOWS = ("hann", "hamming", "blackman", "boxcar")
_MAX_SLICES = 8  # segments from at most this many static slices; else one gather


# --------------------------------------------------------------------------------------------
# validation helpers (run in Python, before tracing)
# --------------------------------------------------------------------------------------------


def _as_array(x: ArrayLike) -> Any:
    """A JAX array (or tracer) as it is; anything else as a NumPy array (no device work)."""
    return x if isinstance(x, jax.Array) else np.asarray(x)


def _as_float(name: str, x: ArrayLike) -> Any:
    """``x`` as an array (see :func:`_as_array`), checked to be real; converted in the cores."""
    arr = _as_array(x)
    if jnp.issubdtype(arr.dtype, jnp.complexfloating):
        raise ValueError(f"{name} must be real, got dtype {arr.dtype}")
    return arr


def _float_dtype(x: Any) -> np.dtype:
    """The floating dtype :func:`_f` gives ``x`` (integers / bools: the default float)."""
    if jnp.issubdtype(x.dtype, jnp.floating):
        return np.dtype(jax.dtypes.canonicalize_dtype(x.dtype))
    return np.dtype(jnp.result_type(float))


def _f(x: ArrayLike) -> Array:
    """Inside the jitted cores: ``x`` as a floating JAX array."""
    x = jnp.asarray(x)
    return x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(float)


def _time_axis(name: str, x: Array, axis: int, min_ndim: int = 1) -> int:
    """Normalise ``axis`` for ``x`` (which must have at least ``min_ndim`` dimensions)."""
    if isinstance(axis, bool) or not isinstance(axis, int | np.integer):
        raise ValueError(f"axis must be an int, got {axis!r}")
    if x.ndim < min_ndim:
        what = "(n_time,)" if min_ndim == 1 else "(n_time, n_regions, *batch) with time at `axis`"
        raise ValueError(
            f"{name} must have at least {min_ndim} dimension(s), {what}; got shape {x.shape}"
        )
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(
            f"axis must be in [{-x.ndim}, {x.ndim}) for {name} of shape {x.shape}, got {axis}"
        )
    return int(axis) % x.ndim


def _pos_int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value}")
    return int(value)


def _check_fs(fs: ArrayLike) -> None:
    if np.ndim(fs) != 0:
        raise ValueError(f"fs must be a scalar sampling frequency in Hz, got shape {np.shape(fs)}")
    if is_concrete(fs) and not (np.isfinite(float(fs)) and float(fs) > 0):
        raise ValueError(f"fs must be a finite sampling frequency > 0 (Hz), got {float(fs)!r}")


def _region_axes(name: str, x: Any, axis: int) -> tuple[int, int]:
    """``(time axis, region axis)``: the region axis is the first axis that is not time."""
    ax = _time_axis(name, x, axis, min_ndim=2)
    return ax, (1 if ax == 0 else 0)


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _safe_inv_std(var: Array) -> Array:
    """``1 / sqrt(var)`` where ``var > 0`` and ``0`` elsewhere, with finite gradients."""
    pos = var > 0
    return jnp.where(pos, 1.0 / jnp.sqrt(jnp.where(pos, var, 1.0)), 0.0)


def zscore(x: ArrayLike, axis: int = 0) -> Array:
    """Standardise ``x`` along the time axis: zero mean, unit (population, ``ddof=0``) variance.

    Parameters
    ----------
    x:
        ``(n_time, ...)`` (time at ``axis``), any units.
    axis:
        Time axis.

    Returns
    -------
    Array
        Same shape as ``x``, dimensionless. A constant signal (zero variance) maps to all
        zeros instead of NaN, and its gradient stays finite. (The signal is shifted by its
        first sample before centring, so constants give exactly zero variance.)

    Examples
    --------
    >>> import numpy as np
    >>> [round(v, 4) for v in zscore(np.array([1.0, 2.0, 3.0])).tolist()]
    [-1.2247, 0.0, 1.2247]
    """
    x = _as_float("x", x)
    return _zscore(x, _time_axis("x", x, axis))


@partial(jax.jit, static_argnums=1)
def _zscore(x: Array, ax: int) -> Array:
    x = _f(x)
    # shifting by the first sample makes a constant exactly zero (and helps accuracy)
    x = x - jax.lax.slice_in_dim(x, 0, 1, axis=ax)
    xc = x - jnp.mean(x, axis=ax, keepdims=True)
    var = jnp.mean(xc * xc, axis=ax, keepdims=True)
    return xc * _safe_inv_std(var)


def _segments(x: Array, nperseg: int, step: int) -> Array:
    """Overlapping segments of the last axis: ``(..., n_time)`` -> ``(..., n_seg, nperseg)``.

    Segment ``i`` is ``x[..., i * step : i * step + nperseg]``; the tail that does not fill a
    segment is dropped. When ``step`` divides ``nperseg`` with a small ratio (e.g. 50 % overlap)
    the segments are built from a reshape into ``step``-long blocks and ``nperseg // step``
    static slices; otherwise with one gather over a static index table.
    """
    n_time = x.shape[-1]
    n_seg = (n_time - nperseg) // step + 1
    r = nperseg // step
    if nperseg % step == 0 and r <= _MAX_SLICES:
        blocks = x[..., : (n_seg + r - 1) * step].reshape(*x.shape[:-1], n_seg + r - 1, step)
        if r == 1:
            return blocks
        return jnp.concatenate([blocks[..., j : j + n_seg, :] for j in range(r)], axis=-1)
    idx = np.arange(n_seg)[:, None] * step + np.arange(nperseg)[None, :]
    return x[..., idx]


def _window(window: str | ArrayLike, nperseg: int, dtype: np.dtype) -> Any:
    """Periodic (DFT-even) window, as ``scipy.signal.get_window(window, nperseg)``."""
    if isinstance(window, str):
        n = np.arange(nperseg)
        c = 2.0 * np.pi * n / nperseg
        if window == "hann":
            w = 0.5 - 0.5 * np.cos(c)
        elif window == "hamming":
            w = 0.54 - 0.46 * np.cos(c)
        elif window == "blackman":
            w = 0.42 - 0.5 * np.cos(c) + 0.08 * np.cos(2.0 * c)
        elif window == "boxcar":
            w = np.ones(nperseg)
        else:
            raise ValueError(f"window must be one of {_WINDOWS} or an array, got {window!r}")
        return w.astype(dtype)
    window = _as_float("window", window)
    if window.shape != (nperseg,):
        raise ValueError(
            f"window must be a name or an array of shape (nperseg,) = ({nperseg},), "
            f"got shape {window.shape}"
        )
    return window


def _detrend_last(seg: Array, detrend: str | bool | None) -> Array:
    """Detrend each segment along the last axis (``"constant"``, ``"linear"`` or none)."""
    if detrend is None or detrend is False:
        return seg
    seg = seg - jnp.mean(seg, axis=-1, keepdims=True)
    if detrend == "constant":
        return seg
    n = seg.shape[-1]
    t = np.arange(n, dtype=np.float64) - (n - 1) / 2.0
    tt = float(np.sum(t * t))
    if tt == 0.0:  # a single sample: the line is the constant
        return seg
    t = jnp.asarray(t.astype(np.dtype(seg.dtype)))
    slope = jnp.sum(seg * t, axis=-1, keepdims=True) / tt
    return seg - slope * t


# --------------------------------------------------------------------------------------------
# spectra
# --------------------------------------------------------------------------------------------


def welch_psd(
    x: ArrayLike,
    fs: float,
    nperseg: int,
    noverlap: int | None = None,
    window: str | ArrayLike = "hann",
    detrend: str | bool | None = "constant",
    scaling: str = "density",
    axis: int = 0,
) -> tuple[Array, Array]:
    """Power spectral density by Welch's method (as ``scipy.signal.welch``, one-sided, mean).

    The signal is cut into segments of ``nperseg`` samples overlapping by ``noverlap`` (the tail
    that does not fill a segment is dropped), each segment is detrended and multiplied by the
    window, and the squared magnitudes of their real FFTs are averaged. Matches
    ``scipy.signal.welch(x, fs, window, nperseg, noverlap, detrend=detrend, scaling=scaling,
    axis=axis)`` to floating-point precision (``nfft = nperseg``, ``average="mean"``).
    Differentiable in ``x`` (and ``fs``).

    Parameters
    ----------
    x:
        Real signal, ``(n_time, ...)`` with time at ``axis``; any units ``[u]``.
    fs:
        Sampling frequency in Hz (a scalar, e.g. ``1000 / dt`` for ``dt`` in ms).
    nperseg:
        Segment length in samples, ``1 <= nperseg <= n_time`` (static).
    noverlap:
        Overlap between segments in samples, ``0 <= noverlap < nperseg``; default
        ``nperseg // 2`` (static).
    window:
        ``"hann"`` (default), ``"hamming"``, ``"blackman"``, ``"boxcar"`` (periodic windows, as
        ``scipy.signal.get_window``) or an array of shape ``(nperseg,)``.
    detrend:
        ``"constant"`` (remove each segment's mean, default), ``"linear"`` (remove each
        segment's least-squares line) or ``None`` / ``False``.
    scaling:
        ``"density"`` (``[u]^2 / Hz``, default) or ``"spectrum"`` (``[u]^2``).
    axis:
        Time axis of ``x``.

    Returns
    -------
    freqs : Array
        ``(nperseg // 2 + 1,)``, Hz: ``k * fs / nperseg``.
    psd : Array
        ``x``'s shape with the time axis replaced by the frequency axis (same position).

    Examples
    --------
    >>> import numpy as np
    >>> t = np.arange(4000) / 1000.0                    # 4 s at 1 kHz
    >>> freqs, psd = welch_psd(np.sin(2 * np.pi * 40.0 * t), fs=1000.0, nperseg=1000)
    >>> psd.shape, float(freqs[np.argmax(psd)])
    ((501,), 40.0)
    """
    x, win, kw = _welch_args(x, fs, nperseg, noverlap, window, detrend, scaling, axis)
    return _welch(x, fs, win, **kw)


def _welch_args(
    x: ArrayLike,
    fs: float,
    nperseg: int,
    noverlap: int | None,
    window: str | ArrayLike,
    detrend: str | bool | None,
    scaling: str,
    axis: int,
) -> tuple[Any, Any, dict[str, Any]]:
    """Validate :func:`welch_psd`'s arguments; return ``x``, the window and static settings."""
    x = _as_float("x", x)
    ax = _time_axis("x", x, axis)
    n_time = x.shape[ax]
    _check_fs(fs)
    if isinstance(nperseg, bool) or not isinstance(nperseg, int | np.integer) or nperseg < 1:
        raise ValueError(f"nperseg must be an int >= 1, got {nperseg!r}")
    if nperseg > n_time:
        raise ValueError(
            f"nperseg must be <= the number of samples along axis {axis} "
            f"(n_time = {n_time}), got {nperseg}"
        )
    nperseg = int(nperseg)
    if noverlap is None:
        noverlap = nperseg // 2
    if isinstance(noverlap, bool) or not isinstance(noverlap, int | np.integer):
        raise ValueError(
            f"noverlap must be an int in [0, nperseg) = [0, {nperseg}), got {noverlap!r}"
        )
    if not 0 <= noverlap < nperseg:
        raise ValueError(f"noverlap must be in [0, nperseg) = [0, {nperseg}), got {noverlap}")
    if not any(detrend is d for d in (None, False)) and detrend not in ("constant", "linear"):
        raise ValueError(f"detrend must be 'constant', 'linear', None or False, got {detrend!r}")
    if scaling not in ("density", "spectrum"):
        raise ValueError(f"scaling must be 'density' or 'spectrum', got {scaling!r}")
    win = _window(window, nperseg, _float_dtype(x))
    step = nperseg - int(noverlap)
    kw = {"nperseg": nperseg, "step": step, "detrend": detrend or None, "scaling": scaling}
    return x, win, {**kw, "ax": ax}


@partial(jax.jit, static_argnames=("nperseg", "step", "detrend", "scaling", "ax"))
def _welch(
    x: Array,
    fs: Array,
    win: Array,
    *,
    nperseg: int,
    step: int,
    detrend: str | None,
    scaling: str,
    ax: int,
) -> tuple[Array, Array]:
    x = _f(x)
    win = jnp.asarray(win).astype(x.dtype)
    xt = jnp.moveaxis(x, ax, -1)
    seg = _detrend_last(_segments(xt, nperseg, step), detrend)
    spec = jnp.fft.rfft(seg * win, axis=-1)
    power = jnp.mean(spec.real**2 + spec.imag**2, axis=-2)  # (..., n_freq)
    if scaling == "density":
        scale = 1.0 / (fs * jnp.sum(win * win))
    else:
        scale = 1.0 / jnp.sum(win) ** 2
    n_freq = nperseg // 2 + 1
    # one-sided: double every bin but DC and (for even nperseg) Nyquist
    last = n_freq - 1 if nperseg % 2 == 0 else n_freq
    onesided = np.ones(n_freq)
    onesided[1:last] = 2.0
    psd = power * (scale * jnp.asarray(onesided.astype(np.dtype(x.dtype))))
    freqs = jnp.arange(n_freq, dtype=x.dtype) * (fs / nperseg)
    return freqs.astype(x.dtype), jnp.moveaxis(psd.astype(x.dtype), -1, ax)


def log_psd(
    x: ArrayLike,
    fs: float,
    nperseg: int,
    noverlap: int | None = None,
    window: str | ArrayLike = "hann",
    detrend: str | bool | None = "constant",
    scaling: str = "density",
    axis: int = 0,
    floor: float = 1e-30,
) -> tuple[Array, Array]:
    """``log10(psd + floor)`` of :func:`welch_psd`, a common summary for spectral likelihoods.

    Parameters
    ----------
    x, fs, nperseg, noverlap, window, detrend, scaling, axis:
        As :func:`welch_psd`.
    floor:
        Absolute floor added to the PSD before the log, in the PSD's units (``[u]^2 / Hz``);
        it keeps ``log10(0)`` finite. The default only guards against zeros; for losses on
        signals whose spectra span many decades, a floor relative to the signal's power
        (e.g. ``1e-8 * variance / fs``) gives better-conditioned gradients.

    Returns
    -------
    freqs : Array
        ``(nperseg // 2 + 1,)``, Hz.
    log_power : Array
        ``log10(psd + floor)``, shaped as ``psd``.

    Examples
    --------
    >>> import numpy as np
    >>> freqs, lp = log_psd(np.zeros(256), fs=100.0, nperseg=64)
    >>> lp.shape, lp.tolist()[3]
    ((33,), -30.0)
    """
    if np.ndim(floor) != 0:
        raise ValueError(f"floor must be a scalar, got shape {np.shape(floor)}")
    if is_concrete(floor) and not (np.isfinite(float(floor)) and float(floor) >= 0):
        raise ValueError(f"floor must be a finite scalar >= 0, got {floor!r}")
    x, win, kw = _welch_args(x, fs, nperseg, noverlap, window, detrend, scaling, axis)
    return _log_welch(x, fs, win, floor, **kw)


@partial(jax.jit, static_argnames=("nperseg", "step", "detrend", "scaling", "ax"))
def _log_welch(x: Array, fs: Array, win: Array, floor: Array, **kw: Any) -> tuple[Array, Array]:
    freqs, psd = _welch(x, fs, win, **kw)
    return freqs, jnp.log10(psd + jnp.asarray(floor, psd.dtype))


def _check_spectrum(freqs: ArrayLike, psd: ArrayLike, axis: int) -> tuple[Array, Array, int]:
    freqs = _as_float("freqs", freqs)
    psd = _as_float("psd", psd)
    ax = _time_axis("psd", psd, axis)
    if freqs.ndim != 1 or freqs.shape[0] != psd.shape[ax]:
        raise ValueError(
            f"freqs must have shape (n_freq,) = ({psd.shape[ax]},) to match psd of shape "
            f"{psd.shape} along axis {axis}, got shape {freqs.shape}"
        )
    return freqs, psd, ax


def _check_band(band: Any) -> tuple[float, float]:
    if np.shape(band) != (2,):
        raise ValueError(f"band must be a pair (f_low, f_high) in Hz, got {band!r}")
    lo, hi = (float(b) for b in band)
    if not (lo < hi) or lo < 0:
        raise ValueError(f"band must satisfy 0 <= f_low < f_high (Hz), got ({lo}, {hi})")
    return lo, hi


def band_power(freqs: ArrayLike, psd: ArrayLike, band: Sequence[float], axis: int = 0) -> Array:
    """Power in a frequency band: ``sum(psd[f_low <= freqs <= f_high]) * df``.

    A rectangle-rule integral of a density PSD over the bins whose centre lies in the closed
    band, ``df = freqs[1] - freqs[0]`` (uniform frequencies, as from :func:`welch_psd`).
    Differentiable in ``psd``.

    Parameters
    ----------
    freqs:
        ``(n_freq,)``, Hz, uniformly spaced.
    psd:
        Density PSD (``[u]^2 / Hz``) with the frequency axis at ``axis``.
    band:
        ``(f_low, f_high)`` in Hz with ``0 <= f_low < f_high`` (static).
    axis:
        Frequency axis of ``psd``.

    Returns
    -------
    Array
        ``[u]^2``; ``psd``'s shape without the frequency axis.

    Examples
    --------
    >>> import numpy as np
    >>> freqs = np.arange(6) * 2.0                       # 0, 2, ..., 10 Hz
    >>> float(band_power(freqs, np.ones(6), (4.0, 8.0)))  # 3 bins of width 2 Hz
    6.0
    """
    freqs, psd, ax = _check_spectrum(freqs, psd, axis)
    lo, hi = _check_band(band)
    if freqs.shape[0] < 2:
        raise ValueError(f"freqs must have at least 2 entries, got shape {freqs.shape}")
    if is_concrete(freqs):
        f = np.asarray(freqs)
        if not np.any((f >= lo) & (f <= hi)):
            raise ValueError(
                f"band ({lo}, {hi}) Hz contains no frequency bin; freqs span "
                f"[{f.min()}, {f.max()}] Hz with spacing {f[1] - f[0]}"
            )
    return _band_power(freqs, psd, lo, hi, ax)


@partial(jax.jit, static_argnums=(2, 3, 4))
def _band_power(freqs: Array, psd: Array, lo: float, hi: float, ax: int) -> Array:
    freqs, psd = _f(freqs), _f(psd)
    df = freqs[1] - freqs[0]
    mask = ((freqs >= lo) & (freqs <= hi)).astype(psd.dtype)
    shape = [1] * psd.ndim
    shape[ax] = -1
    return jnp.sum(psd * mask.reshape(shape), axis=ax) * df


def spectral_peak(
    freqs: ArrayLike,
    psd: ArrayLike,
    band: Sequence[float] | None = None,
    axis: int = 0,
) -> Array:
    """Frequency of the largest PSD value (argmax), optionally within a band.

    Not differentiable: the result is piecewise constant in ``psd`` (its gradient is zero).

    Parameters
    ----------
    freqs:
        ``(n_freq,)``, Hz.
    psd:
        PSD with the frequency axis at ``axis``.
    band:
        Optional ``(f_low, f_high)`` in Hz: only bins with ``f_low <= freqs <= f_high`` count
        (e.g. to skip the DC bin). Static.
    axis:
        Frequency axis of ``psd``.

    Returns
    -------
    Array
        Peak frequency in Hz, ``psd``'s shape without the frequency axis.

    Examples
    --------
    >>> import numpy as np
    >>> freqs = np.arange(5) * 1.0
    >>> float(spectral_peak(freqs, np.array([9.0, 1.0, 3.0, 2.0, 0.0]), band=(1.0, 4.0)))
    2.0
    """
    freqs, psd, ax = _check_spectrum(freqs, psd, axis)
    lims = None
    if band is not None:
        lims = _check_band(band)
        if is_concrete(freqs):
            f = np.asarray(freqs)
            if not np.any((f >= lims[0]) & (f <= lims[1])):
                raise ValueError(f"band {lims} Hz contains no frequency bin of freqs")
    return _spectral_peak(freqs, psd, lims, ax)


@partial(jax.jit, static_argnums=(2, 3))
def _spectral_peak(freqs: Array, psd: Array, lims: tuple[float, float] | None, ax: int) -> Array:
    freqs, psd = _f(freqs), _f(psd)
    if lims is not None:
        inside = (freqs >= lims[0]) & (freqs <= lims[1])
        shape = [1] * psd.ndim
        shape[ax] = -1
        psd = jnp.where(inside.reshape(shape), psd, -jnp.inf)
    return freqs[jnp.argmax(psd, axis=ax)]


# --------------------------------------------------------------------------------------------
# functional connectivity
# --------------------------------------------------------------------------------------------


def _corr_first(z: Array) -> Array:
    """Correlation matrix from z-scored ``(n_time, n, *batch)`` -> ``(n, n, *batch)``."""
    n_time, n = z.shape[0], z.shape[1]
    c = jnp.einsum("tr...,ts...->rs...", z, z, precision=HIGHEST) / n_time
    eye = jnp.eye(n, dtype=bool).reshape((n, n) + (1,) * (z.ndim - 2))
    return jnp.where(eye, jnp.ones((), z.dtype), c)


def functional_connectivity(x: ArrayLike, axis: int = 0) -> Array:
    """Functional connectivity: Pearson correlations between regions' time series.

    Parameters
    ----------
    x:
        ``(n_time, n_regions, *batch)`` for ``axis=0``: time at ``axis``, regions on the first
        other axis, any remaining axes are batch axes. Needs ``n_time >= 2``.
    axis:
        Time axis.

    Returns
    -------
    Array
        ``(n_regions, n_regions, *batch)``, equal to ``numpy.corrcoef`` of each batch member's
        regions (up to rounding). The diagonal is exactly 1. A region with zero variance (a
        constant signal) has correlation 0 with every other region instead of NaN, and
        gradients stay finite.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[0.0, 0.0, 1.0], [1.0, 2.0, 1.0], [2.0, 4.0, 1.0]])  # (3 time, 3 regions)
    >>> np.round(functional_connectivity(x), 6).tolist()  # region 2 is constant
    [[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    """
    x = _as_float("x", x)
    ax, _ = _region_axes("x", x, axis)
    if x.shape[ax] < 2:
        raise ValueError(f"x needs at least 2 samples along axis {axis}, got shape {x.shape}")
    return _fc(x, ax)


@partial(jax.jit, static_argnums=1)
def _fc(x: Array, ax: int) -> Array:
    return _corr_first(_zscore(jnp.moveaxis(_f(x), ax, 0), 0))


def windowed_fc(x: ArrayLike, window: int, step: int, axis: int = 0) -> Array:
    """Functional connectivity in sliding windows.

    Window ``i`` covers samples ``[i * step, i * step + window)`` along the time axis; the tail
    that does not fill a window is dropped, so ``n_windows = (n_time - window) // step + 1``.

    Parameters
    ----------
    x:
        ``(n_time, n_regions, *batch)`` (time at ``axis``, regions on the first other axis).
    window:
        Window length in samples, ``2 <= window <= n_time`` (static).
    step:
        Shift between windows in samples, ``>= 1`` (static).
    axis:
        Time axis.

    Returns
    -------
    Array
        ``(n_windows, n_regions, n_regions, *batch)``: :func:`functional_connectivity` of each
        window.

    Examples
    --------
    >>> import numpy as np
    >>> windowed_fc(np.ones((100, 4)), window=20, step=10).shape
    (9, 4, 4)
    """
    x, ax, window, step = _windowed_args(x, window, step, axis)
    return _windowed_fc(x, ax, window, step)


def _windowed_args(x: ArrayLike, window: int, step: int, axis: int) -> tuple[Any, int, int, int]:
    x = _as_float("x", x)
    ax, _ = _region_axes("x", x, axis)
    n_time = x.shape[ax]
    window = _pos_int("window", window, minimum=2)
    step = _pos_int("step", step)
    if window > n_time:
        raise ValueError(
            f"window must be <= the number of samples along axis {axis} (n_time = {n_time}), "
            f"got {window}"
        )
    return x, ax, window, step


@partial(jax.jit, static_argnums=(1, 2, 3))
def _windowed_fc(x: Array, ax: int, window: int, step: int) -> Array:
    xt = jnp.moveaxis(_f(x), ax, 0)
    seg = _segments(jnp.moveaxis(xt, 0, -1), window, step)  # (n, *batch, n_win, window)
    seg = jnp.moveaxis(seg, (-1, -2), (0, 1))  # (window, n_win, n, *batch)
    z = _zscore(seg, 0)
    c = jnp.einsum("twr...,tws...->wrs...", z, z, precision=HIGHEST) / window
    n = xt.shape[1]
    eye = jnp.eye(n, dtype=bool).reshape((1, n, n) + (1,) * (xt.ndim - 2))
    return jnp.where(eye, jnp.ones((), c.dtype), c)


def fc_upper(fc: ArrayLike) -> Array:
    """Upper-triangle entries (diagonal excluded) of connectivity matrices.

    Parameters
    ----------
    fc:
        ``(n, n, *batch)``.

    Returns
    -------
    Array
        ``(n * (n - 1) // 2, *batch)``, row-major order of ``numpy.triu_indices(n, k=1)``.

    Examples
    --------
    >>> import numpy as np
    >>> fc_upper(np.arange(9.0).reshape(3, 3)).tolist()
    [1.0, 2.0, 5.0]
    """
    fc = _as_array(fc)
    if fc.ndim < 2 or fc.shape[0] != fc.shape[1]:
        raise ValueError(f"fc must have shape (n, n, *batch), got shape {fc.shape}")
    return _upper_jit(fc)


def _upper(fc: Array) -> Array:
    iu, ju = np.triu_indices(fc.shape[0], k=1)
    return jnp.asarray(fc)[iu, ju]


_upper_jit = jax.jit(_upper)


@jax.jit
def _fc_corr(fc_a: Array, fc_b: Array) -> Array:
    """Pearson correlation of the upper triangles (zero-variance safe: gives 0)."""
    ua, ub = _upper(_f(fc_a)), _upper(_f(fc_b))
    rank = max(ua.ndim, ub.ndim)
    ua = ua.reshape(ua.shape[:1] + (1,) * (rank - ua.ndim) + ua.shape[1:])
    ub = ub.reshape(ub.shape[:1] + (1,) * (rank - ub.ndim) + ub.shape[1:])
    return jnp.mean(_zscore(ua, 0) * _zscore(ub, 0), axis=0)


def fc_corr(fc_a: ArrayLike, fc_b: ArrayLike) -> Array:
    """Pearson correlation between the upper triangles of two FC matrices (goodness of fit).

    Parameters
    ----------
    fc_a, fc_b:
        ``(n, n, *batch)`` each with the same ``n >= 3``; batch axes broadcast.

    Returns
    -------
    Array
        ``(*batch)``, in ``[-1, 1]``. If either upper triangle is constant the correlation is
        undefined and 0 is returned (with finite gradients).

    Examples
    --------
    >>> import numpy as np
    >>> fc = np.array([[1.0, 0.2, 0.5], [0.2, 1.0, -0.1], [0.5, -0.1, 1.0]])
    >>> round(float(fc_corr(fc, fc)), 6)
    1.0
    """
    fc_a = _as_float("fc_a", fc_a)
    fc_b = _as_float("fc_b", fc_b)
    for name, fc in (("fc_a", fc_a), ("fc_b", fc_b)):
        if fc.ndim < 2 or fc.shape[0] != fc.shape[1] or fc.shape[0] < 3:
            raise ValueError(f"{name} must have shape (n, n, *batch) with n >= 3, got {fc.shape}")
    if fc_a.shape[0] != fc_b.shape[0]:
        raise ValueError(
            f"fc_a and fc_b must have the same number of regions, got shapes "
            f"{fc_a.shape} and {fc_b.shape}"
        )
    try:
        np.broadcast_shapes(fc_a.shape[2:], fc_b.shape[2:])
    except ValueError:
        raise ValueError(
            f"batch axes of fc_a {fc_a.shape} and fc_b {fc_b.shape} do not broadcast"
        ) from None
    return _fc_corr(fc_a, fc_b)


def fcd(x: ArrayLike, window: int, step: int, axis: int = 0) -> Array:
    """Functional connectivity dynamics (FCD): correlations between windowed FCs.

    ``fcd[i, j]`` is the Pearson correlation between the upper triangles (diagonal excluded)
    of the FC matrices of windows ``i`` and ``j`` (see :func:`windowed_fc` for the windows,
    which are available from it directly). The diagonal is exactly 1; a window whose FC upper
    triangle is constant has correlation 0 with every other window.

    Parameters
    ----------
    x:
        ``(n_time, n_regions, *batch)`` (time at ``axis``, regions on the first other axis),
        ``n_regions >= 3``.
    window:
        Window length in samples, ``2 <= window <= n_time`` (static).
    step:
        Shift between windows in samples, ``>= 1`` (static).
    axis:
        Time axis.

    Returns
    -------
    Array
        ``(n_windows, n_windows, *batch)`` with ``n_windows = (n_time - window) // step + 1``.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(200, 5))  # (n_time, n_regions)
    >>> fcd(x, window=50, step=25).shape
    (7, 7)
    """
    x = _as_float("x", x)
    _, reg_ax = _region_axes("x", x, axis)
    if x.shape[reg_ax] < 3:
        raise ValueError(
            f"x needs n_regions >= 3 for FCD (on the first non-time axis), got shape {x.shape}"
        )
    x, ax, window, step = _windowed_args(x, window, step, axis)
    return _fcd(x, ax, window, step)


@partial(jax.jit, static_argnums=(1, 2, 3))
def _fcd(x: Array, ax: int, window: int, step: int) -> Array:
    """``(n_win, n, n, *batch)`` -> ``(n_win, n_win, *batch)``."""
    fcs = _windowed_fc(x, ax, window, step)  # (n_win, n, n, *batch)
    up = _upper(jnp.moveaxis(fcs, 0, 2))  # (m, n_win, *batch)
    z = _zscore(up, 0)
    c = jnp.einsum("mw...,mv...->wv...", z, z, precision=HIGHEST) / up.shape[0]
    n_win = fcs.shape[0]
    eye = jnp.eye(n_win, dtype=bool).reshape((n_win, n_win) + (1,) * (c.ndim - 2))
    return jnp.where(eye, jnp.ones((), c.dtype), c)


# --------------------------------------------------------------------------------------------
# forward models and sampling
# --------------------------------------------------------------------------------------------


def project_lead_field(
    gain: ArrayLike, x: ArrayLike, axis: int = 0, reference: str | None = None
) -> Array:
    """Project region activity to EEG / MEG sensors through a gain (lead-field) matrix.

    ``y[t, c] = sum_r gain[c, r] * x[t, r]`` (batched over any trailing axes).

    Parameters
    ----------
    gain:
        ``(n_channels, n_regions)``, sensor units per activity unit.
    x:
        ``(n_time, n_regions, *batch)`` (time at ``axis``, regions on the first other axis).
    axis:
        Time axis of ``x``.
    reference:
        ``None`` (default) or ``"average"``: subtract the mean over channels at every time
        point (common average reference).

    Returns
    -------
    Array
        ``x``'s layout with the region axis replaced by ``n_channels`` channels (the time axis
        stays at ``axis``).

    Examples
    --------
    >>> import numpy as np
    >>> gain = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 2.0]])  # 3 channels, 2 regions
    >>> x = np.array([[1.0, 3.0]])                             # 1 time point, 2 regions
    >>> project_lead_field(gain, x).tolist()
    [[1.0, 2.0, 6.0]]
    >>> project_lead_field(gain, x, reference="average").tolist()
    [[-2.0, -1.0, 3.0]]
    """
    gain = _as_float("gain", gain)
    x = _as_float("x", x)
    _, reg_ax = _region_axes("x", x, axis)
    n_regions = x.shape[reg_ax]
    if gain.ndim != 2 or gain.shape[1] != n_regions:
        raise ValueError(
            f"gain must have shape (n_channels, n_regions) = (*, {n_regions}) to match x of "
            f"shape {x.shape} (regions on axis {reg_ax}), got shape {gain.shape}"
        )
    if reference not in (None, "average"):
        raise ValueError(f"reference must be None or 'average', got {reference!r}")
    return _project(gain, x, reg_ax, reference == "average")


@partial(jax.jit, static_argnums=(2, 3))
def _project(gain: Array, x: Array, reg_ax: int, average: bool) -> Array:
    gain, x = _f(gain), _f(x)
    xr = jnp.moveaxis(x, reg_ax, -1)  # (..., n_regions)
    y = jnp.matmul(xr, gain.T, precision=HIGHEST)  # (..., n_channels)
    if average:
        y = y - jnp.mean(y, axis=-1, keepdims=True)
    return jnp.moveaxis(y, -1, reg_ax)


def subsample(x: ArrayLike, period: int, axis: int = 0) -> Array:
    """Keep the last sample of every ``period`` consecutive samples (a sub-sampling monitor).

    Returns ``x[period - 1 :: period]`` along ``axis``: samples ``period - 1, 2 * period - 1,
    ...``, i.e. the value at the end of each period; a trailing incomplete period is dropped,
    giving ``n_time // period`` samples. With an integration step ``dt`` (ms) the output is
    sampled every ``period * dt`` ms.

    Parameters
    ----------
    x:
        ``(n_time, ...)`` with time at ``axis``.
    period:
        Samples per output sample, ``1 <= period <= n_time`` (static).
    axis:
        Time axis.

    Returns
    -------
    Array
        ``x``'s shape with ``n_time // period`` samples on ``axis``.

    Examples
    --------
    >>> import numpy as np
    >>> subsample(np.arange(7.0), 3).tolist()
    [2.0, 5.0]
    """
    x = _as_array(x)
    ax = _time_axis("x", x, axis)
    period = _pos_int("period", period)
    if period > x.shape[ax]:
        raise ValueError(
            f"period must be <= the number of samples along axis {axis} "
            f"(n_time = {x.shape[ax]}), got {period}"
        )
    return _subsample(x, period, ax)


@partial(jax.jit, static_argnums=(1, 2))
def _subsample(x: Array, period: int, ax: int) -> Array:
    idx = [slice(None)] * x.ndim
    idx[ax] = slice(period - 1, None, period)
    return jnp.asarray(x)[tuple(idx)]


def temporal_average(x: ArrayLike, period: int, axis: int = 0) -> Array:
    """Mean over consecutive non-overlapping windows of ``period`` samples (a TAVG monitor).

    Output sample ``k`` is the mean of ``x[k * period : (k + 1) * period]`` along ``axis``; a
    trailing incomplete window is dropped, giving ``n_time // period`` samples.

    Parameters
    ----------
    x:
        ``(n_time, ...)`` with time at ``axis``.
    period:
        Samples per window, ``1 <= period <= n_time`` (static).
    axis:
        Time axis.

    Returns
    -------
    Array
        ``x``'s shape with ``n_time // period`` samples on ``axis``.

    Examples
    --------
    >>> import numpy as np
    >>> temporal_average(np.arange(7.0), 3).tolist()
    [1.0, 4.0]
    """
    x = _as_float("x", x)
    ax = _time_axis("x", x, axis)
    period = _pos_int("period", period)
    n_time = x.shape[ax]
    if period > n_time:
        raise ValueError(
            f"period must be <= the number of samples along axis {axis} "
            f"(n_time = {n_time}), got {period}"
        )
    return _temporal_average(x, period, ax)


@partial(jax.jit, static_argnums=(1, 2))
def _temporal_average(x: Array, period: int, ax: int) -> Array:
    x = _f(x)
    n_out = x.shape[ax] // period
    idx = [slice(None)] * x.ndim
    idx[ax] = slice(0, n_out * period)
    xs = x[tuple(idx)]
    xs = xs.reshape(*x.shape[:ax], n_out, period, *x.shape[ax + 1 :])
    return jnp.mean(xs, axis=ax + 1)
