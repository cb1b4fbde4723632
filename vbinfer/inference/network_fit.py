"""Fits of many network parameters: per-region parameters and every nonzero connectome weight.

A thin layer over :func:`vbinfer.inference.fit`: :func:`make_network_problem` turns a simulator,
a base parameter set and a target (an FC matrix, a log power spectrum or any array) into an
ordinary :class:`~vbinfer.inference.problem.Problem` whose unknowns are

- ``"global"`` parameters (one scalar, e.g. ``"coupling.a"``),
- ``"per_region"`` parameters (one value per node, e.g. ``"model.eta"``),
- connectome entries (``"network.weights"`` or ``"network.lengths"``): every nonzero entry
  (``"nonzero"``), every nonzero pair of a symmetric matrix (``"symmetric"``), or the entries of
  a boolean mask ``(n_nodes, n_nodes)``.

Each unknown lives in unconstrained coordinates through a numpyro bijection
(:mod:`vbinfer.inference.transforms`; connectome entries are positive through ``exp`` by
default) and is stored as an *offset* from the base value, ``value = T(T^-1(base) + offset)``, so
that the MAP backend's restarts, drawn uniformly in ``[-init_radius, init_radius]`` of the
offsets, are jittered copies of the base point. :func:`fit_network` runs the MAP backend (optax,
restarts as one vmapped batch) and returns the best start, its loss trace and every start's final
loss. The problem also works with ``method="laplace"`` and with the identifiability tools
(:mod:`vbinfer.inference.identifiability`).

Losses (``loss=``), on the prediction ``observe(simulation)``:

- ``"fc"``: mean squared error of the upper triangles of the simulated and the target FC;
- ``"fc_corr"``: ``1 -`` the Pearson correlation of the upper triangles;
- ``"psd"``: mean squared error of ``log10`` Welch power spectra, ``(n_freq, n_nodes)``;
- ``"mse"``: mean squared error of ``observe(simulation)`` and the target (time series,
  covariances, ...);
- a callable ``loss_fn(prediction, target) -> scalar``.

The squared-error losses are written as a Gaussian likelihood with variance ``m / 2`` (``m``
the number of compared entries) and its normalising constant removed, so that the reported
loss is exactly the mean squared error and the Gauss-Newton Fisher information is defined;
give ``noise_sd`` for a likelihood with a known noise level instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.distributions import constraints

from vbinfer._typing import Array, ArrayLike
from vbinfer.inference.fit import fit
from vbinfer.inference.problem import Problem
from vbinfer.inference.result import FitResult
from vbinfer.inference.simulator_problem import with_values
from vbinfer.inference.transforms import as_constraint, make_transform, to_unconstrained
from vbinfer.network import Network
from vbinfer.observe import fc_corr, fc_upper, functional_connectivity, log_psd
from vbinfer.simulate import SimParams, SimResult, Simulator

__all__ = [
    "LOSSES",
    "MODES",
    "NetworkFit",
    "NetworkProblem",
    "fit_network",
    "make_network_problem",
]

LOSSES = ("fc", "fc_corr", "psd", "mse")
"""Named losses of :func:`make_network_problem` (a callable is accepted too)."""

MODES = ("global", "per_region", "nonzero", "symmetric")
"""How a parameter is freed: one scalar, one value per node, every nonzero connectome entry,
every nonzero pair of a symmetric connectome (or a boolean mask for connectome entries)."""

_MATRIX_FIELDS = ("weights", "lengths")
_SQUARED = ("fc", "psd", "mse")


class _Free(NamedTuple):
    name: str
    site: str
    size: int
    constraint: constraints.Constraint
    base_u: np.ndarray  # (size,) or () unconstrained base value
    rows: np.ndarray | None  # connectome entries (for matrices)
    cols: np.ndarray | None
    symmetric: bool
    labels: tuple[str, ...]


class NetworkProblem(NamedTuple):
    """A network fit set up as an inference problem (see :func:`make_network_problem`).

    Attributes
    ----------
    problem: the :class:`~vbinfer.inference.problem.Problem` (use it with
        :func:`~vbinfer.inference.fit` or :mod:`~vbinfer.inference.identifiability`).
    data: the array the problem compares against (the target, or its upper triangle for
        ``loss="fc"``).
    names: the freed parameter names, in the order of the unconstrained coordinates.
    labels: one label per unconstrained coordinate, e.g. ``"model.eta[3]"``,
        ``"network.weights[5<-2]"`` (from node 2 to node 5), ``"coupling.a"``.
    num_free: number of unconstrained coordinates.
    constrain: ``constrain(u) -> {name: value}`` for a flat unconstrained vector ``u``
        ``(num_free,)`` (the layout of ``FitResult.info["unconstrained_map"]``).
    unconstrain: the inverse, ``unconstrain({name: value}) -> u``.
    assemble: ``assemble(values) -> (SimParams, Network)`` with the freed values substituted.
    predict: ``predict(values) -> prediction`` (what the loss compares with ``data``).
    loss_fn: ``loss_fn(prediction) -> scalar`` loss against ``data``.
    noise_sd: for the squared-error losses, ``sd`` such that the loss is
        ``sum((prediction - data)^2) / (2 sd^2)`` (the Gaussian noise level the Fisher
        information uses); ``None`` for the other losses.
    """

    problem: Problem
    data: Array
    names: tuple[str, ...]
    labels: tuple[str, ...]
    num_free: int
    constrain: Callable[[Array], dict[str, Array]]
    unconstrain: Callable[[Mapping[str, Array]], Array]
    assemble: Callable[[Mapping[str, Array]], tuple[SimParams, Network]]
    predict: Callable[[Mapping[str, Array]], Array]
    loss_fn: Callable[[Array], Array]
    noise_sd: float | None


class NetworkFit(NamedTuple):
    """What :func:`fit_network` returns.

    Attributes
    ----------
    params: :class:`~vbinfer.simulate.SimParams` of the best start.
    network: :class:`~vbinfer.network.Network` of the best start.
    values: ``{name: fitted value}`` of the freed parameters (vectors of the freed entries).
    loss: loss trace of the best start, ``(num_steps,)``.
    final_losses: final loss of every start, ``(num_starts,)`` (``inf`` where it diverged).
    best_start: index of the best start.
    num_free: number of fitted parameters.
    result: the :class:`~vbinfer.inference.result.FitResult` of the backend (times, info).
    setup: the :class:`NetworkProblem`.
    """

    params: SimParams
    network: Network
    values: dict[str, np.ndarray]
    loss: np.ndarray
    final_losses: np.ndarray
    best_start: int
    num_free: int
    result: FitResult
    setup: NetworkProblem


# ---------------------------------------------------------------------------------- checks
def _owner(name: str, params: SimParams, network: Network) -> Any:
    group, _, field = name.partition(".")
    owner = {"model": params.model, "coupling": params.coupling, "network": network}.get(group)
    if owner is None or field not in getattr(owner, "_fields", ()):
        known = {
            g: tuple(getattr(o, "_fields", ()))
            for g, o in (
                ("model", params.model),
                ("coupling", params.coupling),
                ("network", network),
            )
        }
        raise ValueError(
            f"free: unknown parameter {name!r}; expected 'group.field' with fields {known}"
        )
    return getattr(owner, field)


def _mask_entries(name: str, mode: Any, base: np.ndarray, n: int) -> tuple[Any, Any, bool]:
    if isinstance(mode, str):
        if mode == "nonzero":
            rows, cols = np.nonzero(base)
            return rows, cols, False
        if mode == "symmetric":
            if not np.allclose(base, base.T):
                raise ValueError(
                    f"free[{name!r}]: 'symmetric' needs a symmetric base matrix; use 'nonzero'"
                )
            rows, cols = np.nonzero(np.triu(base, k=1))
            return rows, cols, True
        raise ValueError(
            f"free[{name!r}] must be 'nonzero', 'symmetric' or a boolean mask of shape "
            f"({n}, {n}), got {mode!r}"
        )
    mask = np.asarray(mode)
    if mask.shape != (n, n):
        raise ValueError(
            f"free[{name!r}]: the mask must have shape ({n}, {n}) (n_nodes, n_nodes), got shape "
            f"{mask.shape}"
        )
    if mask.dtype != bool:
        raise ValueError(f"free[{name!r}]: the mask must be boolean, got dtype {mask.dtype}")
    rows, cols = np.nonzero(mask)
    return rows, cols, False


def _default_constraint(name: str) -> constraints.Constraint:
    return constraints.positive if name.startswith("network.") else constraints.real


def _free_params(
    free: Mapping[str, Any],
    transforms: Mapping[str, Any],
    params: SimParams,
    network: Network,
    region_labels: Sequence[str],
) -> list[_Free]:
    if not isinstance(free, Mapping) or not free:
        raise ValueError(
            "free must be a non-empty mapping {name: mode}, e.g. {'model.eta': 'per_region', "
            f"'network.weights': 'nonzero'}}, got {free!r}"
        )
    for name in transforms:
        if name not in free:
            raise ValueError(
                f"transforms: {name!r} is not a freed parameter; expected one of {tuple(free)}"
            )
    n = network.n_nodes
    out = []
    # the order of numpyro's flat unconstrained vector: sorted site names
    for name in sorted(free, key=lambda k: f"{k}:offset"):
        mode = free[name]
        owned = _owner(name, params, network)
        if owned is None:
            raise ValueError(f"free: {name!r} is None in the base parameters / network")
        base = np.asarray(owned, dtype=float)
        con = as_constraint(
            transforms.get(name, _default_constraint(name)), f"transforms[{name!r}]"
        )
        field = name.partition(".")[2]
        rows = cols = None
        symmetric = False
        if name.startswith("network.") and field in _MATRIX_FIELDS:
            if base.shape != (n, n):
                raise ValueError(f"network.{field}: expected shape ({n}, {n}), got {base.shape}")
            rows, cols, symmetric = _mask_entries(name, mode, base, n)
            if rows.size == 0:
                raise ValueError(f"free[{name!r}] selects no entries (all are zero or masked)")
            value = base[rows, cols]
            sep = "<->" if symmetric else "<-"
            labels = tuple(
                f"{name}[{region_labels[i]}{sep}{region_labels[j]}]"
                for i, j in zip(rows, cols, strict=True)
            )
        elif mode == "global":
            if base.ndim != 0:
                raise ValueError(
                    f"free[{name!r}] = 'global' needs a scalar base value, got shape {base.shape} "
                    "(use 'per_region')"
                )
            value, labels = base, (name,)
        elif mode == "per_region" and name != "network.speed":
            if base.shape not in ((), (n,)):
                raise ValueError(
                    f"free[{name!r}] = 'per_region': base value must be a scalar or ({n},), got "
                    f"shape {base.shape}"
                )
            value = np.broadcast_to(base, (n,))
            labels = tuple(f"{name}[{r}]" for r in region_labels)
        else:
            allowed = ("global",) if name == "network.speed" else ("global", "per_region")
            raise ValueError(f"free[{name!r}] must be one of {allowed}, got {mode!r}")
        base_u = to_unconstrained(con, value, f"the base value of {name!r}")
        out.append(
            _Free(
                name,
                f"{name}:offset",
                int(np.size(value)),
                con,
                base_u,
                rows,
                cols,
                symmetric,
                labels,
            )
        )
    return out


def _check_target(loss: Any, target: Any, n: int) -> np.ndarray:
    t = np.asarray(target)
    if t.dtype.kind not in "fiu":
        raise ValueError(f"target must be a real array, got dtype {t.dtype}")
    if not np.all(np.isfinite(t)):
        raise ValueError("target must be finite, got NaN or inf entries")
    if loss in ("fc", "fc_corr") and t.shape != (n, n):
        raise ValueError(
            f"target: loss {loss!r} needs an FC matrix of shape ({n}, {n}) (n_nodes, n_nodes), "
            f"got shape {t.shape}"
        )
    return t


def _default_signal(simulator: Simulator) -> Callable[[SimResult], Array]:
    names = [m.name for m in simulator.monitors]
    if "bold" in names:
        return lambda res: res.outputs["bold"]
    if "tavg" in names:
        return lambda res: res.outputs["tavg"][:, 0]
    raise ValueError(
        f"observe: the simulator records {names}; give observe=lambda res: ... returning a "
        "(n_time, n_nodes) signal"
    )


# ---------------------------------------------------------------------------------- problem
def make_network_problem(
    simulator: Simulator,
    network: Network,
    base_params: SimParams,
    target: ArrayLike,
    *,
    free: Mapping[str, Any],
    transforms: Mapping[str, Any] | None = None,
    loss: str | Callable[[Array, Array], Array] = "fc",
    observe: Callable[[SimResult], Array] | None = None,
    noise: Any = None,
    init: ArrayLike | None = None,
    prior_sd: float | None = None,
    noise_sd: float | None = None,
    nperseg: int | None = None,
    region_labels: Sequence[str] | None = None,
) -> NetworkProblem:
    """Set up a many-parameter network fit as an inference problem.

    Parameters
    ----------
    simulator:
        A :class:`~vbinfer.simulate.Simulator`.
    network:
        The base :class:`~vbinfer.network.Network` (dense); ``W[i, j]`` is from ``j`` to ``i``.
    base_params:
        :class:`~vbinfer.simulate.SimParams`; unfreed parameters keep these values.
    target:
        What to fit: an FC matrix ``(n_nodes, n_nodes)`` for ``"fc"`` / ``"fc_corr"``, a log10
        power spectrum ``(n_freq, n_nodes)`` for ``"psd"``, an array shaped like
        ``observe(simulation)`` for ``"mse"`` or a callable loss.
    free:
        ``{name: mode}``: ``"model.<field>"`` / ``"coupling.<field>"`` with ``"global"`` or
        ``"per_region"``; ``"network.speed"`` with ``"global"``; ``"network.weights"`` /
        ``"network.lengths"`` with ``"nonzero"``, ``"symmetric"`` or a boolean mask
        ``(n_nodes, n_nodes)``.
    transforms:
        ``{name: spec}`` (see :func:`~vbinfer.inference.transforms.as_constraint`): ``"real"``,
        ``"positive"``, ``"softplus"``, ``(lower, upper)`` or a numpyro constraint. Default:
        ``"positive"`` (``exp``) for ``network.*``, ``"real"`` otherwise.
    loss:
        One of :data:`LOSSES` or ``loss_fn(prediction, target) -> scalar``.
    observe:
        ``observe(result) -> array``. For ``"fc"``, ``"fc_corr"`` and ``"psd"`` a signal
        ``(n_time, n_nodes)``; default: the ``"bold"`` output, else the first variable of
        ``"tavg"`` (with ``"fc"`` / ``"fc_corr"`` an in-loop ``"fc"`` monitor is used directly
        when the simulator has one). For ``"mse"`` and callables: the prediction itself
        (default: the same signal).
    noise:
        Simulation noise, held fixed: ``None`` (deterministic), a PRNG key or pre-drawn
        standard normals (see :meth:`~vbinfer.simulate.Simulator.run`).
    init:
        Initial state ``(n_states, n_nodes)`` (default: the model's).
    prior_sd:
        ``None``: no prior (the MAP is the loss minimum). A number: a ``Normal(0, prior_sd)``
        prior on every unconstrained offset from the base value (ridge regularisation; for
        ``exp``-transformed weights a log-normal prior around the base connectome).
    noise_sd:
        For the squared-error losses: ``None`` (loss = mean squared error) or the standard
        deviation of a Gaussian observation noise (loss = sum of squares / (2 noise_sd^2)).
    nperseg:
        Welch segment length for ``"psd"`` (default ``min(n_time, 256)``); the sampling rate is
        ``1000 / (simulator.dt * simulator.sample_every)`` Hz.
    region_labels:
        Names of the nodes for the coordinate labels (default ``0 .. n_nodes - 1``).

    Returns
    -------
    :class:`NetworkProblem`.

    Examples
    --------
    >>> import numpy as np, vbinfer as vb
    >>> sim = vb.make_simulator(vb.models.linear, dt=1.0, num_steps=50)
    >>> net = vb.make_network(0.1 * (1 - np.eye(3)))
    >>> base = vb.SimParams(vb.models.LinearModelParams(), vb.coupling.LinearParams())
    >>> setup = make_network_problem(sim, net, base, np.eye(3), free={"network.weights": "nonzero"})
    >>> setup.num_free, setup.labels[0]
    (6, 'network.weights[0<-1]')
    """
    if not isinstance(simulator, Simulator):
        raise ValueError(f"simulator must be a vbinfer Simulator, got {type(simulator).__name__}")
    if not isinstance(network, Network):
        raise ValueError(f"network must be a dense vbinfer Network, got {type(network).__name__}")
    if not isinstance(base_params, SimParams):
        raise ValueError(f"base_params must be SimParams, got {type(base_params).__name__}")
    if isinstance(loss, str):
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES} or a callable, got {loss!r}")
    elif not callable(loss):
        raise ValueError(f"loss must be one of {LOSSES} or a callable, got {loss!r}")
    if prior_sd is not None and not float(prior_sd) > 0:
        raise ValueError(f"prior_sd must be None or > 0, got {prior_sd!r}")
    if noise_sd is not None and not float(noise_sd) > 0:
        raise ValueError(f"noise_sd must be None or > 0, got {noise_sd!r}")
    n = network.n_nodes
    region_labels = tuple(str(i) for i in range(n)) if region_labels is None else region_labels
    if len(region_labels) != n:
        raise ValueError(f"region_labels must have {n} entries, got {len(region_labels)}")
    transforms = {} if transforms is None else dict(transforms)
    specs = _free_params(free, transforms, base_params, network, region_labels)
    target_np = _check_target(loss, target, n)
    x0 = None if init is None else jnp.asarray(init)

    # -- prediction ----------------------------------------------------------------------
    monitor_names = [m.name for m in simulator.monitors]
    if loss in ("fc", "fc_corr") and observe is None and "fc" in monitor_names:
        summary = lambda res: res.outputs["fc"]  # noqa: E731
    else:
        signal = _default_signal(simulator) if observe is None else observe
        if loss in ("fc", "fc_corr"):
            summary = lambda res: functional_connectivity(signal(res))  # noqa: E731
        elif loss == "psd":
            fs = 1000.0 / (simulator.dt * simulator.sample_every)
            n_time = simulator.num_samples
            seg = min(n_time, 256) if nperseg is None else nperseg
            summary = lambda res: log_psd(signal(res), fs, seg, axis=0)[1]  # noqa: E731
        else:
            summary = signal

    def assemble(values: Mapping[str, Array]) -> tuple[SimParams, Network]:
        updates = {}
        for s in specs:
            v = values[s.name]
            if s.rows is not None:
                field = s.name.partition(".")[2]
                m = jnp.asarray(getattr(network, field))
                m = m.at[s.rows, s.cols].set(v.astype(m.dtype))
                if s.symmetric:
                    m = m.at[s.cols, s.rows].set(v.astype(m.dtype))
                v = m
            updates[s.name] = v
        p, net, _ = with_values(base_params, network, None, updates)
        return p, net

    def simulate(values: Mapping[str, Array]) -> Array:
        p, net = assemble(values)
        return summary(simulator.run(noise, p, net, x0))

    if loss == "fc":
        predict = lambda values: fc_upper(simulate(values))  # noqa: E731
        data = jnp.asarray(fc_upper(target_np))
    else:
        predict = simulate
        data = jnp.asarray(target_np)
    base_values = {s.name: make_transform(s.constraint)(jnp.asarray(s.base_u)) for s in specs}
    if loss in ("psd", "mse"):
        shape = tuple(jax.eval_shape(predict, base_values).shape)
        if shape != tuple(data.shape):
            raise ValueError(
                f"target must have the shape of the prediction {shape} for loss {loss!r}, got "
                f"shape {tuple(data.shape)}"
            )
    setup_data = data
    m = int(np.prod(data.shape))
    squared = loss in _SQUARED
    sd = float(np.sqrt(m / 2.0)) if noise_sd is None else float(noise_sd)

    if squared:

        def loss_of(pred: Array, target: Array) -> Array:
            return 0.5 * jnp.sum((pred - target) ** 2) / sd**2
    elif loss == "fc_corr":

        def loss_of(pred: Array, target: Array) -> Array:
            return 1.0 - fc_corr(pred, target)
    else:
        loss_of = loss

    def loss_fn(pred: Array) -> Array:
        return loss_of(pred, data)

    def objective(offsets: Mapping[str, Array], target: Array):
        values = {
            s.name: make_transform(s.constraint)(jnp.asarray(s.base_u) + offsets[s.site])
            for s in specs
        }
        pred = predict(values)
        finite = jnp.isfinite(pred)
        # as guard_finite: a diverged simulation is -inf, never NaN
        return values, loss_of(jnp.where(finite, pred, 0.0), target), jnp.all(finite)

    # one compiled function: numpyro's initialisation runs the model outside jit, where every
    # operation would otherwise be compiled on its own
    objective_jit = jax.jit(objective)
    priors = {
        s.site: dist.ImproperUniform(constraints.real, (), np.shape(s.base_u))
        if prior_sd is None
        else dist.Normal(jnp.zeros(np.shape(s.base_u)), prior_sd).to_event(np.ndim(s.base_u))
        for s in specs
    }

    def model(data: Array | None = None) -> None:
        offsets = {site: numpyro.sample(site, prior) for site, prior in priors.items()}
        values, value, ok = objective_jit(offsets, setup_data if data is None else data)
        for name, v in values.items():
            numpyro.deterministic(name, v)
        numpyro.factor("diverged", jnp.where(ok, 0.0, -jnp.inf))
        # a factor, not an observed Normal site, whose normalising constant would swamp a small
        # loss in float32 rounding
        numpyro.factor("loss", -value)

    sizes = [s.size for s in specs]
    split_at = np.cumsum(sizes)[:-1]

    def constrain(u: Array) -> dict[str, Array]:
        parts = jnp.split(jnp.asarray(u), split_at)
        return {
            s.name: make_transform(s.constraint)(
                jnp.asarray(s.base_u) + part.reshape(np.shape(s.base_u))
            )
            for s, part in zip(specs, parts, strict=True)
        }

    def unconstrain(values: Mapping[str, Array]) -> Array:
        return jnp.concatenate(
            [
                jnp.ravel(make_transform(s.constraint).inv(jnp.asarray(values[s.name])) - s.base_u)
                for s in specs
            ]
        )

    names = tuple(s.name for s in specs)
    labels = tuple(lab for s in specs for lab in s.labels)
    problem = Problem(model, tuple(s.site for s in specs), "obs", tuple(data.shape), None)
    return NetworkProblem(
        problem,
        data,
        names,
        labels,
        int(sum(sizes)),
        constrain,
        unconstrain,
        assemble,
        predict,
        loss_fn,
        sd if squared else None,
    )


# -------------------------------------------------------------------------------------- fit
def fit_network(
    key: jax.Array,
    simulator: Simulator,
    network: Network,
    base_params: SimParams,
    target: ArrayLike,
    *,
    free: Mapping[str, Any],
    transforms: Mapping[str, Any] | None = None,
    loss: str | Callable[[Array, Array], Array] = "fc",
    observe: Callable[[SimResult], Array] | None = None,
    noise: Any = None,
    init: ArrayLike | None = None,
    prior_sd: float | None = None,
    noise_sd: float | None = None,
    nperseg: int | None = None,
    region_labels: Sequence[str] | None = None,
    method: str = "map",
    optimizer: str = "adam",
    learning_rate: float = 1e-2,
    num_steps: int = 500,
    num_starts: int = 4,
    init_radius: float = 0.05,
    **fit_options: Any,
) -> NetworkFit:
    """Fit per-region parameters and connectome entries by gradient descent (MAP).

    Sets up the problem with :func:`make_network_problem` (see it for ``free``, ``transforms``,
    ``loss``, ``observe``, ``noise``, ``init``, ``prior_sd``, ``noise_sd``, ``nperseg`` and
    ``region_labels``) and runs :func:`vbinfer.inference.fit` with ``method="map"`` (or
    ``"laplace"``): ``num_starts`` starts, uniform in ``[-init_radius, init_radius]`` of the
    unconstrained offsets around the base values (for ``exp``-transformed weights: within a
    factor ``exp(init_radius)``), optimised as one vmapped batch.

    Parameters
    ----------
    key:
        PRNG key for the starts (required, no default).
    method:
        ``"map"`` or ``"laplace"`` (a Gaussian around the MAP from the Hessian; for few
        parameters).
    optimizer, learning_rate, num_steps:
        Passed to the MAP backend (``"adam"`` or ``"lbfgs"``).
    num_starts:
        Number of starts (vmapped restarts).
    init_radius:
        Half-width of the uniform jitter of the starts in unconstrained coordinates.
    **fit_options:
        More options of the backend (``chunk_size``, ``progress_bar``, ``checkpoint_dir``,
        ``num_samples`` for Laplace).

    Returns
    -------
    :class:`NetworkFit`: the best start's parameters and network, the fitted values, its loss
    trace and the final loss of every start.

    Examples
    --------
    >>> import jax, numpy as np, vbinfer as vb
    >>> sim = vb.make_simulator(vb.models.linear, dt=1.0, num_steps=50)
    >>> net = vb.make_network(0.1 * (1 - np.eye(3)))
    >>> base = vb.SimParams(vb.models.LinearModelParams(), vb.coupling.LinearParams())
    >>> x0 = np.array([[1.0, -0.5, 0.2]])
    >>> obs = lambda r: r.outputs["tavg"][:, 0]
    >>> target = obs(sim.run(None, base, net._replace(weights=0.12 * (1 - np.eye(3))), x0))
    >>> res = fit_network(jax.random.key(0), sim, net, base, target, free={"network.weights":
    ...     "nonzero"}, loss="mse", observe=obs, init=x0, optimizer="lbfgs", num_steps=50)
    >>> res.num_free, res.final_losses.shape
    (6, (4,))
    """
    if method not in ("map", "laplace"):
        raise ValueError(f"method must be 'map' or 'laplace', got {method!r}")
    for arg, v in (("num_steps", num_steps), ("num_starts", num_starts)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
            raise ValueError(f"{arg} must be a positive integer, got {v!r}")
    if not float(init_radius) >= 0:
        raise ValueError(f"init_radius must be >= 0, got {init_radius!r}")
    setup = make_network_problem(
        simulator,
        network,
        base_params,
        target,
        free=free,
        transforms=transforms,
        loss=loss,
        observe=observe,
        noise=noise,
        init=init,
        prior_sd=prior_sd,
        noise_sd=noise_sd,
        nperseg=nperseg,
        region_labels=region_labels,
    )
    result = fit(
        setup.problem,
        setup.data,
        method=method,
        key=key,
        optimizer=optimizer,
        learning_rate=learning_rate,
        num_steps=int(num_steps),
        num_restarts=int(num_starts),
        init_radius=float(init_radius),
        **fit_options,
    )
    u = jnp.asarray(result.info["unconstrained_map"])
    values = {k: np.asarray(v) for k, v in setup.constrain(u).items()}
    params, net = setup.assemble({k: jnp.asarray(v) for k, v in values.items()})
    return NetworkFit(
        params,
        net,
        values,
        np.asarray(result.loss),
        np.asarray(result.info["restart_losses"]),
        int(result.info["best_restart"]),
        setup.num_free,
        result,
        setup,
    )
