#!/usr/bin/env python
"""Spherical harmonic transforms: vbinfer.fields vs vbjax 0.0.19 ``make_shtdiff``.

Both run in the same process on the same Gauss-Legendre grids (``nlat`` latitudes,
``nlon = 2 nlat`` longitudes, ``lmax = nlat - 1``), on a batch of 16 fields:

- vbinfer: ``synthesis(sht, analysis(sht, f))`` (the transform pair, through the complex
  coefficient array), ``apply_spectral(sht, f, g)`` (forward, one gain per degree, inverse,
  without the coefficient array) and ``apply_operator(sht, make_spectral_operator(sht, g), f)``
  (the same with analysis, gains and synthesis precomputed as one real matrix per order and
  equatorial parity, as vbjax precomputes its operator); float32 and float64.
- vbjax: ``jax.vmap(make_shtdiff(nlat, D=D))``, which applies ``synthesis(D l (l + 1)
  analysis(f))`` as one precomputed ``(nlat, nlat)`` complex matrix per order; float32 only
  (its matrices are cast to float32), and it drops the order ``m = lmax``.

vbjax exposes no identity transform, so accuracy is measured on the operator it computes,
``f -> synthesis(g_l a_l^m)``, for vbinfer with ``apply_spectral(sht, f, g)``. Its docstring
gain is ``g_l = D l (l + 1)``, but vbjax 0.0.19 applies ``D l (l + 1)^2 / (2 pi)``:
``make_shtdiff_np`` takes ``l = lm[0, lm[0] >= m]``, the degrees of *every* pair ``(l, m')``,
so each degree enters its per-order matrix ``l + 1`` times, and its quadrature lacks the
``2 pi`` of the longitude integral (checked mode by mode: this gain, with ``m = lmax``
dropped, matches it to 1e-5). vbjax is therefore scored against that effective gain (the
accuracy of its transforms) and, in a note, against the documented one; vbinfer against
``D l (l + 1)``.

The test fields are random band-limited fields synthesised in float64 (independent complex
normal coefficients for every ``m <= l <= lmax``); the exact result is the float64 synthesis
of the gains times those coefficients. Errors are ``max |out - exact| / max |exact|`` over
the batch, for fields band-limited to ``lmax`` and to ``lmax - 1`` (the order vbjax drops then
carries nothing). The round trip of vbinfer's pair is measured the same way against the input
field.

Timings: ``jax.jit(fn).lower(f).compile()`` (timed, reported separately), one warm-up call,
then ``--repeats`` rounds in which every variant of a size runs ``--calls`` times in turn
(interleaved, so that a change in machine load hits all of them alike); the median and the
minimum over all calls, with ``jax.block_until_ready``. The script prints the machine, the
date, the command and the load average before and after.

Full field step
---------------
A second table times one Heun step of a whole neural field: the Montbrio-Pazo-Roxin model at
every point of the grid (float32, dt = 0.01 ms), with local coupling ``c_r = K * r`` applied
at both Heun stages, ``--field-steps`` steps per call (the per-step time is the call time
divided by the steps, so dispatch is amortised):

- vbinfer: ``make_field_simulator(models.mpr, sht, gains, ...)`` and ``jax.jit(sim.run)``
  (deterministic, one sample at the end; the kernel's operator precomputed at build time);
- vbjax: ``jax.lax.scan`` of ``vbjax.heun_step`` with ``vbjax.mpr_dfun``, the coupling
  ``make_shtdiff(nlat, D=D)(r)`` and ``adhoc=vbjax.mpr_r_positive`` (vbjax's own field step,
  as in its ``tests/test_field_inference.py``, with MPR in place of ``-x``).

Both apply the same operator: vbinfer is given vbjax's effective gains ``D l (l + 1)^2 / (2
pi)`` (any kernel's gains cost the same), so the final states of the two can be compared: the
table reports their max relative difference (float32 rounding, plus vbjax's missing order
``m = lmax``, which the nonlinearity feeds). Initial state: ``r = 0.1 + 0.01 u``, ``V = -2``,
``u`` a random field band-limited to ``lmax - 1`` with unit max.

s2fft is not a dependency of vbinfer; the script records whether it can be imported (with
``peers``) and does not time it.

Run ``uv run python benchmarks/sht_throughput.py --help`` for the options.
"""

