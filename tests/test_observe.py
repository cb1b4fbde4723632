"""Tests for vbinfer.observe: spectra, functional connectivity, forward models, monitors."""

from __future__ import annotations

import doctest

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.signal

from vbinfer import observe
from vbinfer.observe import (
    band_power,
    fc_corr,
    fc_upper,
    fcd,
    functional_connectivity,
    log_psd,
    project_lead_field,
    spectral_peak,
    subsample,
    temporal_average,
    welch_psd,
    windowed_fc,
    zscore,
)


@pytest.fixture
def x64():
    """Enable float64 for one test only; the previous setting is restored afterwards."""
    with jax.enable_x64(True):
        yield


def _signal(shape, seed=0, dtype=np.float64):
    """Random walk plus white noise: a broadband spectrum with a 1/f^2 part and a floor."""
    rng = np.random.default_rng(seed)
    x = 0.1 * np.cumsum(rng.normal(size=shape), axis=0) + rng.normal(size=shape)
    return x.astype(dtype)


# (nperseg, noverlap, detrend, window, scaling)
WELCH_CASES = [
    (128, None, "constant", "hann", "density"),
    (100, 30, "linear", "hamming", "spectrum"),
    (64, 0, False, "boxcar", "density"),
    (97, 50, "constant", "blackman", "density"),  # odd nperseg; step does not divide it
    (256, 192, "linear", "hann", "density"),
    (200, 199, None, "hann", "spectrum"),  # step 1
]


def _compare_welch(x, axis, case, rtol, dtype):
    nperseg, noverlap, detrend, window, scaling = case
    f_ref, p_ref = scipy.signal.welch(
        x,
        fs=250.0,
        window=window,
        nperseg=nperseg,
        noverlap=noverlap,
        detrend=detrend,
        scaling=scaling,
        axis=axis,
    )
    f, p = welch_psd(x, 250.0, nperseg, noverlap, window, detrend, scaling, axis=axis)
    assert p.dtype == dtype and f.dtype == dtype
    assert p.shape == p_ref.shape
    np.testing.assert_allclose(np.asarray(f), f_ref, rtol=rtol, atol=0)
    # atol: rounding relative to the largest bin (an FFT's error scales with total power)
    np.testing.assert_allclose(np.asarray(p), p_ref, rtol=rtol, atol=rtol * 1e-2 * p_ref.max())


@pytest.mark.parametrize("case", WELCH_CASES)
def test_welch_matches_scipy_float64(x64, case):
    _compare_welch(_signal((1000, 3, 2)), 0, case, 1e-10, jnp.float64)


@pytest.mark.parametrize("case", WELCH_CASES[1::2])
def test_welch_matches_scipy_float32(case):
    _compare_welch(_signal((1000, 4), dtype=np.float32), 0, case, 1e-5, jnp.float32)


def test_welch_other_time_axes(x64):
    case = WELCH_CASES[3]  # odd nperseg, gathered segments
    x = _signal((3, 1000, 2), seed=1)
    _compare_welch(x, 1, case, 1e-10, jnp.float64)
    _compare_welch(np.moveaxis(x, 1, -1), -1, case, 1e-10, jnp.float64)


def test_welch_window_array_and_defaults(x64):
    x = _signal((600, 2))
    hann = scipy.signal.get_window("hann", 128)
    f1, p1 = welch_psd(x, 100.0, 128)
    f2, p2 = welch_psd(x, 100.0, 128, noverlap=64, window=hann)
    np.testing.assert_array_equal(np.asarray(f1), np.asarray(f2))
    np.testing.assert_allclose(np.asarray(p1), np.asarray(p2), rtol=1e-13)
    _, p_ref = scipy.signal.welch(x, fs=100.0, window=hann, nperseg=128, axis=0)
    np.testing.assert_allclose(np.asarray(p2), p_ref, rtol=1e-10)


def test_welch_integer_input_is_float():
    f, p = welch_psd(np.arange(64) % 4, 8.0, 16)
    assert jnp.issubdtype(p.dtype, jnp.floating)
    assert float(spectral_peak(f, p, band=(0.5, 4.0))) == pytest.approx(2.0)


