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

    def exists(self, name: str) -> bool:
        """Whether a finished file ``name`` is in the store."""
        return self.folder is not None and self._path(name).exists()

    def load(self, name: str, template: Any | None = None) -> Any | None:
        """The saved pytree (leaves restored into ``template``'s structure), or ``None``."""
        if self.folder is None or not self._path(name).exists():
            return None
        with np.load(self._path(name)) as f:
            leaves = []
            for i in range(len(f.files)):
                if f"leaf{i:04d}" in f.files:
                    leaves.append(f[f"leaf{i:04d}"])
                elif f"key{i:04d}" in f.files:
                    leaves.append(jax.random.wrap_key_data(f[f"key{i:04d}"]))
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
        arrays = {}
        for i, x in enumerate(leaves):
            if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
                arrays[f"key{i:04d}"] = np.asarray(jax.random.key_data(x))
            else:
                arrays[f"leaf{i:04d}"] = np.asarray(x)
        np.savez(tmp, **arrays)
        os.replace(tmp, self._path(name))


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def run_chunked(
    step_chunk,
    state: Any,
    num_steps: int,
    chunk_size: int,
    store: ChunkStore,
    bar_desc: str,
    progress_bar: bool,
) -> tuple[Any, np.ndarray]:
    """Advance ``state`` by ``num_steps`` with a compiled ``step_chunk(state) -> (state, losses)``
    of ``chunk_size`` steps, saving ``(state, losses)`` after every chunk and resuming from the
    chunks already in ``store``. Returns the final state and the loss trace."""
    if chunk_size < 1 or num_steps % chunk_size:
        raise ValueError(
            f"chunk_size must be a positive divisor of num_steps={num_steps}, got {chunk_size!r}"
        )
    template = (state, 0.0)  # only the tree structure matters for loading
    bar = progress(num_steps, bar_desc, progress_bar)
    losses = []
    try:
        for c in range(num_steps // chunk_size):
            name = f"chunk_{c:05d}"
            saved = store.load(name, template)
            if saved is None:
                state, loss = step_chunk(state)
                store.save(name, (state, loss))
            else:
                state, loss = saved
            losses.append(np.asarray(loss))
            bar.update(chunk_size)
            bar.set_postfix_str(f"loss {float(np.asarray(loss).reshape(-1)[-1]):.4g}")
    finally:
        bar.close()
    return state, np.concatenate(losses, axis=-1)