from __future__ import annotations

import os

# vbjax, on import, sets XLA_FLAGS=--xla_force_host_platform_device_count=<cpus> unless
# XLA_FLAGS is already set; keep the XLA configuration identical for both libraries.
os.environ.setdefault("XLA_FLAGS", "")

import argparse
import contextlib
import datetime
import io
import json
import platform
import shlex
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import vbinfer
from vbinfer import models, monitors
from vbinfer.coupling import LinearParams
from vbinfer.fields import (
    FieldParams,
    analysis,
    apply_operator,
    apply_spectral,
    make_field_simulator,
    make_sht,
    make_spectral_operator,
    synthesis,
)

BATCH = 16
FIELD_STEPS = 100
FIELD_DT = 0.01  # ms
D = 0.0004  # vbjax's default diffusion coefficient; errors are relative, so it scales out
SEED = 0
RESULTS = Path(__file__).resolve().parent / "results" / "sht_throughput.json"


# ----------------------------------------------------------------------------- helpers


def import_vbjax():
    with contextlib.redirect_stdout(io.StringIO()):  # vbjax prints a banner on import
        import vbjax
    return vbjax


_SHTDIFF: dict[int, tuple[Callable, float]] = {}


def vbjax_shtdiff(vbjax: Any, nlat: int) -> tuple[Callable, float]:
    """``make_shtdiff(nlat, D=D)`` and its build time, built once per size (it is slow: its
    tables come from scipy's ``sph_harm_y``, minutes at nlat 128 on a loaded machine)."""
    if nlat not in _SHTDIFF:
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            f = vbjax.make_shtdiff(nlat, D=D)
        _SHTDIFF[nlat] = (f, time.perf_counter() - t0)
    return _SHTDIFF[nlat]


def gains_documented(lmax: int) -> np.ndarray:
    """``D l (l + 1)``: vbjax's documented operator, applied by vbinfer."""
    l = np.arange(lmax + 1.0)
    return D * l * (l + 1)


def gains_vbjax(lmax: int) -> np.ndarray:
    """``D l (l + 1)^2 / (2 pi)``: what vbjax 0.0.19 ``make_shtdiff`` applies (see above)."""
    l = np.arange(lmax + 1.0)
    return D * l * (l + 1) ** 2 / (2 * np.pi)


def test_fields(nlat: int, band: int, batch: int, seed: int) -> dict[str, np.ndarray]:
    """Float64 fields band-limited to ``band`` and the exact outputs of both operators."""
    with jax.enable_x64(True):
        sht = make_sht(nlat, dtype=jnp.float64)
        n = sht.lmax + 1
        rng = np.random.default_rng(seed)
        a = rng.standard_normal((batch, n, n)) + 1j * rng.standard_normal((batch, n, n))
        a = np.triu(a)  # [m, l] with m <= l
        a[:, 0] = a[:, 0].real
        a[..., band + 1 :] = 0.0
        return {
            "field": np.asarray(synthesis(sht, a)),
            "documented": np.asarray(synthesis(sht, gains_documented(sht.lmax) * a)),
            "vbjax": np.asarray(synthesis(sht, gains_vbjax(sht.lmax) * a)),
        }


def rel_err(out: Any, exact: np.ndarray) -> float:
    out = np.asarray(out, dtype=np.float64)
    return float(np.max(np.abs(out - exact)) / np.max(np.abs(exact)))


def compile_fn(fn: Callable, x: Any) -> tuple[Callable, float]:
    t0 = time.perf_counter()
    compiled = jax.jit(fn).lower(x).compile()
    compile_s = time.perf_counter() - t0
    jax.block_until_ready(compiled(x))  # warm-up
    return compiled, compile_s


def time_interleaved(
    fns: dict[str, tuple[Callable, Any]], repeats: int, calls: int
) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, (fn, x) in fns.items():
            for _ in range(calls):
                t0 = time.perf_counter()
                jax.block_until_ready(fn(x))
                times[name].append(time.perf_counter() - t0)
    return times


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


def load_average() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


