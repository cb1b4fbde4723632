"""Observation models for Gaussian likelihoods on time series, log power spectra and FC.

:func:`~vbinfer.inference.simulator_problem` models the data as
``Normal(observe(simulation), noise_sd)``, entry by entry, with ``noise_sd`` a known number or a
prior distribution (then inferred as the site ``"noise_sd"``). The functions here build the
``observe`` callable for the three usual summaries of brain activity:

- :func:`timeseries`: the recorded signal itself, ``(n_time, n_nodes)``;
- :func:`log_spectrum`: ``log10`` of its Welch power spectrum in a frequency band,
  ``(n_freq, n_nodes)`` (a Gaussian on log power is a multiplicative error on power, and
  spectra avoid fitting the phase of noisy oscillations);
- :func:`fc`: the upper triangle of its functional connectivity (Pearson correlations
  between nodes), ``(n_nodes * (n_nodes - 1) / 2,)``.

Each returns an :class:`Observation`: call it on a :class:`~vbinfer.simulate.SimResult` (that
is what the problem does), or apply :meth:`Observation.summarize` to a recorded array to turn
empirical data into the same summary with the same settings.

Examples
--------
>>> import jax, jax.numpy as jnp, numpyro.distributions as dist, vbinfer as vb
>>> from vbinfer.inference import simulator_problem
>>> sim = vb.make_simulator(vb.models.linear, dt=1.0, num_steps=256, integrator="euler",
...                         noise=vb.AdditiveNoise(0.1))
>>> net = vb.make_network(0.1 * (1 - jnp.eye(3)))
>>> obs = log_spectrum(fs=1000.0, nperseg=64, fmin=10.0, fmax=100.0)
>>> p = simulator_problem(sim, net, vb.SimParams(vb.models.LinearModelParams()),
...                       {"model.lam": dist.LogNormal(-2.0, 0.5)}, obs,
...                       noise=jax.random.key(0), noise_sd=dist.HalfNormal(0.5))
>>> p.param_names, p.data_shape                     # 6 bins from 15.6 to 93.8 Hz, 3 nodes
(('model.lam', 'noise_sd'), (6, 3))
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np

from vbinfer._typing import Array, ArrayLike
from vbinfer.observe import fc_upper, functional_connectivity, log_psd
from vbinfer.simulate import SimResult

__all__ = ["Observation", "fc", "log_spectrum", "timeseries"]


class Observation(NamedTuple):
    """An observation model: which recorded signal, and which summary of it.

    Attributes
    ----------
    kind: ``"timeseries"``, ``"log_spectrum"`` or ``"fc"``.
    monitor: output key of the simulation result (e.g. ``"tavg"``, ``"eeg"``).
    variable: state index for outputs shaped ``(n_time, n_vars, n_nodes)``; ``None`` for
        outputs already shaped ``(n_time, n_channels)`` (e.g. a lead-field monitor).
    skip: number of initial samples left out of a simulated signal (the transient).
    summarize: ``summarize(x) -> prediction`` on a signal ``(n_time, n_nodes)``; apply it to
        recorded data to compare them with simulations.
    freqs: for :func:`log_spectrum`, the ``(n_freq,)`` frequencies of the prediction in Hz.
    """

    kind: str
    monitor: str
    variable: int | None
    skip: int
    summarize: Callable[[ArrayLike], Array]
    freqs: np.ndarray | None = None

    def signal(self, result: SimResult) -> Array:
        """The recorded signal of a simulation, ``(n_time - skip, n_nodes)``."""
        if self.monitor not in result.outputs:
            raise ValueError(
                f"monitor {self.monitor!r} is not an output of the simulation; its outputs "
                f"are {sorted(result.outputs)}"
            )
        x = jnp.asarray(result.outputs[self.monitor])
        if self.variable is None:
            if x.ndim != 2:
                raise ValueError(
                    f"variable=None needs a monitor output (n_time, n_channels), got output "
                    f"{self.monitor!r} of shape {x.shape}; give a state index as variable"
                )
        else:
            if x.ndim != 3 or not 0 <= self.variable < x.shape[1]:
                raise ValueError(
                    f"variable must index axis 1 of output {self.monitor!r} (n_time, n_vars, "
                    f"n_nodes) = {x.shape}, got {self.variable}"
                )
            x = x[:, self.variable]
        if self.skip >= x.shape[0]:
            raise ValueError(
                f"skip must be < the number of samples ({x.shape[0]}), got {self.skip}"
            )
        return x[self.skip :]

    def __call__(self, result: SimResult) -> Array:
        """The prediction of a simulation: ``summarize(signal(result))``."""
        return self.summarize(self.signal(result))


def _settings(monitor: Any, variable: Any, skip: Any) -> tuple[str, int | None, int]:
    if not isinstance(monitor, str):
        raise ValueError(f"monitor must be an output name (str), got {monitor!r}")
    if variable is not None and (
        isinstance(variable, bool) or not isinstance(variable, int | np.integer) or variable < 0
    ):
        raise ValueError(f"variable must be a state index >= 0 or None, got {variable!r}")
    if isinstance(skip, bool) or not isinstance(skip, int | np.integer) or skip < 0:
        raise ValueError(f"skip must be an int >= 0, got {skip!r}")
    return monitor, None if variable is None else int(variable), int(skip)


def _signal_2d(x: ArrayLike) -> Array:
    x = jnp.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"x must be a signal of shape (n_time, n_nodes), got shape {x.shape}")
    return x


def timeseries(monitor: str = "tavg", variable: int | None = 0, skip: int = 0) -> Observation:
    """Gaussian likelihood on the time series itself.

    Parameters
    ----------
    monitor:
        Output key of the simulation (default ``"tavg"``, the temporal average).
    variable:
        State index (e.g. 0 for MPR's firing rate ``r``); ``None`` for outputs shaped
        ``(n_time, n_channels)``.
    skip:
        Initial samples to leave out (transient).

    Returns
    -------
    :class:`Observation` predicting ``(n_time - skip, n_nodes)`` in the signal's units.

    Examples
    --------
    >>> import numpy as np
    >>> timeseries().summarize(np.ones((5, 2))).shape
    (5, 2)
    """
    monitor, variable, skip = _settings(monitor, variable, skip)
    return Observation("timeseries", monitor, variable, skip, _signal_2d)


def log_spectrum(
    fs: float,
    nperseg: int,
    fmin: float,
    fmax: float,
    *,
    monitor: str = "tavg",
    variable: int | None = 0,
    skip: int = 0,
    noverlap: int | None = None,
    window: str = "hann",
    floor: float = 1e-30,
) -> Observation:
    """Gaussian likelihood on ``log10`` Welch power spectra in a band ``[fmin, fmax]``.

    The spectrum is :func:`vbinfer.observe.log_psd` (``log10(psd + floor)``, one-sided density,
    segments of ``nperseg`` samples, constant detrend) at the frequencies ``k * fs / nperseg``
    that lie in ``[fmin, fmax]``; ``noise_sd`` is then in decades of power.

    Parameters
    ----------
    fs:
        Sampling frequency of the signal in Hz: ``1000 / (dt * sample_every)`` for a
        simulator's temporal average (``dt`` in ms).
    nperseg:
        Welch segment length in samples (at most the number of samples after ``skip``).
    fmin, fmax:
        Band in Hz, ``0 <= fmin < fmax <= fs / 2``; at least one frequency bin must lie in it.
    monitor, variable, skip:
        As :func:`timeseries`.
    noverlap, window:
        Welch settings (default 50 % overlap, Hann window).
    floor:
        Added to the PSD before the log (keeps ``log10(0)`` finite).

    Returns
    -------
    :class:`Observation` predicting ``(n_freq, n_nodes)``, ``log10`` of ``[u]^2 / Hz``.
    Its ``freqs`` holds the ``n_freq`` frequencies (Hz).

    Examples
    --------
    >>> obs = log_spectrum(fs=1000.0, nperseg=100, fmin=5.0, fmax=40.0)
    >>> obs.freqs.tolist()
    [10.0, 20.0, 30.0, 40.0]
    """
    monitor, variable, skip = _settings(monitor, variable, skip)
    fs = float(fs)
    if not (np.isfinite(fs) and fs > 0):
        raise ValueError(f"fs must be a positive sampling frequency in Hz, got {fs!r}")
    if isinstance(nperseg, bool) or not isinstance(nperseg, int | np.integer) or nperseg < 2:
        raise ValueError(f"nperseg must be an int >= 2, got {nperseg!r}")
    if not 0 <= fmin < fmax <= fs / 2:
        raise ValueError(
            f"fmin, fmax must satisfy 0 <= fmin < fmax <= fs / 2 = {fs / 2} Hz, got "
            f"({fmin}, {fmax})"
        )
    freqs = np.arange(int(nperseg) // 2 + 1) * fs / int(nperseg)
    keep = np.nonzero((freqs >= fmin) & (freqs <= fmax))[0]
    if keep.size == 0:
        raise ValueError(
            f"no frequency bin (spacing fs / nperseg = {fs / nperseg} Hz) lies in "
            f"[fmin, fmax] = [{fmin}, {fmax}] Hz; widen the band or increase nperseg"
        )

    def summarize(x: ArrayLike) -> Array:
        x = _signal_2d(x)
        _, lp = log_psd(x, fs, int(nperseg), noverlap=noverlap, window=window, floor=floor)
        return lp[keep]

    return Observation("log_spectrum", monitor, variable, skip, summarize, freqs[keep])


def fc(monitor: str = "tavg", variable: int | None = 0, skip: int = 0) -> Observation:
    """Gaussian likelihood on functional connectivity: the upper triangle of the Pearson
    correlation matrix between nodes (diagonal excluded).

    Parameters
    ----------
    monitor, variable, skip:
        As :func:`timeseries`.

    Returns
    -------
    :class:`Observation` predicting ``(n_nodes * (n_nodes - 1) // 2,)`` correlations, in the
    row-major order of ``numpy.triu_indices(n_nodes, k=1)``.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(100, 4))
    >>> fc().summarize(x).shape
    (6,)
    """
    monitor, variable, skip = _settings(monitor, variable, skip)

    def summarize(x: ArrayLike) -> Array:
        return fc_upper(functional_connectivity(_signal_2d(x)))

    return Observation("fc", monitor, variable, skip, summarize)
