"""Delayed coupling: arrival times, orientation, lag rounding, buffer limits."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests._models import RelayParams, relay
from vbinfer import network, simulate
from vbinfer.coupling import LinearParams
from vbinfer.monitors import subsample

DT = 1.0


def _relay_sim(max_lag: int, steps: int = 40, lag_mode: str = "nearest"):
    return simulate.make_simulator(
        relay,
        dt=DT,
        num_steps=steps,
        integrator="euler",
        max_lag=max_lag,
        lag_mode=lag_mode,
        monitors=[subsample()],
    )


def _pulse_run(weights, lengths, source: int, max_lag: int, lag_mode="nearest", steps=40):
    n = weights.shape[0]
    sim = _relay_sim(max_lag, steps, lag_mode)
    x0 = np.zeros((1, n))
    x0[0, source] = 1.0
    hist = np.zeros((max_lag, 1, n))
    res = sim.run(
        None,
        simulate.SimParams(RelayParams(tau=DT), LinearParams(a=1.0)),
        network.make_network(weights, lengths, speed=1.0),
        jnp.asarray(x0),
        history=jnp.asarray(hist),
    )
    # row k of the output is the state after step k + 1
    return np.vstack([x0, np.asarray(res.outputs["raw"][:, 0, :])])


def test_pulse_on_a_chain_arrives_at_each_delay(x64):
    # chain 0 -> 1 -> 2 -> 3 with lags 3, 5, 2 steps; the relay adds one step per hop
    w = np.zeros((4, 4))
    lengths = np.zeros((4, 4))
    for (i, j), lag in zip([(1, 0), (2, 1), (3, 2)], [3, 5, 2], strict=True):
        w[i, j] = 1.0
        lengths[i, j] = lag * DT  # speed 1 mm/ms
    x = _pulse_run(w, lengths, source=0, max_lag=6)
    arrivals = [int(np.flatnonzero(x[:, k])[0]) for k in range(4)]
    assert arrivals == [0, 0 + 3 + 1, 4 + 5 + 1, 10 + 2 + 1]
    for k in range(1, 4):  # exactly one pulse of height 1 at each node
        assert np.count_nonzero(x[:, k]) == 1
        assert x[arrivals[k], k] == 1.0


def test_orientation_row_receives_from_column(x64):
    w = np.zeros((2, 2))
    w[1, 0] = 1.0  # from 0 to 1 only
    lengths = np.full((2, 2), 2.0)
    from0 = _pulse_run(w, lengths, source=0, max_lag=2)
    from1 = _pulse_run(w, lengths, source=1, max_lag=2)
    assert from0[3, 1] == 1.0  # 0 -> 1 arrives after lag 2 + relay 1
    assert np.count_nonzero(from1[:, 0]) == 0  # 1 -> 0 has no edge


@pytest.mark.parametrize(
    ("delay", "mode", "lag"),
    [
        (2.4, "nearest", 2),
        (2.6, "nearest", 3),
        (2.5, "nearest", 2),
        (2.6, "floor", 2),
        (3.0, "floor", 3),
    ],
)
def test_lag_rounding(x64, delay, mode, lag):
    # nearest: round half to even (numpy.rint), as TVB; floor: round down, as vbjax
    w = np.array([[0.0, 0.0], [1.0, 0.0]])
    lengths = np.full((2, 2), delay)
    x = _pulse_run(w, lengths, source=0, max_lag=4, lag_mode=mode)
    assert int(np.flatnonzero(x[:, 1])[0]) == lag + 1
    assert int(network.lags_in_steps(np.array(delay), 1.0, DT, mode)) == lag


def test_linear_lag_interpolates(x64):
    w = np.array([[0.0, 0.0], [1.0, 0.0]])
    x = _pulse_run(w, np.full((2, 2), 2.25), source=0, max_lag=3, lag_mode="linear")
    # lag 2.25 -> 0.75 of the pulse at lag 2 and 0.25 at lag 3
    np.testing.assert_allclose(x[3, 1], 0.75, rtol=1e-12)
    np.testing.assert_allclose(x[4, 1], 0.25, rtol=1e-12)
    assert np.count_nonzero(x[:, 1]) == 2


def test_zero_delays_equal_undelayed_network(x64):
    rng = np.random.default_rng(0)
    w = rng.uniform(0, 1, (5, 5))
    from vbinfer.models import MPRParams, mpr

    kw = dict(dt=0.01, num_steps=200, integrator="heun")
    net = network.make_network(w, np.zeros((5, 5)), speed=2.0)
    p = simulate.SimParams(MPRParams(), LinearParams(a=0.3))
    for stages in ("held", "per_stage"):
        a = simulate.make_simulator(mpr, max_lag=0, coupling_stages=stages, **kw).run(None, p, net)
        b = simulate.make_simulator(mpr, max_lag=None, coupling_stages=stages, **kw).run(
            None, p, net
        )
        np.testing.assert_allclose(a.outputs["tavg"], b.outputs["tavg"], rtol=1e-13, atol=1e-15)


def test_concrete_lag_beyond_buffer_is_an_error():
    sim = _relay_sim(max_lag=3)
    net = network.make_network(np.ones((2, 2)), np.full((2, 2), 5.0), speed=1.0)
    with pytest.raises(ValueError, match="max_lag=3"):
        sim.run(None, simulate.SimParams(RelayParams()), net)


def test_traced_lag_beyond_buffer_is_clipped_and_can_warn(x64):
    w = np.array([[0.0, 0.0], [1.0, 0.0]])
    lengths = np.full((2, 2), 5.0)
    sim = simulate.make_simulator(
        relay,
        dt=DT,
        num_steps=12,
        integrator="euler",
        max_lag=3,
        monitors=[subsample()],
        warn_on_clip=True,
    )

    @jax.jit
    def run(speed):
        x0 = jnp.zeros((1, 2)).at[0, 0].set(1.0)
        res = sim.run(
            None,
            simulate.SimParams(RelayParams(), LinearParams(a=1.0)),
            network.Network(jnp.asarray(w), jnp.asarray(lengths), speed),
            x0,
            history=jnp.zeros((3, 1, 2)),
        )
        return res.outputs["raw"][:, 0, 1]

    with pytest.warns(RuntimeWarning, match="exceeds max_lag=3"):
        y = np.asarray(jax.block_until_ready(run(1.0)))
        jax.effects_barrier()
    assert int(np.flatnonzero(y)[0]) + 1 == 3 + 1  # clipped to lag 3


def test_sparse_equals_dense(x64):
    rng = np.random.default_rng(1)
    w = rng.uniform(0, 1, (6, 6)) * (rng.uniform(size=(6, 6)) < 0.4)
    lengths = rng.uniform(0, 5, (6, 6))
    from vbinfer.models import MPRParams, mpr

    net = network.make_network(w, lengths, speed=1.0)
    p = simulate.SimParams(MPRParams(), LinearParams(a=0.5))
    for max_lag, mode in [(None, "nearest"), (500, "nearest"), (501, "linear")]:
        sim = simulate.make_simulator(mpr, dt=0.01, num_steps=300, max_lag=max_lag, lag_mode=mode)
        a = sim.run(None, p, net).outputs["tavg"]
        b = sim.run(None, p, network.to_sparse(net)).outputs["tavg"]
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_history_is_used(x64):
    # node 1 receives node 0's past: a history pulse at step -2 arrives after lag 3
    w = np.array([[0.0, 0.0], [1.0, 0.0]])
    sim = _relay_sim(max_lag=4, steps=8)
    hist = np.zeros((4, 1, 2))
    hist[2, 0, 0] = 1.0  # steps -4, -3, -2, -1: index 2 is step -2
    res = sim.run(
        None,
        simulate.SimParams(RelayParams(), LinearParams(a=1.0)),
        network.make_network(w, np.full((2, 2), 3.0), speed=1.0),
        jnp.zeros((1, 2)),
        history=jnp.asarray(hist),
    )
    y = np.asarray(res.outputs["raw"][:, 0, 1])
    # arrives in coupling at step -2 + 3 = 1, relayed into the state after step 2 (row 1)
    assert np.flatnonzero(y).tolist() == [1]


def test_history_shape_is_checked():
    sim = _relay_sim(max_lag=4, steps=8)
    with pytest.raises(ValueError, match="history must have shape"):
        sim.run(
            None,
            simulate.SimParams(RelayParams()),
            network.make_network(np.ones((2, 2)), np.ones((2, 2)), speed=1.0),
            jnp.zeros((1, 2)),
            history=jnp.zeros((3, 1, 2)),
        )
