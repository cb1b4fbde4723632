"""Workflow 4, parameter sweeps: the grid engine (order, padding, keys independent of the batch
size), batched MPR sweeps equal to one-at-a-time runs, a quick end-to-end run checked against
the uncoupled MPR fixed point, and (slow) the full default sweep."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import brentq

from vbinfer.models import MPRParams
from vbinfer.workflows import WorkflowReport, sweep


def _mpr_low_fixed_point(eta: float) -> float:
    """Rate of the low-activity fixed point of one uncoupled MPR node (default parameters):
    dr = 0 gives V = -Delta / (2 pi tau r); dV = 0 then is one equation in r, solved on the low
    branch."""
    p = MPRParams()
    tau, delta, J = p.tau, p.Delta, p.J

    def dv(r):
        V = -delta / (2 * np.pi * tau * r)
        return V * V - (np.pi * tau * r) ** 2 + eta + J * tau * r

    return brentq(dv, 1e-3, 0.2)


def test_mpr_fixed_point_reference():
    # the model's docstring example: (r, V) = (0.0811, -1.9616) at eta = -5 is a fixed point
    assert _mpr_low_fixed_point(-5.0) == pytest.approx(0.0811, abs=1e-4)


def test_grid_points_and_sweep_grid_shape_order_and_padding():
    grid = {"a": [0.0, 1.0], "b": [10.0, 20.0, 30.0], "c": [-1.0, 1.0]}

    def fn(p, keys):
        assert keys is None
        s = p["a"] + p["b"] * p["c"]
        return {"s": s, "vec": jnp.stack([p["a"], p["b"], p["c"]], axis=-1)}

    ref = np.add.outer(np.array(grid["a"]), np.multiply.outer(grid["b"], grid["c"]))
    for b in (1, 5, 12, 100):  # 12 points: padded last batch for 5, one batch for 12 and 100
        r = sweep.sweep_grid(fn, grid, b)
        assert r.shape == (2, 3, 2) and r.names == ("a", "b", "c") and r.num_points == 12
        np.testing.assert_array_equal(r.values["s"], ref)
        assert r.values["vec"].shape == (2, 3, 2, 3)
        np.testing.assert_array_equal(r.values["vec"][1, 2, 0], [1.0, 30.0, -1.0])
        assert r.num_padded == (-12) % min(b, 12)
    pts = sweep.grid_points(grid)
    g = np.ravel_multi_index((1, 2, 0), (2, 3, 2))
    assert (pts["a"][g], pts["b"][g], pts["c"][g]) == (1.0, 30.0, -1.0)


def test_sweep_grid_keys_do_not_depend_on_batch_size():
    grid = {"x": np.arange(7.0)}

    def fn(p, keys):
        return jax.vmap(lambda k: jax.random.normal(k, (2,)))(keys) + p["x"][:, None]

    key = jax.random.key(0)
    a = sweep.sweep_grid(fn, grid, 2, key=key).values
    b = sweep.sweep_grid(fn, grid, 7, key=key).values
    np.testing.assert_array_equal(a, b)
    g = 4
    ref = jax.random.normal(jax.random.fold_in(key, g), (2,)) + g  # the documented key of g
    np.testing.assert_allclose(a[g], ref, rtol=1e-6)
    assert np.unique(a[:, 0]).size == 7


def test_sweep_grid_rejects_bad_input():
    fn = lambda p, k: p["a"]  # noqa: E731
    with pytest.raises(ValueError, match="grid must be a non-empty dict"):
        sweep.sweep_grid(fn, {}, 2)
    with pytest.raises(ValueError, match=r"grid\['a'\] must be a non-empty 1-D"):
        sweep.sweep_grid(fn, {"a": [[1.0, 2.0]]}, 2)
    with pytest.raises(ValueError, match=r"grid\['a'\] must hold finite numbers"):
        sweep.sweep_grid(fn, {"a": [1.0, np.nan]}, 2)
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        sweep.sweep_grid(fn, {"a": [1.0]}, 0)
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got True"):
        sweep.sweep_grid(fn, {"a": [1.0]}, True)
    with pytest.raises(ValueError, match="simulate_fn must be callable"):
        sweep.sweep_grid(None, {"a": [1.0]}, 1)
    with pytest.raises(ValueError, match="grid must have exactly the names"):
        sweep.run(None, grid={"coupling": [0.0], "eta": [-5.0]})
    with pytest.raises(ValueError, match="transient_ms must lie in"):
        sweep.make_mpr_sweep_fn(duration_ms=10.0, transient_ms=10.0)
    with pytest.raises(ValueError, match="sample_ms must be a multiple of dt"):
        sweep.make_mpr_sweep_fn(dt=0.03, sample_ms=1.0)


def test_batched_mpr_sweep_equals_one_at_a_time_runs():
    fn, setup = sweep.make_mpr_sweep_fn(duration_ms=20.0, transient_ms=5.0)
    grid = {"coupling": [0.5, 2.0], "sigma": [0.1, 0.5], "eta": [-4.6, -4.2]}
    key = jax.random.key(7)
    res = sweep.sweep_grid(fn, grid, 3, key=key)  # 8 points: batches of 3, the last padded
    pts = sweep.grid_points(grid)

    @jax.jit
    def single(k, sigma, coupling, eta):
        p = setup["params"]({"coupling": coupling, "eta": eta})
        out = setup["make_sim"](sigma).run(k, p, setup["network"])
        r = out.outputs["r"][setup["skip"] :, 0, :, None]  # (T, n, 1)
        return {name: v[0] for name, v in setup["features"](r).items()}

    for g in (0, 5, 7):  # first batch, middle batch, the padded last batch
        one = single(
            sweep.point_keys(key, [g])[0], pts["sigma"][g], pts["coupling"][g], pts["eta"][g]
        )
        idx = np.unravel_index(g, res.shape)
        for name in sweep.FEATURES:
            np.testing.assert_allclose(res.values[name][idx], one[name], rtol=1e-4, atol=1e-6)


def test_quick_run_writes_files_and_matches_the_fixed_point(tmp_path):
    report = sweep.run(tmp_path, quick=True, progress=False)
    assert isinstance(report, WorkflowReport) and report.name == "sweep"
    assert {p.name for p in report.files} == {
        "heatmaps.png",
        "sweep.csv",
        "sweep.npz",
        "report.json",
    }
    assert all(p.exists() and p.stat().st_size > 0 for p in report.files)
    m = report.metrics
    assert m["grid_shape"] == [3, 2, 3] and m["num_simulations"] == 18
    assert m["non_finite"] == 0 and report.passed is None
    assert m["simulations_per_s"] > 0 and m["node_steps_per_s"] > 0
    assert [r["feature"] for r in report.rows] == list(sweep.FEATURES)
    with np.load(tmp_path / "sweep.npz") as f:
        grid = {k: f[f"axis_{k}"] for k in sweep.GRID_NAMES}
        vals = {k: f[f"feature_{k}"] for k in sweep.FEATURES}
    for v in vals.values():
        assert v.shape == (3, 2, 3)
    # uncoupled regions (a = 0) with weak noise sit at the fixed point of one MPR node,
    # and are independent: no functional connectivity, none related to the structure
    assert grid["coupling"][0] == 0.0 and grid["sigma"][0] == pytest.approx(0.1)
    ref = np.array([_mpr_low_fixed_point(e) for e in grid["eta"]])
    np.testing.assert_allclose(vals["mean_r"][0, 0], ref, rtol=0.02)
    assert np.all(np.abs(vals["fc_mean"][0]) < 0.01)
    assert np.all(np.abs(vals["fc_sc_corr"][0]) < 0.1)
    # the strongest coupling and excitability with strong noise leave the low state
    assert vals["mean_r"][-1, -1, -1] > 5 * ref[-1]
    assert len((tmp_path / "sweep.csv").read_text().splitlines()) == 19
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["metrics"]["grid_shape"] == [3, 2, 3]


@pytest.mark.slow
def test_default_sweep(tmp_path):
    """The full default grid (192 runs of 700 ms): every run finite, heat map arrays shaped by
    the grid, the uncoupled column at the MPR fixed point, both activity states present."""
    report = sweep.run(tmp_path, progress=False)
    m = report.metrics
    assert m["grid_shape"] == [8, 3, 8] and m["non_finite"] == 0
    with np.load(tmp_path / "sweep.npz") as f:
        grid = {k: f[f"axis_{k}"] for k in sweep.GRID_NAMES}
        vals = {k: f[f"feature_{k}"] for k in sweep.FEATURES}
    ref = np.array([_mpr_low_fixed_point(e) for e in grid["eta"]])
    np.testing.assert_allclose(vals["mean_r"][0, 0], ref, rtol=0.02)
    assert np.all(np.abs(vals["fc_mean"][0]) < 0.01)
    high = vals["mean_r"] > 0.5  # regions in the high-activity state on average
    assert high.any() and not high[0].any()  # reached only with coupling
    # the mean rate grows with excitability wherever the network stays in the low state
    low = ~high
    d_eta = np.diff(vals["mean_r"], axis=2)
    assert np.all(d_eta[low[:, :, 1:] & low[:, :, :-1]] > 0)
