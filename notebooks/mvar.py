# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # MVAR recovery: the interaction matrix of a stochastic linear network
#
# A network of $n = 8$ linear nodes, coupled through an unknown interaction matrix $W$
# ($W_{ij}$: from node $j$ to node $i$, in 1/ms) and driven by white noise of unknown
# amplitude $\sigma$, is simulated with Euler-Maruyama:
#
# $$x_{t+1} = x_t + dt\,(-\lambda x_t + W x_t) + \sigma\sqrt{dt}\,\xi_t,
# \qquad \xi_t \sim N(0, I).$$
#
# This is a first-order multivariate autoregressive (MVAR) process
# $x_{t+1} = B x_t + e_t$ with $B = (1 - \lambda\,dt) I + dt\,W$. From the observed states
# $x_0 \dots x_T$ we recover all $n^2 = 64$ entries of $W$ and $\sigma$ twice: by gradient
# descent to the posterior mode (a point estimate) and by NUTS (a posterior, with
# uncertainty, shrinkage and z-scores).
#
# This notebook walks through the public building blocks of
# `vbinfer.workflows.mvar`. The command `vbinfer demo mvar` runs the same steps with
# 1000 NUTS draws per chain (this page uses 300 to run in well under a minute) and writes
# its plots and tables to `vbinfer-demo/mvar/`.

# %%
import time

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from numpyro.diagnostics import effective_sample_size, split_gelman_rubin

from vbinfer import make_network
from vbinfer.inference import fit, posterior_shrinkage, posterior_zscore
from vbinfer.inference.plots import plot_shrinkage_zscore
from vbinfer.workflows import format_table, mvar

t_notebook = time.perf_counter()
key = jax.random.key(0)
k_data, k_map, k_nuts = jax.random.split(key, 3)

# %% [markdown]
# ## 1. A random, stable interaction matrix
#
# `random_stable_weights` draws the entries i.i.d. $N(0, 0.15^2)$ and rejects draws until
# every eigenvalue of $B$ lies inside a circle of radius 0.95: the process is stationary and
# the continuous-time network is stable. With $\lambda = 0.5$/ms and $dt = 1$ ms the
# diagonal of $B$ is $0.5$, so each node forgets its past within a few steps unless the
# network feeds it back.
#
# `simulate_mvar` splits its key into one for the matrix and one for the noise, so drawing
# the matrix with the first half of the split gives exactly the matrix of the data set.

# %%
k_w, _ = jax.random.split(k_data)
W = mvar.random_stable_weights(k_w, mvar.N_NODES)
B = (1 - mvar.LAM * mvar.DT) * np.eye(mvar.N_NODES) + mvar.DT * W
eig = np.linalg.eigvals(B)
print(f"W: {W.shape}, sd of entries {W.std():.3f} /ms, spectral radius of B {abs(eig).max():.3f}")

fig, axes = plt.subplots(1, 2, figsize=(8, 3.4))
lim = np.abs(W).max()
im = axes[0].imshow(W, cmap="RdBu_r", vmin=-lim, vmax=lim)
axes[0].set(title="true W (1/ms)", xlabel="from node j", ylabel="to node i")
fig.colorbar(im, ax=axes[0])
circle = np.exp(1j * np.linspace(0, 2 * np.pi, 200))
axes[1].plot(circle.real, circle.imag, "k", lw=0.8, label="unit circle")
axes[1].plot(0.95 * circle.real, 0.95 * circle.imag, "k:", lw=0.8, label="radius 0.95")
axes[1].plot(eig.real, eig.imag, "o", label="eigenvalues of B")
axes[1].set(aspect="equal", title="stability", xlabel="Re", ylabel="Im")
axes[1].legend(fontsize=7)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 2. Simulate the network
#
# `simulate_mvar` builds an Euler-Maruyama simulator of `vbinfer.models.linear` with linear
# coupling through $W$ (`make_mvar_simulator`), runs 1000 steps of 1 ms from $x_0 = 0$ with
# $\sigma = 0.2$, and returns the states $(T + 1, n)$ together with the simulator and its
# parameters, which the likelihood below reuses.

# %%
data = mvar.simulate_mvar(k_data)
assert np.allclose(data.weights, W)
print(f"states {data.states.shape}, sigma = {data.sigma}, dt = {data.simulator.dt} ms")

