"""The in-loop Welch PSD monitor equals ``observe.welch_psd`` of the recorded series."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.signal

from vbinfer import monitors, network, noise, observe, simulate
from vbinfer.coupling import LinearParams
from vbinfer.models import MPRParams, mpr

N = 4


@pytest.fixture
def net():
    rng = np.random.default_rng(1)
    w = rng.uniform(0, 1, (N, N))
    np.fill_diagonal(w, 0)
    return network.make_network(w, rng.uniform(1, 10, (N, N)), speed=2.0)


def _sim(mon, num_steps=1600, delayed=False, **kw):
    return simulate.make_simulator(
        mpr,
        dt=0.05,
        num_steps=num_steps,
        max_lag=100 if delayed else None,  # lags up to 5 ms / 0.05 ms
        noise=noise.AdditiveNoise(0.2, states=(1,)),
        sample_every=4,
        monitors=[mon, monitors.temporal_average(name="tavg")],
        **kw,
    )


def _params(eta=-4.6, a=0.3):
    return simulate.SimParams(MPRParams(eta=eta), LinearParams(a=a))


FS = 1000.0 / (0.05 * 4)  # Hz: dt 0.05 ms, 4 steps per sample


@pytest.mark.parametrize(
    "kw",
    [
        dict(nperseg=64),  # 50 % overlap, hann, constant detrend
        dict(nperseg=51, noverlap=13, window="hamming", skip=7),  # odd, hop does not divide
        dict(nperseg=40, noverlap=0, window="boxcar", detrend="linear", scaling="spectrum"),
        dict(nperseg=32, noverlap=31, window="blackman", detrend=None),  # hop of one sample
    ],
)
def test_psd_monitor_equals_welch_of_the_series(x64, net, kw):
    kw = dict(kw)
    skip = kw.pop("skip", 0)
    res = _sim(monitors.psd(1, skip=skip, **kw)).run(jax.random.key(0), _params(), net)
    freqs, p = res.outputs["psd"]
    series = res.outputs["tavg"][skip:, 1]
    f_ref, p_ref = observe.welch_psd(series, FS, **kw)
    assert p.shape == p_ref.shape == (kw["nperseg"] // 2 + 1, N)
    np.testing.assert_allclose(freqs, f_ref, rtol=1e-14)
    np.testing.assert_allclose(p, p_ref, rtol=1e-10, atol=1e-12 * float(np.max(p_ref)))
    # and scipy, the reference welch_psd follows
    sp_kw = {**kw, "detrend": kw.get("detrend", "constant") or False}
    _, p_sp = scipy.signal.welch(np.asarray(series), FS, axis=0, **sp_kw)
    np.testing.assert_allclose(p, p_sp, rtol=1e-9, atol=1e-12 * float(np.max(p_sp)))


def test_psd_monitor_in_run_batch_and_vmap(x64, net):
    sim = _sim(monitors.psd(0, nperseg=50, fn=lambda x: x[0] + x[1]), num_steps=800)
    a = jnp.array([0.1, 0.4])
    rb = sim.run_batch(jax.random.key(2), _params(a=a), net, batch_size=2)
    freqs, p = rb.outputs["psd"]
    assert freqs.shape == (26,) and p.shape == (2, 26, N)
    for b in range(2):
        series = rb.outputs["tavg"][b, :, 0] + rb.outputs["tavg"][b, :, 1]
        np.testing.assert_allclose(p[b], observe.welch_psd(series, FS, 50)[1], rtol=1e-10)
    keys = jax.random.split(jax.random.key(3), 2)
    rv = jax.vmap(lambda k, a: sim.run(k, _params(a=a), net))(keys, a)
    for b in range(2):
        series = rv.outputs["tavg"][b, :, 0] + rv.outputs["tavg"][b, :, 1]
        np.testing.assert_allclose(
            rv.outputs["psd"][1][b], observe.welch_psd(series, FS, 50)[1], rtol=1e-10
        )


@pytest.mark.slow
def test_psd_blocked_checkpointed_values_and_gradients_equal_unblocked(x64, net):
    mon = monitors.psd(0, nperseg=64, skip=10)
    plain = _sim(mon, delayed=True, block_steps=1600)  # one block, no checkpoint
    blocked = _sim(mon, delayed=True, block_steps=200, checkpoint=True)
    z = noise.draw_noise(jax.random.key(4), 1600, plain.noise_shape(N)[1:], 1600)

    def loss(theta, sim):
        eta, a = theta
        _, p = sim.run(z, _params(eta, a), net).outputs["psd"]
        return jnp.sum(jnp.log(p[1:20]))

    def loss_posthoc(theta):  # welch_psd of the recorded series, after the run
        eta, a = theta
        x = plain.run(z, _params(eta, a), net).outputs["tavg"][10:, 0]
        return jnp.sum(jnp.log(observe.welch_psd(x, FS, 64)[1][1:20]))

    theta = jnp.array([-4.6, 0.3])
    v1, g1 = jax.value_and_grad(loss)(theta, plain)
    v2, g2 = jax.value_and_grad(loss)(theta, blocked)
    v3, g3 = jax.value_and_grad(loss_posthoc)(theta)
    assert np.all(np.abs(np.asarray(g1)) > 1e-3)  # gradients that say something
    np.testing.assert_allclose(v2, v1, rtol=1e-12)
    np.testing.assert_allclose(g2, g1, rtol=1e-9)
    np.testing.assert_allclose(v3, v1, rtol=1e-12)
    np.testing.assert_allclose(g3, g1, rtol=1e-9)


def test_psd_forward_mode_equals_reverse_mode(x64, net):
    sim = _sim(monitors.psd(0, nperseg=32), num_steps=400)

    def loss(eta):
        return jnp.sum(jnp.log(sim.run(jax.random.key(6), _params(eta), net).outputs["psd"][1]))

    tangent = jax.jvp(loss, (-4.6,), (1.0,))[1]
    np.testing.assert_allclose(tangent, jax.grad(loss)(-4.6), rtol=1e-10)


def test_psd_resume_equals_one_run(x64, net):
    mon = monitors.psd(0, nperseg=40, noverlap=10)
    whole = _sim(mon, num_steps=1600)
    half = _sim(mon, num_steps=800)
    z = noise.draw_noise(jax.random.key(5), 1600, whole.noise_shape(N)[1:], 800)
    ref = whole.run(z, _params(), net).outputs["psd"][1]
    first = half.run(z[:800], _params(), net)
    second = half.run(z[800:], _params(), net, first.final)
    np.testing.assert_allclose(second.outputs["psd"][1], ref, rtol=1e-12)


def test_psd_monitor_tape_does_not_grow_with_nperseg(x64, net):
    # reverse mode keeps a chunk of the spectrum per sample period, not the segment or window
    def temp_mb(nperseg):
        sim = _sim(monitors.psd(0, nperseg=nperseg))

        def loss(eta):
            return jnp.sum(sim.run(jax.random.key(0), _params(eta), net).outputs["psd"][1])

        c = jax.jit(jax.grad(loss)).lower(-4.6).compile()
        return c.memory_analysis().temp_size_in_bytes / 2**20

    small, large = temp_mb(16), temp_mb(256)
    # a tape of the window (or of the segment) at each of the 400 samples adds >= 0.73 MB
    assert large - small < 0.2, (small, large)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        (dict(nperseg=0), "nperseg must be an int >= 1"),
        (dict(nperseg=8.0), "nperseg must be an int >= 1"),
        (dict(nperseg=8, noverlap=8), r"noverlap must be in \[0, nperseg\)"),
        (dict(nperseg=8, noverlap=-1), "noverlap must be an int >= 0"),
        (dict(nperseg=8, skip=-1), "skip must be an int >= 0"),
        (dict(nperseg=8, window="kaiser"), "window must be one of"),
        (dict(nperseg=8, window=np.ones(7)), r"shape \(nperseg,\) = \(8,\)"),
        (dict(nperseg=8, detrend="quadratic"), "detrend must be"),
        (dict(nperseg=8, scaling="power"), "scaling must be"),
    ],
)
def test_psd_bad_arguments_raise(kw, match):
    with pytest.raises(ValueError, match=match):
        monitors.psd(0, **kw)


def test_psd_segment_longer_than_the_run_raises_before_compiling():
    with pytest.raises(ValueError, match=r"nperseg must be <= the number of samples after skip"):
        _sim(monitors.psd(0, nperseg=300, skip=150))  # 400 - 150 samples
