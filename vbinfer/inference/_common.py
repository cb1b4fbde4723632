"""Shared plumbing of the backends: data checks, unconstrained log densities, constraining."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from numpyro.infer import init_to_mean, init_to_uniform
from numpyro.infer.util import initialize_model

from vbinfer.inference.problem import Problem

__all__ = [
    "INITS",
    "Density",
    "check_data",
    "compile_clock",
    "init_center",
    "make_density",
    "timed_compile",
    "valid_starts",
]

INITS = ("uniform", "mean")
"""Where chains and restarts start, jittered uniformly by ``init_radius`` in the unconstrained
space: around 0 (``"uniform"``, numpyro's ``init_to_uniform``) or around the prior mean
(``"mean"``, numpyro's ``init_to_mean``; better for simulator problems whose priors sit far
from 0, e.g. MPR's ``eta ~ Normal(-5, 1)``)."""

_COMPILE_EVENTS = (
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "/jax/core/compile/backend_compile_duration",
)


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


def make_density(
    key: jax.Array,
    problem: Problem,
    data: jax.Array,
    init_strategy: Callable[..., Any] = init_to_uniform,
) -> Density:
    """Build the unconstrained log density of ``problem`` given ``data`` with numpyro.

    ``init_strategy`` (a numpyro init strategy) sets the starting point ``z0``.
    """
    # validate_grad=False: numpyro then checks the starting point's log density but does not
    # differentiate the model eagerly (the backends choose and check their own starts)
    info = initialize_model(
        key,
        problem.model,
        init_strategy=init_strategy,
        model_kwargs={"data": data},
        validate_grad=False,
    )
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


@contextlib.contextmanager
def compile_clock() -> Iterator[list[float]]:
    """Seconds jax spends lowering and compiling programs inside the ``with`` block.

    Yields a one-element list whose entry grows with every lowering to MLIR and every XLA
    compilation (``jax.monitoring`` duration events), for backends such as numpyro's MCMC that
    compile inside their own ``run``. The listener is removed on exit.
    """
    total = [0.0]

    def listener(event: str, duration: float, **kwargs: Any) -> None:
        if event in _COMPILE_EVENTS:
            total[0] += duration

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield total
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)


def init_center(
    key: jax.Array, problem: Problem, data: jax.Array, init: str
) -> tuple[Density, jax.Array]:
    """The problem's density and the flat unconstrained point starts are drawn around.

    ``init`` is one of :data:`INITS`; raises ``ValueError`` otherwise.
    """
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    strategy = init_to_mean if init == "mean" else init_to_uniform
    dens = make_density(key, problem, data, init_strategy=strategy)
    center = ravel_pytree(dens.z0)[0] if init == "mean" else jnp.zeros(dens.dim)
    return dens, center


def valid_starts(
    key: jax.Array,
    logdensity,
    num_chains: int,
    dim: int,
    init_radius: float = 2.0,
    center: jax.Array | None = None,
    num_tries: int = 16,
) -> jax.Array:
    """``(num_chains, dim)`` starting points, uniform in ``center + [-init_radius,
    init_radius]`` (default center 0), each the first of ``num_tries`` independent draws whose
    log density is finite (as numpyro's ``init_to_uniform`` retries); raises ``ValueError`` for
    a chain with none."""
    cand = jax.random.uniform(
        key, (num_chains, num_tries, dim), minval=-init_radius, maxval=init_radius
    )
    if center is not None:
        cand = cand + center
    ok = np.isfinite(np.asarray(jax.jit(jax.vmap(jax.vmap(logdensity)))(cand)))
    if not ok.any(axis=1).all():
        raise ValueError(
            f"no finite log density at {num_tries} uniform draws within {init_radius} of the "
            "start centre (unconstrained space) for some chain; check the priors and the data, "
            "or change init / init_radius"
        )
    return cand[jnp.arange(num_chains), jnp.asarray(ok.argmax(axis=1))]
