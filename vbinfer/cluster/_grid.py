"""Parameter sets of a sweep: Cartesian grids and explicit points, named leaves, chunks.

Everything here is NumPy and runs on the driver before anything is compiled or sent anywhere.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import numpy as np

__all__ = ["PointSet", "chunk_bounds", "grid_points", "leaf_names", "make_point_set"]


def _canonical(name: str, value: Any) -> np.ndarray:
    """``value`` as a NumPy array of the dtype JAX will compute in (float32 unless x64)."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise ValueError(
            f"{name} must hold booleans, integers or floats, got dtype {arr.dtype} "
            f"(value {value!r:.80})"
        )
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {arr!r:.200}")
    return arr.astype(jax.dtypes.canonicalize_dtype(arr.dtype))


def grid_points(grid: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Every combination of the values of a grid, as one array per parameter.

    Parameters
    ----------
    grid:
        ``{name: 1-D values}``, e.g. ``{"eta": np.linspace(-5, -4, 11), "a": [0.5, 1.0]}``.

    Returns
    -------
    ``{name: (num_points,)}`` with ``num_points`` the product of the lengths, in C order (the
    last parameter varies fastest, as ``itertools.product`` and ``np.meshgrid(indexing="ij")``).
    Values are cast to the dtype JAX computes in (float32 unless x64 is enabled).

    Examples
    --------
    >>> p = grid_points({"eta": [-5.0, -4.0], "a": [0.1, 0.2, 0.3]})
    >>> p["eta"].tolist(), p["a"].shape
    ([-5.0, -5.0, -5.0, -4.0, -4.0, -4.0], (6,))
    """
    if not isinstance(grid, Mapping) or not grid:
        raise ValueError(
            f"grid must be a non-empty mapping {{name: 1-D values}}, got {type(grid).__name__}"
        )
    axes = {}
    for name, values in grid.items():
        if not isinstance(name, str) or not name or "/" in name:
            raise ValueError(
                f"grid: parameter names must be non-empty strings without '/', got {name!r}"
            )
        arr = _canonical(f"grid[{name!r}]", values)
        if arr.ndim != 1 or arr.size == 0:
            raise ValueError(
                f"grid[{name!r}] must be a non-empty 1-D array of values, got shape {arr.shape}"
            )
        axes[name] = arr
    mesh = np.meshgrid(*axes.values(), indexing="ij")
    return {name: m.reshape(-1) for name, m in zip(axes, mesh, strict=True)}


def _key_name(k: Any) -> str:
    for attr in ("key", "name", "idx"):
        if hasattr(k, attr):
            return str(getattr(k, attr))
    return str(k)


def leaf_names(tree: Any, what: str) -> list[str]:
    """Dotted names of a pytree's leaves: ``{"a": {"b": x}}`` -> ``["a.b"]``, a bare array ->
    ``["value"]``; NamedTuple fields by name, sequence items by index."""
    paths = [p for p, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]
    names = [".".join(_key_name(k) for k in p) or "value" for p in paths]
    for n in names:
        if "/" in n:
            raise ValueError(f"{what}: leaf names must not contain '/', got {n!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"{what}: leaf names are not unique: {names}")
    return names


class PointSet(NamedTuple):
    """The parameter sets of a sweep.

    Attributes
    ----------
    tree: the points as ``fn`` sees them batched: a pytree whose leaves have a leading axis of
        ``num_points`` (for a grid, ``{name: (num_points,)}``).
    names: dotted leaf names (the variables of the store), in leaf order.
    num_points: number of parameter sets.
    axes: ``{name: values}`` of a Cartesian grid, or ``None`` for explicit points.
    """

    tree: Any
    names: tuple[str, ...]
    num_points: int
    axes: dict[str, np.ndarray] | None

    @property
    def leaves(self) -> list[np.ndarray]:
        """The leaves, each ``(num_points, ...)``."""
        return jax.tree_util.tree_leaves(self.tree)

    def take(self, index: np.ndarray) -> Any:
        """The points at ``index`` (a 1-D integer array), same structure as :attr:`tree`."""
        return jax.tree_util.tree_map(lambda x: x[index], self.tree)

    def fingerprint(self) -> str:
        """SHA-256 of the names, dtypes, shapes and values (stored in a store's manifest)."""
        h = hashlib.sha256()
        for name, leaf in zip(self.names, self.leaves, strict=True):
            h.update(f"{name}|{leaf.dtype.str}|{leaf.shape}|".encode())
            h.update(np.ascontiguousarray(leaf).tobytes())
        return h.hexdigest()


def make_point_set(grid: Mapping[str, Any] | None, points: Any | None) -> PointSet:
    """Validate ``grid`` (Cartesian product) or ``points`` (explicit sets); exactly one."""
    if (grid is None) == (points is None):
        raise ValueError(
            "give exactly one of grid= (a mapping of 1-D values, swept as a Cartesian product) "
            f"or points= (a pytree of arrays with a leading points axis); got grid={grid is not None}, "
            f"points={points is not None}"
        )
    if grid is not None:
        tree = grid_points(grid)
        axes = {k: _canonical(k, v) for k, v in grid.items()}
        names = tuple(leaf_names(tree, "grid"))  # leaf order: jax sorts dict keys
        return PointSet(tree, names, int(next(iter(tree.values())).shape[0]), axes)
    names = leaf_names(points, "points")
    leaves, treedef = jax.tree_util.tree_flatten(points)
    if not leaves:
        raise ValueError("points must hold at least one array, got an empty pytree")
    arrs = [_canonical(f"points[{n!r}]", x) for n, x in zip(names, leaves, strict=True)]
    sizes = {a.shape[0] if a.ndim else None for a in arrs}
    if None in sizes or len(sizes) != 1 or 0 in sizes:
        shapes = {n: a.shape for n, a in zip(names, arrs, strict=True)}
        raise ValueError(
            "points: every leaf needs the same leading (points) axis of size >= 1, got shapes "
            f"{shapes}"
        )
    return PointSet(jax.tree_util.tree_unflatten(treedef, arrs), tuple(names), sizes.pop(), None)


def chunk_bounds(num_points: int, chunk_size: int) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` of consecutive chunks of ``chunk_size`` points (last shorter)."""
    return [
        (s, min(s + chunk_size, num_points))
        for s in range(0, chunk_size * math.ceil(num_points / chunk_size), chunk_size)
    ]
