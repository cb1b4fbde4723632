"""The report every workflow returns: a table of diagnostics, headline metrics and the files
it wrote."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["WorkflowReport", "check_run_options", "format_table"]


def _plain(value: Any) -> Any:
    """A JSON-friendly copy of ``value`` (numpy / jax scalars and arrays become Python)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        arr = np.asarray(value)
        return arr.item() if arr.ndim == 0 else arr.tolist()
    return value


def format_table(rows: Sequence[dict[str, Any]], digits: int = 3) -> str:
    """Format rows of equal keys as a fixed-width text table.

    Parameters
    ----------
    rows : sequence of dict
        One dict per row; the keys of the first row are the columns.
    digits : int
        Significant digits of floats.

    Returns
    -------
    str
        The table, one line per row after a header and a rule.

    Examples
    --------
    >>> print(format_table([{"name": "a", "z": 0.51234}]))
    name  z
    ----  -----
    a     0.512
    """
    if not rows:
        return "(empty)"
    cols = list(rows[0])

    def cell(v: Any) -> str:
        if isinstance(v, float | np.floating):
            return f"{float(v):.{digits}g}"
        return str(v)

    cells = [[cell(r.get(c, "")) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)).rstrip(),
        "  ".join("-" * w for w in widths).rstrip(),
    ]
    lines += [
        "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    return "\n".join(lines)


@dataclass
class WorkflowReport:
    """What a workflow run returns and prints.

    Attributes
    ----------
    name : str
        Workflow name (``"mvar"``, ``"eeg"``, ``"field"``, ``"sweep"``).
    rows : list of dict
        The diagnostics table, one dict per parameter (or per grid point, per backend).
    metrics : dict
        Headline numbers (errors, minimum ESS, maximum R-hat, wall times in s, ...).
    files : list of Path
        Files the run wrote (plots, results).
    passed : bool or None
        Whether the run met the workflow's own recovery criteria; ``None`` when it has none.
    """

    name: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    passed: bool | None = None

    def format(self) -> str:
        """The report as text: a title, the table and the metrics."""
        lines = [f"vbinfer workflow: {self.name}", "", format_table(self.rows), ""]
        lines += [f"{k}: {_plain(v)}" for k, v in self.metrics.items()]
        if self.passed is not None:
            lines.append(f"recovery criteria met: {self.passed}")
        if self.files:
            lines += ["", "wrote:"] + [f"  {p}" for p in self.files]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict of the report."""
        return _plain(
            {
                "name": self.name,
                "rows": self.rows,
                "metrics": self.metrics,
                "files": self.files,
                "passed": self.passed,
            }
        )

    def save_json(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` to ``path`` as JSON and return the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2))
        return path


def check_run_options(backend: str, backends: tuple[str, ...], num_samples: int | None) -> None:
    """The checks every workflow's ``run`` makes of its ``backend`` and ``num_samples``."""
    if backend not in backends:
        raise ValueError(f"backend must be one of {backends}, got {backend!r}")
    if num_samples is not None and (
        isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1
    ):
        raise ValueError(f"num_samples must be a positive integer or None, got {num_samples!r}")