# ----------------------------------------------------------------------------- one size


def run_size(nlat: int, args: argparse.Namespace, vbjax: Any) -> list[dict[str, Any]]:
    """All variants at one grid size; returns one row per (library, variant, dtype)."""
    lmax = nlat - 1
    full = test_fields(nlat, lmax, args.batch, SEED)
    trunc = test_fields(nlat, lmax - 1, args.batch, SEED + 1)
    gains64 = gains_documented(lmax)
    rows: list[dict[str, Any]] = []
    fns: dict[str, tuple[Callable, Any]] = {}
    meta: dict[str, dict[str, Any]] = {}

    def add(name: str, library: str, variant: str, dtype: str, fn, x, setup_s, errs):
        compiled, compile_s = compile_fn(fn, x)
        fns[name] = (compiled, x)
        meta[name] = {
            "nlat": nlat,
            "nlon": 2 * nlat,
            "lmax": lmax,
            "batch": args.batch,
            "library": library,
            "variant": variant,
            "dtype": dtype,
            "setup_s": setup_s,
            "compile_s": compile_s,
            **errs(compiled),
        }

    def scores(c, x, t, key):
        """Errors on the full-band and the (lmax - 1)-band fields against ``key``'s output."""
        return {"err": rel_err(c(x), full[key]), "err_trunc": rel_err(c(t), trunc[key])}

    # vbinfer float32
    t0 = time.perf_counter()
    sht = make_sht(nlat, dtype=jnp.float32)
    setup = time.perf_counter() - t0
    g32 = jnp.asarray(gains64, jnp.float32)
    x32 = jnp.asarray(full["field"], jnp.float32)
    t32 = jnp.asarray(trunc["field"], jnp.float32)

    def pair(x, sht=sht):
        return synthesis(sht, analysis(sht, x))

    def op(x, sht=sht, g=g32):
        return apply_spectral(sht, x, g)

    add(
        "vbinfer pair f32",
        "vbinfer",
        "analysis + synthesis",
        "float32",
        pair,
        x32,
        setup,
        lambda c: scores(c, x32, t32, "field"),
    )
    add(
        "vbinfer op f32",
        "vbinfer",
        "apply_spectral",
        "float32",
        op,
        x32,
        setup,
        lambda c: scores(c, x32, t32, "documented"),
    )
    t0 = time.perf_counter()
    op32 = jax.block_until_ready(make_spectral_operator(sht, g32))
    op_setup = setup + time.perf_counter() - t0

    def pre(x, sht=sht, op=op32):
        return apply_operator(sht, op, x)

    add(
        "vbinfer operator f32",
        "vbinfer",
        "apply_operator",
        "float32",
        pre,
        x32,
        op_setup,
        lambda c: scores(c, x32, t32, "documented"),
    )
    # vbjax float32
    if vbjax is not None:
        try:
            f, setup = vbjax_shtdiff(vbjax, nlat)
            vb_op = jax.vmap(f)
            add(
                "vbjax op f32",
                "vbjax",
                "make_shtdiff",
                "float32",
                vb_op,
                x32,
                setup,
                lambda c: {
                    **scores(c, x32, t32, "vbjax"),
                    "err_documented": rel_err(c(x32), full["documented"]),
                },
            )
        except Exception:
            traceback.print_exc()
    times = time_interleaved(fns, args.repeats, args.calls)
    for name, ts in times.items():
        rows.append({**meta[name], **_stats(ts)})
    # vbinfer float64 (its own interleaved block: x64 must be on while it runs)
    if not args.no_float64:
        with jax.enable_x64(True):
            fns.clear()
            t0 = time.perf_counter()
            sht64 = make_sht(nlat, dtype=jnp.float64)
            setup = time.perf_counter() - t0
            g64 = jnp.asarray(gains64)
            x64, t64 = jnp.asarray(full["field"]), jnp.asarray(trunc["field"])

            def pair64(x, sht=sht64):
                return synthesis(sht, analysis(sht, x))

            def op64(x, sht=sht64, g=g64):
                return apply_spectral(sht, x, g)

            add(
                "vbinfer pair f64",
                "vbinfer",
                "analysis + synthesis",
                "float64",
                pair64,
                x64,
                setup,
                lambda c: scores(c, x64, t64, "field"),
            )
            add(
                "vbinfer op f64",
                "vbinfer",
                "apply_spectral",
                "float64",
                op64,
                x64,
                setup,
                lambda c: scores(c, x64, t64, "documented"),
            )
            t0 = time.perf_counter()
            op64 = jax.block_until_ready(make_spectral_operator(sht64, g64))
            op_setup = setup + time.perf_counter() - t0

            def pre64(x, sht=sht64, op=op64):
                return apply_operator(sht, op, x)

            add(
                "vbinfer operator f64",
                "vbinfer",
                "apply_operator",
                "float64",
                pre64,
                x64,
                op_setup,
                lambda c: scores(c, x64, t64, "documented"),
            )
            times = time_interleaved(fns, args.repeats, args.calls)
            for name, ts in times.items():
                rows.append({**meta[name], **_stats(ts)})
    return rows


