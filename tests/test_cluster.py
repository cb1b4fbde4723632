"""Sweeps and SBC in chunks, in-process and on a local Dask cluster of 2 worker processes.

The cluster (loopback only, no dashboard) is started once for the module. Functions sent to
workers are built inside factories so that cloudpickle ships them by value (workers then
import only jax and vbinfer, not this test module).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest

from vbinfer.cluster import (
    SweepFailedError,
    cache_info,
    grid_points,
    open_sweep,
    sbc,
    sweep,
    worker_env,
)
from vbinfer.cluster._store import SweepStore

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


# ----------------------------------------------------------------------------- test functions
def make_network_fn(control: str | None = None):
    """A noisy delayed MPR network of 6 nodes, 200 steps: ``fn(key, {"eta", "a"})``.

    With ``control`` (a folder), every batch first calls the host, which reads
    ``control/mode.json`` if present: ``{"sleep": s}`` makes each batch last ``s`` seconds,
    ``{"fail_eta": x}`` makes a batch holding that eta raise, ``{"log": folder}`` leaves one
    file per batch run there (counts attempts across processes). The function itself never
    changes, so each process compiles it once for the whole module.
    """
    import vbinfer as vb

    rng = np.random.default_rng(3)
    w = rng.uniform(0, 1, (6, 6)) * (1 - np.eye(6))
    lengths = rng.uniform(5, 40, (6, 6))
    lengths = (lengths + lengths.T) / 2
    net = vb.make_network(w / 6, lengths, speed=8.0)
    sim = vb.make_simulator(
        vb.models.mpr,
        dt=0.1,
        num_steps=200,
        max_lag=vb.max_lag_steps(lengths, 8.0, 0.1),
        noise=vb.AdditiveNoise(0.2, states=(1,)),
        sample_every=10,
    )

    def host(eta):
        path = Path(control, "mode.json")
        mode = json.loads(path.read_text()) if path.exists() else {}
        if mode.get("log"):
            Path(mode["log"], f"{os.getpid()}-{time.monotonic_ns()}").touch()
        time.sleep(mode.get("sleep", 0.0))
        bad = mode.get("fail_eta")
        if bad is not None and np.any(np.isclose(eta, bad)):
            raise ValueError(f"eta={bad} is not allowed")
        return eta

    def fn(key, p):
        eta = p["eta"]
        if control is not None:
            eta = jax.pure_callback(
                host, jax.ShapeDtypeStruct((), eta.dtype), eta, vmap_method="broadcast_all"
            )
        params = vb.SimParams(vb.models.MPRParams(eta=eta), vb.coupling.LinearParams(a=p["a"]))
        res = sim.run(key, params, net)
        r = res.outputs["tavg"][:, 0]
        return {"mean_r": r.mean(0), "last": res.final.x, "peak": r.max()}

    return fn


GRID = {"eta": np.linspace(-5.0, -4.0, 6), "a": np.array([0.2, 0.6, 1.0])}  # 18 points


def _reference(fn, grid, key):
    """Every point unbatched, one by one: the definition of the sweep's result."""
    pts = grid_points(grid)
    one = jax.jit(fn)
    outs = [
        one(jax.random.fold_in(key, i), {k: v[i] for k, v in pts.items()})
        for i in range(len(pts["eta"]))
    ]
    return jax.tree_util.tree_map(lambda *x: np.stack(x), *outs)


def _assert_same(a, b):
    jax.tree_util.tree_map(np.testing.assert_array_equal, a, b)


def _chunk_files(store):
    return sorted(p.name for p in (Path(store) / "chunks").iterdir())


@pytest.fixture(scope="module")
def client():
    from distributed import Client

    from vbinfer.cluster import local_cluster

    cluster = local_cluster(2, host="127.0.0.1", dashboard_address=None)
    c = Client(cluster)
    yield c
    c.close()
    cluster.close()


@pytest.fixture(scope="module")
def control(tmp_path_factory):
    """Folder whose ``mode.json`` steers the test function's host callback."""
    return tmp_path_factory.mktemp("control")


