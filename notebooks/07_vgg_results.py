# %% [markdown]
# # 07 · VGG results (thesis section 5.1)
#
# The VGG-inspired CNN (three [conv-BN-act] x2 + pool + dropout blocks of 32/64/128 filters, dense 128) with seven activations, fast adversarial training (eps 8/255) for 60 epochs with the one-cycle schedule, no augmentation. The thesis used the bounds of its own range tests (recorded in the protocol); the `cpu` profile trains every activation twice: between the bounds of this project's range tests (notebook 06), and, as a second row set, between the thesis's. Robust accuracy: PGD-50-10 (an image counts when it is classified correctly under every restart), beside the thesis's own evaluation (ART 2020 PGD without labels, one restart kept for the whole set) on the same images. Each of the thesis's comparisons gets a verdict with its 95% interval and p-value (`thesis_lib.reporting.chapter5`).
#
# | thesis figure / table | file |
# | --- | --- |
# | table: lr bounds, clean accuracy, robust accuracy (PGD-50-10) and the thesis's evaluation, with 95% intervals; overfitting watch | `figures/vgg_results.tex` |
# | verdicts on the thesis's comparisons: difference, 95% interval, p-value | `figures/vgg_verdicts.tex` |
# | accuracy vs robustness with 95% intervals (fixed activations: diamonds, KAFs: crosses) | `figures/vgg_accuracy_vs_robustness.pdf` / `.png` |
# | the second row set, between the thesis's bounds: table and verdicts (where trained) | `figures/vgg_results_thesis_lr.tex`, `figures/vgg_verdicts_thesis_lr.tex` |
# | our PGD vs the thesis's evaluation, per model; cross-check against the installed ART | `figures/vgg_evaluation.tex`, `figures/vgg_art_crosscheck.tex` |
# | catastrophic-overfitting watch: PGD accuracy on fixed training images per epoch | `figures/vgg_overfitting_watch.pdf` / `.png` |
# | robust accuracy vs PGD iterations (relu, kaf), with 95% bands | `figures/vgg_robust_vs_iterations.pdf` / `.png` |
# | training curves | `figures/vgg_training_curves.pdf` / `.png` |
# | beyond the thesis: share of each KAF layer's inputs beyond the dictionary's reach (committed weights) | `figures/vgg_kaf_reach.tex` |
#
# **Profile and hardware.** The stored outputs come from the profile and machine listed in the
# provenance table below (read from the results' `summary.json`); every figure carries a stamp with
# the profile's scale, read from the same results. Profiles: `smoke` (CPU, a small CIFAR-10 subset,
# one epoch: proves the pipeline end to end; its networks are at chance and its numbers are *not*
# the thesis's results), `cpu` (a stated reduction for a 2-core CPU: 15 of the protocol's 60 epochs on
# all 50,000 training images, PGD-50-10 on 1,000 stratified test images) and `full` (exactly the
# protocol, a GPU). `python -m thesis_lib.reporting.notebooks` (default `--profile best`) shows the
# largest profile whose results exist.

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

from thesis_lib.plotting import plot_accuracy_vs_robustness_ci, plot_overfitting_watch
from thesis_lib.plotting import plot_robust_vs_iterations_ci, plot_training_curves
from thesis_lib.reporting import chapter5 as c5

# %%
# NBVAL_IGNORE_OUTPUT
# Runs the experiment(s) only if their results are missing or stale; otherwise just loads them.
res = ensure("vgg", profile, results_dir, data=data, device=device)

# %%
from thesis_lib.experiments import ExperimentResults

res_lr = ExperimentResults("vgg_lr_range", profile, results_dir)  # a requirement of vgg (notebook 06): already run

# %%
provenance_table([res, res_lr])

# %% [markdown]
# ## What these numbers are
#
# Read from the results' settings: the profile, its scale, and how far the networks got.

# %%
stamp = c5.chapter5_stamp(res)
table = c5.robustness_table(res, res_lr)
attack = c5.attack_label(res.result.get("pgd") or res.settings.get("pgd"))
print(c5.profile_note(res, table["clean"]))

# %% [markdown]
# ## Clean and robust accuracy
#
# Clean accuracy on the test set the training run evaluated (float32); robust accuracy under the
# profile's PGD on a stratified subset of it; the thesis's own evaluation on the same images and the
# paired difference (thesis protocol minus ours). Brackets: 95% intervals (Wilson for accuracies,
# Newcombe's paired interval for the difference). "bounds from" says where each model's one-cycle bounds
# came from (a range test that gave none falls back to the thesis's recorded pair). The watch column is
# the PGD accuracy on fixed training images per epoch; "collapsed" marks catastrophic overfitting.

# %%
shown = c5.robustness_display(table, attack)
save_table(shown, "vgg_results", figures_dir, float_format="%.3g", stamp=stamp,
           caption=f"VGG, fast adversarial training: one-cycle bounds, clean and robust accuracy ({attack}, eps 8/255) with 95\\% intervals.")

# %%
fig = plot_accuracy_vs_robustness_ci(table, title=f"VGG, fast adversarial training ({attack})", stamp=stamp)
save_figure(fig, "vgg_accuracy_vs_robustness", figures_dir, stamp=stamp)

# %% [markdown]
# ## Verdicts on the thesis's comparisons
#
# One row per comparison: the measured difference in percentage points with its 95% interval and the
# p-value of the test named (robust accuracies paired on the same attacked images: McNemar's exact test;
# clean accuracies: Newcombe's interval and the z-test of two proportions). A comparison with a network
# at chance accuracy, or any comparison of a smoke run, decides nothing.

