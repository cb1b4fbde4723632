"""The :class:`Model` record shared by every neural mass model.

A model is a pure derivative function over arrays shaped ``(n_states, *space)`` plus the
metadata the simulators need: state names, which state variables feed the long-range coupling,
the parameter NamedTuple with documented defaults, and box constraints that the integrator
(not the derivative) enforces after every stage.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax.numpy as jnp

from vbinfer._typing import Array

__all__ = ["Model", "apply_bounds", "default_state", "take_rows"]


class Model(NamedTuple):
    """A neural mass model.

    Attributes
    ----------
    name:
        Short identifier, e.g. ``"mpr"``.
    state_names:
        Names of the state variables, in the order of axis 0 of the state array.
    params_cls:
        NamedTuple class of parameters; ``params_cls()`` gives the documented defaults.
    dfun:
        ``dfun(state, coupling, params) -> dstate``. ``state`` is ``(n_states, *space)``,
        ``coupling`` is ``(n_coupling, *space)`` (one row per entry of ``coupling_names``),
        every parameter broadcasts against ``space``. Returns ``(n_states, *space)``.
        Time is in ms unless the model's docstring says otherwise.
    coupling_names:
        Names of the coupling inputs the derivative reads (rows of ``coupling``).
    cvar:
        Indices of the state variables that are sent through the connectome by default
        (TVB's ``cvar``); a coupling function maps them to the inputs above.
    init:
        Typical initial values, one per state variable (used by :func:`default_state`).
    bounds:
        ``(low, high)`` per state variable (``-inf`` / ``inf`` for none). The integrator clips
        the state to these after every stage, as TVB does (e.g. the MPR firing rate ``r >= 0``).
    """

    name: str
    state_names: tuple[str, ...]
    params_cls: type
    dfun: Callable[[Array, Array, Any], Array]
    coupling_names: tuple[str, ...]
    cvar: tuple[int, ...]
    init: tuple[float, ...]
    bounds: tuple[tuple[float, float], ...]

    @property
    def n_states(self) -> int:
        """Number of state variables."""
        return len(self.state_names)

    @property
    def n_coupling(self) -> int:
        """Number of coupling inputs of the derivative."""
        return len(self.coupling_names)

    @property
    def has_bounds(self) -> bool:
        """Whether any state variable is constrained."""
        return any(math.isfinite(lo) or math.isfinite(hi) for lo, hi in self.bounds)

    def default_params(self, **overrides: Any) -> Any:
        """Default parameters with some fields replaced, e.g. ``mpr.default_params(eta=-4.6)``."""
        return self.params_cls(**overrides)


def apply_bounds(model: Model, state: Array) -> Array:
    """Clip ``state`` (``(n_states, *space)``) to the model's bounds; identity if it has none."""
    if not model.has_bounds:
        return state
    rows = []
    for k, (lo, hi) in enumerate(model.bounds):
        row = state[k]
        if math.isfinite(lo) or math.isfinite(hi):
            row = jnp.clip(
                row, lo if math.isfinite(lo) else None, hi if math.isfinite(hi) else None
            )
        rows.append(row)
    return jnp.stack(rows)


def default_state(model: Model, space: tuple[int, ...] | int, dtype: Any = None) -> Array:
    """A state filled with the model's typical initial values.

    Parameters
    ----------
    model:
        The model.
    space:
        Shape of the spatial (and batch) axes, e.g. ``(n_nodes,)`` or ``(n_nodes, batch)``.
    dtype:
        Floating dtype; default is JAX's default float.

    Returns
    -------
    Array of shape ``(n_states, *space)``.

    Examples
    --------
    >>> from vbinfer.models import mpr
    >>> default_state(mpr, 3).shape
    (2, 3)
    """
    space = (space,) if isinstance(space, int) else tuple(space)
    values = jnp.asarray(model.init, dtype=dtype)
    return jnp.broadcast_to(values.reshape((-1,) + (1,) * len(space)), (model.n_states, *space))


def take_rows(x: Array, idx: tuple[int, ...]) -> Array:
    """``x[idx]`` along axis 0 for static indices, with slices instead of a gather.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> take_rows(jnp.arange(4.0), (1, 2)).tolist()
    [1.0, 2.0]
    """
    idx = tuple(int(i) for i in idx)
    if idx and idx == tuple(range(idx[0], idx[0] + len(idx))):
        return x[idx[0] : idx[0] + len(idx)]
    return jnp.stack([x[i] for i in idx])
