"""Chunked long runs: a progress bar between compiled chunks, and chunk files on disk so that an
interrupted run resumes from its last finished chunk and loses nothing."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import jax
import numpy as np

__all__ = ["ChunkStore", "progress"]


def progress(total: int, desc: str, enabled: bool):
    """A tqdm bar (or a do-nothing stand-in when disabled)."""
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc)


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass

    def set_postfix_str(self, s: str) -> None:
        pass


class ChunkStore:
    """A folder of ``chunk_00000.npz`` files plus ``manifest.json``.

    Every file is written to a temporary name and renamed, so a file either exists complete or
    not at all; a run killed mid-write leaves no partial chunk. ``manifest.json`` records the
    settings the chunks belong to, and a store is refused for a run with other settings.
    """

    def __init__(self, folder: str | Path | None, settings: dict[str, Any]):
        self.folder = None if folder is None else Path(folder)
        if self.folder is None:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        manifest = self.folder / "manifest.json"
        settings = json.loads(json.dumps(settings))
        if manifest.exists():
            old = json.loads(manifest.read_text())
            if old != settings:
                raise ValueError(
                    f"checkpoint_dir {self.folder} holds a run with other settings: {old} "
                    f"(this run: {settings}); use another folder"
                )
        else:
            _atomic_write_text(manifest, json.dumps(settings, indent=1))

    def _path(self, name: str) -> Path:
        assert self.folder is not None
        return self.folder / f"{name}.npz"

    def load(self, name: str, template: Any | None = None) -> Any | None:
        """The saved pytree (leaves restored into ``template``'s structure), or ``None``."""
        if self.folder is None or not self._path(name).exists():
            return None
        with np.load(self._path(name)) as f:
            leaves = [f[f"leaf{i:04d}"] for i in range(len(f.files))]
        if template is None:
            return leaves
        treedef = jax.tree_util.tree_structure(template)
        return jax.tree_util.tree_unflatten(treedef, leaves)

    def save(self, name: str, tree: Any) -> None:
        """Write a pytree of arrays atomically."""
        if self.folder is None:
            return
        leaves = jax.tree_util.tree_leaves(tree)
        tmp = self.folder / f".{name}.tmp.npz"
        np.savez(tmp, **{f"leaf{i:04d}": np.asarray(x) for i, x in enumerate(leaves)})
        os.replace(tmp, self._path(name))


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
