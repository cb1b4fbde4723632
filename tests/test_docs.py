"""The documentation site and the workflow notebooks.

The default suite checks that every notebook is a valid jupytext percent script listed in the
site's navigation; the slow suite builds the site with ``mkdocs build --strict``, which
executes every notebook (mkdocs-jupyter, ``execute: true``), so neither can rot.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.py"))


def test_notebooks_exist_and_parse():
    jupytext = pytest.importorskip("jupytext")
    names = {p.stem for p in NOTEBOOKS}
    assert {"mvar", "eeg", "field", "sweep"} <= names, names
    nav = (ROOT / "mkdocs.yml").read_text()
    for path in NOTEBOOKS:
        nb = jupytext.read(path)
        kinds = [c.cell_type for c in nb.cells]
        assert kinds.count("markdown") >= 3 and kinds.count("code") >= 3, path.name
        assert f"notebooks/{path.name}" in nav, f"{path.name} missing from mkdocs.yml nav"


@pytest.mark.slow
def test_docs_site_builds_and_runs_the_notebooks(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1500,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    for path in NOTEBOOKS:
        page = tmp_path / "notebooks" / path.stem / "index.html"
        assert page.exists(), page
        assert "<img" in page.read_text() or "image/png" in page.read_text(), path.name
    assert (tmp_path / "api" / "simulation" / "index.html").exists()
