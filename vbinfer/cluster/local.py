"""Thread settings for JAX on Dask workers, and a local multi-process cluster that uses them.

XLA on CPU sizes its thread pools from the CPU affinity mask of the process when its backend
starts, and its idle threads spin. Several JAX worker processes on one machine therefore
oversubscribe the cores unless each is confined to its own cores *before JAX starts*: two
unpinned JAX processes on 2 cores each ran 1.65x slower in our measurements
(``/work/shared/PERF-NOTES.md``), and ``XLA_FLAGS`` alone did not prevent it. So:

- one thread per Dask worker (``threads_per_worker=1``): the vmapped chunk is the parallelism;
- each worker process pinned to its own ``threads_per_worker`` cores by a worker preload that
  runs before the first task imports JAX (Linux only; elsewhere pinning is skipped);
- in the worker environment: ``XLA_FLAGS=--xla_cpu_multi_thread_eigen=false`` (Eigen's own
  thread pool off) and ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` / ``OPENBLAS_NUM_THREADS`` =
  threads per worker.

``intra_op_parallelism_threads`` is a TensorFlow option, not an XLA flag: XLA aborts the
process on ``XLA_FLAGS=--intra_op_parallelism_threads=1``, so it is deliberately not set.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["local_cluster", "pin_preload", "worker_env"]


def worker_env(threads_per_worker: int = 1, xla_flags: str | None = None) -> dict[str, str]:
    """Environment variables for a JAX Dask worker with ``threads_per_worker`` threads.

    Parameters
    ----------
    threads_per_worker:
        Threads (and cores) each worker may use.
    xla_flags:
        Extra ``XLA_FLAGS`` appended after ``--xla_cpu_multi_thread_eigen=false``.

    Returns
    -------
    ``{name: value}`` to pass as ``LocalCluster(env=...)``, ``dask worker`` environment or the
    ``job_script_prologue`` of a dask-jobqueue cluster (as ``export NAME=value`` lines).

    Examples
    --------
    >>> worker_env()["XLA_FLAGS"]
    '--xla_cpu_multi_thread_eigen=false'
    """
    if (
        isinstance(threads_per_worker, bool)
        or not isinstance(threads_per_worker, int)
        or threads_per_worker < 1
    ):
        raise ValueError(f"threads_per_worker must be an integer >= 1, got {threads_per_worker!r}")
    flags = "--xla_cpu_multi_thread_eigen=false"
    if xla_flags:
        flags = f"{flags} {xla_flags}"
    n = str(threads_per_worker)
    return {
        "XLA_FLAGS": flags,
        "OMP_NUM_THREADS": n,
        "MKL_NUM_THREADS": n,
        "OPENBLAS_NUM_THREADS": n,
    }


_PIN_SOURCE = """\
# vbinfer: pin this Dask worker process to its own cores before JAX starts
import os


def dask_setup(worker):
    if not hasattr(os, "sched_setaffinity"):
        return
    try:
        rank = int(worker.name)
    except (TypeError, ValueError):
        return
    cpus = sorted(os.sched_getaffinity(0))
    k = {threads}
    mine = {{cpus[(rank * k + j) % len(cpus)] for j in range(min(k, len(cpus)))}}
    for tid in os.listdir("/proc/self/task"):  # every thread already started, not only this one
        try:
            os.sched_setaffinity(int(tid), mine)
        except OSError:
            pass
    os.sched_setaffinity(0, mine)
"""


def pin_preload(threads_per_worker: int = 1) -> str:
    """Source of a Dask worker preload that pins worker ``name = rank`` (an integer, as in a
    ``LocalCluster``) to cores ``rank * threads .. rank * threads + threads - 1`` (modulo the
    cores it may use). Pass it as ``preload=[pin_preload()]`` (Dask runs preload source text)."""
    if (
        isinstance(threads_per_worker, bool)
        or not isinstance(threads_per_worker, int)
        or threads_per_worker < 1
    ):
        raise ValueError(f"threads_per_worker must be an integer >= 1, got {threads_per_worker!r}")
    return _PIN_SOURCE.format(threads=threads_per_worker)


def local_cluster(
    n_workers: int = 2,
    threads_per_worker: int = 1,
    *,
    pin: bool = True,
    host: str = "127.0.0.1",
    dashboard_address: str | None = None,
    **kwargs: Any,
):
    """A Dask ``LocalCluster`` of worker processes set up for JAX (see the module notes).

    Parameters
    ----------
    n_workers:
        Worker processes (each compiles a sweep's function once).
    threads_per_worker:
        Threads per worker; ``n_workers * threads_per_worker`` should not exceed the cores.
    pin:
        Pin each worker to its own cores (Linux; ignored elsewhere).
    host:
        Interface to listen on; the default keeps the cluster on loopback.
    dashboard_address:
        ``None`` for no dashboard, e.g. ``":8787"`` for one.
    **kwargs:
        Passed to ``distributed.LocalCluster`` (``env`` entries override :func:`worker_env`).

    Returns
    -------
    ``distributed.LocalCluster``; use it as a context manager, or pass it (or
    ``distributed.Client(cluster)``) as ``client=`` to :func:`~vbinfer.cluster.sweep`.

    Examples
    --------
    >>> with local_cluster(2) as cluster:                        # doctest: +SKIP
    ...     res = sweep(fn, grid, client=cluster, store="out")
    """
    from distributed import LocalCluster

    for name, v in (("n_workers", n_workers), ("threads_per_worker", threads_per_worker)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
    env = {**worker_env(threads_per_worker), **kwargs.pop("env", {})}
    preload = list(kwargs.pop("preload", []))
    if pin and hasattr(os, "sched_setaffinity"):
        preload.append(pin_preload(threads_per_worker))
    return LocalCluster(
        n_workers=n_workers,
        threads_per_worker=threads_per_worker,
        processes=True,
        host=host,
        dashboard_address=dashboard_address,
        env=env,
        preload=preload,
        **kwargs,
    )
