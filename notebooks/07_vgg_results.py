# %% [markdown]
# # 07 · VGG results (thesis section 5.1)
#
# The VGG-inspired CNN (three [conv-BN-act] x2 + pool + dropout blocks of 32/64/128 filters, dense 128) with seven activations, fast adversarial training (eps 8/255) for 60 epochs with the one-cycle schedule between the thesis's range-test bounds. Robust accuracy: PGD L-inf eps 8/255, step 2/255, 50 iterations, 10 restarts on the whole test set (the smoke profile: 5 iterations, 1 restart, 32 images).
#
# | thesis figure / table | file |
# | --- | --- |
# | table: lr bounds, clean accuracy, robust accuracy (PGD-50-10) | `figures/vgg_results.tex` |
# | accuracy vs robustness (fixed activations: diamonds, KAFs: crosses) | `figures/vgg_accuracy_vs_robustness.pdf` / `.png` |
# | robust accuracy vs PGD iterations (relu, kaf) | `figures/vgg_robust_vs_iterations.pdf` / `.png` |
# | training curves | `figures/vgg_training_curves.pdf` / `.png` |
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
profile = "smoke"  # "smoke" (CPU, minutes: proves the pipeline), "cpu" (a stated reduced scale, where run) or "full" (the protocol, GPU)
results_dir = "../results"  # results/<profile>/<experiment>/ (JSON/CSV, committed)
figures_dir = "../figures"  # figures/<name>.pdf, .png and tables figures/<name>.tex
data = None  # CIFAR-10 location; None: $THESIS_DATA, else torchvision's download into ./data
device = "auto"  # "auto" (CUDA when present), "cpu", "cuda"

# %%
from thesis_lib.notebook import setup

plt, np, pd, ensure, percent, provenance_table, save_figure, save_table = setup()

from thesis_lib.plotting import plot_accuracy_vs_robustness, plot_robust_vs_iterations, plot_training_curves, profile_stamp

# %%
# NBVAL_IGNORE_OUTPUT
# Runs the experiment(s) only if their results are missing or stale; otherwise just loads them.
res = ensure("vgg", profile, results_dir, data=data, device=device)

# %%
provenance_table([res])

# %%
stamp = profile_stamp(res)  # on every figure and table below

# %%
p = res.result["pgd"]
attack = f"PGD-{p['steps']}x{p['restarts']}"
df = pd.DataFrame(res.result["models"])
table = pd.DataFrame({
    "activation": df["activation"], "lr_min": df["lr_min"], "lr_max": df["lr_max"],
    "clean acc (%)": [percent(v) for v in df["clean_acc"]],
    f"robust acc, {attack} (%)": [percent(v) for v in df["robust_acc"]],
    "images": df["n_eval"], "diverged": [bool(v) for v in df["diverged"]],
}).set_index("activation")
save_table(table, "vgg_results", figures_dir, float_format="%.3g",
           caption=f"VGG, fast adversarial training: one-cycle bounds, clean and robust accuracy ({attack}, eps 8/255).",
           stamp=stamp)

# %% [markdown]
# ## Accuracy vs robustness

# %%
fig = plot_accuracy_vs_robustness(df, title="VGG, fast adversarial training")
save_figure(fig, "vgg_accuracy_vs_robustness", figures_dir, stamp=stamp)

# %% [markdown]
# ## Has the attack converged? Robust accuracy vs PGD iterations
#
# One PGD run of the largest iteration count per model; the curve reads off, per example, the first
# iterate that fooled the network (`thesis_lib.attacks.accuracy_vs_iterations`).

# %%
rows = [r | {"activation": a} for a in res.settings["curve_activations"] for r in res.step(f"pgd_iterations_{a}")]
fig = plot_robust_vs_iterations(pd.DataFrame(rows))
save_figure(fig, "vgg_robust_vs_iterations", figures_dir, stamp=stamp)
pd.DataFrame(rows).pivot(index="iterations", columns="activation", values="robust_acc").mul(100).round(1)

# %% [markdown]
# ## Training curves

# %%
fig = plot_training_curves({a: res.run(a)["history"] for a in res.settings["activations"]})
save_figure(fig, "vgg_training_curves", figures_dir, stamp=stamp)
