#!/usr/bin/env python
"""Long-run gradient benchmark: 60 s of a delayed reduced Wong-Wang network -> BOLD -> FC loss.

vbinfer beside tvboptim 0.4.0 on the same workload, in the same script (each case in a fresh
subprocess, so that its peak memory is its own):

- the 84-region Hagmann connectome (vbinfer's default; weights divided by their maximum), tract
  lengths in mm at 4 mm/ms, lags rounded to the nearest 1 ms step (up to 62 steps);
- reduced Wong-Wang (one population; ``w = 0.5``, ``I_o = 0.32``, ``S(0) = 0.3`` and a constant
  history), linear coupling ``G = 0.5`` held over both stages of stochastic Heun (TVB's
  convention, tvboptim's default), additive noise ``sigma = 0.00283`` on ``S``, dt 1 ms,
  60,000 steps: the configuration of tvboptim's "Gradient checkpointing for long DDE
  simulations" notebook (its docs report 0.39 s forward, 2.48 s gradient and 763 MB peak, and
  227 MB at 1.26x the gradient time with blocks of 256 steps, on their machine and on their
  68-region connectome);
- the same standard normals (drawn once, passed in as an array) drive both libraries, so the
  checkpointed and plain runs of each library integrate the same path;
- BOLD with TR 1 s, FC of the BOLD series after the first 20 volumes, loss = RMSE between the
  FC and a target FC (the FC of a reference run of the same library at ``G = 0.6`` and a
  different noise draw);
- gradient of the loss with respect to the global coupling ``G`` and the 84 per-region
  ``I_o``.

How each library computes BOLD: vbinfer integrates a Balloon-Windkessel model per region inside
the simulation loop (``monitors.bold``, one Heun step per 1 ms sample, drive = ``S`` in s^-1)
and keeps only the BOLD volumes; tvboptim, as in its notebook, returns the whole ``S``
trajectory and convolves it afterwards with a haemodynamic response kernel (``HRFBold``,
period 1 s, downsample period 1 ms). ``--tvb-bold bw`` uses tvboptim's Balloon-Windkessel
monitor instead (post-hoc Euler integration over the trajectory), the same model family as
vbinfer's.

Reported per case: compile time (``jax.jit(f).lower(...).compile()``), medians of the forward
(loss value) and ``value_and_grad`` times after one warm-up, XLA temporaries of each compiled
function (``memory_analysis()``), and the process peak RSS during the first gradient call (the
peak is reset just before it through ``/proc/self/clear_refs``), absolute and above the RSS
before the call. Run ``uv run python benchmarks/long_run_bold.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

N_STEPS = 60_000
DT = 1.0  # ms
SPEED = 4.0  # mm/ms
G = 0.5  # global coupling
G_TARGET = 0.6  # coupling of the reference run whose FC is the target
W_RWW = 0.5  # excitatory recurrence
I_O = 0.32  # external input, nA
S0 = 0.3  # initial state and constant history
SIGMA = 0.00283  # noise amplitude on S per sqrt(ms)
TR = 1000.0  # ms
SKIP_VOLUMES = 20  # BOLD volumes left out of the FC (transient)
BOLD_GAIN = 1.0  # vbinfer: drive of the Balloon model = gain * S, in s^-1
SEED = 0

RESULTS = Path(__file__).resolve().parent / "results" / "long_run_bold.json"


# ----------------------------------------------------------------------------- memory
def _status_kib(field: str) -> float | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return float(line.split()[1])
    except OSError:
        return None
    return None


def rss_mb() -> float | None:
    kib = _status_kib("VmRSS")
    return None if kib is None else kib / 1024.0


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) to the current RSS (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float | None:
    kib = _status_kib("VmHWM")
    return None if kib is None else kib / 1024.0


def xla_memory(compiled: Any) -> dict[str, float | None]:
    try:
        m = compiled.memory_analysis()
    except Exception:
        m = None
    if m is None:
        return {"temp_mb": None, "argument_mb": None, "output_mb": None}
    return {
        "temp_mb": m.temp_size_in_bytes / 2**20,
        "argument_mb": m.argument_size_in_bytes / 2**20,
        "output_mb": m.output_size_in_bytes / 2**20,
    }


# ----------------------------------------------------------------------------- workload
def connectome():
    import numpy as np

    from vbinfer.datasets import default_connectome

    conn = default_connectome().normalized("max")
    return np.asarray(conn.weights), np.asarray(conn.lengths)


def standard_normals(steps: int, n: int, seed: int, dtype):
    import jax

    return jax.random.normal(jax.random.key(seed), (steps, 1, n), dtype)


def _rmse(a, b):
    import jax.numpy as jnp

    return jnp.sqrt(jnp.mean((a - b) ** 2))


class VbinferCase:
    """``loss(theta, z, net, target)`` with ``theta = (G, I_o[84])``."""

    def __init__(
        self,
        steps: int,
        block: int | None,
        checkpoint: bool,
        key_noise: bool = False,
        skip: int = SKIP_VOLUMES,
        remat_dfun: bool = False,
        sample_every: int = 1,
        delay_adjoint: str = "auto",
    ):
        import jax
        import jax.numpy as jnp

        import vbinfer as vb

        w, lengths = connectome()
        self.n = w.shape[0]
        self.net = vb.make_network(w, lengths, speed=SPEED)
        model = vb.models.reduced_wong_wang
        if remat_dfun:  # reverse mode keeps the state and coupling of each stage, not the rest
            model = model._replace(dfun=jax.checkpoint(model.dfun))
        self.sim = vb.make_simulator(
            model,
            dt=DT,
            num_steps=steps,
            max_lag=vb.max_lag_steps(lengths, SPEED, DT),
            noise=vb.AdditiveNoise(SIGMA),
            coupling_stages="held",
            monitors=[vb.monitors.bold(0, gain=BOLD_GAIN, tr_ms=TR)],
            sample_every=sample_every,
            block_steps=block,
            checkpoint=checkpoint,
            delay_adjoint=delay_adjoint,
        )
        self.key_noise = key_noise
        self.skip = skip
        self.init = jnp.full((1, self.n), S0)

    def params(self, theta):
        import vbinfer as vb

        g, i_o = theta
        return vb.SimParams(
            vb.models.ReducedWongWangParams(w=W_RWW, I_o=i_o), vb.coupling.LinearParams(a=g)
        )

    def bold(self, theta, z, net):
        return self.sim.run(z, self.params(theta), net, self.init).outputs["bold"]

    def fc(self, theta, z, net):
        from vbinfer import observe

        return observe.functional_connectivity(self.bold(theta, z, net)[self.skip :])

    def loss(self, theta, z, net, target):
        return _rmse(self.fc(theta, z, net), target)

    def noise_arg(self, z, seed: int):
        """Pre-drawn normals ``(steps, 1, N)``, or a key (noise drawn inside, block by block)."""
        import jax

        return jax.random.key(seed) if self.key_noise else z

    def trajectory(self, z, steps: int):
        """``S`` at every step ``(steps, N)`` for the agreement check (float64 run)."""
        import vbinfer as vb

        sim = vb.make_simulator(
            vb.models.reduced_wong_wang,
            dt=DT,
            num_steps=steps,
            max_lag=self.sim.max_lag,
            noise=vb.AdditiveNoise(SIGMA),
            sample_every=1,
        )
        theta = (G, I_O)
        return sim.run(z[:steps], self.params(theta), self.net, self.init).outputs["tavg"][:, 0]


class TvboptimCase:
    """tvboptim 0.4.0 as in its gradient-checkpointing notebook; same ``loss`` signature."""

    def __init__(self, steps: int, block: int | None, bold: str = "hrf", skip: int = SKIP_VOLUMES):
        import jax
        import jax.numpy as jnp
        from tvboptim.experimental.network_dynamics import Network, prepare
        from tvboptim.experimental.network_dynamics.coupling import DelayedLinearCoupling
        from tvboptim.experimental.network_dynamics.dynamics.tvb import ReducedWongWang
        from tvboptim.experimental.network_dynamics.graph import DenseDelayGraph
        from tvboptim.experimental.network_dynamics.noise import AdditiveNoise
        from tvboptim.experimental.network_dynamics.solvers import Heun
        from tvboptim.observations.observation import compute_fc
        from tvboptim.observations.tvb_monitors.bold import BalloonWindkesselBold, HRFBold

        w, lengths = connectome()
        self.n = w.shape[0]
        graph = DenseDelayGraph(weights=jnp.asarray(w), delays=jnp.asarray(lengths / SPEED))
        network = Network(
            dynamics=ReducedWongWang(w=W_RWW, I_o=I_O, INITIAL_STATE=(S0,)),
            coupling={"delayed": DelayedLinearCoupling(incoming_states="S", G=G)},
            graph=graph,
            noise=AdditiveNoise(sigma=SIGMA, apply_to="S", key=jax.random.key(SEED)),
        )
        self.solve, self.cfg = prepare(
            network, Heun(block_size=block), t0=0.0, t1=steps * DT, dt=DT
        )
        if bold == "hrf":
            self.monitor = HRFBold(period=TR, downsample_period=DT, voi=0)
        else:
            self.monitor = BalloonWindkesselBold(period=TR, dt_bw=DT, voi=0)
        self.compute_fc = compute_fc
        self.skip = skip
        self.net = self.cfg
        self.key_noise = False

    def _with(self, cfg, theta, z):
        g, i_o = theta
        c = cfg.copy()
        c.coupling.delayed.G = g
        c.dynamics.I_o = i_o
        c._internal.noise_samples = z
        return c

    def fc(self, theta, z, cfg):
        sol = self.solve(self._with(cfg, theta, z))
        return self.compute_fc(self.monitor(sol), skip_t=self.skip)

    def loss(self, theta, z, cfg, target):
        return _rmse(self.fc(theta, z, cfg), target)

    def noise_arg(self, z, seed: int):
        return z

    def trajectory(self, z, steps: int):
        from tvboptim.experimental.network_dynamics import prepare  # noqa: F401

        case = TvboptimCase(steps, None)
        sol = case.solve(case._with(case.cfg, (G, I_O), z[:steps]))
        return sol.ys[:, 0, :]


def make_case(spec: dict[str, Any]):
    block, skip, variant = spec["block"], spec["skip_volumes"], spec["variant"]
    if spec["library"] == "vbinfer":
        key_noise, remat = variant == "key noise", variant == "remat dfun"
        every = spec.get("sample_every", 1)
        adjoint = "autodiff" if variant == "autodiff adjoint" else "auto"
        return VbinferCase(
            spec["steps"], block, block is not None, key_noise, skip, remat, every, adjoint
        )
    return TvboptimCase(spec["steps"], block, "bw" if variant == "bw BOLD" else "hrf", skip)


# ----------------------------------------------------------------------------- one case
def timed(fn, repeats: int) -> list[float]:
    import jax

    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        out.append(time.perf_counter() - t0)
    return out


def run_case(spec: dict[str, Any]) -> dict[str, Any]:
    """Build, compile, measure peak RSS of the first gradient call, then time repeats."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    dtype = jnp.result_type(float)
    case = make_case(spec)
    n = case.n
    z = standard_normals(spec["steps"], n, SEED, dtype)
    z_target = standard_normals(spec["steps"], n, SEED + 1, dtype)
    theta = (jnp.asarray(G, dtype), jnp.full((n,), I_O, dtype))
    theta_target = (jnp.asarray(G_TARGET, dtype), jnp.full((n,), I_O, dtype))
    noise = case.noise_arg(z, SEED)
    noise_target = case.noise_arg(z_target, SEED + 1)
    target = jax.jit(case.fc)(theta_target, noise_target, case.net)
    target = jax.block_until_ready(target)

    t0 = time.perf_counter()
    fwd = jax.jit(case.loss).lower(theta, noise, case.net, target).compile()
    compile_fwd = time.perf_counter() - t0
    t0 = time.perf_counter()
    vg = jax.jit(jax.value_and_grad(case.loss)).lower(theta, noise, case.net, target).compile()
    compile_grad = time.perf_counter() - t0

    rss_before = rss_mb()
    reset_ok = reset_peak_rss()
    t0 = time.perf_counter()
    value, grads = jax.block_until_ready(vg(theta, noise, case.net, target))
    first_grad = time.perf_counter() - t0
    peak = peak_rss_mb() if reset_ok else None

    fwd_times = timed(lambda: fwd(theta, noise, case.net, target), 1 + spec["repeats"])[1:]
    grad_times = timed(lambda: vg(theta, noise, case.net, target), spec["repeats"])
    loss_fwd = float(fwd(theta, noise, case.net, target))
    g_g, g_io = grads
    return {
        **spec,
        "dtype": str(np.dtype(dtype)),
        "n_nodes": n,
        "compile_forward_s": compile_fwd,
        "compile_grad_s": compile_grad,
        "forward_s": statistics.median(fwd_times),
        "forward_times_s": fwd_times,
        "grad_s": statistics.median(grad_times),
        "grad_times_s": grad_times,
        "first_grad_s": first_grad,
        "forward_xla": xla_memory(fwd),
        "grad_xla": xla_memory(vg),
        "rss_before_grad_mb": rss_before,
        "peak_rss_grad_mb": peak,
        "peak_rss_grad_delta_mb": None if peak is None else peak - rss_before,
        "loss": float(value),
        "loss_forward": loss_fwd,
        "grad_G": float(g_g),
        "grad_I_o": np.asarray(g_io).tolist(),
        "grad_I_o_norm": float(np.linalg.norm(np.asarray(g_io))),
        "finite": bool(np.isfinite(float(value)) and np.all(np.isfinite(np.asarray(g_io)))),
    }


