"""Problems built around a vbinfer network simulator.

Unknowns are named by where they live: ``"model.eta"``, ``"coupling.a"``, ``"network.speed"``,
``"network.weights"``, ``"init"`` (the initial state). Each gets a numpyro prior; the rest of the
parameters stay at ``base_params``. Priors are a mapping ``{name: distribution}`` or a prior
function returning named values (hierarchical priors, see :mod:`vbinfer.inference.problem`).
The simulation noise is either held fixed (a pre-drawn array,
so the likelihood is a deterministic function of the unknowns), sampled as a latent standard
normal array (site ``"sim_noise"``), or drawn from a fixed key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist

from vbinfer.inference.problem import (
    Priors,
    Problem,
    checked_problem,
    guard_finite,
    prior_function,
    prior_shapes,
)
from vbinfer.network import Network
from vbinfer.simulate import SimParams, SimResult, Simulator

__all__ = ["simulator_problem", "with_values"]

_GROUPS = ("model", "coupling", "network")


def with_values(
    params: SimParams, network: Network, init: Any, values: Mapping[str, Any]
) -> tuple[SimParams, Network, Any]:
    """Replace named fields (``"model.eta"``, ``"coupling.a"``, ``"network.speed"``, ``"init"``)."""
    model, coupling = params.model, params.coupling
    for name, v in values.items():
        if name == "init":
            init = v
            continue
        group, _, field = name.partition(".")
        if group == "model":
            model = model._replace(**{field: v})
        elif group == "coupling":
            coupling = coupling._replace(**{field: v})
        elif group == "network":
            network = network._replace(**{field: v})
        else:
            raise ValueError(
                f"parameter name {name!r} must start with one of {_GROUPS} or be 'init'"
            )
    return SimParams(model, coupling), network, init


def _check_name(name: str, params: SimParams, network: Network) -> None:
    if name == "init":
        return
    group, _, field = name.partition(".")
    owner = {"model": params.model, "coupling": params.coupling, "network": network}.get(group)
    if owner is None or field not in getattr(owner, "_fields", ()):
        fields = {
            g: getattr(o, "_fields", ())
            for g, o in (
                ("model", params.model),
                ("coupling", params.coupling),
                ("network", network),
            )
        }
        raise ValueError(f"priors: unknown parameter {name!r}; known: 'init' and {fields}")


def simulator_problem(
    simulator: Simulator,
    network: Network,
    base_params: SimParams,
    priors: Priors,
    observe: Callable[[SimResult], jax.Array],
    *,
    noise: str | jax.Array | None = None,
    init: jax.Array | None = None,
    noise_sd: float | dist.Distribution = 1.0,
    data_shape: tuple[int, ...] | None = None,
    truth: Mapping[str, Any] | None = None,
) -> Problem:
    """A :class:`~vbinfer.inference.problem.Problem` whose prediction is ``observe(run)``.

    The data are modelled as ``Normal(observe(run), noise_sd)``, entry by entry.

    Parameters
    ----------
    simulator, network, base_params:
        What to simulate; unknowns replace fields of ``base_params`` / ``network``.
    priors:
        ``{"model.eta": dist.Normal(-5, 1), "coupling.a": dist.HalfNormal(1), ...}``; per-node
        vectors with ``.expand([n_nodes]).to_event(1)``. Or a prior function ``() -> {name:
        value}`` written with ``numpyro.sample`` for hierarchical priors, e.g. per-node
        ``"model.eta" ~ Normal(mu, tau)`` with priors on ``mu`` and ``tau`` (which become
        unknowns too).
    observe:
        ``observe(result) -> prediction``, e.g. one of :mod:`vbinfer.inference.likelihoods`
        (time series, log power spectrum, functional connectivity) or any function of the
        :class:`~vbinfer.simulate.SimResult`.
    noise:
        ``None`` for a deterministic simulator; an array of pre-drawn standard normals (held
        fixed); ``"sample"`` to infer the noise as the latent site ``"sim_noise"``; or a PRNG
        key (the same noise for every evaluation).
    init:
        Initial state (default: the model's) unless ``"init"`` has a prior.
    noise_sd:
        Observation noise sd: a known number, or a prior distribution to infer it (site
        ``"noise_sd"``).
    data_shape:
        Shape of the data (default: the shape of ``observe(run)``, found by an abstract trace).
    truth:
        True values of latent sites, for simulation studies.

    Examples
    --------
    >>> import jax, numpyro.distributions as dist, vbinfer as vb
    >>> sim = vb.make_simulator(vb.models.mpr, dt=0.01, num_steps=100, sample_every=10)
    >>> net = vb.make_network(jnp.zeros((2, 2)))
    >>> p = simulator_problem(sim, net, vb.SimParams(vb.models.MPRParams()),
    ...                       {"model.eta": dist.Normal(-5.0, 1.0)},
    ...                       lambda r: r.outputs["tavg"][:, 0])
    >>> p.param_names, p.data_shape
    (('model.eta',), (10, 2))
    """
    n_nodes = network.n_nodes
    n_states = simulator.model.n_states
    prior_fn = prior_function(priors)
    for name, shape in prior_shapes(priors).items():
        _check_name(name, base_params, network)
        if name == "init":
            allowed = [(n_states, n_nodes)]
        elif name in ("network.weights", "network.lengths"):
            allowed = [(n_nodes, n_nodes)]
        elif name == "network.speed":
            allowed = [()]
        else:
            allowed = [(), (n_nodes,)]
        if shape not in allowed:
            raise ValueError(
                f"priors[{name!r}] has shape {shape}; expected one of {allowed} for a network of "
                f"{n_nodes} nodes (use .expand([{n_nodes}]).to_event(1) for per-node values)"
            )
    sample_noise = isinstance(noise, str)
    if sample_noise and noise != "sample":
        raise ValueError(f"noise must be None, an array, a PRNG key or 'sample', got {noise!r}")
    infer_sd = isinstance(noise_sd, dist.Distribution)
    if not infer_sd and not float(noise_sd) > 0:
        raise ValueError(f"noise_sd must be > 0 or a prior distribution, got {noise_sd!r}")

    def model(data=None):
        values = prior_fn()
        p, net, x0 = with_values(base_params, network, init, values)
        if sample_noise:
            shape = simulator.noise_shape(n_nodes)
            z = numpyro.sample("sim_noise", dist.Normal(jnp.zeros(shape), 1.0).to_event(len(shape)))
        else:
            z = noise
        pred = guard_finite(observe(simulator.run(z, p, net, x0)))
        sd = numpyro.sample("noise_sd", noise_sd) if infer_sd else noise_sd
        numpyro.sample("obs", dist.Normal(pred, sd), obs=data)

    return checked_problem(model, "obs", data_shape, truth)