def _stats(ts: list[float]) -> dict[str, Any]:
    return {
        "median_ms": statistics.median(ts) * 1e3,
        "min_ms": min(ts) * 1e3,
        "n_calls": len(ts),
    }


# ----------------------------------------------------------------------------- field step


def field_initial_state(nlat: int, seed: int) -> np.ndarray:
    """``(2, nlat, nlon)`` MPR state: ``r = 0.1 + 0.01 u`` (``u`` band-limited to lmax - 1), V = -2."""
    u = test_fields(nlat, nlat - 2, 1, seed)["field"][0]
    u = u / np.max(np.abs(u))
    return np.stack([0.1 + 0.01 * u, np.full_like(u, -2.0)]).astype(np.float32)


def run_field_step(nlat: int, args: argparse.Namespace, vbjax: Any) -> list[dict[str, Any]]:
    """One Heun step of an MPR field with spectral local coupling, vbinfer and vbjax."""
    steps = args.field_steps
    lmax = nlat - 1
    x0 = jnp.asarray(field_initial_state(nlat, SEED + 2))
    gains = gains_vbjax(lmax)
    fns: dict[str, tuple[Callable, Any]] = {}
    meta: dict[str, dict[str, Any]] = {}
    finals: dict[str, np.ndarray] = {}

    def add(name: str, library: str, variant: str, fn, x, setup_s):
        compiled, compile_s = compile_fn(fn, x)
        fns[name] = (compiled, x)
        finals[name] = np.asarray(compiled(x), dtype=np.float64)
        meta[name] = {
            "nlat": nlat,
            "nlon": 2 * nlat,
            "lmax": lmax,
            "steps_per_call": steps,
            "library": library,
            "variant": variant,
            "dtype": "float32",
            "setup_s": setup_s,
            "compile_s": compile_s,
            "finite": bool(np.all(np.isfinite(finals[name]))),
        }

    t0 = time.perf_counter()
    sht = make_sht(nlat, dtype=jnp.float32)
    sim = make_field_simulator(
        models.mpr,
        sht,
        jnp.asarray(gains, jnp.float32),
        dt=FIELD_DT,
        num_steps=steps,
        monitors=[monitors.subsample()],
        sample_every=steps,
    )
    setup = time.perf_counter() - t0
    params = FieldParams(models.MPRParams(), local=LinearParams(a=1.0, b=0.0))

    def vbinfer_run(x, sim=sim, params=params):
        return sim.to_grid(sim.run(None, params, None, x.reshape(2, -1)).final.x)

    add("vbinfer", "vbinfer", "make_field_simulator (Heun)", vbinfer_run, x0, setup)

    if vbjax is not None:
        try:
            lc, setup = vbjax_shtdiff(vbjax, nlat)
            theta = vbjax.mpr_default_theta

            def dfun(x, p, lc=lc):
                return vbjax.mpr_dfun(x, (lc(x[0]), 0.0), p)

            def vbjax_run(x, theta=theta, dfun=dfun):
                def one(x, _):
                    return vbjax.heun_step(
                        x, dfun, FIELD_DT, theta, adhoc=vbjax.mpr_r_positive
                    ), None

                return jax.lax.scan(one, x, None, length=steps)[0]

            add("vbjax", "vbjax", "heun_step + make_shtdiff", vbjax_run, x0, setup)
        except Exception:
            traceback.print_exc()

    times = time_interleaved(fns, args.repeats, args.calls)
    rows = []
    for name, ts in times.items():
        st = _stats(ts)
        row = {
            **meta[name],
            **st,
            "step_us": st["median_ms"] * 1e3 / steps,
            "step_min_us": st["min_ms"] * 1e3 / steps,
        }
        if name == "vbinfer" and "vbjax" in finals:
            row["diff_vs_vbjax"] = rel_err(finals["vbinfer"], finals["vbjax"])
        rows.append(row)
    return rows


