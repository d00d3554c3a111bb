# %% [markdown]
# # 08 · Exploding gradients in KAF ResNets (thesis section 5.2)
#
# The CIFAR ResNets (thesis block: conv-BN-act-conv + shortcut, add, BN, act) trained as a sanity check: SGD, lr 0.1, batch 128, 150 epochs, augmentation. The thesis reports a KAF ResNet-56 that stays at chance, with NaN gradients in early layers and huge norms around layer 15. Every run logs each layer's weight and gradient L2 norm at each of the first iterations and stops cleanly at the first non-finite value.
#
# | thesis figure / table | file |
# | --- | --- |
# | ResNet-20 and ResNet-56 (relu, kaf) clean accuracy, divergence | `figures/resnet_standard.tex` |
# | test accuracy and loss per epoch (KafResNet-56 at chance) | `figures/resnet_standard_accuracy.pdf` / `.png` |
# | per-layer weight and gradient norms over the first iterations: early, middle and late layers | `figures/resnet_gradient_norms_resnet20_relu.pdf`, `figures/resnet_gradient_norms_resnet20_kaf.pdf`, `figures/resnet_gradient_norms_resnet56_relu.pdf`, `figures/resnet_gradient_norms_resnet56_kaf.pdf` (and `.png`) |
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

from thesis_lib.experiments.resnet_standard import norms_frame
from thesis_lib.plotting import pick_layers, plot_gradient_norms, plot_training_curves

# %%
# NBVAL_IGNORE_OUTPUT
# Runs the experiment(s) only if their results are missing or stale; otherwise just loads them.
res = ensure("resnet_standard", profile, results_dir, data=data, device=device)

# %%
provenance_table([res])

# %%
rows = []
for m in res.result["models"]:
    d = m["diverged"] or {}
    rows.append({"model": m["arch"], "activation": m["activation"], "clean acc (%)": percent(m["clean_acc"]),
                 "best test acc (%)": percent(m["best_test_acc"]), "epochs": m["epochs_done"],
                 "diverged at step": d.get("step"), "first non-finite": d.get("quantity"), "in layer": d.get("layer")})
table = pd.DataFrame(rows).set_index(["model", "activation"])
save_table(table, "resnet_standard", figures_dir, float_format="%.1f",
           caption="CIFAR ResNets, standard training (SGD, lr 0.1): clean accuracy and divergence.")

# %%
runs = {f"{m['arch']} {m['activation']}": res.run(f"{m['arch']}_{m['activation']}")["history"]
        for m in res.result["models"]}
fig = plot_training_curves(runs, keys=("train_loss", "test_loss", "test_acc"))
save_figure(fig, "resnet_standard_accuracy", figures_dir)

# %% [markdown]
# ## Weight and gradient norms over the first iterations
#
# For each run, the L2 norm of each convolution/dense kernel and of its gradient at each of the first
# iterations; layers are numbered in forward order (0 = stem convolution). Early, middle and late layers
# are drawn, plus layer 15 (where the thesis saw huge norms) when the network has it. Non-finite values
# are drawn as red crosses on the top edge.

# %%
frames = {}
for m in res.result["models"]:
    key = f"{m['arch']}_{m['activation']}"
    frames[key] = norms_frame(res.step(f"norms_{key}")).rename(
        columns={"layer_index": "layer", "weight": "weight_norm", "grad": "grad_norm"})
for key, f in frames.items():
    layers = pick_layers(sorted(f["layer"].unique()), 3)
    if f["layer"].max() >= 15 and 15 not in layers:
        layers = sorted(layers + [15])
    fig = plot_gradient_norms(f, layers=layers, title=key.replace("_", ", "))
    save_figure(fig, f"resnet_gradient_norms_{key}", figures_dir)

# %%
key = "resnet56_kaf" if "resnet56_kaf" in frames else next(iter(frames))
f = frames[key]
summary = (f.groupby("layer").agg(max_weight=("weight_norm", "max"), max_grad=("grad_norm", "max"))
           .sort_values("max_grad", ascending=False).head(5))
print(f"{key}: the five layers with the largest gradient norm in the first {f['step'].nunique()} logged steps")
summary.round(3)
