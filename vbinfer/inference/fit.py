"""One entry point over every backend: :func:`fit`."""

from __future__ import annotations

from typing import Any

import jax

from vbinfer.inference._common import check_data
from vbinfer.inference.backends import map as map_backend
from vbinfer.inference.backends import nuts_blackjax, nuts_numpyro, svi
from vbinfer.inference.problem import Problem
from vbinfer.inference.result import FitResult

__all__ = ["METHODS", "fit"]

METHODS = {
    "nuts": nuts_numpyro.run,
    "blackjax_nuts": nuts_blackjax.run,
    "svi": svi.run,
    "map": map_backend.run,
    "laplace": map_backend.laplace,
}
"""Available methods: numpyro NUTS, blackjax NUTS, SVI, MAP (optax), Laplace at the MAP."""


def fit(
    problem: Problem, data: Any, *, method: str = "nuts", key: jax.Array, **options: Any
) -> FitResult:
    """Estimate the unknowns of ``problem`` from ``data``.

    Parameters
    ----------
    problem:
        A :class:`~vbinfer.inference.problem.Problem`.
    data:
        Observed data; its shape is checked against the problem before anything compiles.
    method:
        One of :data:`METHODS`.
    key:
        PRNG key (required, no default).
    **options:
        Passed to the backend (e.g. ``num_samples``, ``num_chains``, ``guide``, ``optimizer``).

    Returns
    -------
    :class:`~vbinfer.inference.result.FitResult`.

    Examples
    --------
    >>> import jax, jax.numpy as jnp, numpyro.distributions as dist
    >>> from vbinfer.inference import make_problem
    >>> p = make_problem({"a": dist.Normal(0, 1)}, lambda th: th["a"] * jnp.ones(4))
    >>> r = fit(p, jnp.ones(4), method="map", key=jax.random.key(0), num_steps=200)
    >>> round(float(r.mean("a")), 2)
    0.8
    """
    if not isinstance(problem, Problem):
        raise ValueError(f"problem must be a vbinfer Problem, got {type(problem).__name__}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)}, got {method!r}")
    data = check_data(problem, data)
    return METHODS[method](key, problem, data, **options)
