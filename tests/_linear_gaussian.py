"""The linear-Gaussian problem whose posterior is known in closed form (not part of the package).

``y = A theta + eps``, ``theta ~ N(M0, diag(S0^2))``, ``eps ~ N(0, NOISE^2 I)``: the posterior
is Gaussian with precision ``diag(1 / S0^2) + A^T A / NOISE^2``. Shared by the inference and
identifiability tests.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist

from vbinfer.inference import make_problem, simulate_data

D, N_OBS, NOISE = 3, 20, 0.5
M0 = np.array([0.0, 1.0, -1.0])
S0 = np.array([1.0, 2.0, 0.5])
TRUTH = np.array([0.7, -0.4, -1.2])


class LinearGaussian(NamedTuple):
    """A problem, its simulated data and the exact posterior."""

    problem: Any
    data: Any
    mean: np.ndarray  # (D,) posterior mean
    cov: np.ndarray  # (D, D) posterior covariance
    prec: np.ndarray  # (D, D) posterior precision
    fisher: np.ndarray  # (D, D) A^T A / NOISE^2


def design() -> np.ndarray:
    """``A``, ``(N_OBS, D)``, from seed 0."""
    return np.random.default_rng(0).normal(size=(N_OBS, D))


def make_linear_gaussian(noise_sd: float = NOISE, truth: np.ndarray | None = TRUTH):
    """The problem alone (``truth=None``: none attached)."""
    a = design()
    return make_problem(
        {"theta": dist.Normal(jnp.asarray(M0), jnp.asarray(S0)).to_event(1)},
        lambda th: jnp.matmul(jnp.asarray(a), th["theta"], precision="highest"),
        noise_sd=noise_sd,
        data_shape=(N_OBS,),
        truth=None if truth is None else {"theta": truth},
    )


def linear_gaussian_problem() -> LinearGaussian:
    """The problem, data from key 1 and the exact posterior."""
    a = design()
    problem = make_linear_gaussian()
    data = simulate_data(jax.random.key(1), problem)
    fisher = a.T @ a / NOISE**2
    prec = np.diag(1 / S0**2) + fisher
    cov = np.linalg.inv(prec)
    mean = cov @ (M0 / S0**2 + a.T @ np.asarray(data) / NOISE**2)
    return LinearGaussian(problem, data, mean, cov, prec, fisher)
