"""NUTS through blackjax: window adaptation, chains vmapped, sampling in compiled chunks.

Sampling runs in chunks of ``chunk_size`` draws (one compiled program reused for every chunk),
so a progress bar can move between chunks and, with ``checkpoint_dir``, every finished chunk is
on disk: a run that is interrupted and started again with the same arguments loads the adapted
kernel and the finished chunks and continues, with results identical to an uninterrupted run.
"""

from __future__ import annotations

import time
from pathlib import Path

import blackjax
import jax
import jax.numpy as jnp
import numpy as np

from vbinfer.inference._chunks import ChunkStore, progress
from vbinfer.inference._common import compile_clock, init_center, valid_starts
from vbinfer.inference.problem import Problem
from vbinfer.inference.result import FitResult

__all__ = ["nuts_chain", "run", "valid_starts"]


def _adapt(key, logdensity, u0, num_warmup: int, target_accept: float):
    warmup = blackjax.window_adaptation(
        blackjax.nuts, logdensity, target_acceptance_rate=target_accept
    )
    (state, params), _ = warmup.run(key, u0, num_steps=num_warmup)
    return state, params


def _sample(key, logdensity, state, params, num_samples: int):
    step = blackjax.nuts(logdensity, **params).step

    def body(s, kk):
        s, info = step(kk, s)
        return s, (s.position, info.is_divergent, info.num_integration_steps, info.acceptance_rate)

    return jax.lax.scan(body, state, jax.random.split(key, num_samples))


def nuts_chain(key, logdensity, u0, num_warmup: int, num_samples: int, target_accept: float = 0.8):
    """One adapted NUTS chain on a flat log density: ``((positions, divergent, num_steps,
    acceptance), step_size)``; pure, so it can be vmapped over chains or datasets."""
    k_adapt, k_draw = jax.random.split(key)
    state, params = _adapt(k_adapt, logdensity, u0, num_warmup, target_accept)
    _, out = _sample(k_draw, logdensity, state, params, num_samples)
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
    init: str = "uniform",
    init_radius: float = 2.0,
    chunk_size: int | None = None,
    progress_bar: bool = False,
    checkpoint_dir: str | Path | None = None,
) -> FitResult:
    """Run blackjax's NUTS with Stan's window adaptation, one adaptation per chain.

    Parameters
    ----------
    key, problem, data: as :func:`vbinfer.inference.fit`.
    num_warmup, num_samples, num_chains, target_accept: sampler settings.
    init, init_radius: chains start from independent uniform draws in
        ``[-init_radius, init_radius]`` of the unconstrained space around 0 (``"uniform"``,
        numpyro's init_to_uniform) or around the prior mean (``"mean"``), each with a finite
        log density (see :func:`valid_starts`).
    chunk_size: draws per compiled chunk (default: all at once; must divide ``num_samples``).
    progress_bar: show a tqdm bar that advances after warm-up and after every chunk.
    checkpoint_dir: folder for the adapted kernel and finished chunks (resumable runs).

    ``compile_time_s`` is the time jax spent lowering and compiling during the run, measured
    with ``jax.monitoring`` events as for numpyro's NUTS; it is included in ``wall_time_s``.
    """
    chunk = num_samples if chunk_size is None else int(chunk_size)
    if chunk < 1 or num_samples % chunk:
        raise ValueError(
            f"chunk_size must be a positive divisor of num_samples={num_samples}, got {chunk_size!r}"
        )
    t_start = time.perf_counter()
    with compile_clock() as t_compile:
        samples, (div, nsteps, acc), step_size = _run(
            key,
            problem,
            data,
            num_warmup,
            num_samples,
            num_chains,
            chunk,
            target_accept,
            init,
            init_radius,
            progress_bar,
            checkpoint_dir,
        )
    info = {
        "num_warmup": num_warmup,
        "num_chains": num_chains,
        "chunk_size": chunk,
        "step_size": step_size,
        "sample_stats": {"num_steps": nsteps, "acceptance_rate": acc},
    }
    return FitResult(
        "blackjax_nuts", samples, div, None, time.perf_counter() - t_start, t_compile[0], info
    )


def _run(
    key,
    problem,
    data,
    num_warmup,
    num_samples,
    num_chains,
    chunk,
    target_accept,
    init,
    init_radius,
    progress_bar,
    checkpoint_dir,
):
    """Adapt (or load the adapted kernels), then sample chunk by chunk (or load the chunks)."""
    k_init, k_start, k_run = jax.random.split(key, 3)
    k_adapt, k_draw = jax.random.split(k_run)
    dens, center = init_center(k_init, problem, data, init)
    starts = valid_starts(k_start, dens.logdensity, num_chains, dens.dim, init_radius, center)
    store = ChunkStore(
        checkpoint_dir,
        {
            "method": "blackjax_nuts",
            "num_warmup": num_warmup,
            "num_samples": num_samples,
            "num_chains": num_chains,
            "chunk_size": chunk,
            "target_accept": target_accept,
            "init": init,
            "init_radius": init_radius,
            "key": np.asarray(jax.random.key_data(key)).tolist(),
            "dim": dens.dim,
        },
    )
    ld = dens.logdensity
    adapt = jax.jit(jax.vmap(lambda k, u: _adapt(k, ld, u, num_warmup, target_accept)))
    sample = jax.jit(jax.vmap(lambda k, s, p: _sample(k, ld, s, p, chunk)))
    bar = progress(num_warmup + num_samples, "blackjax NUTS", progress_bar)
    adapt_keys = jax.random.split(k_adapt, num_chains)
    if store.exists("adapted"):  # resuming: no need to compile the adaptation
        state, params = store.load("adapted", jax.eval_shape(adapt, adapt_keys, starts))
        state, params = jax.tree_util.tree_map(jnp.asarray, (state, params))
    else:
        state, params = adapt(adapt_keys, starts)
        store.save("adapted", (state, params))
    bar.update(num_warmup)
    out_shape = jax.eval_shape(sample, jax.random.split(k_draw, num_chains), state, params)
    parts = []
    for c in range(num_samples // chunk):
        name = f"chunk_{c:05d}"
        saved = store.load(name, out_shape)
        if saved is None:
            keys = jax.random.split(jax.random.fold_in(k_draw, c), num_chains)
            state, draws = sample(keys, state, params)
            store.save(name, (state, draws))
        else:
            state, draws = jax.tree_util.tree_map(jnp.asarray, saved)
        parts.append(jax.tree_util.tree_map(np.asarray, draws))
        bar.update(chunk)
    bar.close()
    pos, div, nsteps, acc = (np.concatenate([p[i] for p in parts], axis=1) for i in range(4))
    constrained = jax.vmap(jax.vmap(lambda u: dens.constrain(dens.unravel(u))))(jnp.asarray(pos))
    samples = {k: np.asarray(v) for k, v in constrained.items()}
    return samples, (div, nsteps, acc), float(jnp.mean(params["step_size"]))
