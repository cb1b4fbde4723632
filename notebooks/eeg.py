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
# # EEG spectra: network and local parameters of a Jansen-Rit network
#
# A Jansen-Rit column sits at each of the 84 regions of the Hagmann connectome. The regions
# are coupled through the sigmoidal Jansen-Rit coupling with conduction delays
# $d_{ij} = \ell_{ij} / v$ (tract length over conduction speed), and every column receives a
# noisy input $p(t) = \mu + \sigma_p \xi(t)$ on its pyramidal cells. The pyramidal potential
# $y_1 - y_2$ of each region drives a current dipole at the region's centre; a lead field
# computed offline from a four-shell spherical head projects the dipoles to the 21 channels of
# the 10-20 system. The observation is the $\log_{10}$ Welch power spectrum of each channel
# between 2 and 40 Hz, with a Gaussian likelihood of sd 0.2:
#
# $$\log_{10} \mathrm{PSD}_{f,c} = \mathrm{predict}(\theta)_{f,c} + e_{f,c},
# \qquad e_{f,c} \sim N(0, 0.2^2).$$
#
# Four parameters $\theta$ are recovered, the global coupling $a$, the conduction speed $v$,
# the mean input $\mu$ and the excitatory PSP amplitude $A$, by SVI and by NUTS.
#
# This notebook goes step by step through the public building blocks of
# `vbinfer.workflows.eeg`. To run in about a minute it analyses 512 ms of EEG (Welch
# segments of 256 ms, so 10 frequencies between 2 and 40 Hz), runs the same global search as
# the workflow (8 populations of 48 simulations), fits 150 SVI steps and runs
# two NUTS chains of 30 warm-up steps and 40 draws: a rough version of the workflow, close
# to `vbinfer demo eeg --quick`. `vbinfer demo eeg` analyses 2 s of EEG (segments of 512 ms,
# 19 frequencies) with longer fits and more draws, and writes `spectra.png`,
# `posteriors.png`, `shrinkage_z.png`, `results.npz` and `report.json`.

# %%
import time

import arviz as az
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import numpyro.distributions as dist

from vbinfer.datasets import load_leadfield_1020
from vbinfer.inference import fit, make_problem
from vbinfer.workflows import eeg, format_table

t_notebook = time.perf_counter()
k_model, k_obs, k_search, k_svi, k_nuts, k_pred = jax.random.split(jax.random.key(0), 6)

# %% [markdown]
# ## 1. The head model
#
# The lead field ships with vbinfer (`vbinfer.datasets.load_leadfield_1020`): built with mne
# from a four-shell spherical head fitted to the electrodes of the standard 10-20 montage,
# with one radial dipole at the centre of each region, average reference. Each column is the
# scalp map of one region; here the electrode positions and the regions, coloured by how
# strongly they project to Cz.