fig, ax = plt.subplots(figsize=(8, 3))
t = np.arange(data.states.shape[0]) * data.simulator.dt
ax.plot(t[:300], data.states[:300] + 1.5 * np.arange(mvar.N_NODES), lw=0.8)
ax.set(xlabel="time (ms)", ylabel="node (offset)", title="first 300 ms of the 8 nodes")
ax.set_yticks([])
plt.show()

# %% [markdown]
# ## 3. The likelihood: one step at a time
#
# The states are observed without measurement noise, so the simulation noise is not a
# nuisance to integrate out. Given $x_t$, the next state is Gaussian around one deterministic
# Euler step:
#
# $$p(x_{t+1} \mid x_t, W, \sigma) = N\big(x_{t+1};\ \mathrm{step}(x_t; W),\ \sigma^2 dt\, I\big).$$
#
# For Euler-Maruyama this density is exact: it is how the simulator generated the data.
# `transition_mean` computes $\mathrm{step}(x_t)$ with the simulator's own model, coupling
# and integrator for all $T$ time points at once. Its residuals are the noise increments, so
# their sd divided by $\sqrt{dt}$ is $\sigma$ (up to sampling error):

# %%
net = make_network(data.weights)
x = jnp.asarray(data.states)[:, None, :]  # (T + 1, n_states = 1, n_nodes)
mean_next = mvar.transition_mean(data.simulator, data.params, net, x[:-1])
resid = np.asarray(x[1:] - mean_next)
print(f"sd of the residuals / sqrt(dt) = {resid.std() / np.sqrt(data.simulator.dt):.4f}")

# %% [markdown]
# `mvar_problem` wraps this density into a `vbinfer.inference.Problem`: priors
# $W_{ij} \sim N(0, 0.5^2)$ (about three times the generating sd) and
# $\sigma \sim \mathrm{HalfNormal}(1)$, and the observed site scored with the transition
# density. The likelihood is a quadratic form in $W$, so NUTS adapts quickly and takes short
# trajectories.
#
# Each row of $W$ is a linear regression of $(x_{t+1} - x_t + \lambda\,dt\,x_t)/dt$ on $x_t$,
# so the least-squares estimate has a known expected squared error (the Cramer-Rao bound),
# `expected_mse`: the scale against which the point estimate is judged.

# %%
truth = {"weights": data.weights, "sigma": data.sigma}
problem = mvar.mvar_problem(data.simulator, data.params, mvar.N_NODES, truth=truth)
obs = jnp.asarray(data.states)
mse_ref = mvar.expected_mse(data.states, data.simulator.dt, data.sigma)
print(f"unknowns: {problem.param_names}; data {problem.data_shape}")
print(f"expected MSE of W (Cramer-Rao): {mse_ref:.2e} (1/ms)^2; var(W) = {np.var(W):.2e}")

# %% [markdown]
# ## 4. Point estimate: gradient descent to the posterior mode
#
# `fit(..., method="map")` minimises the negative log posterior with optax's Adam from a
# few random starts and keeps the best. The workflow passes if the mean squared error of
# the MAP estimate is below twice the expected error.

# %%
map_fit = fit(
    problem,
    obs,
    method="map",
    key=k_map,
    optimizer="adam",
    learning_rate=0.02,
    num_steps=3000,
    num_restarts=4,
)
W_map = map_fit.mean("weights")
mse_map = float(np.mean((W_map - W) ** 2))
print(
    f"MAP: MSE {mse_map:.2e} = {mse_map / mse_ref:.2f} x expected; "
    f"sigma {float(map_fit.mean('sigma')):.4f} (true {data.sigma}); "
    f"{map_fit.wall_time_s:.1f} s"
)

fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(np.asarray(map_fit.loss))
ax.set(xlabel="Adam step", ylabel="negative log posterior", yscale="symlog")
plt.show()

# %% [markdown]
# ## 5. Posterior: NUTS
#
# `fit(..., method="nuts")` runs numpyro's NUTS, two chains vectorised. Here 300 warm-up
# steps and 300 draws per chain; the full workflow takes 1000 of each.

# %%
nuts_fit = fit(
    problem, obs, method="nuts", key=k_nuts, num_warmup=300, num_samples=300, num_chains=2
)
print(
    f"NUTS: {nuts_fit.num_chains} chains x {nuts_fit.num_draws} draws in "
    f"{nuts_fit.wall_time_s:.1f} s ({nuts_fit.compile_time_s:.1f} s compiling), "
    f"{int(np.sum(nuts_fit.divergences))} divergences, step size "
    f"{nuts_fit.info['step_size']:.3g}"
)

