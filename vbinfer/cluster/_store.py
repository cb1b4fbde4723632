"""A sweep store on disk: one netCDF file per chunk, written atomically, plus a manifest.

Layout of a store folder::

    manifest.json             what the chunks belong to (kind, sizes, point fingerprint, grid)
    chunks/chunk_000000.nc    one file per finished chunk (netCDF-4 through xarray + h5netcdf)
    failures.json             chunks that failed in the last run, with their parameters

A chunk file is written under a temporary name in the same folder and renamed
(``os.replace``), so it exists complete or not at all: a run killed mid-write leaves at most a
stray ``.tmp`` file, which is ignored and removed on the next run. A chunk is *done* when its
file exists; a restarted run computes only the chunks without a file.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["SweepStore", "open_sweep"]

FORMAT = "vbinfer.cluster.sweep/1"
ENGINE = "h5netcdf"
_CHUNK_RE = re.compile(r"^chunk_(\d{6})\.nc$")


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _dims(name: str, ndim: int) -> tuple[str, ...]:
    return ("point", *(f"{name}_dim{k}" for k in range(1, ndim)))


class SweepStore:
    """Chunk files of one sweep in ``folder`` (created if needed).

    Parameters
    ----------
    folder: the store folder.
    manifest: JSON-serialisable description of the run; a folder that holds a run with another
        manifest is refused (``ValueError``) so that results of different runs never mix.
    """

    def __init__(self, folder: str | os.PathLike, manifest: dict[str, Any]):
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise ValueError(f"store must be a folder, got the file {self.folder}")
        self.chunks = self.folder / "chunks"
        self.chunks.mkdir(parents=True, exist_ok=True)
        manifest = json.loads(json.dumps({"format": FORMAT, **manifest}))
        path = self.folder / "manifest.json"
        if path.exists():
            old = json.loads(path.read_text())
            if old != manifest:
                diff = sorted(k for k in set(old) | set(manifest) if old.get(k) != manifest.get(k))
                raise ValueError(
                    f"store {self.folder} holds a run with other settings (differing: {diff}; "
                    f"stored {[old.get(k) for k in diff]!r:.300}, this run "
                    f"{[manifest.get(k) for k in diff]!r:.300}); use another folder or delete it"
                )
        else:
            _atomic_write_text(path, json.dumps(manifest, indent=1))
        for stale in self.chunks.glob(".*.tmp"):  # left by a run killed mid-write
            stale.unlink(missing_ok=True)

    def path(self, chunk: int) -> Path:
        """File of chunk ``chunk``."""
        return self.chunks / f"chunk_{chunk:06d}.nc"

    def done(self) -> set[int]:
        """Indices of the chunks that have a file."""
        out = set()
        for p in self.chunks.iterdir():
            m = _CHUNK_RE.match(p.name)
            if m:
                out.add(int(m.group(1)))
        return out

    def write(
        self,
        chunk: int,
        index: np.ndarray,
        params: dict[str, np.ndarray],
        outputs: dict[str, np.ndarray],
    ) -> None:
        """Write one chunk atomically: point indices ``(n,)``, parameters and outputs
        ``{name: (n, ...)}``."""
        import xarray as xr

        coords = {"point": ("point", np.asarray(index, np.int64))}
        coords.update({n: (_dims(n, v.ndim), v) for n, v in params.items()})
        data = {n: (_dims(n, v.ndim), v) for n, v in outputs.items()}
        ds = xr.Dataset(data, coords=coords, attrs={"chunk": int(chunk)})
        tmp = self.chunks / f".chunk_{chunk:06d}.{uuid.uuid4().hex}.tmp"
        try:
            ds.to_netcdf(tmp, engine=ENGINE)
            os.replace(tmp, self.path(chunk))
        finally:
            tmp.unlink(missing_ok=True)

    def read(self, chunk: int, names: list[str]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Point indices and the outputs ``names`` of a finished chunk."""
        import xarray as xr

        ds = xr.load_dataset(self.path(chunk), engine=ENGINE)
        missing = [n for n in names if n not in ds.data_vars]
        if missing:
            raise ValueError(
                f"store chunk file {self.path(chunk)} lacks outputs {missing} (it has "
                f"{list(ds.data_vars)}); the function's outputs changed: use another store"
            )
        return ds["point"].values, {n: ds[n].values for n in names}

    def write_failures(self, failures: list[dict[str, Any]]) -> Path:
        """Record failed chunks (JSON) and return the file's path."""
        path = self.folder / "failures.json"
        _atomic_write_text(path, json.dumps(failures, indent=1))
        return path

    def clear_failures(self) -> None:
        """Remove the failure record (after a run in which every chunk finished)."""
        (self.folder / "failures.json").unlink(missing_ok=True)


def open_sweep(store: str | os.PathLike, unstack: bool = False):
    """Read a sweep store into one ``xarray.Dataset`` along the ``point`` dimension.

    Parameters
    ----------
    store:
        The store folder given to :func:`~vbinfer.cluster.sweep`.
    unstack:
        For a Cartesian grid, reshape ``point`` into one dimension per grid parameter.

    Returns
    -------
    ``xarray.Dataset`` with coordinate ``point`` (global index of each parameter set, sorted),
    the parameters as coordinates and the outputs as variables. Chunks not yet computed are
    simply absent; ``ds.attrs["num_points"]`` tells how many there will be.

    Examples
    --------
    >>> ds = open_sweep("sweep-out")          # doctest: +SKIP
    >>> ds["mean"].sel(point=0)               # doctest: +SKIP
    """
    import xarray as xr

    folder = Path(store)
    manifest_path = folder / "manifest.json"
    if not manifest_path.exists():
        raise ValueError(f"store {folder} has no manifest.json: not a vbinfer sweep store")
    manifest = json.loads(manifest_path.read_text())
    files = sorted(p for p in (folder / "chunks").iterdir() if _CHUNK_RE.match(p.name))
    if not files:
        raise ValueError(f"store {folder} holds no finished chunk yet")
    parts = [xr.load_dataset(p, engine=ENGINE) for p in files]
    ds = xr.concat(parts, dim="point", data_vars="all", coords="different", compat="equals")
    ds = ds.sortby("point")
    ds.attrs = {
        "num_points": manifest["num_points"],
        "num_chunks": manifest["num_chunks"],
        "chunk_size": manifest["chunk_size"],
        "kind": manifest.get("kind", "sweep"),
    }
    if unstack:
        axes = manifest.get("grid_axes")
        if axes is None:
            raise ValueError(f"unstack=True needs a Cartesian grid; store {folder} holds points")
        ds = _unstack(ds, list(axes))
    return ds


def _unstack(ds, axes: list[str]):
    """Replace dimension ``point`` by one dimension per grid parameter (grid order first)."""
    ds = ds.set_index(point=axes).unstack("point")
    return ds.transpose(*axes, ...)
