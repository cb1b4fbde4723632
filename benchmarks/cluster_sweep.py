#!/usr/bin/env python
"""Sweeps and SBC in-process vs on a local Dask cluster of 2 worker processes.

Measured, each with the machine block and the command:

1. **Sweep throughput** (simulations per second) of a 10,000-point MPR sweep (eta x coupling,
   100 x 100) on a 16-region delayed, noisy network, through :func:`vbinfer.cluster.sweep`:
   in-process, and on ``local_cluster(2)`` (2 single-threaded worker processes pinned to one
   core each, ``XLA_FLAGS=--xla_cpu_multi_thread_eigen=false``). "warm" rates exclude
   compilation (one chunk of the same shape runs first), "cold" rates include it; the two
   results are checked to be bit-for-bit equal. Beside wall-clock rates, the CPU seconds of
   the driver and worker processes (``time.process_time``) give simulations per CPU second and
   the average number of busy cores: on a machine shared with other work, these show what the
   wall-clock rates cannot.
2. **Per-task overhead**: a Dask no-op task (submit + gather of 400 tasks), and a sweep of a
   trivial function with ``chunk_size=1`` (one task per point: the machinery's cost per chunk,
   in-process and on the cluster), and the time to write one chunk file to a store.
3. **SBC** of a 3-parameter linear-Gaussian problem (known posterior; blackjax NUTS, 200
   replicates, 100 draws each after thinning) on the cluster, with its rank histogram
   (``benchmarks/results/cluster_sweep_sbc_ranks.png``) and chi-square p-values.

Results: ``benchmarks/results/cluster_sweep.json``. ``--quick`` runs 2,000 sweep points,
100 SBC replicates and fewer tiny tasks. Run::

    uv run python benchmarks/cluster_sweep.py [--quick]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
N_REGIONS = 16
DT = 0.1  # ms
NUM_STEPS = 1000  # 100 ms
SPEED = 6.0  # mm/ms


def make_mpr_fn():
    """``fn(key, {"eta", "a"}) -> mean and sd of r per region``: 16 Hagmann regions, delays,
    additive noise on V, stochastic Heun, 1 ms temporal averages."""
    import vbinfer as vb

    conn = vb.datasets.load_hagmann84().normalized("max")
    w, lengths = conn.weights[:N_REGIONS, :N_REGIONS], conn.lengths[:N_REGIONS, :N_REGIONS]
    net = vb.make_network(w, lengths, speed=SPEED)
    sim = vb.make_simulator(
        vb.models.mpr,
        dt=DT,
        num_steps=NUM_STEPS,
        max_lag=vb.max_lag_steps(lengths, SPEED, DT),
        noise=vb.AdditiveNoise(0.2, states=(1,)),
        sample_every=10,
    )

    def fn(key, p):
        params = vb.SimParams(vb.models.MPRParams(eta=p["eta"]), vb.coupling.LinearParams(a=p["a"]))
        r = sim.run(key, params, net).outputs["tavg"][20:, 0]
        return {"mean_r": r.mean(0), "sd_r": r.std(0)}

    return fn


def linear_gaussian():
    import numpyro.distributions as dist

    from vbinfer.inference import make_problem

    a = np.random.default_rng(0).normal(size=(20, 3))
    return make_problem(
        {"theta": dist.Normal(jnp.array([0.0, 1.0, -1.0]), jnp.array([1.0, 2.0, 0.5])).to_event(1)},
        lambda th: jnp.asarray(a) @ th["theta"],
        noise_sd=0.5,
        data_shape=(20,),
    )


def _noop(x):
    return x


def _cpu_seconds(client) -> float:
    """CPU seconds used so far by this process and, with a client, by every worker process:
    a measure of work that the load of other processes on the machine barely changes."""
    total = time.process_time()
    if client is not None:
        total += sum(client.run(time.process_time).values())
    return total


def machine_info() -> dict[str, Any]:
    import dask
    import distributed
    import jaxlib

    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "processor": platform.processor(),
        "machine": platform.machine(),
        "platform": platform.platform(),
        "nproc": os.cpu_count(),
        "affinity": cpus,
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "dask": dask.__version__,
        "distributed": distributed.__version__,
        "xla_flags_driver": os.environ.get("XLA_FLAGS", ""),
        "load_average_start": list(os.getloadavg()),
    }


def sweep_throughput(client, n_side: int, chunk_size: int) -> dict[str, Any]:
    from vbinfer.cluster import sweep

    fn = make_mpr_fn()
    grid = {"eta": np.linspace(-5.5, -4.0, n_side), "a": np.linspace(0.0, 1.5, n_side)}
    warm_grid = {"eta": grid["eta"][:1], "a": grid["a"][:chunk_size]}  # one chunk, same shape
    key = jax.random.key(0)
    n = n_side * n_side
    out: dict[str, Any] = {"points": n, "chunk_size": chunk_size, "num_chunks": -(-n // chunk_size)}
    results = {}
    for where, cl in (("in_process", None), ("cluster_2_workers", client)):
        t0 = time.perf_counter()
        sweep(fn, warm_grid, key=key, chunk_size=chunk_size, client=cl, progress=False)
        if cl is not None:  # make sure both workers have compiled: one chunk each
            sweep(fn, {"eta": grid["eta"][:2], "a": grid["a"][:chunk_size]}, key=key,
                  chunk_size=chunk_size, client=cl, progress=False)  # fmt: skip
        t_warm = time.perf_counter() - t0
        cpu0 = _cpu_seconds(cl)
        t0 = time.perf_counter()
        res = sweep(fn, grid, key=key, chunk_size=chunk_size, client=cl, progress=True,
                    name=f"sweep {where}")  # fmt: skip
        t = time.perf_counter() - t0
        cpu = _cpu_seconds(cl) - cpu0
        results[where] = res
        out[where] = {
            "wall_s": round(t, 3),
            "sims_per_s_warm": round(n / t, 2),
            "compile_and_first_chunk_s": round(t_warm, 3),
            "sims_per_s_cold": round(n / (t + t_warm), 2),
            "node_steps_per_s_warm": round(n * N_REGIONS * NUM_STEPS / t),
            "cpu_s": round(cpu, 3),
            "sims_per_cpu_s": round(n / cpu, 2),
            "cores_busy": round(cpu / t, 3),
        }
        print(f"  {where}: {out[where]}", flush=True)
    a, b = results["in_process"].outputs, results["cluster_2_workers"].outputs
    out["bit_for_bit_equal"] = all(np.array_equal(a[k], b[k]) for k in a)
    out["cluster_speedup_warm"] = round(
        out["cluster_2_workers"]["sims_per_s_warm"] / out["in_process"]["sims_per_s_warm"], 3
    )
    return out


def overhead(client, num_tasks: int) -> dict[str, Any]:
    from vbinfer.cluster import sweep
    from vbinfer.cluster._store import SweepStore

    out: dict[str, Any] = {}
    client.gather(client.map(_noop, range(20), pure=False))  # warm the connections
    t0 = time.perf_counter()
    futs = client.map(_noop, range(num_tasks), pure=False)
    client.gather(futs)
    out["dask_noop_task_ms"] = round(1e3 * (time.perf_counter() - t0) / num_tasks, 3)
    del futs

    def tiny(p):
        return {"y": p["x"] * 2.0}

    grid = {"x": np.arange(float(num_tasks))}
    for where, cl in (("in_process", None), ("cluster_2_workers", client)):
        sweep(tiny, {"x": np.arange(4.0)}, chunk_size=1, client=cl, progress=False)  # compile
        t0 = time.perf_counter()
        sweep(tiny, grid, chunk_size=1, client=cl, progress=False)
        out[f"sweep_chunk_ms_{where}"] = round(1e3 * (time.perf_counter() - t0) / num_tasks, 3)
    with tempfile.TemporaryDirectory() as d:
        st = SweepStore(d, {"bench": 1})
        mean = np.random.default_rng(0).random((64, N_REGIONS)).astype(np.float32)
        st.write(0, np.arange(64), {"eta": mean[:, 0]}, {"mean_r": mean})  # first: imports
        t0 = time.perf_counter()
        for c in range(1, 11):
            st.write(c, np.arange(64), {"eta": mean[:, 0]}, {"mean_r": mean, "sd_r": mean})
        out["store_write_chunk_ms"] = round(1e3 * (time.perf_counter() - t0) / 10, 3)
    print(f"  overhead: {out}", flush=True)
    return out


def sbc_run(client, num_replicates: int, png: Path) -> dict[str, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from vbinfer.cluster import sbc
    from vbinfer.inference.plots import plot_sbc_ranks

    kw = dict(num_warmup=200, num_samples=400, thin=4, chunk_size=25)
    t0 = time.perf_counter()
    res = sbc(jax.random.key(0), linear_gaussian(), num_replicates, "blackjax_nuts",
              client=client, progress=True, **kw)  # fmt: skip
    wall = time.perf_counter() - t0
    fig = plot_sbc_ranks(res)
    fig.suptitle(f"SBC, NUTS, linear-Gaussian, {num_replicates} replicates, L = {res.num_draws}")
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=100)
    plt.close(fig)
    r = res.ranks["theta"]
    counts = [np.histogram(r[:, k], bins=10, range=(0, res.num_draws + 1))[0].tolist()
              for k in range(r.shape[1])]  # fmt: skip
    out = {
        "method": "blackjax_nuts",
        "replicates": num_replicates,
        **kw,
        "num_draws": res.num_draws,
        "wall_s_incl_compile": round(wall, 3),
        "replicates_per_s": round(num_replicates / wall, 3),
        "p_values": np.round(res.p_values["theta"], 4).tolist(),
        "rank_counts_10_bins": counts,
        "histogram_png": str(png.relative_to(RESULTS.parent.parent)),
    }
    print(f"  sbc: {out}", flush=True)
    return out


def main(argv=None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="2,000 points, 100 SBC replicates")
    p.add_argument("--chunk-size", type=int, default=250, help="sweep points per chunk")
    p.add_argument("--output", type=Path, default=RESULTS / "cluster_sweep.json")
    p.add_argument("--skip-sbc", action="store_true")
    args = p.parse_args(argv)
    n_side = 45 if args.quick else 100
    num_tasks = 200 if args.quick else 400
    num_rep = 100 if args.quick else 200
    command = "uv run python " + shlex.join([os.path.relpath(__file__), *(argv or sys.argv[1:])])
    report: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": command,
        "quick": args.quick,
        "machine": machine_info(),
        "setup": {
            "network": f"MPR, first {N_REGIONS} Hagmann regions (max-normalised), delays at "
            f"{SPEED} mm/ms, noise 0.2 on V, stochastic Heun dt {DT} ms, {NUM_STEPS} steps",
            "cluster": "vbinfer.cluster.local_cluster(2): 2 worker processes x 1 thread, pinned "
            "to one core each, XLA_FLAGS=--xla_cpu_multi_thread_eigen=false",
        },
    }
    print("machine:", json.dumps(report["machine"]), flush=True)
    print("command:", command, flush=True)
    from distributed import Client

    from vbinfer.cluster import local_cluster

    t0 = time.perf_counter()
    cluster = local_cluster(2)
    client = Client(cluster)
    client.wait_for_workers(2)
    report["cluster_start_s"] = round(time.perf_counter() - t0, 3)
    report["worker_affinity"] = client.run(lambda: sorted(os.sched_getaffinity(0)))
    print(f"cluster started in {report['cluster_start_s']} s", flush=True)
    try:
        report["sweep"] = sweep_throughput(client, n_side, args.chunk_size)
        report["overhead"] = overhead(client, num_tasks)
        if not args.skip_sbc:
            png = RESULTS / "cluster_sweep_sbc_ranks.png"
            report["sbc"] = sbc_run(client, num_rep, png)
    finally:
        client.close()
        cluster.close()
    report["machine"]["load_average_end"] = list(os.getloadavg())
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=1))
    print(json.dumps({k: report[k] for k in ("sweep", "overhead", "sbc") if k in report}, indent=1))
    print(f"wrote {args.output}")
    return report


if __name__ == "__main__":
    main()
