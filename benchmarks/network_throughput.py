#!/usr/bin/env python
"""Throughput of a 164-node Montbrio-Pazo-Roxin network: vbinfer vs vbjax vs tvboptim.

All three libraries run in the same process on the same network:

- 164 nodes, random symmetric weights (seeded numpy RNG, zero diagonal, scaled by 1/N);
- tract lengths drawn uniform in (0, 30] mm (symmetric), conduction speed 10 mm/ms, dt 0.01 ms,
  so lags reach 300 steps. Every length is then moved to ``(k + 0.25) * speed * dt`` with
  ``k >= 1`` its nearest whole lag, so that rounding to nearest (vbinfer, tvboptim) and rounding
  down (vbjax) give the same integer lag ``k`` and no edge has a zero lag;
- stochastic Heun with additive noise ``sigma dW`` on both state variables, 1000 steps;
- a batch of parameter sets (one ``eta`` per member, shared by the nodes), with and without
  delays. Each library returns every step's state, ``(batch, steps, 2, N)``.

Reported: node-steps per second (``N * steps * batch / median wall time``), compile time
(``jax.jit(f).lower(...).compile()``, timed separately; steady-state runs call the compiled
executable), XLA memory of each compiled function (``memory_analysis()``) and the process peak
RSS; and the gradient of ``mean(r**2)`` over the delayed run at batch 1 with respect to ``eta``.

How each library is driven (see ``README.md`` next to this file):

- vbinfer: ``make_simulator(...).run_batch`` (batch innermost), noise drawn inside the loop from
  a key (the default), or pre-drawn standard normals passed as an array; coupling ``"held"``
  (TVB's convention, same as tvboptim) and ``"per_stage"`` (same as vbjax).
- vbjax 0.0.19: ``make_sdde`` + ``make_delay_helper`` / ``delay_apply`` (delays), ``make_sde``
  (no delays), ``mpr_dfun``, ``mpr_r_positive``; its loop takes pre-drawn normals in the
  buffer: we draw them inside the jitted function from a per-member key; ``jax.vmap`` batches.
- tvboptim 0.4.0: ``Network(MontbrioPazoRoxin, DelayedLinearCoupling | LinearCoupling,
  DenseDelayGraph | DenseGraph, AdditiveNoise)``, ``prepare(network, BoundedSolver(Heun()))``;
  ``jax.vmap`` over ``eta`` and ``config.noise.key`` (one key per member).

Run ``uv run python benchmarks/network_throughput.py --help`` for the options.
"""

from __future__ import annotations

import os

# vbjax, on import, sets XLA_FLAGS=--xla_force_host_platform_device_count=<cpus> unless
# XLA_FLAGS is already set; keep the XLA configuration identical for all three libraries.
os.environ.setdefault("XLA_FLAGS", "")

import argparse
import contextlib
import datetime
import io
import json
import math
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import vbinfer as vb

N_NODES = 164
DT = 0.01  # ms
SPEED = 10.0  # mm/ms
MAX_LENGTH = 30.0  # mm
SIGMA = 0.01  # noise amplitude, state units per sqrt(ms)
COUPLING_A = 1.0  # global coupling strength (weights are already scaled by 1/N)
ETA_RANGE = (-5.0, -4.2)  # the batch sweeps eta over this range
X0 = (0.1, -2.0)  # initial state and constant history (r, V)
SEED = 42

RESULTS = Path(__file__).resolve().parent / "results" / "network_throughput.json"