@pytest.fixture
def mode(control):
    """``mode(**settings)`` writes ``mode.json`` for one test; cleared afterwards."""
    path = control / "mode.json"

    def set_mode(**kw):
        path.write_text(json.dumps(kw))

    yield set_mode
    path.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def in_process(control):
    """The function and its reference in-process sweep (chunks of 4: 5 chunks, last padded)."""
    fn = make_network_fn(str(control))
    return fn, sweep(fn, GRID, key=jax.random.key(7), chunk_size=4, progress=False)


# ----------------------------------------------------------------------------- in-process
def test_grid_points_are_the_cartesian_product_in_c_order():
    import itertools

    p = grid_points({"b": [1.0, 2.0, 3.0], "a": [10, 20]})
    expected = list(itertools.product([1.0, 2.0, 3.0], [10, 20]))
    assert list(zip(p["b"].tolist(), p["a"].tolist(), strict=True)) == expected
    assert p["b"].dtype == jax.dtypes.canonicalize_dtype(np.float64)
    with pytest.raises(ValueError, match=r"grid\['x'\] must be a non-empty 1-D"):
        grid_points({"x": np.zeros((2, 2))})


def test_in_process_sweep_equals_the_point_by_point_reference(in_process):
    fn, res = in_process
    ref = _reference(fn, GRID, jax.random.key(7))
    assert res.outputs["mean_r"].shape == (18, 6)
    assert res.computed == (0, 1, 2, 3, 4) and res.loaded == ()
    # a batched compiled program may reorder float sums: agree to float32 rounding
    jax.tree_util.tree_map(
        lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6), res.outputs, ref
    )
    again = sweep(fn, GRID, key=jax.random.key(7), chunk_size=4, progress=False)
    _assert_same(res.outputs, again.outputs)  # and reruns reuse the compiled batch
    assert cache_info()["executables"] and all(n == 1 for n in cache_info()["executables"].values())
    ds = res.to_xarray(unstack=True)
    assert ds["mean_r"].dims == ("eta", "a", "mean_r_dim1")
    np.testing.assert_array_equal(ds["mean_r"].values[1, 2], res.outputs["mean_r"][1 * 3 + 2])


def test_random_numbers_depend_on_the_point_index_only():
    def draw(key, p):
        return {"z": jax.random.normal(key, (3,)) + 0 * p["x"]}

    grid = {"x": np.arange(11.0)}
    runs = [
        sweep(draw, grid, key=jax.random.key(5), chunk_size=c, progress=False).outputs["z"]
        for c in (1, 4, 11)
    ]
    expected = np.stack([jax.random.normal(jax.random.fold_in(jax.random.key(5), i), (3,))
                         for i in range(11)])  # fmt: skip
    for z in runs:
        np.testing.assert_array_equal(z, expected)


def test_bad_arguments_raise_before_anything_runs(tmp_path):
    def fn(p):
        return {"y": p["x"] * 2}

    grid = {"x": [1.0, 2.0]}
    with pytest.raises(ValueError, match="chunk_size must be an integer >= 1, got 0"):
        sweep(fn, grid, chunk_size=0)
    with pytest.raises(ValueError, match=r"exactly one of grid= .* or points="):
        sweep(fn, grid, points={"x": np.ones(2)})
    with pytest.raises(ValueError, match=r"leading .* axis"):
        sweep(fn, points={"x": np.ones(2), "z": np.ones(3)})
    with pytest.raises(ValueError, match=r"could not be traced as fn\(key, point\)"):
        sweep(fn, grid, key=jax.random.key(0))
    with pytest.raises(ValueError, match="key must be a PRNG key"):
        sweep(fn, grid, key=3)
    with pytest.raises(ValueError, match="collide with parameter names"):
        sweep(lambda p: {"x": p["x"]}, grid)
    sweep(fn, grid, chunk_size=1, store=tmp_path / "s", progress=False)
    with pytest.raises(
        ValueError, match=r"holds a run with other settings \(differing: \['chunk_size'"
    ):
        sweep(fn, grid, chunk_size=2, store=tmp_path / "s", progress=False)


