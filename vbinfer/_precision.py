"""Precision of vbinfer's matrix products.

On GPUs, JAX's default precision for float32 matrix products is TensorFloat-32 (a 10-bit
mantissa, relative errors near 1e-3): the spherical harmonic transforms would miss their 1e-5
round trip, correlations and coupling sums would differ between jitted and eager code. Every
product that vbinfer computes asks for full float32 (``HIGHEST``). CPUs compute float32
products in full precision anyway, so this changes nothing there.
"""

from __future__ import annotations

import jax

HIGHEST = jax.lax.Precision.HIGHEST
