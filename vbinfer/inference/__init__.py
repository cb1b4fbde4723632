"""Inference: problems as numpyro models, one :func:`fit` over NUTS, SVI, MAP and Laplace,
and diagnostics."""

from vbinfer.inference.diagnostics import (
    posterior_predictive,
    posterior_shrinkage,
    posterior_zscore,
    summary,
)
from vbinfer.inference.fit import METHODS, fit
from vbinfer.inference.problem import (
    Problem,
    guard_finite,
    make_problem,
    problem_from_model,
    simulate_data,
)
from vbinfer.inference.result import FitResult, load_result
from vbinfer.inference.sbc import SBCResult, rank_uniformity, sbc
from vbinfer.inference.simulator_problem import simulator_problem, with_values

__all__ = [
    "METHODS",
    "FitResult",
    "Problem",
    "SBCResult",
    "fit",
    "guard_finite",
    "load_result",
    "make_problem",
    "posterior_predictive",
    "posterior_shrinkage",
    "posterior_zscore",
    "problem_from_model",
    "rank_uniformity",
    "sbc",
    "simulate_data",
    "simulator_problem",
    "summary",
    "with_values",
]

# Many-parameter network fits and identifiability at a MAP (issue 8, items 5 and 6).
from vbinfer.inference import transforms
from vbinfer.inference.identifiability import (
    Identifiability,
    Profile,
    Spectrum,
    fisher_information,
    hessian,
    identifiability,
    profile_likelihood,
    spectrum,
)
from vbinfer.inference.network_fit import (
    NetworkFit,
    NetworkProblem,
    fit_network,
    make_network_problem,
)

__all__ += [
    "Identifiability",
    "NetworkFit",
    "NetworkProblem",
    "Profile",
    "Spectrum",
    "fisher_information",
    "fit_network",
    "hessian",
    "identifiability",
    "make_network_problem",
    "profile_likelihood",
    "spectrum",
    "transforms",
]

# Likelihood helpers and prior draws (issue 4).
from vbinfer.inference import likelihoods  # noqa: E402
from vbinfer.inference.diagnostics import sample_prior  # noqa: E402
from vbinfer.inference.likelihoods import Observation  # noqa: E402

__all__ += ["Observation", "likelihoods", "sample_prior"]
