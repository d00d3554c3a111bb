# %% [markdown]
# # 08 · Exploding gradients in KAF ResNets (thesis section 5.2)
#
# The CIFAR ResNets (thesis block: conv-BN-act-conv + shortcut, add, BN, act) trained as a sanity check: SGD, lr 0.1, batch 128, 150 epochs, augmentation. The thesis reports a KAF ResNet-56 that stays at chance, with NaN gradients in early layers and huge norms around layer 15. Every run logs each layer's weight and gradient L2 norm at each of the first iterations and stops cleanly at the first non-finite value. The claim gets a verdict with 95% intervals (`thesis_lib.reporting.chapter5`).
#
# | thesis figure / table | file |
# | --- | --- |
# | ResNet-20 and ResNet-56 (relu, kaf) clean accuracy with 95% intervals, divergence, largest gradient norm at initialisation per layer group | `figures/resnet_standard.tex` |
# | verdicts: KAF-ResNet-56 fails to train while ReLU-ResNet-56 trains; KAF-ResNet-20 trains | `figures/resnet_standard_verdicts.tex` |
# | test accuracy and loss per epoch (KafResNet-56 at chance) | `figures/resnet_standard_accuracy.pdf` / `.png` |
# | beyond the thesis: share of each KAF layer's inputs beyond the dictionary's reach (trained weights) | `figures/resnet_kaf_reach.pdf` / `.png` |
# | per-layer weight and gradient norms over the first iterations: early, middle and late layers | `figures/resnet_gradient_norms_resnet20_relu.pdf`, `figures/resnet_gradient_norms_resnet20_kaf.pdf`, `figures/resnet_gradient_norms_resnet56_relu.pdf`, `figures/resnet_gradient_norms_resnet56_kaf.pdf` (and `.png`) |
#
# **Profile and hardware.** The stored outputs come from the profile and machine listed in the
# provenance table below (read from the results' `summary.json`); every figure carries a stamp with
# the profile's scale, read from the same results. Profiles: `smoke` (CPU, a small CIFAR-10 subset,
# one epoch: proves the pipeline end to end; its networks are at chance and its numbers are *not*
# the thesis's results), `cpu` (a stated reduction for a 2-core CPU: fewer epochs than the
# protocol's 150 on all 50,000 training images, with a step-decayed learning rate; the stamp says how
# many) and `full` (exactly the protocol, a GPU). `python -m thesis_lib.reporting.notebooks`
# (default `--profile best`) shows the largest profile whose results exist.

# %% tags=["parameters"]
profile = "smoke"  # "smoke" (CPU, minutes: proves the pipeline), "cpu" (reduced scale, CPU hours) or "full" (the protocol, GPU)
results_dir = "../results"  # results/<profile>/<experiment>/ (JSON/CSV, committed)
figures_dir = "../figures"  # figures/<name>.pdf, .png and tables figures/<name>.tex
data = None  # CIFAR-10 location; None: $THESIS_DATA, else torchvision's download into ./data
device = "auto"  # "auto" (CUDA when present), "cpu", "cuda"

# %% tags=["injected-parameters"]
# Parameters
profile = "cpu"

# %%
from thesis_lib.notebook import setup

plt, np, pd, ensure, percent, provenance_table, save_figure, save_table = setup()

from IPython.display import Markdown

from thesis_lib.experiments.resnet_standard import norms_frame
from thesis_lib.plotting import pick_layers, plot_gradient_norms, plot_training_curves
from thesis_lib.reporting import chapter5 as c5

# %%
# NBVAL_IGNORE_OUTPUT
# Runs the experiment(s) only if their results are missing or stale; otherwise just loads them.
res = ensure("resnet_standard", profile, results_dir, data=data, device=device)

# %%
provenance_table([res])

# %% [markdown]
# ## What these numbers are

# %%
stamp = c5.chapter5_stamp(res)
table = c5.exploding_table(res)
at_chance = "that is what the claim of section 5.2 is about (see the verdict)"
print(c5.profile_note(res, table["clean"], at_chance))

# %% [markdown]
# ## Clean accuracy, divergence and gradients at initialisation
#
# Clean accuracy on the profile's test set with its 95% Wilson interval; where a run first turned
# non-finite (step, quantity, layer); and, per layer group (stem convolution, the three stages of
# residual blocks, the dense layer), the largest gradient L2 norm of its kernels at the first
# iteration, i.e. at initialisation.

