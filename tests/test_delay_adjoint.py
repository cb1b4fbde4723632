"""The hand-written adjoint of delayed coupling (``make_simulator(delay_adjoint="inplace")``).

It must give the values and gradients of JAX's own derivative (``"autodiff"``) to rounding,
for dense and sparse networks, integer and fractional lags, with block checkpointing, under
``vmap``, and leave the same final state; forward mode, forward over reverse (Hessians) and
reverse over reverse must agree with JAX's own derivatives too.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vbinfer as vb
from vbinfer import network

N = 5
RNG = np.random.default_rng(3)
W = RNG.uniform(0.0, 1.0, (N, N))
np.fill_diagonal(W, 0.0)
W[0, 3] = 0.0  # one missing edge, so the sparse network differs from the dense one
L = RNG.uniform(1.0, 12.0, (N, N))
SPARSE = network.to_sparse(vb.make_network(W, L, speed=2.0))


def _loss_fn(adjoint: str, lag_mode: str, sparse: bool, checkpoint: bool):
    sim = vb.make_simulator(
        vb.models.mpr,
        dt=0.05,
        num_steps=240,
        max_lag=int(12.0 / 2.0 / 0.05) + 2,
        lag_mode=lag_mode,
        noise=vb.AdditiveNoise(0.05),
        sample_every=4,
        checkpoint=checkpoint,
        block_steps=60 if checkpoint else None,
        delay_adjoint=adjoint,
    )

    def loss(eta, a, speed, weights):
        if sparse:
            net = dataclasses.replace(
                SPARSE,
                values=weights[np.asarray(SPARSE.rows), np.asarray(SPARSE.cols)],
                speed=speed,
            )
        else:
            net = vb.make_network(weights, L, speed=speed)
        p = vb.SimParams(vb.models.MPRParams(eta=eta), vb.coupling.LinearParams(a=a))
        res = sim.run(jax.random.key(1), p, net)
        # the final buffer enters the loss: the state to resume from must match too
        return jnp.mean(res.outputs["tavg"][:, 0] ** 2) + jnp.mean(res.final.buffer**2)

    return loss


ARGS = (-4.6, 0.7, 2.0, W)


@pytest.mark.parametrize(
    "lag_mode, sparse, checkpoint",
    [("nearest", False, False), ("linear", False, True), ("linear", True, False)],
)
def test_inplace_adjoint_equals_autodiff(x64, lag_mode, sparse, checkpoint):
    args = tuple(jnp.asarray(a, jnp.float64) for a in ARGS)
    out = {}
    for adjoint in ("autodiff", "inplace"):
        f = _loss_fn(adjoint, lag_mode, sparse, checkpoint)
        out[adjoint] = jax.jit(jax.value_and_grad(f, argnums=(0, 1, 2, 3)))(*args)
    (v0, g0), (v1, g1) = out["autodiff"], out["inplace"]
    assert float(v0) == float(v1)  # the forward pass is the same computation
    for name, a, b in zip(("eta", "a", "speed", "weights"), g0, g1, strict=True):
        assert np.all(np.isfinite(np.asarray(b))), name
        scale = float(jnp.max(jnp.abs(a)))
        # every gradient is informative, except speed with whole-step lags (exactly zero)
        if name == "speed" and lag_mode == "nearest":
            assert scale == 0.0 and float(jnp.max(jnp.abs(b))) == 0.0
            continue
        assert scale > 0, name
        assert float(jnp.max(jnp.abs(a - b))) <= 1e-10 * scale, name


def test_inplace_adjoint_under_vmap_and_split_runs(x64):
    f0 = _loss_fn("autodiff", "nearest", False, False)
    f1 = _loss_fn("inplace", "nearest", False, False)
    etas = jnp.asarray([-5.0, -4.6, -4.2])
    rest = tuple(jnp.asarray(a, jnp.float64) for a in ARGS[1:])
    g0 = jax.jit(jax.vmap(jax.grad(f0), in_axes=(0, None, None, None)))(etas, *rest)
    g1 = jax.jit(jax.vmap(jax.grad(f1), in_axes=(0, None, None, None)))(etas, *rest)
    np.testing.assert_allclose(np.asarray(g1), np.asarray(g0), rtol=1e-10)

    # a batched run (batch innermost: several columns per history row), weights perturbed too
    def batch_loss(adjoint):
        sim = vb.make_simulator(
            vb.models.mpr,
            dt=0.05,
            num_steps=120,
            max_lag=122,
            noise=vb.AdditiveNoise(0.05),
            delay_adjoint=adjoint,
        )

        def loss(etas, weights):
            p = vb.SimParams(vb.models.MPRParams(eta=etas), vb.coupling.LinearParams(a=0.7))
            net = vb.make_network(weights, L, speed=2.0)
            res = sim.run_batch(jax.random.key(4), p, net, batch_size=etas.shape[0])
            return jnp.mean(res.outputs["tavg"][:, 0] ** 2)

        return jax.jit(jax.grad(loss, argnums=(0, 1)))

    w64 = jnp.asarray(W, jnp.float64)
    for a, b in zip(
        batch_loss("autodiff")(etas, w64), batch_loss("inplace")(etas, w64), strict=True
    ):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-10, atol=1e-14)

    # resuming from the final state of the first half gives the whole run
    kw = dict(dt=0.05, max_lag=122, noise=vb.AdditiveNoise(0.05), delay_adjoint="inplace")
    whole = vb.make_simulator(vb.models.mpr, num_steps=240, **kw)
    half = vb.make_simulator(vb.models.mpr, num_steps=120, **kw)
    net = vb.make_network(W, L, speed=2.0)
    p = vb.SimParams(vb.models.MPRParams(eta=-4.6), vb.coupling.LinearParams(a=0.7))
    z = jax.random.normal(jax.random.key(2), whole.noise_shape(N), jnp.float64)
    full = whole.run(z, p, net)
    first = half.run(z[:120], p, net)
    second = half.run(z[120:], p, net, first.final)
    np.testing.assert_array_equal(
        np.concatenate([first.outputs["tavg"], second.outputs["tavg"]]), full.outputs["tavg"]
    )
    np.testing.assert_array_equal(second.final.buffer, full.final.buffer)
    ref = vb.make_simulator(vb.models.mpr, num_steps=240, **{**kw, "delay_adjoint": "autodiff"})
    np.testing.assert_array_equal(ref.run(z, p, net).final.buffer, full.final.buffer)


@pytest.mark.parametrize(
    "lag_mode, sparse", [("nearest", False), ("linear", False), ("linear", True)]
)
def test_inplace_adjoint_in_forward_mode_and_second_order(x64, lag_mode, sparse):
    """jacfwd, the Hessian (forward over reverse) and reverse over reverse, every argument."""
    args = tuple(jnp.asarray(a, jnp.float64) for a in ARGS)
    f = {a: _loss_fn(a, lag_mode, sparse, False) for a in ("autodiff", "inplace")}
    # forward mode in every argument, the weights included (a Jacobian-vector product each)
    for argnum in range(4):
        j0 = jax.jit(jax.jacfwd(f["autodiff"], argnums=argnum))(*args)
        j1 = jax.jit(jax.jacfwd(f["inplace"], argnums=argnum))(*args)
        scale = float(jnp.max(jnp.abs(j0)))
        assert float(jnp.max(jnp.abs(j1 - j0))) <= 1e-10 * max(scale, 1e-300), argnum
    # second order in (eta, a, speed): forward over reverse and reverse over reverse
    g = lambda loss: lambda th: loss(th[0], th[1], th[2], args[3])  # noqa: E731
    th = jnp.stack(args[:3])
    h0 = jax.jit(jax.hessian(g(f["autodiff"])))(th)
    h_fwd = jax.jit(jax.hessian(g(f["inplace"])))(th)
    h_rev = jax.jit(jax.jacrev(jax.jacrev(g(f["inplace"]))))(th)
    scale = float(jnp.max(jnp.abs(h0)))
    assert scale > 0
    for h in (h_fwd, h_rev):
        assert np.all(np.isfinite(np.asarray(h)))
        assert float(jnp.max(jnp.abs(h - h0))) <= 1e-9 * scale
    # a Hessian-vector product in the weights (forward over reverse through the weights' terms)
    v = jnp.asarray(RNG.normal(size=W.shape))
    hvp = lambda loss: jax.jvp(jax.grad(loss, argnums=3), args, (0.0, 0.0, 0.0, v))[1]  # noqa: E731
    hv0 = jax.jit(lambda *a: hvp(f["autodiff"]))(*args)
    hv1 = jax.jit(lambda *a: hvp(f["inplace"]))(*args)
    assert float(jnp.max(jnp.abs(hv1 - hv0))) <= 1e-9 * float(jnp.max(jnp.abs(hv0)))


def test_delay_adjoint_choices_are_checked():
    with pytest.raises(ValueError, match="delay_adjoint='inplace' needs delays"):
        vb.make_simulator(vb.models.mpr, dt=0.1, num_steps=10, delay_adjoint="inplace")
    with pytest.raises(ValueError, match="coupling_stages='held'"):
        vb.make_simulator(
            vb.models.mpr,
            dt=0.1,
            num_steps=10,
            max_lag=5,
            coupling_stages="per_stage",
            delay_adjoint="inplace",
        )
    with pytest.raises(ValueError, match="delay_adjoint must be one of"):
        vb.make_simulator(vb.models.mpr, dt=0.1, num_steps=10, max_lag=5, delay_adjoint="fast")
    # "auto", the default, stays where the in-place adjoint can apply (dense networks at run
    # time) and is "autodiff" elsewhere
    mk = lambda **kw: vb.make_simulator(vb.models.mpr, dt=0.1, num_steps=10, **kw)  # noqa: E731
    assert mk(max_lag=5).delay_adjoint == "auto"
    assert mk().delay_adjoint == "autodiff"
    assert mk(max_lag=5, coupling_stages="per_stage").delay_adjoint == "autodiff"
    assert mk(max_lag=5, delay_adjoint="autodiff").delay_adjoint == "autodiff"
