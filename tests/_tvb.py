"""Helpers of the TVB parity tests: run the same network in tvb-library and in vbinfer.

tvb-library (GPL-3, the ``parity`` dependency group) is imported here only, lazily, and only by
the tests; vbinfer never imports it.

Alignment of the two simulators (checked in tvb-library 2.10.0, ``tvb/simulator``):

- **Lags.** TVB: ``idelays = rint(tract_lengths / speed / dt)`` (``Connectivity.set_idelays``),
  vbinfer's ``lag_mode="nearest"``: the same rule.
- **History.** Given ``initial_conditions`` of exactly ``horizon = max(idelays) + 1`` rows
  (shape ``(horizon, n_svar, n_node, n_mode)``), TVB keeps them as its ring buffer and sets
  ``current_step = horizon - 1``, so the **last row is the state at t = 0** (the initial
  state) and rows ``0 .. horizon - 2`` are steps ``-max_lag .. -1``, oldest first
  (``BaseHistory.from_simulator``). The first step then couples with
  ``buffer[(step - 1 - d) % horizon]`` at ``step = horizon``, i.e. ``x(0 - d)``. This is
  vbinfer's ``init = rows[-1]`` and ``history = rows[:-1]`` (restricted to ``cvar``).
  (With more than ``horizon`` rows TVB keeps the last ``horizon`` but indexes the current
  state modulo ``horizon``, which need not be the last row: always pass exactly ``horizon``.)
- **Coupling.** Computed once per step from the history and held over both Heun stages
  (``Simulator.__call__`` computes ``node_coupling`` before ``integrate_next_step``): vbinfer's
  ``coupling_stages="held"``. Difference coupling uses the receiver's state at the start of
  the step (``buffer[(step - 1) % horizon]``), as vbinfer's ``post``.
- **Heun.** ``HeunDeterministic``: ``inter = x + dt f(x)``, bounded; ``x + dt/2 (f(x) +
  f(inter))``, bounded: vbinfer's ``heun`` with ``bounds`` clipped after every stage.
- **Raw monitor.** Records the state after every step; sample ``k`` (0-based) is the state
  after ``k + 1`` steps, i.e. vbinfer's ``subsample()`` output ``k``. TVB's time stamp of
  sample ``k`` is ``(current_step + 1 + k) * dt = (horizon + k) * dt``: offset by the history
  length, which we check but otherwise ignore. ``Raw`` records ``model.variables_of_interest``
  (indices ``0 .. len - 1``), so we set it to all state variables.
- **Bounds of the initial state.** TVB clips every row of the initial history to the state
  bounds before the run (``bound_and_clamp`` in ``from_simulator``); vbinfer takes ``init`` and
  ``history`` as given. The cases start inside the bounds, where this makes no difference.
- **Precision.** TVB's history buffer, its weights and the coupling computed from them are
  float32 (``NDArray(..., 'f')`` in ``history.py``), the rest float64: the coupling sees
  states rounded to single precision, so float64 runs agree to about 1e-8, not 1e-15.
"""

from __future__ import annotations

import importlib
import types
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jax
import numpy as np
import pytest

import vbinfer as vb

# Modules of tvb.simulator.models holding the models compared (TVB imports them lazily).
TVB_MODEL_MODULES = (
    "epileptor",
    "infinite_theta",
    "jansen_rit",
    "larter_breakspear",
    "linear",
    "oscillator",
    "wilson_cowan",
    "wong_wang",
    "wong_wang_exc_inh",
)