# ----------------------------------------------------------------------------- report


def markdown(rows: list[dict[str, Any]], info: dict[str, Any]) -> str:
    out = []
    out.append(
        f"## Spherical harmonic transforms, batch of {info['batch']} fields, lmax = nlat - 1\n"
    )
    out.append(
        "Time per call (forward + inverse transform of the whole batch), median (min) over "
        f"{info['repeats']} interleaved rounds of {info['calls']} calls. `vbjax / this`: vbjax's "
        "median time over this row's (> 1: this row is faster). Errors: max-norm relative, "
        "float64 reference; `err` on fields band-limited to lmax, `err (lmax-1)` to lmax - 1.\n"
    )
    out.append(
        "| nlat | library | call | dtype | time (ms) | vbjax / this | err | err (lmax-1) "
        "| compile (s) | setup (s) |"
    )
    out.append("|---:|---|---|---|---:|---:|---:|---:|---:|---:|")
    ref = {r["nlat"]: r["median_ms"] for r in rows if r["library"] == "vbjax"}
    for r in rows:
        ratio = ref.get(r["nlat"])
        ratio_s = f"{ratio / r['median_ms']:.2f}" if ratio and r["library"] != "vbjax" else ""
        if r["library"] == "vbjax":
            ratio_s = "1.00"
        out.append(
            f"| {r['nlat']} | {r['library']} | {r['variant']} | {r['dtype']} "
            f"| {r['median_ms']:.3f} ({r['min_ms']:.3f}) | {ratio_s} | {r['err']:.1e} "
            f"| {r['err_trunc']:.1e} | {r['compile_s']:.2f} | {r['setup_s']:.2f} |"
        )
    out.append("")
    out.append(
        "Errors of `analysis + synthesis` are of the round trip (output vs input field); those "
        "of `apply_spectral` of the operator `f -> synthesis(D l (l+1) a_l^m)` vs its exact "
        "float64 value; those of vbjax `make_shtdiff` of the operator it actually applies, gain "
        "`D l (l+1)^2 / (2 pi)` (its docstring says `D l (l+1)`; see the script's docstring). "
        "vbjax drops the order m = lmax, hence its `err` of several percent on fields that have "
        "it; "
        "`err (lmax-1)` shows its float32 rounding. Setup: building the tables (vbinfer "
        "`make_sht`, plus `make_spectral_operator` for `apply_operator`; vbjax "
        "`make_shtdiff`). float64 rows are compared with vbjax's float32 time."
    )
    doc = [f"nlat {r['nlat']}: {r['err_documented']:.2f}" for r in rows if "err_documented" in r]
    if doc:
        out.append("")
        out.append(
            "vbjax against its documented operator `D l (l+1)` (relative error): "
            + ", ".join(doc)
            + "."
        )
    out.append("")
    out.append(machine_markdown(info))
    return "\n".join(out)


def machine_markdown(info: dict[str, Any]) -> str:
    out = []
    m = info["machine"]
    out.append("### Machine")
    out.append("")
    out.append(
        f"- processor: {m['processor'] or m['machine']} ({m['platform']}), nproc {m['nproc']}"
    )
    out.append(
        f"- python {m['python']}, jax {m['jax']}, jaxlib {m['jaxlib']}, devices {m['devices']}"
    )
    out.append(f"- peers: {m['peers']}")
    out.append(
        f"- load average (1, 5, 15 min) before: {info['load_before']}, after: {info['load_after']}"
    )
    out.append(f"- date: {info['date']}")
    out.append(f"- command: `{info['command']}`")
    return "\n".join(out)