def agreement(steps: int) -> dict[str, Any]:
    """Max |S_vbinfer - S_tvboptim| over ``steps`` steps from the same normals (no BOLD)."""
    import jax.numpy as jnp
    import numpy as np

    dtype = jnp.result_type(float)
    z = standard_normals(steps, 84, SEED, dtype)
    a = np.asarray(VbinferCase(steps, None, False).trajectory(z, steps))
    b = np.asarray(TvboptimCase(steps, None).trajectory(z, steps))
    return {
        "steps": steps,
        "dtype": str(np.dtype(dtype)),
        "max_abs_diff": float(np.max(np.abs(a - b))),
        "S_range": [float(a.min()), float(a.max())],
    }


# ----------------------------------------------------------------------------- driver
def child(spec: dict[str, Any], dtype: str, timeout: float) -> dict[str, Any]:
    env = dict(os.environ)
    env["JAX_ENABLE_X64"] = "1" if dtype == "float64" else "0"
    env.setdefault("XLA_FLAGS", "")
    cmd = [sys.executable, __file__, "--child", json.dumps(spec)]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            cmd, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return {**spec, "error": f"timed out after {timeout:.0f} s"}
    lines = [ln for ln in proc.stdout.strip().splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {**spec, "error": f"exit {proc.returncode}: {proc.stderr.strip()[-800:]}"}
    out = json.loads(lines[-1])
    out["case_wall_s"] = time.perf_counter() - t0
    return out


def case_label(r: dict[str, Any]) -> str:
    if r["kind"] == "agreement":
        return "agreement"
    lib = r["library"] + (f" ({r['variant']})" if r["variant"] else "")
    if r.get("sample_every", 1) != 1:
        lib += f" [sample period {r['sample_every'] * DT:g} ms]"
    blocks = "no checkpoint" if r["block"] is None else f"blocks of {r['block']}"
    return f"{lib}, {blocks}"


def _f(x, fmt="{:.2f}") -> str:
    return "-" if x is None else fmt.format(x)


def markdown(report: dict[str, Any]) -> str:
    cfg = report["config"]
    lines = [
        f"# Long run: {cfg['n_nodes']}-node delayed reduced Wong-Wang, {cfg['steps']} steps at "
        f"dt {cfg['dt']} ms -> BOLD (TR {cfg['tr_ms']:.0f} ms) -> FC -> RMSE, "
        f"{cfg['dtype']}\n",
        "Times: medians after a warm-up; gradient = value_and_grad w.r.t. (G, I_o[84]). "
        "Memory: XLA temporaries of the compiled gradient (memory_analysis) and the process "
        "peak RSS during the first gradient call, above the RSS before it (absolute in "
        "brackets).\n",
        "| case | forward s | gradient s | grad / fwd | XLA temp grad MB | XLA temp fwd MB | "
        "peak RSS grad MB | compile grad s | loss | dloss/dG |",
        "|" + "---|" * 10,
    ]
    for r in report["cases"]:
        if "error" in r:
            lines.append(f"| {case_label(r)} | failed: {r['error'][:200]} |||||||||")
            continue
        peak = (
            f"{r['peak_rss_grad_delta_mb']:.0f} ({r['peak_rss_grad_mb']:.0f})"
            if r["peak_rss_grad_mb"] is not None
            else "-"
        )
        lines.append(
            f"| {case_label(r)} | {r['forward_s']:.3f} | {r['grad_s']:.3f} | "
            f"{r['grad_s'] / r['forward_s']:.2f} | {_f(r['grad_xla']['temp_mb'], '{:.0f}')} | "
            f"{_f(r['forward_xla']['temp_mb'], '{:.0f}')} | {peak} | "
            f"{r['compile_grad_s']:.1f} | {r['loss']:.6f} | {r['grad_G']:.5g} |"
        )
    ratios = report.get("ratios") or []
    if ratios:
        lines.append(
            "\nvbinfer / tvboptim at the same checkpointing (below 1: vbinfer faster or smaller):\n"
        )
        lines.append(
            "| vbinfer | blocks | forward | gradient | XLA temp grad | peak RSS grad (delta) |"
        )
        lines.append("|---|---|---|---|---|---|")
        for q in ratios:
            lines.append(
                f"| {q['vbinfer']} | {q['blocks']} | {_f(q['forward'])} | {_f(q['grad'])} | "
                f"{_f(q['xla_temp_grad'])} | {_f(q['peak_rss_grad_delta'])} |"
            )
    checks = report.get("checks") or []
    if checks:
        lines.append(
            "\nAgainst the library's default unblocked run (same noise): equal to rounding.\n"
        )
        lines += [
            f"- {c['case']}: |d loss| {c['loss_diff']:.1e}, "
            f"max rel |d grad| {c['grad_rel_diff']:.1e}"
            for c in checks
        ]
    ag = report.get("agreement")
    if ag:
        if "error" in ag:
            lines.append(f"\nAgreement check failed: {ag['error'][:300]}")
        else:
            lines.append(
                f"\nAgreement of the S trajectories, vbinfer vs tvboptim, same normals, "
                f"{ag['steps']} steps, {ag['dtype']}: max |difference| {ag['max_abs_diff']:.2e} "
                f"(S in {ag['S_range'][0]:.4f} .. {ag['S_range'][1]:.4f})."
            )
    lines.append("\n## Notes\n")
    lines += [f"- {n}" for n in report["notes"]]
    m = report["machine"]
    lines += [
        "\n## Machine\n",
        f"- processor: {m['processor'] or '?'} ({m['machine']}), nproc {m['nproc']}, "
        f"load average before the run {m['loadavg']}",
        f"- {m['platform']}; python {m['python']}, jax {m['jax']}, jaxlib {m['jaxlib']}, "
        f"vbinfer {m['vbinfer']}, tvboptim {m['tvboptim']}",
        f"- date: {report['date']}",
        f"- command: `{report['command']}`",
    ]
    return "\n".join(lines)


NOTES = [
    "Both libraries: Heun with the coupling computed once per step and held over both stages, "
    "noise sigma * sqrt(dt) * z added in predictor and corrector, lags rint(length / speed / "
    "dt), constant initial history S = 0.3; the S trajectories agree to rounding (agreement "
    "line). vbinfer clips S to [0, 1] (TVB's bounds); tvboptim's notebook does not (S stays "
    "inside here).",
    "The BOLD models differ (vbinfer: Balloon-Windkessel inside the loop; tvboptim: HRF "
    "convolution after the run, as in its notebook), so the losses differ; each library's "
    "target is its own FC of a reference run (G = 0.6, another noise draw).",
    "tvboptim's forward returns the whole S trajectory (steps x 84) and convolves it; "
    "vbinfer's monitor emits the BOLD signal of every 1 ms sample period (steps x 84, one "
    "sample per period is what a monitor returns) and keeps every 1000th. Forward = the loss "
    "value (simulation + BOLD + FC + RMSE) for both.",
    "vbinfer's BOLD monitor rematerialises its Balloon step in reverse mode (5 numbers per "
    "node and step on the tape instead of about 23). 'remat dfun' rows also wrap the neural "
    "model's derivative in jax.checkpoint (model._replace(dfun=jax.checkpoint(dfun))): the "
    "tape then keeps the state and coupling of each Heun stage instead of every intermediate "
    "of the transfer function; the simulator could do this for every model.",
    "vbinfer's block sizes must divide the number of steps: 250 stands for tvboptim's 256 "
    "(which leaves a tail of 96 steps); both libraries run the same block sizes here.",
    "Peak RSS is measured on the first gradient call after compilation, in a fresh process per "
    "case (the kernel's peak mark is reset just before the call); the delta excludes the "
    "inputs (connectome, the 60,000 x 84 normals) and compiled code. XLA temp is "
    "memory_analysis().temp_size_in_bytes.",
]


def machine_info() -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    def v(p):
        try:
            return version(p)
        except PackageNotFoundError:
            return "not installed"

    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {
        "processor": _cpu_model() or platform.processor(),
        "machine": platform.machine(),
        "platform": platform.platform(),
        "nproc": os.cpu_count(),
        "loadavg": load,
        "python": platform.python_version(),
        "jax": v("jax"),
        "jaxlib": v("jaxlib"),
        "vbinfer": v("vbinfer"),
        "tvboptim": v("tvboptim"),
    }


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def summarise(cases: list[dict[str, Any]]) -> tuple[list[dict], list[dict]]:
    """Ratios vbinfer / tvboptim per block size, and checkpointed-vs-plain agreement."""
    import numpy as np

    ok = [c for c in cases if "error" not in c]

    def find(lib, block, variant):
        for c in ok:
            if (c["library"], c["block"], c["variant"]) == (lib, block, variant):
                return c
        return None

    def ratio(x, y):
        return None if x is None or y in (None, 0) else x / y

    ratios = []
    variants = sorted({c["variant"] for c in ok if c["library"] == "vbinfer"})
    for variant in variants:
        for block in sorted({c["block"] for c in ok}, key=lambda b: -1 if b is None else b):
            a = find("vbinfer", block, variant)
            b = find("tvboptim", block, "")
            if a is None or b is None:
                continue
            ratios.append(
                {
                    "vbinfer": variant or "default",
                    "blocks": "none" if block is None else block,
                    "forward": ratio(a["forward_s"], b["forward_s"]),
                    "grad": ratio(a["grad_s"], b["grad_s"]),
                    "xla_temp_grad": ratio(a["grad_xla"]["temp_mb"], b["grad_xla"]["temp_mb"]),
                    "peak_rss_grad_delta": ratio(
                        a["peak_rss_grad_delta_mb"], b["peak_rss_grad_delta_mb"]
                    ),
                }
            )
    checks = []
    for c in ok:
        if c["variant"] == "key noise" or (c["block"] is None and not c["variant"]):
            continue
        # same noise and model as the library's default unblocked run: equal to rounding
        base = find(c["library"], None, "")
        if c["library"] == "tvboptim" and c["variant"]:
            base = find(c["library"], None, c["variant"])
        if base is None or base is c:
            continue
        g0 = np.asarray([base["grad_G"], *base["grad_I_o"]])
        g1 = np.asarray([c["grad_G"], *c["grad_I_o"]])
        checks.append(
            {
                "case": case_label(c),
                "library": c["library"],
                "block": c["block"],
                "loss_diff": abs(c["loss"] - base["loss"]),
                "grad_rel_diff": float(np.max(np.abs(g1 - g0)) / np.max(np.abs(g0))),
            }
        )
    return ratios, checks


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=N_STEPS)
    p.add_argument(
        "--blocks",
        type=int,
        nargs="*",
        default=[250, 1000],
        help="checkpoint block sizes (steps), run by both libraries beside no checkpointing",
    )
    p.add_argument("--repeats", type=int, default=3, help="timed runs per case (median)")
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    p.add_argument("--no-peers", action="store_true", help="vbinfer only")
    p.add_argument(
        "--tvb-bold",
        choices=("hrf", "bw", "both"),
        default="hrf",
        help="tvboptim's BOLD monitor: HRF convolution (its notebook), Balloon-Windkessel, both",
    )
    p.add_argument(
        "--key-noise",
        action="store_true",
        help="add vbinfer rows with noise drawn inside the loop from a key (its default mode)",
    )
    p.add_argument(
        "--sample-every",
        type=int,
        default=1,
        help="vbinfer: steps per sample period, i.e. per Balloon step and emitted BOLD sample "
        "(default 1: 1 ms, as tvboptim's dt_bw; 10 integrates the Balloon model at 10 ms)",
    )
    p.add_argument(
        "--remat-dfun",
        action="store_true",
        help="add vbinfer rows whose model derivative is wrapped in jax.checkpoint (what "
        "simulate.py could do for every model)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="12,000 steps, FC after 2 volumes, blocks of 250, 2 repeats (overrides --steps, "
        "--skip-volumes, --blocks, --repeats)",
    )
    p.add_argument(
        "--skip-volumes", type=int, default=SKIP_VOLUMES, help="BOLD volumes left out of the FC"
    )
    p.add_argument("--agreement-steps", type=int, default=2000)
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds per case")
    p.add_argument("--output", type=Path, default=RESULTS, help="JSON results file")
    p.add_argument("--child", type=str, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.steps, args.skip_volumes, args.blocks, args.repeats = 12_000, 2, [250], 2
    for b in args.blocks:
        if b < 1 or args.steps % b or b % args.sample_every:
            p.error(
                f"--blocks: {b} must be a positive divisor of --steps {args.steps} and a "
                f"multiple of --sample-every {args.sample_every}"
            )
    if args.sample_every < 1 or int(TR / DT) % args.sample_every:
        p.error(
            f"--sample-every must divide {int(TR / DT)} steps (one TR), got {args.sample_every}"
        )
    per_volume = int(TR / DT)
    if args.steps % per_volume or args.steps // per_volume < args.skip_volumes + 3:
        p.error(
            f"--steps must be a multiple of {per_volume} giving at least --skip-volumes + 3 "
            f"= {args.skip_volumes + 3} BOLD volumes, got {args.steps}"
        )
    return args


def main(argv=None) -> dict[str, Any] | None:
    args = parse_args(argv)
    if args.child is not None:
        spec = json.loads(args.child)
        try:
            res = agreement(spec["steps"]) if spec["kind"] == "agreement" else run_case(spec)
            res = {**spec, **res}
        except Exception as e:
            traceback.print_exc()
            res = {**spec, "error": f"{type(e).__name__}: {e}"}
        print(json.dumps(res))
        return None

    t_start = time.perf_counter()
    machine = machine_info()
    peers = not args.no_peers and machine["tvboptim"] != "not installed"
    blocks: list[int | None] = [None, *args.blocks]
    specs = []
    base = {
        "kind": "case",
        "steps": args.steps,
        "repeats": args.repeats,
        "skip_volumes": args.skip_volumes,
    }
    variants = ["", "autodiff adjoint"]
    variants += ["remat dfun"] * args.remat_dfun + ["key noise"] * args.key_noise
    specs = [
        {**base, "library": "vbinfer", "block": b, "variant": v, "sample_every": args.sample_every}
        for v in variants
        for b in blocks
    ]
    if peers:
        bolds = {"hrf": [""], "bw": ["bw BOLD"], "both": ["", "bw BOLD"]}[args.tvb_bold]
        specs += [
            {**base, "library": "tvboptim", "block": b, "variant": v} for v in bolds for b in blocks
        ]
    print(
        f"{len(specs)} cases, {args.steps} steps, {args.dtype}, repeats {args.repeats}; "
        f"load average {machine['loadavg']}",
        flush=True,
    )
    cases = []
    for spec in specs:
        r = child(spec, args.dtype, args.timeout)
        cases.append(r)
        if "error" in r:
            print(f"  {case_label(r)}: FAILED {r['error'][-300:]}", flush=True)
        else:
            print(
                f"  {case_label(r)}: forward {r['forward_s']:.3f} s, gradient {r['grad_s']:.3f} "
                f"s, XLA temp {_f(r['grad_xla']['temp_mb'], '{:.0f}')} MB, peak RSS delta "
                f"{_f(r['peak_rss_grad_delta_mb'], '{:.0f}')} MB, loss {r['loss']:.6f} "
                f"({r['case_wall_s']:.0f} s)",
                flush=True,
            )
    agree = None
    if peers and args.agreement_steps > 0:
        agree = child({"kind": "agreement", "steps": args.agreement_steps}, "float64", 600.0)
    ratios, checks = summarise(cases)
    report = {
        "config": {
            "n_nodes": cases[0].get("n_nodes", 84) if cases else 84,
            "steps": args.steps,
            "dt": DT,
            "speed_mm_per_ms": SPEED,
            "G": G,
            "G_target": G_TARGET,
            "w": W_RWW,
            "I_o": I_O,
            "S0": S0,
            "sigma": SIGMA,
            "tr_ms": TR,
            "skip_volumes": args.skip_volumes,
            "bold_gain": BOLD_GAIN,
            "vbinfer_sample_every": args.sample_every,
            "blocks": args.blocks,
            "repeats": args.repeats,
            "dtype": args.dtype,
            "seed": SEED,
        },
        "cases": cases,
        "ratios": ratios,
        "checks": checks,
        "agreement": agree,
        "notes": NOTES,
        "machine": machine,
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
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return str(x)


if __name__ == "__main__":
    main()
