"""Maximum a posteriori by gradient descent (optax), restarts as one vmapped batch; Laplace."""

from __future__ import annotations

import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from vbinfer.inference._chunks import ChunkStore, run_chunked
from vbinfer.inference._common import make_density
from vbinfer.inference.problem import Problem
from vbinfer.inference.result import FitResult

__all__ = ["laplace", "run"]


def _optimizer(name: str, learning_rate: float) -> optax.GradientTransformation:
    if name == "adam":
        return optax.adam(learning_rate)
    if name == "lbfgs":
        return optax.lbfgs()
    raise ValueError(f"optimizer must be 'adam' or 'lbfgs', got {name!r}")


def _step_fn(dens, optimizer: str, learning_rate: float):
    opt = _optimizer(optimizer, learning_rate)
    loss = lambda u: -dens.logdensity(u)  # noqa: E731
    value_and_grad = optax.value_and_grad_from_state(loss)

    def step(carry, _):
        u, s = carry
        if optimizer == "lbfgs":
            v, g = value_and_grad(u, state=s)
            upd, s = opt.update(g, s, u, value=v, grad=g, value_fn=loss)
        else:
            v, g = jax.value_and_grad(loss)(u)
            upd, s = opt.update(g, s, u)
        return (optax.apply_updates(u, upd), s), v

    return opt, loss, step


def run(
    key: jax.Array,
    problem: Problem,
    data: jax.Array,
    *,
    optimizer: str = "adam",
    num_steps: int = 2000,
    learning_rate: float = 1e-2,
    num_restarts: int = 4,
    init_radius: float = 2.0,
    chunk_size: int | None = None,
    progress_bar: bool = False,
    checkpoint_dir: str | Path | None = None,
) -> FitResult:
    """Minimise the negative log density from ``num_restarts`` starts in one vmapped batch.

    Starts are uniform in ``[-init_radius, init_radius]`` of the unconstrained space. The
    result holds the best restart as one draw; ``info["restart_losses"]`` has all final losses.
    The loop runs in compiled chunks of ``chunk_size`` steps with an optional progress bar and
    resumable checkpoints in ``checkpoint_dir``.
    """
    t_start = time.perf_counter()
    k_init, k_start = jax.random.split(key)
    dens = make_density(k_init, problem, data)
    starts = jax.random.uniform(
        k_start, (num_restarts, dens.dim), minval=-init_radius, maxval=init_radius
    )
    opt, loss, step = _step_fn(dens, optimizer, learning_rate)
    chunk = num_steps if chunk_size is None else int(chunk_size)
    state = jax.vmap(lambda u: (u, opt.init(u)))(starts)
    t0 = time.perf_counter()
    body = (
        jax.jit(jax.vmap(lambda c: jax.lax.scan(step, c, None, length=chunk)))
        .lower(state)
        .compile()
    )
    t_compile = time.perf_counter() - t0
    store = ChunkStore(
        checkpoint_dir,
        {
            "method": "map",
            "optimizer": optimizer,
            "num_steps": num_steps,
            "num_restarts": num_restarts,
            "chunk_size": chunk,
            "key": np.asarray(jax.random.key_data(key)).tolist(),
        },
    )
    (us, _), losses = run_chunked(
        body, state, num_steps, chunk, store, f"MAP ({optimizer})", progress_bar
    )
    finals = jax.vmap(loss)(jnp.asarray(us))
    finals = jnp.where(jnp.isfinite(finals), finals, jnp.inf)
    best = int(jnp.argmin(finals))
    point = dens.constrain(dens.unravel(jnp.asarray(us[best])))
    samples = {k: np.asarray(v)[None, None] for k, v in point.items()}
    info = {
        "optimizer": optimizer,
        "num_restarts": num_restarts,
        "best_restart": best,
        "restart_losses": [float(f) for f in finals],
        "unconstrained_map": np.asarray(us[best]).tolist(),
    }
    return FitResult(
        "map",
        samples,
        None,
        np.asarray(losses[best]),
        time.perf_counter() - t_start,
        t_compile,
        info,
    )


def laplace(
    key: jax.Array,
    problem: Problem,
    data: jax.Array,
    *,
    num_samples: int = 2000,
    **map_kwargs,
) -> FitResult:
    """Laplace approximation: a Gaussian at the MAP in the unconstrained coordinates with the
    inverse Hessian of the negative log density as covariance; samples are constrained back."""
    t_start = time.perf_counter()
    k_map, k_draw = jax.random.split(key)
    fit = run(k_map, problem, data, **map_kwargs)
    dens = make_density(k_map, problem, data)
    u = jnp.asarray(fit.info["unconstrained_map"])
    t0 = time.perf_counter()
    hess = jax.jit(jax.hessian(lambda v: -dens.logdensity(v)))(u)
    t_compile = fit.compile_time_s + time.perf_counter() - t0
    cov = jnp.linalg.inv(hess)
    cov = 0.5 * (cov + cov.T)
    chol = jnp.linalg.cholesky(cov)
    if not bool(jnp.all(jnp.isfinite(chol))):
        raise ValueError("laplace: the Hessian at the MAP is not positive definite")
    z = jax.random.normal(k_draw, (num_samples, dens.dim))
    draws = u + z @ chol.T
    constrained = jax.vmap(lambda v: dens.constrain(dens.unravel(v)))(draws)
    samples = {k: np.asarray(v)[None] for k, v in constrained.items()}
    info = dict(fit.info)
    info["hessian_eigenvalues"] = np.linalg.eigvalsh(np.asarray(hess)).tolist()
    return FitResult(
        "laplace", samples, None, fit.loss, time.perf_counter() - t_start, t_compile, info
    )
