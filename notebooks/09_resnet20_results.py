# %% [markdown]
# # 09 · ResNet-20 results (thesis section 5.3)
#
# ResNet-20 (thesis block) with eight activations, fast adversarial training (eps 8/255) for 80 epochs with augmentation (pad 4, random crop, flip) and the one-cycle schedule between bounds from this project's learning-rate range tests (the thesis recorded only kaf_relu's: 0.01, 0.8). Robust accuracy: PGD-50-10 on the whole test set (an image counts when it is classified correctly under every restart), beside the thesis's own evaluation (ART 2020 PGD without labels, one restart kept for the whole set) on the same images. Each of the thesis's comparisons gets a verdict with its 95% interval and p-value (`thesis_lib.reporting.chapter5`).
#
# | thesis figure / table | file |
# | --- | --- |
# | table: lr bounds (range tests), clean accuracy, robust accuracy (PGD-50-10) and the thesis's evaluation, with 95% intervals; overfitting watch; training time | `figures/resnet20_results.tex` |
# | verdicts on the thesis's comparisons: difference, 95% interval, p-value | `figures/resnet20_verdicts.tex` |
# | accuracy vs robustness with 95% intervals (fixed activations: diamonds, KAFs: crosses) | `figures/resnet20_accuracy_vs_robustness.pdf` / `.png` |
# | our PGD vs the thesis's evaluation, per model; cross-check against the installed ART | `figures/resnet20_evaluation.tex`, `figures/resnet20_art_crosscheck.tex` |
# | range tests (full: all eight activations; smoke: relu and kaf_relu) | `figures/lr_range_tests_resnet20.pdf` / `.png` |
# | catastrophic-overfitting watch: PGD accuracy on fixed training images per epoch | `figures/resnet20_overfitting_watch.pdf` / `.png` |
# | robust accuracy vs PGD iterations (relu, kaf), with 95% bands | `figures/resnet20_robust_vs_iterations.pdf` / `.png` |
# | training curves | `figures/resnet20_training_curves.pdf` / `.png` |
# | beyond the thesis: share of each KAF layer's inputs beyond the dictionary's reach (committed weights) | `figures/resnet20_kaf_reach.tex` |
# | relu, swish and kaf over three training seeds: mean and spread (where the repeats exist) | `figures/resnet20_seeds.pdf` / `.png`, `figures/resnet20_seeds.tex` |
#
# **Profile and hardware.** The stored outputs come from the profile and machine listed in the
# provenance table below (read from the results' `summary.json`); every figure carries a stamp with
# the profile's scale, read from the same results. Profiles: `smoke` (CPU, a small CIFAR-10 subset,
# one epoch: proves the pipeline end to end; its networks are at chance and its numbers are *not*
# the thesis's results), `cpu` (a stated reduction for a 2-core CPU: fewer epochs than the
# protocol's 80 on all 50,000 training images, PGD-50-10 on a stratified subset of the test set; the
# stamp says how many) and `full` (exactly the protocol, a GPU). `python -m thesis_lib.reporting.notebooks`
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

from thesis_lib.experiments import ensure_supplementary
from thesis_lib.plotting import plot_accuracy_vs_robustness_ci, plot_lr_range_tests, plot_overfitting_watch
from thesis_lib.plotting import plot_robust_vs_iterations_ci, plot_seeds, plot_training_curves
from thesis_lib.reporting import chapter5 as c5

# %%
# NBVAL_IGNORE_OUTPUT
# Runs the experiment(s) only if their results are missing or stale; otherwise just loads them.
res = ensure("resnet20_at", profile, results_dir, data=data, device=device)

# %%
# NBVAL_IGNORE_OUTPUT
res_lr = ensure("resnet20_lr_range", profile, results_dir, data=data, device=device)  # a requirement: already run

# %%
# NBVAL_IGNORE_OUTPUT
# The repeats with other training seeds (hours at the cpu profile): shown where they exist, never started here.
res_seeds = ensure_supplementary("resnet20_seeds", profile, results_dir, data=data, device=device)

