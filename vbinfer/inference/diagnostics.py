"""Diagnostics: posterior shrinkage and z-scores against ground truth, R-hat and ESS.

Definitions (the default convention):

- **shrinkage** ``s = 1 - Var_post / Var_prior``: 0 when the data teach nothing, 1 when the
  posterior collapses to a point (tvb-inversion's definition).
- **z-score** ``z = |E_post - truth| / sd_post``: how many posterior standard deviations the
  truth lies from the posterior mean.

vbjax's convention is offered with ``convention="vbjax"``: ``s = 1 - sd_post / sd_prior`` (a
ratio of standard deviations) and a signed ``z = (E_post - truth) / sd_post``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "posterior_predictive",
    "posterior_shrinkage",
    "posterior_zscore",
    "sample_prior",
    "summary",
]

CONVENTIONS = ("variance", "vbjax")


def _check(convention: str) -> None:
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")


def posterior_shrinkage(
    post_samples: Any, prior_sd: Any, convention: str = "variance"
) -> np.ndarray:
    """Shrinkage per coordinate from posterior draws ``(num_draws, *shape)`` and the prior sd.

    Examples
    --------
    >>> round(float(posterior_shrinkage(np.array([0.0, 1.0]), 1.0)), 3)
    0.5
    """
    _check(convention)
    post = np.asarray(post_samples)
    sd = post.std(axis=0, ddof=1)
    ratio = sd / np.asarray(prior_sd)
    return 1.0 - (ratio**2 if convention == "variance" else ratio)


def posterior_zscore(post_samples: Any, truth: Any, convention: str = "variance") -> np.ndarray:
    """z-score per coordinate from posterior draws ``(num_draws, *shape)`` and the truth.

    Examples
    --------
    >>> float(posterior_zscore(np.array([-1.0, 1.0]), 1.0 * np.sqrt(2)))
    1.0
    """
    _check(convention)
    post = np.asarray(post_samples)
    z = (post.mean(axis=0) - np.asarray(truth)) / post.std(axis=0, ddof=1)
    return np.abs(z) if convention == "variance" else z


def summary(result: Any, var_names: list[str] | None = None):
    """arviz summary (mean, sd, HDI, MCSE, ESS bulk/tail, R-hat) of a fit result."""
    import arviz as az

    return az.summary(result.to_arviz(), var_names=var_names)


def posterior_predictive(key: Any, problem: Any, result: Any, num_draws: int = 200) -> np.ndarray:
    """Predictions of the observed site at ``num_draws`` posterior draws: ``(num_draws, *data)``.

    Uses the problem's model with the fitted unknowns substituted (numpyro ``Predictive``), so the
    observation noise is included.
    """
    import jax
    from numpyro.infer import Predictive

    total = result.num_chains * result.num_draws
    idx = np.linspace(0, total - 1, min(num_draws, total)).astype(int)
    post = {k: jax.numpy.asarray(result.flat(k)[idx]) for k in result.samples}
    pred = Predictive(problem.model, posterior_samples=post, return_sites=[problem.obs_name])(
        key, data=None
    )
    return np.asarray(pred[problem.obs_name])


def sample_prior(key: Any, problem: Any, num_samples: int = 1000) -> dict[str, np.ndarray]:
    """Draws of the unknowns from the prior: ``{name: (num_samples, *shape)}``.

    Runs the problem's model without data (numpyro ``Predictive``), so hierarchical priors and
    deterministic sites come out as the model defines them. Pass the result as ``prior=`` to
    :meth:`~vbinfer.inference.result.FitResult.to_arviz` for the ``prior`` group, or to the
    shrinkage and posterior plots.

    Examples
    --------
    >>> import jax, jax.numpy as jnp, numpyro.distributions as dist
    >>> from vbinfer.inference import make_problem
    >>> p = make_problem({"a": dist.Normal(0, 1)}, lambda th: th["a"] * jnp.ones(3))
    >>> sample_prior(jax.random.key(0), p, 5)["a"].shape
    (5,)
    """
    from numpyro.infer import Predictive

    if int(num_samples) < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples!r}")
    draws = Predictive(problem.model, num_samples=int(num_samples))(key, data=None)
    return {k: np.asarray(draws[k]) for k in problem.param_names if k in draws}