# ----------------------------------------------------------------------------- setup
def make_connectome(n: int = N_NODES, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric weights (zero diagonal, scaled by 1/n) and tract lengths in mm."""
    rng = np.random.default_rng(seed)
    w = np.triu(rng.uniform(0.0, 1.0, (n, n)), 1)
    w = (w + w.T) / n
    length = np.triu(rng.uniform(0.0, MAX_LENGTH, (n, n)), 1)
    length = length + length.T
    step_mm = SPEED * DT
    lag = np.clip(np.rint(length / step_mm), 1, None)
    length = (lag + 0.25) * step_mm
    np.fill_diagonal(length, 0.0)
    return w.astype(np.float32), length.astype(np.float32)


def etas_for(batch: int) -> jnp.ndarray:
    return jnp.linspace(*ETA_RANGE, batch, dtype=jnp.float32)


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / 1024.0 if sys.platform != "darwin" else kib / 2**20


def _mem(compiled: Any) -> dict[str, float | None]:
    try:
        m = compiled.memory_analysis()
    except Exception:
        m = None
    if m is None:
        return {"temp_mb": None, "output_mb": None, "argument_mb": None}
    return {
        "temp_mb": m.temp_size_in_bytes / 2**20,
        "output_mb": m.output_size_in_bytes / 2**20,
        "argument_mb": m.argument_size_in_bytes / 2**20,
    }


MIN_TIME_S = 0.5  # cheap calls are repeated until this much time is sampled
MAX_CALLS = 200


def measure(
    fn: Callable,
    args: tuple,
    repeats: int,
    budget_s: float,
    keep: bool = False,
    min_time_s: float = MIN_TIME_S,
) -> dict[str, Any]:
    """Compile ``fn`` for ``args`` (timed), then time the compiled executable.

    One untimed warm-up call, then up to ``repeats`` timed calls while they fit in
    ``budget_s``; when the warm-up alone exceeds ``budget_s`` it is the only sample. Calls of a
    few milliseconds are repeated until ``min_time_s`` of them is sampled (at most
    ``MAX_CALLS``): five samples of a 3 ms call moved by 2x with the load of a shared machine.
    """
    t0 = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = jax.block_until_ready(compiled(*args))
    first_s = time.perf_counter() - t0
    finite = bool(all(np.isfinite(np.asarray(x)).all() for x in jax.tree_util.tree_leaves(out)))
    kept = out if keep else None
    del out
    if first_s > budget_s:
        times = [first_s]
        note = "warm-up call only"
    else:
        n = max(1, min(repeats, int(budget_s // max(first_s, 1e-9))))
        n = max(n, min(MAX_CALLS, int(min_time_s // max(first_s, 1e-9))))
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            jax.block_until_ready(compiled(*args))
            times.append(time.perf_counter() - t0)
        note = "" if n >= repeats else f"{n} of {repeats} repeats (time budget)"
    return {
        "compile_s": compile_s,
        "first_call_s": first_s,
        "run_s": statistics.median(times),
        "times_s": times,
        "repeats": len(times),
        "note": note,
        "finite": finite,
        **_mem(compiled),
        "peak_rss_mb_after": peak_rss_mb(),
        **({"output": kept} if keep else {}),
    }


# ----------------------------------------------------------------------------- vbinfer
class VbinferCase:
    """vbinfer simulators for one case (delays or not)."""

    def __init__(self, w, length, steps: int, delayed: bool, sigma: float = SIGMA):
        self.net = vb.make_network(w, length, speed=SPEED)
        self.max_lag = vb.max_lag_steps(length, SPEED, DT) if delayed else None
        self.steps = steps
        self.sigma = sigma

    def simulator(self, stages: str = "held", noise: bool = True, **kw):
        return vb.make_simulator(
            vb.models.mpr,
            dt=DT,
            num_steps=self.steps,
            max_lag=self.max_lag,
            integrator="heun",
            noise=vb.AdditiveNoise(self.sigma) if noise else None,
            coupling_stages=stages,
            sample_every=1,
            **kw,
        )

    @staticmethod
    def params(eta, a=COUPLING_A):
        return vb.SimParams(vb.models.MPRParams(eta=eta), vb.coupling.LinearParams(a=a))

    def batch_fn(self, stages: str = "held"):
        """``f(key_or_z, etas, net) -> (B, steps, 2, N)`` via ``run_batch``."""
        sim = self.simulator(stages)

        def f(noise, etas, net):
            res = sim.run_batch(noise, self.params(etas), net, batch_size=etas.shape[0])
            return res.outputs["tavg"]

        return f

    def loss_fn(self, **kw):
        """``loss(eta, key, net) = mean(r**2)`` of one run."""
        sim = self.simulator("held", **kw)

        def loss(eta, key, net):
            res = sim.run(key, self.params(eta), net)
            return jnp.mean(res.outputs["tavg"][:, 0] ** 2)

        return loss


# ----------------------------------------------------------------------------- vbjax
def _vmap_members(one: Callable, batch: int) -> Callable:
    """``jax.vmap`` over (key, eta), the network shared; batch 1 calls ``one`` directly.

    A size-1 vmap is what nobody writes for a single run, and XLA compiles it badly here
    (vbjax's delayed loop runs ~8x slower vmapped at batch 1 than unbatched).
    """
    if batch == 1:
        return lambda keys, etas, aux: one(keys[0], etas[0], aux)[None]
    return jax.vmap(one, in_axes=(0, 0, None))


def import_vbjax():
    with contextlib.redirect_stdout(io.StringIO()):  # vbjax prints a banner on import
        import vbjax
    return vbjax


class VbjaxCase:
    """vbjax loops for one case; ``run(eta, z)`` takes standard normals ``(steps, 2, N)``."""

    def __init__(self, w, length, steps: int, delayed: bool, sigma: float = SIGMA):
        vbjax = import_vbjax()
        self.vbjax = vbjax
        self.steps = steps
        self.delayed = delayed
        n = w.shape[0]
        x0 = jnp.asarray(X0, jnp.float32)[:, None] * jnp.ones((1, n), jnp.float32)
        theta0 = vbjax.mpr_default_theta
        if delayed:
            # Lags: floor(length / speed / dt), W transposed inside delay_apply (W symmetric).
            dh = vbjax.make_delay_helper(jnp.asarray(w), jnp.asarray(length), dt=DT, v_c=SPEED)
            nh = int(dh.max_lag)
            self.dh = dh

            def dfun(buf, x, t, p):
                eta, a, dh = p
                c = a * vbjax.delay_apply(dh, t, buf)  # (2, N): both state variables gathered
                return vbjax.mpr_dfun(x, c, theta0._replace(eta=eta))

            _, loop = vbjax.make_sdde(DT, nh, dfun, sigma, adhoc=vbjax.mpr_r_positive)

            def run(eta, z, dh, init=x0):
                hist = jnp.broadcast_to(init, (nh + 1, *init.shape))  # constant history
                _, xs = loop(jnp.concatenate([hist, z]), (eta, COUPLING_A, dh))
                return xs

            self.nh = nh
        else:
            wj = jnp.asarray(w)

            def dfun(x, p):
                eta, a, wj = p
                return vbjax.mpr_dfun(x, (a * (wj @ x[0]), 0.0), theta0._replace(eta=eta))

            _, loop = vbjax.make_sde(DT, dfun, sigma, adhoc=vbjax.mpr_r_positive)

            def run(eta, z, wj, init=x0):
                return loop(init, z, (eta, COUPLING_A, wj))

            self.dh = wj
        self.run = run
        self.shape = (steps, 2, n)

    def batch_fn(self, batch: int):
        """``f(keys, etas, aux) -> (B, steps, 2, N)``; each member draws its own normals."""

        def one(key, eta, aux):
            return self.run(eta, jax.random.normal(key, self.shape), aux)

        return _vmap_members(one, batch)

    def loss_fn(self):
        def loss(eta, key, aux):
            xs = self.run(eta, jax.random.normal(key, self.shape), aux)
            return jnp.mean(xs[:, 0] ** 2)

        return loss


# ----------------------------------------------------------------------------- tvboptim
class TvboptimCase:
    """A prepared tvboptim network; ``solve(cfg)`` returns a solution with ``.ys``."""

    def __init__(self, w, length, steps: int, delayed: bool, sigma: float = SIGMA, block_size=None):
        from tvboptim.experimental.network_dynamics import Network, prepare
        from tvboptim.experimental.network_dynamics.coupling import (
            DelayedLinearCoupling,
            LinearCoupling,
        )
        from tvboptim.experimental.network_dynamics.dynamics.tvb import MontbrioPazoRoxin
        from tvboptim.experimental.network_dynamics.graph import DenseDelayGraph, DenseGraph
        from tvboptim.experimental.network_dynamics.noise import AdditiveNoise
        from tvboptim.experimental.network_dynamics.solvers import BoundedSolver, Heun

        dyn = MontbrioPazoRoxin(eta=float(ETA_RANGE[0]), INITIAL_STATE=X0)
        if delayed:
            graph = DenseDelayGraph(jnp.asarray(w), jnp.asarray(length) / SPEED)  # delays in ms
            coupling = {"delayed": DelayedLinearCoupling(incoming_states="r", G=COUPLING_A)}
        else:
            graph = DenseGraph(jnp.asarray(w))
            coupling = {"instant": LinearCoupling(incoming_states="r", G=COUPLING_A)}
        noise = AdditiveNoise(sigma=sigma, key=jax.random.key(0)) if sigma else None
        network = Network(dyn, coupling, graph, noise=noise)
        # TVB's MPR keeps r >= 0; tvboptim clips after the step (not after the predictor).
        solver = BoundedSolver(
            Heun(block_size=block_size),
            low=jnp.array([0.0, -jnp.inf]),
            high=jnp.array([jnp.inf, jnp.inf]),
        )
        self.solve, self.cfg = prepare(network, solver, t0=0.0, t1=steps * DT, dt=DT)
        self.noisy = noise is not None
        self.delayed = delayed
        self.steps = steps

    def _with(self, cfg, eta, key=None, z=None, init=None):
        c = cfg.copy()
        c.dynamics.eta = eta
        if key is not None:
            c.noise.key = key
        if z is not None:
            c._internal.noise_samples = z
        if init is not None:  # initial state and constant history of r
            c.initial_state.dynamics = init
            if self.delayed:
                h = c.initial_state.coupling.delayed.history
                c.initial_state.coupling.delayed.history = jnp.broadcast_to(init[:1], h.shape)
        return c

    def batch_fn(self, batch: int, shared_key: bool = False):
        """``f(keys, etas, cfg) -> (B, steps, 2, N)``; one noise key per member.

        With ``shared_key`` the key is not vmapped (``keys[0]`` for everyone): every member
        then integrates the same noise realisation, drawn once.
        """

        def one(key, eta, cfg):
            return self.solve(self._with(cfg, eta, key if self.noisy else None)).ys

        if shared_key and batch > 1:
            shared = jax.vmap(one, in_axes=(None, 0, None))
            return lambda keys, etas, cfg: shared(keys[0], etas, cfg)
        return _vmap_members(one, batch)

    def loss_fn(self):
        def loss(eta, key, cfg):
            ys = self.solve(self._with(cfg, eta, key)).ys
            return jnp.mean(ys[:, 0] ** 2)

        return loss


# ----------------------------------------------------------------------------- sanity
def sanity_check(w, length, steps: int, peers: bool) -> dict[str, Any]:
    """Trajectories of the three libraries at batch 1 from the same state and history.

    Deterministic runs with and without delays, plus one stochastic delayed run with the same
    standard normals fed to every library, all from the same random per-node initial state
    (constant history). Returns max |difference| over states and steps.
    """
    out: dict[str, Any] = {"steps": steps}
    eta = jnp.float32(-4.6)
    rng = np.random.default_rng(SEED + 1)
    n = w.shape[0]
    init = jnp.asarray(
        np.stack([rng.uniform(0.05, 1.5, n), rng.uniform(-2.5, -0.5, n)]), jnp.result_type(float)
    )
    for delayed in (True, False):
        tag = "delays" if delayed else "no_delays"
        for noisy in (False, True):
            if noisy and not delayed:
                continue
            sig = SIGMA if noisy else 0.0
            label = f"{tag}{'_noise' if noisy else ''}"
            vc = VbinferCase(w, length, steps, delayed, sigma=sig if noisy else SIGMA)
            z = None
            if noisy:
                z = jax.random.normal(jax.random.key(7), (steps, 2, n), init.dtype)
            xs = {}
            for stages in ("held", "per_stage"):
                sim = vc.simulator(stages, noise=noisy)
                res = sim.run(z, vc.params(eta), vc.net, init)
                xs[stages] = np.asarray(res.outputs["tavg"])
            row = {
                "r_range": [float(xs["held"][:, 0].min()), float(xs["held"][:, 0].max())],
                "held_vs_per_stage": float(np.abs(xs["held"] - xs["per_stage"]).max()),
            }
            if peers:
                try:
                    jc = VbjaxCase(w, length, steps, delayed, sigma=sig)
                    zj = z if noisy else jnp.zeros((steps, 2, n), init.dtype)
                    xj = np.asarray(jax.jit(jc.run)(eta, zj, jc.dh, init))
                    row["vbjax_vs_vbinfer_per_stage"] = float(np.abs(xj - xs["per_stage"]).max())
                    row["vbjax_vs_vbinfer_held"] = float(np.abs(xj - xs["held"]).max())
                except Exception as e:
                    row["vbjax_error"] = f"{type(e).__name__}: {e}"
                try:
                    tc = TvboptimCase(w, length, steps, delayed, sigma=sig)
                    cfg = tc._with(tc.cfg, eta, z=z, init=init)
                    xt = np.asarray(jax.jit(tc.solve)(cfg).ys)
                    row["tvboptim_vs_vbinfer_held"] = float(np.abs(xt - xs["held"]).max())
                except Exception as e:
                    row["tvboptim_error"] = f"{type(e).__name__}: {e}"
            out[label] = row
    return out


# ----------------------------------------------------------------------------- benchmark
def run_throughput(args, w, length) -> list[dict[str, Any]]:
    rows = []
    key = jax.random.key(1)
    n = w.shape[0]
    for delayed in (False, True):
        vc = VbinferCase(w, length, args.steps, delayed)
        f_held = vc.batch_fn("held")
        f_stage = vc.batch_fn("per_stage")
        jc = tc = None
        peer_err = {}
        if not args.no_peers:
            try:
                jc = VbjaxCase(w, length, args.steps, delayed)
            except Exception as e:
                peer_err["vbjax"] = f"{type(e).__name__}: {e}"
            try:
                tc = TvboptimCase(w, length, args.steps, delayed)
            except Exception as e:
                peer_err["tvboptim"] = f"{type(e).__name__}: {e}"
        last: dict[str, tuple[int, float]] = {}  # case -> (batch, seconds per call)
        for b in args.batches:
            etas = etas_for(b)
            keys = jax.random.split(key, b)
            row: dict[str, Any] = {"delays": delayed, "batch": b, "results": {}}
            budget = args.budget
            cases: list[tuple[str, Callable, tuple]] = [
                ("vbinfer_key", f_held, (key, etas, vc.net)),
                ("vbinfer_predrawn", f_held, None),
                ("vbinfer_per_stage", f_stage, (key, etas, vc.net)),
            ]
            if jc is not None:
                cases.append(("vbjax", jc.batch_fn(b), (keys, etas, jc.dh)))
            if tc is not None:
                cases.append(("tvboptim", tc.batch_fn(b), (keys, etas, tc.cfg)))
                if b > 1 and not delayed:  # with delays the draw is a negligible part
                    shared = tc.batch_fn(b, shared_key=True)
                    cases.append(("tvboptim_shared_key", shared, (keys, etas, tc.cfg)))
            for name, fn, fargs in cases:
                if name in last:
                    b0, t0 = last[name]
                    projected = t0 * b / b0
                    if projected > args.max_call_s:
                        r = {
                            "skipped": f"projected >= {projected:.1f} s per call from "
                            f"{t0:.2f} s at batch {b0} (> --max-call-s {args.max_call_s:g})"
                        }
                        row["results"][name] = r
                        tag = "delays" if delayed else "no delays"
                        print(f"  [{tag} B={b}] {name}: skipped, {r['skipped']}", flush=True)
                        continue
                if fargs is None:  # pre-drawn normals, drawn here outside the timing
                    z = jax.random.normal(key, (b, args.steps, 2, n), jnp.float32)
                    fargs = (jax.block_until_ready(z), etas, vc.net)
                try:
                    r = measure(fn, fargs, args.repeats, budget, min_time_s=args.min_time)
                    r["node_steps_per_s"] = n * args.steps * b / r["run_s"]
                    last[name] = (b, r["run_s"])
                except Exception as e:
                    r = {"error": f"{type(e).__name__}: {e}"}
                    if args.verbose:
                        traceback.print_exc()
                row["results"][name] = r
                fargs = None
                msg = r.get("error") or (
                    f"{r['node_steps_per_s']:.3g} node-steps/s, compile {r['compile_s']:.1f}s, "
                    f"{r['repeats']} runs"
                )
                print(f"  [{'delays' if delayed else 'no delays'} B={b}] {name}: {msg}", flush=True)
            for peer, err in peer_err.items():
                row["results"][peer] = {"error": err}
            rows.append(row)
    return rows


def run_gradients(args, w, length) -> list[dict[str, Any]]:
    """value_and_grad of mean(r**2) w.r.t. eta over the delayed run, batch 1."""
    eta = jnp.float32(-4.6)
    key = jax.random.key(3)
    vc = VbinferCase(w, length, args.steps, True)
    block = max(d for d in range(1, 101) if args.steps % d == 0)
    cases: list[tuple[str, Callable[[], tuple[Callable, Any]]]] = [
        ("vbinfer", lambda: (vc.loss_fn(), vc.net)),
        (
            f"vbinfer (checkpoint, block_steps={block})",
            lambda: (vc.loss_fn(checkpoint=True, block_steps=block), vc.net),
        ),
        (
            "vbinfer (delay_adjoint='autodiff')",
            lambda: (vc.loss_fn(delay_adjoint="autodiff"), vc.net),
        ),
        (
            f"vbinfer (delay_adjoint='autodiff', checkpoint, block_steps={block})",
            lambda: (
                vc.loss_fn(delay_adjoint="autodiff", checkpoint=True, block_steps=block),
                vc.net,
            ),
        ),
    ]
    if not args.no_peers:

        def vbjax_case():
            jc = VbjaxCase(w, length, args.steps, True)
            return jc.loss_fn(), jc.dh

        def tvb_case(bs=None):
            tc = TvboptimCase(w, length, args.steps, True, block_size=bs)
            return tc.loss_fn(), tc.cfg

        cases += [
            ("vbjax", vbjax_case),
            ("tvboptim", tvb_case),
            (f"tvboptim (block_size={block})", lambda: tvb_case(block)),
        ]
    rows = []
    for name, make in cases:
        row: dict[str, Any] = {"library": name}
        try:
            loss, aux = make()
            fwd = measure(
                loss, (eta, key, aux), args.repeats, args.budget, min_time_s=args.min_time
            )
            vg = measure(
                jax.value_and_grad(loss),
                (eta, key, aux),
                args.repeats,
                args.budget,
                keep=True,
                min_time_s=args.min_time,
            )
            g = vg.pop("output")[1]
            row.update(
                forward=fwd,
                grad=vg,
                grad_value=float(g),
                ratio=vg["run_s"] / fwd["run_s"],
            )
            print(
                f"  [grad] {name}: forward {fwd['run_s'] * 1e3:.1f} ms, value_and_grad "
                f"{vg['run_s'] * 1e3:.1f} ms ({row['ratio']:.2f}x), temp "
                f"{vg['temp_mb']:.1f} MB",
                flush=True,
            )
        except Exception as e:
            row["error"] = f"{type(e).__name__}: {e}"
            if args.verbose:
                traceback.print_exc()
            print(f"  [grad] {name}: {row['error']}", flush=True)
        rows.append(row)
    return rows


# ----------------------------------------------------------------------------- report
def _ok(r: dict | None) -> bool:
    return bool(r) and "error" not in r and "skipped" not in r


def _fmt_rate(r: dict | None) -> str:
    if not r:
        return "-"
    if "error" in r:
        return "failed"
    if "skipped" in r:
        return "skipped"
    s = f"{r['node_steps_per_s']:.3g}"
    if r.get("note"):
        s += "*"
    if not r.get("finite", True):
        s += " (non-finite!)"
    return s


def _ratio(a: dict | None, b: dict | None) -> str:
    if not _ok(a) or not _ok(b):
        return "-"
    return f"{a['node_steps_per_s'] / b['node_steps_per_s']:.2f}"


def _fmt_s(r: dict | None, key: str = "compile_s") -> str:
    if not _ok(r):
        return "-"
    return f"{r[key]:.1f}"


def _fmt_mb(r: dict | None) -> str:
    if not _ok(r) or r.get("temp_mb") is None:
        return "-"
    return f"{r['temp_mb']:.0f}"


def markdown(report: dict[str, Any]) -> str:
    lines = []
    cfg = report["config"]
    lines.append(
        f"## Network throughput: {cfg['n_nodes']}-node MPR, dt {cfg['dt']} ms, "
        f"{cfg['steps']} steps, stochastic Heun (sigma {cfg['sigma']})\n"
    )
    lines.append(
        "Node-steps per second (`N * steps * batch / median wall time`; higher is better). "
        "vbinfer key / pre-drawn use coupling `held` (TVB's convention, as tvboptim); "
        "vbinfer per-stage uses `per_stage` (vbjax's convention). "
        "Ratios: vbinfer/vbjax = vbinfer per-stage / vbjax; vbinfer/tvboptim = "
        "vbinfer key (held) / tvboptim (one key per member). tvboptim shared key: the key "
        "not vmapped, so all members get the same noise, drawn once (not a fair comparison; "
        "what a plain `jax.vmap` over the config's parameters does). Compile: seconds for "
        "`lower().compile()`, in the order vbinfer key / pre-drawn / per-stage / vbjax / "
        "tvboptim. `*`: fewer repeats than asked (time budget). Cheap calls are repeated "
        f"until {cfg.get('min_time_s', MIN_TIME_S):g} s of them is sampled (at most "
        f"{MAX_CALLS} calls).\n"
    )
    head = (
        "| delays | batch | vbinfer key | vbinfer pre-drawn | vbinfer per-stage | vbjax "
        "(per-stage) | tvboptim (held) | tvboptim shared key | vbinfer/vbjax | "
        "vbinfer/tvboptim | compile s |"
    )
    lines.append(head)
    lines.append("|" + "---|" * 11)
    names = ("vbinfer_key", "vbinfer_predrawn", "vbinfer_per_stage", "vbjax", "tvboptim")
    shown = (*names, "tvboptim_shared_key")
    for row in report["throughput"]:
        res = row["results"]
        comp = " / ".join(_fmt_s(res.get(k)) for k in names)
        lines.append(
            f"| {'yes' if row['delays'] else 'no'} | {row['batch']} | "
            + " | ".join(_fmt_rate(res.get(k)) for k in shown)
            + f" | {_ratio(res.get('vbinfer_per_stage'), res.get('vbjax'))}"
            + f" | {_ratio(res.get('vbinfer_key'), res.get('tvboptim'))} | {comp} |"
        )
    lines.append("")
    lines.append(
        "XLA temporary memory (MB, `memory_analysis().temp_size_in_bytes`) of each compiled "
        "batch function; outputs (`batch * steps * 2 * N` floats) and arguments (the "
        "pre-drawn normals) are not included.\n"
    )
    lines.append(
        "| delays | batch | vbinfer key | vbinfer pre-drawn | vbinfer per-stage | vbjax | "
        "tvboptim | tvboptim shared key | process peak RSS after row (MB) |"
    )
    lines.append("|" + "---|" * 9)
    for row in report["throughput"]:
        res = row["results"]
        rss = max(
            (r.get("peak_rss_mb_after", 0) for r in res.values() if _ok(r)),
            default=0,
        )
        lines.append(
            f"| {'yes' if row['delays'] else 'no'} | {row['batch']} | "
            + " | ".join(_fmt_mb(res.get(k)) for k in shown)
            + f" | {rss:.0f} |"
        )
    errors = {
        (row["delays"], row["batch"], k): r["error"]
        for row in report["throughput"]
        for k, r in row["results"].items()
        if "error" in r
    }
    if errors:
        lines.append("\nFailures:")
        for (d, b, k), e in errors.items():
            lines.append(f"- {k} (delays={d}, batch={b}): {e}")
    notes = sorted(
        {
            f"{k} (delays={'yes' if row['delays'] else 'no'}, batch {row['batch']}): {r['note']}"
            for row in report["throughput"]
            for k, r in row["results"].items()
            if r.get("note")
        }
    )
    if notes:
        lines.append("\nReduced repeats:")
        lines += [f"- {n}" for n in notes]
    skipped = [
        f"- {k} (delays={'yes' if row['delays'] else 'no'}, batch {row['batch']}): {r['skipped']}"
        for row in report["throughput"]
        for k, r in row["results"].items()
        if "skipped" in r
    ]
    if skipped:
        lines.append("\nSkipped (too slow for the time budget):")
        lines += skipped

    lines.append(
        f"\n## Gradient of mean(r^2) w.r.t. eta, delayed run, batch 1, {cfg['steps']} steps\n"
    )
    lines.append(
        "| library | forward ms | value_and_grad ms | grad / forward | XLA temp MB (grad) | "
        "XLA temp MB (forward) | compile s (grad) | d loss / d eta |"
    )
    lines.append("|" + "---|" * 8)
    for g in report["gradients"]:
        if "error" in g:
            lines.append(f"| {g['library']} | failed: {g['error']} |||||||")
            continue
        f, v = g["forward"], g["grad"]
        lines.append(
            f"| {g['library']} | {f['run_s'] * 1e3:.1f} | {v['run_s'] * 1e3:.1f} | "
            f"{g['ratio']:.2f} | {_fmt_mb(v)} | {_fmt_mb(f)} | {v['compile_s']:.1f} | "
            f"{g['grad_value']:.4g} |"
        )
    lines.append(f"\nProcess peak RSS at the end: {report['peak_rss_mb']:.0f} MB.")

    lines.append(
        f"\n## Sanity check: max |difference| of {report['sanity']['steps']}-step trajectories at "
        "batch 1\n\nSame random per-node initial state (constant history), lags, eta = -4.6; "
        "'noise': the same standard normals fed to all. Same convention (vbjax vs vbinfer "
        "per-stage, tvboptim vs vbinfer held) should agree to rounding; held vs per-stage shows "
        "the size of the convention difference.\n"
    )
    lines.append(
        "| dtype | run | r range | vbinfer held vs per-stage | vbjax vs vbinfer per-stage | "
        "vbjax vs vbinfer held | tvboptim vs vbinfer held |"
    )
    lines.append("|" + "---|" * 7)
    extra = []
    for s in (report["sanity"], report.get("sanity_float64")):
        if not s:
            continue
        if "error" in s:
            extra.append(f"float64 sanity check failed: {s['error']}")
            continue
        for label, row in s.items():
            if not isinstance(row, dict):
                continue

            def g(k, row=row):
                if k in row:
                    return f"{row[k]:.2e}"
                peer = k.split("_")[0]
                return "failed" if f"{peer}_error" in row else "-"

            lines.append(
                f"| {s.get('dtype', '?')} | {label} | {row['r_range'][0]:.3f} .. "
                f"{row['r_range'][1]:.3f} | {g('held_vs_per_stage')} | "
                f"{g('vbjax_vs_vbinfer_per_stage')} | {g('vbjax_vs_vbinfer_held')} | "
                f"{g('tvboptim_vs_vbinfer_held')} |"
            )
            extra += [
                f"{k} ({label}): {row[k]}" for k in ("vbjax_error", "tvboptim_error") if k in row
            ]
    if extra:
        lines += ["", *extra]

    lines.append("\n## Notes\n")
    lines += [f"- {n}" for n in report["notes"]]
    m = report["machine"]
    lines.append("\n## Machine\n")
    lines.append(
        f"- processor: {m['processor'] or '?'} ({m['machine']}), nproc {m['nproc']}, "
        f"{m['platform']}"
    )
    lines.append(f"- python {m['python']}, jax {m['jax']}, jaxlib {m['jaxlib']}")
    lines.append(f"- devices: {m['devices']}")
    lines.append(f"- XLA_FLAGS: {m['xla_flags']!r}")
    lines.append(f"- peers: {m['peers']}")
    lines.append(f"- date: {report['date']}")
    lines.append(f"- command: `{report['command']}`")
    return "\n".join(lines)


NOTES = [
    "Network: weights U(0,1) symmetric, zero diagonal, divided by N; lengths U(0,30] mm "
    "symmetric, moved to (k + 0.25) * speed * dt with k >= 1 their nearest whole lag, so "
    "nearest (vbinfer, tvboptim) and floor (vbjax) rounding agree and no edge has a zero lag "
    "(vbjax's corrector reads a zero lag from the not yet written slot, which holds the "
    "step's noise sample). Max lag 300 steps.",
    "Noise: vbinfer (key) draws standard normals inside the loop, one block of steps at a time, "
    "from a key folded per block (independent per member); vbinfer (pre-drawn) takes an array "
    "z of shape (B, steps, 2, N) drawn before the timing. vbjax does not draw noise: its "
    "make_sde / make_sdde loops take normals as input (the SDDE buffer holds history then one "
    "normal per step); here each member draws its own inside the jitted function from its own "
    "key (RNG included in the time, like vbinfer key). tvboptim draws the whole run's noise up "
    "front with one jax.random.normal(config.noise.key, (steps, n_noise, N)) inside the solve "
    "function; under jax.vmap with an unbatched key every member would share one draw (and "
    "the draw would be made once); here config.noise.key is vmapped, one key per member. The "
    "'tvboptim shared key' column (no delays only; with delays the draw is a negligible part "
    "of the time: a trial run gave the same rate within 4%) times that shared-draw variant.",
    "Coupling: vbinfer 'held' and tvboptim (recompute_coupling_per_stage=False, its default) "
    "compute the coupling once per step from the step's start and hold it over both Heun "
    "stages; vbjax recomputes it in the corrector from the predicted state (its dfun gets the "
    "stage state; delayed reads at t+1 see history only, since all lags >= 1), which is "
    "vbinfer 'per_stage'.",
    "vbjax's delay_apply gathers every state variable of the buffer (r and V, 2 * N^2 per "
    "stage, twice per step); mpr_dfun multiplies the V part by cv = 0. tvboptim's "
    "DelayedLinearCoupling with incoming_states='r' gathers r only, but MontbrioPazoRoxin reads "
    "coupling.delayed[1] from a 1-row array (JAX clamps the index: the V input is the r input "
    "times cv = 0, harmless here). tvboptim uses its default 'roll' history buffer "
    "(jnp.roll of the whole (max_lag + 2)-row buffer every step).",
    "State bounds r >= 0: vbinfer and vbjax (adhoc=mpr_r_positive) clip after each Heun stage, "
    "tvboptim (BoundedSolver) after the step only; with noise a predictor can dip below 0 and "
    "the runs then differ slightly.",
    "Outputs: every library returns all steps' states (B, steps, 2, N) (vbinfer: temporal "
    "average with sample_every=1, i.e. the states). Times are of the compiled executables, "
    "compile time excluded; the table's compile column is lower()+compile() wall time.",
    "Batch 1: the peers call their single-run function directly (no jax.vmap of size 1, "
    "which nobody writes and which XLA compiles badly: vbjax's delayed loop ran ~8x slower "
    "vmapped at batch 1 than unbatched); vbinfer uses run_batch(batch_size=1).",
    "Sanity check: in float32 the same-convention trajectories differ by up to ~1e-4..1e-3 "
    "after hundreds of steps of a fast transient (rounding of differently ordered sums, "
    "amplified by the dynamics); the float64 repeat (a subprocess with JAX_ENABLE_X64=1) shows "
    "them equal to ~1e-13, i.e. same model, lags, orientation, noise scaling and Heun scheme.",
    "Gradient: jax.value_and_grad of mean(r^2) over the run, key-driven noise, eta scalar; "
    "'grad / forward' divides by the forward time of the same loss. XLA temp is "
    "memory_analysis().temp_size_in_bytes of the compiled function.",
]


def machine_info(peers: dict[str, str]) -> dict[str, Any]:
    import jaxlib

    return {
        "processor": platform.processor(),
        "machine": platform.machine(),
        "platform": platform.platform(),
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "devices": [str(d) for d in jax.devices()],
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "peers": peers,
    }


def peer_versions(no_peers: bool) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"vbinfer": vb.__version__}
    if no_peers:
        return out
    for p in ("vbjax", "tvboptim"):
        try:
            out[p] = version(p)
        except PackageNotFoundError:
            out[p] = "not installed"
    return out


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batches", type=int, nargs="+", default=[1, 8, 64, 256])
    p.add_argument("--repeats", type=int, default=5, help="timed runs per case (median)")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument(
        "--quick",
        action="store_true",
        help="small run: batches 1 8, 200 steps (overrides --batches, --steps)",
    )
    p.add_argument("--no-peers", action="store_true", help="vbinfer only")
    p.add_argument(
        "--budget",
        type=float,
        default=None,
        help="seconds of timed runs per case; fewer repeats when they would exceed it "
        "(default 4, 2 with --quick)",
    )
    p.add_argument(
        "--min-time",
        type=float,
        default=MIN_TIME_S,
        help="repeat cheap calls until this many seconds are sampled (default %(default)s; at "
        f"most {MAX_CALLS} calls)",
    )
    p.add_argument(
        "--max-call-s",
        type=float,
        default=45.0,
        help="skip a case whose call, projected linearly from the previous batch, would take "
        "longer (default 45)",
    )
    p.add_argument("--sanity-steps", type=int, default=None, help="default: min(steps, 500)")
    p.add_argument("--output", type=Path, default=RESULTS, help="JSON results file")
    p.add_argument("--verbose", action="store_true", help="print tracebacks of failures")
    p.add_argument(
        "--no-x64-check",
        action="store_true",
        help="skip repeating the sanity check in float64 (a subprocess with JAX_ENABLE_X64=1)",
    )
    p.add_argument("--sanity-only", action="store_true", help="print the sanity check as JSON")
    args = p.parse_args(argv)
    if args.quick:
        args.batches = [1, 8]
        args.steps = 200
    if args.budget is None:
        args.budget = 2.0 if args.quick else 4.0
    if args.sanity_steps is None:
        args.sanity_steps = min(args.steps, 500)
    return args


def sanity_x64(steps: int, peers: bool) -> dict[str, Any]:
    """The sanity check again in float64, in a subprocess (x64 is a process-wide switch)."""
    cmd = [sys.executable, __file__, "--sanity-only", "--sanity-steps", str(steps)]
    if not peers:
        cmd.append("--no-peers")
    env = {**os.environ, "JAX_ENABLE_X64": "1"}
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except Exception as e:
        err = getattr(e, "stderr", "") or ""
        return {"error": f"{type(e).__name__}: {e} {err[-500:]}"}


def main(argv=None) -> dict[str, Any]:
    args = parse_args(argv)
    t_start = time.perf_counter()
    w, length = make_connectome()
    if args.sanity_only:
        res = sanity_check(w, length, args.sanity_steps, not args.no_peers)
        res["dtype"] = str(jnp.result_type(float))
        print(json.dumps(res))
        return res
    lags = np.rint(length / SPEED / DT)
    peers = peer_versions(args.no_peers)
    if not args.no_peers:
        for p in ("vbjax", "tvboptim"):
            if peers[p] == "not installed":
                print(f"{p} is not installed (uv sync --extra bench); skipping peers")
                args.no_peers = True
    print(
        f"network: N={w.shape[0]}, lags {int(lags[lags > 0].min())}..{int(lags.max())} steps, "
        f"batches {args.batches}, steps {args.steps}, repeats {args.repeats}",
        flush=True,
    )
    print("sanity check ...", flush=True)
    sanity = sanity_check(w, length, args.sanity_steps, not args.no_peers)
    sanity["dtype"] = str(jnp.result_type(float))
    sanity64 = None if args.no_x64_check else sanity_x64(args.sanity_steps, not args.no_peers)
    print("throughput ...", flush=True)
    throughput = run_throughput(args, w, length)
    print("gradients ...", flush=True)
    gradients = run_gradients(args, w, length)
    report = {
        "config": {
            "n_nodes": int(w.shape[0]),
            "dt": DT,
            "steps": args.steps,
            "speed": SPEED,
            "max_length_mm": MAX_LENGTH,
            "max_lag": int(lags.max()),
            "sigma": SIGMA,
            "coupling_a": COUPLING_A,
            "eta_range": list(ETA_RANGE),
            "batches": args.batches,
            "repeats": args.repeats,
            "budget_s": args.budget,
            "min_time_s": args.min_time,
            "seed": SEED,
        },
        "throughput": throughput,
        "gradients": gradients,
        "sanity": sanity,
        "sanity_float64": sanity64,
        "notes": NOTES,
        "peak_rss_mb": peak_rss_mb(),
        "machine": machine_info(peers),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]),
        "wall_s": time.perf_counter() - t_start,
    }
    print()
    print(markdown(report))
    print(f"\ntotal wall time {report['wall_s']:.0f} s")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2, default=_json_default) + "\n")
    print(f"results written to {args.output}")
    return report


def _json_default(x):
    if isinstance(x, np.generic | np.ndarray):
        return x.tolist()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return str(x)


if __name__ == "__main__":
    main()
