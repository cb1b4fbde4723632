"""Fixed-step integrators: Euler, Heun, RK4 and their stochastic forms.

Each integrator is an :class:`Integrator` whose ``step`` advances a state by one step ``dt``:

``step(f, x, aux, dt, noise, project) -> (x_new, aux)``

- ``f(stage, x, aux) -> (dx, aux)`` evaluates the drift at a stage time: ``stage`` is the
  fraction of the step (0, 0.5 or 1), static. The auxiliary value ``aux`` is threaded through
  the stages unchanged by the integrator; simulators use it for the delay buffer so that a
  stage at ``t + dt`` can see the predicted state (per-stage coupling).
- ``noise`` is the additive stochastic increment for this step, ``g * dW`` with
  ``dW ~ N(0, dt)``, or ``None`` for an ODE.
- ``project(x)`` is applied after every stage (state bounds such as ``r >= 0``).

With noise, ``euler`` is Euler-Maruyama and ``heun`` the stochastic Heun scheme for additive
noise (the same increment in predictor and corrector, as in TVB). ``rk4`` is deterministic only.

For a plain ODE ``dx/dt = f(t, x)`` use :func:`odeint`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from vbinfer._typing import Array, ArrayLike

__all__ = ["INTEGRATORS", "Integrator", "euler", "get_integrator", "heun", "odeint", "rk4"]

StageFn = Callable[[float, Array, Any], tuple[Array, Any]]


def _identity(x: Array) -> Array:
    return x


class Integrator(NamedTuple):
    """A fixed-step scheme.

    Attributes
    ----------
    name: identifier (``"euler"``, ``"heun"``, ``"rk4"``).
    order: order of convergence of the deterministic scheme.
    stochastic: whether the scheme accepts additive noise.
    stages: stage times as fractions of the step (static).
    step: ``step(f, x, aux, dt, noise, project) -> (x_new, aux)``.
    """

    name: str
    order: int
    stochastic: bool
    stages: tuple[float, ...]
    step: Callable[..., tuple[Array, Any]]


def _euler_step(
    f: StageFn,
    x: Array,
    aux: Any,
    dt: ArrayLike,
    noise: Array | None = None,
    project: Callable[[Array], Array] = _identity,
) -> tuple[Array, Any]:
    d1, aux = f(0.0, x, aux)
    x_new = x + dt * d1
    if noise is not None:
        x_new = x_new + noise
    return project(x_new), aux


def _heun_step(
    f: StageFn,
    x: Array,
    aux: Any,
    dt: ArrayLike,
    noise: Array | None = None,
    project: Callable[[Array], Array] = _identity,
) -> tuple[Array, Any]:
    d1, aux = f(0.0, x, aux)
    x_pred = x + dt * d1
    if noise is not None:
        x_pred = x_pred + noise
    x_pred = project(x_pred)
    d2, aux = f(1.0, x_pred, aux)
    x_new = x + (0.5 * dt) * (d1 + d2)
    if noise is not None:
        x_new = x_new + noise
    return project(x_new), aux


def _rk4_step(
    f: StageFn,
    x: Array,
    aux: Any,
    dt: ArrayLike,
    noise: Array | None = None,
    project: Callable[[Array], Array] = _identity,
) -> tuple[Array, Any]:
    if noise is not None:
        raise ValueError("integrator='rk4' is deterministic; use 'heun' or 'euler' with noise")
    k1, aux = f(0.0, x, aux)
    k2, aux = f(0.5, project(x + (0.5 * dt) * k1), aux)
    k3, aux = f(0.5, project(x + (0.5 * dt) * k2), aux)
    k4, aux = f(1.0, project(x + dt * k3), aux)
    return project(x + (dt / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)), aux


euler = Integrator("euler", 1, True, (0.0,), _euler_step)
"""Forward Euler; Euler-Maruyama with noise."""
heun = Integrator("heun", 2, True, (0.0, 1.0), _heun_step)
"""Heun's method (explicit trapezoid); stochastic Heun with additive noise."""
rk4 = Integrator("rk4", 4, False, (0.0, 0.5, 0.5, 1.0), _rk4_step)
"""Classical fourth-order Runge-Kutta (deterministic only)."""

INTEGRATORS: dict[str, Integrator] = {"euler": euler, "heun": heun, "rk4": rk4}


def get_integrator(integrator: str | Integrator) -> Integrator:
    """Look up an integrator by name, or return it unchanged."""
    if isinstance(integrator, Integrator):
        return integrator
    try:
        return INTEGRATORS[integrator]
    except (KeyError, TypeError):
        raise ValueError(
            f"integrator must be one of {sorted(INTEGRATORS)} or an Integrator, got {integrator!r}"
        ) from None


def odeint(
    f: Callable[[Array, Array, Any], Array],
    x0: ArrayLike,
    t0: float,
    dt: float,
    num_steps: int,
    args: Any = None,
    integrator: str | Integrator = "rk4",
    save_every: int = 1,
) -> Array:
    """Integrate ``dx/dt = f(t, x, args)`` with a fixed step.

    Parameters
    ----------
    f:
        Drift ``f(t, x, args) -> dx``, any array shape.
    x0:
        Initial state.
    t0, dt:
        Start time and step (same units as ``f`` uses).
    num_steps:
        Number of steps (static).
    args:
        Passed to ``f``; a pytree, may be traced.
    integrator:
        ``"euler"``, ``"heun"``, ``"rk4"`` or an :class:`Integrator`.
    save_every:
        Keep one state every ``save_every`` steps (``num_steps`` must be a multiple).

    Returns
    -------
    Array ``(num_steps // save_every, *x0.shape)``: the states after each saved step.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> xs = odeint(lambda t, x, a: -x, jnp.ones(()), 0.0, 0.01, 100)
    >>> round(float(xs[-1]), 4)
    0.3679
    """
    scheme = get_integrator(integrator)
    if num_steps % save_every:
        raise ValueError(
            f"num_steps must be a multiple of save_every, got {num_steps=} and {save_every=}"
        )
    x0 = jnp.asarray(x0)

    def one(carry, _):
        x, n = carry
        t = t0 + n * dt

        def stage(frac, xs, aux):
            return f(t + frac * dt, xs, args), aux

        x, _ = scheme.step(stage, x, None, dt)
        return (x, n + 1), None

    def saved(carry, _):
        carry, _ = jax.lax.scan(one, carry, None, length=save_every)
        return carry, carry[0]

    _, xs = jax.lax.scan(saved, (x0, jnp.int32(0)), None, length=num_steps // save_every)
    return xs
