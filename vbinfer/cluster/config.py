"""TOML job files for ``vbinfer sweep`` and ``vbinfer sbc``.

A job file names what to run (a network model, or a Python factory), the grid or the priors,
the sizes and the output store. :func:`load_config` reads one; :func:`sweep_job` and
:func:`sbc_job` turn the parsed dictionary into the arguments of
:func:`~vbinfer.cluster.sweep` and :func:`~vbinfer.cluster.sbc` (pure, testable, no run).
See ``examples/sweep.toml`` and ``examples/sbc.toml``, and ``docs/cluster.md`` for every key.

Sections
--------
``[simulation]`` (a network model):
    ``model`` (name in :mod:`vbinfer.models`, e.g. ``"mpr"``), ``coupling`` (``"linear"``,
    ``"difference"``, ``"sigmoidal_jansen_rit"``, ``"kuramoto"``), ``connectome``
    (``"hagmann84"``, ``"hcp80"`` or an ``.npz`` path), ``normalize`` (default ``"max"``),
    ``regions`` (keep the first N), ``dt`` and ``duration`` (ms), ``sample_every`` (steps),
    ``speed`` (mm/ms; omit for no delays), ``integrator``, ``noise`` (sigma),
    ``noise_states`` and ``delay_kernel`` (``"auto"``, ``"ffi"``, ``"xla"``; an SBC job with
    ``method = "laplace"`` defaults to ``"xla"``, whose delays are twice differentiable).
``[params]``: fixed values, ``"model.eta" = -4.6``, ``"coupling.a" = 0.5``.
``[grid]`` (sweep): ``name = [values]`` or ``{start, stop, num}`` (``log = true`` for a
    geometric range); names ``"model.<field>"``, ``"coupling.<field>"``, ``"network.speed"``.
``[output]`` (sweep): ``summaries`` of the temporal average after ``skip`` ms: ``"mean"`` and
    ``"std"`` (per state and region), ``"fc"`` (FC of state ``fc_state``), ``"diverged"``.
``[priors]`` (sbc): ``name = {dist = "Normal", loc = ..., scale = ...}``: any
    ``numpyro.distributions`` class and its arguments; ``expand = N`` for per-region vectors.
``[observation]`` (sbc): ``state``, ``skip`` (ms), ``noise_sd``: data are the time-mean of
    state ``state`` per region plus Gaussian noise of sd ``noise_sd``.
``[inference]`` (sbc): ``method``, ``num_replicates``, ``num_warmup``, ``num_samples``,
    ``thin``, ``laplace_steps``.
``[function]`` / ``[problem]``: instead of ``[simulation]``, ``target = "pkg.module:factory"``
    and ``args = {...}``: ``factory(**args)`` returns the sweep function (``keyed = true`` if it
    takes a key first) or the SBC :class:`~vbinfer.inference.Problem`.
``[run]``: ``seed``, ``chunk_size``, ``store``, ``retries``.
"""

from __future__ import annotations

import importlib
import math
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

__all__ = ["SBCJob", "SweepJob", "grid_from_config", "load_config", "sbc_job", "sweep_job"]

_COUPLINGS = ("linear", "difference", "sigmoidal_jansen_rit", "kuramoto")
_SWEEPABLE_GROUPS = ("model", "coupling")


class SweepJob(NamedTuple):
    """Arguments of :func:`~vbinfer.cluster.sweep` built from a job file."""

    fn: Callable
    grid: dict[str, np.ndarray]
    seed: int | None
    chunk_size: int
    store: str
    retries: int
    settings: dict[str, Any]


class SBCJob(NamedTuple):
    """Arguments of :func:`~vbinfer.cluster.sbc` built from a job file."""

    problem: Any
    num_replicates: int
    method: str
    seed: int
    chunk_size: int
    store: str
    retries: int
    options: dict[str, Any]


