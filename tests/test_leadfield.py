"""The shipped EEG lead field against physics: exact sphere solutions, rank, sign, magnitudes.

The reference is the exact series solution for a current dipole in concentric spheres (Zhang
1995, the expansion mne's Berg-Scherg approximation is fitted to), written here in NumPy, and
for one shell the closed-form potential of a dipole in a homogeneous sphere (Frank 1952;
Mosher, Leahy & Lewis 1999, eq. 7). Neither needs mne; the tests that rebuild the matrix with
mne are skipped where it is not installed.
"""

from __future__ import annotations

import importlib.util
import json
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from vbinfer.datasets import load_hagmann84, load_leadfield_1020

UV_PER_NAM = 1e-3  # 1 V/(A m) in uV/nAm


@pytest.fixture(scope="module")
def raw():
    path = resources.files("vbinfer").joinpath("data", "leadfield_hagmann84_1020.npz")
    with path.open("rb") as fh, np.load(fh) as f:
        return {k: f[k] for k in f.files}


def sphere_series(src, q, el, r0, radii, sigmas, n_terms=300):
    """Exact potential (V) of dipoles ``q`` (A m, ``(M, 3)``) at ``src`` (m) in concentric
    spheres, at electrodes ``el`` (m, ``(C, 3)``) on the outer sphere: ``(C, M)``.

    V = 1 / (4 pi s_N R^2) sum_n (2n+1)/n (b/R)^(n-1) f_n [n q_r P_n(cos g) + q_t P_n^1(cos g)]
    with f_n from the 2 x 2 transfer matrices of the shells (Zhang 1995, eq. 1-3).
    """
    radii, sigmas = np.asarray(radii, float), np.asarray(sigmas, float)
    big_r = radii[-1]
    b = src - r0
    bn = np.linalg.norm(b, axis=1)
    bh = b / bn[:, None]
    e = el - r0
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), big_r, rtol=1e-9)
    eh = e / big_r
    x = np.clip(eh @ bh.T, -1.0, 1.0)  # (C, M) cos of the source-electrode angle
    t = eh[:, None, :] - x[..., None] * bh[None]  # tangent towards the electrode
    tn = np.linalg.norm(t, axis=-1, keepdims=True)
    t = np.divide(t, tn, out=np.zeros_like(t), where=tn > 0)
    q_r = np.sum(q * bh, axis=1)[None, :]
    q_t = np.einsum("cmk,mk->cm", t, q)
    sin = np.sqrt(1.0 - x * x)
    p_prev, p = np.ones_like(x), x.copy()  # P_0, P_1
    dp_prev, dp = np.zeros_like(x), np.ones_like(x)  # P_0', P_1'
    total = np.zeros_like(x)
    for n in range(1, n_terms):
        m = np.eye(2)
        for k in range(len(radii) - 2, -1, -1):
            c = sigmas[k] / sigmas[k + 1]
            cr = (radii[k] / big_r) ** (2 * n + 1)
            step = np.array(
                [[n + (n + 1) * c, (n + 1) * (c - 1) / cr], [n * (c - 1) * cr, n + 1 + n * c]]
            )
            m = step / (2 * n + 1) @ m
        f_n = n / (n * m[1, 1] + (n + 1) * m[1, 0])
        total += (2 * n + 1) / n * (bn / big_r) ** (n - 1) * f_n * (n * q_r * p + q_t * sin * dp)
        p_prev, p = p, ((2 * n + 1) * x * p - n * p_prev) / (n + 1)
        dp_prev, dp = dp, dp_prev + (2 * n + 1) * p_prev
    return total / (4 * np.pi * sigmas[-1] * big_r**2)


def homogeneous_sphere(src, q, el, r0, sigma):
    """Closed-form potential (V) of dipoles in a homogeneous sphere, at surface points ``el``:
    V = q . [2 d / |d|^3 + (r |d| + R d) / (R |d| (R |d| + R^2 - r_q . r))] / (4 pi sigma)."""
    r = (el - r0)[:, None, :]
    rq = (src - r0)[None]
    d = r - rq
    dn = np.linalg.norm(d, axis=-1, keepdims=True)
    big_r = np.linalg.norm(r, axis=-1, keepdims=True)
    rq_r = np.sum(rq * r, axis=-1, keepdims=True)
    vec = 2 * d / dn**3 + (r * dn + big_r * d) / (big_r * dn * (big_r * dn + big_r**2 - rq_r))
    return np.einsum("cmk,mk->cm", vec, q) / (4 * np.pi * sigma)