# %% [markdown]
# ## 6. Diagnostics
#
# Per entry of $W$:
#
# - **shrinkage** $1 - \mathrm{Var}_\mathrm{post} / \mathrm{Var}_\mathrm{prior}$: how much
#   the data narrowed the prior (1: fully determined by the data);
# - **z-score** $|E_\mathrm{post} - W_\mathrm{true}| / \mathrm{sd}_\mathrm{post}$: how far
#   the truth is from the posterior mean, in posterior sd (a calibrated posterior has
#   about 95 % of them below 2);
# - **ESS** and split **R-hat** (numpyro's estimators): whether the chains mixed.
#
# The workflow passes if at least 90 % of the entries have $z < 2$, every shrinkage
# exceeds 0.9, every R-hat is below 1.05 and every ESS above 100.

# %%
post = nuts_fit.flat("weights")  # (draws, 8, 8)
shrinkage = posterior_shrinkage(post, mvar.PRIOR_SD)
z = posterior_zscore(post, W)
ess = np.asarray(effective_sample_size(np.asarray(nuts_fit.samples["weights"], np.float64)))
rhat = np.asarray(split_gelman_rubin(np.asarray(nuts_fit.samples["weights"], np.float64)))
W_post = nuts_fit.mean("weights")
print(f"coverage (z < 2): {np.mean(z < 2):.2f}, max z {z.max():.2f}")
print(f"min shrinkage {shrinkage.min():.3f}, min ESS {ess.min():.0f}, max R-hat {rhat.max():.3f}")

# %% [markdown]
# The true matrix and the two estimates side by side, and every entry against its true
# value with the posterior $\pm 2$ sd:

# %%
fig, axes = plt.subplots(1, 4, figsize=(15, 3.6), layout="constrained")
for ax, (title, M) in zip(
    axes[:3], [("true W", W), ("MAP", W_map), ("NUTS mean", W_post)], strict=False
):
    im = ax.imshow(M, cmap="RdBu_r", vmin=-lim, vmax=lim)
    ax.set(title=title, xlabel="from node j", ylabel="to node i")
fig.colorbar(im, ax=axes[:3], shrink=0.8, label="1/ms")
ax = axes[3]
sd_post = nuts_fit.sd("weights")
ax.errorbar(
    W.ravel(),
    W_post.ravel(),
    yerr=2 * sd_post.ravel(),
    fmt="o",
    ms=3,
    lw=0.8,
    label="NUTS mean +- 2 sd",
)
ax.plot(W.ravel(), W_map.ravel(), "x", color="C3", label="MAP")
ax.plot([-lim, lim], [-lim, lim], "k", lw=0.8)
ax.set(xlabel="true W[i, j]", ylabel="estimate", title="64 entries")
ax.legend(fontsize=7)
plt.show()

# %% [markdown]
# Shrinkage against z-score, one point per entry (`vbinfer.inference.plots`): good estimates
# sit at the bottom right, determined by the data (shrinkage near 1) and close to the truth
# (small z).

# %%
plot_shrinkage_zscore(nuts_fit, {"weights": W}, {"weights": mvar.PRIOR_SD})

# %% [markdown]
# ## Summary
#
# The same criteria as `vbinfer demo mvar` (which uses 1000 draws per chain, and reports
# the worst entry by each criterion, writing `matrices.png`, `scatter.png`,
# `shrinkage_z.png`, `map_loss.png`, `entries.csv`, `results.npz`, `nuts_fit.npz` and
# `report.json`):

# %%
rows = [
    {"check": "MAP MSE / expected MSE", "value": mse_map / mse_ref, "criterion": "< 2"},
    {
        "check": "fraction of entries with z < 2",
        "value": float(np.mean(z < 2)),
        "criterion": ">= 0.9",
    },
    {"check": "min shrinkage", "value": float(shrinkage.min()), "criterion": "> 0.9"},
    {"check": "min ESS", "value": float(ess.min()), "criterion": "> 100"},
    {"check": "max R-hat", "value": float(rhat.max()), "criterion": "< 1.05"},
    {
        "check": "sigma: NUTS mean (true 0.2)",
        "value": float(nuts_fit.mean("sigma")),
        "criterion": "-",
    },
]
print(format_table(rows))
print(f"\nnotebook run time: {time.perf_counter() - t_notebook:.0f} s")