def load_config(path: str | Path) -> dict[str, Any]:
    """Parse a TOML job file (``ValueError`` naming the file on a syntax error)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"config: no such file {path}")
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"config {path}: invalid TOML: {e}") from e


def _section(cfg: Mapping[str, Any], name: str, required: bool = True) -> dict[str, Any]:
    sec = cfg.get(name)
    if sec is None:
        if required:
            raise ValueError(f"config: missing section [{name}]")
        return {}
    if not isinstance(sec, Mapping):
        raise ValueError(f"config: [{name}] must be a table, got {type(sec).__name__}")
    return dict(sec)


def _get(sec: Mapping[str, Any], where: str, key: str, kind: type | tuple, default: Any = ...):
    if key not in sec:
        if default is ...:
            raise ValueError(f"config: [{where}] needs {key!r}")
        return default
    v = sec[key]
    ok = isinstance(v, kind) and not (isinstance(v, bool) and kind in (int, float, (int, float)))
    if not ok:
        raise ValueError(f"config: [{where}] {key} must be {kind}, got {v!r}")
    return v


def _unknown(sec: Mapping[str, Any], where: str, known: set[str]) -> None:
    extra = set(sec) - known
    if extra:
        raise ValueError(
            f"config: [{where}] has unknown keys {sorted(extra)}; known: {sorted(known)}"
        )


def grid_from_config(grid: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """``{name: values}`` from a ``[grid]`` table: lists, or ``{start, stop, num[, log]}``.

    Examples
    --------
    >>> grid_from_config({"a": [1, 2], "b": {"start": 0.0, "stop": 1.0, "num": 3}})["b"]
    array([0. , 0.5, 1. ])
    """
    if not grid:
        raise ValueError("config: [grid] is empty; give at least one parameter")
    out = {}
    for name, spec in grid.items():
        if isinstance(spec, list):
            out[name] = np.asarray(spec, dtype=float)
        elif isinstance(spec, Mapping):
            _unknown(spec, f"grid.{name}", {"start", "stop", "num", "log"})
            start = float(_get(spec, f"grid.{name}", "start", (int, float)))
            stop = float(_get(spec, f"grid.{name}", "stop", (int, float)))
            num = _get(spec, f"grid.{name}", "num", int)
            if num < 1:
                raise ValueError(f"config: [grid] {name}.num must be >= 1, got {num}")
            if spec.get("log", False):
                if start <= 0 or stop <= 0:
                    raise ValueError(f"config: [grid] {name}: log ranges need start, stop > 0")
                out[name] = np.geomspace(start, stop, num)
            else:
                out[name] = np.linspace(start, stop, num)
        else:
            raise ValueError(
                f"config: [grid] {name} must be a list of values or {{start, stop, num}}, got {spec!r}"
            )
    return out


def _import(target: str, where: str) -> Callable:
    mod, _, attr = target.partition(":")
    if not mod or not attr:
        raise ValueError(f"config: [{where}] target must be 'package.module:name', got {target!r}")
    try:
        obj = importlib.import_module(mod)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"config: [{where}] cannot import {target!r}: {e}") from e
    if not callable(obj):
        raise ValueError(f"config: [{where}] target {target!r} is not callable")
    return obj


class _Network(NamedTuple):
    simulator: Any
    network: Any
    params: Any
    noisy: bool
    n_nodes: int
    n_states: int
    sample_dt: float


def _connectome(sim: Mapping[str, Any]):
    from vbinfer import datasets

    name = _get(sim, "simulation", "connectome", str, "hagmann84")
    loaders = {"hagmann84": datasets.load_hagmann84, "hcp80": datasets.load_hcp80}
    conn = loaders[name]() if name in loaders else datasets.load_npz(name)
    conn = conn.normalized(_get(sim, "simulation", "normalize", str, "max"))
    n = _get(sim, "simulation", "regions", int, conn.n_regions)
    if not 1 <= n <= conn.n_regions:
        raise ValueError(f"config: [simulation] regions must be in 1..{conn.n_regions}, got {n}")
    return conn.weights[:n, :n], conn.lengths[:n, :n]


def _build_network(
    cfg: Mapping[str, Any], speeds: np.ndarray | None, delay_kernel: str = "auto"
) -> _Network:
    from vbinfer import coupling as cpl
    from vbinfer import models, network, noise, simulate

    sim = _section(cfg, "simulation")
    _unknown(
        sim,
        "simulation",
        {"model", "coupling", "connectome", "normalize", "regions", "dt", "duration",
         "sample_every", "speed", "integrator", "noise", "noise_states", "delay_kernel"},
    )  # fmt: skip
    mname = _get(sim, "simulation", "model", str)
    model = getattr(models, mname, None)
    if not isinstance(model, models.Model):
        known = sorted(k for k in dir(models) if isinstance(getattr(models, k), models.Model))
        raise ValueError(f"config: [simulation] model {mname!r} unknown; known: {known}")
    cname = _get(sim, "simulation", "coupling", str, "linear")
    if cname not in _COUPLINGS:
        raise ValueError(
            f"config: [simulation] coupling must be one of {_COUPLINGS}, got {cname!r}"
        )
    coupling = getattr(cpl, cname)
    weights, lengths = _connectome(sim)
    dt = float(_get(sim, "simulation", "dt", (int, float)))
    duration = float(_get(sim, "simulation", "duration", (int, float)))
    sample_every = _get(sim, "simulation", "sample_every", int, 1)
    if dt <= 0 or duration <= 0 or sample_every < 1:
        raise ValueError(
            f"config: [simulation] needs dt > 0, duration > 0, sample_every >= 1; got {dt}, "
            f"{duration}, {sample_every}"
        )
    num_steps = round(duration / dt)
    num_steps -= num_steps % sample_every
    if num_steps < sample_every:
        raise ValueError(f"config: [simulation] duration {duration} ms is shorter than one sample")
    speed = sim.get("speed")
    if speed is not None:
        speed = float(speed)
        slowest = speed if speeds is None else float(np.min(speeds))
        max_lag = network.max_lag_steps(lengths, slowest, dt)
        net = network.make_network(weights, lengths, speed=speed)
    else:
        if speeds is not None:
            raise ValueError("config: sweeping network.speed needs [simulation] speed (delays)")
        max_lag = None
        net = network.make_network(weights)
    sigma = float(_get(sim, "simulation", "noise", (int, float), 0.0))
    nz = None
    if sigma > 0:
        states = sim.get("noise_states")
        nz = noise.AdditiveNoise(sigma, states=None if states is None else tuple(states))
    simulator = simulate.make_simulator(
        model,
        dt=dt,
        num_steps=num_steps,
        coupling=coupling,
        integrator=_get(sim, "simulation", "integrator", str, "heun"),
        noise=nz,
        max_lag=max_lag,
        sample_every=sample_every,
        delay_kernel=_get(sim, "simulation", "delay_kernel", str, delay_kernel),
    )
    fixed = _section(cfg, "params", required=False)
    params = simulate.SimParams(model.params_cls(), coupling.params_cls())
    params, net = _apply(params, net, fixed, "params")
    return _Network(
        simulator, net, params, nz is not None, weights.shape[0], model.n_states, dt * sample_every
    )


def _check_param_name(name: str, params: Any, where: str) -> None:
    group, _, field = name.partition(".")
    if name == "network.speed":
        return
    owner = {"model": params.model, "coupling": params.coupling}.get(group)
    if owner is None or field not in owner._fields:
        raise ValueError(
            f"config: [{where}] unknown parameter {name!r}; use 'model.<field>' "
            f"({params.model._fields}), 'coupling.<field>' ({params.coupling._fields}) or "
            "'network.speed'"
        )


def _apply(params: Any, net: Any, values: Mapping[str, Any], where: str):
    from vbinfer.inference.simulator_problem import with_values

    for name in values:
        _check_param_name(name, params, where)
    p, n, _ = with_values(params, net, None, dict(values))
    return p, n


def _skip_samples(skip_ms: float, sample_dt: float, num_samples: int, where: str) -> int:
    k = math.ceil(skip_ms / sample_dt)
    if not 0 <= k < num_samples:
        raise ValueError(
            f"config: [{where}] skip={skip_ms} ms leaves no samples (run has {num_samples} "
            f"samples of {sample_dt} ms)"
        )
    return k


def sweep_job(cfg: Mapping[str, Any]) -> SweepJob:
    """Build the sweep of a parsed job file (see the module notes for the keys)."""
    run = _section(cfg, "run", required=False)
    _unknown(run, "run", {"seed", "chunk_size", "store", "retries"})
    grid = grid_from_config(_section(cfg, "grid"))
    seed = run.get("seed")
    settings: dict[str, Any] = {
        k: cfg[k] for k in ("simulation", "params", "output", "function") if k in cfg
    }
    if "function" in cfg:
        fsec = _section(cfg, "function")
        _unknown(fsec, "function", {"target", "args", "keyed"})
        factory = _import(_get(fsec, "function", "target", str), "function")
        fn = factory(**dict(fsec.get("args", {})))
        keyed = bool(fsec.get("keyed", False))
        if keyed and seed is None:
            seed = 0
        if not keyed:
            seed = None
    else:
        import jax.numpy as jnp

        from vbinfer import observe, simulate

        speeds = grid.get("network.speed")
        net = _build_network(cfg, speeds)
        for name in grid:
            _check_param_name(name, net.params, "grid")
        out = _section(cfg, "output", required=False)
        _unknown(out, "output", {"summaries", "skip", "fc_state"})
        summaries = tuple(out.get("summaries", ["mean", "std"]))
        bad = set(summaries) - {"mean", "std", "fc", "diverged"}
        if bad or not summaries:
            raise ValueError(
                f"config: [output] summaries must be among mean, std, fc, diverged; got {summaries}"
            )
        skip = _skip_samples(
            float(out.get("skip", 0.0)), net.sample_dt, net.simulator.num_samples, "output"
        )
        fc_state = _get(out, "output", "fc_state", int, 0)
        if not 0 <= fc_state < net.n_states:
            raise ValueError(f"config: [output] fc_state must be in 0..{net.n_states - 1}")
        sim, base, network0 = net.simulator, net.params, net.network
        if not net.noisy:
            seed = None
        elif seed is None:
            seed = 0

        def fn(*args):
            key, point = (None, args[0]) if len(args) == 1 else args
            p, nw = _apply(base, network0, point, "grid")
            res = sim.run(key, p, nw)
            x = res.outputs["tavg"][skip:]  # (samples, states, regions)
            outs = {}
            if "mean" in summaries:
                outs["mean"] = jnp.mean(x, axis=0)
            if "std" in summaries:
                outs["std"] = jnp.std(x, axis=0)
            if "fc" in summaries:
                outs["fc"] = observe.functional_connectivity(x[:, fc_state])
            if "diverged" in summaries:
                outs["diverged"] = simulate.diverged(res)
            return outs

    chunk_size = _get(run, "run", "chunk_size", int, 64)
    return SweepJob(
        fn,
        grid,
        None if seed is None else int(seed),
        chunk_size,
        str(_get(run, "run", "store", str, "vbinfer-sweep")),
        _get(run, "run", "retries", int, 2),
        settings,
    )


def _prior(name: str, spec: Mapping[str, Any]):
    import numpyro.distributions as dist

    spec = dict(spec)
    dname = spec.pop("dist", None)
    expand = spec.pop("expand", None)
    cls = getattr(dist, dname, None) if isinstance(dname, str) else None
    if not (isinstance(cls, type) and issubclass(cls, dist.Distribution)):
        raise ValueError(
            f"config: [priors] {name}.dist must name a numpyro distribution (e.g. 'Normal'), "
            f"got {dname!r}"
        )
    try:
        d = cls(**spec)
    except TypeError as e:
        raise ValueError(f"config: [priors] {name}: {dname}({spec}) failed: {e}") from e
    if expand is not None:
        d = d.expand([int(expand)]).to_event(1)
    return d


def sbc_job(cfg: Mapping[str, Any]) -> SBCJob:
    """Build the SBC run of a parsed job file (see the module notes for the keys)."""
    run = _section(cfg, "run", required=False)
    _unknown(run, "run", {"seed", "chunk_size", "store", "retries"})
    inf = _section(cfg, "inference")
    _unknown(
        inf,
        "inference",
        {"method", "num_replicates", "num_warmup", "num_samples", "thin", "laplace_steps"},
    )
    if "problem" in cfg:
        psec = _section(cfg, "problem")
        _unknown(psec, "problem", {"target", "args"})
        factory = _import(_get(psec, "problem", "target", str), "problem")
        problem = factory(**dict(psec.get("args", {})))
    else:
        import jax
        import jax.numpy as jnp

        from vbinfer.inference.simulator_problem import simulator_problem

        priors_cfg = _section(cfg, "priors")
        if not priors_cfg:
            raise ValueError("config: [priors] is empty; give at least one prior")
        priors = {name: _prior(name, spec) for name, spec in priors_cfg.items()}
        if "network.speed" in priors:
            raise ValueError("config: [priors] network.speed is not supported by the job file")
        # the Laplace approximation takes a Hessian: second derivatives need XLA's delay path
        method = inf.get("method", "blackjax_nuts")
        net = _build_network(cfg, None, "xla" if method == "laplace" else "auto")
        for name in priors:
            _check_param_name(name, net.params, "priors")
        obs = _section(cfg, "observation", required=False)
        _unknown(obs, "observation", {"state", "skip", "noise_sd"})
        state = _get(obs, "observation", "state", int, 0)
        if not 0 <= state < net.n_states:
            raise ValueError(f"config: [observation] state must be in 0..{net.n_states - 1}")
        skip = _skip_samples(
            float(obs.get("skip", 0.0)), net.sample_dt, net.simulator.num_samples, "observation"
        )
        noise = None
        if net.noisy:  # the same simulation noise for every evaluation (a fixed key)
            noise = jax.random.key(int(run.get("seed", 0)) + 1)
        problem = simulator_problem(
            net.simulator,
            net.network,
            net.params,
            priors,
            lambda res: jnp.mean(res.outputs["tavg"][skip:, state], axis=0),
            noise=noise,
            noise_sd=float(_get(obs, "observation", "noise_sd", (int, float), 0.01)),
            data_shape=(net.n_nodes,),
        )
    options = {
        k: _get(inf, "inference", k, int, d)
        for k, d in (("num_warmup", 300), ("num_samples", 400), ("thin", 4), ("laplace_steps", 100))
    }
    return SBCJob(
        problem,
        _get(inf, "inference", "num_replicates", int),
        _get(inf, "inference", "method", str, "blackjax_nuts"),
        int(_get(run, "run", "seed", int, 0)),
        _get(run, "run", "chunk_size", int, 50),
        str(_get(run, "run", "store", str, "vbinfer-sbc")),
        _get(run, "run", "retries", int, 2),
        options,
    )
