"""Plots of identifiability at a MAP; each function returns a matplotlib Figure (no global
state is changed)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from vbinfer.inference.identifiability import Identifiability, Profile, Spectrum
from vbinfer.inference.plots import _figure

__all__ = ["plot_eigenvalues", "plot_loadings", "plot_profiles"]


def _spectra(obj) -> dict[str, Spectrum]:
    if isinstance(obj, Identifiability):
        out = {"Hessian": obj.hessian_spectrum}
        if obj.fisher_spectrum is not None:
            out["Fisher information"] = obj.fisher_spectrum
        return out
    if isinstance(obj, Spectrum):
        return {"spectrum": obj}
    if isinstance(obj, Mapping) and all(isinstance(v, Spectrum) for v in obj.values()):
        return dict(obj)
    raise ValueError(
        f"expected an Identifiability, a Spectrum or {{name: Spectrum}}, got {type(obj).__name__}"
    )


def plot_eigenvalues(obj):
    """Eigenvalue spectrum on a log scale, largest (stiffest) first.

    ``obj`` is an :class:`~vbinfer.inference.identifiability.Identifiability` (Hessian and
    Fisher spectra), a :class:`~vbinfer.inference.identifiability.Spectrum` or
    ``{name: Spectrum}``. Magnitudes are plotted; negative eigenvalues (away from a minimum)
    are marked with open symbols. The stiffest and the sloppiest directions are annotated
    with their dominating parameter.
    """
    spectra = _spectra(obj)
    fig, axes = _figure(figsize=(5.5, 4))
    ax = axes[0, 0]
    for i, (name, s) in enumerate(spectra.items()):
        ev = np.asarray(s.eigenvalues)
        k = np.arange(1, ev.size + 1)
        mag = np.maximum(np.abs(ev), np.finfo(float).tiny)
        neg = ev < 0
        ax.semilogy(k, mag, "-", color=f"C{i}", lw=0.8)
        ax.semilogy(k[~neg], mag[~neg], "o", color=f"C{i}", ms=3, label=name)
        if neg.any():
            ax.semilogy(k[neg], mag[neg], "o", mfc="none", color=f"C{i}", ms=4)
        for d in (s.stiff[:1] + s.sloppy[:1]) if i == 0 else ():
            lab, w = d.loadings[0]
            ax.annotate(
                f"{lab} ({w:.2f})",
                (d.index + 1, max(abs(d.eigenvalue), np.finfo(float).tiny)),
                fontsize=7,
                xytext=(4, 4),
                textcoords="offset points",
            )
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("eigenvalue rank (stiff to sloppy)")
    ax.set_ylabel("|eigenvalue|")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_loadings(spectrum: Spectrum, num_directions: int | None = None, max_parameters: int = 30):
    """Heat map of eigenvector components: stiff directions on top, sloppy at the bottom.

    Parameters
    ----------
    spectrum:
        A :class:`~vbinfer.inference.identifiability.Spectrum`.
    num_directions:
        Stiff and sloppy directions shown (default: those named in the spectrum).
    max_parameters:
        Parameters shown: those with the largest squared components over the shown directions.
    """
    if not isinstance(spectrum, Spectrum):
        raise ValueError(f"spectrum must be a Spectrum, got {type(spectrum).__name__}")
    vecs = np.asarray(spectrum.eigenvectors)
    dim = vecs.shape[0]
    k = len(spectrum.stiff) if num_directions is None else int(num_directions)
    k = max(1, min(k, dim))
    cols = list(range(k)) + [c for c in range(dim - k, dim) if c >= k]
    sub = vecs[:, cols].T  # (directions, parameters)
    order = np.argsort((sub**2).sum(axis=0))[::-1][: int(max_parameters)]
    order = np.sort(order)
    sub = sub[:, order]
    sub = sub * np.sign(sub[np.arange(sub.shape[0]), np.argmax(np.abs(sub), axis=1)])[:, None]
    ev = np.asarray(spectrum.eigenvalues)[cols]
    fig, axes = _figure(figsize=(max(4.0, 0.3 * len(order) + 2), 0.35 * len(cols) + 1.8))
    ax = axes[0, 0]
    im = ax.imshow(sub, cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
    ax.set_yticks(range(len(cols)))
    ax.set_yticklabels([f"#{c + 1}: {e:.2g}" for c, e in zip(cols, ev, strict=True)], fontsize=7)
    ax.set_xticks(range(len(order)))
    ax.set_xticklabels([spectrum.labels[j] for j in order], rotation=90, fontsize=7)
    ax.set_ylabel("direction: eigenvalue")
    fig.colorbar(im, ax=ax, label="eigenvector component")
    fig.tight_layout()
    return fig


def plot_profiles(profiles: Profile | Sequence[Profile], threshold: float = 1.92):
    """Profile likelihood curves, one panel per profiled parameter.

    The y axis is the rise of the negative log posterior above the MAP; the dashed line at
    ``threshold`` (1.92: chi-square of one degree of freedom at 95 %, halved) bounds a 95 %
    profile interval; the dotted line marks the MAP.
    """
    profs = [profiles] if isinstance(profiles, Profile) else list(profiles)
    if not profs or not all(isinstance(p, Profile) for p in profs):
        raise ValueError("profiles must be a Profile or a non-empty sequence of them")
    n = len(profs)
    ncols = min(4, n)
    nrows = -(-n // ncols)
    fig, axes = _figure(nrows, ncols, figsize=(3 * ncols, 2.4 * nrows))
    for ax, p in zip(axes.ravel(), profs, strict=False):
        order = np.argsort(p.values)
        ax.plot(p.values[order], p.delta[order], "o-", ms=3, color="C0")
        ax.axhline(threshold, color="gray", ls="--", lw=0.8)
        ax.axvline(p.map_value, color="k", ls=":", lw=0.8)
        ax.set_title(p.label, fontsize=8)
        ax.set_ylabel("profile - min", fontsize=7)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig
