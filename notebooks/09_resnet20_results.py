# %% [markdown]
# # 09 · ResNet-20 results (thesis section 5.3)
#
# ResNet-20 (thesis block) with eight activations, fast adversarial training (eps 8/255) for 80 epochs with augmentation (pad 4, random crop, flip) and the one-cycle schedule between bounds from this project's learning-rate range tests (the thesis recorded only kaf_relu's: 0.01, 0.8). Robust accuracy: PGD-50-10 on the whole test set (smoke: PGD-5x1 on 32 images).
#
# | thesis figure / table | file |
# | --- | --- |
# | table: lr bounds (range tests), clean accuracy, robust accuracy (PGD-50-10) | `figures/resnet20_results.tex` |
# | accuracy vs robustness (fixed activations: diamonds, KAFs: crosses) | `figures/resnet20_accuracy_vs_robustness.pdf` / `.png` |
# | range tests (full: all eight activations; smoke: relu and kaf_relu) | `figures/lr_range_tests_resnet20.pdf` / `.png` |
# | training curves | `figures/resnet20_training_curves.pdf` / `.png` |
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

from thesis_lib.plotting import activation_color, plot_accuracy_vs_robustness, plot_training_curves

# %%
# NBVAL_IGNORE_OUTPUT
# Runs the experiment(s) only if their results are missing or stale; otherwise just loads them.
res = ensure("resnet20_at", profile, results_dir, data=data, device=device)

# %%
# NBVAL_IGNORE_OUTPUT
res_lr = ensure("resnet20_lr_range", profile, results_dir, data=data, device=device)  # a requirement: already run

# %%
provenance_table([res])

# %%
p = res.result["pgd"]
attack = f"PGD-{p['steps']}x{p['restarts']}"
df = pd.DataFrame(res.result["models"])
table = pd.DataFrame({
    "activation": df["activation"], "lr_min": df["lr_min"], "lr_max": df["lr_max"], "bounds from": df["lr_source"],
    "clean acc (%)": [percent(v) for v in df["clean_acc"]],
    f"robust acc, {attack} (%)": [percent(v) for v in df["robust_acc"]],
    "images": df["n_eval"], "diverged": [bool(v) for v in df["diverged"]],
}).set_index("activation")
save_table(table, "resnet20_results", figures_dir, float_format="%.3g",
           caption=f"ResNet-20, fast adversarial training: one-cycle bounds, clean and robust accuracy ({attack}, eps 8/255).")

# %%
fig = plot_accuracy_vs_robustness(df, title="ResNet-20, fast adversarial training")
save_figure(fig, "resnet20_accuracy_vs_robustness", figures_dir)

# %% [markdown]
# ## Learning-rate range tests and training curves

# %%
acts = res_lr.settings["activations"]
ncols = min(4, len(acts)); nrows = -(-len(acts) // ncols)
fig, axes = plt.subplots(nrows, ncols, figsize=(2.8 * ncols, 2.4 * nrows + 0.3), sharex=True, squeeze=False)
for ax in axes.flat[len(acts):]:
    ax.set_visible(False)
for ax, act in zip(axes.flat, acts):
    r = res_lr.step(f"lr_find_{act}")
    ax.plot(r.get("lrs", []), r.get("losses", []), color=activation_color(act))
    for v, c in ((r.get("lr_min"), "C2"), (r.get("lr_max"), "C3")):
        if v is not None:
            ax.axvline(v, color=c, ls="--", lw=0.8)
    ax.set_xscale("log"); ax.set_title(act if not r.get("error") else f"{act} (no bounds)")
for ax in axes[-1]:
    ax.set_xlabel("learning rate")
fig.suptitle("ResNet-20 range tests (smoothed loss); dashed: lr_min (green), lr_max (red)")
save_figure(fig, "lr_range_tests_resnet20", figures_dir)

# %%
fig = plot_training_curves({a: res.run(a)["history"] for a in res.settings["activations"]})
save_figure(fig, "resnet20_training_curves", figures_dir)
