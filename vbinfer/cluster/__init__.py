"""Sweeps and simulation-based calibration in compiled chunks, in-process or on Dask.

:func:`sweep` evaluates a pure function over a grid in ``jit(vmap(fn))`` chunks, one Dask task
per chunk when given a client, with every finished chunk written to a resumable store;
:func:`sbc` runs simulation-based calibration the same way; :func:`local_cluster` starts a
local Dask cluster set up for JAX. See ``docs/cluster.md``.

Names are imported on first use, so that ``vbinfer.cluster.cli`` (the ``vbinfer sweep`` and
``vbinfer sbc`` commands) loads without JAX, numpyro or Dask.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "ChunkError",
    "ChunkFailure",
    "SweepFailedError",
    "SweepResult",
    "cache_info",
    "grid_points",
    "local_cluster",
    "make_replicate_fn",
    "open_sweep",
    "pin_preload",
    "sbc",
    "sweep",
    "worker_env",
]

_WHERE = {
    "ChunkError": "vbinfer.cluster._runner",
    "ChunkFailure": "vbinfer.cluster._sweep",
    "SweepFailedError": "vbinfer.cluster._sweep",
    "SweepResult": "vbinfer.cluster._sweep",
    "cache_info": "vbinfer.cluster._runner",
    "grid_points": "vbinfer.cluster._grid",
    "local_cluster": "vbinfer.cluster.local",
    "make_replicate_fn": "vbinfer.cluster._sbc",
    "open_sweep": "vbinfer.cluster._store",
    "pin_preload": "vbinfer.cluster.local",
    "sbc": "vbinfer.cluster._sbc",
    "sweep": "vbinfer.cluster._sweep",
    "worker_env": "vbinfer.cluster.local",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'vbinfer.cluster' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