@pytest.mark.parametrize("f0", [7.0, 10.0, 42.5])
def test_sine_psd_peaks_at_its_frequency(x64, f0):
    fs, amp = 500.0, 3.0
    t = np.arange(5000) / fs
    x = amp * np.sin(2 * np.pi * f0 * t + 0.3)
    freqs, psd = welch_psd(x, fs, 1000)  # 0.5 Hz resolution: f0 is a bin
    assert float(spectral_peak(freqs, psd)) == pytest.approx(f0)
    # windowed Parseval: almost all of the sine's power amp^2 / 2 lies within a few bins of f0
    power = band_power(freqs, psd, (f0 - 3.0, f0 + 3.0))
    assert float(power) == pytest.approx(amp**2 / 2, rel=1e-3)
    # batched with another layout: time last, two signals
    xb = np.stack([x, np.roll(x, 7)])
    freqs_b, psd_b = welch_psd(xb, fs, 1000, axis=-1)
    np.testing.assert_allclose(np.asarray(spectral_peak(freqs_b, psd_b, axis=-1)), [f0, f0])


def test_white_noise_density_integrates_to_variance(x64):
    sigma, fs = 2.0, 1000.0
    x = sigma * np.random.default_rng(3).normal(size=(200_000, 2))
    freqs, psd = welch_psd(x, fs, 256)
    df = float(freqs[1] - freqs[0])
    total = np.asarray(psd).sum(axis=0) * df
    np.testing.assert_allclose(total, sigma**2, rtol=0.01)  # ~1500 segments: ~0.3 % noise
    full = band_power(freqs, psd, (0.0, fs / 2))
    np.testing.assert_allclose(np.asarray(full), total, rtol=1e-12)
    # a flat density: 2 sigma^2 / fs in the interior bins
    np.testing.assert_allclose(np.asarray(psd)[1:-1].mean(), 2 * sigma**2 / fs, rtol=0.01)


def test_band_power_and_peak_bands():
    freqs = np.arange(11) * 0.5  # 0 .. 5 Hz
    psd = np.stack([np.arange(11.0), 10.0 - np.arange(11.0)], axis=1)  # (11, 2)
    np.testing.assert_allclose(
        np.asarray(band_power(freqs, psd, (1.0, 2.0))), [0.5 * (2 + 3 + 4), 0.5 * (8 + 7 + 6)]
    )
    np.testing.assert_allclose(np.asarray(spectral_peak(freqs, psd)), [5.0, 0.0])
    np.testing.assert_allclose(np.asarray(spectral_peak(freqs, psd, band=(1.0, 3.0))), [3.0, 1.0])
    with pytest.raises(ValueError, match="band"):
        band_power(freqs, psd, (3.0, 1.0))
    with pytest.raises(ValueError, match="band"):
        band_power(freqs, psd, (5.1, 6.0))
    with pytest.raises(ValueError, match="band"):
        spectral_peak(freqs, psd, band=(0.1, 0.2))
    with pytest.raises(ValueError, match="freqs"):
        band_power(freqs[:5], psd, (1.0, 2.0))


def test_log_psd_values_and_floor(x64):
    x = _signal((512, 2))
    f1, p = welch_psd(x, 100.0, 64)
    f2, lp = log_psd(x, 100.0, 64, floor=1e-3)
    np.testing.assert_array_equal(np.asarray(f1), np.asarray(f2))
    np.testing.assert_allclose(np.asarray(lp), np.log10(np.asarray(p) + 1e-3), rtol=1e-13)
    _, lp0 = log_psd(np.zeros(128), 100.0, 32)
    assert np.all(np.isfinite(np.asarray(lp0)))
    np.testing.assert_allclose(np.asarray(lp0), -30.0)
    with pytest.raises(ValueError, match="floor"):
        log_psd(x, 100.0, 64, floor=-1.0)