# %%
lead = load_leadfield_1020()
print(f"gain {lead.gain.shape} in {lead.units}; channels {' '.join(lead.ch_names)}")
cz = lead.ch_names.index("Cz")
fig, ax = plt.subplots(figsize=(5, 5))
sc = ax.scatter(
    *lead.region_centres[:, :2].T * 1e3,
    c=lead.gain[cz],
    cmap="RdBu_r",
    s=30,
    vmin=-np.abs(lead.gain[cz]).max(),
    vmax=np.abs(lead.gain[cz]).max(),
)
ax.plot(*lead.ch_pos[:, :2].T * 1e3, "k^", ms=6)
for name, (x, y, _) in zip(lead.ch_names, lead.ch_pos * 1e3, strict=True):
    ax.annotate(name, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
ax.set(aspect="equal", xlabel="x (mm, right)", ylabel="y (mm, front)", title="seen from above")
fig.colorbar(sc, ax=ax, shrink=0.7, label="gain to Cz (uV/nAm)")
plt.show()

# %% [markdown]
# ## 2. Unknowns and priors
#
# `PARAMS` lists the unknowns (`ParamSpec`: name, prior, truth). They were chosen because the
# spectra separate them: their posterior correlations stay below 0.6, whereas $\mu$, $A$ and
# the inhibitory amplitude $B$ together are correlated above 0.9. Every unknown is sampled
# as a standard normal $u$ and mapped to its physical value by `to_physical`
# ($\mathrm{loc}\cdot e^{\mathrm{scale}\,u}$ for log-normal priors, $\mathrm{loc} +
# \mathrm{scale}\,u$ for normal ones), so that the samplers work on a well-scaled space.

# %%
print(
    format_table(
        [
            {
                "parameter": p.name,
                "meaning": p.label,
                "prior": f"{p.kind}({p.loc:g}, {p.scale:g})",
                "prior sd": eeg.prior_sd(p),
                "truth": p.truth,
                "units": p.units,
            }
            for p in eeg.PARAMS
        ]
    )
)
truth = np.array([p.truth for p in eeg.PARAMS])
u_true = eeg.to_standard(truth)
print("\ntruth in standard coordinates u:", np.round(u_true, 3))

# %% [markdown]
# ## 3. The forward model
#
# `make_eeg_model` builds everything once: the connectome (weights normalised per row,
# connections below 0.1 % of a row's input dropped), the stochastic Heun simulator with
# fractional delays (differentiable in the speed) and a lead-field monitor sampling the EEG
# at 250 Hz, the simulation noise (drawn once and **held fixed**: the same realisation
# generates the data and every model evaluation, so the likelihood is a smooth function of
# $\theta$), and a common initial state from a burn-in run. It returns `predict(theta)`,
# the log spectra, and `simulate_eeg(theta)`, the EEG itself.

# %%
# 512 ms analysed after a 128 ms transient, Welch segments of 64 samples (256 ms at 250 Hz)
config = eeg.EEGConfig(analysis_ms=512.0, skip_ms=128.0, nperseg=64, burn_in_ms=500.0)
t0 = time.perf_counter()
model = eeg.make_eeg_model(k_model, config)
print(
    f"{model.num_steps} steps of {config.dt} ms per evaluation, {model.n_edges} connections, "
    f"{len(model.freqs)} frequencies x {len(model.ch_names)} channels "
    f"({time.perf_counter() - t0:.1f} s to build)"
)


predict = jax.jit(model.predict)  # (n_freqs, n_channels) log10 PSD, uV^2/Hz
t0 = time.perf_counter()
clean = np.asarray(predict(jnp.asarray(truth, jnp.float32)))
print(f"first evaluation of predict (compile + run): {time.perf_counter() - t0:.1f} s")
eeg_true = np.asarray(jax.jit(model.simulate_eeg)(jnp.asarray(truth, jnp.float32)))

# %% [markdown]
# The simulated EEG at the true parameters, and the data: its log spectra plus the
# likelihood's noise, next to the spectra at the prior median (the default start of the
# fits). The alpha peak near 10 Hz is the Jansen-Rit rhythm; the parameters move its
# frequency, height and width.

# %%
data = clean + config.obs_sd * np.asarray(jax.random.normal(k_obs, clean.shape))
median = np.asarray(predict(eeg.to_physical(jnp.zeros(len(eeg.PARAMS)))))

fig, axes = plt.subplots(1, 2, figsize=(13, 3.5), gridspec_kw={"width_ratios": [1.6, 1]})
t = np.arange(eeg_true.shape[0]) / model.fs * 1e3
centred = eeg_true - eeg_true.mean(axis=0)
offset = 5 * centred.std()
for k, ch in enumerate(("Fz", "Cz", "Oz")):
    axes[0].plot(t, centred[:, model.ch_names.index(ch)] - offset * k, lw=0.8, label=ch)
axes[0].set(
    xlabel="time (ms)", ylabel="EEG (uV, mean removed, offset)", title="EEG at the true parameters"
)
axes[0].legend(fontsize=8, loc="upper right")
c = model.ch_names.index("Oz")
axes[1].plot(model.freqs, data[:, c], "k.", label="observed")
axes[1].plot(model.freqs, clean[:, c], "k--", lw=0.8, label="truth (noise-free)")
axes[1].plot(model.freqs, median[:, c], "C3", label="prior median")
axes[1].set(xlabel="frequency (Hz)", ylabel="log10 PSD (uV^2/Hz)", title="Oz")
axes[1].legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 4. Gradients in forward mode
#
# The fits below use `make_problem`, which turns a prediction into a numpyro model with priors
# on the unknowns and the Gaussian likelihood on the spectra. Its gradients flow back through
# a simulation of hundreds of delayed steps. With four unknowns, pushing four tangents
# forward with the simulation (`jax.jvp`) is cheaper than reverse mode, which stores the
# trajectory and scatters the gathered delays back: `forward_mode_vjp` wraps the prediction
# in a `custom_vjp` whose backward pass applies the Jacobian computed in forward mode, so
# `jax.grad` (used by SVI and NUTS) gets it at about 3 times the cost of a simulation instead
# of about 8.

# %%
n_par = len(eeg.PARAMS)
pred_u = eeg.forward_mode_vjp(lambda u: model.predict(eeg.to_physical(u)))
data = jnp.asarray(data, jnp.float32)
u0 = jnp.asarray(u_true + 0.5, jnp.float32)


def loss_of(prediction):
    return lambda u: jnp.sum((prediction(u) - data) ** 2)


grads = {
    "forward mode (forward_mode_vjp)": jax.jit(jax.grad(loss_of(pred_u))),
    "reverse mode (plain jax.grad)": jax.jit(
        jax.grad(loss_of(lambda u: model.predict(eeg.to_physical(u))))
    ),
}
simulate = jax.jit(loss_of(lambda u: model.predict(eeg.to_physical(u))))
simulate(u0).block_until_ready()
t0 = time.perf_counter()
simulate(u0).block_until_ready()
t_sim = time.perf_counter() - t0
values = {}
for name, g in grads.items():
    g(u0).block_until_ready()  # compile
    t0 = time.perf_counter()
    values[name] = np.asarray(g(u0).block_until_ready())
    print(f"{name}: {(time.perf_counter() - t0) / t_sim:.1f} x a simulation, gradient {values[name]}")
a, b = values.values()
print(f"largest relative difference: {np.max(np.abs(a - b) / np.abs(b)):.1e}")

# %% [markdown]
# ## 5. A global search for the mode
#
# With the simulation noise held fixed, the chaotic network's spectra change irregularly with
# the parameters: away from the truth the log posterior is rough and has local modes, where a
# gradient method started at one point can stop (with seed 1 of the workflow, SVI and NUTS
# started from the prior agreed on a mode 22 to 28 posterior sd from the truth).
# `cross_entropy_search` needs no gradients: it draws a population from a Gaussian (first the
# prior), evaluates it as one vmapped batch of simulations, and refits the Gaussian to the best
# quarter, so it follows the global trend of the density.

# %%
def log_posterior(u):
    resid = (model.predict(eeg.to_physical(u)) - data) / config.obs_sd
    return -0.5 * jnp.sum(resid**2) - 0.5 * jnp.sum(u**2)


t0 = time.perf_counter()
search = eeg.cross_entropy_search(
    k_search, jax.jit(jax.vmap(log_posterior)), n_par, num_iters=8, population=48, num_elite=12
)
print(f"search: {time.perf_counter() - t0:.1f} s, 384 simulations")
print(format_table([
    {"parameter": p.name, "truth u": u_true[k], "best u": search.best[k], "search sd": search.sd[k]}
    for k, p in enumerate(eeg.PARAMS)
]))

fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(np.arange(1, len(search.history) + 1), search.history, "o-")
ax.set(xlabel="search iteration", ylabel="best log posterior", yscale="symlog")
plt.show()

# %% [markdown]
# ## 6. SVI: a full-rank Gaussian around the search's result
#
# `fit(..., method="svi", guide="full_rank")` fits a multivariate normal to the posterior
# (numpyro's `AutoMultivariateNormal`, Adam with cosine decay) and draws from it. It works in
# coordinates centred on the search, $u = c + s\,w$ with $c$ the best point and $s$ the
# search's final sd; $w$ gets the prior $N(-c/s, 1/s^2)$, so $u$ keeps its $N(0, I)$ prior
# exactly, and the guide's default start (uniform in $[-2, 2]$ of $w$) lies near $c$.

# %%
centre = jnp.asarray(search.best, jnp.float32)
spread = jnp.asarray(np.clip(search.sd, 0.02, 1.0), jnp.float32)
centred = make_problem(
    {"w": dist.Normal(-centre / spread, 1.0 / spread).to_event(1)},
    lambda th: pred_u(centre + spread * th["w"]),
    noise_sd=config.obs_sd,
    data_shape=data.shape,
)
svi = fit(
    centred,
    data,
    method="svi",
    key=k_svi,
    guide="full_rank",
    num_steps=150,
    learning_rate=0.05,
    num_samples=1000,
)
u_svi = np.asarray(centre) + np.asarray(spread) * svi.flat("w")
print(
    f"SVI: {svi.wall_time_s:.1f} s ({svi.compile_time_s:.1f} s compiling), "
    f"final loss {svi.info['final_loss']:.1f}"
)

fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(np.asarray(svi.loss))
ax.set(xlabel="SVI step", ylabel="negative ELBO", yscale="symlog")
plt.show()

# %% [markdown]
# ## 7. NUTS in coordinates whitened by the SVI fit
#
# With $m$ and $L L^T$ the mean and covariance of the SVI fit, NUTS samples $v$ with
# $u = m + L v$. This affine change of variables carries the prior over exactly
# ($v \sim N(-L^{-1} m, L^{-1} L^{-T})$), so the posterior is the same, but in $v$ it is close
# to a standard normal: NUTS takes short trajectories and starts near the posterior. The two
# chains run one after the other.

# %%
m = u_svi.mean(axis=0)
chol = np.linalg.cholesky(np.cov(u_svi, rowvar=False) + 1e-9 * np.eye(n_par))
chol_inv = np.tril(np.linalg.inv(chol))
m_j, chol_j = jnp.asarray(m, jnp.float32), jnp.asarray(chol, jnp.float32)
whitened = make_problem(
    {
        "v": dist.MultivariateNormal(
            jnp.asarray(-chol_inv @ m, jnp.float32), scale_tril=jnp.asarray(chol_inv, jnp.float32)
        )
    },
    lambda th: pred_u(m_j + chol_j @ th["v"]),
    noise_sd=config.obs_sd,
    data_shape=data.shape,
)
t0 = time.perf_counter()
chains = [
    fit(
        whitened,
        data,
        method="nuts",
        key=kc,
        num_warmup=30,
        num_samples=40,
        num_chains=1,
        max_tree_depth=4,
    )
    for kc in jax.random.split(k_nuts, 2)
]
v = np.concatenate([r.samples["v"] for r in chains], axis=0)  # (chains, draws, 4)
u_nuts = m + v @ chol.T
divergences = int(sum(np.sum(r.divergences) for r in chains))
leapfrog = np.mean([r.info["sample_stats"]["num_steps"].mean() for r in chains])
print(
    f"NUTS: 2 chains x {v.shape[1]} draws in {time.perf_counter() - t0:.1f} s, "
    f"{leapfrog:.1f} leapfrog steps per draw, {divergences} divergences"
)

# %% [markdown]
# ## 8. Diagnostics
#
# Per parameter, in physical units: posterior mean and sd, shrinkage
# $1 - \mathrm{Var}_\mathrm{post}/\mathrm{Var}_\mathrm{prior}$, $z = |\mathrm{mean} -
# \mathrm{truth}| / \mathrm{sd}$, and for NUTS the rank-normalised R-hat and bulk ESS of
# arviz. `vbinfer demo eeg` passes if every $z < 3$ and every shrinkage exceeds 0.5, and for
# NUTS every R-hat is below 1.05 and every bulk ESS above 50; with this page's 80 draws the
# R-hat and ESS estimates are themselves rough.

# %%
var_prior = np.array([eeg.prior_sd(p) ** 2 for p in eeg.PARAMS])
fits = {
    "svi": np.asarray(eeg.to_physical(jnp.asarray(u_svi[None])), np.float64),
    "nuts": np.asarray(eeg.to_physical(jnp.asarray(u_nuts)), np.float64),
}  # (chains, draws, 4) each
rows = []
for name, theta in fits.items():
    flat = theta.reshape(-1, n_par)
    mean, sd = flat.mean(0), flat.std(0, ddof=1)
    if name == "nuts":
        ds = az.convert_to_dataset({"theta": theta})
        rhat, ess = np.asarray(az.rhat(ds)["theta"]), np.asarray(az.ess(ds, method="bulk")["theta"])
    else:
        rhat = ess = np.full(n_par, np.nan)
    for k, p in enumerate(eeg.PARAMS):
        rows.append(
            {
                "backend": name,
                "parameter": p.name,
                "truth": p.truth,
                "mean": mean[k],
                "sd": sd[k],
                "shrinkage": 1 - sd[k] ** 2 / var_prior[k],
                "z": abs(mean[k] - p.truth) / sd[k],
                "r_hat": rhat[k],
                "ess_bulk": ess[k],
            }
        )

# %% [markdown]
# Posteriors against the priors and the truth:

# %%
prior_draws = np.asarray(eeg.to_physical(jax.random.normal(jax.random.key(1), (20000, n_par))))
fig, axes = plt.subplots(1, n_par, figsize=(3.3 * n_par, 2.8))
for k, (ax, p) in enumerate(zip(axes, eeg.PARAMS, strict=True)):
    lo, hi = np.percentile(prior_draws[:, k], [0.5, 99.5])
    ax.hist(
        prior_draws[:, k],
        bins=60,
        range=(lo, hi),
        density=True,
        histtype="step",
        color="gray",
        label="prior",
    )
    for name, theta in fits.items():
        ax.hist(theta[..., k].ravel(), bins=30, density=True, alpha=0.5, label=name.upper())
    ax.axvline(p.truth, color="k", lw=1.5, label="truth")
    ax.set(title=p.name, xlabel=p.units, yticks=[])
axes[0].legend(fontsize=7)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 9. Fitted against observed spectra, per channel
#
# The posterior predictive check: spectra simulated at 10 posterior draws of each fit, with
# the likelihood's noise added for the 5-95 % band, against the observed spectra. Channels
# are placed roughly as on the scalp, seen from above, nose up.

# %%
predictive = {}
for i, (name, theta) in enumerate(fits.items()):
    flat = theta.reshape(-1, n_par)
    idx = np.linspace(0, len(flat) - 1, 10).astype(int)
    pred = np.stack([np.asarray(predict(jnp.asarray(th, jnp.float32))) for th in flat[idx]])
    noise = config.obs_sd * np.asarray(jax.random.normal(jax.random.fold_in(k_pred, i), pred.shape))
    predictive[name] = (pred, pred + noise)

layout = {  # (row, column) of each channel on a 5 x 5 grid, nose up
    "Fp1": (0, 1),
    "Fpz": (0, 2),
    "Fp2": (0, 3),
    "F7": (1, 0),
    "F3": (1, 1),
    "Fz": (1, 2),
    "F4": (1, 3),
    "F8": (1, 4),
    "T7": (2, 0),
    "C3": (2, 1),
    "Cz": (2, 2),
    "C4": (2, 3),
    "T8": (2, 4),
    "P7": (3, 0),
    "P3": (3, 1),
    "Pz": (3, 2),
    "P4": (3, 3),
    "P8": (3, 4),
    "O1": (4, 1),
    "Oz": (4, 2),
    "O2": (4, 3),
}
fig, axes = plt.subplots(5, 5, figsize=(12, 10), sharex=True, sharey=True, layout="constrained")
for ax in axes.ravel():
    ax.set_visible(False)
for c, ch in enumerate(model.ch_names):
    ax = axes[layout[ch]]
    ax.set_visible(True)
    for name, (pred, noisy) in predictive.items():
        lo, hi = np.percentile(noisy[:, :, c], [5, 95], axis=0)
        ax.fill_between(model.freqs, lo, hi, alpha=0.25, lw=0)
        ax.plot(model.freqs, np.median(pred[:, :, c], axis=0), lw=1.2, label=f"{name.upper()} fit")
    ax.plot(model.freqs, np.asarray(data)[:, c], "k.", ms=3, label="observed")
    ax.set_title(ch, fontsize=9)
for ax in axes[4]:
    ax.set_xlabel("frequency (Hz)")
for ax in axes[:, 0]:
    ax.set_ylabel("log10 PSD")
axes[0, 1].legend(fontsize=7, loc="lower left")
fig.suptitle("Observed and fitted EEG spectra (uV^2/Hz), 5-95 % predictive bands")
plt.show()

# %% [markdown]
# ## Summary
#
# The table `vbinfer demo eeg` prints (one row per parameter and backend):

# %%
print(format_table(rows))
ok = {
    name: all(
        r["z"] < eeg.MAX_ABS_Z and r["shrinkage"] > eeg.MIN_SHRINKAGE
        for r in rows
        if r["backend"] == name
    )
    for name in fits
}
print(f"\nz < {eeg.MAX_ABS_Z:g} and shrinkage > {eeg.MIN_SHRINKAGE:g} for every parameter: {ok}")
print(f"notebook run time: {time.perf_counter() - t_notebook:.0f} s")
