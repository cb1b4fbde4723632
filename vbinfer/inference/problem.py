"""Inference problems: priors + simulator + observation model + likelihood, as a numpyro model.

A :class:`Problem` is a numpyro model with names attached: which sample sites are the unknowns
(parameters and initial conditions), which site is the observed data, and optionally the true
values for simulation studies. Build one with :func:`make_problem` from a dictionary of priors
and a pure simulator function, or wrap a numpyro model you wrote yourself with
:func:`problem_from_model` (anything numpyro accepts: hierarchical priors, deterministic sites,
several observed sites).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist

from vbinfer._typing import Array

__all__ = ["Problem", "guard_finite", "make_problem", "problem_from_model"]


class Problem(NamedTuple):
    """A Bayesian inference problem.

    Attributes
    ----------
    model: numpyro model ``model(data=None)``; with ``data=None`` it samples synthetic data.
    param_names: names of the unknown sample sites, in a fixed order.
    obs_name: name of the observed site.
    data_shape: shape of the observed data (checked before any compilation), or ``None``.
    truth: true values per parameter name (for simulation studies), or ``None``.
    """

    model: Callable[..., Any]
    param_names: tuple[str, ...]
    obs_name: str = "obs"
    data_shape: tuple[int, ...] | None = None
    truth: dict[str, Array] | None = None


def guard_finite(prediction: Array, name: str = "diverged") -> Array:
    """Make a diverged simulation a ``-inf`` log density instead of NaN.

    Inside a numpyro model: adds ``factor(name, -inf)`` when ``prediction`` has any non-finite
    entry and returns a copy with those entries replaced by 0, so that NaN never reaches the
    likelihood (NUTS then rejects the proposal and counts a divergence).
    """
    ok = jnp.all(jnp.isfinite(prediction))
    numpyro.factor(name, jnp.where(ok, 0.0, -jnp.inf))
    return jnp.where(jnp.isfinite(prediction), prediction, 0.0)


def make_problem(
    priors: Mapping[str, dist.Distribution],
    simulate: Callable[[dict[str, Array]], Array],
    *,
    noise_sd: float | dist.Distribution = 1.0,
    data_shape: tuple[int, ...] | None = None,
    truth: Mapping[str, Any] | None = None,
    obs_name: str = "obs",
) -> Problem:
    """A problem with independent priors and a Gaussian likelihood on ``simulate(theta)``.

    Parameters
    ----------
    priors:
        ``{name: numpyro distribution}``; use ``.expand([n])`` for per-node vectors.
    simulate:
        Pure function ``theta -> prediction`` (the simulator and the observation model, e.g. a
        vbinfer simulation followed by a log power spectrum).
    noise_sd:
        Standard deviation of the Gaussian observation noise: a known number, or a prior
        distribution to infer it (site ``"noise_sd"``).
    data_shape:
        Shape of the data; when given, :func:`vbinfer.inference.fit` rejects data of another
        shape before compiling anything.
    truth:
        True parameter values for simulation studies (shrinkage, z-scores, SBC).
    obs_name:
        Name of the observed site.

    Example
    -------
    >>> import numpyro.distributions as dist
    >>> p = make_problem({"a": dist.Normal(0, 1)}, lambda th: th["a"] * jnp.ones(3),
    ...                  data_shape=(3,))
    >>> p.param_names
    ('a',)
    """
    priors = dict(priors)
    for name, d in priors.items():
        if not isinstance(d, dist.Distribution):
            raise ValueError(
                f"priors[{name!r}] must be a numpyro Distribution, got {type(d).__name__}"
            )
    infer_sd = isinstance(noise_sd, dist.Distribution)
    if not infer_sd and not float(noise_sd) > 0:
        raise ValueError(f"noise_sd must be > 0 or a prior distribution, got {noise_sd!r}")

    def model(data: Array | None = None) -> None:
        theta = {name: numpyro.sample(name, d) for name, d in priors.items()}
        pred = guard_finite(simulate(theta))
        sd = numpyro.sample("noise_sd", noise_sd) if infer_sd else noise_sd
        numpyro.sample(obs_name, dist.Normal(pred, sd), obs=data)

    names = tuple(priors) + (("noise_sd",) if infer_sd else ())
    truth_arr = None if truth is None else {k: jnp.asarray(v) for k, v in truth.items()}
    return Problem(
        model, names, obs_name, None if data_shape is None else tuple(data_shape), truth_arr
    )


def problem_from_model(
    model: Callable[..., Any],
    param_names: tuple[str, ...] | list[str],
    *,
    obs_name: str = "obs",
    data_shape: tuple[int, ...] | None = None,
    truth: Mapping[str, Any] | None = None,
) -> Problem:
    """Wrap a numpyro model ``model(data=None)`` written by hand.

    ``param_names`` lists the latent sites to report (others, e.g. hierarchical scales, are
    still sampled and kept in the result's samples).
    """
    truth_arr = None if truth is None else {k: jnp.asarray(v) for k, v in truth.items()}
    return Problem(
        model,
        tuple(param_names),
        obs_name,
        None if data_shape is None else tuple(data_shape),
        truth_arr,
    )


def simulate_data(
    key: jax.Array, problem: Problem, params: Mapping[str, Any] | None = None
) -> Array:
    """Draw synthetic data from the problem at ``params`` (default: ``problem.truth``)."""
    params = problem.truth if params is None else params
    if params is None:
        raise ValueError("params: give parameter values or build the problem with truth=")
    model = numpyro.handlers.condition(problem.model, data=dict(params))
    tr = numpyro.handlers.trace(numpyro.handlers.seed(model, key)).get_trace()
    return tr[problem.obs_name]["value"]