def _central_diff_check(loss, x, n_dirs=4, h=1e-5, rtol=1e-6, seed=0):
    """Directional derivatives of ``loss`` at ``x``: autodiff vs central differences."""
    loss = jax.jit(loss)
    g = np.asarray(jax.jit(jax.grad(loss))(jnp.asarray(x)))
    assert np.all(np.isfinite(g))
    rng = np.random.default_rng(seed)
    for _ in range(n_dirs):
        v = rng.normal(size=x.shape)
        fd = (float(loss(jnp.asarray(x + h * v))) - float(loss(jnp.asarray(x - h * v)))) / (2 * h)
        np.testing.assert_allclose(np.sum(g * v), fd, rtol=rtol)
    # a few single coordinates too
    for i in rng.choice(x.size, size=3, replace=False):
        e = np.zeros(x.size)
        e[i] = 1.0
        e = e.reshape(x.shape)
        fd = (float(loss(jnp.asarray(x + h * e))) - float(loss(jnp.asarray(x - h * e)))) / (2 * h)
        np.testing.assert_allclose(g.reshape(-1)[i], fd, rtol=rtol)


def test_log_psd_grad_matches_finite_differences(x64):
    detrend = "linear"  # removes the mean too, so the "constant" code path is covered
    x = _signal((300, 2), seed=4)
    target = np.random.default_rng(5).normal(size=(33, 2)) - 2.0

    def loss(xx):
        _, lp = log_psd(xx, 200.0, 64, noverlap=40, detrend=detrend, floor=1e-6)
        return jnp.sum((lp - target) ** 2)

    _central_diff_check(loss, x)


def test_welch_validation():
    x = np.ones((100, 2))
    with pytest.raises(ValueError, match="nperseg"):
        welch_psd(x, 10.0, 101)
    with pytest.raises(ValueError, match="nperseg"):
        welch_psd(x, 10.0, 0)
    with pytest.raises(ValueError, match="noverlap"):
        welch_psd(x, 10.0, 50, noverlap=50)
    with pytest.raises(ValueError, match="window"):
        welch_psd(x, 10.0, 50, window="kaiser")
    with pytest.raises(ValueError, match=r"window.*\(50,\).*\(49,\)"):
        welch_psd(x, 10.0, 50, window=np.ones(49))
    with pytest.raises(ValueError, match="detrend"):
        welch_psd(x, 10.0, 50, detrend="quadratic")
    with pytest.raises(ValueError, match="scaling"):
        welch_psd(x, 10.0, 50, scaling="power")
    with pytest.raises(ValueError, match="fs"):
        welch_psd(x, -1.0, 50)
    with pytest.raises(ValueError, match="axis"):
        welch_psd(x, 10.0, 50, axis=2)
    with pytest.raises(ValueError, match="real"):
        welch_psd(np.ones(100, np.complex64), 10.0, 50)


# --------------------------------------------------------------------------------------------
# functional connectivity
# --------------------------------------------------------------------------------------------


def test_zscore(x64):
    x = _signal((50, 3))
    z = np.asarray(zscore(x))
    np.testing.assert_allclose(z, (x - x.mean(0)) / x.std(0), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(zscore(x.T, axis=1)), z.T, rtol=1e-12)
    np.testing.assert_array_equal(np.asarray(zscore(np.full((5, 2), 3.0))), 0.0)


def test_fc_matches_corrcoef(x64):
    x = _signal((400, 5, 3))  # (n_time, n_regions, batch)
    fc = np.asarray(functional_connectivity(x))
    assert fc.shape == (5, 5, 3)
    for b in range(3):
        np.testing.assert_allclose(fc[..., b], np.corrcoef(x[:, :, b].T), rtol=1e-12, atol=1e-14)
    # time last: (n_regions, n_time) -> regions on axis 0, exactly numpy's row convention
    y = x[:, :, 0].T
    np.testing.assert_allclose(
        np.asarray(functional_connectivity(y, axis=-1)), np.corrcoef(y), rtol=1e-12, atol=1e-14
    )
    np.testing.assert_array_equal(np.diagonal(fc, axis1=0, axis2=1), 1.0)


