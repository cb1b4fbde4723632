"""Connectivity of a network: weights, tract lengths, conduction speed, and lags in steps.

Orientation: ``W[i, j]`` is the strength of the connection **from node j to node i**; row ``i``
receives from column ``j``, so ``c_i = sum_j W[i, j] f(x_j(t - d_ij))``.

A :class:`Network` is a pytree of arrays (weights, lengths, speed), so it can be built inside
``jit``, ``vmap`` or ``grad`` and every field is an ordinary argument of a simulation: sweeping
or differentiating the conduction speed needs no rebuilding. :class:`SparseNetwork` stores
only the nonzero edges (their pattern is static, their weights and lengths are not).
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from vbinfer._typing import Array, ArrayLike
from vbinfer._validate import check_finite, check_nonnegative, check_positive, is_concrete

__all__ = [
    "LAG_MODES",
    "Network",
    "SparseNetwork",
    "check_network",
    "lags_in_steps",
    "make_network",
    "max_lag_steps",
    "num_nodes",
    "to_sparse",
]

LAG_MODES = ("nearest", "floor", "linear")
"""How a delay ``length / speed`` (ms) becomes a lag in steps of ``dt``:

- ``"nearest"``: round to the nearest step (TVB's and tvboptim's rule; exact for delays that
  are whole multiples of ``dt``). The default.
