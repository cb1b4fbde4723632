"""vbinfer vs vbjax on vbjax's field-inference task (workflow 3), in one process.

The task: the initial condition of a 32 x 64 spherical field (2048 unknowns) from its noise-free
100-step trajectory, vbjax 0.0.19's ``tests/test_field_inference.py::test_sht_ode_nuts`` (see
:mod:`vbinfer.workflows.field` for its definition). Two parts:

1. the gradient of the log density, the unit of NUTS's work: vbjax's own numpyro model (its
   ``make_shtdiff`` operator stepped by its ``make_ode``) beside vbinfer's densities (forward
   map stepped, spectral or per Fourier column; centred or whitened); rounds interleaved,
   medians of wall and CPU time;
2. whole runs: ``vbinfer.workflows.field.run`` per backend, then vbjax's test function itself
   (``--skip-vbjax`` leaves it out: it takes ~5 min on an idle 2-core machine).

vbjax is imported first, before JAX starts, so that its ``XLA_FLAGS`` setting applies to the
whole process as in vbjax's own test run. On a shared machine wall times depend on the load
(printed before and after); CPU times (all threads of this process) are steadier.

Run: ``uv run python benchmarks/field_mcmc.py [--skip-vbjax] [--rounds 5]``; writes
``benchmarks/results/field_mcmc.json``.
"""

from __future__ import annotations

# isort: off
import vbjax  # first: it sets XLA_FLAGS before JAX starts, as in vbjax's own test runs
# isort: on

import argparse
import datetime
import json
import os
import platform
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from numpyro.infer.util import initialize_model

from vbinfer.inference._common import make_density
from vbinfer.workflows import field


def _timer(fn, arg):
    jax.block_until_ready(fn(arg))

    def once(n=10):
        t, c = time.perf_counter(), time.process_time()
        for _ in range(n):
            out = fn(arg)
        jax.block_until_ready(out)
        return (time.perf_counter() - t) / n, (time.process_time() - c) / n

    return once


def gradients(rounds: int) -> dict[str, dict[str, float]]:
    """Median wall / CPU ms of one value-and-gradient of each log density (one chain)."""
    from vbjax.tests.test_field_inference import setup_model

    _, xt, logp = setup_model()
    info = initialize_model(jax.random.key(0), logp, model_kwargs={"xt": xt})
    z0 = info.param_info.z
    vbjax_vg = jax.jit(jax.value_and_grad(info.potential_fn))
    cases = {"vbjax (stepped, centred)": _timer(vbjax_vg, z0)}
    task = field.make_task()
    post = field.exact_posterior(task)
    for label, par, fwd in [
        ("vbinfer stepped, centred", "centred", "stepped"),
        ("vbinfer spectral, centred", "centred", "spectral"),
        ("vbinfer spectral, whitened", "whitened", "spectral"),
        ("vbinfer fourier, centred", "centred", "fourier"),
        ("vbinfer fourier, whitened (the workflow's)", "whitened", "fourier"),
    ]:
        problem = field.field_problem(task, parameterisation=par, forward=fwd, posterior=post)
        dens = make_density(jax.random.key(0), problem, field.observed_data(task, fwd))
        vg = jax.jit(jax.value_and_grad(dens.logdensity))
        cases[label] = _timer(vg, jnp.zeros(dens.dim) + 0.1)
    times: dict[str, list] = {k: [] for k in cases}
    for _ in range(rounds):
        for k, once in cases.items():
            times[k].append(once())
    return {
        k: {
            "wall_ms": 1e3 * float(np.median([w for w, _ in v])),
            "cpu_ms": 1e3 * float(np.median([c for _, c in v])),
        }
        for k, v in times.items()
    }


def vbjax_run() -> dict[str, float]:
    """vbjax's test function as shipped, timed (model set-up, NUTS 500 + 500, checks)."""
    from vbjax.tests.test_field_inference import test_sht_ode_nuts

    t, c = time.perf_counter(), time.process_time()
    test_sht_ode_nuts()
    return {"wall_s": time.perf_counter() - t, "cpu_s": time.process_time() - c}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--skip-vbjax", action="store_true", help="leave out vbjax's whole run")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved gradient rounds")
    ap.add_argument("--backends", nargs="+", default=["nuts", "blackjax_nuts"])
    ap.add_argument("--output", default="benchmarks/results/field_mcmc.json")
    args = ap.parse_args()

    out = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "cpus": os.cpu_count(),
            "jax": jax.__version__,
            "vbjax": vbjax.__version__,
            "loadavg_start": os.getloadavg(),
        },
    }
    print(json.dumps(out["machine"]))
    out["gradient"] = gradients(args.rounds)
    print("\n| log density (one chain) | wall ms | CPU ms |\n|---|---|---|")
    for k, v in out["gradient"].items():
        print(f"| {k} | {v['wall_ms']:.2f} | {v['cpu_ms']:.2f} |")

    runs = {}
    for backend in args.backends:
        t, c = time.perf_counter(), time.process_time()
        rep = field.run(backend=backend, progress=False)
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        m = rep.metrics
        runs[f"vbinfer {backend} (whitened)"] = {
            "wall_s": wall,
            "cpu_s": cpu,
            "mcmc_wall_s": m["mcmc_wall_s"],
            "min_ess": m["min_ess"],
            "min_shrinkage": m["min_shrinkage"],
            "max_abs_z": m["max_abs_z"],
            "leapfrog_per_draw": m["leapfrog_steps_per_draw"],
            "passed": rep.passed,
        }
    if not args.skip_vbjax:
        runs["vbjax test_sht_ode_nuts"] = {**vbjax_run(), "passed": True}
    out["runs"] = runs
    out["machine"]["loadavg_end"] = os.getloadavg()
    print(
        "\n| run | wall s | CPU s | min ESS | min shrinkage | max abs z |\n|---|---|---|---|---|---|"
    )
    for k, v in runs.items():
        print(
            f"| {k} | {v['wall_s']:.1f} | {v['cpu_s']:.1f} | {v.get('min_ess', float('nan')):.0f} "
            f"| {v.get('min_shrinkage', float('nan')):.3f} | {v.get('max_abs_z', float('nan')):.2f} |"
        )
    if "vbjax test_sht_ode_nuts" in runs:
        ref = runs["vbjax test_sht_ode_nuts"]
        for k, v in runs.items():
            if k.startswith("vbinfer"):
                print(
                    f"speed-up of {k}: {ref['wall_s'] / v['wall_s']:.1f}x wall, "
                    f"{ref['cpu_s'] / v['cpu_s']:.1f}x CPU"
                )
    print(f"load average at the end: {out['machine']['loadavg_end']}")
    path = Path(args.output)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