def test_fc_float32_matches_corrcoef():
    x = _signal((400, 6), dtype=np.float32)
    fc = functional_connectivity(x)
    assert fc.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(fc), np.corrcoef(x.T.astype(np.float64)), atol=1e-6)


def test_fc_zero_variance_is_safe(x64):
    x = _signal((100, 4))
    x[:, 2] = 1.7  # constant region

    fc = np.asarray(functional_connectivity(x))
    assert np.all(np.isfinite(fc))
    np.testing.assert_array_equal(fc[2, [0, 1, 3]], 0.0)
    np.testing.assert_array_equal(fc[[0, 1, 3], 2], 0.0)
    np.testing.assert_array_equal(np.diag(fc), 1.0)
    keep = [0, 1, 3]
    np.testing.assert_allclose(fc[np.ix_(keep, keep)], np.corrcoef(x[:, keep].T), rtol=1e-12)
    g = jax.jit(jax.grad(lambda xx: jnp.sum(functional_connectivity(xx) ** 2)))(x)
    assert np.all(np.isfinite(np.asarray(g)))


def test_fc_upper_and_fc_corr(x64):
    fc = np.arange(16.0).reshape(4, 4)
    np.testing.assert_array_equal(np.asarray(fc_upper(fc)), fc[np.triu_indices(4, k=1)])
    fcs = np.stack([fc, fc.T], axis=-1)  # (4, 4, 2)
    np.testing.assert_array_equal(np.asarray(fc_upper(fcs)), fcs[np.triu_indices(4, k=1)])  # (6, 2)

    a = np.asarray(functional_connectivity(_signal((200, 6), seed=1)))
    b = np.asarray(functional_connectivity(_signal((200, 6), seed=2)))
    assert float(fc_corr(a, a)) == pytest.approx(1.0, abs=1e-14)
    iu = np.triu_indices(6, k=1)
    ref = np.corrcoef(a[iu], b[iu])[0, 1]
    assert float(fc_corr(a, b)) == pytest.approx(ref, rel=1e-12)
    assert float(fc_corr(a, -a)) == pytest.approx(-1.0, abs=1e-14)
    # batch broadcasting: (6, 6, 2) against (6, 6)
    ab = np.stack([a, b], axis=-1)
    np.testing.assert_allclose(np.asarray(fc_corr(ab, a)), [1.0, ref], rtol=1e-12)
    # a constant upper triangle: correlation undefined -> 0
    assert float(fc_corr(np.eye(6), a)) == 0.0
    with pytest.raises(ValueError, match="fc_b"):
        fc_corr(a, b[:5, :5])
    with pytest.raises(ValueError, match="fc_a"):
        fc_corr(np.eye(2), np.eye(2))
    with pytest.raises(ValueError, match="fc"):
        fc_upper(np.ones((3, 4)))


def test_fc_corr_grad_matches_finite_differences(x64):
    x = _signal((80, 5), seed=6)
    target = np.asarray(functional_connectivity(_signal((80, 5), seed=7)))

    def loss(xx):
        return fc_corr(functional_connectivity(xx), target)

    _central_diff_check(loss, x)


def _np_fcd(x, window, step):
    """Reference: loops over windows with numpy.corrcoef. x: (n_time, n_regions)."""
    n_win = (x.shape[0] - window) // step + 1
    fcs = np.stack([np.corrcoef(x[i * step : i * step + window].T) for i in range(n_win)])
    iu = np.triu_indices(x.shape[1], k=1)
    return np.corrcoef(np.stack([f[iu] for f in fcs])), fcs


