"""Build the EEG lead field shipped as ``vbinfer/data/leadfield_hagmann84_1020.npz``.

Run once, offline, from the repository root::

    uv run --extra leadfield python scripts/build_leadfield.py

mne (BSD-3) is needed here only; vbinfer reads the resulting ``.npz`` with NumPy
(:func:`vbinfer.datasets.load_leadfield_1020`). Nothing is downloaded: the montage and the
fsaverage head <-> MRI transform ship inside the mne wheel.

Recipe (checked against the exact series solution for concentric spheres, see
``tests/test_leadfield.py``):

1. Electrodes: the 21 channels of mne's ``"fsaverage_1020"`` montage (positions computed by
   the mne developers on fsaverage; ``"standard_1020"`` is avoided, it now maps to a GPL-3
   montage with duplicated positions).
2. Head model: ``mne.make_sphere_model(r0="auto", head_radius="auto")`` fitted to those
   electrodes, four concentric shells (relative radii 0.90 / 0.92 / 0.97 / 1.00: brain, CSF,
   skull, scalp; conductivities 0.33 / 1.0 / 0.004 / 0.33 S/m). mne evaluates the potential at
   each electrode's own distance from ``r0``; those distances range from 84 to 107 mm around a
   98 mm sphere, so that some electrodes would sit inside the skull shell. The electrodes are
   therefore projected radially onto the outer sphere first (both positions are shipped): the
   matrix is then the potential on the scalp sphere that the exact series solution describes.
3. Sources: one current dipole per region of the 84-region Hagmann connectome, at its centre.
   The centres (``connectivity_84/centers.txt``, matched to the matrix order of
   ``centres.txt`` by label, ignoring case) sit about 25 mm low against MNI; they are shifted
   by (+2.4, 0, +25) mm (no scaling), converted to metres and taken to mne's head frame with
   the inverse of the fsaverage head -> MRI transform shipped with mne. The forward solution
   is computed with ``trans=None`` (sources already in the head frame) and
   ``fwd["nsource"] == 84`` is checked (``trans="fsaverage"`` silently drops 15 sources).
4. Orientation: **fixed, radial from the sphere centre r0** (the dipole points away from r0).
   A neural mass model gives one signal per region, so one column per region is needed;
   radial is the natural single orientation in a spherical head (pyramidal cells are on
   average normal to the cortical surface, and a sphere's surface normal is radial). Note that
   a purely radial dipole at the exact centre would be silent; every centre here is at least
   10 mm from r0 (the deepest, right thalamus, 10.7 mm). The free-orientation gain (head-frame x, y, z) is shipped too.
5. Reference: none is applied (the sphere model's potential is relative to infinity). Apply
   the average reference with ``G - G.mean(axis=0)``; the loader does so by default.

Units: the gain is stored in uV/nAm (microvolt per nanoampere-metre of dipole moment);
mne returns V/(A*m) and 1 V/(A*m) = 1e-3 uV/nAm.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "connectivity_84"
DEFAULT_OUT = ROOT / "vbinfer" / "data" / "leadfield_hagmann84_1020.npz"

MONTAGE = "fsaverage_1020"
CENTRE_SHIFT_MM = (2.4, 0.0, 25.0)
RELATIVE_RADII = (0.90, 0.92, 0.97, 1.0)
SIGMAS = (0.33, 1.0, 0.004, 0.33)  # S/m: brain, CSF, skull, scalp
V_PER_AM_TO_UV_PER_NAM = 1e-3


def read_centres(data_dir: Path) -> tuple[list[str], np.ndarray]:
    """Region labels in matrix order and their centres in mm (Hagmann frame).

    ``centres.txt`` gives the matrix order (its coordinates are all zero); ``centers.txt``
    gives the coordinates in another order. Labels are matched ignoring case.
    """
    order = [ln.split()[0] for ln in (data_dir / "centres.txt").read_text().splitlines() if ln]
    coords: dict[str, np.ndarray] = {}
    for ln in (data_dir / "centers.txt").read_text().splitlines():
        parts = ln.split()
        if parts:
            key = parts[0].lower()
            if key in coords:
                raise ValueError(f"centers.txt lists {parts[0]!r} twice")
            coords[key] = np.array([float(v) for v in parts[1:4]])
    missing = [lab for lab in order if lab.lower() not in coords]
    if missing or len(coords) != len(order):
        raise ValueError(f"centers.txt does not match centres.txt one to one: missing {missing}")
    return order, np.array([coords[lab.lower()] for lab in order])


def build(labels: list[str], centres_mm: np.ndarray) -> dict[str, Any]:
    """Compute the lead field for region centres ``centres_mm`` ``(N, 3)`` (Hagmann frame, mm).

    Returns the arrays written to the ``.npz`` (see the module docstring).
    """
    import mne

    mne.set_log_level("WARNING")
    centres_mm = np.asarray(centres_mm, dtype=np.float64)
    n = len(labels)
    if centres_mm.shape != (n, 3):
        raise ValueError(f"centres_mm must have shape ({n}, 3), got {centres_mm.shape}")

    montage = mne.channels.make_standard_montage(MONTAGE)
    ch_names = list(montage.ch_names)
    info = mne.create_info(ch_names, 1000.0, "eeg")
    info.set_montage(montage)
    sphere = mne.make_sphere_model(
        r0="auto",
        head_radius="auto",
        info=info,
        relative_radii=RELATIVE_RADII,
        sigmas=SIGMAS,
    )
    r0 = np.asarray(sphere["r0"], dtype=np.float64)
    radius = float(sphere.radius)
    radii = np.array([layer["rad"] for layer in sphere["layers"]])
    sigmas = np.array([layer["sigma"] for layer in sphere["layers"]])

    pos_montage = np.array([ch["loc"][:3] for ch in info["chs"]])
    rel = pos_montage - r0
    pos = r0 + radius * rel / np.linalg.norm(rel, axis=1, keepdims=True)
    info_proj = mne.create_info(ch_names, 1000.0, "eeg")
    info_proj.set_montage(
        mne.channels.make_dig_montage(
            ch_pos=dict(zip(ch_names, pos, strict=True)), coord_frame="head"
        )
    )

    head_mri = mne.read_trans(
        Path(mne.__file__).parent / "data" / "fsaverage" / "fsaverage-trans.fif"
    )
    mri_head = mne.transforms.invert_transform(head_mri)
    shifted_m = (centres_mm + np.asarray(CENTRE_SHIFT_MM)) * 1e-3
    rr = mne.transforms.apply_trans(mri_head, shifted_m)
    nn = rr - r0
    depth = np.linalg.norm(nn, axis=1)
    nn /= depth[:, None]
    if np.any(depth >= radii[0]):
        raise ValueError(f"{int(np.sum(depth >= radii[0]))} sources lie outside the inner sphere")

    src = mne.setup_volume_source_space(pos={"rr": rr, "nn": nn})
    fwd = mne.make_forward_solution(
        info_proj, trans=None, src=src, bem=sphere, meg=False, eeg=True, mindist=0.0
    )
    if fwd["nsource"] != n:
        raise RuntimeError(f"the forward solution kept {fwd['nsource']} of {n} sources")
    used = fwd["src"][0]["rr"][fwd["src"][0]["vertno"]]
    if not np.allclose(used, rr, atol=1e-9):
        raise RuntimeError("mne reordered or moved the sources")
    if list(fwd["info"]["ch_names"]) != ch_names:
        raise RuntimeError("mne reordered the channels")
    gain_free = fwd["sol"]["data"].reshape(len(ch_names), n, 3) * V_PER_AM_TO_UV_PER_NAM
    gain = np.einsum("crk,rk->cr", gain_free, nn)
    fixed = mne.convert_forward_solution(fwd, surf_ori=True, force_fixed=True)
    g_fixed = fixed["sol"]["data"] * V_PER_AM_TO_UV_PER_NAM
    # mne keeps the orientations in float32: agreement to ~1e-7 of the largest entry
    if np.abs(g_fixed - gain).max() > 1e-6 * np.abs(gain).max():
        raise RuntimeError("mne's fixed-orientation gain differs from the projected free gain")

    meta = {
        "description": (
            "EEG lead field of the 84 Hagmann regions (one current dipole per region centre, "
            "radial orientation from the sphere centre) for the 21 channels of mne's "
            "fsaverage_1020 montage, 4-shell spherical head model, no reference applied."
        ),
        "units": "uV/nAm",
        "units_note": "1 V/(A*m) = 1e-3 uV/nAm; gain[c, r] is channel c's potential per unit dipole moment at region r",
        "orientation": "radial from sphere_r0 (fixed); gain_free holds head-frame x, y, z columns",
        "reference": "none (potential relative to infinity); average reference: G - G.mean(axis=0)",
        "frame": "mne head frame (fsaverage), metres",
        "montage": MONTAGE,
        "electrodes": "montage positions projected radially onto the outer sphere (ch_pos); originals in ch_pos_montage",
        "sphere": {
            "r0_m": r0.tolist(),
            "radius_m": radius,
            "relative_radii": list(RELATIVE_RADII),
            "sigmas_S_per_m": list(SIGMAS),
            "fit": "mne.make_sphere_model(r0='auto', head_radius='auto') on the montage",
            "forward": "mne Berg-Scherg approximation of the concentric-sphere series",
        },
        "centre_shift_mm": list(CENTRE_SHIFT_MM),
        "mri_to_head": "inverse of mne/data/fsaverage/fsaverage-trans.fif",
        "mne_version": mne.__version__,
        "numpy_version": np.__version__,
        "python_version": sys.version.split()[0],
        "script": "scripts/build_leadfield.py",
    }
    return {
        "gain": gain,
        "gain_free": gain_free,
        "orientation": nn,
        "ch_names": np.array(ch_names),
        "ch_pos": pos,
        "ch_pos_montage": pos_montage,
        "region_labels": np.array(labels),
        "region_centres": rr,
        "region_centres_hagmann_mm": centres_mm,
        "sphere_r0": r0,
        "sphere_radii": radii,
        "sphere_sigmas": sigmas,
        "mri_head_trans": np.asarray(mri_head["trans"]),
        "metadata": np.array(json.dumps(meta, indent=1)),
    }


def facts(arrays: dict[str, Any]) -> dict[str, Any]:
    """Sanity figures of a lead field: rank, condition number, column norms, sign check."""
    g = np.asarray(arrays["gain"])
    ga = g - g.mean(axis=0)
    s = np.linalg.svd(g, compute_uv=False)
    sa = np.linalg.svd(ga, compute_uv=False)
    rank_a = int(np.linalg.matrix_rank(ga))
    norms = np.linalg.norm(g, axis=0)
    dist = np.linalg.norm(arrays["ch_pos"][:, None] - arrays["region_centres"][None], axis=-1)
    nearest = np.argmin(dist, axis=0)
    labels = arrays["region_labels"]
    return {
        "shape": list(g.shape),
        "rank": int(np.linalg.matrix_rank(g)),
        "rank_average_ref": rank_a,
        "condition": float(s[0] / s[-1]),
        "condition_average_ref": float(sa[0] / sa[rank_a - 1]),
        "column_norm_uV_per_nAm": {
            "min": float(norms.min()),
            "median": float(np.median(norms)),
            "max": float(norms.max()),
            "argmin": str(labels[np.argmin(norms)]),
            "argmax": str(labels[np.argmax(norms)]),
        },
        "max_abs_entry_uV_per_nAm": float(np.abs(g).max()),
        "positive_at_nearest_electrode": int(np.sum(g[nearest, np.arange(g.shape[1])] > 0)),
    }


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="connectivity_84 folder")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output .npz")
    args = parser.parse_args(argv)

    labels, centres = read_centres(args.data)
    packaged = np.load(ROOT / "vbinfer" / "data" / "hagmann84.npz")
    if [str(x) for x in packaged["labels"]] != labels or not np.array_equal(
        packaged["centres"], centres
    ):
        raise RuntimeError("the centres differ from vbinfer/data/hagmann84.npz")
    arrays = build(labels, centres)
    meta = json.loads(str(arrays["metadata"]))
    meta["inputs_sha256"] = {
        name: _sha256(args.data / name) for name in ("centres.txt", "centers.txt")
    }
    meta["facts"] = facts(arrays)
    arrays["metadata"] = np.array(json.dumps(meta, indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **arrays)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KB)")
    print(json.dumps(meta["facts"], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
