"""NUTS through numpyro: several chains, vectorised."""

from __future__ import annotations

import time

import jax
import numpy as np
from numpyro.infer import MCMC, NUTS

from vbinfer.inference._common import make_density, timed_compile
from vbinfer.inference.problem import Problem
from vbinfer.inference.result import FitResult

__all__ = ["run"]


def run(
    key: jax.Array,
    problem: Problem,
    data: jax.Array,
    *,
    num_warmup: int = 500,
    num_samples: int = 500,
    num_chains: int = 2,
    target_accept: float = 0.8,
    max_tree_depth: int = 10,
    dense_mass: bool = False,
    progress_bar: bool = False,
) -> FitResult:
    """Run numpyro's NUTS; ``compile_time_s`` is the compile time of the log density gradient
    (numpyro compiles its sampler inside ``run``, which ``wall_time_s`` includes)."""
    t_start = time.perf_counter()
    k_init, k_run = jax.random.split(key)
    dens = make_density(k_init, problem, data)
    _, t_compile = timed_compile(jax.value_and_grad(dens.potential), dens.z0)
    kernel = NUTS(
        problem.model,
        target_accept_prob=target_accept,
        max_tree_depth=max_tree_depth,
        dense_mass=dense_mass,
    )
    mcmc = MCMC(
        kernel,
        num_warmup=num_warmup,
        num_samples=num_samples,
        num_chains=num_chains,
        chain_method="vectorized",
        progress_bar=progress_bar,
    )
    mcmc.run(k_run, data=data, extra_fields=("diverging", "num_steps", "adapt_state.step_size"))
    samples = {k: np.asarray(v) for k, v in mcmc.get_samples(group_by_chain=True).items()}
    extra = mcmc.get_extra_fields(group_by_chain=True)
    div = np.asarray(extra["diverging"])
    stats = {"num_steps": np.asarray(extra["num_steps"])}
    info = {
        "num_warmup": num_warmup,
        "num_chains": num_chains,
        "step_size": float(np.mean(np.asarray(extra["adapt_state.step_size"])[:, -1])),
        "sample_stats": stats,
    }
    return FitResult("nuts", samples, div, None, time.perf_counter() - t_start, t_compile, info)
