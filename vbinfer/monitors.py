"""Monitors: what a simulation records, computed inside the loop.

A simulation advances in sample periods of ``sample_every`` steps. After each period every
monitor sees the period's temporal mean and last state and may emit one sample; nothing at full
resolution is kept unless a monitor asks for it (``subsample`` with ``sample_every=1``).
Monitors that integrate their own dynamics (BOLD) or accumulate an estimate (FC, PSD) carry a
state through the loop, so their memory does not grow with the run length.

A :class:`Monitor` is a record of pure functions::

    init(x0, params) -> mstate
    update(mstate, x_mean, x_last, t, params) -> (mstate, sample)
    finalize(mstate, samples) -> output

``x_mean`` and ``x_last`` are ``(n_states, n_nodes, *batch)``, ``t`` the time (ms) at the end
of the period, ``samples`` the stacked samples with the sample axis first.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from vbinfer._precision import HIGHEST
from vbinfer._typing import Array, ArrayLike
from vbinfer.models.balloon import BalloonParams, balloon_rates, bold_signal
from vbinfer.models.base import take_rows
from vbinfer.observe import _window

__all__ = [
    "Monitor",
    "bold",
    "functional_connectivity",
    "lead_field",
    "psd",
    "subsample",
    "temporal_average",
    "variable_indices",
]


class Monitor(NamedTuple):
    """A recording rule (see the module docstring).

    Attributes
    ----------
    name: key of the output in the simulation result.
    init: ``init(x0, params) -> mstate``.
    update: ``update(mstate, x_mean, x_last, t, params) -> (mstate, sample)``.
    finalize: ``finalize(mstate, samples) -> output``.
    """

    name: str
    init: Callable[[Array, Any], Any]
    update: Callable[[Any, Array, Array, Array, Any], tuple[Any, Any]]
    finalize: Callable[[Any, Any], Any]
    prepare: Callable[[float, int], Monitor] | None = None
    """``prepare(dt_sample_ms, num_samples) -> Monitor``: called once by the simulator so that a
    monitor can depend on the sample period (e.g. BOLD); ``None`` when not needed."""


def variable_indices(
    state_names: Sequence[str], variables: Sequence[int | str] | None
) -> tuple[int, ...]:
    """Resolve state variables given by name or index (``None`` means all)."""
    if variables is None:
        return tuple(range(len(state_names)))
    out = []
    for v in variables:
        if isinstance(v, str):
            if v not in state_names:
                raise ValueError(
                    f"variables: unknown state variable {v!r}; the model has {tuple(state_names)}"
                )
            out.append(state_names.index(v))
        else:
            if not 0 <= int(v) < len(state_names):
                raise ValueError(
                    f"variables: index {v} out of range for {len(state_names)} state variables"
                )
            out.append(int(v))
    return tuple(out)


def _no_state(x0: Array, params: Any) -> None:
    return None


def _identity_finalize(mstate: Any, samples: Any) -> Any:
    return samples


def _select(x: Array, idx: tuple[int, ...] | None) -> Array:
    return x if idx is None else take_rows(x, idx)


def temporal_average(
    variables: tuple[int, ...] | None = None,
    name: str = "tavg",
    fn: Callable[[Array], Array] | None = None,
) -> Monitor:
    """Mean of each sample period: output ``(num_samples, n_vars, n_nodes, *batch)``.

    Parameters
    ----------
    variables:
        State indices to record (``None``: all). Use :func:`variable_indices` for names.
    name:
        Output key.
    fn:
        Optional map applied to the selected period mean, e.g. ``lambda x: x[1] - x[2]``.
    """

    def update(mstate, x_mean, x_last, t, params):
        y = _select(x_mean, variables)
        return mstate, (y if fn is None else fn(y))

    return Monitor(name, _no_state, update, _identity_finalize)


def subsample(
    variables: tuple[int, ...] | None = None,
    name: str = "raw",
    fn: Callable[[Array], Array] | None = None,
) -> Monitor:
    """State at the end of each sample period: ``(num_samples, n_vars, n_nodes, *batch)``."""

    def update(mstate, x_mean, x_last, t, params):
        y = _select(x_last, variables)
        return mstate, (y if fn is None else fn(y))

    return Monitor(name, _no_state, update, _identity_finalize)


def bold(
    variable: int = 0,
    params: BalloonParams | None = None,
    gain: float = 1.0,
    tr_ms: float = 720.0,
    name: str = "bold",
) -> Monitor:
    """BOLD through the Balloon-Windkessel model, integrated inside the loop.

    Every sample period the period mean of state ``variable`` times ``gain`` (the neural
    drive, s^-1) drives a Balloon model per node (Heun step of one sample period), and the BOLD
    signal is kept every ``tr_ms``. Output ``(num_samples * dt_sample / tr_ms, n_nodes,
    *batch)``; ``tr_ms`` must be a multiple of the sample period. Memory stays
    ``O(num_samples)``; only the BOLD samples leave the loop.

    Parameters
    ----------
    variable: state index of the neural drive (e.g. 0 for the MPR rate ``r``).
    params: :class:`~vbinfer.models.balloon.BalloonParams` (defaults if ``None``).
    gain: scale from the state variable to the drive in s^-1 (e.g. 1000 for a rate in kHz).
    tr_ms: repetition time in ms.
    name: output key.

    Examples
    --------
    >>> m = bold(0, gain=1000.0, tr_ms=720.0)
    >>> m.name
    'bold'
    """
    bp = BalloonParams() if params is None else params

    def prepare(dt_sample: float, num_samples: int) -> Monitor:
        every = tr_ms / dt_sample
        if not (every >= 1 and abs(every - round(every)) < 1e-9):
            raise ValueError(
                f"bold: tr_ms must be a positive multiple of the sample period {dt_sample} ms, "
                f"got tr_ms={tr_ms}"
            )
        every = round(every)

        def init(x0, p):
            rest = jnp.asarray([0.0, 1.0, 1.0, 1.0], x0.dtype).reshape((4,) + (1,) * (x0.ndim - 1))
            return jnp.broadcast_to(rest, (4, *x0.shape[1:]))

        # Rematerialised in reverse mode: the tape keeps the Balloon state and the drive
        # (5 numbers per node and sample period) instead of every intermediate of the two
        # derivative evaluations and the observation (about 23), for one more evaluation.
        # The four Balloon variables are stepped as separate arrays (balloon_rates): on CPUs
        # XLA then compiles a step into fewer kernels (a 1 ms step of 84 nodes took 7.4 us
        # forward with the stacked derivative, about 3 us this way).
        @partial(jax.checkpoint, policy=jax.checkpoint_policies.nothing_saveable)
        def heun(ms, drive):
            x = drive[0]
            state = (ms[0], ms[1], ms[2], ms[3])
            d1 = balloon_rates(state, x, bp)
            pred = tuple(y + dt_sample * d for y, d in zip(state, d1, strict=True))
            d2 = balloon_rates(pred, x, bp)
            half = 0.5 * dt_sample
            new = [y + half * (a + b) for y, a, b in zip(state, d1, d2, strict=True)]
            ms = jnp.stack(new)
            return ms, bold_signal(ms, bp)

        def update(ms, x_mean, x_last, t, p):
            return heun(ms, (gain * x_mean[variable])[None])

        def finalize(ms, samples):
            return samples[every - 1 :: every]

        return Monitor(name, init, update, finalize)

    return Monitor(name, _no_state, _unprepared, _identity_finalize, prepare)


def _unprepared(*args):
    raise RuntimeError("this monitor must be prepared by the simulator (make_simulator)")


def lead_field(
    gain_matrix: Array,
    fn: Callable[[Array], Array] | None = None,
    variable: int = 0,
    name: str = "eeg",
) -> Monitor:
    """EEG / MEG: ``gain_matrix @ source`` of each sample period's mean.

    Parameters
    ----------
    gain_matrix: ``(n_channels, n_nodes)`` lead field.
    fn: ``fn(x_mean) -> (n_nodes, *batch)`` source signal (default: state ``variable``),
        e.g. ``jansen_rit_eeg`` for ``y1 - y2``.
    variable: state index used when ``fn`` is ``None``.
    name: output key.

    Returns
    -------
    Monitor
        Its output is ``(num_samples, n_channels, *batch)``.
    """
    g = jnp.asarray(gain_matrix)
    if g.ndim != 2:
        raise ValueError(f"gain_matrix must be (n_channels, n_nodes), got shape {g.shape}")

    def update(ms, x_mean, x_last, t, p):
        src = x_mean[variable] if fn is None else fn(x_mean)
        if src.shape[0] != g.shape[1]:
            raise ValueError(
                f"gain_matrix has {g.shape[1]} columns but the network has {src.shape[0]} nodes"
            )
        return ms, jnp.tensordot(g, src, axes=1, precision=HIGHEST)

    return Monitor(name, _no_state, update, _identity_finalize)


def functional_connectivity(variable: int = 0, name: str = "fc", skip: int = 0) -> Monitor:
    """Pearson FC of one state variable's period means, accumulated inside the loop.

    Keeps running sums (``O(n_nodes^2)`` memory, independent of the run length) instead of
    the time series. Output ``(n_nodes, n_nodes, *batch)``.

    Parameters
    ----------
    variable: state index.
    name: output key.
    skip: number of initial samples to leave out (transient).
    """

    def init(x0, p):
        z = jnp.zeros(x0.shape[1:], x0.dtype)
        return (
            jnp.zeros((), x0.dtype),
            z,
            jnp.zeros((x0.shape[1], *x0.shape[1:]), x0.dtype),
            jnp.int32(0),
        )

    def update(ms, x_mean, x_last, t, p):
        n, s1, s2, k = ms
        y = x_mean[variable]
        use = (k >= skip).astype(y.dtype)
        return (n + use, s1 + use * y, s2 + use * y[:, None] * y[None, :], k + 1), None

    def finalize(ms, samples):
        n, s1, s2, _ = ms
        mean = s1 / n
        cov = s2 / n - mean[:, None] * mean[None, :]
        sd = jnp.sqrt(jnp.clip(jnp.diagonal(cov, axis1=0, axis2=1), 0.0))
        sd = jnp.moveaxis(sd, -1, 0)
        return cov / (sd[:, None] * sd[None, :])

    return Monitor(name, init, update, finalize)


def psd(
    variable: int = 0,
    *,
    nperseg: int,
    noverlap: int | None = None,
    window: str | ArrayLike = "hann",
    detrend: str | bool | None = "constant",
    scaling: str = "density",
    skip: int = 0,
    fn: Callable[[Array], Array] | None = None,
    name: str = "psd",
) -> Monitor:
    """Welch power spectral density of a period-mean signal, accumulated inside the loop.

    The signal is the sample-period mean of state ``variable`` (or ``fn(x_mean)``), sampled at
    ``fs = 1000 / (dt * sample_every)`` Hz, i.e. the series a :func:`temporal_average` would
    record. It is cut into segments of ``nperseg`` samples overlapping by ``noverlap`` (after
    leaving out the first ``skip`` samples); each segment is detrended, windowed and
    Fourier-transformed as soon as its last sample arrives, and its power is added to a running
    sum. The output equals :func:`vbinfer.observe.welch_psd` of the recorded series, with the
    same arguments, to rounding, also for blocked and checkpointed runs and their gradients.

    Memory
    ------
    Nothing grows with the run length. The monitor state holds the last ``nperseg`` samples
    (a ring buffer, stored twice), the spectrum of the last completed segment and the power
    sums: about ``5 * nperseg`` numbers per node (and batch member) for 50 % overlap, against
    ``num_samples`` per node to record the series. In reverse mode each sample period keeps
    ``ceil(n_freq / hop)`` complex numbers per node (2 for 50 % overlap): the power of a
    completed segment is added a few frequencies per sample period over the ``hop = nperseg -
    noverlap`` periods that follow, so the tape never holds a whole spectrum per step. With
    ``checkpoint=True`` the total is ``O(num_steps / block_steps + block_steps)`` like the rest
    of the loop. Each segment costs one FFT, computed only on the period that completes it.

    Parameters
    ----------
    variable:
        State index of the signal (ignored when ``fn`` is given).
    nperseg:
        Segment length in samples (static); at most the number of samples after ``skip``.
    noverlap:
        Overlap of consecutive segments in samples, ``0 <= noverlap < nperseg``; default
        ``nperseg // 2``.
    window:
        ``"hann"`` (default), ``"hamming"``, ``"blackman"``, ``"boxcar"`` or an array of shape
        ``(nperseg,)``.
    detrend:
        ``"constant"`` (default), ``"linear"`` or ``None`` / ``False``, per segment.
    scaling:
        ``"density"`` (``[u]^2 / Hz``, default) or ``"spectrum"`` (``[u]^2``).
    skip:
        Number of initial samples to leave out (transient).
    fn:
        Optional ``fn(x_mean) -> (n_nodes, *batch)`` signal, e.g. ``jansen_rit_eeg``.
    name:
        Output key.

    Returns
    -------
    Monitor
        Its output is ``(freqs, psd)`` as :func:`~vbinfer.observe.welch_psd` returns them:
        ``freqs`` ``(nperseg // 2 + 1,)`` in Hz and ``psd`` ``(n_freq, n_nodes, *batch)``
        (``run_batch`` puts the batch axis first). A resumed run (``init`` a
        :class:`~vbinfer.simulate.SimState`) continues the same estimate: the result is the PSD
        of the whole series so far.

    Examples
    --------
    >>> from vbinfer import models, network, simulate
    >>> import numpy as np
    >>> sim = simulate.make_simulator(
    ...     models.mpr, dt=0.1, num_steps=4000, sample_every=10,
    ...     monitors=[psd(0, nperseg=128)],
    ... )
    >>> net = network.make_network(np.zeros((2, 2)))
    >>> freqs, p = sim.run(None, simulate.SimParams(models.MPRParams()), net).outputs["psd"]
    >>> freqs.shape, p.shape, float(freqs[1])
    ((65,), (65, 2), 7.8125)
    """
    nperseg = _int_at_least("nperseg", nperseg, 1)
    noverlap = nperseg // 2 if noverlap is None else _int_at_least("noverlap", noverlap, 0)
    if noverlap >= nperseg:
        raise ValueError(f"noverlap must be in [0, nperseg) = [0, {nperseg}), got {noverlap}")
    skip = _int_at_least("skip", skip, 0)
    if not any(detrend is d for d in (None, False)) and detrend not in ("constant", "linear"):
        raise ValueError(f"detrend must be 'constant', 'linear', None or False, got {detrend!r}")
    if scaling not in ("density", "spectrum"):
        raise ValueError(f"scaling must be 'density' or 'spectrum', got {scaling!r}")
    win_np = np.asarray(_window(window, nperseg, np.dtype(np.float64)), dtype=np.float64)
    detrend = detrend or None
    hop = nperseg - noverlap
    n_freq = nperseg // 2 + 1
    chunk = -(-n_freq // hop)  # frequencies whose power is added per sample period
    onesided = np.ones(n_freq)
    onesided[1 : n_freq - 1 if nperseg % 2 == 0 else n_freq] = 2.0

    def signal(x_mean: Array) -> Array:
        return x_mean[variable] if fn is None else fn(x_mean)

    def prepare(dt_sample: float, num_samples: int) -> Monitor:
        if nperseg > num_samples - skip:
            raise ValueError(
                f"psd: nperseg must be <= the number of samples after skip ({num_samples} - "
                f"{skip} = {num_samples - skip}), got nperseg={nperseg}"
            )
        fs = 1000.0 / dt_sample
        if scaling == "density":
            scale_np = onesided / (fs * np.sum(win_np * win_np))
        else:
            scale_np = onesided / np.sum(win_np) ** 2

        def init(x0, p):
            s = jax.eval_shape(signal, x0)
            cdt = jnp.result_type(s.dtype, jnp.complex64)
            return (
                jnp.zeros((2 * nperseg, *s.shape), s.dtype),  # ring buffer, stored twice
                jnp.zeros((hop, chunk, *s.shape), cdt),  # spectrum of the last segment
                jnp.zeros((hop, chunk, *s.shape), s.dtype),  # power sums
                jnp.int32(0),  # samples seen, skipped ones included
                jnp.int32(hop),  # chunks of the pending spectrum already summed
                jnp.int32(0),  # completed segments
            )

        tt = np.arange(nperseg, dtype=np.float64) - (nperseg - 1) / 2.0
        tt = tt / math.sqrt(max(float(np.sum(tt * tt)), 1.0))  # unit norm (or zero)

        def complete(buf, pos, w, tn):
            # slots pos + 1 .. pos + nperseg of the doubled ring: the segment, oldest first
            seg = jax.lax.dynamic_slice_in_dim(buf, pos + 1, nperseg, axis=0)
            if detrend is not None:
                seg = seg - jnp.mean(seg, axis=0, keepdims=True)
            if detrend == "linear":
                seg = seg - tn * jnp.sum(seg * tn, axis=0, keepdims=True)
            spec = jnp.fft.rfft(seg * w, axis=0)
            spec = jnp.pad(spec, [(0, hop * chunk - n_freq)] + [(0, 0)] * (spec.ndim - 1))
            return spec.reshape(hop, chunk, *spec.shape[1:])

        # The FFT is linear, so reverse mode needs no value of it, only the window and trend;
        # as constants of a cond branch they would be saved on the tape at every step (cond
        # returns its branches' residuals). Under remat they stay inputs: loop invariant.
        @partial(jax.checkpoint, policy=jax.checkpoint_policies.nothing_saveable)
        def _new_segment(done, buf, pend, pos, w, tn):
            return jax.lax.cond(done, complete, lambda *a: pend, buf, pos, w, tn)

        def update(ms, x_mean, x_last, t, p):
            buf, pend, acc, k, drained, nseg = ms
            y = signal(x_mean).astype(buf.dtype)
            # add the power of one chunk of the last segment's spectrum (linear in `acc`,
            # so the tape keeps only this chunk)
            i = jnp.minimum(drained, hop - 1)
            z = jax.lax.dynamic_index_in_dim(pend, i, 0, keepdims=False)
            live = (drained < hop).astype(buf.dtype)
            row = jax.lax.dynamic_index_in_dim(acc, i, 0, keepdims=False)
            acc = jax.lax.dynamic_update_index_in_dim(
                acc, row + live * (z.real**2 + z.imag**2), i, 0
            )
            drained = jnp.minimum(drained + 1, hop)
            # store the sample; samples before `skip` are overwritten before they are used
            j = k - skip
            pos = jnp.mod(j, nperseg)
            buf = jax.lax.dynamic_update_index_in_dim(buf, y, pos, 0)
            buf = jax.lax.dynamic_update_index_in_dim(buf, y, pos + nperseg, 0)
            done = (j >= nperseg - 1) & (jnp.mod(j - (nperseg - 1), hop) == 0)
            tail = (1,) * (buf.ndim - 1)
            w = jnp.asarray(win_np, buf.dtype).reshape((nperseg, *tail))
            tn = jnp.asarray(tt, buf.dtype).reshape((nperseg, *tail))
            pend = _new_segment(done, buf, pend, pos, w, tn)
            drained = jnp.where(done, 0, drained)
            return (buf, pend, acc, k + 1, drained, nseg + done.astype(jnp.int32)), None

        def finalize(ms, samples):
            _, pend, acc, _, drained, nseg = ms
            rest = (jnp.arange(hop) >= drained).reshape((hop,) + (1,) * (acc.ndim - 1))
            acc = acc + jnp.where(rest, pend.real**2 + pend.imag**2, 0.0)
            power = acc.reshape(hop * chunk, *acc.shape[2:])[:n_freq]
            scale = jnp.asarray(scale_np, acc.dtype).reshape((n_freq,) + (1,) * (acc.ndim - 2))
            freqs = jnp.arange(n_freq, dtype=acc.dtype) * (fs / nperseg)
            return freqs, power * scale / nseg.astype(acc.dtype)

        return Monitor(name, init, update, finalize)

    return Monitor(name, _no_state, _unprepared, _identity_finalize, prepare)


def _int_at_least(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)
