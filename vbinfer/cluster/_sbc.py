"""Simulation-based calibration as a resumable sweep over replicates, in-process or on Dask.

Each replicate is a pure function of its own key, ``fold_in(key, r)`` for replicate ``r``: a
prior draw and a data set from the generating problem, then posterior draws (blackjax NUTS or
the Laplace approximation, exactly as :func:`vbinfer.inference.sbc` runs them) and the ranks of
the truth among them. :func:`sbc` runs the replicates through :func:`~vbinfer.cluster.sweep`,
so it inherits chunking, the chunk store, resumption, retries and progress; only ranks and
prior draws are stored (``ranks.<name>``, ``truth.<name>``), not the posterior draws.

Because replicate ``r`` depends only on ``(key, r)``, the ranks do not depend on chunk size,
on resumption or on the cluster, and a run of 200 replicates repeats the first 100 of a run of
100. The keys differ from :func:`vbinfer.inference.sbc` (which splits one key over all
replicates), so the two agree in distribution, not draw for draw.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from numpyro.handlers import seed, trace

from vbinfer.cluster._sweep import sweep
from vbinfer.inference.problem import Problem
from vbinfer.inference.sbc import SBCResult, make_posterior_draws, rank_uniformity

__all__ = ["make_replicate_fn", "sbc"]

METHODS = ("blackjax_nuts", "laplace")


def _draw(model: Callable, key: jax.Array, names: tuple[str, ...], obs_name: str):
    tr = trace(seed(model, key)).get_trace(data=None)
    return {n: tr[n]["value"] for n in names}, tr[obs_name]["value"]


def make_replicate_fn(
    problem: Problem,
    method: str = "blackjax_nuts",
    *,
    num_warmup: int = 300,
    num_samples: int = 400,
    thin: int = 4,
    laplace_steps: int = 100,
    generator: Problem | None = None,
) -> Callable[[jax.Array, Any], dict[str, dict[str, jax.Array]]]:
    """One SBC replicate as a pure function ``replicate(key, point) -> {"ranks", "truth"}``.

    ``point`` is ignored (the sweep passes the replicate number); ``key`` is split into a prior
    key (parameters and data from ``generator`` or ``problem``) and a fit key. The posterior
    step is the one of :func:`vbinfer.inference.sbc`: NUTS from a uniform(-2, 2) start in
    unconstrained space with ``num_warmup`` adaptation steps and ``num_samples`` draws thinned
    by ``thin``, or L-BFGS to the MAP (``laplace_steps``) and Gaussian draws with the inverse
    Hessian. Ranks are ``#(draws < truth)`` in ``0 .. num_samples // thin``.

    Returns ``{"ranks": {name: int32 (*shape)}, "truth": {name: (*shape)}}``.

    Examples
    --------
    >>> rep = make_replicate_fn(problem, "laplace", num_samples=200, thin=2)  # doctest: +SKIP
    >>> rep(jax.random.key(0), None)["ranks"]["theta"]    # ints in 0..100     # doctest: +SKIP
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    for name, v, lo in (
        ("num_warmup", num_warmup, 1),
        ("num_samples", num_samples, 1),
        ("thin", thin, 1),
        ("laplace_steps", laplace_steps, 1),
    ):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
    if num_samples // thin < 1:
        raise ValueError(f"num_samples // thin must be >= 1, got {num_samples} // {thin}")
    source = problem if generator is None else generator
    missing = set(problem.param_names) - set(source.param_names)
    if missing:
        raise ValueError(f"generator lacks the parameters {sorted(missing)} of problem")
    names = tuple(problem.param_names)
    # shapes of the unconstrained space from one draw (concrete, on the calling process)
    k0 = jax.random.key(0)
    _, data0 = _draw(source.model, k0, names, source.obs_name)
    posterior_draws = make_posterior_draws(
        problem,
        data0,
        method,
        num_warmup=num_warmup,
        num_samples=num_samples,
        thin=thin,
        laplace_steps=laplace_steps,
        key=k0,
    )

    def replicate(key, point):
        del point
        k_prior, k_fit = jax.random.split(key)
        truth, data = _draw(source.model, k_prior, names, source.obs_name)
        draws = posterior_draws(k_fit, data)
        ranks = {n: jnp.sum(draws[n] < truth[n], axis=0).astype(jnp.int32) for n in names}
        return {"ranks": ranks, "truth": truth}

    return replicate


def sbc(
    key: jax.Array,
    problem: Problem,
    num_replicates: int,
    method: str = "blackjax_nuts",
    *,
    chunk_size: int = 50,
    store: str | os.PathLike | None = None,
    client: Any = None,
    retries: int = 2,
    progress: bool = True,
    num_warmup: int = 300,
    num_samples: int = 400,
    thin: int = 4,
    laplace_steps: int = 100,
    generator: Problem | None = None,
) -> SBCResult:
    """Simulation-based calibration of ``method`` on ``problem``, chunked and resumable.

    Parameters
    ----------
    key:
        PRNG key; replicate ``r`` uses ``jax.random.fold_in(key, r)``.
    problem:
        The inference problem; its prior and likelihood generate the replicates.
    num_replicates:
        Number of (prior draw, data set, posterior) replicates.
    method:
        ``"blackjax_nuts"`` or ``"laplace"``.
    chunk_size, store, client, retries, progress:
        As :func:`~vbinfer.cluster.sweep`: replicates per compiled batch (one Dask task),
        folder of per-chunk netCDF files (resumable), ``None`` / Client / cluster / scheduler
        address, extra attempts per failing chunk, progress bar.
    num_warmup, num_samples, thin, laplace_steps, generator:
        As :func:`vbinfer.inference.sbc`; ranks use ``num_samples // thin`` draws.

    Returns
    -------
    :class:`vbinfer.inference.sbc.SBCResult` (ranks, number of draws, truths, chi-square
    p-values of rank uniformity, wall time).

    Examples
    --------
    >>> res = sbc(jax.random.key(0), problem, 200, "laplace", store="sbc-out")  # doctest: +SKIP
    >>> res.p_values                                                            # doctest: +SKIP
    """
    t0 = time.perf_counter()
    if (
        isinstance(num_replicates, bool)
        or not isinstance(num_replicates, int)
        or num_replicates < 1
    ):
        raise ValueError(f"num_replicates must be an integer >= 1, got {num_replicates!r}")
    fn = make_replicate_fn(
        problem,
        method,
        num_warmup=num_warmup,
        num_samples=num_samples,
        thin=thin,
        laplace_steps=laplace_steps,
        generator=generator,
    )
    res = sweep(
        fn,
        {"replicate": np.arange(num_replicates)},
        key=key,
        chunk_size=chunk_size,
        store=store,
        client=client,
        retries=retries,
        progress=progress,
        name=f"sbc-{method}",
        settings={
            "method": method,
            "num_warmup": num_warmup,
            "num_samples": num_samples,
            "thin": thin,
            "laplace_steps": laplace_steps,
            "generator": generator is not None,
        },
    )
    L = num_samples // thin
    ranks = {n: np.asarray(v) for n, v in res.outputs["ranks"].items()}
    truth = {n: np.asarray(v) for n, v in res.outputs["truth"].items()}
    pvals = {n: rank_uniformity(r, L) for n, r in ranks.items()}
    return SBCResult(ranks, L, truth, pvals, time.perf_counter() - t0)