# %%
verdicts = c5.robustness_verdicts(res)
print(f"significance level {c5.ALPHA} (two-sided); a network below {c5.CHANCE_LEVEL:.0%} clean accuracy has not learnt the task")
save_table(c5.verdicts_display(verdicts), "vgg_verdicts", figures_dir, stamp=stamp,
           caption="VGG, fast adversarial training: the thesis's comparisons, measured differences with 95\\% intervals and verdicts.")

# %% [markdown]
# ## Between the thesis's bounds
#
# The same seven models trained between the one-cycle bounds the thesis recorded for VGG (listed in the
# protocol), evaluated the same way (no iterations curve, no ART cross-check): does the choice of bounds
# change the table?

# %%
res_thesis_lr = c5.thesis_lr_rows(res)
if res_thesis_lr is not None:
    table_thesis_lr = c5.robustness_table(res_thesis_lr)
    display(save_table(c5.robustness_display(table_thesis_lr, attack), "vgg_results_thesis_lr", figures_dir,
                       float_format="%.3g", stamp=stamp,
                       caption=f"VGG between the thesis's one-cycle bounds: clean and robust accuracy ({attack}) with 95\\% intervals."))
    verdicts_thesis_lr = c5.robustness_verdicts(res_thesis_lr)
    display(save_table(c5.verdicts_display(verdicts_thesis_lr), "vgg_verdicts_thesis_lr", figures_dir, stamp=stamp,
                       caption="VGG between the thesis's bounds: the thesis's comparisons, with 95\\% intervals and verdicts."))
else:
    verdicts_thesis_lr = None
    print(f"no second row set (the thesis's bounds) in the {profile} profile")

# %% [markdown]
# ## Does the evaluation choice move robust accuracy?
#
# Our PGD (labels, worst case over restarts per image) against the thesis's evaluation (ART's PGD
# without labels, one restart kept for the whole set); `flipped_to_correct`: images misclassified clean
# that the label-free attack pushed onto the true class.

# %%
save_table(c5.evaluation_table(res).round(4), "vgg_evaluation", figures_dir, float_format="%.4g", stamp=stamp,
           caption="VGG: robust accuracy under our PGD and under the thesis's evaluation on the same images.")

# %%
save_table(c5.art_crosscheck_table(res).round(4), "vgg_art_crosscheck", figures_dir, float_format="%.4g", stamp=stamp,
           caption="The thesis-protocol PGD of this project against the installed ART on a VGG, same images.")

# %% [markdown]
# ## Catastrophic overfitting
#
# PGD accuracy on fixed training images after each epoch (without a watch in the profile, nothing is drawn).

# %%
fig = plot_overfitting_watch(c5.histories(res), title=f"VGG: {c5.watch_label(res)}, per epoch", stamp=stamp)
save_figure(fig, "vgg_overfitting_watch", figures_dir, stamp=stamp)

# %% [markdown]
# ## Has the attack converged? Robust accuracy vs PGD iterations
#
# One PGD run of the most iterations per model; the curve reads off, per image, the first iterate
# that fooled the network. The table gives the drop after the evaluation's iterations.

# %%
fig = plot_robust_vs_iterations_ci(c5.iterations_table(res), title="VGG: robust accuracy vs PGD iterations", stamp=stamp)
save_figure(fig, "vgg_robust_vs_iterations", figures_dir, stamp=stamp)
converged = c5.convergence_table(res)
converged.round(2) if len(converged) else print(f"no robust-accuracy-vs-iterations curve in the {profile} profile")

# %% [markdown]
# ## Training curves

# %%
fig = plot_training_curves(c5.histories(res))
save_figure(fig, "vgg_training_curves", figures_dir, stamp=stamp)

# %% [markdown]
# ## Do the KAFs' inputs stay within their dictionary?
#
# A Gaussian KAF is a sum of bumps centred on its dictionary (thesis: 20 points on [-3, 3]); farther
# than the kernel's reach from every point (each bump below 1e-3 of its peak), its output and its
# gradient vanish, so a unit fed such inputs is dead. Share of each KAF layer's inputs beyond that
# reach, in percent, on 500 stratified test images, for the committed weights of this profile
# (`thesis_lib.analysis.kaf_reach`). If the first KAF layers of a network receive their inputs beyond
# reach, the network has lost its input, which would explain a collapse to chance accuracy; notebook 09
# shows the same for the ResNet-20 KAFs.

# %%
from thesis_lib.activations import KAF
from thesis_lib.analysis.kaf_reach import kernel_reach, reach_lines
from thesis_lib.reporting.kaf_reach import committed_reach

print(f"reach at the thesis's bandwidth: {kernel_reach(float(KAF(1).gamma)):.2f} beyond the outer dictionary points")
reach = committed_reach("vgg", profile, results_dir, data=data)
if reach is None:
    print(f"no committed KAF weights of vgg at the {profile} profile (smoke weights are never committed)")
else:
    display(save_table((100 * reach).round(2), "vgg_kaf_reach", figures_dir, float_format="%.2f", stamp=stamp,
                       caption="VGG KAFs: share of each KAF layer's inputs (\\%) beyond the kernels' reach, 500 test images."))
    display(Markdown("\n".join(reach_lines(reach))))

# %% [markdown]
# ## Interpretation
#
# Computed from the verdict tables above: each comparison, what was measured, and what this run can
# say about it (first the range-test bounds, then, where trained, the thesis's bounds).

# %%
lines = [c5.profile_note(res, table["clean"]), "", c5.verdict_counts(verdicts), ""]
lines += c5.verdict_lines(verdicts, failed=c5.failed_runs(table))
if verdicts_thesis_lr is not None:
    lines += ["", "Between the thesis's bounds: " + c5.verdict_counts(verdicts_thesis_lr), ""]
    lines += c5.verdict_lines(verdicts_thesis_lr, failed=c5.failed_runs(table_thesis_lr))
Markdown("\n".join(lines))
