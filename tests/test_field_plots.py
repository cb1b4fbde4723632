"""Pictures of fields: map, orthographic globe, GIF (Agg, tiny grids)."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from vbinfer import fields


@pytest.fixture(scope="module")
def grid():
    sht = fields.make_sht(8)
    lat, lon = (np.asarray(a, np.float64) for a in fields.grid_lat_lon(sht))
    return sht, lat, lon


def test_plot_map_draws_every_cell(grid, tmp_path):
    sht, lat, lon = grid
    f = np.sin(lat)[:, None] * np.cos(lon)[None, :]
    out = tmp_path / "map.png"
    fig = fields.plot_map(sht, f.ravel(), title="t", label="r", path=out)  # flattened field
    assert isinstance(fig, Figure) and len(fig.axes) == 2  # map + colour bar
    mesh = fig.axes[0].collections[0]
    np.testing.assert_array_equal(np.asarray(mesh.get_array()).ravel(), f.ravel())
    coords = mesh.get_coordinates()  # (nlat + 1, nlon + 1, 2) cell corners in degrees
    assert coords.shape == (sht.nlat + 1, sht.nlon + 1, 2)
    np.testing.assert_allclose(coords[[0, -1], 0, 1], [90.0, -90.0])
    np.testing.assert_allclose(coords[0, -1, 0] - coords[0, 0, 0], 360.0)
    assert out.stat().st_size > 0
    # into existing axes, (lat, lon) grid
    fig2 = Figure()
    ax = fig2.add_subplot()
    assert fields.plot_map((lat, lon), f, ax=ax, colorbar=False) is fig2


def test_plot_globe_is_the_orthographic_projection(grid, tmp_path):
    """Field = cos of the angle to the view centre: every vertex drawn inside the disk satisfies
    x^2 + y^2 + f^2 = 1 with f > 0 (front side); vertices moved to the limb come from behind."""
    sht, lat, lon = grid
    c_lat, c_lon = np.radians(30.0), np.radians(45.0)
    f = np.sin(lat)[:, None] * np.sin(c_lat) + np.cos(lat)[:, None] * np.cos(c_lat) * np.cos(
        lon[None, :] - c_lon
    )
    fig = fields.plot_globe(sht, f, center=(30.0, 45.0), path=tmp_path / "globe.png")
    assert len(fig.axes) == 2
    mesh = fig.axes[0].collections[0]
    tri = mesh._triangulation  # a TriMesh has no public getter for it
    x, y = tri.x, tri.y
    used = np.unique(tri.triangles)
    values = np.asarray(mesh.get_array())  # at the grid points, then the two poles
    np.testing.assert_allclose(values, np.concatenate([f.ravel(), [f[0].mean(), f[-1].mean()]]))
    r2 = x[used] ** 2 + y[used] ** 2
    inside = used[r2 < 1 - 1e-9]
    limb = used[r2 >= 1 - 1e-9]
    np.testing.assert_allclose(r2.max(), 1.0)
    grid_pts = inside[inside < f.size]
    np.testing.assert_allclose(x[grid_pts] ** 2 + y[grid_pts] ** 2 + values[grid_pts] ** 2, 1.0)
    assert np.all(values[grid_pts] > 0)
    assert np.all(values[limb[limb < f.size]] <= 1e-12)
    assert (tmp_path / "globe.png").stat().st_size > 0


@pytest.mark.parametrize("kind", ["map", "globe"])
def test_animate_writes_a_gif(grid, tmp_path, kind):
    sht, lat, lon = grid
    frames = np.stack([np.cos(lon - 0.5 * k)[None, :] * np.cos(lat)[:, None] for k in range(3)])
    out = fields.animate(
        sht, frames.reshape(3, -1), tmp_path / f"{kind}.gif", kind=kind, fps=4, times=[0, 1, 2]
    )
    assert out == tmp_path / f"{kind}.gif"
    with Image.open(out) as im:
        assert im.format == "GIF" and im.n_frames == 3
        first = np.asarray(im.convert("RGB"))
        im.seek(2)
        last = np.asarray(im.convert("RGB"))
    assert first.shape == last.shape and not np.array_equal(first, last)


def test_bad_input(grid, tmp_path):
    sht = grid[0]
    with pytest.raises(ValueError, match=r"field must have shape \(nlat, nlon\) = \(8, 16\)"):
        fields.plot_map(sht, np.zeros((8, 15)))
    with pytest.raises(ValueError, match="grid must be an SHT or a"):
        fields.plot_globe("grid", np.zeros((8, 16)))
    with pytest.raises(ValueError, match=r"center must be \(latitude, longitude\)"):
        fields.plot_globe(sht, np.zeros((8, 16)), center=(100.0, 0.0))
    with pytest.raises(ValueError, match=r"frames must have shape \(n_frames, nlat, nlon\)"):
        fields.animate(sht, np.zeros((8, 16)), tmp_path / "a.gif")
    with pytest.raises(ValueError, match="kind must be 'map' or 'globe'"):
        fields.animate(sht, np.zeros((2, 8, 16)), tmp_path / "a.gif", kind="mollweide")
    with pytest.raises(ValueError, match="fps must be a positive number"):
        fields.animate(sht, np.zeros((2, 8, 16)), tmp_path / "a.gif", fps=0)
    with pytest.raises(ValueError, match="does not exist"):
        fields.animate(sht, np.zeros((2, 8, 16)), tmp_path / "missing" / "a.gif")