# %%
provenance_table([r for r in (res, res_lr, res_seeds) if r is not None])

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
# profile's PGD on a stratified subset of it (an image counts only when no restart breaks it); the
# thesis's own evaluation on the same images, and the difference (thesis protocol minus ours, paired
# on the images). Brackets: 95% intervals (Wilson for accuracies, Newcombe's paired interval for the
# difference). The watch column is the PGD accuracy on fixed training images per epoch, best (epoch)
# and final; "collapsed" marks catastrophic overfitting (Wong, Rice, Kolter 2020).

# %%
shown = c5.robustness_display(table, attack)
save_table(shown, "resnet20_results", figures_dir, float_format="%.3g", stamp=stamp,
           caption=f"ResNet-20, fast adversarial training: one-cycle bounds, clean and robust accuracy ({attack}, eps 8/255) with 95\\% intervals.")

# %%
fig = plot_accuracy_vs_robustness_ci(table, title=f"ResNet-20, fast adversarial training ({attack})", stamp=stamp)
save_figure(fig, "resnet20_accuracy_vs_robustness", figures_dir, stamp=stamp)

# %% [markdown]
# ## Verdicts on the thesis's comparisons
#
# One row per comparison: the measured difference in percentage points with its 95% interval and
# the p-value of the test named. Robust accuracies are paired on the same attacked images (McNemar's
# exact test); clean accuracies use Newcombe's interval and the z-test of two proportions. The verdict
# follows the test's p-value; near the boundary the interval (Newcombe's, for paired proportions) and
# the exact test can disagree, and the test decides. The significance level is printed below; a
# comparison with a network at chance accuracy, or any comparison of a smoke run, decides nothing.
# Where relu, swish and kaf were also trained with other seeds (section "Training seeds" below), a
# comparison of two of them is decided over the seeds instead: the mean of the per-seed paired
# differences, its t interval and a t-test over seeds (the seed is then the unit of replication).
# A comparison decided on one seed is not distinguishable when the repeats of one of its two networks
# spread over more than the measured difference: which seed was trained could explain it as well.

# %%
verdicts = c5.robustness_verdicts(res, res_seeds=res_seeds)
print(f"significance level {c5.ALPHA} (two-sided); a network below {c5.CHANCE_LEVEL:.0%} clean accuracy has not learnt the task")
save_table(c5.verdicts_display(verdicts), "resnet20_verdicts", figures_dir, stamp=stamp,
           caption="ResNet-20, fast adversarial training: the thesis's comparisons, measured differences with 95\\% intervals and verdicts.")

# %% [markdown]
# ## Training seeds
#
# The thesis trained each model once. relu, swish and kaf are trained again with two more seeds
# (initialisation, data order, FGSM noise; same bounds and evaluation, the same attacked images):
# mean and standard deviation over the seeds show how much of a difference between two activations
# one training run can produce by itself.

# %%
seed_table = c5.seed_table(res, res_seeds)
caption = f"ResNet-20, fast adversarial training: clean and robust accuracy ({attack}) over training seeds."
if len(seed_table):
    save_table(c5.seed_display(seed_table), "resnet20_seeds", figures_dir, stamp=stamp, caption=caption)
else:  # the saved table says so too (an older profile's table would otherwise stay beside this one's figure)
    missing = f"no repeated training seeds in the {profile} profile yet (python -m thesis_lib reproduce --only resnet20_seeds)"
    save_table(pd.DataFrame({"status": [missing]}), "resnet20_seeds", figures_dir, stamp=stamp, caption=caption)
    print(missing)

# %%
fig = plot_seeds(c5.seed_outcomes(res, res_seeds), title="ResNet-20: training seeds", stamp=stamp)
save_figure(fig, "resnet20_seeds", figures_dir, stamp=stamp)

# %% [markdown]
# ## Does the evaluation choice move robust accuracy?
#
# Our PGD (labels, worst case over restarts per image) against the thesis's evaluation (ART's PGD
# without labels: the attack pushes the model's own prediction, and one restart is kept for the whole
# set). `flipped_to_correct`: images misclassified clean that the label-free attack pushed onto the
# true class; `thesis_clean_and_adv`: the thesis's number counting only images also correct clean.
# The cross-check runs the installed ART itself on a few images.

