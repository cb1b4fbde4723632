"""Shared plumbing of the backends: data checks, unconstrained log densities, constraining."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
from numpyro.infer.util import initialize_model

from vbinfer.inference.problem import Problem

__all__ = ["Density", "check_data", "make_density", "timed_compile"]


def check_data(problem: Problem, data: Any) -> jax.Array:
    """Reject data whose shape does not fit the problem, before anything compiles."""
    if data is None:
        raise ValueError("data: fit needs observed data (simulate some with simulate_data)")
    arr = jnp.asarray(data)
    if problem.data_shape is not None and tuple(arr.shape) != problem.data_shape:
        raise ValueError(
            f"data must have shape {problem.data_shape} for this problem, got {tuple(arr.shape)}"
        )
    if not bool(jnp.all(jnp.isfinite(arr))):
        raise ValueError("data must be finite, got NaN or inf entries")
    return arr


class Density(NamedTuple):
    """A problem's log density on unconstrained, flattened coordinates.

    Attributes
    ----------
    logdensity: ``logdensity(u) -> float`` for ``u`` of shape ``(dim,)`` (-inf where invalid).
    z0: a valid unconstrained starting point (a dict, numpyro's layout).
    unravel: ``(dim,) -> dict`` of unconstrained values.
    constrain: ``dict of unconstrained -> dict of constrained values`` (incl. deterministic sites).
    dim: number of unconstrained coordinates.
    potential: numpyro's potential function on the dict layout (``-logdensity``).
    """

    logdensity: Callable[[jax.Array], jax.Array]
    z0: dict[str, jax.Array]
    unravel: Callable[[jax.Array], dict[str, jax.Array]]
    constrain: Callable[[dict[str, jax.Array]], dict[str, jax.Array]]
    dim: int
    potential: Callable[[dict[str, jax.Array]], jax.Array]


def make_density(key: jax.Array, problem: Problem, data: jax.Array) -> Density:
    """Build the unconstrained log density of ``problem`` given ``data`` with numpyro."""
    info = initialize_model(key, problem.model, model_kwargs={"data": data})
    z0 = info.param_info.z
    flat0, unravel = ravel_pytree(z0)
    potential = info.potential_fn

    def logdensity(u: jax.Array) -> jax.Array:
        lp = -potential(unravel(u))
        return jnp.where(jnp.isnan(lp), -jnp.inf, lp)

    return Density(logdensity, z0, unravel, info.postprocess_fn, int(flat0.size), potential)


def timed_compile(fn: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    """``jax.jit(fn)`` lowered and compiled for ``args``: (compiled, seconds)."""
    t0 = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    return compiled, time.perf_counter() - t0