def test_progress_shows_chunks_rate_and_time_left(capsys):
    sweep(lambda p: {"y": p["x"] + 1}, {"x": np.arange(10.0)}, chunk_size=3, progress=True)
    err = capsys.readouterr().err
    assert "4/4" in err and "points/s" in err and "chunk" in err
    assert "<00:00" in err  # tqdm's elapsed<remaining


def test_explicit_points_pytree_and_store_round_trip(tmp_path):
    pts = {"w": np.arange(12.0).reshape(4, 3), "s": np.array([1.0, 2.0, 3.0, 4.0])}
    res = sweep(
        lambda p: {"y": p["w"] * p["s"], "n": jnp.sum(p["w"] > 4)},
        points=pts,
        chunk_size=3,
        store=tmp_path / "pts",
        progress=False,
    )
    np.testing.assert_array_equal(res.outputs["y"], pts["w"] * pts["s"][:, None])
    ds = open_sweep(tmp_path / "pts")
    np.testing.assert_array_equal(ds["y"].values, res.outputs["y"])
    np.testing.assert_array_equal(ds["w"].values, pts["w"])
    assert ds["n"].dtype == res.outputs["n"].dtype


# ----------------------------------------------------------------------------- on the cluster
def test_distributed_equals_in_process_bit_for_bit_and_compiles_once(client, in_process):
    fn, ref = in_process
    res = sweep(fn, GRID, key=jax.random.key(7), chunk_size=4, client=client, progress=False)
    _assert_same(res.outputs, ref.outputs)
    info = client.run(cache_info)
    assert len(info) == 2
    ran = [i for i in info.values() if i["builds"]]
    assert ran, info
    for i in ran:  # one build of the function and one executable per worker, for 5 chunks
        assert all(n == 1 for n in i["builds"].values()), i
        assert all(n == 1 for n in i["executables"].values()), i


def test_worker_processes_are_pinned_with_single_threaded_xla(client):
    env = client.run(lambda: {k: os.environ.get(k) for k in worker_env()})
    assert all(e == worker_env() for e in env.values()), env
    if hasattr(os, "sched_getaffinity") and len(os.sched_getaffinity(0)) >= 2:
        cpus = client.run(lambda: sorted(os.sched_getaffinity(0)))
        assert all(len(c) == 1 for c in cpus.values()), cpus
        assert len({c[0] for c in cpus.values()}) == 2, cpus  # two workers, two cores


def test_killing_a_worker_mid_run_still_completes(client, in_process, tmp_path, mode):
    fn, ref = in_process
    mode(sleep=0.4)
    store = tmp_path / "kill"
    box = {}

    def run():
        try:
            box["res"] = sweep(
                fn, GRID, key=jax.random.key(7), chunk_size=4, client=client, store=store,
                progress=False,
            )  # fmt: skip
        except BaseException as e:  # pragma: no cover - reported below
            box["err"] = e

    pids = client.run(os.getpid)
    t = threading.Thread(target=run)
    t.start()
    deadline = time.monotonic() + 120
    while not (store / "chunks").exists() or not any(
        p.suffix == ".nc" for p in (store / "chunks").iterdir()
    ):
        assert time.monotonic() < deadline and t.is_alive(), box
        time.sleep(0.05)
    victim = next(iter(pids.values()))
    os.kill(victim, signal.SIGKILL)  # a worker dies with chunks still to run
    t.join(timeout=240)
    assert not t.is_alive() and "err" not in box, box
    res = box["res"]
    assert res.computed == (0, 1, 2, 3, 4)
    _assert_same(res.outputs, ref.outputs)
    assert _chunk_files(store) == [f"chunk_{c:06d}.nc" for c in range(5)]
    client.wait_for_workers(2, timeout=120)  # the nanny restarts the killed worker
    assert victim not in client.run(os.getpid).values()


