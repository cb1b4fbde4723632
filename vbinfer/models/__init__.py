"""Neural mass models: one module per model, each a :class:`~vbinfer.models.base.Model`."""

from vbinfer.models.balloon import (
    BalloonParams,
    balloon,
    balloon_dfun,
    balloon_rates,
    bold_coefficients,
    bold_signal,
)
from vbinfer.models.base import Model, apply_bounds, default_state
from vbinfer.models.epileptor2d import Epileptor2DParams, epileptor2d, epileptor2d_dfun
from vbinfer.models.generic_2d import (
    Generic2dOscillatorParams,
    generic_2d_oscillator,
    generic_2d_oscillator_dfun,
)
from vbinfer.models.jansen_rit import (
    JansenRitParams,
    jansen_rit,
    jansen_rit_dfun,
    jansen_rit_eeg,
)
from vbinfer.models.kuramoto import KuramotoModelParams, kuramoto, kuramoto_dfun
from vbinfer.models.larter_breakspear import (
    LarterBreakspearParams,
    larter_breakspear,
    larter_breakspear_dfun,
)
from vbinfer.models.linear import LinearModelParams, linear, linear_dfun, linear_drift_matrix
from vbinfer.models.mpr import MPRParams, mpr, mpr_dfun
from vbinfer.models.stuart_landau import StuartLandauParams, stuart_landau, stuart_landau_dfun
from vbinfer.models.wilson_cowan import WilsonCowanParams, wilson_cowan, wilson_cowan_dfun
from vbinfer.models.wong_wang import (
    ReducedWongWangExcInhParams,
    ReducedWongWangParams,
    reduced_wong_wang,
    reduced_wong_wang_dfun,
    reduced_wong_wang_exc_inh,
    reduced_wong_wang_exc_inh_dfun,
    reduced_wong_wang_exc_inh_rates,
    reduced_wong_wang_rate,
)

__all__ = [
    "BalloonParams",
    "Epileptor2DParams",
    "Generic2dOscillatorParams",
    "JansenRitParams",
    "KuramotoModelParams",
    "LarterBreakspearParams",
    "LinearModelParams",
    "MPRParams",
    "Model",
    "ReducedWongWangExcInhParams",
    "ReducedWongWangParams",
    "StuartLandauParams",
    "WilsonCowanParams",
    "apply_bounds",
    "balloon",
    "balloon_dfun",
    "balloon_rates",
    "bold_coefficients",
    "bold_signal",
    "default_state",
    "epileptor2d",
    "epileptor2d_dfun",
    "generic_2d_oscillator",
    "generic_2d_oscillator_dfun",
    "jansen_rit",
    "jansen_rit_dfun",
    "jansen_rit_eeg",
    "kuramoto",
    "kuramoto_dfun",
    "larter_breakspear",
    "larter_breakspear_dfun",
    "linear",
    "linear_dfun",
    "linear_drift_matrix",
    "mpr",
    "mpr_dfun",
    "reduced_wong_wang",
    "reduced_wong_wang_dfun",
    "reduced_wong_wang_exc_inh",
    "reduced_wong_wang_exc_inh_dfun",
    "reduced_wong_wang_exc_inh_rates",
    "reduced_wong_wang_rate",
    "stuart_landau",
    "stuart_landau_dfun",
    "wilson_cowan",
    "wilson_cowan_dfun",
]