def markdown_field(rows: list[dict[str, Any]], info: dict[str, Any]) -> str:
    out = [
        "## Full field step: MPR at every grid point, local coupling at both Heun stages\n",
        f"Time per Heun step (float32, one field of `(2, nlat, 2 nlat)`), from calls of "
        f"{info['field_steps']} steps: median (min) over {info['repeats']} interleaved rounds "
        f"of {info['calls']} calls. `vbjax / this`: vbjax's median over this row's. `diff`: max "
        "relative difference of vbinfer's final state from vbjax's (same operator, see the "
        "script's docstring).\n",
        "| nlat | library | call | time per step (us) | vbjax / this | diff | finite "
        "| compile (s) | setup (s) |",
        "|---:|---|---|---:|---:|---:|---|---:|---:|",
    ]
    ref = {r["nlat"]: r["step_us"] for r in rows if r["library"] == "vbjax"}
    for r in rows:
        ratio = ref.get(r["nlat"])
        ratio_s = f"{ratio / r['step_us']:.2f}" if ratio else ""
        diff = f"{r['diff_vs_vbjax']:.1e}" if "diff_vs_vbjax" in r else ""
        out.append(
            f"| {r['nlat']} | {r['library']} | {r['variant']} "
            f"| {r['step_us']:.1f} ({r['step_min_us']:.1f}) | {ratio_s} | {diff} | {r['finite']} "
            f"| {r['compile_s']:.2f} | {r['setup_s']:.2f} |"
        )
    return "\n".join(out)


def s2fft_status() -> str:
    try:
        import s2fft  # noqa: F401
    except Exception as exc:  # not a dependency; only recorded
        return f"not importable ({type(exc).__name__}: {exc})"
    from importlib.metadata import version

    return f"importable, version {version('s2fft')} (not timed)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nlats", type=int, nargs="+", default=[32, 64, 128])
    parser.add_argument("--batch", type=int, default=BATCH)
    parser.add_argument("--repeats", type=int, default=20, help="interleaved rounds (default 20)")
    parser.add_argument("--calls", type=int, default=5, help="calls per round (default 5)")
    parser.add_argument("--no-peers", action="store_true", help="vbinfer only")
    parser.add_argument("--no-float64", action="store_true")
    parser.add_argument(
        "--field-steps",
        type=int,
        default=FIELD_STEPS,
        help=f"Heun steps per call of the full field step (default {FIELD_STEPS})",
    )
    parser.add_argument("--no-field", action="store_true", help="skip the full field step")
    parser.add_argument("--no-sht", action="store_true", help="skip the transform table")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    load_before = load_average()
    vbjax = None
    peers = {"vbinfer": vbinfer.__version__}
    if not args.no_peers:
        try:
            vbjax = import_vbjax()
            from importlib.metadata import version

            peers["vbjax"] = version("vbjax")
        except ImportError:
            print("vbjax is not installed (uv sync --extra bench); running vbinfer only")
    peers["s2fft"] = s2fft_status()
    rows: list[dict[str, Any]] = []
    field_rows: list[dict[str, Any]] = []
    for nlat in args.nlats:
        if not args.no_sht:
            print(f"nlat = {nlat}: transforms ...", file=sys.stderr, flush=True)
            rows.extend(run_size(nlat, args, vbjax))
        if not args.no_field:
            print(f"nlat = {nlat}: field step ...", file=sys.stderr, flush=True)
            field_rows.extend(run_field_step(nlat, args, vbjax))
    info = {
        "batch": args.batch,
        "field_steps": args.field_steps,
        "repeats": args.repeats,
        "calls": args.calls,
        "D": D,
        "machine": machine_info(peers),
        "load_before": load_before,
        "load_after": load_average(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
    }
    parts = []
    if rows:
        parts.append(markdown(rows, info))  # ends with the machine block
    if field_rows:
        parts.append(markdown_field(field_rows, info))
        if not rows:
            parts.append(machine_markdown(info))
    print("\n\n".join(parts))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    result = {"info": info, "rows": rows, "field_rows": field_rows}
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
