"""``vbinfer sweep CONFIG`` and ``vbinfer sbc CONFIG``: the job-file commands.

Wire them into the ``vbinfer`` command with :func:`add_parsers` (each sub-command sets
``args.func``, which returns the exit status)::

    from vbinfer.cluster.cli import add_parsers
    add_parsers(sub)                 # sub = parser.add_subparsers(...)
    ...
    return args.func(args)

Both commands run in-process by default, on a Dask cluster with ``--scheduler ADDRESS``, or on
a local cluster of worker processes they start with ``--local-workers N``. They write the store
named in the job file (or ``--store``), resume it if it exists, and finish with a summary.
Exit status: 0 when every chunk finished, 1 when some chunks failed (listed with their
parameters), 2 for a bad job file.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path

__all__ = ["add_parsers", "add_sbc_parser", "add_sweep_parser", "run_sbc", "run_sweep"]


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="TOML job file (see examples/ and docs/cluster.md)")
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="Dask scheduler address, e.g. tcp://10.0.0.1:8786 (default: run in-process)",
    )
    where.add_argument(
        "--local-workers",
        type=int,
        metavar="N",
        help="start a local cluster of N single-threaded, core-pinned worker processes",
    )
    p.add_argument("--store", help="output store folder (overrides [run] store)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_sweep_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``sweep CONFIG`` to an ``argparse`` sub-parser collection."""
    p = subparsers.add_parser(
        "sweep",
        help="parameter sweep in compiled chunks (in-process or on Dask), resumable",
        description="Run the parameter sweep of a TOML job file; rerun to resume.",
    )
    _common(p)
    p.set_defaults(func=run_sweep)
    return p


def add_sbc_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``sbc CONFIG`` to an ``argparse`` sub-parser collection."""
    p = subparsers.add_parser(
        "sbc",
        help="simulation-based calibration in compiled chunks (in-process or on Dask), resumable",
        description="Run the simulation-based calibration of a TOML job file; rerun to resume.",
    )
    _common(p)
    p.set_defaults(func=run_sbc)
    return p


def add_parsers(subparsers) -> None:
    """Add both ``sweep`` and ``sbc``."""
    add_sweep_parser(subparsers)
    add_sbc_parser(subparsers)


@contextlib.contextmanager
def _client(args: argparse.Namespace):
    if args.scheduler:
        yield args.scheduler
    elif args.local_workers:
        from vbinfer.cluster.local import local_cluster

        if args.local_workers < 1:
            raise ValueError(f"--local-workers must be >= 1, got {args.local_workers}")
        with local_cluster(args.local_workers) as cluster:
            yield cluster
    else:
        yield None


def _where(args: argparse.Namespace) -> str:
    if args.scheduler:
        return f"Dask scheduler {args.scheduler}"
    if args.local_workers:
        return f"local cluster of {args.local_workers} worker processes"
    return "in-process"


def run_sweep(args: argparse.Namespace) -> int:
    """``vbinfer sweep``: run the job, write ``<store>/sweep.nc``, print a summary."""
    import jax

    from vbinfer.cluster._sweep import SweepFailedError, sweep
    from vbinfer.cluster.config import load_config, sweep_job

    try:
        job = sweep_job(load_config(args.config))
    except ValueError as e:
        print(f"vbinfer sweep: {e}", file=sys.stderr)
        return 2
    store = Path(args.store or job.store)
    n = 1
    for v in job.grid.values():
        n *= len(v)
    print(
        f"vbinfer sweep: {n} points in chunks of {job.chunk_size}, {_where(args)}, store {store}",
        flush=True,
    )
    t0 = time.perf_counter()
    try:
        with _client(args) as client:
            res = sweep(
                job.fn,
                job.grid,
                key=None if job.seed is None else jax.random.key(job.seed),
                chunk_size=job.chunk_size,
                store=store,
                client=client,
                retries=job.retries,
                progress=not args.no_progress,
                settings=job.settings,
            )
    except SweepFailedError as e:
        print(f"vbinfer sweep: {e}", file=sys.stderr)
        return 1
    wall = time.perf_counter() - t0
    res.to_xarray().to_netcdf(store / "sweep.nc", engine="h5netcdf")
    new = sum(min(job.chunk_size, n - c * job.chunk_size) for c in res.computed)
    summary = {
        "points": n,
        "chunks_computed": len(res.computed),
        "chunks_loaded": len(res.loaded),
        "wall_s": round(wall, 3),
        "points_per_s": round(new / wall, 2) if new else None,
        "outputs": {k: list(v.shape) for k, v in res.outputs.items()}
        if isinstance(res.outputs, dict)
        else None,
        "result": str(store / "sweep.nc"),
    }
    for k, v in summary.items():
        print(f"  {k:<16} {v}")
    (store / "summary.json").write_text(json.dumps(summary, indent=1))
    return 0


def run_sbc(args: argparse.Namespace) -> int:
    """``vbinfer sbc``: run the job, write ranks (``sbc.nc``) and ``ranks.png``, print p-values."""
    import jax
    import numpy as np

    from vbinfer.cluster._sbc import sbc
    from vbinfer.cluster._sweep import SweepFailedError
    from vbinfer.cluster.config import load_config, sbc_job

    try:
        job = sbc_job(load_config(args.config))
    except ValueError as e:
        print(f"vbinfer sbc: {e}", file=sys.stderr)
        return 2
    store = Path(args.store or job.store)
    print(
        f"vbinfer sbc: {job.num_replicates} replicates of {job.method} in chunks of "
        f"{job.chunk_size}, {_where(args)}, store {store}",
        flush=True,
    )
    try:
        with _client(args) as client:
            res = sbc(
                jax.random.key(job.seed),
                job.problem,
                job.num_replicates,
                job.method,
                chunk_size=job.chunk_size,
                store=store,
                client=client,
                retries=job.retries,
                progress=not args.no_progress,
                **job.options,
            )
    except SweepFailedError as e:
        print(f"vbinfer sbc: {e}", file=sys.stderr)
        return 1
    import matplotlib

    matplotlib.use("Agg")
    from vbinfer.inference.plots import plot_sbc_ranks

    fig = plot_sbc_ranks(res)
    fig.savefig(store / "ranks.png", dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    summary = {
        "replicates": job.num_replicates,
        "method": job.method,
        "num_draws": res.num_draws,
        "wall_s": round(res.wall_time_s, 3),
        "p_values": {k: np.atleast_1d(v).round(4).tolist() for k, v in res.p_values.items()},
        "ranks_png": str(store / "ranks.png"),
    }
    for k, v in summary.items():
        print(f"  {k:<12} {v}")
    (store / "summary.json").write_text(json.dumps(summary, indent=1))
    return 0
