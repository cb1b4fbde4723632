"""Diagnostic plots; each function returns a matplotlib Figure (no global state is changed)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from vbinfer.inference.diagnostics import posterior_shrinkage, posterior_zscore

__all__ = ["plot_posteriors", "plot_predictive", "plot_sbc_ranks", "plot_shrinkage_zscore"]


def _figure(nrows: int = 1, ncols: int = 1, **kw):
    from matplotlib.figure import Figure

    fig = Figure(**kw)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def _flat_coords(result, names) -> list[tuple[str, np.ndarray]]:
    out = []
    for name in names:
        s = result.flat(name)
        s = s.reshape(s.shape[0], -1)
        for k in range(s.shape[1]):
            out.append((name if s.shape[1] == 1 else f"{name}[{k}]", s[:, k]))
    return out


def plot_shrinkage_zscore(
    result, truth: Mapping[str, Any], prior_sd: Mapping[str, Any], convention: str = "variance"
):
    """Posterior z-score against shrinkage, one point per scalar coordinate.

    Good estimates sit at high shrinkage and small z (bottom right).
    """
    fig, axes = _figure(figsize=(5, 4))
    ax = axes[0, 0]
    for name in truth:
        post = result.flat(name)
        s = np.ravel(
            posterior_shrinkage(post, np.broadcast_to(prior_sd[name], post.shape[1:]), convention)
        )
        z = np.ravel(posterior_zscore(post, truth[name], convention))
        ax.scatter(s, z, label=name, s=18)
    ax.set_xlabel("posterior shrinkage")
    ax.set_ylabel("posterior z-score")
    ax.set_xlim(min(0.0, ax.get_xlim()[0]), 1.02)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_posteriors(
    result,
    prior_samples: Mapping[str, Any] | None = None,
    truth: Mapping[str, Any] | None = None,
    names=None,
    max_panels: int = 16,
):
    """Histogram of the posterior per scalar coordinate, with the prior and the true value."""
    names = list(result.samples) if names is None else list(names)
    coords = _flat_coords(result, names)[:max_panels]
    n = len(coords)
    ncols = min(4, n)
    nrows = -(-n // ncols)
    fig, axes = _figure(nrows, ncols, figsize=(3 * ncols, 2.4 * nrows))
    for ax, (label, post) in zip(axes.ravel(), coords, strict=False):
        base, _, idx = label.partition("[")
        ax.hist(post, bins=40, density=True, alpha=0.7, label="posterior")
        if prior_samples is not None and base in prior_samples:
            pr = np.asarray(prior_samples[base]).reshape(len(prior_samples[base]), -1)
            k = int(idx[:-1]) if idx else 0
            ax.hist(pr[:, k], bins=40, density=True, histtype="step", color="gray", label="prior")
        if truth is not None and base in truth:
            t = np.ravel(np.asarray(truth[base]))
            ax.axvline(t[int(idx[:-1]) if idx else 0], color="k", lw=1.5, label="truth")
        ax.set_title(label, fontsize=8)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    axes.ravel()[0].legend(fontsize=6)
    fig.tight_layout()
    return fig


def plot_sbc_ranks(sbc_result, num_bins: int = 20):
    """Rank histograms of simulation-based calibration, with the uniform 99 % band."""
    from scipy import stats

    coords = []
    for name, r in sbc_result.ranks.items():
        r = r.reshape(r.shape[0], -1)
        for k in range(r.shape[1]):
            coords.append((name if r.shape[1] == 1 else f"{name}[{k}]", r[:, k]))
    n = len(coords)
    ncols = min(4, n)
    nrows = -(-n // ncols)
    fig, axes = _figure(nrows, ncols, figsize=(3 * ncols, 2.4 * nrows))
    L = sbc_result.num_draws
    for ax, (label, r) in zip(axes.ravel(), coords, strict=False):
        ax.hist(r, bins=num_bins, range=(0, L + 1), color="C0")
        m = len(r) / num_bins
        lo, hi = stats.binom.ppf([0.005, 0.995], len(r), 1 / num_bins)
        ax.axhspan(lo, hi, color="gray", alpha=0.3)
        ax.axhline(m, color="k", lw=0.8)
        ax.set_title(label, fontsize=8)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig


def plot_predictive(
    observed: Any, predictions: Any, x: Any = None, max_panels: int = 8, xlabel: str = ""
):
    """Posterior predictive overlay: data and the 5-95 % band of predictions per channel.

    ``observed`` is ``(n_points, n_channels)`` (or 1-D), ``predictions`` ``(n_draws, *observed.shape)``.
    """
    obs = np.asarray(observed)
    pred = np.asarray(predictions)
    if obs.ndim == 1:
        obs, pred = obs[:, None], pred[..., None]
    x = np.arange(obs.shape[0]) if x is None else np.asarray(x)
    n = min(obs.shape[1], max_panels)
    ncols = min(4, n)
    nrows = -(-n // ncols)
    fig, axes = _figure(nrows, ncols, figsize=(3 * ncols, 2.4 * nrows))
    lo, med, hi = np.percentile(pred, [5, 50, 95], axis=0)
    for k, ax in enumerate(axes.ravel()[:n]):
        ax.fill_between(x, lo[:, k], hi[:, k], color="C1", alpha=0.3, label="predictive 5-95 %")
        ax.plot(x, med[:, k], color="C1", lw=1)
        ax.plot(x, obs[:, k], color="k", lw=0.8, label="data")
        ax.set_title(f"channel {k}", fontsize=8)
        ax.set_xlabel(xlabel, fontsize=7)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    axes.ravel()[0].legend(fontsize=6)
    fig.tight_layout()
    return fig
