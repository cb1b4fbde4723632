"""Parameter sweeps in compiled, vmapped chunks: in-process or on a Dask cluster, resumable.

:func:`sweep` evaluates a pure function at every point of a grid. The points are cut into
chunks of ``chunk_size``; each chunk is one call of ``jit(vmap(fn))`` (a task on a cluster,
never one task per point), padded to the full size so that one executable serves every chunk.
With a ``store`` folder every finished chunk is written to disk at once (one netCDF file per
chunk, atomically), so a run that is interrupted or partly fails resumes with the missing
chunks only. A chunk that raises is retried ``retries`` times and, if it still fails, reported
with its parameters (:class:`SweepFailedError`), never dropped.

Randomness is deterministic: with ``key=``, point ``i`` gets ``jax.random.fold_in(key, i)``
(``i`` its global index), so its random numbers do not depend on chunking, resumption or
placement. With the same ``chunk_size`` every chunk runs the same compiled program wherever it
runs, so a sweep on a cluster, or resumed from a store, equals the in-process sweep bit for
bit; another ``chunk_size`` compiles another batch width and may differ in the last bit.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np

from vbinfer.cluster._grid import PointSet, chunk_bounds, leaf_names, make_point_set
from vbinfer.cluster._runner import local_batch_fn, make_fn_spec, run_batch, run_chunk
from vbinfer.cluster._store import SweepStore

__all__ = ["ChunkFailure", "SweepFailedError", "SweepResult", "sweep"]


class ChunkFailure(NamedTuple):
    """A chunk that failed on every attempt.

    Attributes
    ----------
    chunk: chunk index.
    index: ``(n,)`` global indices of its points.
    params: ``{name: (n, ...)}`` the parameter values of its points.
    error: the last error: type, message and traceback.
    attempts: how many times it ran (``1 + retries``; on Dask a chunk whose workers kept dying
        ends as ``KilledWorker`` after ``distributed.scheduler.allowed-failures`` deaths).
    """

    chunk: int
    index: np.ndarray
    params: dict[str, np.ndarray]
    error: str
    attempts: int

    def describe(self, max_values: int = 6) -> str:
        """One paragraph: chunk, points and parameter values (abbreviated), first error line."""
        with np.printoptions(threshold=max_values, edgeitems=max_values // 2, precision=6):
            vals = ", ".join(f"{k}={np.asarray(v)}" for k, v in self.params.items())
        first = self.error.strip().splitlines()[0] if self.error.strip() else "?"
        return (
            f"chunk {self.chunk} (points {int(self.index[0])}..{int(self.index[-1])}, "
            f"{self.attempts} attempts): {vals}\n    {first}"
        )

    def to_json(self) -> dict[str, Any]:
        """JSON-ready record (for ``failures.json``)."""
        return {
            "chunk": self.chunk,
            "points": np.asarray(self.index).tolist(),
            "params": {k: np.asarray(v).tolist() for k, v in self.params.items()},
            "error": self.error,
            "attempts": self.attempts,
        }


class SweepFailedError(RuntimeError):
    """Some chunks failed on every attempt; the others finished (and are in the store).

    Attributes
    ----------
    failures: list of :class:`ChunkFailure`, with the parameters of every failed point.
    store: the store folder (``failures.json`` there lists the same), or ``None``.
    num_chunks: chunks in the sweep.
    """

    def __init__(self, failures: list[ChunkFailure], store: Path | None, num_chunks: int):
        self.failures = failures
        self.store = store
        self.num_chunks = num_chunks
        where = f"; see {store / 'failures.json'}" if store is not None else ""
        lines = "\n".join("  " + f.describe() for f in failures[:20])
        more = f"\n  ... and {len(failures) - 20} more" if len(failures) > 20 else ""
        super().__init__(
            f"{len(failures)} of {num_chunks} chunks failed on every attempt{where}. The other "
            f"chunks finished; run again with the same store to retry only these:\n{lines}{more}"
        )


class SweepResult(NamedTuple):
    """Result of :func:`sweep`.

    Attributes
    ----------
    points: the parameter sets, leaves ``(num_points, ...)`` (for a grid ``{name: (num_points,)}``
        in C order, the last parameter varying fastest).
    outputs: ``fn``'s output pytree with a leading ``num_points`` axis on every leaf.
    grid: ``{name: values}`` of a Cartesian grid, or ``None`` for explicit points.
    store: the store folder, or ``None``.
    computed: indices of the chunks computed by this call.
    loaded: indices of the chunks read back from the store (finished by an earlier run).
    chunk_size: points per chunk.
    wall_time_s: seconds for the whole call.
    """

    points: Any
    outputs: Any
    grid: dict[str, np.ndarray] | None
    store: Path | None
    computed: tuple[int, ...]
    loaded: tuple[int, ...]
    chunk_size: int
    wall_time_s: float

    @property
    def num_points(self) -> int:
        """Number of parameter sets."""
        return int(jax.tree_util.tree_leaves(self.points)[0].shape[0])

    def to_xarray(self, unstack: bool = False):
        """The result as an ``xarray.Dataset``: dimension ``point``, the parameters as
        coordinates, the outputs as variables (dotted pytree names); with ``unstack=True`` a
        Cartesian grid gets one dimension per parameter instead of ``point``."""
        import xarray as xr

        from vbinfer.cluster._store import _dims, _unstack

        pnames = leaf_names(self.points, "points")
        onames = leaf_names(self.outputs, "outputs")
        coords = {"point": np.arange(self.num_points)}
        coords.update(
            {
                n: (_dims(n, np.ndim(v)), np.asarray(v))
                for n, v in zip(pnames, jax.tree_util.tree_leaves(self.points), strict=True)
            }
        )
        data = {
            n: (_dims(n, np.ndim(v)), np.asarray(v))
            for n, v in zip(onames, jax.tree_util.tree_leaves(self.outputs), strict=True)
        }
        ds = xr.Dataset(data, coords=coords)
        if unstack:
            if self.grid is None:
                raise ValueError("unstack=True needs a Cartesian grid; this sweep used points=")
            ds = _unstack(ds, list(self.grid))
        return ds


class _Progress:
    """Whole-job progress on stderr: chunks done / total, points per second, time left."""

    def __init__(self, total: int, done: int, desc: str, enabled: bool):
        self.bar = None
        self.t0 = time.perf_counter()
        self.new_points = 0
        self.failed = 0
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(
                total=total,
                initial=done,
                desc=desc,
                unit="chunk",
                file=sys.stderr,
                dynamic_ncols=True,
                smoothing=0.1,
            )

    def update(self, n_points: int, failed: bool = False) -> None:
        self.new_points += n_points
        self.failed += failed
        if self.bar is None:
            return
        rate = self.new_points / max(time.perf_counter() - self.t0, 1e-9)
        post = f"{rate:,.1f} points/s"
        if self.failed:
            post += f", {self.failed} failed"
        self.bar.set_postfix_str(post, refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class _Writer:
    """Chunk files written by one background thread, so that the next chunk computes (or the
    next result arrives) while the last one is written; at most ``max_pending`` in flight."""

    def __init__(self, max_pending: int = 2):
        self.pool = None
        self.pending: list = []
        self.max_pending = max_pending

    def submit(self, fn: Callable, *args: Any) -> None:
        if self.pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self.pool = ThreadPoolExecutor(1, thread_name_prefix="vbinfer-store")
        for f in [f for f in self.pending if f.done()]:
            self.pending.remove(f)
            f.result()  # a failed write stops the run here
        self.pending.append(self.pool.submit(fn, *args))
        while len(self.pending) > self.max_pending:
            self.pending.pop(0).result()

    def close(self, raise_errors: bool) -> None:
        if self.pool is None:
            return
        error = None
        for f in self.pending:
            try:
                f.result()
            except BaseException as e:
                error = error or e
        self.pending.clear()
        self.pool.shutdown()
        if raise_errors and error is not None:
            raise error


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _key_parts(key: Any) -> tuple[Any, np.ndarray | None, str | None]:
    """``(typed key or None, key data, impl name)``; raw uint32 keys are wrapped."""
    if key is None:
        return None, None, None
    if isinstance(key, jax.Array) and jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        if key.shape != ():
            raise ValueError(f"key must be a single PRNG key, got a key array of shape {key.shape}")
        typed = key
    else:
        raw = np.asarray(key)
        if raw.dtype != np.uint32 or raw.shape != (2,):
            raise ValueError(
                "key must be a PRNG key (jax.random.key(seed)) or None, got "
                f"{type(key).__name__} of dtype {getattr(raw, 'dtype', None)} shape {raw.shape}"
            )
        typed = jax.random.wrap_key_data(raw)
    impl = str(jax.random.key_impl(typed))
    return typed, np.asarray(jax.random.key_data(typed)), impl


def _output_struct(fn: Callable, pset: PointSet, key: Any) -> tuple[Any, list[str]]:
    """Shapes and dtypes of ``fn`` at one point (traced, not compiled) and output names."""
    one = pset.take(np.array([0]))
    point = jax.tree_util.tree_map(lambda x: jax.ShapeDtypeStruct(x.shape[1:], x.dtype), one)
    try:
        if key is None:
            out = jax.eval_shape(fn, point)
        else:
            out = jax.eval_shape(fn, key, point)
    except Exception as e:
        sig = "fn(key, point)" if key is not None else "fn(point)"
        raise ValueError(
            f"fn could not be traced as {sig} at one parameter set (leaves {pset.names}): "
            f"{type(e).__name__}: {e}"
        ) from e
    names = leaf_names(out, "fn's outputs")
    for n, leaf in zip(names, jax.tree_util.tree_leaves(out), strict=True):
        if np.dtype(leaf.dtype).kind not in "biuf":
            raise ValueError(
                f"fn's output {n!r} has dtype {leaf.dtype}; a sweep stores booleans, integers "
                "and floats (return jax.random.key_data(k) for keys)"
            )
    clash = set(names) & (set(pset.names) | {"point"})
    if clash:
        raise ValueError(
            f"fn's output names {sorted(clash)} collide with parameter names {pset.names} or "
            "'point'; rename the outputs"
        )
    return out, names


def _resolve_client(client: Any) -> tuple[Any, bool]:
    """``(distributed.Client, created_here)`` from a Client, a cluster object or an address."""
    from distributed import Client

    if isinstance(client, Client):
        return client, False
    if isinstance(client, str) or hasattr(client, "scheduler_address"):
        return Client(client, set_as_default=False), True
    raise ValueError(
        "client must be None (in-process), a distributed.Client, a cluster object or a scheduler "
        f"address such as 'tcp://127.0.0.1:8786', got {type(client).__name__}"
    )


def sweep(
    fn: Callable,
    grid: Mapping[str, Any] | None = None,
    *,
    points: Any | None = None,
    key: jax.Array | None = None,
    chunk_size: int = 64,
    store: str | os.PathLike | None = None,
    client: Any = None,
    retries: int = 2,
    progress: bool = True,
    name: str = "sweep",
    settings: Mapping[str, Any] | None = None,
) -> SweepResult:
    """Evaluate ``fn`` at every parameter set of a grid, in compiled vmapped chunks.

    Parameters
    ----------
    fn:
        Pure, jittable function of one parameter set returning a pytree of arrays:
        ``fn(point)``, or ``fn(key, point)`` when ``key`` is given. For a ``grid`` a point is
        ``{name: scalar}``; for ``points`` it has the structure of ``points`` without the
        leading axis.
    grid:
        ``{name: 1-D values}`` swept as a Cartesian product (C order, last name fastest).
        Values are cast to the dtype JAX computes in (float32 unless x64 is on).
    points:
        Instead of ``grid``: explicit parameter sets, a pytree of arrays with a leading axis of
        ``num_points`` (e.g. ``{"eta": (n,), "w": (n, 84)}`` or a NamedTuple).
    key:
        PRNG key; point ``i`` (global index) gets ``jax.random.fold_in(key, i)``. ``None``
        for deterministic ``fn(point)``.
    chunk_size:
        Points per compiled batch (one task on a cluster). The last chunk is padded to this
        size (its results discarded), so one executable serves every chunk.
    store:
        Folder for the results, one netCDF file per chunk (see :func:`open_sweep`); a rerun
        with the same folder and settings computes only the chunks without a file. ``None``:
        keep results in memory only.
    client:
        ``None`` to run in this process; a ``distributed.Client``, a Dask cluster object
        (e.g. from :func:`~vbinfer.cluster.local_cluster`) or a scheduler address to run one
        task per chunk on Dask workers.
    retries:
        Extra attempts for a chunk that raises (Dask's ``retries=`` on a cluster, a loop
        in-process). A worker that dies mid-task is handled by Dask itself: the task reruns
        elsewhere (up to ``distributed.scheduler.allowed-failures`` deaths).
    progress:
        Show a progress bar on stderr (chunks done / total, points per second, time left).
    name:
        Label of the progress bar and of the Dask tasks (recorded in the store).
    settings:
        JSON-serialisable description of whatever else determines the results (e.g. model
        settings), recorded in the store's manifest: a store written with other settings, grid,
        key, chunk size or output shapes is refused (the function itself is not compared).

    Returns
    -------
    :class:`SweepResult` with every point's outputs (read back from the store for chunks
    finished earlier).

    Raises
    ------
    ValueError
        Bad arguments, before anything is compiled; or a store holding another run.
    SweepFailedError
        After all other chunks finished, if some chunks failed on every attempt; it lists their
        parameters (also written to ``store/failures.json``).

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> res = sweep(lambda p: {"y": jnp.sin(p["x"]) * p["a"]},
    ...             {"x": jnp.linspace(0, 1, 5), "a": [1.0, 2.0]}, chunk_size=4, progress=False)
    >>> res.outputs["y"].shape
    (10,)
    """
    t0 = time.perf_counter()
    if not callable(fn):
        raise ValueError(f"fn must be callable, got {type(fn).__name__}")
    chunk_size = _check_int("chunk_size", chunk_size, 1)
    retries = _check_int("retries", retries, 0)
    pset = make_point_set(grid, points)
    typed_key, key_data, key_impl = _key_parts(key)
    out_struct, out_names = _output_struct(fn, pset, typed_key)
    out_leaves, out_def = jax.tree_util.tree_flatten(out_struct)
    bounds = chunk_bounds(pset.num_points, chunk_size)

    st = None
    done: set[int] = set()
    if store is not None:
        st = SweepStore(
            store,
            {
                "kind": name,
                "num_points": pset.num_points,
                "chunk_size": chunk_size,
                "num_chunks": len(bounds),
                "params": {
                    n: {"dtype": x.dtype.str, "shape": list(x.shape[1:])}
                    for n, x in zip(pset.names, pset.leaves, strict=True)
                },
                "points_sha256": pset.fingerprint(),
                "grid_axes": None
                if pset.axes is None
                else {k: v.tolist() for k, v in pset.axes.items()},
                "outputs": {
                    n: {"dtype": np.dtype(o.dtype).str, "shape": list(o.shape)}
                    for n, o in zip(out_names, out_leaves, strict=True)
                },
                "key": None if key_data is None else {"impl": key_impl, "data": key_data.tolist()},
                "settings": None if settings is None else dict(settings),
            },
        )
        done = st.done() & set(range(len(bounds)))
    todo = [c for c in range(len(bounds)) if c not in done]

    results = [np.empty((pset.num_points, *o.shape), dtype=np.dtype(o.dtype)) for o in out_leaves]

    def padded(c: int) -> tuple[np.ndarray, Any, int]:
        start, stop = bounds[c]
        idx = np.minimum(np.arange(start, start + chunk_size), stop - 1)
        return idx, pset.take(idx), stop - start

    def accept(c: int, leaves: list[np.ndarray]) -> None:
        start, stop = bounds[c]
        for r, x in zip(results, leaves, strict=True):
            r[start:stop] = x
        if st is not None:
            writer.submit(
                st.write,
                c,
                np.arange(start, stop),
                dict(zip(pset.names, (x[start:stop] for x in pset.leaves), strict=True)),
                dict(zip(out_names, leaves, strict=True)),
            )

    def failure(c: int, error: str, attempts: int) -> ChunkFailure:
        start, stop = bounds[c]
        return ChunkFailure(
            c,
            np.arange(start, stop),
            dict(zip(pset.names, (x[start:stop] for x in pset.leaves), strict=True)),
            error,
            attempts,
        )

    bar = _Progress(len(bounds), len(done), name, progress)
    writer = _Writer()
    failures: list[ChunkFailure] = []
    try:
        if todo and client is None:
            failures = _run_in_process(fn, typed_key, todo, padded, accept, failure, retries, bar)
        elif todo:
            failures = _run_on_dask(
                fn, key_data, key_impl, todo, padded, accept, failure, retries, bar, client, name
            )
    except BaseException:
        writer.close(raise_errors=False)  # finished chunks still reach the disk
        raise
    finally:
        bar.close()
    writer.close(raise_errors=True)

    for c in sorted(done):  # chunks finished by an earlier run
        start, stop = bounds[c]
        index, saved = st.read(c, out_names)
        if not np.array_equal(index, np.arange(start, stop)):
            raise ValueError(
                f"store chunk file {st.path(c)} holds points {index[:3]}... but chunk {c} is "
                f"points {start}..{stop - 1}; the store is inconsistent, use another folder"
            )
        for r, n, o in zip(results, out_names, out_leaves, strict=True):
            r[start:stop] = saved[n].astype(np.dtype(o.dtype), copy=False)

    if failures:
        failures.sort(key=lambda f: f.chunk)
        if st is not None:
            st.write_failures([f.to_json() for f in failures])
        raise SweepFailedError(failures, None if st is None else st.folder, len(bounds))
    if st is not None:
        st.clear_failures()
    return SweepResult(
        pset.tree,
        jax.tree_util.tree_unflatten(out_def, results),
        pset.axes,
        None if st is None else st.folder,
        tuple(sorted(set(todo))),
        tuple(sorted(done)),
        chunk_size,
        time.perf_counter() - t0,
    )


def _run_in_process(fn, key, todo, padded, accept, failure, retries, bar) -> list[ChunkFailure]:
    batch_fn = local_batch_fn(fn, key is not None)
    failures = []
    for c in todo:
        idx, pts, n_real = padded(c)
        for attempt in range(1, retries + 2):
            try:
                leaves = run_batch(batch_fn, idx, key, pts, n_real)
            except Exception as e:
                if attempt <= retries:
                    continue
                tb = traceback.format_exc()
                failures.append(failure(c, f"{type(e).__name__}: {e}\n{tb}", attempt))
                bar.update(n_real, failed=True)
                break
            accept(c, leaves)
            bar.update(n_real)
            break
    return failures


def _run_on_dask(
    fn, key_data, key_impl, todo, padded, accept, failure, retries, bar, client, name
) -> list[ChunkFailure]:
    from distributed import as_completed

    client, created = _resolve_client(client)
    spec = make_fn_spec(fn, key_data is not None)
    tag = f"{name}-{uuid.uuid4().hex[:8]}"
    futures = {}
    failures = []
    try:
        for c in todo:
            idx, pts, n_real = padded(c)
            fut = client.submit(
                run_chunk,
                spec,
                key_data,
                key_impl,
                idx,
                pts,
                n_real,
                key=f"{tag}-chunk-{c:06d}",
                retries=retries,
                pure=False,
            )
            futures[fut.key] = (c, n_real, fut)
        for fut in as_completed([f for _, _, f in futures.values()], loop=client.loop):
            c, n_real, _ = futures.pop(fut.key)
            if fut.status == "finished":
                accept(c, fut.result())
                bar.update(n_real)
            else:
                try:
                    exc = fut.exception()
                    error = f"{type(exc).__name__}: {exc}"
                except Exception as e:  # cancelled futures raise here
                    error = f"{fut.status}: {type(e).__name__}: {e}"
                failures.append(failure(c, error, retries + 1))
                bar.update(n_real, failed=True)
            fut.release()
    finally:
        if futures:  # interrupted: cancel what has not finished
            client.cancel([f for _, _, f in futures.values()])
        if created:
            client.close()
    return failures
