"""Workflow ``network``: a delayed, noisy Montbrio-Pazo-Roxin network on the default connectome.

A simulation only (no inference): it shows the simulation core at work and reports its speed.
The network sits in the bistable regime of MPR (``eta = -4.6``) with linear coupling through
the Hagmann 84-region connectome, conduction delays at 6 mm/ms and noise on the membrane
potential, so that regions switch between the low- and high-activity states.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from vbinfer.workflows._report import WorkflowReport

__all__ = ["run"]


def run(
    out_dir: str | Path | None = None,
    *,
    seed: int = 0,
    quick: bool = False,
    progress: bool = True,
    duration: float = 2000.0,
    dt: float = 0.05,
    speed: float = 6.0,
    coupling: float = 1.0,
    eta: float = -4.6,
    sigma: float = 0.3,
) -> WorkflowReport:
    """Simulate the delayed MPR network, summarise it and plot it.

    Parameters
    ----------
    out_dir : str or Path, optional
        Folder for ``simulation.npz``, ``timeseries.png`` and ``fc.png`` (nothing is written
        when ``None``).
    seed : int
        PRNG seed of the noise.
    quick : bool
        Simulate 400 ms instead of ``duration``.
    progress : bool
        Print what is being done.
    duration, dt : float
        Simulated time and step, ms.
    speed : float
        Conduction speed, mm/ms.
    coupling, eta, sigma : float
        Global coupling ``a``, MPR excitability, noise amplitude on ``V`` (per sqrt(ms)).

    Returns
    -------
    WorkflowReport
        Sizes, compile and run time, throughput and activity per region.

    Examples
    --------
    >>> from vbinfer.workflows import network
    >>> rep = network.run(quick=True, progress=False)  # doctest: +SKIP
    """
    import jax
    import jax.numpy as jnp

    from vbinfer import datasets, observe, simulate
    from vbinfer import network as vnet
    from vbinfer import noise as vnoise
    from vbinfer.coupling import LinearParams
    from vbinfer.models import MPRParams, mpr

    if quick:
        duration = min(duration, 400.0)
    conn = datasets.load_hagmann84().normalized("max")
    num_steps = round(duration / dt)
    sample_every = max(1, round(1.0 / dt))  # 1 ms samples
    num_steps -= num_steps % sample_every
    max_lag = vnet.max_lag_steps(conn.lengths, speed, dt)
    net = vnet.make_network(conn.weights, conn.lengths, speed=speed)
    sim = simulate.make_simulator(
        mpr,
        dt=dt,
        num_steps=num_steps,
        max_lag=max_lag,
        noise=vnoise.AdditiveNoise(sigma, states=(1,)),
        sample_every=sample_every,
    )
    params = simulate.SimParams(MPRParams(eta=eta), LinearParams(a=coupling))
    key = jax.random.key(seed)
    fn = jax.jit(lambda k, p: sim.run(k, p, net))
    if progress:
        print(f"compiling a {conn.n_regions}-region delayed MPR network ({num_steps} steps) ...")
    t0 = time.perf_counter()
    compiled = fn.lower(key, params).compile()
    t_compile = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = jax.block_until_ready(compiled(key, params))
    t_run = time.perf_counter() - t0
    tavg = np.asarray(res.outputs["tavg"])  # (samples, 2, nodes)
    bad = bool(simulate.diverged(res))
    skip = min(len(tavg) // 4, 200)
    r = tavg[skip:, 0]
    fc = np.asarray(observe.functional_connectivity(jnp.asarray(r)))
    iu = np.triu_indices(conn.n_regions, 1)
    sc_fc = float(np.corrcoef(conn.weights[iu], fc[iu])[0, 1])
    high = r.mean(0) > 0.5  # regions mostly in the high-activity state
    metrics = {
        "model": "Montbrio-Pazo-Roxin",
        "connectome": conn.name,
        "regions": conn.n_regions,
        "dt_ms": dt,
        "duration_ms": num_steps * dt,
        "steps": num_steps,
        "speed_mm_per_ms": speed,
        "max_lag_steps": max_lag,
        "coupling_a": coupling,
        "eta": eta,
        "noise_sigma_V": sigma,
        "seed": seed,
        "compile_s": round(t_compile, 3),
        "run_s": round(t_run, 3),
        "node_steps_per_s": round(conn.n_regions * num_steps / t_run),
        "diverged": bad,
        "mean_rate_kHz": float(r.mean()),
        "regions_high_state": int(high.sum()),
        "fc_mean": float(fc[iu].mean()),
        "sc_fc_correlation": sc_fc,
        "device": str(jax.devices()[0]),
    }
    rows = [
        {
            "region": conn.labels[i],
            "mean_r": float(r[:, i].mean()),
            "sd_r": float(r[:, i].std()),
            "mean_V": float(tavg[skip:, 1, i].mean()),
        }
        for i in np.argsort(-r.mean(0))[:8]
    ]
    report = WorkflowReport("network", rows=rows, metrics=metrics, passed=not bad)
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        path = out / "simulation.npz"
        np.savez_compressed(path, tavg=tavg, dt_sample_ms=sample_every * dt)
        report.files += [path, *_plots(out, conn, tavg, fc, sample_every * dt)]
    return report


def _plots(out: Path, conn, tavg: np.ndarray, fc: np.ndarray, dt_sample: float) -> list[Path]:
    import matplotlib.pyplot as plt

    t = np.arange(1, len(tavg) + 1) * dt_sample
    fig, axes = plt.subplots(2, 1, figsize=(9, 5), sharex=True)
    for k, label in enumerate(["r (kHz)", "V"]):
        axes[k].plot(t, tavg[:, k, :8], lw=0.7)
        axes[k].set_ylabel(label)
    axes[0].set_title(f"Delayed MPR network, 8 of {conn.n_regions} regions")
    axes[1].set_xlabel("time (ms)")
    fig.tight_layout()
    ts = out / "timeseries.png"
    fig.savefig(ts, dpi=110)
    plt.close(fig)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.4))
    im = axes[0].imshow(np.log1p(conn.weights * 1e3), cmap="viridis")
    axes[0].set_title("structural weights (log)")
    fig.colorbar(im, ax=axes[0], shrink=0.8)
    im = axes[1].imshow(fc, cmap="RdBu_r", vmin=-1, vmax=1)
    axes[1].set_title("simulated FC of r")
    fig.colorbar(im, ax=axes[1], shrink=0.8)
    fig.tight_layout()
    fcp = out / "fc.png"
    fig.savefig(fcp, dpi=110)
    plt.close(fig)
    return [ts, fcp]
