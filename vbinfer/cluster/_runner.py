"""What a worker runs: one compiled, vmapped batch per chunk, compiled once per process.

The user's function travels to workers as cloudpickle bytes with their SHA-256 digest. Each
process keeps the jitted batch function of the digests it has seen (a small LRU), so a worker
traces and compiles a function once and every later chunk of the same shape reuses the
executable. Every chunk is padded to the full chunk size (repeating its last point) so that one
shape, hence one executable, serves the whole sweep.
"""

from __future__ import annotations

import hashlib
import os
import threading
import traceback
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "ChunkError",
    "FnSpec",
    "cache_info",
    "local_batch_fn",
    "make_batch_fn",
    "make_fn_spec",
    "run_chunk",
]

_CACHE_SIZE = 8
_CACHE: OrderedDict[str, Callable] = OrderedDict()  # per process: digest -> jitted batch fn
_BUILDS: dict[str, int] = {}  # per process: digest -> times built (1 unless evicted)
_LOCK = threading.Lock()


class ChunkError(RuntimeError):
    """A chunk raised on a worker; the message holds the original type, message and traceback.

    (Re-raised as this plain, picklable type so that any error, including XLA runtime errors,
    travels back to the client intact.)
    """


class FnSpec(NamedTuple):
    """A function as shipped to workers.

    Attributes
    ----------
    payload: ``cloudpickle.dumps(fn)``.
    digest: SHA-256 hex digest of ``payload`` (the compile-cache key).
    keyed: whether ``fn`` takes a PRNG key first: ``fn(key, point)`` instead of ``fn(point)``.
    """

    payload: bytes
    digest: str
    keyed: bool


def make_fn_spec(fn: Callable, keyed: bool) -> FnSpec:
    """Pickle ``fn`` (cloudpickle: lambdas and closures too) and hash it."""
    import cloudpickle

    payload = cloudpickle.dumps(fn)
    return FnSpec(payload, hashlib.sha256(payload + bytes([keyed])).hexdigest(), keyed)


def make_batch_fn(fn: Callable, keyed: bool) -> Callable:
    """``jit(vmap(point -> fn(fold_in(key, index), point)))``: one compiled batch.

    The returned function takes ``(index, key, points)``: ``index`` ``(B,)`` uint32 global
    point indices, ``key`` the base PRNG key (ignored when ``keyed`` is false) and ``points`` a
    pytree with leading axis ``B``. Point ``i``'s key is ``fold_in(key, index[i])``: it depends
    on the seed and the point's global index only, never on chunking or placement.
    """
    import jax

    if keyed:

        def one(i, key, point):
            return fn(jax.random.fold_in(key, i), point)

    else:

        def one(i, key, point):
            del i, key
            return fn(point)

    return jax.jit(jax.vmap(one, in_axes=(0, None, 0)))


def _cached_batch_fn(spec: FnSpec, fn: Callable | None = None) -> Callable:
    """The jitted batch function of ``spec`` from this process's cache, built on a miss (from
    ``fn`` when given, else by unpickling the payload)."""
    with _LOCK:
        f = _CACHE.get(spec.digest)
        if f is not None:
            _CACHE.move_to_end(spec.digest)
            return f
    if fn is None:
        import cloudpickle

        fn = cloudpickle.loads(spec.payload)
    f = make_batch_fn(fn, spec.keyed)
    with _LOCK:
        _CACHE[spec.digest] = f
        _BUILDS[spec.digest] = _BUILDS.get(spec.digest, 0) + 1
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return f


def local_batch_fn(fn: Callable, keyed: bool) -> Callable:
    """The batch function of ``fn`` for this process, through the same cache as the workers:
    a second sweep of the same function (e.g. a resumed run) reuses the executables."""
    return _cached_batch_fn(make_fn_spec(fn, keyed), fn)


def cache_info() -> dict[str, Any]:
    """This process's compile cache: ``{"pid", "builds": {digest: n}, "executables": {digest:
    compiled shapes}}``. Run it on every worker with ``client.run(cache_info)``."""
    with _LOCK:
        return {
            "pid": os.getpid(),
            "builds": dict(_BUILDS),
            "executables": {d: f._cache_size() for d, f in _CACHE.items()},
        }


def wrap_key(key_data: np.ndarray | None, impl: str | None):
    """Rebuild a typed PRNG key from its data and implementation name (``None`` -> ``None``)."""
    import jax

    if key_data is None:
        return None
    return jax.random.wrap_key_data(np.asarray(key_data), impl=impl)


def run_batch(batch_fn: Callable, index: np.ndarray, key: Any, points: Any, n_real: int) -> list:
    """Run one padded chunk and return its output leaves, unpadded, as NumPy arrays."""
    import jax

    if key is None:
        key = jax.random.key(0)  # unused by an unkeyed function, but jit needs an argument
    out = batch_fn(np.asarray(index, np.uint32), key, points)
    return [np.asarray(x)[:n_real] for x in jax.tree_util.tree_leaves(out)]


def run_chunk(
    spec: FnSpec,
    key_data: np.ndarray | None,
    key_impl: str | None,
    index: np.ndarray,
    points: Any,
    n_real: int,
) -> list[np.ndarray]:
    """The task a worker runs for one chunk (see :func:`make_batch_fn` for the arguments)."""
    try:
        return run_batch(
            _cached_batch_fn(spec), index, wrap_key(key_data, key_impl), points, n_real
        )
    except Exception as e:  # travel back as a plain, picklable error (dask retries it)
        raise ChunkError(
            f"{type(e).__name__}: {e}\n--- worker traceback (pid {os.getpid()}) ---\n"
            f"{traceback.format_exc()}"
        ) from None
