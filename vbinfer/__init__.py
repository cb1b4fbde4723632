"""vbinfer: Bayesian inference on virtual-brain models, in JAX.

Differentiable, batched simulators of brain activity (neural mass networks with conduction
delays) and the pieces to turn them into likelihoods. Importing vbinfer changes no JAX
configuration and draws no random numbers.

Examples
--------
>>> import jax, numpy as np
>>> import vbinfer as vb
>>> conn = vb.datasets.load_hagmann84().normalized("max")
>>> net = vb.make_network(conn.weights, conn.lengths, speed=6.0)
>>> sim = vb.make_simulator(vb.models.mpr, dt=0.05, num_steps=200,
...                         max_lag=vb.max_lag_steps(conn.lengths, 6.0, 0.05))
>>> res = sim.run(None, vb.SimParams(vb.models.MPRParams()), net)
>>> res.outputs["tavg"].shape
(200, 2, 84)
"""

from vbinfer import coupling, datasets, delays, integrators, models, monitors, network, noise
from vbinfer.network import Network, SparseNetwork, make_network, max_lag_steps, to_sparse
from vbinfer.noise import AdditiveNoise, ColouredNoise, draw_noise
from vbinfer.simulate import SimParams, SimResult, SimState, Simulator, diverged, make_simulator

__version__ = "0.1.0"

__all__ = [
    "AdditiveNoise",
    "ColouredNoise",
    "Network",
    "SimParams",
    "SimResult",
    "SimState",
    "Simulator",
    "SparseNetwork",
    "__version__",
    "coupling",
    "datasets",
    "delays",
    "diverged",
    "draw_noise",
    "integrators",
    "make_network",
    "make_simulator",
    "max_lag_steps",
    "models",
    "monitors",
    "network",
    "noise",
    "to_sparse",
]
