#!/usr/bin/env python
"""Inference backends on the same posteriors: ESS per second of numpyro and blackjax NUTS, and
time to a given loss of MAP (optax Adam, L-BFGS) and full-rank SVI, in one process.

Problems:

- ``linear``: a 20-dimensional linear-Gaussian regression (200 observations, noise sd 1);
- ``mpr``: excitability ``eta`` and coupling ``a`` of a 4-node delayed Montbrio-Pazo-Roxin
  network (300 steps of 0.01 ms, stochastic Heun, noise pre-drawn and held fixed), observed
  through its firing rates (temporal averages, 30 samples x 4 nodes, noise sd 0.002).

Measured, per problem:

- NUTS (numpyro, blackjax): both with 2 chains, the same warm-up and draws, Stan's window
  adaptation (diagonal mass matrix), target acceptance 0.8, chains started within 0.5 of the
  prior mean in the unconstrained space (``init="mean"``: uniform starts in [-2, 2] put MPR's
  ``eta`` in another dynamical regime, where chains stall). ESS is arviz's bulk ESS, the minimum over all
  coordinates; "ESS/s" divides it by the whole wall time of ``fit`` (warm-up, sampling,
  compilation), "ESS/s excl. compile" by the wall time less the compile time the backend
  reports, and "ESS per 1k grads" by the number of gradient evaluations of the sampling phase
  (leapfrog steps, summed over chains; independent of the machine).
- MAP and SVI: MAP runs 4 restarts (one vmapped batch) within 0.5 of the prior mean; the
  reference optimum ``L*`` is the best final loss of any restart of either optimiser (negative
  log joint density, unconstrained coordinates). "Time to target" is the time until
  the best restart's loss first falls within ``--map-tol`` (default 0.1) of ``L*``, taken as
  ``loop time * steps to target / steps`` with the loop time the backend reports (the compiled
  optimisation loop alone: no set-up, compilation or posterior draws). For SVI the loss is the negative
  ELBO (a noisy estimate): the target is the SVI run's own final level (median of its last 10 %
  of steps) plus ``--svi-tol`` (default 1 nat), reached when a running mean over 50 steps gets
  there.

Run: ``uv run python benchmarks/inference_backends.py [--quick]`` (full: both problems, about
2-5 min on 2 cores; ``--quick``: the linear problem with fewer draws and steps, under a
minute). Prints Markdown tables and the machine block, and writes
``benchmarks/results/inference_backends.json``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import shlex
import sys
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist

import vbinfer as vb
from vbinfer.inference import fit, make_problem, simulate_data, simulator_problem

RESULTS = Path(__file__).resolve().parent / "results" / "inference_backends.json"


def linear_problem():
    """20 coefficients, standard normal priors, 200 observations with noise sd 1."""
    rng = np.random.default_rng(0)
    d, n = 20, 200
    a = jnp.asarray(rng.normal(size=(n, d)))
    truth = rng.normal(size=d)
    p = make_problem(
        {"theta": dist.Normal(jnp.zeros(d), 1.0).to_event(1)},
        lambda th: a @ th["theta"],
        noise_sd=1.0,
        truth={"theta": truth},
    )
    return p, simulate_data(jax.random.key(1), p)


def mpr_problem():
    """eta and coupling of a 4-node delayed MPR network from its firing rates."""
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
        truth={"model.eta": -4.5, "coupling.a": 0.5},
    )
    return p, simulate_data(jax.random.key(1), p)


PROBLEMS = {"linear": linear_problem, "mpr": mpr_problem}

# optimiser settings per problem: (Adam steps, Adam learning rate, L-BFGS steps, SVI steps)
SETTINGS = {
    "full": {"linear": (3000, 0.02, 100, 3000), "mpr": (1500, 0.05, 100, 1500)},
    "quick": {"linear": (1000, 0.05, 50, 1000), "mpr": (500, 0.05, 50, 500)},
}


def min_ess(res) -> float:
    ess = az.ess(res.to_arviz(), method="bulk")
    return float(min(float(np.min(ess[v].values)) for v in ess.data_vars))


def steps_to(losses: np.ndarray, target: float, window: int = 1) -> int | None:
    """1-based index of the first step whose (running-mean) loss is <= target."""
    x = np.asarray(losses, dtype=float)
    if window > 1:
        x = np.convolve(x, np.ones(window) / window, mode="valid")
    hit = np.nonzero(x <= target)[0]
    return None if hit.size == 0 else int(hit[0]) + window


def bench_nuts(problem, data, method: str, num_warmup: int, num_samples: int) -> dict[str, Any]:
    res = fit(
        problem,
        data,
        method=method,
        key=jax.random.key(2),
        num_warmup=num_warmup,
        num_samples=num_samples,
        num_chains=2,
        init="mean",
        init_radius=0.5,
    )
    e = min_ess(res)
    grads = int(np.asarray(res.info["sample_stats"]["num_steps"]).sum())
    run_s = res.wall_time_s - res.compile_time_s
    return {
        "method": method,
        "num_warmup": num_warmup,
        "num_samples": num_samples,
        "num_chains": 2,
        "wall_s": res.wall_time_s,
        "posterior_mean": {k: np.asarray(res.mean(k)).tolist() for k in problem.param_names},
        "posterior_sd": {k: np.asarray(res.sd(k)).tolist() for k in problem.param_names},
        "compile_s": res.compile_time_s,
        "min_ess_bulk": e,
        "ess_per_s": e / res.wall_time_s,
        "ess_per_s_excl_compile": e / run_s,
        "sampling_grad_evals": grads,
        "ess_per_1k_grads": 1000 * e / grads,
        "divergences": int(res.divergences.sum()),
        "step_size": res.info["step_size"],
    }


def bench_optim(problem, data, method: str, kw: dict[str, Any], target: float, window: int):
    t0 = time.perf_counter()
    r = fit(problem, data, method=method, key=jax.random.key(4), **kw)
    wall = time.perf_counter() - t0
    run_s = r.info["loop_time_s"]
    n = steps_to(r.loss, target, window)
    label = f"{method} ({kw.get('optimizer', kw.get('guide'))})"
    return {
        "method": label,
        "num_steps": len(r.loss),
        "wall_s": wall,
        "compile_s": r.compile_time_s,
        "loop_s": run_s,
        "target_loss": target,
        "steps_to_target": n,
        "time_to_target_s": None if n is None else run_s * n / len(r.loss),
        "final_loss": float(r.loss[-1]),
    }, r


def run_problem(name: str, mode: str, args) -> dict[str, Any]:
    problem, data = PROBLEMS[name]()
    nw, ns = (args.num_warmup, args.num_samples) if mode == "full" else (200, 400)
    out: dict[str, Any] = {"problem": name, "dim": None, "nuts": [], "optim": []}
    for method in ("nuts", "blackjax_nuts"):
        row = bench_nuts(problem, data, method, nw, ns)
        out["nuts"].append(row)
        print(f"  [{name}] {method}: {_fmt(row)}", flush=True)
    adam_steps, adam_lr, lbfgs_steps, svi_steps = SETTINGS[mode][name]
    common = {"num_restarts": 4, "init": "mean", "init_radius": 0.5}
    runs = []
    for kw in (
        dict(optimizer="adam", num_steps=adam_steps, learning_rate=adam_lr, **common),
        dict(optimizer="lbfgs", num_steps=lbfgs_steps, **common),
    ):
        row, r = bench_optim(problem, data, "map", kw, -math.inf, 1)
        runs.append((row, r))
    # the reference optimum L*: the best final loss of any restart of either optimiser
    best = float(min(min(r.info["restart_losses"]) for _, r in runs))
    out["dim"] = len(runs[0][1].info["unconstrained_map"])
    out["reference_loss"] = best
    for row, r in runs:
        n = steps_to(r.loss, best + args.map_tol)
        row.update(
            target_loss=best + args.map_tol,
            steps_to_target=n,
            time_to_target_s=None if n is None else row["loop_s"] * n / len(r.loss),
        )
        out["optim"].append(row)
        print(f"  [{name}] {row['method']}: {_fmt(row)}", flush=True)
    # SVI: first run to find its own final level, then time the same run against that target
    kw = dict(guide="full_rank", num_steps=svi_steps, learning_rate=adam_lr, init="mean")
    row, r = bench_optim(problem, data, "svi", kw, -math.inf, 50)
    tail = r.loss[-max(1, len(r.loss) // 10) :]
    target = float(np.median(tail)) + args.svi_tol
    n = steps_to(r.loss, target, 50)
    run_s = row["loop_s"]
    row.update(
        target_loss=target,
        steps_to_target=n,
        time_to_target_s=None if n is None else run_s * n / len(r.loss),
    )
    out["optim"].append(row)
    print(f"  [{name}] {row['method']}: {_fmt(row)}", flush=True)
    return out


def _fmt(row: dict[str, Any]) -> str:
    return ", ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
        for k, v in row.items()
        if not k.startswith("posterior")
    )


def machine_info() -> dict[str, Any]:
    import jaxlib

    return {
        "processor": platform.processor(),
        "machine": platform.machine(),
        "platform": platform.platform(),
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "numpyro": version("numpyro"),
        "blackjax": version("blackjax"),
        "optax": version("optax"),
        "arviz": version("arviz"),
        "devices": [str(d) for d in jax.devices()],
    }


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "| problem | backend | min bulk ESS | wall s (compile s) | ESS/s | ESS/s excl. compile "
        "| ESS per 1k grads | divergences |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for p in report["problems"]:
        for r in p["nuts"]:
            lines.append(
                f"| {p['problem']} | {r['method']} | {r['min_ess_bulk']:.0f} | "
                f"{r['wall_s']:.1f} ({r['compile_s']:.1f}) | {r['ess_per_s']:.1f} | "
                f"{r['ess_per_s_excl_compile']:.1f} | {r['ess_per_1k_grads']:.1f} | "
                f"{r['divergences']} |"
            )
    lines += [
        "",
        "| problem | method | steps | target loss | steps to target | time to target s "
        "| loop s | wall s (compile s) | final loss |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for p in report["problems"]:
        for r in p["optim"]:
            t = "not reached" if r["time_to_target_s"] is None else f"{r['time_to_target_s']:.3f}"
            lines.append(
                f"| {p['problem']} | {r['method']} | {r['num_steps']} | {r['target_loss']:.2f} | "
                f"{r['steps_to_target']} | {t} | {r['loop_s']:.3f} | "
                f"{r['wall_s']:.1f} ({r['compile_s']:.1f}) | "
                f"{r['final_loss']:.2f} |"
            )
    return "\n".join(lines)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="linear problem, fewer draws and steps")
    ap.add_argument("--problems", nargs="+", choices=sorted(PROBLEMS), default=None)
    ap.add_argument("--num-warmup", type=int, default=500)
    ap.add_argument("--num-samples", type=int, default=1000)
    ap.add_argument("--map-tol", type=float, default=0.1, help="nats above the L-BFGS optimum")
    ap.add_argument("--svi-tol", type=float, default=1.0, help="nats above SVI's final level")
    ap.add_argument("--output", type=Path, default=RESULTS)
    return ap.parse_args(argv)


def main(argv=None) -> dict[str, Any]:
    args = parse_args(argv)
    mode = "quick" if args.quick else "full"
    problems = args.problems or (["linear"] if args.quick else ["linear", "mpr"])
    command = " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv])
    load_start = os.getloadavg()
    t_start = time.perf_counter()
    print(f"command: {command}", flush=True)
    print(f"mode {mode}, problems {problems}, load average {load_start}", flush=True)
    report: dict[str, Any] = {"problems": []}
    for name in problems:
        report["problems"].append(run_problem(name, mode, args))
    report.update(
        mode=mode,
        settings={
            "num_warmup": args.num_warmup if mode == "full" else 200,
            "num_samples": args.num_samples if mode == "full" else 400,
            "optimizers": {k: SETTINGS[mode][k] for k in problems},
            "map_tol": args.map_tol,
            "svi_tol": args.svi_tol,
        },
        machine=machine_info(),
        load_average_start=list(load_start),
        load_average_end=list(os.getloadavg()),
        date=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        command=command,
        wall_s=time.perf_counter() - t_start,
    )
    print()
    print(markdown(report))
    print()
    print("machine:", json.dumps(report["machine"]))
    print(f"load average (1, 5, 15 min): start {load_start}, end {report['load_average_end']}")
    print(f"command: {command}")
    print(f"total wall time {report['wall_s']:.0f} s")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"results written to {args.output}")
    return report


if __name__ == "__main__":
    main()
