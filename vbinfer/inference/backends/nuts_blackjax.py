"""NUTS through blackjax: window adaptation, chains vmapped, one compiled program."""

from __future__ import annotations

import time

import blackjax
import jax
import jax.numpy as jnp
import numpy as np

from vbinfer.inference._common import make_density
from vbinfer.inference.problem import Problem
from vbinfer.inference.result import FitResult

__all__ = ["nuts_chain", "run"]


def nuts_chain(key, logdensity, u0, num_warmup: int, num_samples: int, target_accept: float = 0.8):
    """One adapted NUTS chain on a flat log density: ``((positions, divergent, num_steps,
    acceptance), step_size)``; pure, so it can be vmapped over chains or datasets."""
    k_adapt, k_draw = jax.random.split(key)
    warmup = blackjax.window_adaptation(
        blackjax.nuts, logdensity, target_acceptance_rate=target_accept
    )
    (state, params), _ = warmup.run(k_adapt, u0, num_steps=num_warmup)
    step = blackjax.nuts(logdensity, **params).step

    def body(s, kk):
        s, info = step(kk, s)
        return s, (s.position, info.is_divergent, info.num_integration_steps, info.acceptance_rate)

    _, out = jax.lax.scan(body, state, jax.random.split(k_draw, num_samples))
    return out, params["step_size"]


def run(
    key: jax.Array,
    problem: Problem,
    data: jax.Array,
    *,
    num_warmup: int = 500,
    num_samples: int = 500,
    num_chains: int = 2,
    target_accept: float = 0.8,
    init_radius: float = 2.0,
) -> FitResult:
    """Run blackjax's NUTS with Stan's window adaptation, one adaptation per chain.

    Chains start from independent uniform draws in ``[-init_radius, init_radius]`` of the
    unconstrained space (numpyro's ``init_to_uniform``).
    """
    t_start = time.perf_counter()
    k_init, k_start, k_run = jax.random.split(key, 3)
    dens = make_density(k_init, problem, data)
    starts = jax.random.uniform(
        k_start, (num_chains, dens.dim), minval=-init_radius, maxval=init_radius
    )

    def one_chain(k, u0):
        return nuts_chain(k, dens.logdensity, u0, num_warmup, num_samples, target_accept)

    run_all = jax.jit(jax.vmap(one_chain))
    keys = jax.random.split(k_run, num_chains)
    t0 = time.perf_counter()
    compiled = run_all.lower(keys, starts).compile()
    t_compile = time.perf_counter() - t0
    (pos, div, nsteps, acc), step_size = jax.block_until_ready(compiled(keys, starts))
    constrained = jax.vmap(jax.vmap(lambda u: dens.constrain(dens.unravel(u))))(pos)
    samples = {k: np.asarray(v) for k, v in constrained.items()}
    info = {
        "num_warmup": num_warmup,
        "num_chains": num_chains,
        "step_size": float(jnp.mean(step_size)),
        "sample_stats": {"num_steps": np.asarray(nsteps), "acceptance_rate": np.asarray(acc)},
    }
    return FitResult(
        "blackjax_nuts",
        samples,
        np.asarray(div),
        None,
        time.perf_counter() - t_start,
        t_compile,
        info,
    )
