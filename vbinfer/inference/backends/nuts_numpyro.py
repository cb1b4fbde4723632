"""NUTS through numpyro: several chains, vectorised, sampling in chunks that resume from disk.

Without ``chunk_size`` or ``checkpoint_dir``, one ``MCMC.run`` does warm-up and sampling in one
compiled program. Otherwise warm-up runs once (``MCMC.warmup``) and sampling runs in chunks of
``chunk_size`` draws by setting ``mcmc.post_warmup_state`` to the state the previous chunk ended
in (numpyro's documented way to draw more samples from a running chain). With
``checkpoint_dir``, the post-warm-up state and, after every chunk, the chunk's draws and the
chain state it ended in (an ``HMCState``: position, gradient, adapted step size and mass
matrix, PRNG keys) are written to disk; a run that is interrupted and started again with the
same arguments loads them and continues from the last finished chunk, with draws identical bit
for bit to an uninterrupted run.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jax
import numpy as np
from numpyro.infer import MCMC, NUTS, init_to_uniform

from vbinfer.inference._chunks import ChunkStore
from vbinfer.inference._common import INITS, compile_clock, init_center, valid_starts
from vbinfer.inference.problem import Problem
from vbinfer.inference.result import FitResult

__all__ = ["run"]

_FIELDS = ("diverging", "num_steps", "accept_prob")


def _chunk_keys(key: jax.Array, c: int, num_chains: int) -> jax.Array:
    """The PRNG key(s) of chunk ``c``: one per chain (a single key for one chain)."""
    k = jax.random.fold_in(key, c)
    return jax.random.split(k, num_chains) if num_chains > 1 else k


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
    init: str = "uniform",
    init_radius: float = 2.0,
    chunk_size: int | None = None,
    progress_bar: bool = False,
    checkpoint_dir: str | Path | None = None,
) -> FitResult:
    """Run numpyro's NUTS with ``num_chains`` vectorised chains.

    Parameters
    ----------
    key, problem, data: as :func:`vbinfer.inference.fit`.
    num_warmup, num_samples, num_chains, target_accept, max_tree_depth, dense_mass:
        sampler settings (numpyro's ``NUTS`` and ``MCMC``).
    init, init_radius: chains start uniformly within ``init_radius`` of 0 in the unconstrained
        space (``"uniform"``: numpyro's ``init_to_uniform``, which retries until the log
        density and its gradient are finite) or of the prior mean (``"mean"``; starts with a
        finite log density, see :func:`~vbinfer.inference._common.valid_starts`).
    chunk_size: draws per chunk (default: all at once; must divide ``num_samples``). The
        draws of a run depend on ``chunk_size`` and on whether ``checkpoint_dir`` is given
        (without either, warm-up and sampling run as one compiled program; with either, the
        warm-up is a program of its own and each chunk has its own key), but not on whether
        the run was interrupted and resumed.
    progress_bar: numpyro's progress bar (one for warm-up, one per chunk).
    checkpoint_dir: folder for the post-warm-up state and finished chunks (resumable runs).

    ``compile_time_s`` is the time jax spent lowering and compiling during the run (numpyro
    compiles its sampler inside ``MCMC.warmup`` / ``MCMC.run``), measured with
    ``jax.monitoring`` events; it is included in ``wall_time_s``.
    """
    chunk = num_samples if chunk_size is None else int(chunk_size)
    if chunk < 1 or num_samples % chunk:
        raise ValueError(
            f"chunk_size must be a positive divisor of num_samples={num_samples}, got {chunk_size!r}"
        )
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    t_start = time.perf_counter()
    store = ChunkStore(
        checkpoint_dir,
        {
            "method": "nuts",
            "num_warmup": num_warmup,
            "num_samples": num_samples,
            "num_chains": num_chains,
            "chunk_size": chunk,
            "target_accept": target_accept,
            "max_tree_depth": max_tree_depth,
            "dense_mass": dense_mass,
            "init": init,
            "init_radius": init_radius,
            "key": np.asarray(jax.random.key_data(key)).tolist(),
        },
    )
    kernel = NUTS(
        problem.model,
        target_accept_prob=target_accept,
        max_tree_depth=max_tree_depth,
        dense_mass=dense_mass,
        init_strategy=init_to_uniform(radius=init_radius),
    )
    with compile_clock() as t_compile:
        init_params = None
        if init != "uniform":
            k_init, k_start = jax.random.split(jax.random.fold_in(key, 2))
            dens, center = init_center(k_init, problem, data, init)
            u = valid_starts(k_start, dens.logdensity, num_chains, dens.dim, init_radius, center)
            init_params = jax.vmap(dens.unravel)(u) if num_chains > 1 else dens.unravel(u[0])
        samples, extra, state = _sample(
            key,
            data,
            kernel,
            store,
            num_warmup,
            num_samples,
            num_chains,
            chunk,
            progress_bar,
            init_params,
        )
    step_size = np.asarray(state.adapt_state.step_size)
    info = {
        "num_warmup": num_warmup,
        "num_chains": num_chains,
        "chunk_size": chunk,
        "step_size": float(np.mean(step_size)),
        "sample_stats": {"num_steps": extra["num_steps"], "acceptance_rate": extra["accept_prob"]},
    }
    return FitResult(
        "nuts",
        samples,
        extra["diverging"],
        None,
        time.perf_counter() - t_start,
        t_compile[0],
        info,
    )


def _sample(
    key: jax.Array,
    data: jax.Array,
    kernel: NUTS,
    store: ChunkStore,
    num_warmup: int,
    num_samples: int,
    num_chains: int,
    chunk: int,
    progress_bar: bool,
    init_params: Any = None,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], Any]:
    """Warm up (or load the warmed-up state), then sample chunk by chunk (or load the chunks).

    Returns the constrained draws ``{site: (num_chains, num_samples, *shape)}``, the extra
    fields ``{field: (num_chains, num_samples)}`` and the last chain state.
    """
    k_warm, k_draw = jax.random.split(jax.random.fold_in(key, 1))
    mcmc = MCMC(
        kernel,
        num_warmup=num_warmup,
        num_samples=chunk,
        num_chains=num_chains,
        chain_method="vectorized",
        progress_bar=progress_bar,
    )
    warm_keys = jax.random.split(k_warm, num_chains) if num_chains > 1 else k_warm
    if store.folder is None and chunk == num_samples:
        # one chunk, nothing to save: warm-up and sampling in one compiled program
        mcmc.run(warm_keys, data=data, extra_fields=_FIELDS, init_params=init_params)
        draws = jax.tree_util.tree_map(np.asarray, mcmc.get_samples(group_by_chain=True))
        extra = mcmc.get_extra_fields(group_by_chain=True)
        return draws, {k: np.asarray(extra[k]) for k in _FIELDS}, mcmc.last_state
    if store.exists("adapted"):
        # resuming: initialise the kernel (as MCMC.run would) to learn the state's structure
        template = kernel.init(warm_keys, num_warmup, init_params, (), {"data": data})
        state = store.load("adapted", template)
    else:
        mcmc.warmup(warm_keys, data=data, collect_warmup=False, init_params=init_params)
        state = mcmc.post_warmup_state
        store.save("adapted", state)
    one_chain = jax.tree_util.tree_map(lambda x: x[0], state.z) if num_chains > 1 else state.z
    names = jax.eval_shape(kernel.postprocess_fn((), {"data": data}), one_chain)
    template = (state, dict.fromkeys(names, 0), dict.fromkeys(_FIELDS, 0))
    parts = []
    for c in range(num_samples // chunk):
        name = f"chunk_{c:05d}"
        saved = store.load(name, template)
        if saved is None:
            mcmc.post_warmup_state = state
            mcmc.run(_chunk_keys(k_draw, c, num_chains), data=data, extra_fields=_FIELDS)
            state = mcmc.last_state
            draws = mcmc.get_samples(group_by_chain=True)
            extra = mcmc.get_extra_fields(group_by_chain=True)
            store.save(name, (state, draws, {k: extra[k] for k in _FIELDS}))
        else:
            state, draws, extra = saved
        parts.append(jax.tree_util.tree_map(np.asarray, (draws, dict(extra))))
    samples = {k: np.concatenate([p[0][k] for p in parts], axis=1) for k in parts[0][0]}
    extra = {k: np.concatenate([p[1][k] for p in parts], axis=1) for k in _FIELDS}
    return samples, extra, state
