"""Monitors computed inside the loop agree with the same quantities computed afterwards."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests._models import ZeroParams, zero
from vbinfer import integrators, monitors, network, noise, observe, simulate
from vbinfer.coupling import LinearParams
from vbinfer.models import BalloonParams, MPRParams, balloon_dfun, bold_signal, mpr


def test_bold_monitor_matches_direct_integration(x64):
    # constant neural drive 0.5 / s switched on at t = 0: the monitor's Heun steps of one
    # sample period (1 ms) against RK4 at 0.1 ms of the same Balloon equations
    drive, tr = 0.5, 500.0
    sim = simulate.make_simulator(
        zero,
        dt=0.5,
        num_steps=40_000,
        integrator="euler",
        sample_every=2,
        monitors=[monitors.bold(0, gain=1.0, tr_ms=tr)],
    )
    res = sim.run(
        None,
        simulate.SimParams(ZeroParams()),
        network.make_network(np.zeros((1, 1))),
        jnp.full((1, 1), drive),
    )
    y = np.asarray(res.outputs["bold"][:, 0])
    assert y.shape == (40,)

    bp = BalloonParams()
    rest = jnp.array([0.0, 1.0, 1.0, 1.0])
    f = lambda t, s, a: balloon_dfun(s[:, None], jnp.full((1, 1), drive), bp)[:, 0]  # noqa: E731
    states = integrators.odeint(f, rest, 0.0, 0.1, 200_000, save_every=5000)
    ref = np.asarray(bold_signal(states.T, bp))
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-6)
    assert y[-1] > 0.5  # a sustained drive raises the BOLD signal


def test_bold_monitor_rejects_tr_off_the_sample_grid():
    with pytest.raises(ValueError, match="tr_ms must be a positive multiple"):
        simulate.make_simulator(
            zero, dt=0.1, num_steps=100, sample_every=10, monitors=[monitors.bold(tr_ms=1.5)]
        )


def test_fc_accumulator_equals_fc_of_the_series(x64):
    rng = np.random.default_rng(0)
    w = rng.uniform(0, 1, (6, 6))
    net = network.make_network(w, rng.uniform(1, 10, (6, 6)), speed=2.0)
    sim = simulate.make_simulator(
        mpr,
        dt=0.01,
        num_steps=2000,
        max_lag=500,
        noise=noise.AdditiveNoise(0.2, states=(1,)),
        sample_every=10,
        monitors=[
            monitors.temporal_average(name="tavg"),
            monitors.functional_connectivity(0, skip=20),
        ],
    )
    res = sim.run(jax.random.key(0), simulate.SimParams(MPRParams(), LinearParams(a=0.3)), net)
    fc_ref = observe.functional_connectivity(res.outputs["tavg"][20:, 0])
    np.testing.assert_allclose(res.outputs["fc"], fc_ref, rtol=1e-8, atol=1e-10)
    rb = sim.run_batch(
        jax.random.key(0),
        simulate.SimParams(MPRParams(), LinearParams(a=jnp.array([0.3, 0.1]))),
        net,
        batch_size=2,
    )
    for b in range(2):
        ref = observe.functional_connectivity(rb.outputs["tavg"][b, 20:, 0])
        np.testing.assert_allclose(rb.outputs["fc"][b], ref, rtol=1e-8, atol=1e-10)


def test_lead_field_monitor(x64):
    rng = np.random.default_rng(1)
    gain = rng.normal(size=(3, 4))
    net = network.make_network(rng.uniform(0, 1, (4, 4)))
    sim = simulate.make_simulator(
        mpr,
        dt=0.01,
        num_steps=200,
        sample_every=10,
        monitors=[monitors.temporal_average(name="tavg"), monitors.lead_field(gain, variable=0)],
    )
    res = sim.run(None, simulate.SimParams(MPRParams()), net)
    np.testing.assert_allclose(res.outputs["eeg"], res.outputs["tavg"][:, 0] @ gain.T, rtol=1e-12)
    with pytest.raises(ValueError, match="gain_matrix must be"):
        monitors.lead_field(np.ones(3))


def test_variable_indices_by_name():
    assert monitors.variable_indices(("r", "V"), ["V"]) == (1,)
    with pytest.raises(ValueError, match="unknown state variable 'x'"):
        monitors.variable_indices(("r", "V"), ["x"])


def test_bold_monitor_tape_keeps_only_the_balloon_state(x64):
    # reverse mode rematerialises the Balloon step: per sample the tape holds the state and the
    # drive (5 numbers per node), not the ~23 intermediates of two derivatives and the signal
    n, steps = 16, 2000
    net = network.make_network(np.full((n, n), 0.01))

    def temp_mb(mon, key):
        sim = simulate.make_simulator(mpr, dt=0.1, num_steps=steps, monitors=[mon])

        def loss(eta):
            res = sim.run(None, simulate.SimParams(MPRParams(eta=eta)), net)
            return jnp.sum(res.outputs[key])

        c = jax.jit(jax.grad(loss)).lower(-4.6).compile()
        return c.memory_analysis().temp_size_in_bytes / 2**20

    base = temp_mb(monitors.temporal_average((0,)), "tavg")
    extra = temp_mb(monitors.bold(0, gain=1000.0, tr_ms=100.0), "bold") - base
    per_value = extra * 2**20 / (8 * n * steps)  # float64 numbers per node and sample
    assert per_value < 15, per_value  # without remat: ~34
