"""Shape aliases used across vbinfer.

Arrays are described in docstrings by their shapes, e.g. ``(n_states, n_nodes, *batch)``.
These aliases keep type hints short and honest: ``ArrayLike`` in, ``Array`` out.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import jax

Array: TypeAlias = jax.Array
ArrayLike: TypeAlias = jax.typing.ArrayLike
PRNGKey: TypeAlias = jax.Array
PyTree: TypeAlias = Any

__all__ = ["Array", "ArrayLike", "PRNGKey", "PyTree"]
