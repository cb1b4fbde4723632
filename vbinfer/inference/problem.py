"""Inference problems: priors + simulator + observation model + likelihood, as a numpyro model.

A :class:`Problem` is a numpyro model with names attached: which sample sites are the unknowns
(parameters and initial conditions), which site is the observed data, and optionally the true
values for simulation studies. Build one with :func:`make_problem` from priors and a pure
simulator function, or wrap a numpyro model you wrote yourself with :func:`problem_from_model`
(anything numpyro accepts: hierarchical priors, deterministic sites, several observed sites).

Priors are given either as a mapping ``{name: numpyro distribution}`` (independent priors) or
as a *prior function*: a numpyro sub-model, called without arguments, that samples whatever it
needs and returns the named values, e.g. a hierarchical prior on a per-node excitability::

    def priors():
        mu = numpyro.sample("mu", dist.Normal(-5.0, 1.0))      # population mean
        tau = numpyro.sample("tau", dist.HalfNormal(0.5))      # population spread
        eta = numpyro.sample("model.eta", dist.Normal(mu, tau).expand([n]).to_event(1))
        return {"model.eta": eta}

Every latent sample site (here ``mu``, ``tau`` and ``model.eta``) is an unknown of the problem;
a returned value that is not a sample site (e.g. a non-centred ``mu + tau * z``) is recorded as
a deterministic site under its name, so it appears in the fit's samples too. Problems are
checked when built, by tracing the model once abstractly (``jax.eval_shape``: nothing is
compiled or run), and the data shape is read from that trace unless given.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist

from vbinfer._typing import Array

__all__ = ["Priors", "Problem", "guard_finite", "make_problem", "problem_from_model"]

Priors = Mapping[str, dist.Distribution] | Callable[[], Mapping[str, Array]]
"""Priors: ``{name: distribution}`` or a numpyro prior function ``() -> {name: value}``."""


class Problem(NamedTuple):
    """A Bayesian inference problem.

    Attributes
    ----------
    model: numpyro model ``model(data=None)``; with ``data=None`` it samples synthetic data.
    param_names: names of the unknown sample sites, in a fixed order.
    obs_name: name of the observed site.
    data_shape: shape of the observed data (checked before any compilation), or ``None``.
    truth: true values per parameter name (for simulation studies), or ``None``.
    """

    model: Callable[..., Any]
    param_names: tuple[str, ...]
    obs_name: str = "obs"
    data_shape: tuple[int, ...] | None = None
    truth: dict[str, Array] | None = None


def guard_finite(prediction: Array, name: str = "diverged") -> Array:
    """Make a diverged simulation a ``-inf`` log density instead of NaN.

    Inside a numpyro model: adds ``factor(name, -inf)`` when ``prediction`` has any non-finite
    entry and returns a copy with those entries replaced by 0, so that NaN never reaches the
    likelihood (NUTS then rejects the proposal and counts a divergence).
    """
    ok = jnp.all(jnp.isfinite(prediction))
    numpyro.factor(name, jnp.where(ok, 0.0, -jnp.inf))
    return jnp.where(jnp.isfinite(prediction), prediction, 0.0)


class _ModelSites(NamedTuple):
    """What an abstract trace of a numpyro model shows (see :func:`model_sites`)."""

    latent: tuple[str, ...]  # unobserved sample sites, in order
    deterministic: tuple[str, ...]  # deterministic sites, in order
    shapes: dict[str, tuple[int, ...]]  # every sample / deterministic site's shape
    returned: Any  # the model's return value (ShapeDtypeStructs)


def model_sites(model: Callable[..., Any], *args: Any, **kwargs: Any) -> _ModelSites:
    """Trace ``model(*args, **kwargs)`` once abstractly (``jax.eval_shape``, nothing runs).

    Returns its latent (unobserved) sample sites, deterministic sites, every site's shape and
    the shapes of its return value.
    """
    meta: dict[str, tuple[str, bool]] = {}

    def traced(key):
        with numpyro.handlers.trace() as tr, numpyro.handlers.seed(rng_seed=key):
            out = model(*args, **kwargs)
        meta.update({n: (site["type"], bool(site.get("is_observed"))) for n, site in tr.items()})
        values = {
            n: site["value"]
            for n, site in tr.items()
            if site["type"] in ("sample", "deterministic")
        }
        return out, values

    returned, values = jax.eval_shape(traced, jax.random.key(0))
    latent = tuple(n for n, (t, obs) in meta.items() if t == "sample" and not obs)
    det = tuple(n for n, (t, _) in meta.items() if t == "deterministic")
    # eval_shape returns dicts with sorted keys: keep the order the model creates its sites in
    shapes = {n: tuple(values[n].shape) for n in meta if n in values}
    return _ModelSites(latent, det, shapes, returned)


def prior_function(priors: Priors) -> Callable[[], dict[str, Array]]:
    """A prior function ``() -> {name: value}`` to call inside a numpyro model.

    ``priors`` is ``{name: numpyro distribution}`` (independent priors, sampled in order) or
    already a prior function (a numpyro sub-model returning named values, e.g. hierarchical
    priors); returned values that are not sample sites are recorded as deterministic sites.
    Raises ``ValueError`` for anything else, or when the function's return value is not a
    mapping of names to arrays, before anything is compiled.

    Examples
    --------
    >>> import numpyro.distributions as dist
    >>> fn = prior_function({"a": dist.Normal(0.0, 1.0)})
    >>> sorted(model_sites(fn).latent)
    ['a']
    """
    if isinstance(priors, Mapping):
        priors = dict(priors)
        for name, d in priors.items():
            if not isinstance(d, dist.Distribution):
                raise ValueError(
                    f"priors[{name!r}] must be a numpyro Distribution, got {type(d).__name__}"
                )

        def independent() -> dict[str, Array]:
            return {name: numpyro.sample(name, d) for name, d in priors.items()}

        return independent
    if not callable(priors):
        raise ValueError(
            "priors must be a mapping {name: numpyro Distribution} or a prior function "
            f"() -> {{name: value}}, got {type(priors).__name__}"
        )
    sites = model_sites(priors)
    if not isinstance(sites.returned, Mapping) or not sites.returned:
        raise ValueError(
            "priors: a prior function must return a non-empty mapping {name: value}, got "
            f"{type(sites.returned).__name__}"
        )
    named = set(sites.latent) | set(sites.deterministic)
    extra = tuple(n for n in sites.returned if n not in named)
    fn = priors

    def with_deterministic() -> dict[str, Array]:
        values = dict(fn())
        for name in extra:
            values[name] = numpyro.deterministic(name, values[name])
        return values

    return with_deterministic


def prior_shapes(priors: Priors) -> dict[str, tuple[int, ...]]:
    """Shapes of the named values the priors produce (abstract trace, nothing runs)."""
    returned = model_sites(prior_function(priors)).returned
    return {name: tuple(jnp.shape(v)) for name, v in returned.items()}


def unknowns(
    model: Callable[..., Any], obs_name: str
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[int, ...]]:
    """The unknowns of a problem's model, its latent sample sites and its observed shape.

    Unknowns are the latent sample sites and the deterministic sites but ``obs_name``, in the
    order the model creates them; the model is traced once abstractly with ``data=None``.
    """
    sites = model_sites(model, data=None)
    if obs_name not in sites.shapes:
        raise ValueError(
            f"obs_name {obs_name!r} is not a site of the model; its sites are {list(sites.shapes)}"
        )
    order = [n for n in sites.shapes if n in sites.latent or n in sites.deterministic]
    names = tuple(n for n in order if n != obs_name)
    latent = tuple(n for n in sites.latent if n != obs_name)
    return names, latent, sites.shapes[obs_name]


def make_problem(
    priors: Priors,
    simulate: Callable[[dict[str, Array]], Array],
    *,
    noise_sd: float | dist.Distribution = 1.0,
    data_shape: tuple[int, ...] | None = None,
    truth: Mapping[str, Any] | None = None,
    obs_name: str = "obs",
) -> Problem:
    """A problem with a Gaussian likelihood on ``simulate(theta)``.

    Parameters
    ----------
    priors:
        ``{name: numpyro distribution}`` (use ``.expand([n]).to_event(1)`` for per-node
        vectors), or a prior function ``() -> {name: value}`` written with ``numpyro.sample``
        (hierarchical priors; see the module docstring).
    simulate:
        Pure function ``theta -> prediction`` (the simulator and the observation model, e.g. a
        vbinfer simulation followed by a log power spectrum), ``theta`` the priors' values.
    noise_sd:
        Standard deviation of the Gaussian observation noise: a known number, or a prior
        distribution to infer it (site ``"noise_sd"``).
    data_shape:
        Shape of the data (default: the prediction's shape); :func:`vbinfer.inference.fit`
        rejects data of another shape before compiling anything.
    truth:
        True parameter values for simulation studies (shrinkage, z-scores, SBC).
    obs_name:
        Name of the observed site.

    Returns
    -------
    :class:`Problem` whose ``param_names`` are the priors' latent sites (hyperparameters
    included), values returned by a prior function, then ``"noise_sd"`` when it is inferred.

    Examples
    --------
    >>> import numpyro.distributions as dist
    >>> p = make_problem({"a": dist.Normal(0, 1)}, lambda th: th["a"] * jnp.ones(3))
    >>> p.param_names, p.data_shape
    (('a',), (3,))
    """
    prior_fn = prior_function(priors)
    infer_sd = isinstance(noise_sd, dist.Distribution)
    if not infer_sd and not float(noise_sd) > 0:
        raise ValueError(f"noise_sd must be > 0 or a prior distribution, got {noise_sd!r}")

    def model(data: Array | None = None) -> None:
        theta = prior_fn()
        pred = guard_finite(simulate(theta))
        sd = numpyro.sample("noise_sd", noise_sd) if infer_sd else noise_sd
        numpyro.sample(obs_name, dist.Normal(pred, sd), obs=data)

    return checked_problem(model, obs_name, data_shape, truth)


def checked_problem(
    model: Callable[..., Any],
    obs_name: str,
    data_shape: tuple[int, ...] | None,
    truth: Mapping[str, Any] | None,
    param_names: tuple[str, ...] | None = None,
) -> Problem:
    """Check a model by an abstract trace and wrap it as a :class:`Problem`.

    Reads the unknowns (or checks ``param_names`` against them), the observed site and its
    shape (the default ``data_shape``), and checks that ``truth`` only names latent sample
    sites (:func:`simulate_data` conditions on them). Raises ``ValueError`` otherwise.
    """
    names, latent, obs_shape = unknowns(model, obs_name)
    if param_names is not None:
        missing = [n for n in param_names if n not in names]
        if missing:
            raise ValueError(
                f"param_names {missing} are not latent or deterministic sites of the model; "
                f"its unknowns are {list(names)}"
            )
        names = tuple(param_names)
    shape = obs_shape if data_shape is None else tuple(int(n) for n in data_shape)
    truth_arr = None if truth is None else {k: jnp.asarray(v) for k, v in truth.items()}
    if truth_arr is not None:
        # simulate_data conditions the model on the truth: only sample sites can be conditioned
        bad = [k for k in truth_arr if k not in latent]
        if bad:
            raise ValueError(
                f"truth has values for {bad}, which are not latent sample sites of the model "
                f"(those are {list(latent)}); give the values of the sample sites they derive "
                "from"
            )
    return Problem(model, names, obs_name, shape, truth_arr)


def problem_from_model(
    model: Callable[..., Any],
    param_names: tuple[str, ...] | list[str] | None = None,
    *,
    obs_name: str = "obs",
    data_shape: tuple[int, ...] | None = None,
    truth: Mapping[str, Any] | None = None,
) -> Problem:
    """Wrap a numpyro model ``model(data=None)`` written by hand.

    The model may call vbinfer simulators (see :func:`guard_finite` for blow-ups), use any
    numpyro primitive and any prior structure; with ``data=None`` it must sample synthetic
    data at ``obs_name`` (a sample or deterministic site).

    Parameters
    ----------
    model:
        numpyro model with a keyword argument ``data``.
    param_names:
        Sites to report as the unknowns (default: every latent and deterministic site but
        ``obs_name``); all latent sites are sampled whatever this lists, and every site is
        kept in a fit's samples.
    obs_name:
        Name of the observed site.
    data_shape:
        Shape of the data (default: the shape of ``obs_name`` when ``data=None``).
    truth:
        True values per site, for simulation studies.

    Examples
    --------
    >>> import numpyro.distributions as dist
    >>> def model(data=None):
    ...     mu = numpyro.sample("mu", dist.Normal(0.0, 1.0))
    ...     numpyro.sample("obs", dist.Normal(mu, 1.0).expand([5]), obs=data)
    >>> problem_from_model(model).data_shape
    (5,)
    """
    return checked_problem(
        model,
        obs_name,
        data_shape,
        truth,
        None if param_names is None else tuple(param_names),
    )


def simulate_data(
    key: jax.Array, problem: Problem, params: Mapping[str, Any] | None = None
) -> Array:
    """Draw synthetic data from the problem at ``params`` (default: ``problem.truth``)."""
    params = problem.truth if params is None else params
    if params is None:
        raise ValueError("params: give parameter values or build the problem with truth=")
    model = numpyro.handlers.condition(problem.model, data=dict(params))
    tr = numpyro.handlers.trace(numpyro.handlers.seed(model, key)).get_trace()
    return tr[problem.obs_name]["value"]