# %%
save_table(c5.evaluation_table(res).round(4), "resnet20_evaluation", figures_dir, float_format="%.4g", stamp=stamp,
           caption="ResNet-20: robust accuracy under our PGD and under the thesis's evaluation on the same images.")

# %%
save_table(c5.art_crosscheck_table(res).round(4), "resnet20_art_crosscheck", figures_dir, float_format="%.4g",
           stamp=stamp, caption="The thesis-protocol PGD of this project against the installed ART, same images.")

# %% [markdown]
# ## Learning-rate range tests
#
# Smoothed training loss against the learning rate; dashed: the bounds read off each curve (lr_min
# green, lr_max red). A sweep that gave no bounds is drawn without them, and its model trained with
# the bounds named in the table's "bounds from" column.

# %%
fig = plot_lr_range_tests(c5.range_tests(res_lr), title="ResNet-20 range tests (smoothed loss)")
save_figure(fig, "lr_range_tests_resnet20", figures_dir, stamp=c5.chapter5_stamp(res_lr))

# %% [markdown]
# ## Catastrophic overfitting
#
# PGD accuracy on fixed training images after each epoch: fast adversarial training can collapse
# abruptly to near zero (catastrophic overfitting); the table's "collapsed" column reads the same curve.

# %%
fig = plot_overfitting_watch(c5.histories(res), title=f"ResNet-20: {c5.watch_label(res)}, per epoch", stamp=stamp)
save_figure(fig, "resnet20_overfitting_watch", figures_dir, stamp=stamp)

# %% [markdown]
# ## Has the attack converged? Robust accuracy vs PGD iterations
#
# One PGD run of the most iterations per model; the curve reads off, per image, the first iterate
# that fooled the network. The table gives the drop after the evaluation's iterations.

# %%
fig = plot_robust_vs_iterations_ci(c5.iterations_table(res), title="ResNet-20: robust accuracy vs PGD iterations", stamp=stamp)
save_figure(fig, "resnet20_robust_vs_iterations", figures_dir, stamp=stamp)
converged = c5.convergence_table(res)
converged.round(2) if len(converged) else print(f"no robust-accuracy-vs-iterations curve in the {profile} profile")

# %% [markdown]
# ## Training curves

# %%
fig = plot_training_curves(c5.histories(res))
save_figure(fig, "resnet20_training_curves", figures_dir, stamp=stamp)

# %% [markdown]
# ## Do the KAFs' inputs stay within their dictionary?
#
# A Gaussian KAF is a sum of bumps centred on its dictionary (thesis: 20 points on [-3, 3]); farther
# than the kernel's reach from every point (each bump below 1e-3 of its peak), its output and its
# gradient vanish, so a unit fed such inputs is dead. Share of each KAF layer's inputs beyond that
# reach, in percent, on 500 stratified test images, for the committed weights of this profile
# (`thesis_lib.analysis.kaf_reach`). Notebook 07 shows the same for the VGG, where it explains a collapse.

# %%
from thesis_lib.activations import KAF
from thesis_lib.analysis.kaf_reach import kernel_reach, reach_lines
from thesis_lib.reporting.kaf_reach import committed_reach

print(f"reach at the thesis's bandwidth: {kernel_reach(float(KAF(1).gamma)):.2f} beyond the outer dictionary points")
reach = committed_reach("resnet20_at", profile, results_dir, data=data)
if reach is None:
    print(f"no committed KAF weights of resnet20_at at the {profile} profile")
else:
    display(save_table((100 * reach).round(2), "resnet20_kaf_reach", figures_dir, float_format="%.2f", stamp=stamp,
                       caption="ResNet-20 KAFs: share of each KAF layer's inputs (\\%) beyond the kernels' reach, 500 test images."))
    display(Markdown("\n".join(reach_lines(reach))))

# %% [markdown]
# ## Interpretation
#
# Computed from the verdict table above: each comparison, what was measured, and what this run can
# say about it.

# %%
lines = [c5.profile_note(res, table["clean"]), "", c5.verdict_counts(verdicts), ""]
Markdown("\n".join(lines + c5.verdict_lines(verdicts, failed=c5.failed_runs(table))))
