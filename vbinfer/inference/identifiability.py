"""Identifiability at a MAP: Hessian, Gauss-Newton Fisher information, stiff and sloppy
directions named by parameter, and profile likelihoods.

Everything is computed in the unconstrained coordinates ``u`` in which the fits move (numpyro's
for a :class:`~vbinfer.inference.problem.Problem`, the offsets of
:func:`~vbinfer.inference.network_fit.make_network_problem` for a network fit):

- the **Hessian** ``H = d^2 (-log p(u | data)) / du^2`` of the negative log posterior
  (forward-over-reverse; its inverse is the Laplace covariance);
- the **Fisher information** of a Gaussian observation ``y ~ N(mu(u), sigma(u)^2)``,
  ``F = J_mu^T diag(1 / sigma^2) J_mu + 2 J_sigma^T diag(1 / sigma^2) J_sigma`` with the
  Jacobians by forward mode (the Gauss-Newton approximation of the likelihood's Hessian, exact
  for a model linear in ``u``); with ``include_prior=True`` the Hessian of the negative log
  prior (including the Jacobian of the transforms) is added;
- the **eigen-spectrum** of either matrix: large eigenvalues are stiff (well-constrained)
  directions, near-zero ones sloppy (unidentifiable) directions, each named by the parameters
  that dominate its eigenvector (squared components, which sum to 1);
- **profile likelihoods**: the minimum of the negative log posterior over all other coordinates
  with one coordinate held on a grid (all grid points optimised as one vmapped batch).

A point is a MAP :class:`~vbinfer.inference.result.FitResult` (``method="map"`` or
``"laplace"``), a :class:`~vbinfer.inference.network_fit.NetworkFit`, a flat unconstrained
vector ``(dim,)`` or a dict of constrained values of the latent sites.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import optax
from jax.flatten_util import ravel_pytree
from numpyro.infer.util import constrain_fn, potential_energy, unconstrain_fn

from vbinfer._precision import HIGHEST
from vbinfer._typing import Array, ArrayLike
from vbinfer.inference._common import make_density
from vbinfer.inference.network_fit import NetworkFit, NetworkProblem
from vbinfer.inference.problem import Problem
from vbinfer.inference.result import FitResult

__all__ = [
    "Direction",
    "Identifiability",
    "Profile",
    "Spectrum",
    "fisher_information",
    "hessian",
    "identifiability",
    "profile_likelihood",
    "spectrum",
]


class Direction(NamedTuple):
    """One eigen-direction of a curvature matrix.

    Attributes
    ----------
    eigenvalue: its eigenvalue (curvature along the direction).
    index: its position in the spectrum (0 = largest eigenvalue).
    loadings: ``((label, weight), ...)``, largest first: squared eigenvector components (they
        sum to 1 over all parameters), as many as needed to reach the coverage asked for.
    """

    eigenvalue: float
    index: int
    loadings: tuple[tuple[str, float], ...]

    def describe(self) -> str:
        """One line: eigenvalue and the dominating parameters with their weights."""
        parts = ", ".join(f"{lab} {w:.2f}" for lab, w in self.loadings)
        return f"eigenvalue {self.eigenvalue:.3g}: {parts}"


class Spectrum(NamedTuple):
    """Eigen-decomposition of a symmetric curvature matrix (Hessian or Fisher information).

    Attributes
    ----------
    eigenvalues: ``(dim,)``, descending.
    eigenvectors: ``(dim, dim)``; column ``k`` belongs to ``eigenvalues[k]``.
    labels: one name per coordinate.
    stiff: the directions of the largest eigenvalues (largest first).
    sloppy: the directions of the smallest eigenvalues (smallest first).
    """

    eigenvalues: np.ndarray
    eigenvectors: np.ndarray
    labels: tuple[str, ...]
    stiff: tuple[Direction, ...]
    sloppy: tuple[Direction, ...]


class Identifiability(NamedTuple):
    """What :func:`identifiability` returns.

    Attributes
    ----------
    point: ``(dim,)`` unconstrained point (the MAP).
    indices: ``(k,)`` the coordinates analysed (all ``dim`` by default).
    labels: one name per analysed coordinate.
    hessian: ``(k, k)`` Hessian of the negative log posterior.
    fisher: ``(k, k)`` Fisher information of the data (Gauss-Newton), or ``None``.
    hessian_spectrum, fisher_spectrum: their :class:`Spectrum` (``None`` without Fisher).
    covariance: ``(k, k)`` Laplace covariance ``H^-1`` (NaN where ``H`` is not positive
        definite).
    """

    point: np.ndarray
    indices: np.ndarray
    labels: tuple[str, ...]
    hessian: np.ndarray
    fisher: np.ndarray | None
    hessian_spectrum: Spectrum
    fisher_spectrum: Spectrum | None
    covariance: np.ndarray


class Profile(NamedTuple):
    """A profile likelihood (see :func:`profile_likelihood`).

    Attributes
    ----------
    label: the profiled coordinate.
    index: its position in the unconstrained vector.
    grid: ``(k,)`` values of the coordinate, unconstrained.
    values: ``(k,)`` constrained values of the parameter at the grid points.
    profile: ``(k,)`` minimum of the negative log posterior over the other coordinates.
    delta: ``(k,)`` ``profile`` minus the negative log posterior at the MAP (``>= 0`` up to
        optimisation error; ``1.92`` marks a 95 % interval of one parameter).
    points: ``(k, dim)`` the optimised unconstrained points.
    map_value: the parameter's constrained value at the MAP.
    """

    label: str
    index: int
    grid: np.ndarray
    values: np.ndarray
    profile: np.ndarray
    delta: np.ndarray
    points: np.ndarray
    map_value: float


# ----------------------------------------------------------------------------- resolving
class _Target(NamedTuple):
    neg_log_density: Callable[[Array], Array]
    prior_neg_log_density: Callable[[Array], Array]
    gaussian: Callable[[Array], tuple[Array, Array]] | None
    coordinate_values: Callable[[Array], Array]
    unconstrain_values: Callable[[Array], Array]
    dim: int
    labels: tuple[str, ...]
    point: np.ndarray | None
    why_no_gaussian: str


def _site_labels(z0: Mapping[str, Any]) -> tuple[str, ...]:
    labels = []
    for name in sorted(z0):  # the order of ravel_pytree / numpyro's flat vector
        shape = np.shape(z0[name])
        if shape == ():
            labels.append(name)
        else:
            for idx in np.ndindex(*shape):
                labels.append(f"{name}[{','.join(str(i) for i in idx)}]")
    return tuple(labels)


def _unwrap_normal(fn: Any) -> Any:
    while not isinstance(fn, dist.Normal) and hasattr(fn, "base_dist"):
        fn = fn.base_dist
    return fn


def _resolve(problem: Any, data: Any, point: Any, labels: Sequence[str] | None) -> _Target:
    if isinstance(problem, NetworkFit):
        point = problem.result if point is None else point
        problem = problem.setup
    if isinstance(problem, NetworkProblem):
        return _resolve_network(problem, data, point, labels)
    if not isinstance(problem, Problem):
        raise ValueError(
            "problem must be a vbinfer Problem, NetworkProblem or NetworkFit, got "
            f"{type(problem).__name__}"
        )
    if data is None:
        raise ValueError("data: give the observed data of the problem")
    data = jnp.asarray(data)
    if problem.data_shape is not None and tuple(data.shape) != problem.data_shape:
        raise ValueError(f"data must have shape {problem.data_shape}, got {tuple(data.shape)}")
    dens = make_density(jax.random.key(0), problem, data)
    model, kw = problem.model, {"data": data}

    def neg(u):
        return -dens.logdensity(u)

    def prior_neg(u):
        blocked = numpyro.handlers.block(model, hide=[problem.obs_name])
        return potential_energy(blocked, (), kw, dens.unravel(u))

    def constrained(u):
        return constrain_fn(model, (), kw, dens.unravel(u))

    def coordinate_values(u):
        return ravel_pytree(constrained(u))[0]

    def unconstrain_values(v):
        _, unravel_c = ravel_pytree(constrained(jnp.zeros(dens.dim)))
        return ravel_pytree(unconstrain_fn(model, (), kw, unravel_c(v)))[0]

    def gaussian(u):
        sub = numpyro.handlers.substitute(model, data=constrained(u))
        tr = numpyro.handlers.trace(numpyro.handlers.seed(sub, 0)).get_trace(data=data)
        if problem.obs_name not in tr:
            raise ValueError(f"problem: the model has no observed site {problem.obs_name!r}")
        fn = _unwrap_normal(tr[problem.obs_name]["fn"])
        if not isinstance(fn, dist.Normal):
            raise ValueError(
                "fisher_information needs a Normal observed site, got "
                f"{type(tr[problem.obs_name]['fn']).__name__}"
            )
        return (
            jnp.broadcast_to(fn.loc, data.shape),
            jnp.broadcast_to(fn.scale, data.shape),
        )

    labs = _site_labels(dens.z0) if labels is None else tuple(labels)
    return _Target(
        neg,
        prior_neg,
        gaussian,
        coordinate_values,
        unconstrain_values,
        dens.dim,
        labs,
        _point(point, dens.dim, lambda d: ravel_pytree(unconstrain_fn(model, (), kw, d))[0]),
        "",
    )


def _resolve_network(
    setup: NetworkProblem, data: Any, point: Any, labels: Sequence[str] | None
) -> _Target:
    if data is not None:
        raise ValueError("data: a NetworkProblem carries its own data; pass data=None")
    model, kw = setup.problem.model, {"data": setup.data}
    names = setup.names
    shapes = {
        k: v.shape for k, v in jax.eval_shape(setup.constrain, jnp.zeros(setup.num_free)).items()
    }
    # numpyro's flat layout: latent offset sites in sorted order (the order of ``names``)
    _, unravel = ravel_pytree(
        {
            site: jnp.zeros(shapes[k])
            for site, k in zip(setup.problem.param_names, names, strict=True)
        }
    )
    split_at = np.cumsum([int(np.prod(shapes[k])) for k in names])[:-1]

    def neg(u):
        e = potential_energy(model, (), kw, unravel(u))
        return jnp.where(jnp.isnan(e), jnp.inf, e)

    def prior_neg(u):
        return potential_energy(numpyro.handlers.block(model, hide=["loss"]), (), kw, unravel(u))

    def coordinate_values(u):
        vals = setup.constrain(u)
        return jnp.concatenate([jnp.ravel(vals[k]) for k in names])

    def unconstrain_values(v):
        parts = jnp.split(v, split_at)
        return setup.unconstrain(
            {k: p.reshape(shapes[k]) for k, p in zip(names, parts, strict=True)}
        )

    gaussian = None
    why = ""
    if setup.noise_sd is not None:
        sd = setup.noise_sd

        def gaussian(u):
            pred = setup.predict(setup.constrain(u))
            return pred, jnp.full(pred.shape, sd, pred.dtype)
    else:
        why = "the Fisher information needs a squared-error loss ('fc', 'psd' or 'mse')"

    def from_values(d):
        return setup.unconstrain({k: jnp.asarray(v) for k, v in d.items()})

    return _Target(
        neg,
        prior_neg,
        gaussian,
        coordinate_values,
        unconstrain_values,
        setup.num_free,
        setup.labels if labels is None else tuple(labels),
        _point(point, setup.num_free, from_values),
        why,
    )


def _point(point: Any, dim: int, from_dict: Callable[[Mapping[str, Any]], Array]) -> np.ndarray:
    if point is None:
        return None
    if isinstance(point, NetworkFit):
        point = point.result
    if isinstance(point, FitResult):
        if "unconstrained_map" not in point.info:
            raise ValueError(
                "point: expected a FitResult of method 'map' or 'laplace' (with "
                f"info['unconstrained_map']), got method {point.method!r}"
            )
        u = np.asarray(point.info["unconstrained_map"], dtype=float)
    elif isinstance(point, Mapping):
        u = np.asarray(from_dict(point))
    else:
        u = np.asarray(point, dtype=float)
    if u.shape != (dim,):
        raise ValueError(
            f"point: expected an unconstrained vector of shape ({dim},), got shape {u.shape}"
        )
    if not np.all(np.isfinite(u)):
        raise ValueError("point must be finite")
    return u


def _need_point(t: _Target) -> np.ndarray:
    if t.point is None:
        raise ValueError("point: give a MAP FitResult, a NetworkFit, an array or a dict of values")
    return t.point


def _check_labels(t: _Target) -> None:
    if len(t.labels) != t.dim:
        raise ValueError(f"labels must have {t.dim} entries, got {len(t.labels)}")


# ------------------------------------------------------------------------------ matrices
def _select(t: _Target, coordinates: Sequence[int | str] | None) -> np.ndarray:
    if coordinates is None:
        return np.arange(t.dim)
    idx = []
    for c in coordinates:
        if isinstance(c, str):
            if c not in t.labels:
                raise ValueError(f"coordinates: unknown label {c!r}")
            idx.append(t.labels.index(c))
        elif isinstance(c, int | np.integer) and not isinstance(c, bool) and 0 <= c < t.dim:
            idx.append(int(c))
        else:
            raise ValueError(f"coordinates: expected labels or indices in [0, {t.dim}), got {c!r}")
    if not idx or len(set(idx)) != len(idx):
        raise ValueError(f"coordinates must be non-empty and distinct, got {coordinates!r}")
    return np.asarray(idx)


def _basis_map(fn: Callable[[Array], Array], idx: np.ndarray, u: Array, chunk_size: int | None):
    basis = jnp.eye(u.shape[0], dtype=u.dtype)[idx]
    if chunk_size is None:
        return jax.vmap(fn)(basis)
    return jax.lax.map(fn, basis, batch_size=int(chunk_size))


def _hessian(
    f: Callable[[Array], Array], u: Array, idx: np.ndarray, chunk_size: int | None
) -> Array:
    g = jax.grad(f)

    def hvp(v):
        return jax.jvp(g, (u,), (v,))[1]

    h = _basis_map(hvp, idx, u, chunk_size)[:, idx]
    return 0.5 * (h + h.T)


def hessian(
    problem: Problem | NetworkProblem | NetworkFit,
    data: ArrayLike | None = None,
    point: Any = None,
    *,
    coordinates: Sequence[int | str] | None = None,
    chunk_size: int | None = None,
) -> np.ndarray:
    """Hessian of the negative log posterior at ``point``, in unconstrained coordinates.

    Parameters
    ----------
    problem:
        A :class:`~vbinfer.inference.problem.Problem` (give ``data``), a
        :class:`~vbinfer.inference.network_fit.NetworkProblem` or a
        :class:`~vbinfer.inference.network_fit.NetworkFit` (their own data; ``data=None``).
    data:
        Observed data of a ``Problem``.
    point:
        The MAP: a ``FitResult`` of method ``"map"`` / ``"laplace"``, a flat unconstrained
        vector ``(dim,)`` or a dict of constrained latent values (default for a ``NetworkFit``:
        its result).
    coordinates:
        A subset of the coordinates (indices or labels): only their block of the matrix is
        computed (one Hessian-vector product each), the others held at ``point``; for fits of
        thousands of parameters. Default: all.
    chunk_size:
        Hessian-vector products per batch (``None``: all at once, as ``jax.hessian``); smaller
        values bound the memory of large problems.

    Returns
    -------
    ``(dim, dim)`` symmetric matrix (``(k, k)`` for ``k`` coordinates).

    Examples
    --------
    >>> import jax.numpy as jnp, numpyro.distributions as dist
    >>> from vbinfer.inference import make_problem
    >>> p = make_problem({"a": dist.Normal(0, 2)}, lambda th: th["a"] * jnp.ones(4), noise_sd=0.5)
    >>> hessian(p, jnp.zeros(4), jnp.zeros(1)).round(4).tolist()  # 4 / 0.25 + 1 / 4
    [[16.25]]
    """
    t = _resolve(problem, data, point, None)
    return _hessian_of(t, jnp.asarray(_need_point(t)), _select(t, coordinates), chunk_size)


def _hessian_of(t: _Target, u: Array, idx: np.ndarray, chunk_size: int | None) -> np.ndarray:
    return np.asarray(jax.jit(lambda v: _hessian(t.neg_log_density, v, idx, chunk_size))(u))


def fisher_information(
    problem: Problem | NetworkProblem | NetworkFit,
    data: ArrayLike | None = None,
    point: Any = None,
    *,
    include_prior: bool = False,
    coordinates: Sequence[int | str] | None = None,
    chunk_size: int | None = None,
) -> np.ndarray:
    """Fisher information of a Gaussian observation at ``point`` (Gauss-Newton), unconstrained.

    ``F = J_mu^T diag(1/sigma^2) J_mu + 2 J_sigma^T diag(1/sigma^2) J_sigma`` where ``mu(u)``
    and ``sigma(u)`` are the mean and standard deviation of the observed ``Normal`` site (for
    a network problem: the prediction and the loss's noise level). With ``include_prior``, the
    Hessian of the negative log prior (with the transforms' Jacobians) is added: the
    Gauss-Newton approximation of :func:`hessian`.

    Parameters
    ----------
    problem, data, point, coordinates, chunk_size:
        As :func:`hessian` (``chunk_size``: Jacobian columns per batch).
    include_prior:
        Add the prior's Hessian.

    Returns
    -------
    ``(dim, dim)`` symmetric positive semi-definite matrix (without the prior).

    Examples
    --------
    >>> import jax.numpy as jnp, numpyro.distributions as dist
    >>> from vbinfer.inference import make_problem
    >>> p = make_problem({"a": dist.Normal(0, 2)}, lambda th: th["a"] * jnp.ones(4), noise_sd=0.5)
    >>> fisher_information(p, jnp.zeros(4), jnp.zeros(1)).round(4).tolist()
    [[16.0]]
    """
    t = _resolve(problem, data, point, None)
    u = jnp.asarray(_need_point(t))
    return _fisher_of(t, u, _select(t, coordinates), include_prior, chunk_size)


def _fisher_of(
    t: _Target, u: Array, idx: np.ndarray, include_prior: bool, chunk_size: int | None
) -> np.ndarray:
    if t.gaussian is None:
        raise ValueError(f"problem: {t.why_no_gaussian}")

    def compute(u):
        def flat(v):
            mu, sd = t.gaussian(v)
            return jnp.concatenate([jnp.ravel(mu), jnp.ravel(sd)])

        def jvp(v):
            return jax.jvp(flat, (u,), (v,))[1]

        mu0, sd0 = t.gaussian(u)
        m = mu0.size
        jac = _basis_map(jvp, idx, u, chunk_size)  # (k, 2m)
        j_mu, j_sd = jac[:, :m], jac[:, m:]
        w = 1.0 / jnp.ravel(sd0) ** 2
        mm = functools.partial(jnp.matmul, precision=HIGHEST)
        f = mm(j_mu * w, j_mu.T) + 2.0 * mm(j_sd * w, j_sd.T)
        if include_prior:
            f = f + _hessian(t.prior_neg_log_density, u, idx, chunk_size)
        return 0.5 * (f + f.T)

    return np.asarray(jax.jit(compute)(u))


def spectrum(
    matrix: ArrayLike,
    labels: Sequence[str] | None = None,
    *,
    num_directions: int = 3,
    coverage: float = 0.9,
    max_loadings: int = 6,
) -> Spectrum:
    """Eigen-spectrum of a symmetric curvature matrix with stiff and sloppy directions named.

    Parameters
    ----------
    matrix:
        ``(dim, dim)`` symmetric (a Hessian or a Fisher information).
    labels:
        One name per coordinate (default ``"u[k]"``).
    num_directions:
        How many stiff and how many sloppy directions to name.
    coverage:
        Name parameters of a direction, largest squared component first, until their weights
        sum to ``coverage`` (at most ``max_loadings`` of them).
    max_loadings:
        Upper limit of names per direction.

    Returns
    -------
    :class:`Spectrum`.

    Examples
    --------
    >>> s = spectrum([[2.0, 0.0], [0.0, 1e-6]], ["a", "b"], num_directions=1)
    >>> s.sloppy[0].loadings
    (('b', 1.0),)
    """
    h = np.asarray(matrix, dtype=float)
    if h.ndim != 2 or h.shape[0] != h.shape[1]:
        raise ValueError(f"matrix must be square (dim, dim), got shape {h.shape}")
    if not np.all(np.isfinite(h)):
        raise ValueError("matrix must be finite")
    dim = h.shape[0]
    labs = tuple(f"u[{k}]" for k in range(dim)) if labels is None else tuple(labels)
    if len(labs) != dim:
        raise ValueError(f"labels must have {dim} entries, got {len(labs)}")
    if not 0 < coverage <= 1:
        raise ValueError(f"coverage must be in (0, 1], got {coverage!r}")
    evals, evecs = np.linalg.eigh(0.5 * (h + h.T))
    order = np.argsort(evals)[::-1]
    evals, evecs = evals[order], evecs[:, order]
    k = max(0, min(int(num_directions), dim))

    def direction(i: int) -> Direction:
        w = evecs[:, i] ** 2
        idx = np.argsort(w)[::-1]
        keep = int(np.searchsorted(np.cumsum(w[idx]), coverage * w.sum() - 1e-12)) + 1
        keep = max(1, min(keep, int(max_loadings), dim))
        return Direction(float(evals[i]), i, tuple((labs[j], float(w[j])) for j in idx[:keep]))

    stiff = tuple(direction(i) for i in range(k))
    sloppy = tuple(direction(dim - 1 - i) for i in range(k))
    return Spectrum(evals, evecs, labs, stiff, sloppy)


def identifiability(
    problem: Problem | NetworkProblem | NetworkFit,
    data: ArrayLike | None = None,
    point: Any = None,
    *,
    labels: Sequence[str] | None = None,
    fisher: bool = True,
    num_directions: int = 3,
    coordinates: Sequence[int | str] | None = None,
    chunk_size: int | None = None,
) -> Identifiability:
    """Hessian, Fisher information, their spectra and the Laplace covariance at a MAP.

    Parameters
    ----------
    problem, data, point, coordinates, chunk_size:
        As :func:`hessian` (with ``coordinates``, every matrix is the block of those
        coordinates, and the covariance is conditional on the others).
    labels:
        Names of the coordinates (default: from the problem, e.g. ``"theta[2]"`` or a network
        fit's ``"network.weights[5<-2]"``).
    fisher:
        Also compute the Fisher information (needs a Gaussian observation; skipped with
        ``fisher=False``).
    num_directions:
        Stiff and sloppy directions to name in each spectrum.

    Returns
    -------
    :class:`Identifiability`.

    Examples
    --------
    >>> import jax.numpy as jnp, numpyro.distributions as dist
    >>> from vbinfer.inference import make_problem
    >>> p = make_problem({"a": dist.Normal(0, 10), "b": dist.Normal(0, 10)},
    ...                  lambda th: th["a"] * th["b"] * jnp.arange(4.0), noise_sd=0.1)
    >>> ident = identifiability(p, jnp.arange(4.0), {"a": 1.0, "b": 1.0}, num_directions=1)
    >>> sorted(lab for lab, _ in ident.hessian_spectrum.sloppy[0].loadings)
    ['a', 'b']
    """
    t = _resolve(problem, data, point, labels)
    _check_labels(t)
    u = _need_point(t)
    idx = _select(t, coordinates)
    labs = tuple(t.labels[i] for i in idx)
    h = _hessian_of(t, jnp.asarray(u), idx, chunk_size)
    f = _fisher_of(t, jnp.asarray(u), idx, False, chunk_size) if fisher else None
    try:
        chol = np.linalg.cholesky(h)
        inv_chol = np.linalg.inv(chol)
        cov = jnp.matmul(inv_chol.T, inv_chol, precision=HIGHEST)
    except np.linalg.LinAlgError:
        cov = np.full_like(h, np.nan)
    return Identifiability(
        u,
        idx,
        labs,
        h,
        f,
        spectrum(h, labs, num_directions=num_directions),
        None if f is None else spectrum(f, labs, num_directions=num_directions),
        cov,
    )


# ------------------------------------------------------------------------------ profiles
def profile_likelihood(
    problem: Problem | NetworkProblem | NetworkFit,
    data: ArrayLike | None = None,
    point: Any = None,
    *,
    coordinate: int | str,
    grid: ArrayLike,
    constrained: bool = False,
    optimizer: str = "lbfgs",
    num_steps: int = 100,
    learning_rate: float = 1e-2,
) -> Profile:
    """Profile likelihood of one coordinate: re-optimise all others on a grid of it.

    Every grid point starts from ``point`` with the coordinate set to the grid value and is
    optimised with optax (all grid points as one vmapped batch).

    Parameters
    ----------
    problem, data, point:
        As :func:`hessian`.
    coordinate:
        Index into the unconstrained vector, or its label (e.g. ``"theta[1]"``,
        ``"coupling.a"``).
    grid:
        ``(k,)`` values of the coordinate: unconstrained, or in the parameter's own units with
        ``constrained=True`` (mapped through its transform; for element-wise transforms).
    optimizer:
        ``"lbfgs"`` (default) or ``"adam"``.
    num_steps, learning_rate:
        Optimiser steps per grid point; Adam's learning rate.

    Returns
    -------
    :class:`Profile`.

    Examples
    --------
    >>> import jax.numpy as jnp, numpyro.distributions as dist
    >>> from vbinfer.inference import make_problem
    >>> p = make_problem({"a": dist.Normal(0, 1), "b": dist.Normal(0, 1)},
    ...                  lambda th: jnp.stack([th["a"] + th["b"], th["a"] - th["b"]]))
    >>> prof = profile_likelihood(p, jnp.zeros(2), jnp.zeros(2), coordinate="a",
    ...                           grid=jnp.array([0.0, 1.0]))
    >>> prof.delta.round(4).tolist()  # 1.5 a^2: curvature 1 + 2 with b re-optimised
    [0.0, 1.5]
    """
    t = _resolve(problem, data, point, None)
    u0 = _need_point(t)
    if isinstance(coordinate, str):
        if coordinate not in t.labels:
            raise ValueError(
                f"coordinate: unknown label {coordinate!r}; expected one of {t.labels[:8]}"
                + (" ..." if len(t.labels) > 8 else "")
            )
        k = t.labels.index(coordinate)
    elif isinstance(coordinate, int | np.integer) and not isinstance(coordinate, bool):
        if not 0 <= int(coordinate) < t.dim:
            raise ValueError(f"coordinate must be in [0, {t.dim}), got {coordinate}")
        k = int(coordinate)
    else:
        raise ValueError(f"coordinate must be an int index or a label, got {coordinate!r}")
    g = np.asarray(grid, dtype=float)
    if g.ndim != 1 or g.size < 1 or not np.all(np.isfinite(g)):
        raise ValueError(f"grid must be a finite 1-D array, got shape {g.shape}")
    if optimizer not in ("lbfgs", "adam"):
        raise ValueError(f"optimizer must be 'lbfgs' or 'adam', got {optimizer!r}")
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 1:
        raise ValueError(f"num_steps must be a positive integer, got {num_steps!r}")
    u0j = jnp.asarray(u0)
    if constrained:
        v0 = t.coordinate_values(u0j)
        g = np.asarray(jax.vmap(lambda x: t.unconstrain_values(v0.at[k].set(x))[k])(jnp.asarray(g)))
        if not np.all(np.isfinite(g)):
            raise ValueError("grid: values outside the support of the coordinate's transform")
    opt = optax.lbfgs() if optimizer == "lbfgs" else optax.adam(learning_rate)

    def run_one(x):
        def f(u):
            return t.neg_log_density(u.at[k].set(x))

        value_and_grad = optax.value_and_grad_from_state(f)

        def step(carry, _):
            u, s = carry
            if optimizer == "lbfgs":
                v, gr = value_and_grad(u, state=s)
                upd, s = opt.update(gr, s, u, value=v, grad=gr, value_fn=f)
            else:
                v, gr = jax.value_and_grad(f)(u)
                upd, s = opt.update(gr, s, u)
            return (optax.apply_updates(u, upd), s), v

        start = u0j.at[k].set(x)
        (u, _), _ = jax.lax.scan(step, (start, opt.init(start)), None, length=num_steps)
        u = u.at[k].set(x)
        return u, f(u), t.coordinate_values(u)[k]

    points, prof, vals = jax.jit(jax.vmap(run_one))(jnp.asarray(g, u0j.dtype))
    at_map = float(jax.jit(t.neg_log_density)(u0j))
    map_value = float(jax.jit(t.coordinate_values)(u0j)[k])
    prof = np.asarray(prof, dtype=float)
    return Profile(
        t.labels[k], k, g, np.asarray(vals), prof, prof - at_map, np.asarray(points), map_value
    )