def test_interrupted_run_resumes_with_every_chunk_present_once(
    client, in_process, tmp_path, monkeypatch
):
    fn, ref = in_process
    store = tmp_path / "resume"
    real_write = SweepStore.write

    def interrupted_write(self, chunk, *a):
        if chunk == 3:
            # a crash mid-write leaves a temporary file, never a chunk file
            (self.chunks / f".chunk_{chunk:06d}.deadbeef.tmp").write_bytes(b"partial")
            raise KeyboardInterrupt("simulated interruption")
        return real_write(self, chunk, *a)

    monkeypatch.setattr(SweepStore, "write", interrupted_write)
    with pytest.raises(KeyboardInterrupt):
        sweep(fn, GRID, key=jax.random.key(7), chunk_size=4, store=store, progress=False)
    monkeypatch.setattr(SweepStore, "write", real_write)
    files = _chunk_files(store)
    # chunks 0-2 were written; chunk 4 may have been (writes overlap the next chunk); not 3
    assert files[0] == ".chunk_000003.deadbeef.tmp" and "chunk_000003.nc" not in files
    before = tuple(int(f[6:12]) for f in files[1:])
    assert before[:3] == (0, 1, 2) and set(before) <= {0, 1, 2, 4}
    # restart, this time on the cluster: only the missing chunks run
    res = sweep(fn, GRID, key=jax.random.key(7), chunk_size=4, store=store, client=client,
                progress=False)  # fmt: skip
    assert res.loaded == before and res.computed == tuple(sorted({0, 1, 2, 3, 4} - set(before)))
    assert _chunk_files(store) == [f"chunk_{c:06d}.nc" for c in range(5)]
    _assert_same(res.outputs, ref.outputs)
    ds = open_sweep(store)
    np.testing.assert_array_equal(ds["point"].values, np.arange(18))  # each point exactly once
    np.testing.assert_array_equal(ds["mean_r"].values, ref.outputs["mean_r"])
    again = sweep(fn, GRID, key=jax.random.key(7), chunk_size=4, store=store, progress=False)
    assert again.computed == () and again.loaded == (0, 1, 2, 3, 4)


@pytest.mark.parametrize("where", ["in_process", "cluster"])
def test_a_chunk_that_always_fails_is_reported_with_its_parameters(
    where, request, tmp_path, in_process, mode
):
    fn, _ = in_process
    bad_eta = float(grid_points(GRID)["eta"][9])  # point 9 lies in chunk 2 (points 8..11)
    log = tmp_path / "attempts"
    log.mkdir()
    mode(fail_eta=bad_eta, log=str(log))
    store = tmp_path / "fail"
    cl = request.getfixturevalue("client") if where == "cluster" else None
    with pytest.raises(SweepFailedError) as err:
        sweep(fn, GRID, key=jax.random.key(7), chunk_size=4, store=store, client=cl, retries=1,
              progress=False)  # fmt: skip
    failures = err.value.failures
    assert [f.chunk for f in failures] == [2]
    f = failures[0]
    np.testing.assert_array_equal(f.index, [8, 9, 10, 11])
    np.testing.assert_array_equal(f.params["eta"], grid_points(GRID)["eta"][8:12])
    assert "is not allowed" in f.error and f.attempts == 2
    assert "chunk 2 (points 8..11" in str(err.value) and "eta=" in str(err.value)
    # 4 good chunks once, the bad one 1 + retries times (one host call per batch)
    assert len(list(log.iterdir())) == 4 + 2
    assert _chunk_files(store) == [f"chunk_{c:06d}.nc" for c in (0, 1, 3, 4)]
    record = json.loads((store / "failures.json").read_text())
    assert record[0]["chunk"] == 2 and record[0]["points"] == [8, 9, 10, 11]
    assert np.isclose(record[0]["params"]["eta"][1], bad_eta)


# ----------------------------------------------------------------------------- SBC
def _linear_gaussian():
    from vbinfer.inference import make_problem

    a = np.random.default_rng(0).normal(size=(20, 3))
    return make_problem(
        {"theta": dist.Normal(jnp.array([0.0, 1.0, -1.0]), jnp.array([1.0, 2.0, 0.5])).to_event(1)},
        lambda th: jnp.asarray(a) @ th["theta"],
        noise_sd=0.5,
        data_shape=(20,),
    )


SBC_KW = dict(num_samples=200, thin=2, laplace_steps=50, chunk_size=40, progress=False)


