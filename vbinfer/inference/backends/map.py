"""Maximum a posteriori by gradient descent (optax), restarts as one vmapped batch; Laplace."""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

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


def _optimise(dens, starts, optimizer: str, num_steps: int, learning_rate: float):
    opt = _optimizer(optimizer, learning_rate)
    loss = lambda u: -dens.logdensity(u)  # noqa: E731
    value_and_grad = optax.value_and_grad_from_state(loss)

    def one(u0):
        state = opt.init(u0)

        def step(carry, _):
            u, s = carry
            if optimizer == "lbfgs":
                v, g = value_and_grad(u, state=s)
                upd, s = opt.update(g, s, u, value=v, grad=g, value_fn=loss)
            else:
                v, g = jax.value_and_grad(loss)(u)
                upd, s = opt.update(g, s, u)
            return (optax.apply_updates(u, upd), s), v

        (u, _), losses = jax.lax.scan(step, (u0, state), None, length=num_steps)
        return u, losses, loss(u)

    return jax.vmap(one)(starts)


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
) -> FitResult:
    """Minimise the negative log density from ``num_restarts`` starts in one vmapped batch.

    Starts are uniform in ``[-init_radius, init_radius]`` of the unconstrained space. The
    result holds the best restart as one draw; ``info["restart_losses"]`` has all final losses.
    """
    t_start = time.perf_counter()
    k_init, k_start = jax.random.split(key)
    dens = make_density(k_init, problem, data)
    starts = jax.random.uniform(
        k_start, (num_restarts, dens.dim), minval=-init_radius, maxval=init_radius
    )
    fn = jax.jit(lambda s: _optimise(dens, s, optimizer, num_steps, learning_rate))
    t0 = time.perf_counter()
    compiled = fn.lower(starts).compile()
    t_compile = time.perf_counter() - t0
    us, losses, finals = jax.block_until_ready(compiled(starts))
    finals = jnp.where(jnp.isfinite(finals), finals, jnp.inf)
    best = int(jnp.argmin(finals))
    point = dens.constrain(dens.unravel(us[best]))
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
