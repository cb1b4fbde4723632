"""Monitors: what a simulation records, computed inside the loop.

A simulation advances in sample periods of ``sample_every`` steps. After each period every
monitor sees the period's temporal mean and last state and may emit one sample; nothing at full
resolution is kept unless a monitor asks for it (``subsample`` with ``sample_every=1``).
Monitors that integrate their own dynamics (BOLD) carry a state through the loop.

A :class:`Monitor` is a record of pure functions::

    init(x0, params) -> mstate
    update(mstate, x_mean, x_last, t, params) -> (mstate, sample)
    finalize(mstate, samples) -> output

``x_mean`` and ``x_last`` are ``(n_states, n_nodes, *batch)``, ``t`` the time (ms) at the end
of the period, ``samples`` the stacked samples with the sample axis first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax.numpy as jnp

from vbinfer._typing import Array
from vbinfer.models.balloon import BalloonParams, balloon_dfun, bold_signal
from vbinfer.models.base import take_rows

__all__ = [
    "Monitor",
    "bold",
    "functional_connectivity",
    "lead_field",
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

    Example
    -------
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

        def update(ms, x_mean, x_last, t, p):
            drive = (gain * x_mean[variable])[None]
            d1 = balloon_dfun(ms, drive, bp)
            pred = ms + dt_sample * d1
            ms = ms + 0.5 * dt_sample * (d1 + balloon_dfun(pred, drive, bp))
            return ms, bold_signal(ms, bp)

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

    Output ``(num_samples, n_channels, *batch)``.
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
        return ms, jnp.tensordot(g, src, axes=1)

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