def test_sbc_in_chunks_is_calibrated_and_resumes(tmp_path, monkeypatch):
    store = tmp_path / "sbc"
    real_write = SweepStore.write

    def interrupted_write(self, chunk, *a):
        if chunk == 2:
            raise KeyboardInterrupt("simulated interruption")
        return real_write(self, chunk, *a)

    monkeypatch.setattr(SweepStore, "write", interrupted_write)
    with pytest.raises(KeyboardInterrupt):
        sbc(jax.random.key(3), _linear_gaussian(), 120, "laplace", store=store, **SBC_KW)
    monkeypatch.setattr(SweepStore, "write", real_write)
    assert _chunk_files(store) == ["chunk_000000.nc", "chunk_000001.nc"]  # chunk 2 is the last
    res = sbc(jax.random.key(3), _linear_gaussian(), 120, "laplace", store=store, **SBC_KW)
    assert _chunk_files(store) == [f"chunk_{c:06d}.nc" for c in range(3)]
    assert res.num_draws == 100 and res.ranks["theta"].shape == (120, 3)
    assert res.ranks["theta"].min() >= 0 and res.ranks["theta"].max() <= 100
    # the Laplace approximation is exact for this linear-Gaussian problem: ranks are uniform
    assert np.all(res.p_values["theta"] > 1e-3), res.p_values
    # replicate r depends on (key, r) only: the first 40 of a 40-replicate run are the same
    part = sbc(jax.random.key(3), _linear_gaussian(), 40, "laplace", **SBC_KW)
    _assert_same(part.ranks["theta"], res.ranks["theta"][:40])
    _assert_same(part.truth["theta"], res.truth["theta"][:40])
    with pytest.raises(ValueError, match="other settings"):
        sbc(jax.random.key(3), _linear_gaussian(), 120, "laplace", store=store,
            **{**SBC_KW, "thin": 4})  # fmt: skip


@pytest.mark.slow
def test_sbc_on_the_cluster_equals_in_process(client):
    ref = sbc(jax.random.key(4), _linear_gaussian(), 80, "laplace", **SBC_KW)
    res = sbc(jax.random.key(4), _linear_gaussian(), 80, "laplace", client=client, **SBC_KW)
    for name in ("ranks", "truth"):
        _assert_same(getattr(res, name), getattr(ref, name))