# %%
save_table(c5.exploding_display(table), "resnet_standard", figures_dir, float_format="%.1f", stamp=stamp,
           caption="CIFAR ResNets, standard training (SGD, lr 0.1): clean accuracy (95\\% interval), divergence, gradient norms at initialisation.")

# %% [markdown]
# ## Verdict
#
# "Trains": no divergence and the clean accuracy's 95% interval above the chance threshold printed
# below; "fails": diverged, or the interval below it. The difference column is ReLU-56's clean
# accuracy minus KAF-56's (Newcombe interval, z-test); a smoke run decides nothing.

# %%
verdicts = c5.exploding_verdicts(res)
print(f"significance level {c5.ALPHA}; chance threshold {c5.CHANCE_LEVEL:.0%} clean accuracy (10 classes: chance is 10%)")
save_table(c5.verdicts_display(verdicts, detail=True), "resnet_standard_verdicts", figures_dir, stamp=stamp,
           caption="CIFAR ResNets, standard training: the thesis's claims of section 5.2 and their verdicts.")

# %%
runs = {f"{m['arch']} {m['activation']}": res.run(f"{m['arch']}_{m['activation']}")["history"]
        for m in res.result["models"]}
fig = plot_training_curves(runs, keys=("train_loss", "test_loss", "test_acc"))
save_figure(fig, "resnet_standard_accuracy", figures_dir, stamp=stamp)

# %% [markdown]
# ## Weight and gradient norms over the first iterations
#
# For each run, the L2 norm of each convolution/dense kernel and of its gradient at each of the first
# iterations; layers are numbered in forward order (0 = stem convolution). Early, middle and late layers
# are drawn, plus layer 15 (where the thesis saw huge norms) when the network has it. A log axis cannot
# show a norm of exactly 0 or a non-finite one: those get strips of their own, one row per layer in its
# colour, "0" under the panel and "NaN/inf" above it; a lone finite value (e.g. a gradient at step 0
# followed by zeros) is drawn as a dot.

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
    save_figure(fig, f"resnet_gradient_norms_{key}", figures_dir, stamp=stamp)

# %%
key = "resnet56_kaf" if "resnet56_kaf" in frames else next(iter(frames))
f = frames[key]
summary = (f.groupby("layer").agg(max_weight=("weight_norm", "max"), max_grad=("grad_norm", "max"))
           .sort_values("max_grad", ascending=False).head(5))
print(f"{key}: the five layers with the largest gradient norm in the first {f['step'].nunique()} logged steps")
summary.round(3)

# %% [markdown]
# ## Where the gradient stops: KAF inputs beyond the dictionary's reach
#
# Beyond the thesis. A Gaussian KAF is a sum of bumps centred on its dictionary (20 points on [-3, 3]);
# an input farther than the kernel's reach from every point (each bump below 1e-3 of its peak) gets
# output and gradient about 0, so a layer whose inputs all lie there passes nothing back: the exactly
# zero gradients of the norm logs. Share of each KAF layer's inputs beyond reach, on 500 stratified
# test images, for the committed trained weights (`thesis_lib.analysis.kaf_reach`).

# %%
from thesis_lib.analysis.kaf_reach import reach_lines
from thesis_lib.plotting import plot_kaf_reach
from thesis_lib.reporting.kaf_reach import committed_reach

reach = committed_reach("resnet_standard", profile, results_dir, data=data)
if reach is None:
    print(f"no committed KAF weights of resnet_standard at the {profile} profile")
else:
    fig = plot_kaf_reach(reach, title="Standard training: KAF inputs beyond the dictionary's reach")
    save_figure(fig, "resnet_kaf_reach", figures_dir, stamp=stamp)
    display(Markdown("\n".join(reach_lines(reach))))

# %% [markdown]
# ## Interpretation
#
# Computed from the tables above: the verdicts, then each run's largest gradient norm at initialisation.

# %%
lines = [c5.profile_note(res, table["clean"], at_chance), "", c5.verdict_counts(verdicts), ""]
Markdown("\n".join(lines + c5.verdict_lines(verdicts) + ["", "Gradient norms at initialisation, and layers that stopped learning after the first update:", ""] + c5.init_gradient_lines(table)))