- ``"floor"``: round down (vbjax's rule).
- ``"linear"``: keep the fractional lag and interpolate linearly between the two neighbouring
  history slots, so the simulation is differentiable in lengths and speed.
"""


class Network(NamedTuple):
    """A dense network.

    Attributes
    ----------
    weights: ``(n_nodes, n_nodes)``; ``W[i, j]`` is the connection from ``j`` to ``i``.
    lengths: ``(n_nodes, n_nodes)`` tract lengths in mm, or ``None`` for no delays.
    speed: conduction speed in mm/ms (= m/s), scalar.
    """

    weights: Array
    lengths: Array | None = None
    speed: ArrayLike = 3.0

    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return int(np.shape(self.weights)[-1])


@dataclasses.dataclass(frozen=True)
class SparseNetwork:
    """A network stored as a list of its nonzero edges.

    Attributes
    ----------
    values: ``(n_edges,)`` weights; edge ``e`` goes from ``cols[e]`` to ``rows[e]``.
    rows: ``(n_edges,)`` int receiving node, sorted ascending.
    cols: ``(n_edges,)`` int sending node.
    lengths: ``(n_edges,)`` tract lengths in mm, or ``None``.
    speed: conduction speed in mm/ms.
    n_nodes: number of nodes (static).
    """

    values: Array
    rows: Array
    cols: Array
    lengths: Array | None
    speed: ArrayLike
    n_nodes: int


jax.tree_util.register_dataclass(
    SparseNetwork,
    data_fields=["values", "rows", "cols", "lengths", "speed"],
    meta_fields=["n_nodes"],
)


def make_network(
    weights: ArrayLike, lengths: ArrayLike | None = None, speed: ArrayLike = 3.0
) -> Network:
    """Build a :class:`Network`, checking shapes and values where they are known.

    Works inside ``jit`` / ``vmap`` / ``grad`` (value checks are skipped for traced inputs;
    shape checks always run).

    Parameters
    ----------
    weights:
        ``(n_nodes, n_nodes)``; ``W[i, j]`` is the connection from ``j`` to ``i``.
    lengths:
        ``(n_nodes, n_nodes)`` tract lengths in mm (>= 0), or ``None`` for no delays.
    speed:
        Conduction speed in mm/ms (> 0).

    Examples
    --------
    >>> import numpy as np
    >>> net = make_network(np.ones((3, 3)), np.full((3, 3), 6.0), speed=3.0)
    >>> net.n_nodes
    3
    """
    shape = np.shape(weights)
    if len(shape) != 2 or shape[0] != shape[1]:
        raise ValueError(f"weights must be a square matrix (n_nodes, n_nodes), got shape {shape}")
    check_finite("weights", weights)
    if lengths is not None:
        if np.shape(lengths) != shape:
            raise ValueError(
                f"lengths must have the shape of weights {shape}, got shape {np.shape(lengths)}"
            )
        check_finite("lengths", lengths)
        check_nonnegative("lengths", lengths)
    if np.ndim(speed) != 0:
        raise ValueError(f"speed must be a scalar (mm/ms), got shape {np.shape(speed)}")
    check_finite("speed", speed)
    check_positive("speed", speed)
    asarr = jnp.asarray if not is_concrete(weights) else _as_float_array
    return Network(
        asarr(weights),
        None
        if lengths is None
        else (jnp.asarray(lengths) if not is_concrete(lengths) else _as_float_array(lengths)),
        speed,
    )


def _as_float_array(x: Any) -> Array:
    return jnp.asarray(np.asarray(x, dtype=np.result_type(np.asarray(x).dtype, np.float32)))


def to_sparse(network: Network, threshold: float = 0.0) -> SparseNetwork:
    """Keep the edges with ``|W[i, j]| > threshold`` (needs concrete weights).

    Examples
    --------
    >>> import numpy as np
    >>> s = to_sparse(make_network(np.eye(3)[::-1]))
    >>> s.values.shape
    (3,)
    """
    if not is_concrete(network.weights):
        raise ValueError("to_sparse needs concrete weights (call it outside jit/vmap/grad)")
    w = np.asarray(network.weights)
    rows, cols = np.nonzero(np.abs(w) > threshold)
    lengths = (
        None if network.lengths is None else jnp.asarray(np.asarray(network.lengths)[rows, cols])
    )
    return SparseNetwork(
        values=jnp.asarray(w[rows, cols]),
        rows=jnp.asarray(rows, jnp.int32),
        cols=jnp.asarray(cols, jnp.int32),
        lengths=lengths,
        speed=network.speed,
        n_nodes=w.shape[0],
    )


def lags_in_steps(lengths: ArrayLike, speed: ArrayLike, dt: float, mode: str = "nearest") -> Array:
    """Lags in steps: ``length / speed / dt`` rounded by ``mode`` (see :data:`LAG_MODES`).

    Returns int32 lags for ``"nearest"`` and ``"floor"``, floating lags for ``"linear"``.

    Examples
    --------
    >>> import numpy as np
    >>> lags_in_steps(np.array([0.0, 1.04, 1.06]), 1.0, 0.1).tolist()
    [0, 10, 11]
    """
    if mode not in LAG_MODES:
        raise ValueError(f"lag mode must be one of {LAG_MODES}, got {mode!r}")
    delay = jnp.asarray(lengths) / speed / dt
    if mode == "nearest":
        return jnp.rint(delay).astype(jnp.int32)
    if mode == "floor":
        # A tiny tolerance keeps delays that are whole steps up to rounding on their step.
        return jnp.floor(delay * (1 + 1e-6)).astype(jnp.int32)
    return delay


def max_lag_steps(lengths: ArrayLike, speed: ArrayLike, dt: float, mode: str = "nearest") -> int:
    """The largest lag in steps for concrete lengths and speed (to size a simulator's buffer).

    Examples
    --------
    >>> import numpy as np
    >>> max_lag_steps(np.array([[0.0, 30.0], [30.0, 0.0]]), 10.0, 0.01)
    300
    """
    lags = np.asarray(lags_in_steps(lengths, speed, dt, mode))
    return int(np.ceil(lags.max())) if lags.size else 0


def num_nodes(network: Network | SparseNetwork) -> int:
    """Number of nodes of a dense or sparse network; ``ValueError`` for anything else."""
    if isinstance(network, SparseNetwork):
        return network.n_nodes
    if isinstance(network, Network):
        return int(np.shape(network.weights)[-1])
    raise ValueError(f"network must be a Network or SparseNetwork, got {type(network).__name__}")


def check_network(network: Network | SparseNetwork, delayed: bool) -> None:
    """Raise ``ValueError`` naming the field when a network's arrays do not fit together.

    Checks shapes (square weights; rows, cols and values alike), finiteness, and with
    ``delayed`` that lengths exist, fit the weights, are non-negative, and that the speed is a
    positive scalar (values only where concrete, so it also works under ``jit``).
    """
    if isinstance(network, SparseNetwork):
        e = np.shape(network.values)
        for name in ("rows", "cols"):
            if np.shape(getattr(network, name)) != e:
                raise ValueError(
                    f"network.{name} must have shape {e}, got {np.shape(getattr(network, name))}"
                )
        lengths = network.lengths
        expected = e
    else:
        shape = np.shape(network.weights)
        if len(shape) != 2 or shape[0] != shape[1]:
            raise ValueError(
                f"network.weights must be square (n_nodes, n_nodes), got shape {shape}"
            )
        check_finite("network.weights", network.weights)
        lengths = network.lengths
        expected = shape
    if delayed:
        if lengths is None:
            raise ValueError("network.lengths is None but the simulator has delays (max_lag set)")
        if np.shape(lengths) != expected:
            raise ValueError(f"network.lengths must have shape {expected}, got {np.shape(lengths)}")
        check_finite("network.lengths", lengths)
        if is_concrete(lengths) and np.any(np.asarray(lengths) < 0):
            raise ValueError(f"network.lengths must be >= 0 mm, got minimum {np.min(lengths)!r}")
        if np.ndim(network.speed) != 0:
            raise ValueError(
                f"network.speed must be a scalar (mm/ms), got shape {np.shape(network.speed)}"
            )
        if is_concrete(network.speed) and not float(network.speed) > 0:
            raise ValueError(f"network.speed must be > 0 mm/ms, got {float(network.speed)!r}")
