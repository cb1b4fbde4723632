"""Neural fields on the sphere: spherical harmonic transforms and isotropic kernels.

:mod:`vbinfer.fields.sht` transforms real fields on a Gauss-Legendre grid to spherical harmonic
coefficients and back (pure JAX, float32 or float64, batched, differentiable);
:mod:`vbinfer.fields.kernels` gives the gains per degree of isotropic local-connectivity kernels
(heat kernel, Gaussian, difference of Gaussians) so that a convolution on the sphere is one
forward and one inverse transform (:func:`apply_kernel`), or, for gains applied many times,
one precomputed matrix product per order (:func:`make_spectral_operator`,
:func:`apply_operator`); :mod:`vbinfer.fields.field` runs any model of :mod:`vbinfer.models` at
every grid point with that local coupling, optional delayed coupling between regions through a
connectome, and noise per point (:func:`make_field_simulator`); :mod:`vbinfer.fields.plots`
draws a field on a map or a globe and animates a run (:func:`plot_map`, :func:`plot_globe`,
:func:`animate`).

Examples
--------
>>> import jax.numpy as jnp
>>> from vbinfer import fields
>>> sht = fields.make_sht(32)
>>> gains = fields.make_kernel_gains("gaussian", sht.lmax, sigma=0.2)
>>> smoothed = fields.apply_kernel(sht, jnp.ones(sht.field_shape), gains)
>>> bool(jnp.allclose(smoothed, 1.0, atol=1e-5))  # a normalised kernel keeps constants
True
"""

from vbinfer.fields import field, kernels, plots, sht
from vbinfer.fields.field import FieldParams, FieldSimulator, make_field_simulator, region_areas
from vbinfer.fields.kernels import apply_kernel, kernel_values, make_kernel_gains
from vbinfer.fields.plots import animate, plot_globe, plot_map
from vbinfer.fields.sht import (
    SHT,
    SpectralOperator,
    analysis,
    apply_operator,
    apply_spectral,
    assoc_legendre,
    grid_lat_lon,
    integrate,
    laplacian_eigenvalues,
    make_sht,
    make_spectral_operator,
    synthesis,
)

__all__ = [
    "SHT",
    "FieldParams",
    "FieldSimulator",
    "SpectralOperator",
    "analysis",
    "animate",
    "apply_kernel",
    "apply_operator",
    "apply_spectral",
    "assoc_legendre",
    "field",
    "grid_lat_lon",
    "integrate",
    "kernel_values",
    "kernels",
    "laplacian_eigenvalues",
    "make_field_simulator",
    "make_kernel_gains",
    "make_sht",
    "make_spectral_operator",
    "plot_globe",
    "plot_map",
    "plots",
    "region_areas",
    "sht",
    "synthesis",
]
