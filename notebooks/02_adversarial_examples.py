# %% [markdown]
# # 02 · Adversarial examples (thesis sections 1.1 and 2.2)
#
# FGSM and PGD (L-inf, eps = 8/255) against the chapter-4 light CNN with ReLU (standard training), on correctly classified test images of different classes (the first correct image of each class in the stratified pool). The images and the network's softmax outputs are stored in `results/<profile>/adversarial_examples/examples.safetensors`, so this figure is redrawn without the data set.
#
# | thesis figure / table | file |
# | --- | --- |
# | clean images and their FGSM (eq. 2.31) and PGD (section 2.2.3) versions, with predicted labels and probabilities | `figures/adversarial_examples.pdf` / `.png` |
# | predictions and confidences of the shown examples | `figures/adversarial_examples.tex` |
#
# **Profile and hardware.** The stored outputs come from the profile and machine listed in the
# provenance table below (read from the results' `summary.json`). Profiles: `smoke` (CPU, a small
# CIFAR-10 subset, one epoch: proves the pipeline end to end; its numbers are *not* the thesis's
# results), `cpu` (the chapter-4 light CNNs, notebooks 02, 04 and 05: the light CNNs on all 50,000 training images
# for 5 of the protocol's 20 epochs, attacked as in the protocol, on a 2-core CPU) and `full` (exactly the protocol: run on the 2-core CPU for the chapter-4
# light CNNs of notebooks 02, 04 and 05; the other experiments need a GPU and have not been run at this
# scale yet). `python -m thesis_lib.reporting.notebooks`
# (default `--profile best`) shows, per notebook, the largest profile whose results exist; run
# `python -m thesis_lib reproduce --profile full` on a GPU first to reproduce the protocol.

# %% tags=["parameters"]
profile = "smoke"  # "smoke" (CPU, minutes: proves the pipeline), "cpu" (a stated reduced scale, where run) or "full" (the protocol, GPU)
results_dir = "../results"  # results/<profile>/<experiment>/ (JSON/CSV, committed)
figures_dir = "../figures"  # figures/<name>.pdf, .png and tables figures/<name>.tex
data = None  # CIFAR-10 location; None: $THESIS_DATA, else torchvision's download into ./data
device = "auto"  # "auto" (CUDA when present), "cpu", "cuda"

# %% tags=["injected-parameters"]
# Parameters
profile = "full"

# %%
from thesis_lib.notebook import setup

plt, np, pd, ensure, percent, provenance_table, save_figure, save_table = setup()

from safetensors.torch import load_file

from thesis_lib.data import CIFAR10_CLASSES
from thesis_lib.plotting import plot_adversarial_grid
from thesis_lib.reporting.stamp import profile_stamp

# %%
# NBVAL_IGNORE_OUTPUT
# Runs the experiment(s) only if their results are missing or stale; otherwise just loads them.
res = ensure("adversarial_examples", profile, results_dir, data=data, device=device)

# %%
provenance_table([res])

# %% [markdown]
# ## The examples
#
# One row per image (its true class on the left): the clean test image, its FGSM version (one
# signed-gradient step of size $\epsilon$, eq. 2.31) and its PGD version (iterated smaller steps with
# projection, section 2.2.3), each with the network's prediction and softmax probability underneath
# (red: wrong). The perturbations, at most $\epsilon$ = 8/255 per pixel (column titles: the largest
# $\|\delta\|_\infty$ measured), are invisible at true scale.

# %%
ex = load_file(res.dir / res.result["file"])
s = res.settings
fig = plot_adversarial_grid(
    {"clean": ex["x"], "FGSM": ex["x_fgsm"], f"PGD-{s['pgd_steps']}": ex["x_pgd"]},
    {"clean": ex["probs_clean"], "FGSM": ex["probs_fgsm"], f"PGD-{s['pgd_steps']}": ex["probs_pgd"]},
    ex["labels"], class_names=CIFAR10_CLASSES)
save_figure(fig, "adversarial_examples", figures_dir, stamp=profile_stamp(res))
print("classes shown:", ", ".join(CIFAR10_CLASSES[int(c)] for c in ex["labels"]))

# %%
table = pd.DataFrame([{
    "image": r["index"], "true": CIFAR10_CLASSES[r["label"]],
    "clean": f"{CIFAR10_CLASSES[r['clean_pred']]} ({percent(r['clean_conf'])}%)",
    "FGSM": f"{CIFAR10_CLASSES[r['fgsm_pred']]} ({percent(r['fgsm_conf'])}%)",
    "PGD": f"{CIFAR10_CLASSES[r['pgd_pred']]} ({percent(r['pgd_conf'])}%)",
    "L-inf FGSM x255": round(r["linf_fgsm"] * 255, 2), "L-inf PGD x255": round(r["linf_pgd"] * 255, 2),
} for r in res.result["examples"]]).set_index("image")
save_table(table, "adversarial_examples", figures_dir, float_format="%.2f",
           caption="Predictions (confidence) of the light ReLU CNN on clean and adversarial images.",
           stamp=profile_stamp(res))
