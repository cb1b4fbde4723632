"""Pictures of fields on the sphere: a latitude-longitude map, an orthographic globe, a GIF.

Pure matplotlib (no cartopy): the map draws every grid cell with ``pcolormesh`` between the
midpoints of the Gauss-Legendre latitudes; the globe projects the grid points orthographically,
keeps the visible hemisphere and shades a Delaunay triangulation of them (``tripcolor`` with
Gouraud shading); :func:`animate` redraws either picture for every frame of a run and writes a
GIF with matplotlib's ``PillowWriter``.

A field is ``(nlat, nlon)`` (rows north to south, as the transforms use) or flattened to
``(nlat * nlon,)`` (the state layout of :mod:`vbinfer.fields.field`). The grid comes from an
:class:`~vbinfer.fields.SHT` or a pair ``(lat, lon)`` of 1-d arrays in radians.

The functions build :class:`matplotlib.figure.Figure` objects directly, never through
``pyplot``, so they need no interactive backend and leave no global state; pass ``ax`` to draw
into an existing figure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.animation import PillowWriter
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.tri import Triangulation

from vbinfer._typing import ArrayLike
from vbinfer.fields.sht import SHT, grid_lat_lon

__all__ = ["animate", "plot_globe", "plot_map"]

GridLike = SHT | tuple[ArrayLike, ArrayLike]


def plot_map(
    grid: GridLike,
    field: ArrayLike,
    ax: Axes | None = None,
    *,
    cmap: str = "viridis",
    vmin: float | None = None,
    vmax: float | None = None,
    title: str | None = None,
    label: str | None = None,
    colorbar: bool = True,
    path: str | Path | None = None,
    dpi: int = 100,
) -> Figure:
    """Draw a field on a latitude-longitude map (equirectangular), with a colour bar.

    Parameters
    ----------
    grid:
        :class:`~vbinfer.fields.SHT` or ``(lat, lon)`` 1-d arrays in radians (latitudes north to
        south, longitudes increasing from 0).
    field:
        ``(nlat, nlon)`` or flattened ``(nlat * nlon,)`` real values.
    ax:
        Axes to draw into; default a new 8 x 4 inch figure.
    cmap, vmin, vmax:
        Colour map and limits (default: the field's range).
    title, label:
        Axes title and colour-bar label.
    colorbar:
        Whether to add a colour bar.
    path:
        If given, save the figure there (format from the suffix, e.g. ``.png``).
    dpi:
        Resolution of the saved file.

    Returns
    -------
    The :class:`~matplotlib.figure.Figure`.

    Examples
    --------
    >>> import numpy as np
    >>> from vbinfer.fields import make_sht, grid_lat_lon
    >>> sht = make_sht(16)
    >>> lat, lon = (np.asarray(a) for a in grid_lat_lon(sht))
    >>> fig = plot_map(sht, np.sin(lat)[:, None] * np.cos(lon), title="Y_2^1-like")
    >>> len(fig.axes)  # the map and its colour bar
    2
    """
    lat, lon = _grid(grid)
    f = _field(field, lat.size, lon.size, "field")
    fig, ax = _figure_axes(ax, (8.0, 4.0))
    mesh = _draw_map(ax, lat, lon, f, cmap, vmin, vmax)
    if title is not None:
        ax.set_title(title)
    if colorbar:
        fig.colorbar(mesh, ax=ax, label=label, shrink=0.9)
    _save(fig, path, dpi)
    return fig


def plot_globe(
    grid: GridLike,
    field: ArrayLike,
    ax: Axes | None = None,
    *,
    center: tuple[float, float] = (20.0, 0.0),
    cmap: str = "viridis",
    vmin: float | None = None,
    vmax: float | None = None,
    title: str | None = None,
    label: str | None = None,
    colorbar: bool = True,
    graticule: float | None = 30.0,
    path: str | Path | None = None,
    dpi: int = 100,
) -> Figure:
    """Draw a field on an orthographic globe (the hemisphere facing the viewer).

    Parameters
    ----------
    grid, field:
        As in :func:`plot_map`.
    ax:
        Axes to draw into; default a new 5 x 4.5 inch figure.
    center:
        ``(latitude, longitude)`` in degrees of the point facing the viewer.
    cmap, vmin, vmax, title, label, colorbar, path, dpi:
        As in :func:`plot_map`.
    graticule:
        Spacing in degrees of the drawn meridians and parallels; ``None`` for none.

    Returns
    -------
    The :class:`~matplotlib.figure.Figure`.

    Examples
    --------
    >>> import numpy as np
    >>> from vbinfer.fields import make_sht, grid_lat_lon
    >>> sht = make_sht(16)
    >>> lat = np.asarray(grid_lat_lon(sht)[0])
    >>> fig = plot_globe(sht, np.repeat(np.sin(lat), sht.nlon), center=(30.0, 45.0))
    >>> len(fig.axes)
    2
    """
    lat, lon = _grid(grid)
    f = _field(field, lat.size, lon.size, "field")
    center = _check_center(center)
    fig, ax = _figure_axes(ax, (5.0, 4.5))
    globe = _Globe(lat, lon, center)
    mesh = globe.draw(ax, f, cmap, vmin, vmax, graticule)
    if title is not None:
        ax.set_title(title)
    if colorbar:
        fig.colorbar(mesh, ax=ax, label=label, shrink=0.8)
    _save(fig, path, dpi)
    return fig


def animate(
    grid: GridLike,
    frames: ArrayLike,
    path: str | Path = "run.gif",
    *,
    kind: str = "map",
    fps: float = 10.0,
    times: Sequence[float] | ArrayLike | None = None,
    time_unit: str = "ms",
    center: tuple[float, float] = (20.0, 0.0),
    cmap: str = "viridis",
    vmin: float | None = None,
    vmax: float | None = None,
    title: str | None = None,
    label: str | None = None,
    dpi: int = 80,
) -> Path:
    """Write a GIF of a run: one map or globe per frame, with fixed colour limits.

    Parameters
    ----------
    grid:
        As in :func:`plot_map`.
    frames:
        ``(n_frames, nlat, nlon)`` or ``(n_frames, nlat * nlon)``, e.g. one state variable of a
        monitor's output, ``res.outputs["tavg"][:, 0]``.
    path:
        Output file (``.gif``); its folder must exist.
    kind:
        ``"map"`` (latitude-longitude) or ``"globe"`` (orthographic).
    fps:
        Frames per second (> 0).
    times:
        Optional ``(n_frames,)`` times shown in the title of each frame.
    time_unit:
        Unit written after the times.
    center:
        View centre of a globe, ``(latitude, longitude)`` in degrees.
    cmap, vmin, vmax:
        Colour map and limits (default: the range over all frames).
    title, label:
        Title prefix and colour-bar label.
    dpi:
        Resolution of the frames.

    Returns
    -------
    The :class:`~pathlib.Path` written.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from vbinfer.fields import make_sht
    >>> sht = make_sht(8)
    >>> frames = np.random.default_rng(0).standard_normal((3, sht.nlat * sht.nlon))
    >>> out = animate(sht, frames, os.path.join(tempfile.mkdtemp(), "run.gif"), fps=5)
    >>> out.stat().st_size > 0
    True
    """
    lat, lon = _grid(grid)
    frames = np.asarray(frames, dtype=np.float64)
    if frames.ndim == 2 and frames.shape[1] == lat.size * lon.size:
        frames = frames.reshape(frames.shape[0], lat.size, lon.size)
    if frames.ndim != 3 or frames.shape[1:] != (lat.size, lon.size) or frames.shape[0] < 1:
        raise ValueError(
            f"frames must have shape (n_frames, nlat, nlon) = (n, {lat.size}, {lon.size}) or "
            f"(n_frames, nlat * nlon) = (n, {lat.size * lon.size}) with n >= 1, "
            f"got shape {frames.shape}"
        )
    if kind not in ("map", "globe"):
        raise ValueError(f"kind must be 'map' or 'globe', got {kind!r}")
    if not (isinstance(fps, int | float) and math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number of frames per second, got {fps!r}")
    if times is not None:
        times = np.asarray(times, dtype=np.float64).reshape(-1)
        if times.shape != (frames.shape[0],):
            raise ValueError(
                f"times must have shape (n_frames,) = ({frames.shape[0]},), got {times.shape}"
            )
    path = Path(path)
    if not path.parent.is_dir():
        raise ValueError(f"path: folder {str(path.parent)!r} does not exist")
    finite = frames[np.isfinite(frames)]
    lo = vmin if vmin is not None else (float(finite.min()) if finite.size else 0.0)
    hi = vmax if vmax is not None else (float(finite.max()) if finite.size else 1.0)
    if kind == "map":
        fig, ax = _figure_axes(None, (8.0, 4.0))
        mesh = _draw_map(ax, lat, lon, frames[0], cmap, lo, hi)

        def update(f):
            mesh.set_array(f.ravel())

    else:
        fig, ax = _figure_axes(None, (5.0, 4.5))
        globe = _Globe(lat, lon, _check_center(center))
        mesh = globe.draw(ax, frames[0], cmap, lo, hi, 30.0)

        def update(f):
            mesh.set_array(globe.values(f))

    fig.colorbar(mesh, ax=ax, label=label, shrink=0.85)

    def caption(i):
        parts = [p for p in (title, None if times is None else f"t = {times[i]:g} {time_unit}")]
        return " ".join(p for p in parts if p)

    writer = PillowWriter(fps=fps)
    with writer.saving(fig, str(path), dpi):
        for i, f in enumerate(frames):
            update(f)
            ax.set_title(caption(i))
            writer.grab_frame()
    return path


# ----------------------------------------------------------------------------- internals


def _grid(grid: Any) -> tuple[np.ndarray, np.ndarray]:
    """Latitudes and longitudes (radians, 1-d, float64) of an SHT or a ``(lat, lon)`` pair."""
    if isinstance(grid, SHT):
        lat, lon = grid_lat_lon(grid)
    elif isinstance(grid, tuple | list) and len(grid) == 2:
        lat, lon = grid
    else:
        raise ValueError(
            f"grid must be an SHT or a (lat, lon) pair of 1-d arrays in radians, "
            f"got {type(grid).__name__}"
        )
    lat = np.asarray(lat, dtype=np.float64)
    lon = np.asarray(lon, dtype=np.float64)
    if lat.ndim != 1 or lon.ndim != 1 or lat.size < 2 or lon.size < 2:
        raise ValueError(
            f"grid: lat and lon must be 1-d with at least 2 values each, got shapes "
            f"{lat.shape} and {lon.shape}"
        )
    return lat, lon


def _field(field: Any, nlat: int, nlon: int, name: str) -> np.ndarray:
    f = np.asarray(field, dtype=np.float64)
    if f.shape == (nlat * nlon,):
        f = f.reshape(nlat, nlon)
    if f.shape != (nlat, nlon):
        raise ValueError(
            f"{name} must have shape (nlat, nlon) = ({nlat}, {nlon}) or (nlat * nlon,) = "
            f"({nlat * nlon},), got shape {f.shape}"
        )
    return f


def _figure_axes(ax: Axes | None, size: tuple[float, float]) -> tuple[Figure, Axes]:
    if ax is None:
        fig = Figure(figsize=size, layout="constrained")
        return fig, fig.add_subplot()
    if not isinstance(ax, Axes):
        raise ValueError(f"ax must be a matplotlib Axes or None, got {type(ax).__name__}")
    return ax.get_figure(root=True), ax


def _save(fig: Figure, path: str | Path | None, dpi: int) -> None:
    if path is not None:
        fig.savefig(path, dpi=dpi)


def _check_center(center: Any) -> tuple[float, float]:
    c = np.asarray(center, dtype=np.float64)
    if c.shape != (2,) or not np.all(np.isfinite(c)) or abs(c[0]) > 90:
        raise ValueError(
            f"center must be (latitude, longitude) in degrees with |latitude| <= 90, got {center!r}"
        )
    return float(c[0]), float(c[1])


def _edges(centres: np.ndarray, lo: float | None = None, hi: float | None = None) -> np.ndarray:
    """Cell edges between centres; the outer edges at ``lo`` / ``hi`` or half a step out."""
    mid = 0.5 * (centres[1:] + centres[:-1])
    first = centres[0] - (mid[0] - centres[0]) if lo is None else lo
    last = centres[-1] + (centres[-1] - mid[-1]) if hi is None else hi
    return np.concatenate([[first], mid, [last]])


def _draw_map(ax, lat, lon, f, cmap, vmin, vmax):
    lat_d, lon_d = np.degrees(lat), np.degrees(lon)
    north_first = lat_d[0] > lat_d[-1]
    lat_e = _edges(lat_d, 90.0 if north_first else -90.0, -90.0 if north_first else 90.0)
    mesh = ax.pcolormesh(_edges(lon_d), lat_e, f, cmap=cmap, vmin=vmin, vmax=vmax, shading="flat")
    ax.set_xlabel("longitude (deg)")
    ax.set_ylabel("latitude (deg)")
    ax.set_ylim(-90, 90)
    ax.set_aspect("equal")
    return mesh


class _Globe:
    """Orthographic projection of a grid about ``center`` (degrees), as a triangle mesh.

    The mesh follows the grid (two triangles per cell, wrapping in longitude, and a fan of
    triangles from each pole, whose value is the mean of its nearest latitude ring); triangles
    with at least one visible vertex are drawn, their hidden vertices moved radially onto the
    limb so that the disk's edge is filled.
    """

    def __init__(self, lat: np.ndarray, lon: np.ndarray, center: tuple[float, float]):
        self.phi0, self.lam0 = np.radians(center[0]), np.radians(center[1])
        nlat, nlon = lat.size, lon.size
        la, lo = np.meshgrid(lat, lon, indexing="ij")
        pole = math.copysign(math.pi / 2, lat[0])
        la = np.concatenate([la.ravel(), [pole, -pole]])
        lo = np.concatenate([lo.ravel(), [0.0, 0.0]])
        x, y, visible = self.project(la, lo)
        r = np.hypot(x, y)
        scale = np.where(visible, 1.0, 1.0 / np.maximum(r, 1e-12))
        idx = np.arange(nlat * nlon).reshape(nlat, nlon)
        a, b = idx[:-1], np.roll(idx, -1, axis=1)[:-1]
        c, d = idx[1:], np.roll(idx, -1, axis=1)[1:]
        first, last = idx[0], idx[-1]
        n_pole, s_pole = nlat * nlon, nlat * nlon + 1
        tris = np.concatenate(
            [
                np.stack([a, c, b], -1).reshape(-1, 3),
                np.stack([b, c, d], -1).reshape(-1, 3),
                np.stack([np.full(nlon, n_pole), first, np.roll(first, -1)], -1),
                np.stack([np.full(nlon, s_pole), np.roll(last, -1), last], -1),
            ]
        )
        tris = tris[visible[tris].any(axis=1)]
        self.tri = Triangulation(x * scale, y * scale, tris)

    def project(self, la, lo):
        s0, c0 = math.sin(self.phi0), math.cos(self.phi0)
        d = lo - self.lam0
        x = np.cos(la) * np.sin(d)
        y = c0 * np.sin(la) - s0 * np.cos(la) * np.cos(d)
        visible = s0 * np.sin(la) + c0 * np.cos(la) * np.cos(d) > 0
        return x, y, visible

    def values(self, f: np.ndarray) -> np.ndarray:
        f = np.asarray(f, dtype=np.float64)
        return np.concatenate([f.ravel(), [f[0].mean(), f[-1].mean()]])

    def draw(self, ax, f, cmap, vmin, vmax, graticule):
        mesh = ax.tripcolor(
            self.tri, self.values(f), cmap=cmap, vmin=vmin, vmax=vmax, shading="gouraud"
        )
        t = np.linspace(0, 2 * np.pi, 361)
        ax.plot(np.cos(t), np.sin(t), color="k", lw=0.8)
        if graticule:
            step = float(graticule)
            fine = np.radians(np.linspace(-180, 180, 361))
            for lat0 in np.arange(-90 + step, 90, step):
                self._line(ax, np.full_like(fine, np.radians(lat0)), fine)
            fine_lat = np.radians(np.linspace(-90, 90, 181))
            for lon0 in np.arange(0, 360, step):
                self._line(ax, fine_lat, np.full_like(fine_lat, np.radians(lon0)))
        ax.set_xlim(-1.02, 1.02)
        ax.set_ylim(-1.02, 1.02)
        ax.set_aspect("equal")
        ax.set_axis_off()
        return mesh

    def _line(self, ax, la, lo):
        x, y, vis = self.project(la, lo)
        ax.plot(np.where(vis, x, np.nan), np.where(vis, y, np.nan), color="k", lw=0.3, alpha=0.5)
