"""Workflow 4: a parameter sweep of an MPR network, run as batched simulations.

A grid over global coupling ``a``, noise amplitude ``sigma`` and excitability ``eta`` of a
Montbrio-Pazo-Roxin network on the default connectome (Hagmann 84 regions, weights scaled to
``max W = 1``, conduction delays from tract lengths at 6 mm/ms) is simulated in chunks of
``batch_size`` grid points per compiled call (:meth:`~vbinfer.simulate.Simulator.run_batch`,
the batch innermost in memory), each simulation is reduced to a few features in the same
compiled call, and the features are shown as heat maps over (eta, coupling), one panel per noise
level.

:func:`sweep_grid` is the reusable part: any pure ``simulate_fn(points, keys) -> features`` over
a batch of grid points becomes arrays shaped by the grid. Grid point ``g`` (its index in the
flattened grid, last name fastest) always gets the key ``fold_in(key, g)``
(:func:`point_keys`), so results do not depend on ``batch_size`` or on how the grid is split
between processes or machines: a distributed sweep that calls ``simulate_fn`` on the points of
:func:`grid_points` with the keys of :func:`point_keys` reproduces :func:`sweep_grid` exactly.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from vbinfer._typing import Array, ArrayLike, PRNGKey, PyTree
from vbinfer.workflows._report import WorkflowReport

__all__ = [
    "FEATURES",
    "SweepResult",
    "grid_points",
    "make_mpr_sweep_fn",
    "point_keys",
    "run",
    "sweep_grid",
]

FEATURES = {
    "mean_r": "mean r (kHz)",
    "sd_r": "temporal sd of r (kHz)",
    "fc_mean": "mean FC of r",
    "fc_sc_corr": "corr(FC, SC)",
}
"""The features each simulation of the MPR sweep is reduced to, with their labels: the mean
firing rate over time and regions, the temporal sd of ``r`` averaged over regions, the mean
off-diagonal functional connectivity (Pearson correlation of ``r``) and the correlation of the
FC's upper triangle with the structural weights'."""

DEFAULT_GRID = {
    "coupling": np.linspace(0.0, 2.0, 8),
    "sigma": np.array([0.1, 0.3, 0.5]),
    "eta": np.linspace(-4.9, -4.2, 8),
}
"""The workflow's grid: it spans the low-activity state, noise-driven switching and the
high-activity state. Larger coupling or eta drive regions to rates above about 2.4 kHz, where
stochastic Heun at ``dt = 0.02`` ms becomes unstable (the MPR equations are stiff there)."""
QUICK_GRID = {
    "coupling": np.array([0.0, 1.0, 2.0]),
    "sigma": np.array([0.1, 0.5]),
    "eta": np.array([-4.9, -4.55, -4.2]),
}
GRID_NAMES = ("coupling", "sigma", "eta")


class SweepResult(NamedTuple):
    """What :func:`sweep_grid` returns.

    Attributes
    ----------
    values: the pytree ``simulate_fn`` returns, every leaf reshaped from ``(num_points, ...)``
        to ``(*shape, ...)`` (numpy arrays).
    names: grid axis names, in axis order.
    axes: ``{name: (n_name,) values}`` along each grid axis.
    shape: the grid shape ``tuple(len(axes[name]) for name in names)``.
    compile_s: seconds to trace and compile ``simulate_fn`` for one batch.
    run_s: seconds to run every batch (compilation excluded).
    num_padded: grid points added to fill the last batch (computed, then dropped).
    """

    values: PyTree
    names: tuple[str, ...]
    axes: dict[str, np.ndarray]
    shape: tuple[int, ...]
    compile_s: float
    run_s: float
    num_padded: int

    @property
    def num_points(self) -> int:
        """Number of grid points."""
        return math.prod(self.shape)

    @property
    def points_per_s(self) -> float:
        """Grid points (simulations) per second, compilation excluded."""
        return self.num_points / self.run_s if self.run_s > 0 else float("inf")


# ----------------------------------------------------------------------------- the sweep engine
def _check_grid(grid: Mapping[str, ArrayLike]) -> dict[str, np.ndarray]:
    if not isinstance(grid, Mapping) or not grid:
        raise ValueError(f"grid must be a non-empty dict {{name: values}}, got {grid!r}")
    axes = {}
    for name, values in grid.items():
        v = np.asarray(values)
        if v.ndim != 1 or v.size == 0:
            raise ValueError(
                f"grid[{name!r}] must be a non-empty 1-D sequence of values, got shape {v.shape}"
            )
        if not np.issubdtype(v.dtype, np.number) or not np.all(np.isfinite(v)):
            raise ValueError(f"grid[{name!r}] must hold finite numbers, got {values!r}")
        axes[str(name)] = v
    return axes


def grid_points(grid: Mapping[str, ArrayLike]) -> dict[str, np.ndarray]:
    """The Cartesian product of a grid, flattened in C order (the last name varies fastest).

    Parameters
    ----------
    grid:
        ``{name: 1-D values}``; axis order is the dict order.

    Returns
    -------
    ``{name: (num_points,) array}``: point ``g`` of the flattened grid has ``values[g]`` for
    every name, and ``np.unravel_index(g, shape)`` gives its grid index.

    Examples
    --------
    >>> p = grid_points({"a": [0.0, 1.0], "b": [10.0, 20.0, 30.0]})
    >>> p["a"].tolist(), p["b"].tolist()
    ([0.0, 0.0, 0.0, 1.0, 1.0, 1.0], [10.0, 20.0, 30.0, 10.0, 20.0, 30.0])
    """
    axes = _check_grid(grid)
    mesh = np.meshgrid(*axes.values(), indexing="ij")
    return {name: m.ravel() for name, m in zip(axes, mesh, strict=True)}


def point_keys(key: PRNGKey, indices: ArrayLike) -> Array:
    """One PRNG key per grid point: ``fold_in(key, g)`` for each flat index ``g``.

    Examples
    --------
    >>> import jax
    >>> point_keys(jax.random.key(0), [0, 5]).shape
    (2,)
    """
    idx = jnp.asarray(indices, dtype=jnp.uint32)
    return jax.vmap(lambda g: jax.random.fold_in(key, g))(idx)


def sweep_grid(
    simulate_fn: Callable[[dict[str, Array], Array | None], PyTree],
    grid: Mapping[str, ArrayLike],
    batch_size: int,
    *,
    key: PRNGKey | None = None,
    progress: bool = False,
) -> SweepResult:
    """Evaluate ``simulate_fn`` on every point of a grid, ``batch_size`` points per call.

    ``simulate_fn`` is compiled once (``jax.jit``) for a batch of ``batch_size`` points; the
    flattened grid (:func:`grid_points`) is cut into batches, the last one padded by repeating
    the last point (its results are dropped), and the outputs are reshaped to the grid.

    Parameters
    ----------
    simulate_fn:
        Pure ``simulate_fn(points, keys) -> outputs``: ``points`` is ``{name: (B,) array}``
        (one entry per grid name), ``keys`` a ``(B,)`` array of PRNG keys (point ``g`` gets
        :func:`point_keys` ``(key, g)``) or ``None`` when ``key`` is ``None``. ``outputs`` is a
        pytree of arrays with leading axis ``B``.
    grid:
        ``{name: 1-D values}``; the result's axes follow the dict order.
    batch_size:
        Points per compiled call (memory and throughput trade-off); at most the grid size is
        used.
    key:
        PRNG key for stochastic simulations, or ``None``.
    progress:
        Show a progress bar over the batches.

    Returns
    -------
    :class:`SweepResult` whose ``values`` leaves have shape ``(*grid_shape, ...)``.

    Examples
    --------
    >>> r = sweep_grid(lambda p, k: {"s": p["a"] + p["b"]},
    ...                {"a": [0.0, 1.0], "b": [10.0, 20.0, 30.0]}, batch_size=4)
    >>> r.values["s"].tolist()
    [[10.0, 20.0, 30.0], [11.0, 21.0, 31.0]]
    """
    from vbinfer.inference._chunks import progress as progress_bar

    if not callable(simulate_fn):
        raise ValueError(f"simulate_fn must be callable, got {type(simulate_fn).__name__}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer):
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    axes = _check_grid(grid)
    points = grid_points(axes)
    shape = tuple(v.size for v in axes.values())
    total = math.prod(shape)
    b = int(min(batch_size, total))
    num_batches = -(-total // b)
    padded = num_batches * b - total

    def batch(c: int) -> tuple[dict[str, Array], Array | None]:
        idx = np.minimum(np.arange(c * b, (c + 1) * b), total - 1)
        pts = {k: jnp.asarray(v[idx]) for k, v in points.items()}
        return pts, (None if key is None else point_keys(key, idx))

    t0 = time.perf_counter()
    compiled = jax.jit(simulate_fn).lower(*batch(0)).compile()
    compile_s = time.perf_counter() - t0
    bar = progress_bar(total, "sweep", progress)
    chunks = []
    t0 = time.perf_counter()
    try:
        for c in range(num_batches):
            out = jax.block_until_ready(compiled(*batch(c)))
            chunks.append(jax.tree_util.tree_map(np.asarray, out))
            bar.update(min(b, total - c * b))
    finally:
        bar.close()
    run_s = time.perf_counter() - t0
    values = jax.tree_util.tree_map(
        lambda *xs: np.concatenate(xs, axis=0)[:total].reshape(shape + xs[0].shape[1:]), *chunks
    )
    return SweepResult(values, tuple(axes), axes, shape, compile_s, run_s, padded)


# ----------------------------------------------------------------------------- the MPR sweep
def make_mpr_sweep_fn(
    connectome: Any = None,
    *,
    dt: float = 0.02,
    duration_ms: float = 700.0,
    transient_ms: float = 200.0,
    speed: float = 6.0,
    sample_ms: float = 1.0,
) -> tuple[Callable[[Mapping[str, Array], Array], dict[str, Array]], dict[str, Any]]:
    """A ``simulate_fn`` for :func:`sweep_grid`: an MPR network reduced to :data:`FEATURES`.

    Grid names: ``"coupling"`` (linear coupling ``a``), ``"sigma"`` (additive white noise on
    ``V``, ``sigma dW``) and ``"eta"`` (excitability, the same in every region). The network is
    simulated with stochastic Heun and conduction delays (nearest-step lags); the noise of point
    ``g`` is drawn from its own key with :func:`~vbinfer.noise.draw_noise`, exactly the numbers
    ``simulator.run(key_g, ...)`` would draw, so a batched run equals one-at-a-time runs.
    Features are computed from 1 ms temporal averages after ``transient_ms``.

    Parameters
    ----------
    connectome:
        A :class:`~vbinfer.datasets.Connectome` (default: Hagmann 84, weights scaled to
        ``max W = 1``).
    dt:
        Integration step, ms.
    duration_ms:
        Simulated time per grid point, ms (transient included).
    transient_ms:
        Time discarded before the features, ms.
    speed:
        Conduction speed, mm/ms.
    sample_ms:
        Temporal-average period, ms.

    Returns
    -------
    ``(simulate_fn, setup)``: ``simulate_fn(points, keys) -> {feature: (B,)}`` and a dict with
    the simulator factory ``make_sim(sigma)``, the network, ``params(points)`` and sizes, for
    one-at-a-time runs and bookkeeping.

    Examples
    --------
    >>> fn, setup = make_mpr_sweep_fn(duration_ms=20.0, transient_ms=10.0)
    >>> setup["n_nodes"], setup["num_steps"]
    (84, 1000)
    """
    from vbinfer import datasets, observe
    from vbinfer.coupling import LinearParams
    from vbinfer.models import MPRParams, mpr
    from vbinfer.monitors import temporal_average
    from vbinfer.network import make_network, max_lag_steps
    from vbinfer.noise import AdditiveNoise, draw_noise
    from vbinfer.simulate import SimParams, make_simulator

    conn = datasets.load_hagmann84().normalized("max") if connectome is None else connectome
    for name, value in (("dt", dt), ("duration_ms", duration_ms), ("speed", speed)):
        if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive number, got {value!r}")
    sample_every = round(sample_ms / dt)
    if sample_every < 1 or not math.isclose(sample_every * dt, sample_ms):
        raise ValueError(f"sample_ms must be a multiple of dt={dt}, got {sample_ms!r}")
    num_samples = round(duration_ms / sample_ms)
    if not math.isclose(num_samples * sample_ms, duration_ms):
        raise ValueError(
            f"duration_ms must be a multiple of sample_ms={sample_ms}, got {duration_ms}"
        )
    skip = round(transient_ms / sample_ms)
    if not 0 <= skip <= num_samples - 2:
        raise ValueError(
            f"transient_ms must lie in [0, duration_ms - 2 * sample_ms], got {transient_ms!r} "
            f"with duration_ms={duration_ms}"
        )
    num_steps = num_samples * sample_every
    weights = np.asarray(conn.weights)
    n = weights.shape[0]
    net = make_network(weights, conn.lengths, speed=speed)
    max_lag = max_lag_steps(conn.lengths, speed, dt)
    sc = jnp.asarray(weights)

    def make_sim(sigma: ArrayLike):
        return make_simulator(
            mpr,
            dt=dt,
            num_steps=num_steps,
            max_lag=max_lag,
            noise=AdditiveNoise(sigma, states=(1,)),
            monitors=(temporal_average((0,), name="r"),),
            sample_every=sample_every,
        )

    block_steps = make_sim(0.0).block_steps

    def params(points: Mapping[str, Array]) -> SimParams:
        return SimParams(MPRParams(eta=points["eta"]), LinearParams(a=points["coupling"]))

    def features(r: Array) -> dict[str, Array]:
        """``r`` ``(T, n, B)`` after the transient -> ``{feature: (B,)}``."""
        fc = observe.functional_connectivity(r, axis=0)
        return {
            "mean_r": r.mean(axis=(0, 1)),
            "sd_r": r.std(axis=0).mean(axis=0),
            "fc_mean": observe.fc_upper(fc).mean(axis=0),
            "fc_sc_corr": observe.fc_corr(fc, sc[..., None]),
        }

    def simulate_fn(points: Mapping[str, Array], keys: Array) -> dict[str, Array]:
        missing = set(GRID_NAMES) - set(points)
        if missing:
            raise ValueError(f"points must have the names {GRID_NAMES}, missing {sorted(missing)}")
        if keys is None:
            raise ValueError("keys: the MPR sweep is stochastic; give sweep_grid a key")
        b = points["eta"].shape[0]
        dtype = jnp.result_type(float)
        sim = make_sim(jnp.reshape(points["sigma"], (1, 1, b)))
        z = jax.vmap(lambda k: draw_noise(k, num_steps, (1, n), block_steps, dtype=dtype))(keys)
        res = sim.run_batch(z, params(points), net, batch_size=b)
        r = jnp.moveaxis(res.outputs["r"][:, skip:, 0, :], 0, -1)  # (T, n, B)
        return features(r)

    setup = {
        "make_sim": make_sim,
        "network": net,
        "params": params,
        "features": features,
        "n_nodes": n,
        "num_steps": num_steps,
        "skip": skip,
        "dt": dt,
        "speed": speed,
        "max_lag": max_lag,
        "duration_ms": duration_ms,
        "transient_ms": transient_ms,
        "connectome": conn.name,
    }
    return simulate_fn, setup


# ----------------------------------------------------------------------------- the workflow
def run(
    out_dir: str | Path | None = None,
    *,
    seed: int = 0,
    quick: bool = False,
    progress: bool = True,
    grid: Mapping[str, ArrayLike] | None = None,
    batch_size: int = 32,
) -> WorkflowReport:
    """Sweep (coupling, noise, excitability) of an MPR network and show the features as heat maps.

    Default grid (:data:`DEFAULT_GRID`): coupling ``a`` in 0..2 (8 values), noise ``sigma`` in
    {0.1, 0.3, 0.5}, ``eta`` in -4.9..-4.2 (8 values): 192 simulations of 700 ms (stochastic
    Heun, dt 0.02 ms, features from the last 500 ms) on the Hagmann 84-region connectome with
    delays at 6 mm/ms (lags up to 2074 steps). ``quick``: a 3 x 2 x 3 grid of 300 ms runs.

    Parameters
    ----------
    out_dir:
        Folder for ``heatmaps.png`` (rows: features, columns: noise levels; axes eta and
        coupling), ``sweep.csv`` (one line per grid point), ``sweep.npz`` (grid axes and feature
        arrays shaped by the grid) and ``report.json``; ``None`` writes nothing.
    seed:
        Seed of the noise (point ``g`` uses ``fold_in(key(seed), g)``).
    quick:
        Small grid and short runs (a smoke run of a few seconds after compilation).
    progress:
        Show a progress bar over the batches.
    grid:
        ``{"coupling": ..., "sigma": ..., "eta": ...}`` to override the default values (all
        three names; the heat maps take eta as x, coupling as y, a panel per sigma).
    batch_size:
        Grid points per compiled call. The noise of a batch is drawn up front:
        ``batch_size * num_steps * 84 * 4`` bytes (about 380 MB at the defaults).

    Returns
    -------
    :class:`~vbinfer.workflows.WorkflowReport`: one row per feature (its range over the grid
    and the grid point of its maximum), metrics with the grid shape, timings and throughput
    (simulations/s and node-steps/s, compilation excluded); ``passed`` is ``None`` (a sweep
    has no recovery criteria) unless a simulation diverged (``False``).

    Examples
    --------
    >>> report = run(None, quick=True, progress=False)  # doctest: +SKIP
    >>> report.metrics["grid_shape"]  # doctest: +SKIP
    [3, 2, 3]
    """
    if grid is None:
        grid = QUICK_GRID if quick else DEFAULT_GRID
    axes = _check_grid(grid)
    if set(axes) != set(GRID_NAMES):
        raise ValueError(f"grid must have exactly the names {GRID_NAMES}, got {tuple(axes)}")
    axes = {name: axes[name] for name in GRID_NAMES}
    if quick:
        fn, setup = make_mpr_sweep_fn(duration_ms=300.0, transient_ms=100.0)
    else:
        fn, setup = make_mpr_sweep_fn()
    result = sweep_grid(fn, axes, batch_size, key=jax.random.key(seed), progress=progress)
    vals = result.values
    finite = np.all([np.isfinite(v) for v in vals.values()], axis=0)
    node_steps = result.num_points * setup["num_steps"] * setup["n_nodes"]
    metrics: dict[str, Any] = {
        "grid_names": list(result.names),
        "grid_shape": list(result.shape),
        "num_simulations": result.num_points,
        "batch_size": int(min(batch_size, result.num_points)),
        "n_nodes": setup["n_nodes"],
        "num_steps": setup["num_steps"],
        "dt_ms": setup["dt"],
        "duration_ms": setup["duration_ms"],
        "transient_ms": setup["transient_ms"],
        "speed_mm_per_ms": setup["speed"],
        "max_lag_steps": setup["max_lag"],
        "compile_s": result.compile_s,
        "run_s": result.run_s,
        "simulations_per_s": result.points_per_s,
        "node_steps_per_s": node_steps / result.run_s if result.run_s > 0 else float("inf"),
        "non_finite": int(np.sum(~finite)),
    }
    points = grid_points(axes)
    rows = []
    for name, label in FEATURES.items():
        v = vals[name].reshape(-1)
        g = int(np.nanargmax(v)) if np.isfinite(v).any() else 0
        rows.append(
            {
                "feature": name,
                "min": float(np.nanmin(v)) if np.isfinite(v).any() else float("nan"),
                "max": float(v[g]),
                **{f"{k} at max": float(points[k][g]) for k in GRID_NAMES},
                "description": label,
            }
        )
    report = WorkflowReport("sweep", rows, metrics, [], None if finite.all() else False)
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        csv = out / "sweep.csv"
        cols = list(GRID_NAMES) + list(FEATURES)
        table = {**points, **{f: vals[f].reshape(-1) for f in FEATURES}}
        lines = [",".join(cols)]
        lines += [",".join(f"{table[c][g]:.6g}" for c in cols) for g in range(result.num_points)]
        csv.write_text("\n".join(lines) + "\n")
        npz = out / "sweep.npz"
        np.savez_compressed(
            npz,
            grid_names=np.asarray(result.names),
            **{f"axis_{k}": v for k, v in axes.items()},
            **{f"feature_{k}": v for k, v in vals.items()},
        )
        png = out / "heatmaps.png"
        plot_heatmaps(result).savefig(png, dpi=110)
        report.files = [png, csv, npz]
        report.files.append(report.save_json(out / "report.json"))
    return report


def plot_heatmaps(result: SweepResult, features: Mapping[str, str] | None = None):
    """Heat maps of a sweep over (coupling, sigma, eta): rows features, columns sigma values.

    Each panel shows a feature over eta (x) and coupling (y) at one noise level, with one
    colour scale per feature (row). Returns a matplotlib ``Figure`` (no global state).
    """
    from matplotlib.figure import Figure

    features = FEATURES if features is None else features
    order = [result.names.index(k) for k in GRID_NAMES]
    ax_c, ax_s, ax_e = (result.axes[k] for k in GRID_NAMES)
    nrow, ncol = len(features), ax_s.size
    fig = Figure(figsize=(2.8 * ncol + 1.4, 2.3 * nrow + 0.4), layout="constrained")
    axes = fig.subplots(nrow, ncol, squeeze=False)
    for i, (name, label) in enumerate(features.items()):
        v = np.transpose(result.values[name], order)  # (coupling, sigma, eta)
        lo, hi = float(np.nanmin(v)), float(np.nanmax(v))
        for j, s in enumerate(ax_s):
            ax = axes[i, j]
            im = ax.imshow(
                v[:, j, :],
                origin="lower",
                aspect="auto",
                vmin=lo,
                vmax=hi,
                cmap="viridis",
                extent=_extent(ax_e, ax_c),
            )
            if i == 0:
                ax.set_title(f"sigma = {s:g}", fontsize=9)
            if i == nrow - 1:
                ax.set_xlabel("eta")
            if j == 0:
                ax.set_ylabel("coupling a")
        fig.colorbar(im, ax=list(axes[i]), label=label, shrink=0.9)
    return fig


def _extent(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float, float]:
    """Pixel edges for values at (possibly uneven) centres, one pixel per value."""

    def edges(v: np.ndarray) -> tuple[float, float]:
        if v.size == 1:
            return float(v[0]) - 0.5, float(v[0]) + 0.5
        return float(v[0] - (v[1] - v[0]) / 2), float(v[-1] + (v[-1] - v[-2]) / 2)

    return (*edges(x), *edges(y))
