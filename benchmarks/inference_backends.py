"""ESS per second of numpyro and blackjax NUTS on the same posteriors, and SVI / MAP time to a
given loss, in one process.

Problems:
- ``linear``: a 20-dimensional linear-Gaussian regression (200 observations);
- ``mpr``: excitability and coupling of a 4-node delayed Montbrio-Pazo-Roxin network
  (3 ms at dt 0.01 ms, noise held fixed), observed through its firing rates.

Run: ``uv run python benchmarks/inference_backends.py [--quick]``. Prints Markdown tables and
writes ``benchmarks/results/inference_backends.json``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import time
from pathlib import Path

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist

import vbinfer as vb
from vbinfer.inference import fit, make_problem, simulate_data, simulator_problem


def linear_problem():
    rng = np.random.default_rng(0)
    d, n = 20, 200
    a = jnp.asarray(rng.normal(size=(n, d)))
    truth = rng.normal(size=d)
    p = make_problem(
        {"theta": dist.Normal(jnp.zeros(d), 1.0).to_event(1)},
        lambda th: a @ th["theta"],
        noise_sd=1.0,
        data_shape=(n,),
        truth={"theta": truth},
    )
    return p, simulate_data(jax.random.key(1), p)


def mpr_problem():
    rng = np.random.default_rng(0)
    w = rng.uniform(0, 1, (4, 4))
    np.fill_diagonal(w, 0)
    net = vb.make_network(w, rng.uniform(1, 10, (4, 4)), speed=2.0)
    sim = vb.make_simulator(
        vb.models.mpr,
        dt=0.01,
        num_steps=300,
        max_lag=600,
        noise=vb.AdditiveNoise(0.05, states=(1,)),
        sample_every=10,
    )
    z = jax.random.normal(jax.random.key(0), sim.noise_shape(4))
    base = vb.SimParams(vb.models.MPRParams(), vb.coupling.LinearParams(a=0.2))
    p = simulator_problem(
        sim,
        net,
        base,
        {"model.eta": dist.Normal(-5.0, 1.0), "coupling.a": dist.HalfNormal(1.0)},
        lambda r: r.outputs["tavg"][:, 0],
        noise=z,
        noise_sd=0.002,
        data_shape=(30, 4),
        truth={"model.eta": -4.5, "coupling.a": 0.5},
    )
    return p, simulate_data(jax.random.key(1), p)


def min_ess(res):
    ess = az.ess(res.to_arviz())
    return float(min(float(np.min(ess[v].values)) for v in ess.data_vars))


def time_to_loss(losses, wall, target):
    hit = np.nonzero(np.asarray(losses) <= target)[0]
    return float("nan") if hit.size == 0 else wall * (hit[0] + 1) / len(losses)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--output", default="benchmarks/results/inference_backends.json")
    args = ap.parse_args()
    nw, ns = (200, 200) if args.quick else (500, 1000)
    rows = []
    for name, build in [("linear", linear_problem), ("mpr", mpr_problem)]:
        problem, data = build()
        for method in ("nuts", "blackjax_nuts"):
            res = fit(
                problem,
                data,
                method=method,
                key=jax.random.key(2),
                num_warmup=nw,
                num_samples=ns,
                num_chains=2,
            )
            run_s = res.wall_time_s - res.compile_time_s
            e = min_ess(res)
            rows.append(
                {
                    "problem": name,
                    "method": method,
                    "wall_s": res.wall_time_s,
                    "compile_s": res.compile_time_s,
                    "min_ess": e,
                    "ess_per_s": e / res.wall_time_s,
                    "ess_per_s_excl_compile": e / run_s,
                    "divergences": int(res.divergences.sum()),
                }
            )
            print(rows[-1], flush=True)
        m = fit(
            problem,
            data,
            method="map",
            key=jax.random.key(3),
            optimizer="lbfgs",
            num_steps=100,
            num_restarts=2,
        )
        target = min(m.info["restart_losses"]) + 1.0
        for method, kw in [
            ("map", dict(optimizer="adam", num_steps=3000, learning_rate=0.02, num_restarts=4)),
            ("map", dict(optimizer="lbfgs", num_steps=100, num_restarts=4)),
            ("svi", dict(guide="full_rank", num_steps=3000, learning_rate=0.02)),
        ]:
            t0 = time.perf_counter()
            r = fit(problem, data, method=method, key=jax.random.key(4), **kw)
            wall = time.perf_counter() - t0
            run_s = wall - r.compile_time_s
            # MAP: within 1 nat of the best L-BFGS optimum; SVI: within 1 nat of its own
            # converged (median of the last 100 steps) negative ELBO
            tgt = target if method == "map" else float(np.median(r.loss[-100:])) + 1.0
            rows.append(
                {
                    "problem": name,
                    "method": f"{method} ({kw.get('optimizer', kw.get('guide'))})",
                    "wall_s": wall,
                    "compile_s": r.compile_time_s,
                    "target_loss": tgt,
                    "time_to_target_s": time_to_loss(r.loss, run_s, tgt),
                    "final_loss": float(r.loss[-1]),
                }
            )
            print(rows[-1], flush=True)
    meta = {
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "jax": jax.__version__,
        "command": "uv run python benchmarks/inference_backends.py"
        + (" --quick" if args.quick else ""),
    }
    print(
        "\n| problem | method | min ESS | wall s (compile s) | ESS/s | ESS/s excl. compile | divergences |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        if "min_ess" in r:
            print(
                f"| {r['problem']} | {r['method']} | {r['min_ess']:.0f} | {r['wall_s']:.1f} ({r['compile_s']:.1f}) | {r['ess_per_s']:.0f} | {r['ess_per_s_excl_compile']:.0f} | {r['divergences']} |"
            )
    print(
        "\n| problem | method | target loss | time to target s (excl. compile) | wall s (compile s) | final loss |"
    )
    print("|---|---|---|---|---|---|")
    for r in rows:
        if "target_loss" in r:
            print(
                f"| {r['problem']} | {r['method']} | {r['target_loss']:.2f} | {r['time_to_target_s']:.3f} | {r['wall_s']:.1f} ({r['compile_s']:.1f}) | {r['final_loss']:.2f} |"
            )
    print(f"\n{meta}")
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