# ----------------------------------------------------------------------------- CLI
def _cli(argv):
    from vbinfer.cluster.cli import add_parsers

    parser = argparse.ArgumentParser(prog="vbinfer")
    add_parsers(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


TINY_SWEEP = """
[simulation]
model = "mpr"
connectome = "hagmann84"
regions = 6
dt = 0.1
duration = 20.0
sample_every = 10
speed = 6.0
noise = 0.1
noise_states = [1]

[grid]
"model.eta" = {{ start = -5.0, stop = -4.0, num = 5 }}
"coupling.a" = [0.2, 0.8]

[output]
summaries = ["mean", "fc", "diverged"]
skip = 5.0

[run]
seed = 1
chunk_size = 4
store = "{store}"
"""


def test_cli_sweep_runs_and_resumes(tmp_path, capsys):
    store = tmp_path / "cli-sweep"
    cfg = tmp_path / "sweep.toml"
    cfg.write_text(TINY_SWEEP.format(store=store.as_posix()))
    assert _cli(["sweep", str(cfg), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "10 points in chunks of 4, in-process" in out and "chunks_computed  3" in out
    import xarray as xr

    ds = xr.load_dataset(store / "sweep.nc")
    assert ds["mean"].shape == (10, 2, 6) and ds["fc"].shape == (10, 6, 6)
    assert not ds["diverged"].values.any()
    np.testing.assert_allclose(np.diagonal(ds["fc"].values, axis1=1, axis2=2), 1.0, rtol=1e-5)
    assert _cli(["sweep", str(cfg), "--no-progress"]) == 0  # everything loaded, nothing run
    assert "chunks_loaded    3" in capsys.readouterr().out
    bad = tmp_path / "bad.toml"
    bad.write_text(TINY_SWEEP.format(store="x").replace('"coupling.a"', '"coupling.zz"'))
    assert _cli(["sweep", str(bad)]) == 2
    assert "unknown parameter 'coupling.zz'" in capsys.readouterr().err


def test_cli_sbc_with_a_problem_factory(tmp_path, capsys):
    store = tmp_path / "cli-sbc"
    cfg = tmp_path / "sbc.toml"
    cfg.write_text(
        f"""
[problem]
target = "{__name__}:_linear_gaussian"

[inference]
method = "laplace"
num_replicates = 40
num_samples = 200
thin = 2
laplace_steps = 50

[run]
seed = 3
chunk_size = 40
store = "{store.as_posix()}"
"""
    )
    assert _cli(["sbc", str(cfg), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "40 replicates of laplace in chunks of 40, in-process" in out
    summary = json.loads((store / "summary.json").read_text())
    assert summary["num_draws"] == 100 and len(summary["p_values"]["theta"]) == 3
    assert (store / "ranks.png").stat().st_size > 0
    # the same replicates as the API with the same key (the first 40 of the SBC test's run)
    ds = open_sweep(store)
    ref = sbc(jax.random.key(3), _linear_gaussian(), 40, "laplace", **SBC_KW)
    np.testing.assert_array_equal(ds["ranks.theta"].values, ref.ranks["theta"])


def test_example_job_files_build():
    from vbinfer.cluster.config import load_config, sbc_job, sweep_job

    job = sweep_job(load_config(EXAMPLES / "sweep.toml"))
    assert set(job.grid) == {"model.eta", "coupling.a"} and job.seed == 0
    point = {k: v[0] for k, v in job.grid.items()}
    out = jax.eval_shape(job.fn, jax.random.key(0), point)
    assert out["mean"].shape == (2, 84)
    sjob = sbc_job(load_config(EXAMPLES / "sbc.toml"))
    assert set(sjob.problem.param_names) == {"model.I", "coupling.a"}
    assert sjob.method == "laplace"
    assert sjob.num_replicates == 200


@pytest.mark.slow
def test_cli_run_killed_mid_way_resumes(tmp_path):
    """A real interruption: the command, running on a local cluster, is SIGKILLed with its
    workers; run again (in-process this time) it computes only the missing chunks."""
    store = tmp_path / "killed"
    cfg = tmp_path / "sweep.toml"
    cfg.write_text(
        TINY_SWEEP.format(store=store.as_posix())
        .replace("num = 5", "num = 40")
        .replace("chunk_size = 4", "chunk_size = 2")
    )
    code = (
        "import argparse, sys\n"
        "from vbinfer.cluster.cli import add_parsers\n"
        "if __name__ == '__main__':\n"
        "    parser = argparse.ArgumentParser(prog='vbinfer')\n"
        "    add_parsers(parser.add_subparsers(dest='command', required=True))\n"
        "    args = parser.parse_args(sys.argv[1:])\n"
        "    sys.exit(args.func(args))\n"
    )
    script = tmp_path / "run.py"
    script.write_text(code)
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ)
    cmd = [sys.executable, str(script), "sweep", str(cfg), "--no-progress", "--local-workers", "2"]
    proc = subprocess.Popen(cmd, env=env, cwd=root, start_new_session=True)
    deadline = time.monotonic() + 240
    while True:
        files = list((store / "chunks").glob("chunk_*.nc")) if (store / "chunks").exists() else []
        if len(files) >= 5 or proc.poll() is not None or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert proc.poll() is None, "the run finished before it could be interrupted"
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and its worker processes
    proc.wait()
    done_before = len(list((store / "chunks").glob("chunk_*.nc")))
    assert 5 <= done_before < 40
    again = subprocess.run(cmd[:-2], env=env, cwd=root, capture_output=True, text=True, timeout=400)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"chunks_loaded    {done_before}" in again.stdout
    assert _chunk_files(store) == [f"chunk_{c:06d}.nc" for c in range(40)]
    # same numbers as one uninterrupted in-process run
    ref_store = tmp_path / "ref"
    cfg2 = tmp_path / "ref.toml"
    cfg2.write_text(cfg.read_text().replace(store.as_posix(), ref_store.as_posix()))
    assert _cli(["sweep", str(cfg2), "--no-progress"]) == 0
    a, b = open_sweep(store), open_sweep(ref_store)
    for name in ("mean", "fc", "diverged"):
        np.testing.assert_array_equal(a[name].values, b[name].values)
