"""The result type shared by every inference backend."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

__all__ = ["FitResult", "load_result"]


class FitResult(NamedTuple):
    """What every :func:`~vbinfer.inference.fit` method returns.

    Attributes
    ----------
    method: backend name (``"nuts"``, ``"blackjax_nuts"``, ``"svi"``, ``"map"``, ``"laplace"``).
    samples: ``{site: array (num_chains, num_draws, *shape)}`` in the constrained space
        (a point estimate has one chain and one draw per restart kept).
    divergences: ``(num_chains, num_draws)`` bool, or ``None`` where it does not apply.
    loss: loss trace ``(num_steps,)`` (negative ELBO or negative log density), or ``None``.
    wall_time_s: total wall time, seconds.
    compile_time_s: time spent tracing and compiling, seconds (included in ``wall_time_s``).
    info: backend-specific extras (step size, tree depth, ...), JSON-serialisable.
    """

    method: str
    samples: dict[str, np.ndarray]
    divergences: np.ndarray | None
    loss: np.ndarray | None
    wall_time_s: float
    compile_time_s: float
    info: dict[str, Any]

    @property
    def num_chains(self) -> int:
        """Number of chains."""
        return int(next(iter(self.samples.values())).shape[0])

    @property
    def num_draws(self) -> int:
        """Draws per chain."""
        return int(next(iter(self.samples.values())).shape[1])

    def flat(self, name: str) -> np.ndarray:
        """Samples of one site with chains merged: ``(num_chains * num_draws, *shape)``."""
        s = self.samples[name]
        return s.reshape(-1, *s.shape[2:])

    def mean(self, name: str) -> np.ndarray:
        """Posterior mean of one site."""
        return self.flat(name).mean(axis=0)

    def sd(self, name: str) -> np.ndarray:
        """Posterior standard deviation of one site."""
        return (
            self.flat(name).std(axis=0, ddof=1)
            if self.flat(name).shape[0] > 1
            else np.zeros_like(self.mean(name))
        )

    def to_arviz(self, prior: dict[str, np.ndarray] | None = None, observed: Any = None):
        """An ``arviz.InferenceData`` with posterior, sample stats, prior and observed data."""
        import arviz as az

        stats = {}
        if self.divergences is not None:
            stats["diverging"] = self.divergences
        for k, v in self.info.get("sample_stats", {}).items():
            stats[k] = np.asarray(v)
        kwargs: dict[str, Any] = {"posterior": self.samples}
        if stats:
            kwargs["sample_stats"] = stats
        if prior is not None:
            kwargs["prior"] = {k: np.asarray(v)[None] for k, v in prior.items()}
        if observed is not None:
            kwargs["observed_data"] = {"obs": np.asarray(observed)}
        return az.from_dict(**kwargs)

    def save(self, path: str | Path) -> Path:
        """Write to ``path`` (an ``.npz`` file with the arrays and a JSON header)."""
        path = Path(path)
        arrays = {f"samples/{k}": np.asarray(v) for k, v in self.samples.items()}
        if self.divergences is not None:
            arrays["divergences"] = np.asarray(self.divergences)
        if self.loss is not None:
            arrays["loss"] = np.asarray(self.loss)
        header = {
            "method": self.method,
            "wall_time_s": self.wall_time_s,
            "compile_time_s": self.compile_time_s,
            "info": {k: v for k, v in self.info.items() if k != "sample_stats"},
        }
        for k, v in self.info.get("sample_stats", {}).items():
            arrays[f"stats/{k}"] = np.asarray(v)
        np.savez_compressed(path, __header__=np.asarray(json.dumps(header)), **arrays)
        return path


def load_result(path: str | Path) -> FitResult:
    """Read a :class:`FitResult` written by :meth:`FitResult.save`."""
    with np.load(Path(path), allow_pickle=False) as f:
        header = json.loads(str(f["__header__"]))
        samples = {k.split("/", 1)[1]: f[k] for k in f.files if k.startswith("samples/")}
        stats = {k.split("/", 1)[1]: f[k] for k in f.files if k.startswith("stats/")}
        div = f["divergences"] if "divergences" in f.files else None
        loss = f["loss"] if "loss" in f.files else None
    info = dict(header["info"])
    if stats:
        info["sample_stats"] = stats
    return FitResult(
        header["method"], samples, div, loss, header["wall_time_s"], header["compile_time_s"], info
    )
