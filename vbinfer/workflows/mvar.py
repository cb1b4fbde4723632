"""Workflow 1: recover the interaction matrix of a stochastic linear network (MVAR).

A network of ``n_nodes`` linear nodes (:mod:`vbinfer.models.linear`) with linear coupling
through a random interaction matrix ``W`` is simulated with Euler-Maruyama and additive white
noise of unknown amplitude ``sigma``:

.. math::

    x_{t+1} = x_t + dt\\,(-\\lambda x_t + W x_t) + \\sigma \\sqrt{dt}\\, \\xi_t,
    \\qquad \\xi_t \\sim N(0, 1),

which is a first-order multivariate autoregressive process ``x_{t+1} = B x_t + e_t`` with
``B = (1 - \\lambda dt) I + dt W``. From the observed states ``x_0 .. x_T`` the matrix ``W``
(all ``n_nodes**2`` entries, diagonal included; ``\\lambda`` is known) and ``sigma`` are
recovered twice: by gradient descent to the posterior mode (optax Adam, a point estimate and
its mean squared error) and by NUTS (numpyro; posterior mean, sd, shrinkage, z-scores, ESS and
R-hat per entry).

The likelihood
--------------
The states are observed without measurement noise, so the noise of the simulation is not a
nuisance to integrate out: given ``x_t`` the next state is Gaussian,

.. math::

    p(x_{t+1} \\mid x_t, W, \\sigma) = N\\big(x_{t+1};\\ \\mathrm{step}(x_t; W),\\
    \\sigma^2 dt\\, I\\big),

where ``step`` is one deterministic Euler step of the model. For Euler-Maruyama this density
is exact (it is how the simulator generates the data), and the whole likelihood is the product
of the ``T`` one-step densities. Compared with a likelihood that re-simulates the trajectory
from ``x_0`` with fixed noise (vbjax's example), it needs no latent noise (``T * n_nodes``
unknowns), it is a quadratic form in ``W`` (so NUTS adapts in a few hundred steps and takes
short trajectories) and all ``T`` steps are evaluated in parallel rather than in a sequential
scan. :func:`transition_mean` computes ``step`` from the simulator's own model ``dfun``,
coupling and integrator step, so it cannot drift from what the simulator does; a test checks
that the simulator's trajectory equals ``transition_mean`` plus its noise increments.

Run it with :func:`run`; the building blocks (:func:`random_stable_weights`,
:func:`transition_mean`, :func:`mvar_problem`, :func:`expected_mse`) are public.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from vbinfer._typing import Array, ArrayLike, PRNGKey
from vbinfer.coupling import LinearParams
from vbinfer.models import linear
from vbinfer.models.base import take_rows
from vbinfer.models.linear import LinearModelParams
from vbinfer.monitors import subsample
from vbinfer.network import Network, make_network
from vbinfer.noise import AdditiveNoise
from vbinfer.simulate import SimParams, Simulator, make_simulator
from vbinfer.workflows._report import WorkflowReport, check_run_options

__all__ = [
    "MVARData",
    "expected_mse",
    "make_mvar_simulator",
    "mvar_problem",
    "random_stable_weights",
    "run",
    "simulate_mvar",
    "transition_mean",
]

BACKENDS = ("both", "map", "nuts")

# Defaults of the workflow (time in ms).
N_NODES = 8
NUM_STEPS = 1000
DT = 1.0  # ms
LAM = 0.5  # ms^-1: each node relaxes in 2 ms, so B = 0.5 I + W
WEIGHT_SD = 0.15  # sd of the random interaction weights, ms^-1
MAX_RADIUS = 0.95  # largest allowed |eigenvalue| of B (a stable process)
SIGMA = 0.2  # noise amplitude, state units per sqrt(ms)
PRIOR_SD = 0.5  # prior sd of every weight (about 3x the generating sd)
SIGMA_PRIOR_SCALE = 1.0  # HalfNormal scale of the prior on sigma

# Recovery criteria (see run's docstring).
MSE_FACTOR = 2.0
MIN_COVERAGE = 0.9
MIN_SHRINKAGE = 0.9
MAX_RHAT = 1.05
MIN_ESS = 100.0


class MVARData(NamedTuple):
    """A simulated MVAR data set.

    Attributes
    ----------
    states: ``(num_steps + 1, n_nodes)`` observed states ``x_0 .. x_T`` (``x_0`` is the start).
    weights: ``(n_nodes, n_nodes)`` true interaction matrix, ``W[i, j]`` from ``j`` to ``i``,
        ms^-1.
    sigma: true noise amplitude (state units per sqrt(ms)).
    simulator: the :class:`~vbinfer.simulate.Simulator` that produced ``states``.
    params: its :class:`~vbinfer.simulate.SimParams` (``lam`` and the coupling gain).
    """

    states: np.ndarray
    weights: np.ndarray
    sigma: float
    simulator: Simulator
    params: SimParams


# ----------------------------------------------------------------------------- building blocks
def random_stable_weights(
    key: PRNGKey,
    n_nodes: int,
    *,
    weight_sd: float = WEIGHT_SD,
    lam: float = LAM,
    dt: float = DT,
    max_radius: float = MAX_RADIUS,
    max_tries: int = 1000,
) -> np.ndarray:
    """A random interaction matrix whose Euler-Maruyama MVAR process is stable.

    Entries are i.i.d. ``N(0, weight_sd**2)``; draws are rejected until every eigenvalue of
    ``B = (1 - lam dt) I + dt W`` has modulus below ``max_radius`` (a draw from the Gaussian
    conditioned on stability). ``|1 + dt mu| < 1`` for every eigenvalue ``mu`` of
    ``A = -lam I + W`` also makes the continuous-time network stable (``Re mu < 0``).

    Parameters
    ----------
    key:
        PRNG key; draw ``k`` uses ``fold_in(key, k)``.
    n_nodes:
        Number of nodes.
    weight_sd:
        Standard deviation of the entries, ms^-1.
    lam:
        Decay rate of every node, ms^-1.
    dt:
        Step, ms.
    max_radius:
        Bound on the spectral radius of ``B``, in ``(0, 1)``.
    max_tries:
        Draws before giving up.

    Returns
    -------
    ``(n_nodes, n_nodes)`` float array ``W``.

    Examples
    --------
    >>> import jax
    >>> W = random_stable_weights(jax.random.key(0), 4)
    >>> W.shape
    (4, 4)
    """
    if isinstance(n_nodes, bool) or not isinstance(n_nodes, int | np.integer) or n_nodes < 1:
        raise ValueError(f"n_nodes must be a positive integer, got {n_nodes!r}")
    if not 0.0 < max_radius < 1.0:
        raise ValueError(f"max_radius must lie in (0, 1), got {max_radius!r}")
    if not weight_sd > 0:
        raise ValueError(f"weight_sd must be > 0, got {weight_sd!r}")
    for k in range(max_tries):
        W = np.asarray(
            weight_sd * jax.random.normal(jax.random.fold_in(key, k), (n_nodes, n_nodes))
        )
        B = (1.0 - lam * dt) * np.eye(n_nodes) + dt * W
        if np.max(np.abs(np.linalg.eigvals(B))) < max_radius:
            return W
    raise ValueError(
        f"no stable matrix in {max_tries} draws with weight_sd={weight_sd}, lam={lam}, dt={dt}, "
        f"max_radius={max_radius}: lower weight_sd or raise lam * dt towards 1"
    )


def _check_transition_simulator(simulator: Simulator) -> None:
    if not isinstance(simulator, Simulator):
        raise ValueError(f"simulator must be a vbinfer Simulator, got {type(simulator).__name__}")
    problems = []
    if simulator.integrator.name != "euler":
        problems.append(f"integrator {simulator.integrator.name!r} (need 'euler')")
    if not isinstance(simulator.noise, AdditiveNoise):
        problems.append(f"noise {type(simulator.noise).__name__} (need AdditiveNoise)")
    elif simulator.noise_states != tuple(range(simulator.model.n_states)):
        problems.append(f"noise on states {simulator.noise_states} (need all states)")
    if simulator.max_lag is not None:
        problems.append(f"max_lag={simulator.max_lag} (need instantaneous coupling, None)")
    if simulator.stimulus is not None:
        problems.append("a stimulus (need none)")
    if simulator.model.has_bounds:
        problems.append(f"model {simulator.model.name!r} with state bounds (need none)")
    if problems:
        raise ValueError(
            "simulator: the one-step Gaussian transition density is exact only for "
            "Euler-Maruyama with additive noise on every state, no delays, no stimulus and no "
            "state bounds; got " + ", ".join(problems)
        )


def transition_mean(
    simulator: Simulator, params: SimParams, network: Network, states: ArrayLike
) -> Array:
    """Mean of the next state given the current one: one deterministic step of the simulator.

    Applies the simulator's own coupling (``pre``, the weighted sum, ``post``), model ``dfun``
    and integrator step to every time point at once (time is a batch axis), so that for an
    Euler-Maruyama simulator ``x_{t+1} = transition_mean(x_t) + sigma sqrt(dt) z_t`` exactly.

    Parameters
    ----------
    simulator:
        An Euler-Maruyama :class:`~vbinfer.simulate.Simulator` with additive noise on every
        state, instantaneous coupling, no stimulus and a model without state bounds (checked).
    params:
        :class:`~vbinfer.simulate.SimParams`; leaves are scalars or ``(n_nodes,)``.
    network:
        :class:`~vbinfer.network.Network` (its ``weights`` may be traced, e.g. a sample).
    states:
        ``(num_times, n_states, n_nodes)`` states ``x_t``.

    Returns
    -------
    ``(num_times, n_states, n_nodes)``: ``x_t + dt f(x_t)``.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from vbinfer import AdditiveNoise, SimParams, make_network, make_simulator, models
    >>> sim = make_simulator(models.linear, dt=1.0, num_steps=10, integrator="euler",
    ...                      noise=AdditiveNoise(0.1))
    >>> p = SimParams(models.LinearModelParams(lam=0.5))
    >>> transition_mean(sim, p, make_network(jnp.zeros((2, 2))), jnp.ones((3, 1, 2)))[0].tolist()
    [[0.5, 0.5]]
    """
    _check_transition_simulator(simulator)
    x = jnp.asarray(states)
    n_nodes = network.n_nodes
    shape = (simulator.model.n_states, n_nodes)
    if x.ndim != 3 or tuple(x.shape[1:]) != shape:
        raise ValueError(
            f"states must have shape (num_times, n_states={shape[0]}, n_nodes={shape[1]}), "
            f"got {tuple(x.shape)}"
        )
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    x = jnp.moveaxis(x, 0, -1)  # (n_states, n_nodes, num_times): time is the batch axis
    weights = jnp.asarray(network.weights, x.dtype)
    row_sums = weights.sum(axis=1)[:, None]
    cpl = simulator.coupling
    cpl_params = params.coupling if params.coupling is not None else cpl.params_cls()
    cpl_params = jax.tree_util.tree_map(_trailing_axis, cpl_params)
    model_params = jax.tree_util.tree_map(_trailing_axis, params.model)

    def f(frac, xs, aux):
        xc = take_rows(xs, simulator.cvar)
        summed = jnp.einsum("ij,pjt->pit", weights, cpl.pre(xc, cpl_params))
        c = cpl.post(summed, xc, row_sums, cpl_params)
        return simulator.model.dfun(xs, c, model_params), aux

    x_next, _ = simulator.integrator.step(f, x, None, simulator.dt, None, lambda v: v)
    return jnp.moveaxis(x_next, -1, 0)


def _trailing_axis(v: Any) -> Array:
    """Give per-node parameters a trailing axis so they broadcast against (n_nodes, time)."""
    v = jnp.asarray(v)
    return v[..., None] if v.ndim else v


def mvar_problem(
    simulator: Simulator,
    params: SimParams,
    n_nodes: int,
    *,
    prior_sd: float = PRIOR_SD,
    sigma_prior: dist.Distribution | None = None,
    truth: dict[str, Any] | None = None,
):
    """The MVAR inference problem: unknown interaction matrix and noise amplitude.

    Sites: ``"weights"`` ``(n_nodes, n_nodes)`` with i.i.d. ``N(0, prior_sd**2)`` priors,
    ``"sigma"`` (default prior ``HalfNormal(1)``), and the observed ``"obs"``: the states
    ``(num_steps + 1, n_nodes)``, scored with the one-step transition density (module
    docstring). With ``data=None`` the model simulates a trajectory with the simulator itself
    (from the model's default start), so :func:`~vbinfer.inference.simulate_data` and
    posterior predictive checks use the same generator as the data.

    Parameters
    ----------
    simulator:
        Euler-Maruyama simulator of ``vbinfer.models.linear`` (see :func:`transition_mean`).
    params:
        Known parameters (``lam``, coupling gain).
    n_nodes:
        Number of nodes.
    prior_sd:
        Prior sd of every weight, ms^-1.
    sigma_prior:
        Prior of ``sigma`` (positive support).
    truth:
        True ``{"weights": ..., "sigma": ...}`` for simulation studies.

    Returns
    -------
    :class:`~vbinfer.inference.Problem` with ``data_shape = (num_steps + 1, n_nodes)``.

    Examples
    --------
    >>> from vbinfer import AdditiveNoise, SimParams, make_simulator, models
    >>> sim = make_simulator(models.linear, dt=1.0, num_steps=10, integrator="euler",
    ...                      noise=AdditiveNoise(0.1))
    >>> mvar_problem(sim, SimParams(models.LinearModelParams()), 3).param_names
    ('weights', 'sigma')
    """
    from vbinfer.inference import problem_from_model

    _check_transition_simulator(simulator)
    if simulator.model.n_states != 1:
        raise ValueError(
            f"simulator: mvar_problem needs a one-state model, got {simulator.model.name!r} "
            f"with {simulator.model.n_states} states"
        )
    if not prior_sd > 0:
        raise ValueError(f"prior_sd must be > 0, got {prior_sd!r}")
    sigma_prior = dist.HalfNormal(SIGMA_PRIOR_SCALE) if sigma_prior is None else sigma_prior
    if not isinstance(sigma_prior, dist.Distribution):
        raise ValueError(f"sigma_prior must be a numpyro Distribution, got {sigma_prior!r}")
    dt = simulator.dt
    data_shape = (simulator.num_samples + 1, n_nodes)
    if simulator.sample_every != 1:
        raise ValueError(
            f"simulator: sample_every must be 1 (every step observed), got {simulator.sample_every}"
        )

    def model(data=None):
        weights = numpyro.sample(
            "weights", dist.Normal(jnp.zeros((n_nodes, n_nodes)), prior_sd).to_event(2)
        )
        sigma = numpyro.sample("sigma", sigma_prior)
        net = Network(weights)
        if data is None:
            sim = dataclasses.replace(
                simulator,
                noise=simulator.noise._replace(sigma=sigma),
                monitors=(subsample(name="x"),),
            )
            res = sim.run(numpyro.prng_key(), params, net)
            x0 = jnp.zeros((1, n_nodes), res.final.x.dtype)
            numpyro.deterministic("obs", jnp.concatenate([x0, _observed(res)], axis=0))
            return
        mean = transition_mean(simulator, params, net, data[:-1, None, :])[:, 0, :]
        numpyro.sample("obs", dist.Normal(mean, sigma * math.sqrt(dt)).to_event(2), obs=data[1:])

    return problem_from_model(model, ("weights", "sigma"), data_shape=data_shape, truth=truth)


def _observed(res) -> Array:
    """``(num_steps, n_nodes)`` states recorded by the workflow's monitor."""
    return res.outputs["x"][:, 0, :]


def make_mvar_simulator(
    num_steps: int = NUM_STEPS, *, dt: float = DT, sigma: float = SIGMA
) -> Simulator:
    """Euler-Maruyama simulator of linear nodes recording every state (output ``"x"``).

    Examples
    --------
    >>> make_mvar_simulator(100).num_samples
    100
    """
    return make_simulator(
        linear,
        dt=dt,
        num_steps=num_steps,
        integrator="euler",
        noise=AdditiveNoise(sigma),
        monitors=(subsample(name="x"),),
    )


def simulate_mvar(
    key: PRNGKey,
    *,
    n_nodes: int = N_NODES,
    num_steps: int = NUM_STEPS,
    dt: float = DT,
    lam: float = LAM,
    weight_sd: float = WEIGHT_SD,
    sigma: float = SIGMA,
) -> MVARData:
    """Draw a stable random interaction matrix and simulate the network from ``x_0 = 0``.

    Parameters
    ----------
    key:
        PRNG key (split for the matrix and the noise).
    n_nodes, num_steps, dt, lam, weight_sd, sigma:
        Size, steps, step (ms), decay rate (ms^-1), sd of the weights (ms^-1) and noise
        amplitude (state units per sqrt(ms)).

    Returns
    -------
    :class:`MVARData` with ``states`` ``(num_steps + 1, n_nodes)``.

    Examples
    --------
    >>> import jax
    >>> simulate_mvar(jax.random.key(0), n_nodes=3, num_steps=50).states.shape
    (51, 3)
    """
    k_w, k_noise = jax.random.split(key)
    W = random_stable_weights(k_w, n_nodes, weight_sd=weight_sd, lam=lam, dt=dt)
    sim = make_mvar_simulator(num_steps, dt=dt, sigma=sigma)
    params = SimParams(LinearModelParams(lam=lam, k=1.0), LinearParams(a=1.0))
    res = jax.jit(sim.run)(k_noise, params, make_network(W))
    xs = np.asarray(_observed(res))
    states = np.concatenate([np.zeros((1, n_nodes), xs.dtype), xs], axis=0)
    return MVARData(states, W, float(sigma), sim, params)


def expected_mse(states: ArrayLike, dt: float, sigma: float) -> float:
    """Expected mean squared error of the least-squares estimate of ``W`` (Cramer-Rao bound).

    Each row of ``W`` is a linear regression of ``(x_{t+1} - x_t + lam dt x_t) / dt`` on
    ``x_t`` with noise variance ``sigma**2 / dt``, so its covariance is
    ``(sigma**2 / dt) (X^T X)^{-1}`` with ``X`` the ``(T, n)`` matrix of ``x_0 .. x_{T-1}``,
    and the expected squared error averaged over the ``n**2`` entries is
    ``(sigma**2 / dt) tr((X^T X)^{-1}) / n``. The posterior mode under a weak prior attains
    it up to the prior's pull; it sets the scale against which the MAP error is judged.

    Parameters
    ----------
    states:
        ``(T + 1, n)`` observed states.
    dt:
        Step, ms.
    sigma:
        Noise amplitude.

    Returns
    -------
    float, in (ms^-1)^2.

    Examples
    --------
    >>> import numpy as np
    >>> round(expected_mse(np.array([[1.0], [1.0], [0.0]]), 1.0, 1.0), 3)  # X^T X = 2
    0.5
    """
    X = np.asarray(states, dtype=np.float64)[:-1]
    if X.ndim != 2:
        raise ValueError(f"states must be (num_times, n_nodes), got shape {np.shape(states)}")
    n = X.shape[1]
    return float(sigma**2 / dt * np.trace(np.linalg.inv(X.T @ X)) / n)


# ----------------------------------------------------------------------------- the workflow
def run(
    out_dir: str | Path | None = None,
    *,
    seed: int = 0,
    num_samples: int | None = None,
    backend: str = "both",
    quick: bool = False,
    progress: bool = True,
) -> WorkflowReport:
    """Simulate an 8-node stochastic linear network and recover its interaction matrix.

    Steps: draw a stable random ``W`` (sd 0.15 ms^-1, ``lam`` = 0.5 ms^-1, ``dt`` = 1 ms),
    simulate 1000 Euler-Maruyama steps with ``sigma`` = 0.2, then fit ``W`` and ``sigma``
    with the transition likelihood (module docstring) by MAP (Adam, 4 restarts) and/or NUTS
    (numpyro, 2 chains).

    Recovery criteria (``report.passed``): MAP mean squared error below ``2 x``
    :func:`expected_mse` (the Cramer-Rao error for this data set: the error of a least-squares
    fit is a scaled chi-square with ``n**2`` degrees of freedom, so twice its mean is about
    5 sd above it); NUTS: at least 90 % of the entries with ``|z| < 2``, shrinkage of every
    entry above 0.9, split R-hat below 1.05 and effective sample size above 100 for every
    unknown (numpyro's estimators).

    Parameters
    ----------
    out_dir:
        Folder for plots (``matrices.png``, ``scatter.png``, ``shrinkage_z.png``,
        ``map_loss.png``), tables (``entries.csv``), arrays (``results.npz``, ``nuts_fit.npz``)
        and ``report.json``; ``None`` writes nothing.
    seed:
        Seed of every random draw (matrix, noise, restarts, chains).
    num_samples:
        NUTS draws per chain after as many warm-up steps (default 1000, quick 200).
    backend:
        ``"both"``, ``"map"`` or ``"nuts"``.
    quick:
        Fewer NUTS draws (200 per chain after 200 warm-up steps).
    progress:
        Show progress bars.

    Returns
    -------
    :class:`~vbinfer.workflows.WorkflowReport`: rows for the median entry and the worst entry
    by each criterion, metrics (``mse_map``, ``expected_mse``, ``coverage_2sd``,
    ``max_abs_z``, ``min_shrinkage``, ``min_ess``, ``max_rhat``, wall times in s, ...).

    Examples
    --------
    >>> report = run(None, quick=True, backend="map", progress=False)  # doctest: +SKIP
    >>> report.metrics["mse_map"] < 2 * report.metrics["expected_mse"]  # doctest: +SKIP
    True
    """
    from vbinfer.inference import fit

    check_run_options(backend, BACKENDS, num_samples)
    draws = num_samples if num_samples is not None else (200 if quick else 1000)
    map_steps = 3000  # about a second of Adam; the quick mode shortens only NUTS
    key = jax.random.key(seed)
    k_data, k_map, k_nuts = jax.random.split(key, 3)

    t_start = time.perf_counter()
    data = simulate_mvar(k_data)
    t_sim = time.perf_counter() - t_start
    W = data.weights
    n = W.shape[0]
    truth = {"weights": W, "sigma": data.sigma}
    problem = mvar_problem(data.simulator, data.params, n, truth=truth)
    obs = jnp.asarray(data.states)
    mse_ref = expected_mse(data.states, data.simulator.dt, data.sigma)
    metrics: dict[str, Any] = {
        "n_nodes": n,
        "num_steps": data.simulator.num_steps,
        "sigma_true": data.sigma,
        "expected_mse": mse_ref,
        "weights_variance": float(np.var(W)),
        "simulate_s": t_sim,
    }
    checks: list[bool] = []
    map_fit = nuts_fit = None
    entry = {"truth": W}

    if backend in ("both", "map"):
        map_fit = fit(
            problem,
            obs,
            method="map",
            key=k_map,
            optimizer="adam",
            learning_rate=0.02,
            num_steps=map_steps,
            num_restarts=4,
            progress_bar=progress,
        )
        W_map = map_fit.mean("weights")
        entry["map"] = W_map
        metrics.update(
            mse_map=float(np.mean((W_map - W) ** 2)),
            sigma_map=float(map_fit.mean("sigma")),
            map_s=map_fit.wall_time_s,
            map_compile_s=map_fit.compile_time_s,
        )
        checks.append(metrics["mse_map"] < MSE_FACTOR * mse_ref)

    if backend in ("both", "nuts"):
        nuts_fit = fit(
            problem,
            obs,
            method="nuts",
            key=k_nuts,
            num_warmup=draws,
            num_samples=draws,
            num_chains=2,
            progress_bar=progress,
        )
        diag = _nuts_diagnostics(nuts_fit, truth)
        entry.update(
            post_mean=nuts_fit.mean("weights"),
            post_sd=nuts_fit.sd("weights"),
            z=diag["z"],
            shrinkage=diag["shrinkage"],
            ess=diag["ess"]["weights"],
            r_hat=diag["rhat"]["weights"],
        )
        metrics.update(
            mse_post_mean=float(np.mean((entry["post_mean"] - W) ** 2)),
            coverage_2sd=float(np.mean(diag["z"] < 2.0)),
            max_abs_z=float(diag["z"].max()),
            min_shrinkage=float(diag["shrinkage"].min()),
            min_ess=float(min(np.min(v) for v in diag["ess"].values())),
            max_rhat=float(max(np.max(v) for v in diag["rhat"].values())),
            sigma_post_mean=float(nuts_fit.mean("sigma")),
            sigma_post_sd=float(nuts_fit.sd("sigma")),
            divergences=int(np.sum(nuts_fit.divergences)),
            nuts_draws=int(nuts_fit.num_chains * nuts_fit.num_draws),
            step_size=nuts_fit.info["step_size"],
            mean_leapfrog_steps=float(np.mean(nuts_fit.info["sample_stats"]["num_steps"])),
            nuts_s=nuts_fit.wall_time_s,
            nuts_compile_s=nuts_fit.compile_time_s,
        )
        checks += [
            metrics["coverage_2sd"] >= MIN_COVERAGE,
            metrics["min_shrinkage"] > MIN_SHRINKAGE,
            metrics["max_rhat"] < MAX_RHAT,
            metrics["min_ess"] > MIN_ESS,
        ]

    metrics["total_s"] = time.perf_counter() - t_start
    metrics["criteria"] = _criteria_text(backend)
    report = WorkflowReport("mvar", _rows(entry, metrics), metrics, [], all(checks))
    if out_dir is not None:
        report.files = _write(Path(out_dir), data, entry, map_fit, nuts_fit)
        report.files.append(report.save_json(Path(out_dir) / "report.json"))
    return report


# ----------------------------------------------------------------------------- helpers of run
def _nuts_diagnostics(result, truth: dict[str, Any]) -> dict[str, Any]:
    """z-scores and shrinkage of the weights; ESS and split R-hat of every unknown (numpyro's
    estimators, Geyer's initial monotone sequence; arviz gives the rank-normalised variants)."""
    from numpyro.diagnostics import effective_sample_size, split_gelman_rubin

    from vbinfer.inference import posterior_shrinkage, posterior_zscore

    post = result.flat("weights")
    by_chain = {k: np.asarray(result.samples[k], np.float64) for k in ("weights", "sigma")}
    return {
        "z": posterior_zscore(post, truth["weights"]),
        "shrinkage": posterior_shrinkage(post, PRIOR_SD),
        "ess": {k: np.asarray(effective_sample_size(v)) for k, v in by_chain.items()},
        "rhat": {k: np.asarray(split_gelman_rubin(v)) for k, v in by_chain.items()},
    }


def _criteria_text(backend: str) -> str:
    parts = []
    if backend in ("both", "map"):
        parts.append(f"mse_map < {MSE_FACTOR:g} x expected_mse")
    if backend in ("both", "nuts"):
        parts.append(
            f"coverage_2sd >= {MIN_COVERAGE:g}, min_shrinkage > {MIN_SHRINKAGE:g}, "
            f"max_rhat < {MAX_RHAT:g}, min_ess > {MIN_ESS:g}"
        )
    return "; ".join(parts)


def _entry_table(entry: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """One dict per matrix entry ``W[i, j]`` with every column the run produced."""
    n = entry["truth"].shape[0]
    rows = []
    for i in range(n):
        for j in range(n):
            row: dict[str, Any] = {"entry": f"W[{i},{j}]"}
            for name, arr in entry.items():
                row[name] = float(arr[i, j])
            rows.append(row)
    return rows


def _rows(entry: dict[str, np.ndarray], metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """Summary rows: the median over entries and the worst entry by each criterion."""
    table = _entry_table(entry)
    cols = [c for c in table[0] if c != "entry"]
    median = {"row": "median over entries", "entry": "-"}
    median.update({c: float(np.median([r[c] for r in table])) for c in cols})
    rows = [median]
    worst = []
    if "map" in entry:
        worst.append(("largest MAP error", lambda r: abs(r["map"] - r["truth"]), max))
    if "z" in entry:
        worst += [
            ("largest |z|", lambda r: r["z"], max),
            ("lowest shrinkage", lambda r: r["shrinkage"], min),
            ("lowest ESS", lambda r: r["ess"], min),
            ("highest R-hat", lambda r: r["r_hat"], max),
        ]
    for label, score, pick in worst:
        r = pick(table, key=score)
        rows.append({"row": label, **r})
    for r in rows:
        for c in cols:
            r.setdefault(c, float("nan"))
    if "sigma_post_mean" in metrics or "sigma_map" in metrics:
        rows.append(
            {
                "row": "noise sigma",
                "entry": "sigma",
                "truth": metrics["sigma_true"],
                **({"map": metrics["sigma_map"]} if "sigma_map" in metrics else {}),
                **(
                    {"post_mean": metrics["sigma_post_mean"], "post_sd": metrics["sigma_post_sd"]}
                    if "sigma_post_mean" in metrics
                    else {}
                ),
            }
        )
    return rows


def _write(out: Path, data: MVARData, entry, map_fit, nuts_fit) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    files = []
    table = _entry_table(entry)
    csv = out / "entries.csv"
    cols = list(table[0])
    lines = [",".join(cols)] + [
        ",".join(r["entry"] if c == "entry" else f"{r[c]:.6g}" for c in cols) for r in table
    ]
    csv.write_text("\n".join(lines) + "\n")
    files.append(csv)
    npz = out / "results.npz"
    np.savez_compressed(
        npz,
        states=data.states,
        sigma_true=data.sigma,
        dt_ms=data.simulator.dt,
        lam=float(data.params.model.lam),
        **{f"weights_{k}": np.asarray(v) for k, v in entry.items()},
    )
    files.append(npz)
    if nuts_fit is not None:
        files.append(nuts_fit.save(out / "nuts_fit.npz"))
    for name, fig in _figures(entry, map_fit, nuts_fit).items():
        path = out / f"{name}.png"
        fig.savefig(path, dpi=110)
        files.append(path)
    return files


def _figures(entry, map_fit, nuts_fit) -> dict[str, Any]:
    from matplotlib.figure import Figure

    from vbinfer.inference.plots import plot_shrinkage_zscore

    figs = {}
    W = entry["truth"]
    panels = [("true W", W)]
    if "map" in entry:
        panels.append(("MAP (Adam)", entry["map"]))
    if "post_mean" in entry:
        panels.append(("NUTS posterior mean", entry["post_mean"]))
    lim = float(max(np.abs(p).max() for _, p in panels))
    fig = Figure(figsize=(3.3 * len(panels) + 0.8, 3.2), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (title, M) in zip(axes, panels, strict=True):
        im = ax.imshow(M, cmap="RdBu_r", vmin=-lim, vmax=lim)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("from node j")
        ax.set_ylabel("to node i")
    fig.colorbar(im, ax=list(axes), shrink=0.8, label="W[i, j] (1/ms)")
    figs["matrices"] = fig

    fig = Figure(figsize=(4.6, 4.2))
    ax = fig.subplots()
    t = W.ravel()
    if "post_mean" in entry:
        ax.errorbar(
            t,
            entry["post_mean"].ravel(),
            yerr=2 * entry["post_sd"].ravel(),
            fmt="o",
            ms=3,
            lw=0.8,
            label="NUTS mean +- 2 sd",
        )
    if "map" in entry:
        ax.plot(t, entry["map"].ravel(), "x", color="C3", ms=5, label="MAP")
    ax.plot([-lim, lim], [-lim, lim], color="k", lw=0.8)
    ax.set_xlabel("true W[i, j] (1/ms)")
    ax.set_ylabel("estimate")
    ax.legend(fontsize=8)
    fig.tight_layout()
    figs["scatter"] = fig

    if nuts_fit is not None:
        figs["shrinkage_z"] = plot_shrinkage_zscore(nuts_fit, {"weights": W}, {"weights": PRIOR_SD})
    if map_fit is not None and map_fit.loss is not None:
        fig = Figure(figsize=(4.6, 3.2))
        ax = fig.subplots()
        ax.plot(np.asarray(map_fit.loss))
        ax.set_xlabel("Adam step")
        ax.set_ylabel("negative log posterior")
        ax.set_yscale("symlog")
        fig.tight_layout()
        figs["map_loss"] = fig
    return figs