@pytest.mark.parametrize(("window", "step"), [(50, 25), (60, 7)])
def test_fcd_matches_numpy_reference(x64, window, step):
    x = _signal((303, 6, 2), seed=8)  # (n_time, n_regions, batch)
    n_win = (303 - window) // step + 1
    fcs = np.asarray(windowed_fc(x, window, step))
    d = np.asarray(fcd(x, window, step))
    assert fcs.shape == (n_win, 6, 6, 2)
    assert d.shape == (n_win, n_win, 2)
    for b in range(2):
        d_ref, fcs_ref = _np_fcd(x[:, :, b], window, step)
        np.testing.assert_allclose(fcs[..., b], fcs_ref, rtol=1e-11, atol=1e-13)
        np.testing.assert_allclose(d[..., b], d_ref, rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(d, np.swapaxes(d, 0, 1), rtol=0, atol=1e-15)
    if step == 25:  # time axis last
        xt = np.moveaxis(x, 0, -1)  # (6, 2, 303): regions on axis 0, batch on axis 1
        np.testing.assert_allclose(np.asarray(fcd(xt, window, step, axis=-1)), d, rtol=1e-13)


def test_fcd_validation():
    x = np.ones((100, 4))
    with pytest.raises(ValueError, match="window"):
        fcd(x, 101, 10)
    with pytest.raises(ValueError, match="window"):
        fcd(x, 1, 10)
    with pytest.raises(ValueError, match="step"):
        fcd(x, 20, 0)
    with pytest.raises(ValueError, match="n_regions >= 3"):
        fcd(np.ones((100, 2)), 20, 10)
    with pytest.raises(ValueError, match="x"):
        functional_connectivity(np.ones(100))


# --------------------------------------------------------------------------------------------
# forward model and monitors
# --------------------------------------------------------------------------------------------


def test_project_lead_field(x64):
    rng = np.random.default_rng(9)
    gain = rng.normal(size=(7, 5))
    x = rng.normal(size=(40, 5, 3))  # (n_time, n_regions, batch)
    y = np.asarray(project_lead_field(gain, x))
    assert y.shape == (40, 7, 3)
    np.testing.assert_allclose(y, np.einsum("cr,trb->tcb", gain, x), rtol=1e-12)
    # time last: (n_regions, batch, n_time)
    xt = np.moveaxis(x, 0, -1)
    yt = np.asarray(project_lead_field(gain, xt, axis=-1))
    np.testing.assert_allclose(yt, np.moveaxis(y, 0, -1), rtol=1e-12)
    ya = np.asarray(project_lead_field(gain, x, reference="average"))
    np.testing.assert_allclose(ya.mean(axis=1), 0.0, atol=1e-14)
    np.testing.assert_allclose(ya, y - y.mean(axis=1, keepdims=True), rtol=1e-12, atol=1e-14)


def test_project_lead_field_validation():
    x = np.ones((40, 5))
    with pytest.raises(ValueError, match="gain"):
        project_lead_field(np.ones((7, 4)), x)
    with pytest.raises(ValueError, match="gain"):
        project_lead_field(np.ones(5), x)
    with pytest.raises(ValueError, match="gain"):
        project_lead_field(np.ones((5, 7)), np.ones((40, 7, 2)), axis=1)
    with pytest.raises(ValueError, match="reference"):
        project_lead_field(np.ones((7, 5)), x, reference="linked")


def test_subsample_and_temporal_average():
    x = np.arange(2 * 23 * 3, dtype=np.float32).reshape(2, 23, 3)  # time on axis 1
    np.testing.assert_array_equal(np.asarray(subsample(x, 5, axis=1)), x[:, 4:20:5])
    np.testing.assert_array_equal(
        np.asarray(temporal_average(x, 5, axis=1)),
        x[:, :20].reshape(2, 4, 5, 3).mean(axis=2),
    )
    y = x[0]  # (23, 3), time first
    np.testing.assert_array_equal(np.asarray(subsample(y, 4)), y[3::4])
    np.testing.assert_array_equal(
        np.asarray(temporal_average(y, 4)), y[:20].reshape(5, 4, 3).mean(axis=1)
    )
    np.testing.assert_array_equal(np.asarray(subsample(y, 1)), y)
    np.testing.assert_array_equal(np.asarray(temporal_average(y, 23)), y.mean(0, keepdims=True))
    for fn in (subsample, temporal_average):
        with pytest.raises(ValueError, match="period"):
            fn(y, 0)
        with pytest.raises(ValueError, match="period"):
            fn(y, 24)
        with pytest.raises(ValueError, match="period"):
            fn(y, 2.0)
        with pytest.raises(ValueError, match="axis"):
            fn(y, 2, axis=2)


# --------------------------------------------------------------------------------------------
# transformations
# --------------------------------------------------------------------------------------------


def _all_observations(x, gain, fs):
    """Every observation of ``x`` (``(n_time, n_regions, *batch)``), as one tuple."""
    f, p = welch_psd(x, fs, 64, noverlap=20)
    return (
        f,
        p,
        log_psd(x, fs, 50, detrend="linear")[1],
        band_power(f, p, (5.0, 15.0)),
        spectral_peak(f, p, band=(1.0, 40.0)),
        functional_connectivity(x),
        fcd(x, 50, 25),
        fc_corr(functional_connectivity(x), functional_connectivity(x[::-1] ** 2)),
        project_lead_field(gain, x, reference="average"),
        subsample(x, 3),
        temporal_average(x, 3),
    )


def test_jit_matches_eager():
    x = jnp.asarray(_signal((300, 5, 3), dtype=np.float32))  # (n_time, n_regions, batch)
    gain = jnp.asarray(np.random.default_rng(0).normal(size=(4, 5)).astype(np.float32))
    eager = _all_observations(x, gain, 100.0)
    jitted = jax.jit(_all_observations)(x, gain, 100.0)  # fs traced
    assert len(eager) == len(jitted) == 11
    for a, b in zip(jitted, eager, strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
    # static settings passed by keyword to a jitted welch_psd
    welch_j = jax.jit(welch_psd, static_argnames=("nperseg", "noverlap", "window", "detrend"))
    np.testing.assert_allclose(
        np.asarray(welch_j(x, 100.0, nperseg=64, noverlap=20)[1]), np.asarray(eager[1]), rtol=1e-5
    )


def test_vmap_matches_batched():
    """vmap over a trailing batch axis gives the same as the built-in batching."""
    x = jnp.asarray(_signal((300, 5, 3), dtype=np.float32))  # (n_time, n_regions, batch)
    gain = jnp.asarray(np.random.default_rng(0).normal(size=(4, 5)).astype(np.float32))

    def obs(xx):
        # outputs whose batch axes trail (all but the frequencies)
        return _all_observations(xx, gain, 100.0)[1:]

    batched = obs(x)
    vm = jax.jit(jax.vmap(obs, in_axes=-1, out_axes=-1))(x)
    for a, b in zip(vm, batched, strict=True):
        assert a.shape == b.shape
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-5, atol=1e-6)
    # vmap over a traced sampling frequency
    x0 = np.asarray(x)[:, 0, 0]
    fss = np.array([100.0, 200.0], np.float32)
    freqs, psd = jax.vmap(lambda fs: welch_psd(x0, fs, 64))(fss)
    for i, fs in enumerate([100.0, 200.0]):
        f_ref, p_ref = welch_psd(x0, fs, 64)
        np.testing.assert_allclose(np.asarray(freqs[i]), np.asarray(f_ref), rtol=1e-6)
        np.testing.assert_allclose(np.asarray(psd[i]), np.asarray(p_ref), rtol=1e-6)


def test_grad_through_fcd_and_lead_field_is_finite():
    x = jnp.asarray(_signal((200, 4), dtype=np.float32))
    gain = np.ones((3, 4), np.float32)

    def loss(xx):
        eeg = project_lead_field(gain, xx, reference="average")  # rank-deficient: fine
        return jnp.sum(fcd(xx, 50, 25) ** 2) + jnp.sum(eeg**2)

    g = jax.jit(jax.grad(loss))(x)
    assert g.shape == x.shape and bool(jnp.all(jnp.isfinite(g)))


@pytest.mark.slow  # ~3 s of one-off compiles; also: python -m doctest vbinfer/observe.py
def test_docstring_examples():
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    tests = finder.find(observe, "observe")
    assert sum(len(t.examples) for t in tests) >= 13
    for t in tests:
        runner.run(t)
    result = runner.summarize(verbose=False)
    assert result.failed == 0
