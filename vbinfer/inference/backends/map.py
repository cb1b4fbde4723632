"""Maximum a posteriori by gradient descent (optax), restarts as one vmapped batch; Laplace."""

from __future__ import annotations

import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from vbinfer._precision import HIGHEST
from vbinfer.inference._chunks import ChunkStore, run_chunked
from vbinfer.inference._common import Density, init_center
from vbinfer.inference.problem import Problem
from vbinfer.inference.result import FitResult

__all__ = ["laplace", "run"]


Optimizer = str | optax.GradientTransformation


def _optimizer(optimizer: Optimizer, learning_rate: float) -> optax.GradientTransformationExtraArgs:
    if isinstance(optimizer, str):
        if optimizer == "adam":
            return optax.with_extra_args_support(optax.adam(learning_rate))
        if optimizer == "lbfgs":
            return optax.lbfgs()
    elif isinstance(optimizer, optax.GradientTransformation):
        return optax.with_extra_args_support(optimizer)
    raise ValueError(
        f"optimizer must be 'adam', 'lbfgs' or an optax.GradientTransformation, got {optimizer!r}"
    )


def _optimizer_name(optimizer: Optimizer) -> str:
    return optimizer if isinstance(optimizer, str) else type(optimizer).__name__


def _caches_value(opt: optax.GradientTransformation, dim: int) -> bool:
    """Whether the optimizer's state carries the value and gradient (L-BFGS and line searches)."""
    state = jax.eval_shape(opt.init, jax.ShapeDtypeStruct((dim,), jnp.float32))
    return optax.tree_utils.tree_get(state, "value", default=None) is not None


def _step_fn(dens, optimizer: Optimizer, learning_rate: float):
    opt = _optimizer(optimizer, learning_rate)
    loss = lambda u: -dens.logdensity(u)  # noqa: E731
    if _caches_value(opt, dens.dim):  # reuse the value and gradient of the line search
        value_and_grad = optax.value_and_grad_from_state(loss)
    else:
        value_and_grad = lambda u, state: jax.value_and_grad(loss)(u)  # noqa: E731

    def step(carry, _):
        u, s = carry
        v, g = value_and_grad(u, state=s)
        upd, s = opt.update(g, s, u, value=v, grad=g, value_fn=loss)
        return (optax.apply_updates(u, upd), s), v

    return opt, loss, step


def run(
    key: jax.Array,
    problem: Problem,
    data: jax.Array,
    *,
    optimizer: Optimizer = "adam",
    num_steps: int = 2000,
    learning_rate: float = 1e-2,
    num_restarts: int = 4,
    init: str = "uniform",
    init_radius: float = 2.0,
    chunk_size: int | None = None,
    progress_bar: bool = False,
    checkpoint_dir: str | Path | None = None,
) -> FitResult:
    """Minimise the negative log density from ``num_restarts`` starts in one vmapped batch.

    ``optimizer`` is ``"adam"`` (with ``learning_rate``), ``"lbfgs"`` (optax's, with its zoom
    line search) or any ``optax.GradientTransformation`` (used as given, ``learning_rate``
    ignored; one whose state caches the value and gradient, as optax's L-BFGS does, gets them
    through ``optax.value_and_grad_from_state``).
    Starts are uniform in ``[-init_radius, init_radius]`` of the unconstrained space, around 0
    (``init="uniform"``) or around the prior mean (``init="mean"``; see
    :data:`~vbinfer.inference._common.INITS`). The result
    holds the best restart as one draw; ``info["restart_losses"]`` has all final losses.
    The loop runs in compiled chunks of ``chunk_size`` steps with an optional progress bar and
    resumable checkpoints in ``checkpoint_dir``; ``info["loop_time_s"]`` is the time spent in
    that loop (no set-up or compilation).
    """
    return _run(
        key,
        problem,
        data,
        optimizer=optimizer,
        num_steps=num_steps,
        learning_rate=learning_rate,
        num_restarts=num_restarts,
        init=init,
        init_radius=init_radius,
        chunk_size=chunk_size,
        progress_bar=progress_bar,
        checkpoint_dir=checkpoint_dir,
    )[0]


