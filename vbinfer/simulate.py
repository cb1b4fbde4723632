"""Network simulations: a pure function of (noise or key, parameters, network, initial state).

:func:`make_simulator` fixes what shapes and compiled code depend on (model, coupling,
integrator, step, number of steps, maximum lag, monitors) and returns a :class:`Simulator`
whose :meth:`~Simulator.run` takes everything else as ordinary arrays: model and coupling
parameters, weights, tract lengths, conduction speed, initial state and history, noise.
Every one of them can be traced, vmapped and differentiated.

The loop has three levels: blocks of ``block_steps`` steps (optionally checkpointed, and the
unit in which noise is drawn from a key), sample periods of ``sample_every`` steps (after which
the monitors record), and single integrator steps. With ``checkpoint=True`` reverse-mode memory
grows like ``num_steps / block_steps + block_steps`` instead of ``num_steps``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from vbinfer import _ffi, delays
from vbinfer._loop import LoopSpec, default_block, is_noise_array, make_noise_terms, run_blocks
from vbinfer._precision import HIGHEST
from vbinfer._typing import Array, PRNGKey, PyTree
from vbinfer._validate import check_finite, is_concrete
from vbinfer.coupling import Coupling, linear
from vbinfer.integrators import Integrator, get_integrator
from vbinfer.models.base import Model, apply_bounds, default_state, take_rows
from vbinfer.monitors import Monitor, temporal_average
from vbinfer.network import (
    LAG_MODES,
    Network,
    SparseNetwork,
    check_network,
    lags_in_steps,
    num_nodes,
)
from vbinfer.noise import AdditiveNoise, ColouredNoise, resolve_sigma

__all__ = ["SimParams", "SimResult", "SimState", "Simulator", "diverged", "make_simulator"]

COUPLING_STAGES = ("held", "per_stage")


class SimParams(NamedTuple):
    """Parameters of a network simulation.

    Attributes
    ----------
    model: the model's parameter NamedTuple (e.g. :class:`~vbinfer.models.MPRParams`).
    coupling: the coupling's parameter NamedTuple (e.g. :class:`~vbinfer.coupling.LinearParams`).
    """

    model: Any
    coupling: Any = None


class SimState(NamedTuple):
    """Everything needed to continue a run (pass it back as ``init``).

    Attributes
    ----------
    x: ``(n_states, n_nodes, *batch)`` state.
    buffer: the delay ring buffer (internal layout, see :mod:`vbinfer.delays`) or ``None``.
    step: absolute index of the step ``x`` belongs to (int32).
    eta: coloured-noise state ``(n_noisy, n_nodes, *batch)`` or ``None``.
    monitors: tuple of monitor states.
    """

    x: Array
    buffer: Array | None
    step: Array
    eta: Array | None
    monitors: tuple


class SimResult(NamedTuple):
    """Output of :meth:`Simulator.run`.

    Attributes
    ----------
    outputs: ``{monitor name: output}``; samples along axis 0.
    final: the :class:`SimState` at the end, to resume from.
    """

    outputs: dict[str, Any]
    final: SimState


def diverged(result: SimResult) -> Array:
    """True where a run blew up: any non-finite value in the final state.

    Returns a boolean array of shape ``batch`` (a scalar for an unbatched run). A fixed-step
    simulation never hangs; a diverging one ends with NaN or inf in its state, which this
    detects (likelihoods in vbinfer turn that into a log density of ``-inf``).
    """
    x = result.final.x
    return ~jnp.all(jnp.isfinite(x), axis=(0, 1))


@dataclasses.dataclass(frozen=True)
class Simulator:
    """A compiled-shape network simulator; build it with :func:`make_simulator`."""

    model: Model
    coupling: Coupling
    integrator: Integrator
    dt: float
    num_steps: int
    sample_every: int
    block_steps: int
    max_lag: int | None
    lag_mode: str
    coupling_stages: str
    noise: AdditiveNoise | ColouredNoise | None
    monitors: tuple[Monitor, ...]
    cvar: tuple[int, ...]
    checkpoint: bool
    stimulus: Callable[[Array, Any], Array] | None
    t0: float
    warn_on_clip: bool
    delay_kernel: str = "xla"
    remat_dfun: bool = True
    delay_adjoint: str = "autodiff"

    # ------------------------------------------------------------------ properties
    @property
    def num_samples(self) -> int:
        """Samples each monitor records over a run."""
        return self.num_steps // self.sample_every

    @property
    def noise_states(self) -> tuple[int, ...]:
        """Indices of the state variables that receive noise."""
        if self.noise is None:
            return ()
        if self.noise.states is None:
            return tuple(range(self.model.n_states))
        return tuple(self.noise.states)

    def noise_shape(self, n_nodes: int, batch: tuple[int, ...] = ()) -> tuple[int, ...]:
        """Shape of pre-drawn noise: ``(num_steps, n_noisy, n_nodes, *batch)``."""
        return (self.num_steps, len(self.noise_states), n_nodes, *batch)

    # ------------------------------------------------------------------ public API
    def run(
        self,
        key: PRNGKey | Array | None,
        params: SimParams,
        network: Network | SparseNetwork,
        init: Array | SimState | None = None,
        *,
        history: Array | None = None,
    ) -> SimResult:
        """Simulate.

        Parameters
        ----------
        key:
            A PRNG key (noise drawn inside the loop, one block at a time), an array of
            pre-drawn standard normals shaped :meth:`noise_shape`, or ``None`` for a
            deterministic run.
        params:
            :class:`SimParams`; every leaf broadcasts against ``(n_nodes, *batch)``.
        network:
            :class:`~vbinfer.network.Network` or :class:`~vbinfer.network.SparseNetwork`.
        init:
            Initial state ``(n_states, n_nodes, *batch)``, a :class:`SimState` to resume
            from, or ``None`` for the model's default state (unbatched). Like TVB, values
            outside the model's bounds (and the history's) are clipped before the run.
        history:
            Optional past of the coupled variables for delayed runs,
            ``(max_lag, n_cvar, n_nodes, *batch)`` for steps ``-max_lag .. -1`` (oldest
            first); default: constant, equal to ``init``.

        Returns
        -------
        :class:`SimResult`.
        """
        return self._run(key, params, network, init, history)

    def run_batch(
        self,
        key: PRNGKey | Array | None,
        params: SimParams,
        network: Network | SparseNetwork,
        init: Array | SimState | None = None,
        *,
        batch_size: int,
        params_axes: int | PyTree | None = 0,
        history: Array | None = None,
    ) -> SimResult:
        """Simulate ``batch_size`` parameter sets in one run, batch innermost in memory.

        Faster than ``jax.vmap(run)`` for delayed networks: every edge gathers one contiguous
        vector of the batch. The network is shared by the batch (use ``jax.vmap(run)`` to
        batch networks).

        Parameters
        ----------
        key:
            PRNG key (independent noise for every member), pre-drawn noise
            ``(batch_size, num_steps, n_noisy, n_nodes)``, or ``None``.
        params:
            :class:`SimParams` whose batched leaves have a leading axis of ``batch_size``.
        params_axes:
            ``0`` (every leaf with ``ndim >= 1`` is batched on axis 0; scalars are shared),
            ``None`` (nothing batched), or a pytree like ``params`` of ``0`` / ``None``.
        init:
            ``(batch_size, n_states, n_nodes)``, ``(n_states, n_nodes)`` shared, a
            :class:`SimState` returned by ``run_batch``, or ``None``.
        history:
            ``(batch_size, max_lag, n_cvar, n_nodes)`` or shared ``(max_lag, n_cvar, n_nodes)``.

        Returns
        -------
        :class:`SimResult` whose outputs have the batch axis first; ``final`` stays in the
        internal layout (batch last) and can be passed back as ``init``.
        """
        b = int(batch_size)
        if b < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        params = _batch_last(params, params_axes, b, "params")
        if init is not None and not isinstance(init, SimState):
            init = jnp.asarray(init)
            if init.ndim == 3:
                _check_leading("init", init, b)
                init = jnp.moveaxis(init, 0, -1)
            elif init.ndim == 2:
                init = jnp.broadcast_to(init[..., None], (*init.shape, b))
            else:
                raise ValueError(
                    f"init must be (batch_size, n_states, n_nodes) or (n_states, n_nodes), "
                    f"got shape {init.shape}"
                )
        elif init is None:
            init = jnp.broadcast_to(
                default_state(self.model, (num_nodes(network),))[..., None],
                (self.model.n_states, num_nodes(network), b),
            )
        if history is not None:
            history = jnp.asarray(history)
            if history.ndim == 4:
                _check_leading("history", history, b)
                history = jnp.moveaxis(history, 0, -1)
            else:
                history = jnp.broadcast_to(history[..., None], (*history.shape, b))
        if key is not None and is_noise_array(key):
            key = jnp.asarray(key)
            _check_leading("key (pre-drawn noise)", key, b)
            key = jnp.moveaxis(key, 0, -1)
        res = self._run(key, params, network, init, history)
        outputs = jax.tree_util.tree_map(lambda y: jnp.moveaxis(y, -1, 0), res.outputs)
        return SimResult(outputs, res.final)

    # ------------------------------------------------------------------ internals
    def _run(self, key, params, network, init, history) -> SimResult:
        model = self.model
        n_nodes = num_nodes(network)
        check_network(network, self.max_lag is not None)
        check_params(params)
        if isinstance(init, SimState):
            state = init
            x0 = state.x
        else:
            x0 = default_state(model, (n_nodes,)) if init is None else jnp.asarray(init)
            state = None
        if x0.ndim < 2 or x0.shape[0] != model.n_states or x0.shape[1] != n_nodes:
            raise ValueError(
                f"init must have shape (n_states={model.n_states}, n_nodes={n_nodes}, *batch) "
                f"for model {model.name!r}, got shape {tuple(x0.shape)}"
            )
        if not jnp.issubdtype(x0.dtype, jnp.floating):
            x0 = x0.astype(jnp.result_type(float))
        check_finite("init", x0)
        if state is None:
            x0 = apply_bounds(model, x0)  # as TVB, a start outside the bounds is clipped first
        batch = tuple(x0.shape[2:])
        dtype = x0.dtype

        # -- connectivity --------------------------------------------------------------
        sparse = isinstance(network, SparseNetwork)
        if sparse:
            weights = jnp.asarray(network.values, dtype)
            rows = network.rows
            cols = network.cols
            row_sums = jax.ops.segment_sum(weights, rows, num_segments=n_nodes)
        else:
            weights = jnp.asarray(network.weights, dtype)
            rows = None
            cols = jnp.tile(jnp.arange(n_nodes, dtype=jnp.int32), n_nodes)
            row_sums = weights.sum(axis=1)
        row_sums = row_sums.reshape((n_nodes,) + (1,) * len(batch))
        cpl_params = params.coupling if params.coupling is not None else self.coupling.params_cls()
        pre = lambda xs: self.coupling.pre(take_rows(xs, self.cvar), cpl_params)  # noqa: E731
        n_pre = self.coupling.n_pre(len(self.cvar))

        def post(summed, xs):
            return self.coupling.post(summed, take_rows(xs, self.cvar), row_sums, cpl_params)

        delayed = self.max_lag is not None
        if delayed:
            slots = delays.num_slots(self.max_lag, self.lag_mode)
            lags = lags_in_steps(network.lengths, network.speed, self.dt, self.lag_mode)
            if is_concrete(lags) and lags.size:
                top = float(jnp.max(lags))
                if top > self.max_lag:
                    raise ValueError(
                        f"network: the largest lag is {top:g} steps (length / speed / dt) but the "
                        f"simulator was built with max_lag={self.max_lag}; build it with "
                        f"max_lag >= {math.ceil(top)} or raise the conduction speed"
                    )
            lags = delays.clip_lags(lags, self.max_lag, self.warn_on_clip)
            plan = delays.make_read_plan(
                lags.reshape(-1), cols, weights.reshape(-1), n_nodes, slots, self.lag_mode
            )

            def delayed_sum(buf, n):
                return delays.read(
                    buf, plan, n, slots, n_nodes, n_pre, batch, rows, kernel=self.delay_kernel
                )

        def instant_sum(h):
            if sparse:
                g = delays.to_rows(h)[cols] * weights[:, None]
                s = jax.ops.segment_sum(g, rows, num_segments=n_nodes, indices_are_sorted=True)
            else:
                s = jnp.matmul(weights, delays.to_rows(h), precision=HIGHEST)
            return delays.from_rows(s, n_pre, batch)

        # -- noise -----------------------------------------------------------------------
        noise = self.noise
        n_noisy = len(self.noise_states)
        sigma = None
        if noise is not None:
            sigma = resolve_sigma(noise.sigma, params, n_noisy, 1 + len(batch)).astype(dtype)
        terms = make_noise_terms(
            noise,
            key,
            sigma,
            self.noise_states,
            model.n_states,
            (n_nodes, *batch),
            self.dt,
            self.noise_shape(n_nodes, batch),
        )
        coloured = terms.coloured_next is not None

        # -- one step --------------------------------------------------------------------
        project = lambda x: apply_bounds(model, x)  # noqa: E731
        held = self.coupling_stages == "held"
        stim = self.stimulus
        # push x(n) and read at n in one op with a hand-written adjoint (delays.push_and_read);
        # the buffer then holds x(n) only from the start of step n, so the last x is pushed
        # after the loop and the final state is the same either way
        # "auto" resolves per network: dense plans, where the compiled kernels serve the read
        # and its adjoint; sparse plans keep JAX's derivative.
        adjoint = self.delay_adjoint
        fused = delayed and held and (adjoint == "inplace" or (adjoint == "auto" and not sparse))

        def step(carry, z):
            x, buf, n, eta = carry
            t = self.t0 + n.astype(dtype) * self.dt
            eta_next = terms.coloured_next(eta, z) if coloured else None
            if fused:
                buf, summed = delays.push_and_read(
                    buf, pre(x), n, plan, slots, n_nodes, n_pre, batch, rows, self.delay_kernel
                )
                c_held = post(summed, x)
            elif held:
                c_held = post(delayed_sum(buf, n) if delayed else instant_sum(pre(x)), x)

            dfun = jax.checkpoint(model.dfun) if self.remat_dfun else model.dfun

            def f(frac, xs, aux):
                if held:
                    c = c_held
                elif not delayed:
                    c = post(instant_sum(pre(xs)), xs)
                elif frac == 0.0:
                    c = post(delayed_sum(aux, n), xs)
                else:  # stage at t + dt: the predicted state fills slot n + 1
                    aux = delays.push(aux, pre(xs), n + 1, slots)
                    c = post(delayed_sum(aux, n + 1), xs)
                dx = dfun(xs, c, params.model)
                if stim is not None:
                    dx = dx + stim(t + frac * self.dt, params)
                if coloured:
                    dx = dx + terms.coloured_at(eta, eta_next, frac)
                return dx, aux

            incr = terms.increment(z) if terms.increment is not None else None
            if fused:
                x_new, _ = self.integrator.step(f, x, None, self.dt, incr, project)
            else:
                x_new, buf = self.integrator.step(f, x, buf, self.dt, incr, project)
                if delayed:
                    buf = delays.push(buf, pre(x_new), n + 1, slots)
            if coloured:
                eta = eta_next
            return (x_new, buf, n + 1, eta), x_new

        # -- initial carry ------------------------------------------------------------------
        if state is None:
            buf = None
            if delayed:
                past = None
                if history is not None:
                    history = jnp.asarray(history, dtype)
                    exp = (slots - 1, len(self.cvar), n_nodes, *batch)
                    if self.lag_mode == "linear" and history.shape[0] == slots - 2:
                        history = jnp.concatenate([history[:1], history], axis=0)
                    if tuple(history.shape) != exp:
                        raise ValueError(
                            f"history must have shape (max_lag={self.max_lag}, n_cvar="
                            f"{len(self.cvar)}, n_nodes={n_nodes}, *batch={batch}), "
                            f"got {tuple(history.shape)}"
                        )
                    check_finite("history", history)
                    lo = jnp.asarray([model.bounds[c][0] for c in self.cvar], history.dtype)
                    hi = jnp.asarray([model.bounds[c][1] for c in self.cvar], history.dtype)
                    shape = (1, len(self.cvar)) + (1,) * (history.ndim - 2)
                    history = jnp.clip(history, lo.reshape(shape), hi.reshape(shape))
                    past = jax.vmap(lambda hx: self.coupling.pre(hx, cpl_params))(history)
                buf = delays.init_buffer(pre(x0), slots, past)
            eta0 = jnp.zeros((n_noisy, n_nodes, *batch), dtype) if coloured else None
            mstates = tuple(m.init(x0, params) for m in self.monitors)
            state = SimState(x0, buf, jnp.int32(0), eta0, mstates)

        spec = LoopSpec(
            self.num_steps, self.block_steps, self.sample_every, self.t0, self.dt, self.checkpoint
        )
        state, outputs = run_blocks(
            step,
            state,
            spec,
            self.monitors,
            params,
            terms=terms,
            key=key,
            noise_shape=(n_noisy, n_nodes, *batch),
        )
        if fused:
            state = state._replace(
                buffer=delays.push(state.buffer, pre(state.x), state.step, slots)
            )
        return SimResult(outputs, state)


# ---------------------------------------------------------------------- construction
def make_simulator(
    model: Model,
    *,
    dt: float,
    num_steps: int,
    coupling: Coupling = linear,
    integrator: str | Integrator = "heun",
    noise: AdditiveNoise | ColouredNoise | None = None,
    max_lag: int | None = None,
    lag_mode: str = "nearest",
    coupling_stages: str = "held",
    monitors: Sequence[Monitor] | None = None,
    sample_every: int = 1,
    block_steps: int | None = None,
    checkpoint: bool = False,
    cvar: Sequence[int] | None = None,
    stimulus: Callable[[Array, Any], Array] | None = None,
    t0: float = 0.0,
    warn_on_clip: bool = False,
    delay_kernel: str = "auto",
    remat_dfun: bool = True,
    delay_adjoint: str = "auto",
) -> Simulator:
    """Build a network simulator.

    Parameters
    ----------
    model:
        A :class:`~vbinfer.models.Model`, e.g. ``vbinfer.models.mpr``.
    dt:
        Step in ms.
    num_steps:
        Steps per run (a multiple of ``sample_every`` and of ``block_steps``).
    coupling:
        A :class:`~vbinfer.coupling.Coupling` (default linear).
    integrator:
        ``"euler"`` (Euler-Maruyama with noise), ``"heun"`` (stochastic Heun with noise) or
        ``"rk4"`` (deterministic), or an :class:`~vbinfer.integrators.Integrator`.
    noise:
        ``None`` (ODE), :class:`~vbinfer.noise.AdditiveNoise` or
        :class:`~vbinfer.noise.ColouredNoise`.
    max_lag:
        ``None`` for instantaneous coupling (lengths are ignored), else the largest lag in
        steps the history buffer holds (fixed up front; :func:`~vbinfer.network.max_lag_steps`
        computes it for a network).
    lag_mode:
        ``"nearest"`` (default, as TVB), ``"floor"`` (as vbjax) or ``"linear"`` (fractional
        lags, differentiable in lengths and speed). See :data:`~vbinfer.network.LAG_MODES`.
    coupling_stages:
        ``"held"`` (default, TVB's convention): coupling computed once per step from the state
        at the step's start and held over all integrator stages; cheaper, first order in the
        coupling. ``"per_stage"``: coupling recomputed at every stage (with delays, the stage
        at ``t + dt`` sees the predicted state for zero lags); keeps Heun second order.
    monitors:
        What to record (default: temporal average of all state variables).
    sample_every:
        Steps per sample period.
    block_steps:
        Steps per block (noise is drawn per block from a key; blocks are the checkpoint unit).
        Default: the largest divisor of ``num_steps`` that is a multiple of ``sample_every``,
        at most 1000 steps.
    checkpoint:
        Rematerialise each block in reverse mode (memory ~ ``num_steps / block_steps +
        block_steps`` instead of ``num_steps``).
    cvar:
        State variables sent through the network (default ``model.cvar``).
    stimulus:
        ``stimulus(t, params) -> array`` broadcastable to ``(n_states, n_nodes, *batch)``,
        added to the derivative; ``t`` in ms.
    t0:
        Time of step 0, ms.
    warn_on_clip:
        When lags are traced (so they cannot be checked before the run), warn at run time if
        any exceeds ``max_lag`` (it is clipped to ``max_lag``).
    delay_kernel:
        How delayed coupling is summed: ``"auto"`` (default: the compiled CPU kernel of
        :mod:`vbinfer._ffi` when it builds, else XLA), ``"ffi"`` (require the kernel) or
        ``"xla"`` (XLA's gather then a weighted sum). Same numbers either way up to the order
        of the floating-point sum; gradients and ``vmap`` work with both. Sparse networks and
        non-CPU devices always use XLA.
    remat_dfun:
        Recompute the model's derivative in reverse mode instead of storing its intermediates
        (``jax.checkpoint``): the tape keeps only each stage's state and coupling. Same values
        and gradients; on the 60,000-step 84-node Wong-Wang run it halved gradient memory and
        cut gradient time by 40 %. Forward runs are unaffected.
    delay_adjoint:
        How delayed coupling is differentiated. ``"inplace"``: pushing into and reading from
        the history buffer is one JAX primitive with its own transpose
        (:func:`vbinfer.delays.push_and_read`), which adds each read's cotangent into the
        buffer's in place (a compiled kernel for dense networks on CPU), in time proportional
        to the number of edges. ``"autodiff"``: JAX derives it op by op; each step's backward
        pass then costs time in proportion to the buffer, ``max_lag * n_nodes``. Both give the
        same values, and the same derivatives of every kind (``grad``, ``jacfwd``,
        ``hessian``, ``vmap`` of them) to rounding; ``"inplace"`` was 2-3x faster in gradients
        on the dense benchmarks. ``"auto"`` (default): ``"inplace"`` for dense networks with
        delays and ``coupling_stages="held"`` (which it needs), ``"autodiff"`` for sparse
        networks (whose adjoint has no compiled kernel; they keep JAX's derivative and its
        exact rounding) and everywhere else.

    Returns
    -------
    :class:`Simulator`.

    Examples
    --------
    >>> import jax, numpy as np
    >>> from vbinfer import models, network, simulate
    >>> sim = simulate.make_simulator(models.mpr, dt=0.01, num_steps=100, max_lag=20)
    >>> net = network.make_network(np.ones((2, 2)) * 0.5, np.full((2, 2), 0.1), speed=1.0)
    >>> res = sim.run(None, simulate.SimParams(models.MPRParams()), net)
    >>> res.outputs["tavg"].shape
    (100, 2, 2)
    """
    scheme = get_integrator(integrator)
    if not isinstance(model, Model):
        raise ValueError(f"model must be a vbinfer Model, got {type(model).__name__}")
    if not isinstance(coupling, Coupling):
        raise ValueError(f"coupling must be a vbinfer Coupling, got {type(coupling).__name__}")
    if not (isinstance(dt, int | float) and math.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be a positive number of ms, got {dt!r}")
    num_steps = _positive_int("num_steps", num_steps)
    sample_every = _positive_int("sample_every", sample_every)
    if num_steps % sample_every:
        raise ValueError(
            f"num_steps must be a multiple of sample_every, got {num_steps=} and {sample_every=}"
        )
    if block_steps is None:
        block_steps = default_block(num_steps, sample_every)
    else:
        block_steps = _positive_int("block_steps", block_steps)
        if block_steps % sample_every or num_steps % block_steps:
            raise ValueError(
                "block_steps must be a multiple of sample_every and divide num_steps, got "
                f"{block_steps=}, {sample_every=}, {num_steps=}"
            )
    if max_lag is not None:
        max_lag = _nonnegative_int("max_lag", max_lag)
    if lag_mode not in LAG_MODES:
        raise ValueError(f"lag_mode must be one of {LAG_MODES}, got {lag_mode!r}")
    if coupling_stages not in COUPLING_STAGES:
        raise ValueError(
            f"coupling_stages must be one of {COUPLING_STAGES}, got {coupling_stages!r}"
        )
    if max_lag is not None and coupling_stages == "per_stage" and 0.5 in scheme.stages:
        raise ValueError(
            f"coupling_stages='per_stage' with delays needs stages on whole steps; integrator "
            f"{scheme.name!r} has a midpoint stage: use 'heun' or coupling_stages='held'"
        )
    if noise is not None:
        if not isinstance(noise, AdditiveNoise | ColouredNoise):
            raise ValueError(f"noise must be AdditiveNoise, ColouredNoise or None, got {noise!r}")
        if isinstance(noise, AdditiveNoise) and not scheme.stochastic:
            raise ValueError(
                f"integrator {scheme.name!r} is deterministic; use 'heun' or 'euler' with "
                "AdditiveNoise (ColouredNoise works with any integrator)"
            )
        if isinstance(noise, ColouredNoise) and not (noise.tau > 0):
            raise ValueError(f"noise.tau must be > 0 ms, got {noise.tau!r}")
        if noise.states is not None:
            for s in noise.states:
                if not 0 <= int(s) < model.n_states:
                    raise ValueError(
                        f"noise.states: index {s} out of range for {model.n_states} state variables"
                    )
    cvar = tuple(model.cvar if cvar is None else (int(c) for c in cvar))
    for c in cvar:
        if not 0 <= c < model.n_states:
            raise ValueError(f"cvar: index {c} out of range for {model.n_states} state variables")
    n_out = coupling.n_out(len(cvar))
    if n_out > model.n_coupling:
        raise ValueError(
            f"coupling {coupling.name!r} with cvar={cvar} gives {n_out} coupling inputs but "
            f"model {model.name!r} reads at most {model.n_coupling} ({model.coupling_names})"
        )
    monitors = (temporal_average(),) if monitors is None else tuple(monitors)
    monitors = tuple(
        m if m.prepare is None else m.prepare(dt * sample_every, num_steps // sample_every)
        for m in monitors
    )
    names = [m.name for m in monitors]
    if len(set(names)) != len(names):
        raise ValueError(f"monitors must have distinct names, got {names}")
    return Simulator(
        model=model,
        coupling=coupling,
        integrator=scheme,
        dt=float(dt),
        num_steps=num_steps,
        sample_every=sample_every,
        block_steps=block_steps,
        max_lag=max_lag,
        lag_mode=lag_mode,
        coupling_stages=coupling_stages,
        noise=noise,
        monitors=monitors,
        cvar=cvar,
        checkpoint=bool(checkpoint),
        stimulus=stimulus,
        t0=float(t0),
        warn_on_clip=bool(warn_on_clip),
        delay_kernel=_delay_kernel(delay_kernel, max_lag),
        remat_dfun=bool(remat_dfun),
        delay_adjoint=_delay_adjoint(delay_adjoint, max_lag, coupling_stages),
    )


DELAY_KERNELS = ("auto", "ffi", "xla")


DELAY_ADJOINTS = ("auto", "autodiff", "inplace")


def _delay_adjoint(choice: str, max_lag: int | None, coupling_stages: str) -> str:
    """Check ``make_simulator(delay_adjoint=...)``; ``"auto"`` stays where it can apply."""
    if choice not in DELAY_ADJOINTS:
        raise ValueError(f"delay_adjoint must be one of {DELAY_ADJOINTS}, got {choice!r}")
    if choice == "auto":
        return "auto" if max_lag is not None and coupling_stages == "held" else "autodiff"
    if choice == "inplace" and (max_lag is None or coupling_stages != "held"):
        raise ValueError(
            "delay_adjoint='inplace' needs delays (max_lag set) and coupling_stages='held', got "
            f"max_lag={max_lag!r}, coupling_stages={coupling_stages!r}"
        )
    return choice


def _delay_kernel(choice: str, max_lag: int | None) -> str:
    """Resolve ``make_simulator(delay_kernel=...)`` to ``"ffi"`` or ``"xla"``."""
    if choice not in DELAY_KERNELS:
        raise ValueError(f"delay_kernel must be one of {DELAY_KERNELS}, got {choice!r}")
    if max_lag is None or choice == "xla":
        return "xla"
    if _ffi.available():
        return "ffi"
    if choice == "ffi":
        raise ValueError(
            f"delay_kernel='ffi': the compiled kernel is unavailable ({_ffi.build_error()}); "
            "use 'auto' or 'xla'"
        )
    return "xla"


# ---------------------------------------------------------------------- helpers
def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _nonnegative_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def check_params(params: Any) -> None:
    """Raise ``ValueError`` naming the field when a concrete parameter is not finite."""
    if not isinstance(params, SimParams):
        raise ValueError(
            f"params must be a SimParams(model=..., coupling=...), got {type(params).__name__}"
        )
    for group in ("model", "coupling"):
        p = getattr(params, group)
        if p is None:
            continue
        for field, value in zip(p._fields, p, strict=True):
            check_finite(f"params.{group}.{field}", value)


def _check_leading(name: str, x: Array, b: int) -> None:
    if x.shape[0] != b:
        raise ValueError(
            f"{name} must have a leading batch axis of size {b}, got shape {tuple(x.shape)}"
        )


def _batch_last(params: Any, axes: Any, b: int, name: str) -> Any:
    """Move the batch axis of batched leaves last; give unbatched arrays a trailing axis."""
    leaves, treedef = jax.tree_util.tree_flatten(params)
    if axes is None or isinstance(axes, int):
        ax_leaves = [axes] * len(leaves)
    else:
        ax_leaves = treedef.flatten_up_to(axes)
    out = []
    for leaf, ax in zip(leaves, ax_leaves, strict=True):
        arr = jnp.asarray(leaf)
        if ax is None or arr.ndim == 0:
            out.append(arr[..., None] if arr.ndim else arr)
            continue
        if arr.shape[ax] != b:
            raise ValueError(
                f"{name}: a batched leaf must have size batch_size={b} on axis {ax}, got shape "
                f"{tuple(arr.shape)}"
            )
        out.append(jnp.moveaxis(arr, ax, -1))
    return jax.tree_util.tree_unflatten(treedef, out)
