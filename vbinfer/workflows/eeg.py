"""Workflow 2: recover network and local parameters of a Jansen-Rit network from EEG spectra.

The forward model
-----------------
A Jansen-Rit column (:mod:`vbinfer.models.jansen_rit`, ``v0 = 6`` mV as in the 1995 paper)
sits at each of the 84 regions of the Hagmann et al. (2008) connectome. Regions are coupled
through the sigmoidal Jansen-Rit coupling (the firing rate of the sender's pyramidal
potential, TVB's ``SigmoidalJansenRit``) with conduction delays ``length / speed``; the
delays use fractional lags (``lag_mode="linear"``), so the simulation is differentiable in
the conduction speed. The weights are normalised so that every region's inputs sum to 1, and
connections below 0.1 % of a row's input are dropped (99 % of the total weight is kept, 2569
of 4598 edges), which makes the sparse network 2-3x cheaper to step. Each column receives a
stochastic input ``p(t) = mu + sigma_p xi(t)`` on its pyramidal cells (white noise of the
intensity of Jansen & Rit's uniform 120-320 pulses/s redrawn every ms), integrated with
stochastic Heun at ``dt = 1`` ms.

The pyramidal potential ``y1 - y2`` (mV) of every region times a dipole scale of 10 nAm/mV is
a current dipole at the region's centre, radial in a four-shell spherical head; the EEG of the
21 channels of the 10-20 system is its projection through the shipped lead field
(:func:`vbinfer.datasets.load_leadfield_1020`, average reference, uV), recorded every 4 ms
(250 Hz). The observation is the ``log10`` Welch power spectrum of each channel (segments of
512 ms, half overlapping, Hann window) between 2 and 40 Hz: 19 frequencies x 21 channels.

Unknowns and priors
-------------------
Four parameters are recovered (chosen because the Fisher information of the spectra
separates them: posterior correlations below 0.6, whereas ``mu``, ``A`` and ``B`` together,
or ``B`` with ``b``, are correlated above 0.9):

=================  ===========================  ========================  =======
parameter          meaning                      prior                     truth
=================  ===========================  ========================  =======
``coupling.a``     global coupling              LogNormal(log 10, 0.3)    12
``network.speed``  conduction speed, mm/ms      LogNormal(log 6, 0.3)     7
``model.mu``       mean input p, 1/ms           Normal(0.22, 0.011)       0.21
``model.A``        max. excitatory PSP, mV      Normal(3.25, 0.1625)      3.35
=================  ===========================  ========================  =======

Every unknown is sampled as a standard normal ``u`` and mapped to its physical value
(``exp(log m + s u)`` or ``m + s u``): all the samplers see is ``u``, with prior ``N(0, I)``.

The likelihood
--------------
``log10 PSD = predict(theta) + e``, ``e ~ N(0, 0.2^2)`` independently per frequency and
channel, with the simulation noise ``xi`` **held fixed**: the same pre-drawn realisation
generates the data and every model evaluation, so the likelihood is a deterministic, smooth
function of the parameters and the model is exactly right about the data (a
simulation-study setting; with real data the noise would have to be averaged over or
sampled). 0.2 in ``log10`` is about the spread of a Welch estimate from 7 segments. All
runs start from one state, the end of a 1 s run at the prior median; the first 256 ms of
every run are discarded.

Inference
---------
The posterior has one sharp mode at the truth but, away from it, the log density is rough:
with the noise held fixed, the chaotic network's spectra change irregularly with the
parameters, and local modes appear (with seed 1, a gradient fit started anywhere in the prior
stopped at a local mode 50 log-density units below the truth, separated from it by a
barrier). Hence three stages, each a change of coordinates that leaves the posterior as it is:

- **Global search** (:func:`cross_entropy_search`): 8 populations of 48 points, forward
  simulations only, batched with ``vmap``; the Gaussian it ends with locates the mode.
- **SVI** (:func:`vbinfer.inference.fit` ``method="svi"``): a full-rank Gaussian guide
  (numpyro ``AutoMultivariateNormal``, Adam with cosine decay) in coordinates centred on the
  search, ``u = c + s w`` with ``c`` the best point and ``s`` the search's final sd; ``w``
  gets the prior ``N(-c / s, 1 / s^2)`` (so ``u`` keeps ``N(0, I)``), and the guide's
  default start, uniform in ``[-2, 2]`` of ``w``, lies within ``2 s`` of ``c``.
- **NUTS** (numpyro): in coordinates whitened by the SVI fit, ``u = m + L v`` with ``m`` and
  ``L L^T`` the SVI mean and covariance (``v`` has the prior ``N(-L^-1 m, L^-1 L^-T)``).
  The posterior is close to a standard normal in ``v``: NUTS takes short trajectories with a
  diagonal mass matrix and the chains start near the posterior. Chains run one after the
  other (``vmap`` over chains of the forward-mode gradient below costs 3-4x one chain here,
  two sequential chains 2x). NUTS therefore always runs after the search and SVI;
  ``backend="nuts"`` runs them as preconditioners only. It explores the mode it is given: a
  far, better mode that the search missed would go unnoticed (R-hat cannot see it either,
  since both chains start from the same fit).
- **Gradients in forward mode.** With four unknowns, one forward pass carrying four tangents
  (``jax.jvp``) is cheaper than reverse mode through a 2300-step delayed scan: about 3.2x the
  CPU time of a simulation (27 ms), against about 8x for reverse mode (2-core machine).
  :func:`forward_mode_vjp` wraps the prediction in a ``custom_vjp`` whose backward pass
  applies the Jacobian computed by ``jax.jacfwd``. The problems are therefore built with
  :func:`vbinfer.inference.make_problem` around this prediction rather than with
  ``simulator_problem`` (which differentiates the simulation in reverse mode and replaces
  network fields with ``_replace``, which a :class:`~vbinfer.network.SparseNetwork` lacks).

Measured (default settings, 2-core machine, lightly loaded): seed 0 in 252 s (search 15 s,
SVI 41 s, NUTS 184 s: 5.1 leapfrog steps per draw, step size 1.16, no divergences); every
parameter within 1.5 posterior sd of the truth for both backends, shrinkage above 0.98, NUTS
R-hat at most 1.03 and bulk ESS at least 106 from 200 draws. Seeds 1 and 2 (on a loaded
machine) also meet the criteria (largest z 1.0 and 0.6). Without the search, seed 1's SVI
and NUTS agreed on a local mode 22 to 28 posterior sd from the truth.

Diagnostics: posterior mean, sd, shrinkage ``1 - Var_post / Var_prior``, ``z = |mean -
truth| / sd``, bulk ESS and R-hat (arviz) per parameter and backend; plots of the fitted
against the observed spectrum of every channel (posterior predictive 5-95 % band), posteriors
against priors and truth, and shrinkage against z.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist

from vbinfer._typing import Array, PRNGKey
from vbinfer.workflows._report import WorkflowReport, check_run_options

__all__ = [
    "BACKENDS",
    "PARAMS",
    "EEGConfig",
    "EEGModel",
    "ParamSpec",
    "SearchResult",
    "cross_entropy_search",
    "forward_mode_vjp",
    "make_eeg_model",
    "prior_sd",
    "run",
    "to_physical",
    "to_standard",
]

BACKENDS = ("both", "nuts", "svi")

MAX_ABS_Z = 3.0
MIN_SHRINKAGE = 0.5
MAX_RHAT = 1.05
MIN_ESS = 50.0

# layout of the 21 channels of the 10-20 system on a 5 x 5 grid (row, column)
_GRID = {
    "Fp1": (0, 1), "Fpz": (0, 2), "Fp2": (0, 3),
    "F7": (1, 0), "F3": (1, 1), "Fz": (1, 2), "F4": (1, 3), "F8": (1, 4),
    "T7": (2, 0), "C3": (2, 1), "Cz": (2, 2), "C4": (2, 3), "T8": (2, 4),
    "P7": (3, 0), "P3": (3, 1), "Pz": (3, 2), "P4": (3, 3), "P8": (3, 4),
    "O1": (4, 1), "Oz": (4, 2), "O2": (4, 3),
}  # fmt: skip


class ParamSpec(NamedTuple):
    """One unknown: where it lives, its prior and its true value.

    Attributes
    ----------
    name: ``"coupling.a"``, ``"network.speed"`` or ``"model.<field>"``.
    label: a short description for tables and plots.
    kind: ``"lognormal"`` (``exp(log(loc) + scale * u)``) or ``"normal"`` (``loc + scale * u``).
    loc: prior median (lognormal) or mean (normal), physical units.
    scale: sd of ``log(theta)`` (lognormal) or of ``theta`` (normal).
    truth: the value that generates the data.
    units: physical units.
    """

    name: str
    label: str
    kind: str
    loc: float
    scale: float
    truth: float
    units: str = ""


PARAMS = (
    ParamSpec("coupling.a", "global coupling", "lognormal", 10.0, 0.3, 12.0, ""),
    ParamSpec("network.speed", "conduction speed", "lognormal", 6.0, 0.3, 7.0, "mm/ms"),
    ParamSpec("model.mu", "mean input p", "normal", 0.22, 0.011, 0.21, "1/ms"),
    ParamSpec("model.A", "excitatory PSP A", "normal", 3.25, 0.1625, 3.35, "mV"),
)
"""The unknowns of the workflow, their priors and true values (see the module docstring)."""


class EEGConfig(NamedTuple):
    """Settings of the forward model (times in ms).

    Attributes
    ----------
    dt: integration step (1 ms; 2 ms shifts the spectra by up to 0.1 in log10).
    sample_every: steps per EEG sample (4: 250 Hz).
    skip_ms: transient discarded at the start of every run.
    analysis_ms: length of the analysed EEG.
    nperseg: Welch segment length in samples.
    fmin, fmax: frequency band of the likelihood, Hz.
    input_sd: intensity ``sigma_p`` of the white-noise input, ms^-1 ms^0.5.
    dipole_scale: nAm of dipole moment per mV of pyramidal potential.
    obs_sd: sd of the Gaussian likelihood on ``log10`` power.
    weight_threshold: row-normalised weights below this are dropped.
    min_speed: slowest conduction speed the delay buffer holds, mm/ms (slower is clipped).
    burn_in_ms: length of the run that provides the common initial state.
    """

    dt: float = 1.0
    sample_every: int = 4
    skip_ms: float = 256.0
    analysis_ms: float = 2048.0
    nperseg: int = 128
    fmin: float = 2.0
    fmax: float = 40.0
    input_sd: float = 0.0577
    dipole_scale: float = 10.0
    obs_sd: float = 0.2
    weight_threshold: float = 1e-3
    min_speed: float = 2.0
    burn_in_ms: float = 1000.0


class EEGModel(NamedTuple):
    """The forward model: physical parameters to log power spectra.

    Attributes
    ----------
    predict: ``predict(theta) -> (n_freq, n_channels)`` ``log10`` PSD (uV^2/Hz) for the
        physical parameters ``theta`` ``(n_params,)`` in the order of ``params``.
    simulate_eeg: ``simulate_eeg(theta) -> (n_samples, n_channels)`` EEG in uV after the
        discarded transient.
    freqs: ``(n_freq,)`` frequencies of ``predict``'s rows, Hz.
    ch_names: channel names, in ``predict``'s column order.
    params: the :class:`ParamSpec` of each entry of ``theta``.
    fs: EEG sampling rate, Hz.
    config: the :class:`EEGConfig`.
    num_steps: integration steps per evaluation.
    n_regions: regions (nodes) of the network.
    n_edges: connections kept in the network.
    """

    predict: Callable[[Array], Array]
    simulate_eeg: Callable[[Array], Array]
    freqs: np.ndarray
    ch_names: tuple[str, ...]
    params: tuple[ParamSpec, ...]
    fs: float
    config: EEGConfig
    num_steps: int
    n_regions: int
    n_edges: int


# ------------------------------------------------------------------------ parameter transforms
def to_physical(u: Array, params: tuple[ParamSpec, ...] = PARAMS) -> Array:
    """Map standard coordinates ``u`` ``(..., n_params)`` to physical values.

    Examples
    --------
    >>> float(to_physical(jnp.zeros(4))[0])  # the prior median of the coupling
    10.0
    """
    cols = []
    for k, p in enumerate(params):
        uk = u[..., k]
        if p.kind == "lognormal":
            cols.append(p.loc * jnp.exp(p.scale * uk))
        else:
            cols.append(p.loc + p.scale * uk)
    return jnp.stack(cols, axis=-1)


def to_standard(theta: Any, params: tuple[ParamSpec, ...] = PARAMS) -> np.ndarray:
    """Inverse of :func:`to_physical` (NumPy).

    Examples
    --------
    >>> to_standard([10.0, 6.0, 0.22, 3.25]).tolist()
    [0.0, 0.0, 0.0, 0.0]
    """
    theta = np.asarray(theta, dtype=np.float64)
    cols = []
    for k, p in enumerate(params):
        if p.kind == "lognormal":
            cols.append(np.log(theta[..., k] / p.loc) / p.scale)
        else:
            cols.append((theta[..., k] - p.loc) / p.scale)
    return np.stack(cols, axis=-1)


def prior_sd(spec: ParamSpec) -> float:
    """Prior standard deviation of a parameter in physical units.

    Examples
    --------
    >>> round(prior_sd(PARAMS[2]), 4)
    0.011
    """
    if spec.kind == "lognormal":
        s2 = spec.scale**2
        return float(spec.loc * math.exp(s2 / 2) * math.sqrt(math.expm1(s2)))
    return float(spec.scale)


def forward_mode_vjp(fn: Callable[[Array], Array]) -> Callable[[Array], Array]:
    """``fn`` with a reverse-mode derivative computed in forward mode.

    For a function of a few inputs (``theta`` ``(n,)``) through a long simulation, ``n``
    tangents pushed forward with the simulation (``jax.jacfwd``) cost less than the reverse
    pass, which stores the whole trajectory and scatters the gathered delays back. The
    returned function has a ``custom_vjp``: its forward pass evaluates ``fn`` and its Jacobian
    ``(*out, n)`` together, the backward pass contracts the cotangent with that Jacobian. So
    ``jax.grad`` (NUTS, SVI) works; forward-mode transforms of the result (``jax.jacfwd``,
    ``jax.hessian``) do not, as for any ``custom_vjp``.

    Parameters
    ----------
    fn:
        ``fn(theta) -> y`` with ``theta`` a 1-D array.

    Returns
    -------
    Callable
        Same values as ``fn``; gradients equal ``fn``'s to rounding.

    Examples
    --------
    >>> f = forward_mode_vjp(lambda x: jnp.sin(x) * x[0])
    >>> g = jax.grad(lambda x: f(x).sum())(jnp.array([1.0, 2.0]))
    >>> bool(jnp.allclose(g, jax.grad(lambda x: (jnp.sin(x) * x[0]).sum())(jnp.array([1.0, 2.0]))))
    True
    """

    @jax.custom_vjp
    def wrapped(theta):
        return fn(theta)

    def fwd(theta):
        basis = jnp.eye(theta.shape[0], dtype=theta.dtype)
        y, jac = jax.vmap(lambda v: jax.jvp(fn, (theta,), (v,)), out_axes=(None, -1))(basis)
        return y, jac

    def bwd(jac, ct):
        return (jnp.tensordot(ct, jac, axes=ct.ndim),)

    wrapped.defvjp(fwd, bwd)
    return wrapped


class SearchResult(NamedTuple):
    """Outcome of :func:`cross_entropy_search`.

    Attributes
    ----------
    best: ``(dim,)`` the best point evaluated.
    best_logdensity: its log density.
    mean, sd: ``(dim,)`` the final search distribution (mean and sd of the last elites).
    history: ``(num_iters,)`` best log density after each iteration.
    """

    best: np.ndarray
    best_logdensity: float
    mean: np.ndarray
    sd: np.ndarray
    history: np.ndarray


def cross_entropy_search(
    key: PRNGKey,
    logdensity_batch: Callable[[Array], Array],
    dim: int,
    *,
    num_iters: int = 8,
    population: int = 48,
    num_elite: int = 12,
    min_sd: float = 0.02,
) -> SearchResult:
    """Global search for the mode of a log density by the cross-entropy method.

    Each iteration draws ``population`` points from a diagonal Gaussian (the first from the
    standard normal, i.e. the prior in standard coordinates), evaluates them in one batch and
    refits the Gaussian to the ``num_elite`` best. It needs no gradients and looks at the
    density only through rankings of whole populations, so it follows the global trend of a
    log density that has local modes (a network simulated with fixed noise is chaotic enough
    to have them) where a gradient method started at one point can stop in the first mode.

    Parameters
    ----------
    key:
        PRNG key.
    logdensity_batch:
        ``(population, dim) -> (population,)`` log density; non-finite values rank last.
    dim:
        Number of coordinates.
    num_iters, population, num_elite:
        Iterations, points per iteration, points the Gaussian is refitted to.
    min_sd:
        Floor of the search sd (keeps the search from collapsing on one point).

    Returns
    -------
    SearchResult

    Examples
    --------
    >>> f = lambda u: -jnp.sum((u - 1.5) ** 2, axis=1) + 0.3 * jnp.sin(20 * u).sum(axis=1)
    >>> r = cross_entropy_search(jax.random.key(0), f, 2, num_iters=12)
    >>> bool(np.all(np.abs(r.mean - 1.5) < 0.2))
    True
    """
    if not 0 < num_elite <= population:
        raise ValueError(f"num_elite must be in [1, population={population}], got {num_elite}")
    mean, sd = np.zeros(dim), np.ones(dim)
    best, best_lp, history = mean, -np.inf, []
    for k in jax.random.split(key, num_iters):
        u = mean + sd * np.asarray(jax.random.normal(k, (population, dim)))
        lp = np.asarray(logdensity_batch(jnp.asarray(u, jnp.float32)), dtype=np.float64)
        lp = np.where(np.isfinite(lp), lp, -np.inf)
        order = np.argsort(-lp, kind="stable")
        if lp[order[0]] > best_lp:
            best, best_lp = u[order[0]], float(lp[order[0]])
        elite = u[order[:num_elite]]
        mean, sd = elite.mean(axis=0), np.maximum(elite.std(axis=0), min_sd)
        history.append(best_lp)
    return SearchResult(best, best_lp, mean, sd, np.asarray(history))


# ------------------------------------------------------------------------------ forward model
def make_eeg_model(
    key: PRNGKey,
    config: EEGConfig | None = None,
    params: tuple[ParamSpec, ...] = PARAMS,
) -> EEGModel:
    """Build the forward model: connectome, simulator, fixed noise, lead field and spectra.

    Parameters
    ----------
    key:
        PRNG key of the simulation noise (held fixed) and of the burn-in run.
    config:
        :class:`EEGConfig` (default settings when ``None``).
    params:
        The unknowns, in the order of ``theta``; names ``"coupling.a"``,
        ``"network.speed"`` or ``"model.<JansenRitParams field>"``.

    Returns
    -------
    EEGModel

    Examples
    --------
    >>> m = make_eeg_model(jax.random.key(0), EEGConfig(analysis_ms=512.0))  # doctest: +SKIP
    >>> m.predict(jnp.array([12.0, 7.0, 0.21, 3.35])).shape  # doctest: +SKIP
    (19, 21)
    """
    import vbinfer as vb
    from vbinfer.coupling import SigmoidalJansenRitParams, sigmoidal_jansen_rit
    from vbinfer.datasets import load_hagmann84, load_leadfield_1020
    from vbinfer.models import JansenRitParams, jansen_rit
    from vbinfer.models.jansen_rit import jansen_rit_eeg
    from vbinfer.observe import log_psd

    cfg = EEGConfig() if config is None else config
    _check_config(cfg)
    model_fields = JansenRitParams._fields
    for p in params:
        group, _, field = p.name.partition(".")
        ok = p.name in ("coupling.a", "network.speed") or (
            group == "model" and field in model_fields
        )
        if not ok:
            raise ValueError(
                f"params: unknown parameter {p.name!r}; use 'coupling.a', 'network.speed' or "
                f"'model.<field>' with a field of {model_fields}"
            )
        if p.kind not in ("lognormal", "normal"):
            raise ValueError(f"params: kind must be 'lognormal' or 'normal', got {p.kind!r}")

    conn = load_hagmann84().normalized("row")
    w = np.where(conn.weights > cfg.weight_threshold, conn.weights, 0.0)
    net = vb.to_sparse(
        vb.make_network(w, conn.lengths, speed=_param_loc(params, "network.speed", 6.0))
    )
    lead = load_leadfield_1020()
    gain = jnp.asarray(lead.gain * cfg.dipole_scale, jnp.float32)

    skip = round(cfg.skip_ms / (cfg.dt * cfg.sample_every))
    n_keep = round(cfg.analysis_ms / (cfg.dt * cfg.sample_every))
    num_steps = (skip + n_keep) * cfg.sample_every
    max_lag = math.ceil(float(conn.lengths.max()) / cfg.min_speed / cfg.dt) + 1
    input_sd = cfg.input_sd

    def noise_sigma(p):  # p(t) enters dy4 multiplied by A * a
        return p.model.A * p.model.a * input_sd

    def make_sim(steps: int) -> Any:
        return vb.make_simulator(
            jansen_rit,
            dt=cfg.dt,
            num_steps=steps,
            coupling=sigmoidal_jansen_rit,
            noise=vb.AdditiveNoise(noise_sigma, states=(4,)),
            max_lag=max_lag,
            lag_mode="linear",
            sample_every=cfg.sample_every,
            monitors=[vb.monitors.lead_field(gain, fn=jansen_rit_eeg)],
        )

    sim = make_sim(num_steps)
    burn_steps = round(cfg.burn_in_ms / cfg.dt / cfg.sample_every) * cfg.sample_every
    burn = make_sim(burn_steps)
    k_burn, k_noise = jax.random.split(key)
    noise = jax.random.normal(k_noise, sim.noise_shape(net.n_nodes), jnp.float32)

    def sim_params(theta: Array) -> tuple[Any, Any]:
        model = JansenRitParams()
        cpl = SigmoidalJansenRitParams()
        network = net
        for k, p in enumerate(params):
            group, _, field = p.name.partition(".")
            if group == "model":
                model = model._replace(**{field: theta[k]})
            elif p.name == "coupling.a":
                cpl = cpl._replace(a=theta[k])
            else:
                network = dataclasses.replace(network, speed=theta[k])
        return vb.SimParams(model, cpl), network

    theta_med = jnp.asarray([p.loc for p in params], jnp.float32)
    p_med, net_med = sim_params(theta_med)
    x0 = jnp.asarray(vb.models.base.default_state(jansen_rit, (net.n_nodes,)), jnp.float32)
    init = jax.jit(burn.run)(k_burn, p_med, net_med, x0).final  # keeps its step count: the
    # delay buffer is addressed by it

    def simulate_eeg(theta: Array) -> Array:
        p, network = sim_params(theta)
        return sim.run(noise, p, network, init).outputs["eeg"][skip:]

    fs = 1000.0 / (cfg.dt * cfg.sample_every)
    freqs = np.arange(cfg.nperseg // 2 + 1) * fs / cfg.nperseg
    band = np.flatnonzero((freqs >= cfg.fmin) & (freqs <= cfg.fmax))

    def predict(theta: Array) -> Array:
        _, lp = log_psd(simulate_eeg(theta), fs, cfg.nperseg)
        return lp[band]

    return EEGModel(
        predict=predict,
        simulate_eeg=simulate_eeg,
        freqs=freqs[band],
        ch_names=lead.ch_names,
        params=tuple(params),
        fs=fs,
        config=cfg,
        num_steps=num_steps,
        n_regions=net.n_nodes,
        n_edges=int(np.count_nonzero(w)),
    )


def _param_loc(params: tuple[ParamSpec, ...], name: str, default: float) -> float:
    """The prior location of parameter ``name`` if it is an unknown, else ``default``."""
    for p in params:
        if p.name == name:
            return float(p.loc)
    return float(default)


def _check_config(cfg: EEGConfig) -> None:
    if not (cfg.dt > 0 and cfg.sample_every >= 1):
        raise ValueError(
            f"config: dt must be > 0 and sample_every >= 1, got {cfg.dt}, {cfg.sample_every}"
        )
    n_keep = round(cfg.analysis_ms / (cfg.dt * cfg.sample_every))
    if cfg.nperseg > n_keep:
        raise ValueError(
            f"config: nperseg ({cfg.nperseg} samples) must fit in analysis_ms "
            f"({cfg.analysis_ms} ms = {n_keep} samples)"
        )
    if not 0 <= cfg.fmin < cfg.fmax:
        raise ValueError(f"config: need 0 <= fmin < fmax, got {cfg.fmin}, {cfg.fmax}")
    if not cfg.obs_sd > 0:
        raise ValueError(f"config: obs_sd must be > 0, got {cfg.obs_sd}")


# ------------------------------------------------------------------------------ the workflow
class _Settings(NamedTuple):
    config: EEGConfig
    search_iters: int
    search_population: int
    svi_steps: int
    svi_lr: float
    nuts_warmup: int
    nuts_draws: int
    num_chains: int
    max_tree_depth: int
    num_predictive: int


def _settings(quick: bool, num_samples: int | None) -> _Settings:
    if quick:
        cfg = EEGConfig(analysis_ms=512.0, skip_ms=128.0, nperseg=64, burn_in_ms=500.0)
        s = _Settings(cfg, 8, 48, 100, 0.05, 30, 40, 2, 5, 20)
    else:
        s = _Settings(EEGConfig(), 8, 48, 200, 0.05, 50, 100, 2, 6, 40)
    if num_samples is not None:
        s = s._replace(nuts_draws=num_samples)
    return s


def run(
    out_dir: str | Path | None = None,
    *,
    seed: int = 0,
    num_samples: int | None = None,
    backend: str = "both",
    quick: bool = False,
    progress: bool = True,
) -> WorkflowReport:
    """Simulate EEG spectra of a Jansen-Rit network and recover four of its parameters.

    Steps (module docstring for the model and the stages): build the forward model, simulate
    the data at the true parameters (:data:`PARAMS`) and add the observation noise, locate
    the mode by a cross-entropy search, fit a full-rank Gaussian by SVI around it, then
    (``backend`` ``"both"`` or ``"nuts"``) run NUTS in the coordinates whitened by that fit;
    summarise, plot, write.

    Recovery criteria (``report.passed``), for every parameter of every backend run:
    ``z < 3`` and shrinkage above 0.5; for NUTS also R-hat below 1.05 and bulk ESS above 50.

    Parameters
    ----------
    out_dir:
        Folder for ``spectra.png`` (fitted against observed spectrum per channel),
        ``posteriors.png``, ``shrinkage_z.png``, ``results.npz`` (data, predictions, samples)
        and ``report.json``; ``None`` writes nothing.
    seed:
        Seed of every random draw (simulation noise, observation noise, search, SVI, chains).
    num_samples:
        NUTS draws per chain (default 100, quick 40), after 50 (quick 30) warm-up steps
        (enough in the whitened coordinates: the adapted step size is close to 1).
    backend:
        ``"both"`` (default), ``"nuts"`` or ``"svi"``.
    quick:
        A smoke run of about 45 s: 0.5 s of EEG (10 frequencies at 3.9 Hz resolution), 100
        SVI steps, 30 + 40 NUTS steps per chain. Its posterior is wider and less Gaussian,
        the fits are short, and the recovery criteria are usually not met.
    progress:
        Show progress bars.

    Returns
    -------
    :class:`~vbinfer.workflows.WorkflowReport`: one row per parameter and backend (truth,
    posterior mean, sd, shrinkage, z, R-hat, ESS), metrics (worst z, shrinkage, R-hat, ESS,
    divergences, wall times in s).

    Examples
    --------
    >>> report = run(None, quick=True, progress=False)  # doctest: +SKIP
    >>> [r["parameter"] for r in report.rows][:2]  # doctest: +SKIP
    ['coupling.a', 'network.speed']
    """
    from vbinfer.inference import fit, make_problem

    check_run_options(backend, BACKENDS, num_samples)
    st = _settings(quick, num_samples)
    params = PARAMS
    n_par = len(params)
    k_model, k_obs, k_search, k_svi, k_nuts, k_pred = jax.random.split(jax.random.key(seed), 6)

    t0 = time.perf_counter()
    eeg = make_eeg_model(k_model, st.config, params)
    predict = eeg.predict
    truth = np.array([p.truth for p in params])
    t_build = time.perf_counter() - t0

    def from_u(u: Array) -> Array:
        return predict(to_physical(u, params))

    pred_u = forward_mode_vjp(from_u)
    data_shape = (len(eeg.freqs), len(eeg.ch_names))
    # the data: the noise-free spectrum at the truth plus the likelihood's own noise (what
    # simulate_data would draw; one compiled predict serves this and the predictive checks)
    t0 = time.perf_counter()
    predict_jit = jax.jit(predict)
    clean = np.asarray(predict_jit(jnp.asarray(truth, jnp.float32)))
    data = jnp.asarray(
        clean + st.config.obs_sd * np.asarray(jax.random.normal(k_obs, data_shape)), jnp.float32
    )
    t_data = time.perf_counter() - t0

    metrics: dict[str, Any] = {
        "n_regions": eeg.n_regions,
        "n_edges": eeg.n_edges,
        "n_channels": len(eeg.ch_names),
        "n_freqs": len(eeg.freqs),
        "num_steps": eeg.num_steps,
        "dt_ms": st.config.dt,
        "obs_sd": st.config.obs_sd,
        "build_s": t_build,
        "simulate_data_s": t_data,
    }
    fits: dict[str, dict[str, Any]] = {}

    # -- global search (no gradients) ----------------------------------------------------------
    obs_sd = st.config.obs_sd

    def log_posterior(u: Array) -> Array:
        resid = (predict(to_physical(u, params)) - data) / obs_sd
        return -0.5 * jnp.sum(resid**2) - 0.5 * jnp.sum(u**2)

    t0 = time.perf_counter()
    search = cross_entropy_search(
        k_search,
        jax.jit(jax.vmap(log_posterior)),
        n_par,
        num_iters=st.search_iters,
        population=st.search_population,
        num_elite=st.search_population // 4,
    )
    metrics.update(
        search_s=time.perf_counter() - t0,
        search_evaluations=st.search_iters * st.search_population,
        search_best_log_posterior=search.best_logdensity,
    )

    # -- SVI, in coordinates centred on the search: u = centre + spread * w ------------------
    centre = jnp.asarray(search.best, jnp.float32)
    spread = jnp.asarray(np.clip(search.sd, 0.02, 1.0), jnp.float32)
    svi_problem = make_problem(
        {"w": dist.Normal(-centre / spread, 1.0 / spread).to_event(1)},  # u ~ N(0, 1) exactly
        lambda th: pred_u(centre + spread * th["w"]),
        noise_sd=obs_sd,
        data_shape=data_shape,
    )
    svi = fit(
        svi_problem,
        data,
        method="svi",
        key=k_svi,
        guide="full_rank",
        num_steps=st.svi_steps,
        learning_rate=st.svi_lr,
        num_samples=max(1000, st.num_chains * st.nuts_draws),
        progress_bar=progress,
    )
    u_svi = np.asarray(centre) + np.asarray(spread) * svi.flat("w")
    metrics.update(svi_s=svi.wall_time_s, svi_compile_s=svi.compile_time_s)
    metrics["svi_final_loss"] = svi.info["final_loss"]
    if backend in ("both", "svi"):
        fits["svi"] = {"u": u_svi[None]}

    # -- NUTS in whitened coordinates -----------------------------------------------------------
    if backend in ("both", "nuts"):
        m = u_svi.mean(axis=0)
        chol = np.linalg.cholesky(np.cov(u_svi, rowvar=False) + 1e-9 * np.eye(n_par))
        chol_inv = np.tril(np.linalg.inv(chol))  # exactly lower triangular
        m_j, chol_j = jnp.asarray(m, jnp.float32), jnp.asarray(chol, jnp.float32)
        whitened = make_problem(
            {
                "v": dist.MultivariateNormal(
                    jnp.asarray(-chol_inv @ m, jnp.float32),
                    scale_tril=jnp.asarray(chol_inv, jnp.float32),
                )
            },
            lambda th: pred_u(m_j + chol_j @ th["v"]),
            noise_sd=st.config.obs_sd,
            data_shape=data_shape,
        )
        chains = []
        t0 = time.perf_counter()
        for kc in jax.random.split(k_nuts, st.num_chains):  # one after the other (docstring)
            chains.append(
                fit(
                    whitened,
                    data,
                    method="nuts",
                    key=kc,
                    num_warmup=st.nuts_warmup,
                    num_samples=st.nuts_draws,
                    num_chains=1,
                    max_tree_depth=st.max_tree_depth,
                    progress_bar=progress,
                )
            )
        t_nuts = time.perf_counter() - t0
        v = np.concatenate([r.samples["v"] for r in chains], axis=0)  # (chains, draws, n)
        u_nuts = m + v @ chol.T
        div = np.concatenate([r.divergences for r in chains], axis=0)
        nsteps = np.concatenate([r.info["sample_stats"]["num_steps"] for r in chains], axis=0)
        fits["nuts"] = {"u": u_nuts, "divergences": div}
        metrics.update(
            nuts_s=t_nuts,
            nuts_compile_s=float(sum(r.compile_time_s for r in chains)),
            nuts_divergences=int(div.sum()),
            nuts_mean_leapfrog=float(np.mean(nsteps)),
            nuts_step_size=float(np.mean([r.info["step_size"] for r in chains])),
            nuts_draws=int(v.shape[0] * v.shape[1]),
        )

    # -- diagnostics --------------------------------------------------------------------------
    rows, checks = [], []
    for name, f in fits.items():
        theta = np.asarray(to_physical(jnp.asarray(f["u"]), params), dtype=np.float64)
        f["theta"] = theta
        diag = _diagnostics(theta, params, mcmc=name == "nuts")
        for k, p in enumerate(params):
            row = {
                "backend": name,
                "parameter": p.name,
                "truth": p.truth,
                "mean": diag["mean"][k],
                "sd": diag["sd"][k],
                "shrinkage": diag["shrinkage"][k],
                "z": diag["z"][k],
                # R-hat and ESS describe Markov chains; SVI's draws are independent
                "r_hat": float(diag["r_hat"][k]) if name == "nuts" else "-",
                "ess_bulk": float(diag["ess"][k]) if name == "nuts" else "-",
            }
            rows.append(row)
        ok = bool(np.all(diag["z"] < MAX_ABS_Z) and np.all(diag["shrinkage"] > MIN_SHRINKAGE))
        if name == "nuts":
            ok = ok and bool(np.all(diag["r_hat"] < MAX_RHAT) and np.all(diag["ess"] > MIN_ESS))
            metrics.update(
                nuts_max_rhat=float(np.max(diag["r_hat"])),
                nuts_min_ess_bulk=float(np.min(diag["ess"])),
            )
        metrics[f"{name}_max_z"] = float(np.max(diag["z"]))
        metrics[f"{name}_min_shrinkage"] = float(np.min(diag["shrinkage"]))
        checks.append(ok)
    metrics["criteria"] = (
        f"every parameter: z < {MAX_ABS_Z:g}, shrinkage > {MIN_SHRINKAGE:g}; NUTS also "
        f"R-hat < {MAX_RHAT:g}, bulk ESS > {MIN_ESS:g}"
    )

    # -- posterior predictive ---------------------------------------------------------------------
    t0 = time.perf_counter()
    predictive = {}
    for name, f in fits.items():
        flat = f["theta"].reshape(-1, n_par)
        idx = np.linspace(0, len(flat) - 1, min(st.num_predictive, len(flat))).astype(int)
        pred = np.stack([np.asarray(predict_jit(jnp.asarray(t, jnp.float32))) for t in flat[idx]])
        noise = st.config.obs_sd * np.asarray(
            jax.random.normal(jax.random.fold_in(k_pred, len(predictive)), pred.shape)
        )
        predictive[name] = {"mean": pred, "predictive": pred + noise}
    metrics["predictive_s"] = time.perf_counter() - t0

    report = WorkflowReport("eeg", rows, metrics, [], all(checks) if checks else None)
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        report.files = _write(out, eeg, np.asarray(data), np.asarray(clean), fits, predictive)
        report.files.append(report.save_json(out / "report.json"))
    return report


# ----------------------------------------------------------------------------- helpers of run
def _diagnostics(
    theta: np.ndarray, params: tuple[ParamSpec, ...], mcmc: bool
) -> dict[str, np.ndarray]:
    """Per-parameter summaries of ``theta`` ``(chains, draws, n_params)`` in physical units."""
    import arviz as az

    flat = theta.reshape(-1, theta.shape[-1])
    mean = flat.mean(axis=0)
    sd = flat.std(axis=0, ddof=1)
    var_prior = np.array([prior_sd(p) ** 2 for p in params])
    truth = np.array([p.truth for p in params])
    out = {
        "mean": mean,
        "sd": sd,
        "shrinkage": 1.0 - sd**2 / var_prior,
        "z": np.abs(mean - truth) / sd,
        "r_hat": np.full(len(params), np.nan),
        "ess": np.full(len(params), np.nan),
    }
    if mcmc:
        ds = az.convert_to_dataset({"theta": theta})
        out["r_hat"] = np.asarray(az.rhat(ds)["theta"])
        out["ess"] = np.asarray(az.ess(ds, method="bulk")["theta"])
    return out


def _figure(
    nrows: int, ncols: int, figsize: tuple[float, float], **kw: Any
) -> tuple[Any, np.ndarray]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.subplots(nrows, ncols, squeeze=False, **kw)


def _plot_spectra(eeg: EEGModel, data: np.ndarray, clean: np.ndarray, predictive: dict) -> Any:
    fig, axes = _figure(5, 5, figsize=(13, 11), sharex=True, sharey=True)
    for ax in axes.ravel():
        ax.set_visible(False)
    colours = {"nuts": "C0", "svi": "C1"}
    for c, ch in enumerate(eeg.ch_names):
        ax = axes[_GRID.get(ch, (4, 4))]
        ax.set_visible(True)
        for name, pr in predictive.items():
            lo, hi = np.percentile(pr["predictive"][:, :, c], [5, 95], axis=0)
            ax.fill_between(eeg.freqs, lo, hi, color=colours[name], alpha=0.25, lw=0)
            ax.plot(
                eeg.freqs,
                np.median(pr["mean"][:, :, c], axis=0),
                color=colours[name],
                lw=1.2,
                label=f"{name.upper()} fit (5-95 % predictive)",
            )
        ax.plot(eeg.freqs, clean[:, c], color="k", lw=0.8, ls="--", label="truth (noise-free)")
        ax.plot(eeg.freqs, data[:, c], "k.", ms=3, label="observed")
        ax.set_title(ch, fontsize=9)
    for ax in axes[4]:
        ax.set_xlabel("frequency (Hz)")
    for ax in axes[:, 0]:
        ax.set_ylabel("log10 PSD (uV^2/Hz)")
    handles, labels = axes[0, 1].get_legend_handles_labels()
    corner = axes[0, 0]
    corner.set_visible(True)
    corner.axis("off")
    corner.legend(handles, labels, fontsize=7, loc="center")
    fig.suptitle("EEG spectra per channel: observed and fitted (10-20 layout)")
    fig.tight_layout()
    return fig


def _plot_posteriors(params: tuple[ParamSpec, ...], fits: dict, rng: np.random.Generator) -> Any:
    """Top row: prior against posteriors over the prior's range; bottom row: the posteriors."""
    n = len(params)
    fig, axes = _figure(2, n, figsize=(3.2 * n, 5.0))
    prior = np.asarray(to_physical(jnp.asarray(rng.standard_normal((20000, n))), params))
    colours = {"nuts": "C0", "svi": "C1"}
    for k, p in enumerate(params):
        lo, hi = np.percentile(prior[:, k], [0.5, 99.5])
        draws = {name: f["theta"][..., k].ravel() for name, f in fits.items()}
        top, bottom = axes[0, k], axes[1, k]
        top.hist(prior[:, k], bins=60, range=(lo, hi), density=True, histtype="step",
                 color="gray", label="prior")  # fmt: skip
        allpost = np.concatenate(list(draws.values()))
        m, s = allpost.mean(), allpost.std()
        zoom = (min(m - 4 * s, p.truth - s), max(m + 4 * s, p.truth + s))
        for name, d in draws.items():
            top.hist(d, bins=40, density=True, alpha=0.5, color=colours[name], label=name.upper())
            bottom.hist(d, bins=30, range=zoom, density=True, alpha=0.5, color=colours[name])
        for ax in (top, bottom):
            ax.axvline(p.truth, color="k", lw=1.5, label="truth")
            ax.set_yticks([])
        top.set_title(f"{p.name} ({p.label})", fontsize=8)
        bottom.set_title("posteriors (zoom)", fontsize=7)
        bottom.set_xlabel(p.units, fontsize=8)
        bottom.tick_params(axis="x", labelsize=7)
    axes[0, 0].legend(fontsize=6)
    fig.tight_layout()
    return fig