def _run(
    key: jax.Array,
    problem: Problem,
    data: jax.Array,
    *,
    optimizer: Optimizer,
    num_steps: int,
    learning_rate: float,
    num_restarts: int,
    init: str,
    init_radius: float,
    chunk_size: int | None,
    progress_bar: bool,
    checkpoint_dir: str | Path | None,
) -> tuple[FitResult, Density]:
    t_start = time.perf_counter()
    k_init, k_start = jax.random.split(key)
    dens, center = init_center(k_init, problem, data, init)
    starts = center + jax.random.uniform(
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
            "optimizer": _optimizer_name(optimizer),
            "num_steps": num_steps,
            "num_restarts": num_restarts,
            "init": init,
            "init_radius": init_radius,
            "chunk_size": chunk,
            "key": np.asarray(jax.random.key_data(key)).tolist(),
        },
    )
    t0 = time.perf_counter()
    (us, _), losses = run_chunked(
        body, state, num_steps, chunk, store, f"MAP ({_optimizer_name(optimizer)})", progress_bar
    )
    t_loop = time.perf_counter() - t0
    finals = jax.jit(jax.vmap(loss))(jnp.asarray(us))
    finals = jnp.where(jnp.isfinite(finals), finals, jnp.inf)
    best = int(jnp.argmin(finals))
    point = dens.constrain(dens.unravel(jnp.asarray(us[best])))
    samples = {k: np.asarray(v)[None, None] for k, v in point.items()}
    info = {
        "optimizer": _optimizer_name(optimizer),
        "num_restarts": num_restarts,
        "best_restart": best,
        "restart_losses": [float(f) for f in finals],
        "unconstrained_map": np.asarray(us[best]).tolist(),
        "loop_time_s": t_loop,
    }
    res = FitResult(
        "map",
        samples,
        None,
        np.asarray(losses[best]),
        time.perf_counter() - t_start,
        t_compile,
        info,
    )
    return res, dens


def laplace(
    key: jax.Array,
    problem: Problem,
    data: jax.Array,
    *,
    num_samples: int = 2000,
    optimizer: Optimizer = "adam",
    num_steps: int = 2000,
    learning_rate: float = 1e-2,
    num_restarts: int = 4,
    init: str = "uniform",
    init_radius: float = 2.0,
    chunk_size: int | None = None,
    progress_bar: bool = False,
    checkpoint_dir: str | Path | None = None,
) -> FitResult:
    """Laplace approximation: a Gaussian at the MAP in the unconstrained coordinates with the
    inverse Hessian of the negative log density as covariance; samples are constrained back.

    The MAP is found by :func:`run` (same options); ``num_samples`` draws are made from the
    Gaussian.
    """
    t_start = time.perf_counter()
    k_map, k_draw = jax.random.split(key)
    fit, dens = _run(
        k_map,
        problem,
        data,
        optimizer=optimizer,
        num_steps=num_steps,
        learning_rate=learning_rate,
        num_restarts=num_restarts,
        init=init,
        init_radius=init_radius,
        chunk_size=chunk_size,
        progress_bar=progress_bar,
        checkpoint_dir=checkpoint_dir,
    )
    u = jnp.asarray(fit.info["unconstrained_map"])
    t0 = time.perf_counter()
    hess_fn = jax.jit(jax.hessian(lambda v: -dens.logdensity(v))).lower(u).compile()
    t_compile = fit.compile_time_s + time.perf_counter() - t0
    hess = hess_fn(u)
    cov = jnp.linalg.inv(hess)
    cov = 0.5 * (cov + cov.T)
    chol = jnp.linalg.cholesky(cov)
    if not bool(jnp.all(jnp.isfinite(chol))):
        raise ValueError("laplace: the Hessian at the MAP is not positive definite")
    z = jax.random.normal(k_draw, (num_samples, dens.dim))
    draws = u + jnp.matmul(z, chol.T, precision=HIGHEST)
    constrained = jax.vmap(lambda v: dens.constrain(dens.unravel(v)))(draws)
    samples = {k: np.asarray(v)[None] for k, v in constrained.items()}
    info = dict(fit.info)
    info["hessian_eigenvalues"] = np.linalg.eigvalsh(np.asarray(hess)).tolist()
    return FitResult(
        "laplace", samples, None, fit.loss, time.perf_counter() - t_start, t_compile, info
    )