def test_shipped_matrix_shape_units_and_order(raw):
    lf = load_leadfield_1020()
    assert lf.gain.shape == (21, 84) and np.all(np.isfinite(lf.gain))
    assert raw["gain"].shape == (21, 84) and raw["gain_free"].shape == (21, 84, 3)
    assert lf.units == "uV/nAm" and lf.reference == "average"
    assert len(set(lf.ch_names)) == 21 and lf.ch_names[10] == "Cz"
    assert lf.region_labels == load_hagmann84().labels
    np.testing.assert_array_equal(raw["region_centres_hagmann_mm"], load_hagmann84().centres)
    np.testing.assert_allclose(lf.gain.sum(axis=0), 0.0, atol=1e-13)
    np.testing.assert_allclose(load_leadfield_1020(None).gain, raw["gain"])
    meta = json.loads(str(raw["metadata"]))
    assert meta["units"] == "uV/nAm" and meta["montage"] == "fsaverage_1020"
    with pytest.raises(ValueError, match="reference must be"):
        load_leadfield_1020("Cz")


def test_geometry_sources_inside_brain_electrodes_on_scalp(raw):
    r0, radii = raw["sphere_r0"], raw["sphere_radii"]
    np.testing.assert_allclose(radii / radii[-1], [0.90, 0.92, 0.97, 1.0])
    np.testing.assert_allclose(np.linalg.norm(raw["ch_pos"] - r0, axis=1), radii[-1], rtol=1e-12)
    depth = np.linalg.norm(raw["region_centres"] - r0, axis=1)
    assert depth.max() < radii[0] and depth.min() > 0.005  # all inside the brain, none at r0
    # the centres are the packaged ones, shifted and rigidly moved (distances preserved)
    c_mm = raw["region_centres_hagmann_mm"]
    d_in = np.linalg.norm(c_mm[:, None] - c_mm[None], axis=-1) * 1e-3
    d_out = np.linalg.norm(raw["region_centres"][:, None] - raw["region_centres"][None], axis=-1)
    np.testing.assert_allclose(d_out, d_in, atol=1e-7)  # the fif transform is float32
    np.testing.assert_allclose(
        raw["orientation"], (raw["region_centres"] - r0) / depth[:, None], atol=1e-12
    )


def test_rank_and_condition(raw):
    g = raw["gain"]
    ga = g - g.mean(axis=0)
    assert np.linalg.matrix_rank(g) == 21
    assert np.linalg.matrix_rank(ga) == 20  # the average reference removes one dimension
    s = np.linalg.svd(ga, compute_uv=False)
    assert s[20] < 1e-12 * s[0]
    assert s[0] / s[19] < 100  # 21 channels separate 20 spatial patterns


def test_outward_dipole_is_positive_at_its_nearest_electrode(raw):
    g = raw["gain"]
    dist = np.linalg.norm(raw["ch_pos"][:, None] - raw["region_centres"][None], axis=-1)
    nearest = np.argmin(dist, axis=0)
    assert np.all(g[nearest, np.arange(84)] > 0)
    ga = g - g.mean(axis=0)
    assert np.all(ga[nearest, np.arange(84)] > 0)  # still true after average reference


def test_column_norms_grow_with_eccentricity(raw):
    g = raw["gain"]
    norms = np.linalg.norm(g, axis=0)
    # a 10 nAm dipole gives microvolts at the scalp: norms of a few tenths of a uV per nAm
    assert 0.1 < norms.min() and norms.max() < 0.5
    depth = np.linalg.norm(raw["region_centres"] - raw["sphere_r0"], axis=1)
    rank = lambda v: np.argsort(np.argsort(v))  # noqa: E731
    spearman = np.corrcoef(rank(norms), rank(depth))[0, 1]
    assert spearman > 0.5