def import_tvb() -> types.SimpleNamespace:
    """The tvb-library modules the tests use; skip the test when tvb-library is absent.

    Importing tvb warns (a UserWarning "Geodesic distance module is unavailable"; compiling
    some model modules gives SyntaxWarnings for invalid escape sequences in docstrings), which
    the test suite turns into errors: these imports, and only these, run with warnings
    silenced. TVB imports its model modules lazily, so they are imported here too.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pytest.importorskip("tvb.simulator", reason="tvb-library is not installed (parity group)")
        from tvb.datatypes.connectivity import Connectivity
        from tvb.simulator import coupling, integrators, models, monitors, simulator

        for name in TVB_MODEL_MODULES:
            importlib.import_module(f"tvb.simulator.models.{name}")
    return types.SimpleNamespace(
        Connectivity=Connectivity,
        coupling=coupling,
        integrators=integrators,
        models=models,
        monitors=monitors,
        simulator=simulator,
    )


def arr(x: float) -> np.ndarray:
    """A TVB parameter value (TVB parameters are 1-element arrays)."""
    return np.array([float(x)])


@dataclass(frozen=True)
class Case:
    """One model shared by TVB and vbinfer, and the network run to compare them.

    Attributes
    ----------
    name: id of the test.
    tvb_model: ``tvb_model(tvb) -> tvb Model`` with every parameter that matters set.
    tvb_coupling: ``tvb_coupling(tvb) -> tvb Coupling``.
    model: the vbinfer model.
    params: its parameters (the same values as ``tvb_model``, mapped to vbinfer's names).
    coupling: the vbinfer coupling.
    coupling_params: its parameters.
    dt: step, ms.
    steps: number of steps.
    speed: conduction speed of the delayed run, mm/ms (lags ``rint(length / speed / dt)``).
    init: ``(low, high)`` per state variable: the initial state (and random past) is drawn
        uniformly in this box, per node, with a fixed seed.
    cvar: vbinfer's coupled state variables (``None``: ``model.cvar``).
    transient: samples left out of the comparison (0: compare the whole trace).
    regime: optional ``regime(tvb_trace)`` that asserts the run stays in the intended regime
        (``tvb_trace`` is ``(steps, n_states, n_nodes)``).
    note: why this case is set up the way it is.
    """

    name: str
    tvb_model: Callable[[Any], Any]
    tvb_coupling: Callable[[Any], Any]
    model: vb.models.Model
    params: Any
    coupling: vb.coupling.Coupling
    coupling_params: Any
    dt: float
    steps: int
    speed: float
    init: tuple[tuple[float, float], ...]
    cvar: tuple[int, ...] | None = None
    transient: int = 0
    regime: Callable[[np.ndarray], None] | None = None
    note: str = field(default="", compare=False)


# ---------------------------------------------------------------------- network
N_NODES = 5
SEED = 20261125


def network(seed: int = SEED, n: int = N_NODES) -> tuple[np.ndarray, np.ndarray]:
    """Fixed random asymmetric weights (zero diagonal) and tract lengths (2 to 20 mm)."""
    rng = np.random.default_rng(seed)
    w = rng.uniform(0.0, 1.0, (n, n))
    np.fill_diagonal(w, 0.0)
    lengths = rng.uniform(2.0, 20.0, (n, n))
    np.fill_diagonal(lengths, 0.0)
    return w, lengths


def initial_rows(case: Case, rows: int, n: int = N_NODES, seed: int = SEED + 1) -> np.ndarray:
    """``(rows, n_states, n)`` states drawn uniformly in ``case.init`` (fixed seed)."""
    rng = np.random.default_rng(seed)
    lo, hi = np.array(case.init, dtype=float).T
    u = rng.uniform(size=(rows, len(case.init), n))
    return lo[None, :, None] + (hi - lo)[None, :, None] * u


# ---------------------------------------------------------------------- the two simulators
def lags(lengths: np.ndarray, speed: float, dt: float) -> np.ndarray:
    """TVB's integer lags ``rint(length / speed / dt)``."""
    return np.rint(lengths / speed / dt).astype(int)


def run_tvb(
    tvb: types.SimpleNamespace,
    case: Case,
    weights: np.ndarray,
    lengths: np.ndarray,
    speed: float,
    history: np.ndarray,
) -> np.ndarray:
    """Simulate ``case`` in TVB; ``history`` is ``(horizon, n_states, n_nodes)``, last row t = 0.

    Returns the Raw monitor's trace ``(steps, n_states, n_nodes)``.
    """
    n = weights.shape[0]
    conn = tvb.Connectivity(
        weights=weights.copy(),
        tract_lengths=lengths.copy(),
        speed=arr(speed),
        region_labels=np.array([f"n{i}" for i in range(n)]),
        centres=np.zeros((n, 3)),
    )
    model = case.tvb_model(tvb)
    model.variables_of_interest = tuple(model.state_variables)
    sim = tvb.simulator.Simulator(
        model=model,
        connectivity=conn,
        coupling=case.tvb_coupling(tvb),
        integrator=tvb.integrators.HeunDeterministic(dt=case.dt),
        monitors=(tvb.monitors.Raw(),),
        initial_conditions=history[..., None].copy(),
        simulation_length=case.steps * case.dt,
    )
    sim.configure()
    horizon = int(sim.connectivity.horizon)
    assert horizon == history.shape[0], (horizon, history.shape)
    ((t, y),) = sim.run(n_steps=case.steps)
    # Sample k is the state after k + 1 steps, stamped (horizon + k) * dt.
    np.testing.assert_allclose(t, (horizon + np.arange(case.steps)) * case.dt, rtol=1e-12)
    return np.asarray(y[..., 0])


def run_vbinfer(
    case: Case,
    weights: np.ndarray,
    lengths: np.ndarray,
    speed: float,
    history: np.ndarray,
    delayed: bool,
    x64: bool = True,
) -> np.ndarray:
    """Simulate ``case`` in vbinfer from the same ``history`` as :func:`run_tvb`.

    ``x64``: run in float64 (as TVB) or in JAX's default float32.
    Returns the raw trace ``(steps, n_states, n_nodes)``.
    """
    cvar = case.model.cvar if case.cvar is None else case.cvar
    with jax.enable_x64(x64):
        net = vb.make_network(weights, lengths, speed)
        max_lag = vb.max_lag_steps(lengths, speed, case.dt) if delayed else None
        sim = vb.make_simulator(
            case.model,
            dt=case.dt,
            num_steps=case.steps,
            integrator="heun",
            coupling=case.coupling,
            max_lag=max_lag,
            lag_mode="nearest",
            coupling_stages="held",
            monitors=[vb.monitors.subsample()],
            sample_every=1,
            cvar=case.cvar,
        )
        init = history[-1]
        past = None
        if delayed:
            assert history.shape[0] == max_lag + 1, (history.shape, max_lag)
            past = history[:-1][:, list(cvar)]
        res = sim.run(
            None, vb.SimParams(case.params, case.coupling_params), net, init, history=past
        )
        return np.asarray(res.outputs["raw"])


# ---------------------------------------------------------------------- agreement
def agreement(ref: np.ndarray, test: np.ndarray, transient: int = 0) -> tuple[np.ndarray, ...]:
    """Correlation and relative RMSE per state variable and node.

    ``ref`` (TVB) and ``test`` (vbinfer) are ``(steps, n_states, n_nodes)``; the first
    ``transient`` samples are left out. Relative RMSE is ``RMSE / (max - min)`` of the
    reference trace. Returns ``(corr, rel_rmse, span)``, each ``(n_states, n_nodes)``.
    """
    a = ref[transient:]
    b = test[transient:]
    span = a.max(axis=0) - a.min(axis=0)
    rmse = np.sqrt(np.mean((b - a) ** 2, axis=0))
    da = a - a.mean(axis=0)
    db = b - b.mean(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = (da * db).sum(axis=0) / np.sqrt((da**2).sum(axis=0) * (db**2).sum(axis=0))
        rel = rmse / span
    return corr, rel, span
