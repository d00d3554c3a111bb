# %% [markdown]
# # 02 · Adversarial examples (thesis sections 1.1 and 2.2)
#
# FGSM and PGD (L-inf, eps = 8/255) against the chapter-4 light CNN with ReLU (standard training). The images and the network's softmax outputs are stored in `results/<profile>/adversarial_examples/examples.safetensors`, so this figure is redrawn without the data set.
#
# | thesis figure / table | file |
# | --- | --- |
# | clean image, perturbation (magnified), adversarial image with predicted labels and confidences (FGSM, eq. 2.31; PGD, section 2.2.3) | `figures/adversarial_examples.pdf` / `.png` |
# | predictions and confidences of the shown examples | `figures/adversarial_examples.tex` |
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

# %% tags=["injected-parameters"]
# Parameters
profile = "full"

# %%
from thesis_lib.notebook import setup

plt, np, pd, ensure, percent, provenance_table, save_figure, save_table = setup()

from safetensors.torch import load_file

from thesis_lib.data import CIFAR10_CLASSES
from thesis_lib.plotting import plot_adversarial_example

# %%
# NBVAL_IGNORE_OUTPUT
# Runs the experiment(s) only if their results are missing or stale; otherwise just loads them.
res = ensure("adversarial_examples", profile, results_dir, data=data, device=device)

# %%
provenance_table([res])

# %% [markdown]
# ## The examples (Goodfellow et al. 2015, fig. 1 layout)
#
# Each row: the clean test image with the network's prediction, the perturbation
# $\delta = x_{adv} - x$ rescaled to the full grey range (its L-inf norm is at most $\epsilon$ = 8/255, invisible
# at true scale), and the adversarial image with the new prediction. FGSM takes one signed-gradient
# step of size $\epsilon$ (eq. 2.31); PGD iterates smaller steps with projection (section 2.2.3).

# %%
ex = load_file(res.dir / res.result["file"])
s = res.settings
rows, x, x_adv, labels, confs, true = [], [], [], [], [], []
for i in range(len(ex["labels"])):
    for attack in ("fgsm", "pgd"):
        p_clean, p_adv = ex["probs_clean"][i], ex[f"probs_{attack}"][i]
        x.append(ex["x"][i]); x_adv.append(ex[f"x_{attack}"][i])
        labels.append((int(p_clean.argmax()), int(p_adv.argmax())))
        confs.append((float(p_clean.max()), float(p_adv.max())))
        true.append(int(ex["labels"][i]))
        rows.append(f"{attack.upper()}, eps = {s['eps'] * 255:.0f}/255")
import torch
fig = plot_adversarial_example(torch.stack(x), None, torch.stack(x_adv), labels, confs, true_labels=true,
                               row_titles=rows)
save_figure(fig, "adversarial_examples", figures_dir)

# %%
table = pd.DataFrame([{
    "image": r["index"], "true": CIFAR10_CLASSES[r["label"]],
    "clean": f"{CIFAR10_CLASSES[r['clean_pred']]} ({percent(r['clean_conf'])}%)",
    "FGSM": f"{CIFAR10_CLASSES[r['fgsm_pred']]} ({percent(r['fgsm_conf'])}%)",
    "PGD": f"{CIFAR10_CLASSES[r['pgd_pred']]} ({percent(r['pgd_conf'])}%)",
    "L-inf FGSM x255": round(r["linf_fgsm"] * 255, 2), "L-inf PGD x255": round(r["linf_pgd"] * 255, 2),
} for r in res.result["examples"]]).set_index("image")
save_table(table, "adversarial_examples", figures_dir, float_format="%.2f",
           caption="Predictions (confidence) of the light ReLU CNN on clean and adversarial images.")
