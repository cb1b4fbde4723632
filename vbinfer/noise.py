"""Additive noise for stochastic simulations: white (Wiener) or coloured (Ornstein-Uhlenbeck).

Convention: ``dx = f(x) dt + sigma dW`` with ``W`` a standard Wiener process, so one step adds
``sigma * sqrt(dt) * z`` with ``z ~ N(0, 1)``. TVB's ``nsig`` corresponds to
``sigma = sqrt(2 * nsig)``.

Standard normals come either pre-drawn (an array the caller holds, so inference can condition
on it) or from a PRNG key inside the simulation loop, one draw per block of steps, so memory
does not grow with steps x batch. :func:`draw_noise` produces exactly the numbers the loop would
draw from the same key, so the two paths give identical trajectories.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from vbinfer._typing import Array, ArrayLike, PRNGKey

__all__ = ["AdditiveNoise", "ColouredNoise", "draw_noise", "noise_block"]


class AdditiveNoise(NamedTuple):
    """White additive noise ``sigma dW``.

    Attributes
    ----------
    sigma:
        Noise amplitude (state units per sqrt(ms)): a scalar, one value per noisy state variable
        (shape ``(n_noisy,)``), an array broadcastable to ``(n_noisy, n_nodes, *batch)``, or a
        function ``sigma(params) -> array`` of the simulation parameters (so it can be inferred).
    states:
        Indices of the state variables that receive noise (static); ``None`` means all.
    """

    sigma: ArrayLike | Callable[[Any], Array] = 0.01
    states: tuple[int, ...] | None = None


class ColouredNoise(NamedTuple):
    """Coloured noise: an Ornstein-Uhlenbeck input ``eta`` added to the drift.

    ``d eta = -eta / tau dt + sigma sqrt(2 / tau) dW``: stationary standard deviation ``sigma``
    and correlation time ``tau`` (ms). ``eta`` is advanced with its exact discretisation
    ``eta' = eta e^{-dt/tau} + sigma sqrt(1 - e^{-2 dt / tau}) z`` and enters the derivative of
    the noisy state variables additively. Starts from ``eta = 0``.

    Attributes
    ----------
    sigma: stationary standard deviation of ``eta`` (state units per ms); scalar, per noisy
        state, broadcastable array, or a function of the parameters.
    tau: correlation time, ms (> 0).
    states: indices of the state variables that receive it (static); ``None`` means all.
    """

    sigma: ArrayLike | Callable[[Any], Array] = 0.01
    tau: float = 10.0
    states: tuple[int, ...] | None = None


def resolve_sigma(sigma: Any, params: Any, n_noisy: int, ndim_space: int) -> Array:
    """Evaluate ``sigma`` and shape it to broadcast against ``(n_noisy, *space)``."""
    value = sigma(params) if callable(sigma) else sigma
    value = jnp.asarray(value)
    if value.ndim == 1 and value.shape[0] == n_noisy and n_noisy > 1:
        value = value.reshape((n_noisy,) + (1,) * ndim_space)
    return value


def noise_block(key: PRNGKey, start_step: Array, shape: tuple[int, ...], dtype: Any) -> Array:
    """Standard normals for the block of steps starting at ``start_step``.

    ``shape`` is ``(block_steps, n_noisy, *space)``. The block's key is
    ``fold_in(key, start_step)``, so a block's numbers depend only on where it starts.
    """
    return jax.random.normal(jax.random.fold_in(key, start_step), shape, dtype)


def draw_noise(
    key: PRNGKey,
    num_steps: int,
    shape: tuple[int, ...],
    block_steps: int,
    start_step: int = 0,
    dtype: Any = jnp.float32,
) -> Array:
    """Pre-draw the standard normals a simulation would generate from ``key``.

    Parameters
    ----------
    key:
        PRNG key.
    num_steps:
        Number of steps; a multiple of ``block_steps``.
    shape:
        ``(n_noisy, *space)`` per step.
    block_steps:
        The simulator's block length in steps (``Simulator.block_steps``).
    start_step:
        Absolute index of the first step (for resumed runs).
    dtype:
        Floating dtype.

    Returns
    -------
    Array ``(num_steps, *shape)`` of standard normals.

    Examples
    --------
    >>> import jax
    >>> draw_noise(jax.random.key(0), 20, (2, 3), block_steps=10).shape
    (20, 2, 3)
    """
    if num_steps % block_steps:
        raise ValueError(
            f"num_steps must be a multiple of block_steps, got {num_steps=} and {block_steps=}"
        )
    starts = jnp.asarray(start_step + np.arange(0, num_steps, block_steps), jnp.int32)
    blocks = jax.vmap(lambda s: noise_block(key, s, (block_steps, *shape), dtype))(starts)
    return blocks.reshape((num_steps, *shape))
