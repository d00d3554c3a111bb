# %% [markdown]
# # 03 · Kernel-based activation functions (thesis section 2.4)
#
# A KAF is, per channel, $f(s) = \sum_{i=1}^{D} \alpha_i \exp(-\gamma (s - d_i)^2)$ with a fixed dictionary of D = 20 points on [-3, 3] and $\gamma = 1 / (6 \Delta^2)$; the mixing coefficients $\alpha$ are trained. They start either at random, $\alpha \sim N(0, 0.05^2)$ (`kaf`), or by kernel ridge regression so that the KAF interpolates a known activation, $\alpha = (K + \varepsilon I)^{-1} t$ (`kaf_elu`: ELU). The trained networks are the section-5.1 VGG models (fast adversarial training).
#
# | thesis figure / table | file |
# | --- | --- |
# | KAF shapes at random initialisation vs after training (VGG, `kaf`) | `figures/kaf_random_init_vs_trained.pdf` / `.png` |
# | ridge-initialised KAF (ELU) before vs after training (VGG, `kaf_elu`) | `figures/kaf_elu_init_vs_trained.pdf` / `.png` |
# | how far the shapes moved, per KAF layer | `figures/kaf_shape_changes.tex` |
# | (analytic) the KAF's building blocks: dictionary, Gaussian kernels, ridge fit of ELU | `figures/kaf_ridge_elu.pdf` / `.png` |
#
# **Profile and hardware.** The stored outputs come from the profile and machine listed in the
# provenance table below (read from the results' `summary.json`). Profiles: `smoke` (CPU, a small
# CIFAR-10 subset, one epoch: proves the pipeline end to end; its numbers are *not* the thesis's
# results), `cpu` (the chapter-4 light CNNs, notebooks 02, 04 and 05: the light CNNs on all 50,000 training images
# for 5 of the protocol's 20 epochs, attacked as in the protocol, on a 2-core CPU) and `full` (exactly the protocol: run on the 2-core CPU for the chapter-4
# light CNNs of notebooks 02, 04 and 05; the other experiments need a GPU and have not been run at this
# scale yet). `python -m thesis_lib.experiments.notebooks`
# (default `--profile best`) shows, per notebook, the largest profile whose results exist; run
# `python -m thesis_lib reproduce --profile full` on a GPU first to reproduce the protocol.

# %% tags=["parameters"]
profile = "smoke"  # "smoke" (CPU, minutes: proves the pipeline), "cpu" (notebooks 02, 04, 05 only) or "full" (the protocol, GPU)
results_dir = "../results"  # results/<profile>/<experiment>/ (JSON/CSV, committed)
figures_dir = "../figures"  # figures/<name>.pdf, .png and tables figures/<name>.tex
data = None  # CIFAR-10 location; None: $THESIS_DATA, else torchvision's download into ./data
device = "auto"  # "auto" (CUDA when present), "cpu", "cuda"

# %%
from thesis_lib.notebook import setup

plt, np, pd, ensure, percent, provenance_table, save_figure, save_table = setup()

import torch

import thesis_lib
from thesis_lib.plotting import plot_kaf_shapes

# %% [markdown]
# ## Building blocks (analytic)
#
# The dictionary, the weighted Gaussian kernels of a ridge-initialised KAF and their sum, which
# interpolates ELU on the dictionary points (thesis defaults; nothing trained).

# %%
kaf = thesis_lib.make_activation("kaf_elu", 1)
s = torch.linspace(-4, 4, 401, dtype=torch.float64)
d, a, g = kaf.dictionary[0].double(), kaf.alpha[0].detach().double(), float(kaf.gamma[0])
fig, ax = plt.subplots(figsize=(5.0, 3.2))
for i in range(len(d)):
    ax.plot(s, a[i] * torch.exp(-g * (s - d[i]) ** 2), color="#bbbbbb", lw=0.7)
ax.plot(s, kaf.evaluate(s)[0], color="C0", lw=1.8, label="KAF (ridge fit)")
ax.plot(s, torch.nn.functional.elu(s), color="black", ls="--", lw=1.0, label="ELU")
ax.plot(d, torch.nn.functional.elu(d), "o", color="C3", ms=3, label="dictionary points")
ax.set_xlabel("s"); ax.set_ylabel("f(s)"); ax.set_title("A ridge-initialised KAF interpolating ELU"); ax.legend()
save_figure(fig, "kaf_ridge_elu", figures_dir)
err = (kaf.evaluate(d)[0] - torch.nn.functional.elu(d)).abs().max().item()
print(f"D = {len(d)}, gamma = {g:.3f}, max |KAF - ELU| on the dictionary below 1e-3: {err < 1e-3}")

# %%
# NBVAL_IGNORE_OUTPUT
# Runs the experiment(s) only if their results are missing or stale; otherwise just loads them.
res = ensure("kaf_shapes", profile, results_dir, data=data, device=device)

# %%
provenance_table([res])


# %% [markdown]
# ## Random initialisation vs after training (`kaf`)
#
# Four channels of the first KAF layer of the VGG network, as built by `train` (same seed) and after
# fast adversarial training. With the smoke profile (two optimisation steps) the shapes barely move:
# this shows the pipeline, the full profile shows the learned shapes.

# %%
def pair(act, layer=0):
    data = res.step(f"curves_{act}")
    L = data["layers"][layer]
    s = np.asarray(data["s"])
    return (s, np.asarray(L["before"])), (s, np.asarray(L["after"])), L["name"]

before, after, name = pair("kaf")
fig = plot_kaf_shapes(before, after, channels=4, suptitle=f"VGG, kaf, layer {name}")
save_figure(fig, "kaf_random_init_vs_trained", figures_dir)

# %% [markdown]
# ## Ridge-initialised KAF (ELU) before vs after training (`kaf_elu`)
#
# Every channel starts as the ELU interpolant (dashed); training moves them apart.

# %%
before, after, name = pair("kaf_elu")
fig = plot_kaf_shapes(before, after, channels=4, target="elu", suptitle=f"VGG, kaf_elu, layer {name}")
save_figure(fig, "kaf_elu_init_vs_trained", figures_dir)

# %% [markdown]
# ## How far did the shapes move?
#
# Per KAF layer: the mean absolute change of the channel functions on the grid [-4, 4], and the
# layer's largest slope bound (its Lipschitz constant, used in chapter 6) before and after training.

# %%
rows = [{"activation": act, **r} for act, layers in res.result.items() for r in layers]
table = pd.DataFrame(rows)[["activation", "layer", "name", "channels", "mean_abs_change",
                            "slope_bound_before", "slope_bound_after"]].round(4)
save_table(table.set_index(["activation", "layer"]), "kaf_shape_changes", figures_dir, float_format="%.4f",
           caption="Mean absolute change of the KAF shapes and their slope bounds before and after training (VGG).")
