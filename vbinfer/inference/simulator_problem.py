"""Problems built around a vbinfer network simulator.

Unknowns are named by where they live: ``"model.eta"``, ``"coupling.a"``, ``"network.speed"``,
``"network.weights"``, ``"init"`` (the initial state). Each gets a numpyro prior; the rest of the
parameters stay at ``base_params``. The simulation noise is either held fixed (a pre-drawn array,
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

from vbinfer.inference.problem import Problem, guard_finite
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
    priors: Mapping[str, dist.Distribution],
    observe: Callable[[SimResult], jax.Array],
    *,
    noise: str | jax.Array | None = None,
    init: jax.Array | None = None,
    noise_sd: float | dist.Distribution = 1.0,
    data_shape: tuple[int, ...] | None = None,
    truth: Mapping[str, Any] | None = None,
) -> Problem:
    """A :class:`~vbinfer.inference.problem.Problem` whose prediction is ``observe(run)``.

    Parameters
    ----------
    simulator, network, base_params:
        What to simulate; unknowns replace fields of ``base_params`` / ``network``.
    priors:
        ``{"model.eta": dist.Normal(-5, 1), "coupling.a": dist.HalfNormal(1), ...}``; per-node
        vectors with ``.expand([n_nodes]).to_event(1)``.
    observe:
        ``observe(result) -> prediction``, e.g. a temporal average, a log power spectrum of an
        EEG projection (:mod:`vbinfer.observe`) or an FC matrix.
    noise:
        ``None`` for a deterministic simulator; an array of pre-drawn standard normals (held
        fixed); ``"sample"`` to infer the noise as the latent site ``"sim_noise"``; or a PRNG
        key (the same noise for every evaluation).
    init:
        Initial state (default: the model's) unless ``"init"`` has a prior.
    noise_sd, data_shape, truth:
        As :func:`~vbinfer.inference.problem.make_problem`.
    """
    n_nodes = network.n_nodes
    n_states = simulator.model.n_states
    for name, d in priors.items():
        _check_name(name, base_params, network)
        if not isinstance(d, dist.Distribution):
            raise ValueError(
                f"priors[{name!r}] must be a numpyro Distribution, got {type(d).__name__}"
            )
        shape = tuple(d.shape())
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

    def model(data=None):
        values = {name: numpyro.sample(name, d) for name, d in priors.items()}
        p, net, x0 = with_values(base_params, network, init, values)
        if sample_noise:
            shape = simulator.noise_shape(n_nodes)
            z = numpyro.sample("sim_noise", dist.Normal(jnp.zeros(shape), 1.0).to_event(len(shape)))
        else:
            z = noise
        pred = guard_finite(observe(simulator.run(z, p, net, x0)))
        sd = numpyro.sample("noise_sd", noise_sd) if infer_sd else noise_sd
        numpyro.sample("obs", dist.Normal(pred, sd), obs=data)

    names = (
        tuple(priors)
        + (("sim_noise",) if sample_noise else ())
        + (("noise_sd",) if infer_sd else ())
    )
    truth_arr = None if truth is None else {k: jnp.asarray(v) for k, v in truth.items()}
    return Problem(
        model, names, "obs", None if data_shape is None else tuple(data_shape), truth_arr
    )
