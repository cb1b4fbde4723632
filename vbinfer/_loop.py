"""The time loop shared by the network and field simulators: steps, sample periods, blocks.

A simulation is ``num_steps`` calls of a one-step function, grouped into sample periods of
``sample_every`` steps (one monitor update per period, with the period's mean state) and
blocks of ``block_steps`` steps (one ``lax.scan`` iteration each, optionally wrapped in
``jax.checkpoint`` so that reverse-mode memory grows like ``num_steps / block_steps``).
Noise is pre-drawn (an array of shape ``(num_steps, *noise_shape)``) or drawn one block at
a time from a key, so its memory does not grow with the run.

Private: :mod:`vbinfer.simulate` and :mod:`vbinfer.fields.field` build the step function and
the initial :class:`~vbinfer.simulate.SimState`; this module runs them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from vbinfer._typing import Array
from vbinfer.monitors import Monitor
from vbinfer.noise import ColouredNoise, noise_block

__all__ = [
    "LoopSpec",
    "NoiseTerms",
    "default_block",
    "is_noise_array",
    "make_noise_terms",
    "run_blocks",
]

Carry = tuple[Array, Any, Array, Any]  # (x, delay buffer, step index, coloured-noise state)


class LoopSpec(NamedTuple):
    """Sizes and options of the loop (all static).

    Attributes
    ----------
    num_steps, block_steps, sample_every:
        Steps in all, per block (divides ``num_steps``), per sample period (divides
        ``block_steps``).
    t0, dt:
        Time of step 0 and the step (ms).
    checkpoint:
        Wrap each block in ``jax.checkpoint``.
    """

    num_steps: int
    block_steps: int
    sample_every: int
    t0: float
    dt: float
    checkpoint: bool


def is_noise_array(key: Any) -> bool:
    """True for a float array of pre-drawn noise, False for a PRNG key (typed or raw uint32)."""
    if isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return False
    dtype = getattr(key, "dtype", None)
    return dtype is not None and jnp.issubdtype(dtype, jnp.floating)


class NoiseTerms(NamedTuple):
    """How additive noise enters a step, built by :func:`make_noise_terms`.

    Attributes
    ----------
    predrawn:
        Whether the noise is a pre-drawn array (else drawn per block from a key, or none).
    increment:
        ``z -> dW term`` added by the integrator for white noise, ``(n_states, *space)``;
        ``None`` for coloured noise or none.
    coloured_next:
        ``(eta, z) -> eta_next``, the exact Ornstein-Uhlenbeck update; ``None`` otherwise.
    coloured_at:
        ``(eta, eta_next, frac) -> term`` added to the derivative at stage ``t + frac * dt``
        (linear interpolation between steps); ``None`` otherwise.
    """

    predrawn: bool
    increment: Callable[[Array], Array] | None
    coloured_next: Callable[[Array, Array], Array] | None
    coloured_at: Callable[[Array, Array, float], Array] | None


def make_noise_terms(
    noise: Any,
    key: Any,
    sigma: Array | None,
    noisy: Sequence[int],
    n_states: int,
    space: tuple[int, ...],
    dt: float,
    expected_shape: tuple[int, ...],
    shape_text: str = "",
) -> NoiseTerms:
    """Check ``key`` against ``noise`` and build the noise terms of a step.

    Parameters
    ----------
    noise:
        The simulator's ``AdditiveNoise`` / ``ColouredNoise``, or ``None``.
    key:
        ``None``, a PRNG key, or pre-drawn standard normals of shape ``expected_shape``.
    sigma:
        ``(n_noisy, ...)`` noise intensities, broadcastable against ``(n_noisy, *space)``.
    noisy:
        Indices of the state variables that receive noise.
    n_states, space:
        The state is ``(n_states, *space)``.
    dt:
        Step (ms).
    expected_shape, shape_text:
        The shape pre-drawn noise must have, and how the error message names it.

    Raises
    ------
    ValueError
        A key for a deterministic simulator, no key for a stochastic one, or pre-drawn noise of
        the wrong shape.
    """
    if noise is None:
        if key is not None:
            raise ValueError("key must be None for a deterministic simulator (noise=None)")
        return NoiseTerms(False, None, None, None)
    if key is None:
        raise ValueError(
            "key: this simulator is stochastic; pass a PRNG key or pre-drawn noise of shape "
            f"{expected_shape}"
        )
    predrawn = is_noise_array(key)
    if predrawn and tuple(key.shape) != tuple(expected_shape):
        raise ValueError(
            f"key (pre-drawn noise) must have shape {shape_text}{tuple(expected_shape)}, "
            f"got {tuple(key.shape)}"
        )
    noisy = tuple(noisy)
    n_noisy = len(noisy)

    def scatter(v: Array) -> Array:
        if noisy == tuple(range(n_states)):
            return v
        v = jnp.broadcast_to(v, (n_noisy, *space))
        zero = jnp.zeros(space, v.dtype)
        return jnp.stack([v[noisy.index(k)] if k in noisy else zero for k in range(n_states)])

    if isinstance(noise, ColouredNoise):
        decay = math.exp(-dt / noise.tau)
        kick = math.sqrt(1.0 - decay**2)

        def coloured_next(eta: Array, z: Array) -> Array:
            return eta * decay + (sigma * kick) * z

        def coloured_at(eta: Array, eta_next: Array, frac: float) -> Array:
            if frac == 0.0:
                return scatter(eta)
            if frac == 1.0:
                return scatter(eta_next)
            return scatter(eta + frac * (eta_next - eta))

        return NoiseTerms(predrawn, None, coloured_next, coloured_at)

    scale = math.sqrt(dt)
    return NoiseTerms(predrawn, lambda z: scatter((sigma * scale) * z), None, None)


def run_blocks(
    step: Callable[[Carry, Array | None], tuple[Carry, Any]],
    state: Any,
    spec: LoopSpec,
    monitors: Sequence[Monitor],
    params: Any,
    *,
    terms: NoiseTerms,
    key: Any = None,
    noise_shape: tuple[int, ...] = (),
) -> tuple[Any, dict[str, Any]]:
    """Run ``spec.num_steps`` steps of ``step`` and the monitors from ``state``.

    Parameters
    ----------
    step:
        ``((x, buf, n, eta), z) -> ((x, buf, n + 1, eta), _)``, one integration step given the
        standard normals ``z`` of shape ``noise_shape`` (``None`` for a deterministic run).
    state:
        A :class:`~vbinfer.simulate.SimState` (fields ``x, buffer, step, eta, monitors``).
    spec:
        Sizes and options (:class:`LoopSpec`).
    monitors, params:
        The monitors, updated once per sample period with the period's mean state, and the
        simulation parameters they receive.
    terms, key:
        The noise terms (:func:`make_noise_terms`) and the simulator's ``key`` argument:
        pre-drawn standard normals ``(num_steps, *noise_shape)`` when ``terms.predrawn``, else
        a PRNG key (noise drawn one block at a time) or ``None`` (deterministic).
    noise_shape:
        Shape of one step's noise.

    Returns
    -------
    state, outputs:
        The final state (same type as ``state``) and ``{monitor.name: finalized output}``.
    """
    dtype = state.x.dtype
    noise = key if terms.predrawn else None
    key = None if terms.predrawn else key
    carry = (state.x, state.buffer, jnp.asarray(state.step, jnp.int32), state.eta, state.monitors)
    P = spec.sample_every
    per_block = spec.block_steps // P
    num_blocks = spec.num_steps // spec.block_steps

    def period(carry, zs):
        x, buf, n, eta, mstates = carry

        def inner(c, z):
            inner_carry, acc = c
            inner_carry, _ = step(inner_carry, z)
            return (inner_carry, acc + inner_carry[0]), None

        if P == 1:  # zs: one step's noise (no period axis: see ``block``)
            (x, buf, n, eta), _ = step((x, buf, n, eta), zs)
            x_mean = x
        else:
            ((x, buf, n, eta), acc), _ = jax.lax.scan(
                inner, ((x, buf, n, eta), jnp.zeros_like(x)), zs, length=P
            )
            x_mean = acc / P
        t = spec.t0 + n.astype(x.dtype) * spec.dt
        new_states, samples = [], []
        for mon, ms in zip(monitors, mstates, strict=True):
            ms, s = mon.update(ms, x_mean, x, t, params)
            new_states.append(ms)
            samples.append(s)
        return (x, buf, n, eta, tuple(new_states)), tuple(samples)

    def block(carry, zblock):
        n = carry[2]
        if zblock is None and key is not None:
            zblock = noise_block(key, n, (spec.block_steps, *noise_shape), dtype)
        # one row per period; with one step per period no period axis at all (a size-1 axis
        # there made XLA copy the whole block into another layout before the loop)
        zs = zblock if zblock is None or P == 1 else zblock.reshape(per_block, P, *noise_shape)
        return jax.lax.scan(period, carry, zs, length=per_block)

    if spec.checkpoint:
        block = jax.checkpoint(block)

    zin = None
    if noise is not None:
        zin = jnp.asarray(noise, dtype).reshape(num_blocks, spec.block_steps, *noise_shape)
    carry, samples = jax.lax.scan(block, carry, zin, length=num_blocks)
    x, buf, n, eta, mstates = carry
    outputs = {}
    for i, mon in enumerate(monitors):
        s = jax.tree_util.tree_map(
            lambda y: y.reshape(num_blocks * per_block, *y.shape[2:]), samples[i]
        )
        outputs[mon.name] = mon.finalize(mstates[i], s)
    return type(state)(x, buf, n, eta, mstates), outputs


def default_block(num_steps: int, sample_every: int, cap: int = 1000) -> int:
    """The largest block of whole sample periods, at most ``cap`` steps, dividing the run."""
    samples = num_steps // sample_every
    best = 1
    for k in range(1, samples + 1):
        if samples % k == 0 and k * sample_every <= max(cap, sample_every):
            best = k
    return best * sample_every
