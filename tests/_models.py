"""Tiny models used by the tests (not part of the package)."""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from vbinfer.models import Model


class RelayParams(NamedTuple):
    tau: float = 1.0


def _relay(state, coupling, p):
    # With Euler and dt == tau, x[n + 1] = c[n]: a pure one-step relay of the input.
    return (coupling[0] - state[0])[None] / p.tau


relay = Model("relay", ("x",), RelayParams, _relay, ("x",), (0,), (0.0,), ((-jnp.inf, jnp.inf),))


class OUParams(NamedTuple):
    theta: float = 1.0
    mu: float = 0.0


def _ou(state, coupling, p):
    return (-p.theta * (state[0] - p.mu) + coupling[0])[None]


ou = Model("ou", ("x",), OUParams, _ou, ("x",), (0,), (0.0,), ((-jnp.inf, jnp.inf),))


class ZeroParams(NamedTuple):
    pass


def _zero(state, coupling, p):
    return jnp.zeros_like(state)


zero = Model("zero", ("x",), ZeroParams, _zero, ("x",), (0,), (0.0,), ((-jnp.inf, jnp.inf),))


class LinParams(NamedTuple):
    k: float = 1.0


def _lin(state, coupling, p):
    # dx_i = -k x_i + c_i : linear network, exact solution by matrix exponential
    return (-p.k * state[0] + coupling[0])[None]


lin = Model("lin", ("x",), LinParams, _lin, ("x",), (0,), (1.0,), ((-jnp.inf, jnp.inf),))


def dfun_inputs(model: Model, space: tuple[int, ...], seed: int = 0):
    """A state near the model's default and a small coupling, float64, for dfun checks."""
    import numpy as np

    from vbinfer.models import default_state

    rng = np.random.default_rng(seed)
    state = np.asarray(default_state(model, space, jnp.float64))
    state = jnp.asarray(state + 0.01 * rng.standard_normal(state.shape))
    coupling = jnp.asarray(0.01 * rng.standard_normal((model.n_coupling, *space)))
    return state, coupling