def test_reference_series_equals_closed_form_in_a_homogeneous_sphere(raw):
    r0, big_r = raw["sphere_r0"], raw["sphere_radii"][-1]
    src, el = raw["region_centres"], raw["ch_pos"]
    for axis in range(3):
        q = np.zeros((84, 3))
        q[:, axis] = 1.0
        series = sphere_series(src, q, el, r0, [0.9 * big_r, big_r], [0.33, 0.33])
        closed = homogeneous_sphere(src, q, el, r0, 0.33)
        np.testing.assert_allclose(series, closed, rtol=0, atol=1e-10 * np.abs(closed).max())
    # a dipole at the centre: V = 3 q cos(theta) / (4 pi sigma R^2)
    q = np.array([[0.0, 0.0, 1.0]])
    v = homogeneous_sphere(r0[None], q, el, r0, 0.33)[:, 0]
    cos = (el - r0)[:, 2] / big_r
    np.testing.assert_allclose(v, 3 * cos / (4 * np.pi * 0.33 * big_r**2), rtol=1e-6, atol=1e-9)


def test_shipped_gain_matches_the_exact_four_shell_series(raw):
    r0, radii, sigmas = raw["sphere_r0"], raw["sphere_radii"], raw["sphere_sigmas"]
    src, el = raw["region_centres"], raw["ch_pos"]
    exact = sphere_series(src, raw["orientation"], el, r0, radii, sigmas) * UV_PER_NAM
    g = raw["gain"]
    err = np.abs(g - exact).max(axis=0) / np.abs(exact).max(axis=0)
    assert err.max() < 2e-3  # mne's three-dipole Berg-Scherg fit of the series
    for axis in range(3):
        q = np.zeros((84, 3))
        q[:, axis] = 1.0
        ex = sphere_series(src, q, el, r0, radii, sigmas) * UV_PER_NAM
        np.testing.assert_allclose(raw["gain_free"][..., axis], ex, atol=2e-3 * np.abs(ex).max())
    # the resistive skull attenuates every source, superficial ones most
    hom = homogeneous_sphere(src, raw["orientation"], el, r0, sigmas[-1]) * UV_PER_NAM
    ratio = np.abs(hom).max(axis=0) / np.abs(g).max(axis=0)
    depth = np.linalg.norm(src - r0, axis=1)
    rank = lambda v: np.argsort(np.argsort(v))  # noqa: E731
    assert np.all(ratio > 1.0) and np.corrcoef(rank(ratio), rank(depth))[0, 1] > 0.5


def _build_module():
    path = Path(__file__).resolve().parents[1] / "scripts" / "build_leadfield.py"
    spec = importlib.util.spec_from_file_location("build_leadfield", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_mne_rebuild_reproduces_the_shipped_file(raw):
    pytest.importorskip("mne")
    build = _build_module()
    conn = load_hagmann84()
    arrays = build.build(list(conn.labels), conn.centres)
    for key in ("gain", "gain_free", "ch_pos", "region_centres", "orientation", "sphere_radii"):
        np.testing.assert_allclose(arrays[key], raw[key], rtol=1e-9, atol=1e-15, err_msg=key)
    assert list(arrays["ch_names"]) == list(raw["ch_names"])


@pytest.mark.slow
def test_mne_homogeneous_sphere_matches_closed_form(raw):
    mne = pytest.importorskip("mne")
    mne.set_log_level("WARNING")
    r0, big_r = raw["sphere_r0"], float(raw["sphere_radii"][-1])
    names = [str(c) for c in raw["ch_names"]]
    info = mne.create_info(names, 1000.0, "eeg")
    info.set_montage(
        mne.channels.make_dig_montage(
            ch_pos=dict(zip(names, raw["ch_pos"], strict=True)), coord_frame="head"
        )
    )
    sphere = mne.make_sphere_model(
        r0=r0, head_radius=big_r, info=info, relative_radii=(0.9, 1.0), sigmas=(0.33, 0.33)
    )
    src = mne.setup_volume_source_space(pos={"rr": raw["region_centres"], "nn": raw["orientation"]})
    fwd = mne.make_forward_solution(info, trans=None, src=src, bem=sphere, meg=False, mindist=0.0)
    assert fwd["nsource"] == 84
    free = fwd["sol"]["data"].reshape(21, 84, 3)
    for axis in range(3):
        q = np.zeros((84, 3))
        q[:, axis] = 1.0
        closed = homogeneous_sphere(raw["region_centres"], q, raw["ch_pos"], r0, 0.33)
        np.testing.assert_allclose(free[..., axis], closed, atol=1e-5 * np.abs(closed).max())