def _plot_shrinkage_z(rows: list[dict[str, Any]], params: tuple[ParamSpec, ...]) -> Any:
    fig, axes = _figure(1, 1, figsize=(5.5, 4))
    ax = axes[0, 0]
    markers = {"nuts": "o", "svi": "s"}
    colour = {p.name: f"C{k}" for k, p in enumerate(params)}
    for r in rows:
        ax.scatter(r["shrinkage"], r["z"], marker=markers[r["backend"]], s=36,
                   color=colour[r["parameter"]], alpha=0.8,
                   label=f"{r['parameter']} ({r['backend'].upper()})")  # fmt: skip
    ax.axhline(MAX_ABS_Z, color="gray", lw=0.8, ls=":")
    ax.axvline(MIN_SHRINKAGE, color="gray", lw=0.8, ls=":")
    ax.set_xlim(min(0.0, ax.get_xlim()[0]), 1.02)
    ax.set_ylim(0, max(MAX_ABS_Z * 1.2, ax.get_ylim()[1]))
    ax.set_xlabel("posterior shrinkage")
    ax.set_ylabel("posterior z-score")
    ax.legend(fontsize=6, loc="upper left")
    fig.tight_layout()
    return fig


def _write(
    out: Path, eeg: EEGModel, data: np.ndarray, clean: np.ndarray, fits: dict, predictive: dict
) -> list[Path]:
    files = []
    fig = _plot_spectra(eeg, data, clean, predictive)
    files.append(out / "spectra.png")
    fig.savefig(files[-1], dpi=90)
    fig = _plot_posteriors(eeg.params, fits, np.random.default_rng(0))
    files.append(out / "posteriors.png")
    fig.savefig(files[-1], dpi=90)
    rows = []
    for name, f in fits.items():
        d = _diagnostics(f["theta"], eeg.params, mcmc=False)
        rows += [
            {"backend": name, "parameter": p.name, "shrinkage": d["shrinkage"][k], "z": d["z"][k]}
            for k, p in enumerate(eeg.params)
        ]
    fig = _plot_shrinkage_z(rows, eeg.params)
    files.append(out / "shrinkage_z.png")
    fig.savefig(files[-1], dpi=90)
    arrays = {
        "freqs": eeg.freqs,
        "ch_names": np.array(eeg.ch_names),
        "observed": data,
        "truth_spectrum": clean,
        "param_names": np.array([p.name for p in eeg.params]),
        "truth": np.array([p.truth for p in eeg.params]),
    }
    for name, f in fits.items():
        arrays[f"{name}/samples"] = f["theta"]
        arrays[f"{name}/predicted_mean"] = predictive[name]["mean"]
    files.append(out / "results.npz")
    np.savez_compressed(files[-1], **arrays)
    return files
