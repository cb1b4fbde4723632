"""Neural mass models: one module per model, each a :class:`~vbinfer.models.base.Model`."""

from vbinfer.models.balloon import (
    BalloonParams,
    balloon,
    balloon_dfun,
    bold_coefficients,
    bold_signal,
)
from vbinfer.models.base import Model, apply_bounds, default_state
from vbinfer.models.epileptor2d import Epileptor2DParams, epileptor2d, epileptor2d_dfun
from vbinfer.models.jansen_rit import (
    JansenRitParams,
    jansen_rit,
    jansen_rit_dfun,
    jansen_rit_eeg,
)
from vbinfer.models.linear import LinearModelParams, linear, linear_dfun, linear_drift_matrix
from vbinfer.models.mpr import MPRParams, mpr, mpr_dfun
from vbinfer.models.stuart_landau import StuartLandauParams, stuart_landau, stuart_landau_dfun
from vbinfer.models.wilson_cowan import WilsonCowanParams, wilson_cowan, wilson_cowan_dfun

__all__ = [
    "BalloonParams",
    "Epileptor2DParams",
    "JansenRitParams",
    "LinearModelParams",
    "MPRParams",
    "Model",
    "StuartLandauParams",
    "WilsonCowanParams",
    "apply_bounds",
    "balloon",
    "balloon_dfun",
    "bold_coefficients",
    "bold_signal",
    "default_state",
    "epileptor2d",
    "epileptor2d_dfun",
    "jansen_rit",
    "jansen_rit_dfun",
    "jansen_rit_eeg",
    "linear",
    "linear_dfun",
    "linear_drift_matrix",
    "mpr",
    "mpr_dfun",
    "stuart_landau",
    "stuart_landau_dfun",
    "wilson_cowan",
    "wilson_cowan_dfun",
]
