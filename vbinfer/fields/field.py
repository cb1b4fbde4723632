"""Neural fields on the sphere: any neural mass model at every grid point, coupled locally through
an isotropic kernel and, optionally, between regions through a delayed connectome.

State layout
------------
A field's state is ``(n_states, n_points)`` with ``n_points = nlat * nlon`` the points of the
Gauss-Legendre grid of an :class:`~vbinfer.fields.SHT`, flattened latitude-major (point
``i * nlon + j`` is latitude row ``i``, north to south, and longitude ``j``):
``x.reshape(n_states, nlat, nlon)`` (or :meth:`FieldSimulator.to_grid`) gives the maps. The
grid points play the part of a network's nodes, so the models, monitors, noise and results of
the simulation core work unchanged: a parameter broadcasts against ``(n_points,)`` (a scalar,
or a map flattened to ``(n_points,)``), monitors record ``(num_samples, n_vars, n_points)``,
pre-drawn noise is ``(num_steps, n_noisy, n_points)`` and :func:`~vbinfer.simulate.diverged`
applies. Batches go through ``jax.vmap``.

Coupling input
--------------
The coupling input of the model at a grid point ``p`` is the sum of two terms, each built from
the model's coupled state variables ``xc`` (``cvar``) by a :class:`~vbinfer.coupling.Coupling`
split into ``pre`` and ``post`` as in the network simulator:

.. math::

    c_p = \\mathrm{post}_{loc}\\big((k * \\mathrm{pre}_{loc}(x_c))_p,\\ x_{c,p},\\ g_0\\big)
        + \\mathrm{post}\\Big(\\sum_j W_{r(p) j}\\, \\bar h_j(t - d_{r(p) j}),\\ x_{c,p},
          \\ \\textstyle\\sum_j W_{r(p) j}\\Big)

- **Local**: ``k * h`` is the convolution on the unit sphere with the isotropic kernel whose
  gains per degree are ``kernel_gains`` (:func:`~vbinfer.fields.make_kernel_gains`, or any
  gains such as ``-l (l + 1)`` for the Laplacian), applied spectrally with one precomputed
  matrix per order (:func:`~vbinfer.fields.make_spectral_operator`); the kernel's integral
  ``g_0 = gains[0]`` plays the part of a network's row sum, so ``difference`` coupling gives
  ``a (k * x - g_0 x)``. It is evaluated at every integrator stage (it is part of the field's
  instantaneous dynamics; Heun stays second order).
- **Long-range** (optional): ``region_map`` assigns every grid point to a region ``r(p)``;
  ``bar h_j`` is the area-weighted mean of ``pre(x_c)`` over region ``j``, sent through the
  connectome with conduction delays (the ring buffer of :mod:`vbinfer.delays`, regions as
  nodes), and the delayed input of region ``r`` reaches every point of it. Computed once per
  step from the state at the step's start and held over the stages (TVB's convention).

Noise is independent at every grid point (``sigma dW`` per point), drawn from a key block by
block or passed pre-drawn, exactly as in :mod:`vbinfer.simulate`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from vbinfer import delays
from vbinfer._loop import LoopSpec, default_block, make_noise_terms, run_blocks
from vbinfer._precision import HIGHEST
from vbinfer._typing import Array, ArrayLike, PRNGKey
from vbinfer._validate import check_finite, is_concrete
from vbinfer.coupling import Coupling, linear
from vbinfer.fields.sht import SHT, SpectralOperator, apply_operator, make_spectral_operator
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
from vbinfer.simulate import SimResult, SimState

__all__ = ["FieldParams", "FieldSimulator", "make_field_simulator", "region_areas"]


class FieldParams(NamedTuple):
    """Parameters of a field simulation.

    Attributes
    ----------
    model:
        The model's parameter NamedTuple (e.g. :class:`~vbinfer.models.MPRParams`); every leaf
        broadcasts against ``(n_points,)``, so a flattened map gives one value per grid point.
    local:
        Parameters of the local coupling (e.g. :class:`~vbinfer.coupling.LinearParams`, whose
        ``a`` is the local coupling strength); ``None`` for its defaults.
    coupling:
        Parameters of the long-range coupling; ``None`` for its defaults.
    gains:
        ``(lmax + 1,)`` kernel gains replacing the simulator's for this run (so that kernel
        widths can be traced, vmapped and differentiated); ``None`` keeps the simulator's.
    """

    model: Any
    local: Any = None
    coupling: Any = None
    gains: ArrayLike | None = None


@dataclasses.dataclass(frozen=True, eq=False)
class FieldSimulator:
    """A compiled-shape field simulator; build it with :func:`make_field_simulator`."""

    model: Model
    sht: SHT
    kernel_gains: Array | None
    operator: SpectralOperator | None
    local_coupling: Coupling
    coupling: Coupling
    integrator: Integrator
    dt: float
    num_steps: int
    sample_every: int
    block_steps: int
    max_lag: int | None
    lag_mode: str
    noise: AdditiveNoise | ColouredNoise | None
    monitors: tuple[Monitor, ...]
    cvar: tuple[int, ...]
    region_map: np.ndarray | None
    n_regions: int
    checkpoint: bool
    stimulus: Callable[[Array, Any], Array] | None
    t0: float
    warn_on_clip: bool

    # ------------------------------------------------------------------ properties
    @property
    def n_points(self) -> int:
        """Grid points, ``nlat * nlon``."""
        return self.sht.nlat * self.sht.nlon

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

    @property
    def noise_shape(self) -> tuple[int, ...]:
        """Shape of pre-drawn noise: ``(num_steps, n_noisy, n_points)``."""
        return (self.num_steps, len(self.noise_states), self.n_points)

    def to_grid(self, y: ArrayLike) -> Array:
        """Reshape ``(..., n_points)`` to ``(..., nlat, nlon)`` maps (rows north to south)."""
        y = jnp.asarray(y)
        if y.ndim < 1 or y.shape[-1] != self.n_points:
            raise ValueError(
                f"y must have shape (..., n_points) = (..., {self.n_points}), "
                f"got shape {tuple(y.shape)}"
            )
        return y.reshape(*y.shape[:-1], self.sht.nlat, self.sht.nlon)

    # ------------------------------------------------------------------ public API
    def run(
        self,
        key: PRNGKey | Array | None,
        params: FieldParams,
        network: Network | SparseNetwork | None = None,
        init: ArrayLike | SimState | None = None,
    ) -> SimResult:
        """Simulate the field.

        Parameters
        ----------
        key:
            A PRNG key (noise drawn inside the loop, one block of steps at a time), an array of
            pre-drawn standard normals shaped :attr:`noise_shape`
            (:func:`~vbinfer.noise.draw_noise` with ``shape=(n_noisy, n_points)`` and this
            simulator's ``block_steps`` gives exactly the key's numbers), or ``None`` for a
            deterministic run.
        params:
            :class:`FieldParams`.
        network:
            The connectome between the regions of ``region_map`` (``W[i, j]`` from region ``j``
            to ``i``, lengths in mm, speed in mm/ms), a :class:`~vbinfer.network.Network` or
            :class:`~vbinfer.network.SparseNetwork` with ``n_regions`` nodes; ``None`` when the
            simulator has no region map.
        init:
            Initial state ``(n_states, n_points)``, a :class:`~vbinfer.simulate.SimState` from
            a previous run to resume from, or ``None`` for the model's default state (the same
            at every point). Values outside the model's bounds are clipped first. The history
            of the delayed coupling is constant, equal to the initial region means.

        Returns
        -------
        :class:`~vbinfer.simulate.SimResult`: ``outputs[name]`` with samples on axis 0 (e.g.
        ``(num_samples, n_states, n_points)`` for the default temporal average) and ``final``,
        a :class:`~vbinfer.simulate.SimState` with ``x`` of shape ``(n_states, n_points)`` and
        ``buffer`` the ring buffer of region means (or ``None``).
        """
        return self._run(key, params, network, init)

    # ------------------------------------------------------------------ internals
    def _run(self, key, params, network, init) -> SimResult:
        model, sht = self.model, self.sht
        P = self.n_points
        nlat, nlon = sht.nlat, sht.nlon
        _check_field_params(params)
        if isinstance(init, SimState):
            state = init
            x0 = state.x
        else:
            x0 = default_state(model, (P,)) if init is None else jnp.asarray(init)
            state = None
        if x0.ndim != 2 or tuple(x0.shape) != (model.n_states, P):
            raise ValueError(
                f"init must have shape (n_states, n_points) = ({model.n_states}, {P}) for model "
                f"{model.name!r} on a {nlat} x {nlon} grid (flattened, latitude-major; use "
                f"x.reshape(n_states, -1) for maps), got shape {tuple(x0.shape)}"
            )
        if not jnp.issubdtype(x0.dtype, jnp.floating):
            x0 = x0.astype(jnp.result_type(float))
        check_finite("init", x0)
        dtype = x0.dtype
        if np.finfo(dtype).bits > np.finfo(sht.dtype).bits:
            raise ValueError(
                f"init is {np.dtype(dtype)} but the transform's tables are "
                f"{np.dtype(sht.dtype)}; build the transform with make_sht(..., "
                f"dtype={np.dtype(dtype)})"
            )
        if state is None:
            x0 = apply_bounds(model, x0)

        # -- local coupling --------------------------------------------------------------
        lparams = params.local if params.local is not None else self.local_coupling.params_cls()
        gains = self.kernel_gains if params.gains is None else params.gains
        local = gains is not None
        if local:
            gains = jnp.asarray(gains)
            if gains.shape != (sht.lmax + 1,):
                raise ValueError(
                    f"params.gains must have shape (lmax + 1,) = ({sht.lmax + 1},), one gain per "
                    f"degree, got shape {tuple(gains.shape)}"
                )
            check_finite("params.gains", gains)
            if params.gains is None and self.operator is not None:
                op = self.operator
            else:
                op = make_spectral_operator(sht, gains)
            g0 = gains[0].astype(dtype)
            n_pre_local = self.local_coupling.n_pre(len(self.cvar))
            n_out_local = self.local_coupling.n_out(len(self.cvar))
            if n_out_local > model.n_coupling:
                raise ValueError(
                    f"params.gains: local_coupling {self.local_coupling.name!r} with cvar="
                    f"{self.cvar} gives {n_out_local} coupling inputs but model {model.name!r} "
                    f"reads at most {model.n_coupling} ({model.coupling_names})"
                )

            def local_input(xs):
                xc = take_rows(xs, self.cvar)
                h = self.local_coupling.pre(xc, lparams)
                k = apply_operator(sht, op, h.reshape(n_pre_local, nlat, nlon))
                return self.local_coupling.post(k.reshape(n_pre_local, P), xc, g0, lparams)

        # -- long-range coupling ---------------------------------------------------------
        regional = self.region_map is not None
        if regional != (network is not None):
            raise ValueError(
                "network: pass the connectome between regions exactly when the simulator has a "
                f"region_map (it has {'one' if regional else 'none'}), got "
                f"{'None' if network is None else type(network).__name__}"
            )
        delayed = regional and self.max_lag is not None
        cparams = params.coupling if params.coupling is not None else self.coupling.params_cls()
        if regional:
            R = num_nodes(network)
            if R != self.n_regions:
                raise ValueError(
                    f"network must have n_nodes equal to the regions of region_map "
                    f"(n_regions={self.n_regions}, indices 0..{self.n_regions - 1}), "
                    f"got {R} nodes"
                )
            check_network(network, delayed)
            rmap = jnp.asarray(self.region_map, jnp.int32)
            area = _point_areas(sht).astype(dtype)
            inv_region_area = 1.0 / jax.ops.segment_sum(area, rmap, num_segments=R)
            sparse = isinstance(network, SparseNetwork)
            if sparse:
                weights = jnp.asarray(network.values, dtype)
                rows, cols = network.rows, network.cols
                row_sums = jax.ops.segment_sum(weights, rows, num_segments=R)
            else:
                weights = jnp.asarray(network.weights, dtype)
                rows = None
                cols = jnp.tile(jnp.arange(R, dtype=jnp.int32), R)
                row_sums = weights.sum(axis=1)
            row_sums_pts = row_sums[rmap]
            n_pre = self.coupling.n_pre(len(self.cvar))

            def pre_means(xs):  # (n_states, P) -> (n_pre, R): area-weighted region means
                h = self.coupling.pre(take_rows(xs, self.cvar), cparams)
                s = jax.ops.segment_sum((h * area).T, rmap, num_segments=R)
                return s.T * inv_region_area

            def long_input(summed, xs):  # summed (n_pre, R) -> (n_out, P)
                xc = take_rows(xs, self.cvar)
                return self.coupling.post(summed[:, rmap], xc, row_sums_pts, cparams)

            if delayed:
                slots = delays.num_slots(self.max_lag, self.lag_mode)
                lags = lags_in_steps(network.lengths, network.speed, self.dt, self.lag_mode)
                if is_concrete(lags) and lags.size:
                    top = float(jnp.max(lags))
                    if top > self.max_lag:
                        raise ValueError(
                            f"network: the largest lag is {top:g} steps (length / speed / dt) "
                            f"but the simulator was built with max_lag={self.max_lag}; build it "
                            f"with max_lag >= {math.ceil(top)} or raise the conduction speed"
                        )
                lags = delays.clip_lags(lags, self.max_lag, self.warn_on_clip)
                plan = delays.make_read_plan(
                    lags.reshape(-1), cols, weights.reshape(-1), R, slots, self.lag_mode
                )

                def network_sum(buf, n, xs):
                    return delays.read(buf, plan, n, slots, R, n_pre, (), rows)

            else:

                def network_sum(buf, n, xs):
                    m = pre_means(xs)
                    if sparse:
                        g = m[:, cols] * weights
                        return jax.ops.segment_sum(
                            g.T, rows, num_segments=R, indices_are_sorted=True
                        ).T
                    return jnp.matmul(m, weights.T, precision=HIGHEST)

        n_out = max(
            self.local_coupling.n_out(len(self.cvar)) if local else 0,
            self.coupling.n_out(len(self.cvar)) if regional else 0,
            1,
        )

        def pad(c):
            if c.shape[0] == n_out:
                return c
            return jnp.concatenate([c, jnp.zeros((n_out - c.shape[0], P), c.dtype)])

        # -- noise -----------------------------------------------------------------------
        noise = self.noise
        n_noisy = len(self.noise_states)
        sigma = None
        if noise is not None:
            sigma = resolve_sigma(noise.sigma, params, n_noisy, 1).astype(dtype)
        terms = make_noise_terms(
            noise,
            key,
            sigma,
            self.noise_states,
            model.n_states,
            (P,),
            self.dt,
            self.noise_shape,
            "(num_steps, n_noisy, n_points) = ",
        )
        coloured = terms.coloured_next is not None

        # -- one step --------------------------------------------------------------------
        project = lambda x: apply_bounds(model, x)  # noqa: E731
        stim = self.stimulus

        def step(carry, z):
            x, buf, n, eta = carry
            t = self.t0 + n.astype(dtype) * self.dt
            eta_next = terms.coloured_next(eta, z) if coloured else None
            c_held = long_input(network_sum(buf, n, x), x) if regional else None

            def f(frac, xs, aux):
                c = None
                if local:
                    c = pad(local_input(xs))
                if regional:
                    c = pad(c_held) if c is None else c + pad(c_held)
                if c is None:
                    c = jnp.zeros((n_out, P), xs.dtype)
                dx = model.dfun(xs, c, params.model)
                if stim is not None:
                    dx = dx + stim(t + frac * self.dt, params)
                if coloured:
                    dx = dx + terms.coloured_at(eta, eta_next, frac)
                return dx, aux

            incr = terms.increment(z) if terms.increment is not None else None
            x_new, _ = self.integrator.step(f, x, None, self.dt, incr, project)
            if delayed:
                buf = delays.push(buf, pre_means(x_new), n + 1, slots)
            if coloured:
                eta = eta_next
            return (x_new, buf, n + 1, eta), None

        # -- initial carry ------------------------------------------------------------------
        if state is None:
            buf = delays.init_buffer(pre_means(x0), slots) if delayed else None
            eta0 = jnp.zeros((n_noisy, P), dtype) if coloured else None
            mstates = tuple(m.init(x0, params) for m in self.monitors)
            state = SimState(x0, buf, jnp.int32(0), eta0, mstates)
        spec = LoopSpec(
            self.num_steps, self.block_steps, self.sample_every, self.t0, self.dt, self.checkpoint
        )
        state, outputs = run_blocks(
            step, state, spec, self.monitors, params, terms=terms, key=key, noise_shape=(n_noisy, P)
        )
        return SimResult(outputs, state)


# ---------------------------------------------------------------------- construction
def make_field_simulator(
    model: Model,
    sht: SHT,
    kernel_gains: ArrayLike | None,
    *,
    dt: float,
    num_steps: int,
    local_coupling: Coupling = linear,
    coupling: Coupling = linear,
    integrator: str | Integrator = "heun",
    noise: AdditiveNoise | ColouredNoise | None = None,
    region_map: ArrayLike | None = None,
    n_regions: int | None = None,
    max_lag: int | None = None,
    lag_mode: str = "nearest",
    monitors: Sequence[Monitor] | None = None,
    sample_every: int = 1,
    block_steps: int | None = None,
    checkpoint: bool = False,
    cvar: Sequence[int] | None = None,
    stimulus: Callable[[Array, Any], Array] | None = None,
    t0: float = 0.0,
    warn_on_clip: bool = False,
) -> FieldSimulator:
    """Build a simulator of a neural field on the sphere (see the module docstring).

    Parameters
    ----------
    model:
        Any :class:`~vbinfer.models.Model`, run at every grid point.
    sht:
        :class:`~vbinfer.fields.SHT` from :func:`~vbinfer.fields.make_sht`: the grid and the
        transform (its dtype must be at least that of the state).
    kernel_gains:
        ``(sht.lmax + 1,)`` gains per degree of the local kernel on the unit sphere, e.g.
        ``make_kernel_gains("gaussian", sht.lmax, sigma=0.1)`` (a normalised Gaussian of 0.1 rad)
        or ``-l (l + 1)`` for the Laplace-Beltrami operator; ``None`` for no local coupling.
        :attr:`FieldParams.gains` can replace them per run (traced, differentiable).
    dt:
        Step in ms.
    num_steps:
        Steps per run (a multiple of ``sample_every`` and of ``block_steps``).
    local_coupling:
        :class:`~vbinfer.coupling.Coupling` of the local term (default linear: ``a (k * x) +
        b``); ``difference`` gives ``a (k * x - g_0 x)``.
    coupling:
        :class:`~vbinfer.coupling.Coupling` of the long-range (region) term (default linear).
    integrator:
        ``"euler"``, ``"heun"`` or ``"rk4"`` (deterministic), or an
        :class:`~vbinfer.integrators.Integrator`.
    noise:
        ``None`` (ODE), :class:`~vbinfer.noise.AdditiveNoise` or
        :class:`~vbinfer.noise.ColouredNoise`, independent at every grid point.
    region_map:
        ``(n_points,)`` or ``(nlat, nlon)`` integer region of every grid point, in
        ``0 .. n_regions - 1``, each region holding at least one point; ``None`` for no
        long-range coupling. The connectome is passed to :meth:`FieldSimulator.run`.
    n_regions:
        Number of regions (the network's nodes); default ``max(region_map) + 1``.
    max_lag:
        ``None`` for instantaneous long-range coupling, else the largest lag in steps the
        history of region means holds (:func:`~vbinfer.network.max_lag_steps`).
    lag_mode:
        ``"nearest"``, ``"floor"`` or ``"linear"`` (differentiable in lengths and speed); see
        :data:`~vbinfer.network.LAG_MODES`.
    monitors:
        What to record (default: temporal average of all state variables); any monitor of
        :mod:`vbinfer.monitors`, with grid points as nodes.
    sample_every:
        Steps per sample period.
    block_steps:
        Steps per block (noise is drawn per block from a key; blocks are the checkpoint unit).
        Default: the largest divisor of ``num_steps`` that is a multiple of ``sample_every``,
        at most 1000 steps.
    checkpoint:
        Rematerialise each block in reverse mode.
    cvar:
        Coupled state variables (default ``model.cvar``), for both terms.
    stimulus:
        ``stimulus(t, params) -> array`` broadcastable to ``(n_states, n_points)``, added to
        the derivative; ``t`` in ms.
    t0:
        Time of step 0, ms.
    warn_on_clip:
        Warn at run time when traced lags exceed ``max_lag`` (they are clipped).

    Returns
    -------
    :class:`FieldSimulator`; call ``sim.run(key, params, network, init)``.

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> from vbinfer import coupling, fields, models
    >>> sht = fields.make_sht(16)
    >>> gains = fields.make_kernel_gains("gaussian", sht.lmax, sigma=0.3)
    >>> sim = fields.make_field_simulator(models.mpr, sht, gains, dt=0.01, num_steps=100,
    ...                                   sample_every=10)
    >>> p = fields.FieldParams(models.MPRParams(eta=-4.6), local=coupling.LinearParams(a=0.5))
    >>> res = jax.jit(sim.run)(None, p)
    >>> res.outputs["tavg"].shape  # samples, states, grid points (16 x 32)
    (10, 2, 512)
    >>> sim.to_grid(res.final.x).shape
    (2, 16, 32)
    """
    scheme = get_integrator(integrator)
    if not isinstance(model, Model):
        raise ValueError(f"model must be a vbinfer Model, got {type(model).__name__}")
    if not isinstance(sht, SHT):
        raise ValueError(f"sht must be an SHT from make_sht, got {type(sht).__name__}")
    for name, c in (("local_coupling", local_coupling), ("coupling", coupling)):
        if not isinstance(c, Coupling):
            raise ValueError(f"{name} must be a vbinfer Coupling, got {type(c).__name__}")
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

    # kernel gains and their precomputed operator
    operator = None
    if kernel_gains is not None:
        kernel_gains = jnp.asarray(kernel_gains)
        if jnp.issubdtype(kernel_gains.dtype, jnp.complexfloating) or kernel_gains.shape != (
            sht.lmax + 1,
        ):
            raise ValueError(
                f"kernel_gains must be real with shape (lmax + 1,) = ({sht.lmax + 1},), one gain "
                f"per degree (make_kernel_gains(kind, sht.lmax, ...)), got "
                f"{kernel_gains.dtype} of shape {tuple(kernel_gains.shape)}"
            )
        check_finite("kernel_gains", kernel_gains)
        if is_concrete(kernel_gains):
            operator = make_spectral_operator(sht, kernel_gains)

    # region map
    rmap = None
    if region_map is not None:
        rmap, n_regions = _check_region_map(region_map, n_regions, sht)
    elif n_regions is not None:
        raise ValueError(f"n_regions is given ({n_regions!r}) but region_map is None")
    else:
        n_regions = 0
    if max_lag is not None:
        if isinstance(max_lag, bool) or not isinstance(max_lag, int | np.integer) or max_lag < 0:
            raise ValueError(f"max_lag must be a non-negative integer, got {max_lag!r}")
        max_lag = int(max_lag)
        if rmap is None:
            raise ValueError("max_lag is set but region_map is None (delays are between regions)")
    if lag_mode not in LAG_MODES:
        raise ValueError(f"lag_mode must be one of {LAG_MODES}, got {lag_mode!r}")

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
    for name, c, used in (
        ("local_coupling", local_coupling, kernel_gains is not None),
        ("coupling", coupling, rmap is not None),
    ):
        n_out = c.n_out(len(cvar))
        if used and n_out > model.n_coupling:
            raise ValueError(
                f"{name} {c.name!r} with cvar={cvar} gives {n_out} coupling inputs but model "
                f"{model.name!r} reads at most {model.n_coupling} ({model.coupling_names})"
            )
    monitors = (temporal_average(),) if monitors is None else tuple(monitors)
    monitors = tuple(
        m if m.prepare is None else m.prepare(dt * sample_every, num_steps // sample_every)
        for m in monitors
    )
    names = [m.name for m in monitors]
    if len(set(names)) != len(names):
        raise ValueError(f"monitors must have distinct names, got {names}")
    return FieldSimulator(
        model=model,
        sht=sht,
        kernel_gains=kernel_gains,
        operator=operator,
        local_coupling=local_coupling,
        coupling=coupling,
        integrator=scheme,
        dt=float(dt),
        num_steps=num_steps,
        sample_every=sample_every,
        block_steps=block_steps,
        max_lag=max_lag,
        lag_mode=lag_mode,
        noise=noise,
        monitors=monitors,
        cvar=cvar,
        region_map=rmap,
        n_regions=int(n_regions),
        checkpoint=bool(checkpoint),
        stimulus=stimulus,
        t0=float(t0),
        warn_on_clip=bool(warn_on_clip),
    )


def region_areas(sht: SHT, region_map: ArrayLike, n_regions: int | None = None) -> np.ndarray:
    """Area of every region on the unit sphere (steradians), by the grid's quadrature weights.

    The weights of the area-weighted region means of the long-range coupling: a grid point at
    latitude row ``k`` covers ``2 pi w_k / nlon`` steradians (``w_k`` the Gauss-Legendre
    weights), and the areas of all regions sum to ``4 pi``.

    Parameters
    ----------
    sht:
        The grid's :class:`~vbinfer.fields.SHT`.
    region_map:
        ``(n_points,)`` or ``(nlat, nlon)`` region indices, as for :func:`make_field_simulator`.
    n_regions:
        Number of regions; default ``max(region_map) + 1``.

    Returns
    -------
    ``(n_regions,)`` float64 areas.

    Examples
    --------
    >>> import numpy as np
    >>> from vbinfer.fields import make_sht
    >>> sht = make_sht(8)
    >>> hemispheres = np.repeat([0, 1], 4 * 16)  # northern rows, then southern
    >>> np.round(region_areas(sht, hemispheres) / np.pi, 6).tolist()
    [2.0, 2.0]
    """
    rmap, n_regions = _check_region_map(region_map, n_regions, sht)
    area = np.asarray(_point_areas(sht), np.float64)
    return np.bincount(rmap, weights=area, minlength=n_regions)


# ---------------------------------------------------------------------- helpers
def _point_areas(sht: SHT) -> Array:
    """``(n_points,)`` quadrature area of every grid point, latitude-major."""
    w = sht.weights * (2.0 * math.pi / sht.nlon)
    return jnp.repeat(w, sht.nlon)


def _check_region_map(
    region_map: ArrayLike, n_regions: int | None, sht: SHT
) -> tuple[np.ndarray, int]:
    if not is_concrete(region_map):
        raise ValueError("region_map must be a concrete integer array (not traced)")
    rmap = np.asarray(region_map)
    P = sht.nlat * sht.nlon
    if rmap.shape not in ((P,), (sht.nlat, sht.nlon)):
        raise ValueError(
            f"region_map must have shape (n_points,) = ({P},) or (nlat, nlon) = "
            f"({sht.nlat}, {sht.nlon}), one region index per grid point, "
            f"got shape {rmap.shape}"
        )
    if rmap.dtype.kind not in "iu":
        if (
            rmap.dtype.kind == "b"
            or not np.all(np.isfinite(rmap))
            or np.any(rmap != np.round(rmap))
        ):
            raise ValueError(f"region_map must hold integer region indices, got dtype {rmap.dtype}")
    rmap = rmap.reshape(-1).astype(np.int64)
    if rmap.min() < 0:
        raise ValueError(f"region_map must hold region indices >= 0, got minimum {int(rmap.min())}")
    top = int(rmap.max())
    if n_regions is None:
        n_regions = top + 1
    elif (
        isinstance(n_regions, bool) or not isinstance(n_regions, int | np.integer) or n_regions < 1
    ):
        raise ValueError(f"n_regions must be a positive integer, got {n_regions!r}")
    if top >= n_regions:
        raise ValueError(
            f"region_map must hold indices in 0..n_regions - 1 = 0..{n_regions - 1}, "
            f"got index {top}"
        )
    counts = np.bincount(rmap, minlength=n_regions)
    empty = np.flatnonzero(counts == 0)
    if empty.size:
        shown = ", ".join(str(int(i)) for i in empty[:10]) + (", ..." if empty.size > 10 else "")
        raise ValueError(
            f"region_map must give every region at least one grid point, got none for "
            f"{empty.size} of {n_regions} regions ({shown}); use a finer grid (larger nlat)"
        )
    return rmap.astype(np.int32), int(n_regions)


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _check_field_params(params: Any) -> None:
    if not isinstance(params, FieldParams):
        raise ValueError(
            "params must be a FieldParams(model=..., local=..., coupling=..., gains=...), got "
            f"{type(params).__name__}"
        )
    for group in ("model", "local", "coupling"):
        p = getattr(params, group)
        if p is None:
            continue
        for field, value in zip(p._fields, p, strict=True):
            check_finite(f"params.{group}.{field}", value)
