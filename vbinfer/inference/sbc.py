"""Simulation-based calibration (Talts et al. 2018), run as vmapped batches of replicates.

For each replicate a parameter is drawn from the prior, data are simulated from it, and the
posterior given those data is sampled; the rank of the true value among the posterior draws is
uniform on ``{0, ..., L}`` exactly when the inference is calibrated. Replicates run as one
vmapped batch per chunk (one compiled program), with blackjax NUTS or, for problems where it
is exact or as a fast screen, the Laplace approximation.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree
from numpyro.infer import Predictive
from numpyro.infer.util import initialize_model

from vbinfer._precision import HIGHEST
from vbinfer.inference.backends.nuts_blackjax import nuts_chain
from vbinfer.inference.problem import Problem

__all__ = ["SBCResult", "make_posterior_draws", "rank_uniformity", "sbc"]


class SBCResult(NamedTuple):
    """Ranks of the truth among posterior draws.

    Attributes
    ----------
    ranks: ``{name: (num_replicates, *shape)}`` ints in ``0 .. num_draws``.
    num_draws: posterior draws each rank is computed from (``L``).
    truth: ``{name: (num_replicates, *shape)}`` the prior draws.
    p_values: ``{name: (*shape)}`` chi-square p-values of rank uniformity.
    wall_time_s: seconds.
    """

    ranks: dict[str, np.ndarray]
    num_draws: int
    truth: dict[str, np.ndarray]
    p_values: dict[str, np.ndarray]
    wall_time_s: float


def rank_uniformity(ranks: Any, num_draws: int, num_bins: int | None = None) -> np.ndarray:
    """Chi-square p-value that ranks (``(num_replicates, *shape)``) are uniform on 0..L.

    Bins the ranks into ``num_bins`` equal bins (default: about replicates / 10, at most
    ``L + 1``, at least 2); small p-values mean miscalibration.
    """
    from scipy import stats

    r = np.asarray(ranks)
    n = r.shape[0]
    if num_bins is None:
        num_bins = int(min(num_draws + 1, max(2, n // 10)))
    edges = np.linspace(0, num_draws + 1, num_bins + 1)
    flat = r.reshape(n, -1)
    p = np.empty(flat.shape[1])
    # ranks are integers: a bin's expected share is the number of integers it holds
    per_bin, _ = np.histogram(np.arange(num_draws + 1), bins=edges)
    expected = n * per_bin / (num_draws + 1)
    for k in range(flat.shape[1]):
        counts, _ = np.histogram(flat[:, k], bins=edges)
        p[k] = stats.chisquare(counts, expected).pvalue
    return p.reshape(r.shape[1:])


def make_posterior_draws(
    problem: Problem,
    example_data: Any,
    method: str = "blackjax_nuts",
    *,
    num_warmup: int = 300,
    num_samples: int = 400,
    thin: int = 4,
    laplace_steps: int = 100,
    key: jax.Array | None = None,
) -> Callable[[jax.Array, Any], dict[str, jax.Array]]:
    """The posterior step of one SBC replicate: ``draws(key, data) -> {name: (L, *shape)}``.

    A pure function of a key and a data set (vmap it over replicates), with
    ``L = num_samples // thin`` draws per parameter in the constrained space:

    - ``"blackjax_nuts"``: NUTS from a uniform(-2, 2) start in unconstrained space, window
      adaptation for ``num_warmup`` steps, ``num_samples`` draws thinned by ``thin``;
    - ``"laplace"``: L-BFGS (optax) to the MAP in ``laplace_steps`` steps, then Gaussian draws
      with the inverse Hessian as covariance.

    A NaN log density counts as ``-inf``. ``example_data`` (any data set of the right shape)
    fixes the shapes of the unconstrained space; ``key`` seeds that one initialisation.
    Shared by :func:`sbc` and :func:`vbinfer.cluster.sbc`.
    """
    if method not in ("blackjax_nuts", "laplace"):
        raise ValueError(f"method must be 'blackjax_nuts' or 'laplace', got {method!r}")
    key = jax.random.key(0) if key is None else key
    info = initialize_model(
        key, problem.model, model_kwargs={"data": example_data}, dynamic_args=True
    )
    flat0, unravel = ravel_pytree(info.param_info.z)
    dim = flat0.size
    L = num_samples // thin

    def posterior_draws(k: jax.Array, data: Any) -> dict[str, jax.Array]:
        potential = info.potential_fn(data=data)
        constrain = info.postprocess_fn(data=data)

        def logdensity(u):
            lp = -potential(unravel(u))
            return jnp.where(jnp.isnan(lp), -jnp.inf, lp)

        if method == "blackjax_nuts":
            k_start, k_run = jax.random.split(k)
            u0 = jax.random.uniform(k_start, (dim,), minval=-2.0, maxval=2.0)
            (pos, *_), _ = nuts_chain(k_run, logdensity, u0, num_warmup, num_samples)
            us = pos[::thin][:L]
        else:
            opt = optax.lbfgs()
            loss = lambda u: -logdensity(u)  # noqa: E731
            vg = optax.value_and_grad_from_state(loss)

            def step(carry, _):
                u, s = carry
                v, g = vg(u, state=s)
                upd, s = opt.update(g, s, u, value=v, grad=g, value_fn=loss)
                return (optax.apply_updates(u, upd), s), None

            (u, _), _ = jax.lax.scan(step, (flat0, opt.init(flat0)), None, length=laplace_steps)
            cov = jnp.linalg.inv(jax.hessian(loss)(u))
            chol = jnp.linalg.cholesky(0.5 * (cov + cov.T))
            us = u + jnp.matmul(jax.random.normal(k, (L, dim)), chol.T, precision=HIGHEST)
        return jax.vmap(lambda u: constrain(unravel(u)))(us)

    return posterior_draws


def sbc(
    key: jax.Array,
    problem: Problem,
    *,
    num_replicates: int = 100,
    method: str = "blackjax_nuts",
    num_warmup: int = 300,
    num_samples: int = 400,
    thin: int = 4,
    chunk_size: int = 50,
    laplace_steps: int = 100,
    generator: Problem | None = None,
) -> SBCResult:
    """Run simulation-based calibration of ``method`` on ``problem``.

    Parameters
    ----------
    key: PRNG key.
    problem: the problem; its prior and likelihood generate the replicates.
    num_replicates: number of (prior draw, data set, posterior) replicates.
    method: ``"blackjax_nuts"`` or ``"laplace"``.
    num_warmup, num_samples: NUTS settings per replicate; draws are thinned by ``thin`` to
        reduce autocorrelation, so ranks use ``num_samples // thin`` draws.
    chunk_size: replicates per compiled, vmapped batch.
    laplace_steps: L-BFGS steps to the MAP for ``method="laplace"``.
    generator: a problem to draw parameters and data from instead of ``problem`` (same
        parameter names): SBC of a deliberately misspecified inference, which must fail.
    """
    if method not in ("blackjax_nuts", "laplace"):
        raise ValueError(f"method must be 'blackjax_nuts' or 'laplace', got {method!r}")
    t0 = time.perf_counter()
    k_prior, k_init, k_fit = jax.random.split(key, 3)
    source = problem if generator is None else generator
    prior = Predictive(source.model, num_samples=num_replicates)(k_prior, data=None)
    datas = prior[problem.obs_name]
    L = num_samples // thin
    posterior_draws = make_posterior_draws(
        problem,
        datas[0],
        method,
        num_warmup=num_warmup,
        num_samples=num_samples,
        thin=thin,
        laplace_steps=laplace_steps,
        key=k_init,
    )
    run_chunk = jax.jit(jax.vmap(posterior_draws))
    keys = jax.random.split(k_fit, num_replicates)
    draws: dict[str, list] = {}
    for start in range(0, num_replicates, chunk_size):
        sl = slice(start, start + chunk_size)
        out = run_chunk(keys[sl], datas[sl])
        for name in problem.param_names:
            draws.setdefault(name, []).append(np.asarray(out[name]))
    ranks, truth, pvals = {}, {}, {}
    for name in problem.param_names:
        d = np.concatenate(draws[name])  # (R, L, *shape)
        t = np.asarray(prior[name])
        ranks[name] = (d < t[:, None]).sum(axis=1)
        truth[name] = t
        pvals[name] = rank_uniformity(ranks[name], L)
    return SBCResult(ranks, L, truth, pvals, time.perf_counter() - t0)
