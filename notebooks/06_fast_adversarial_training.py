# %% [markdown]
# # 06 · Fast adversarial training (thesis sections 4.2 and 5.1)
#
# Fast adversarial training (Wong, Rice, Kolter 2020): per batch, $\delta \sim U(-\epsilon, \epsilon)$, one FGSM step of 1.25 $\epsilon$ from there, clip to the $\epsilon$-ball and to [0, 1], one SGD step on the adversarial batch ($\epsilon$ = 8/255). The learning rate follows a one-cycle schedule whose bounds come from a learning-rate range test (Smith 2017): lr grows exponentially from 1e-4 to 3 over 5 epochs; lr_min is where the loss first starts to fall, lr_max where it plateaus.
#
# | thesis figure / table | file |
# | --- | --- |
# | learning-rate range test (VGG, ReLU, fast AT) | `figures/lr_range_test.pdf` / `.png` |
# | range tests of the VGG activations (full: all seven; smoke: relu and kaf) | `figures/lr_range_tests_vgg.pdf` / `.png` |
# | one-cycle learning-rate schedule | `figures/one_cycle_schedule.pdf` / `.png` |
# | measured vs the thesis's lr bounds | `figures/lr_bounds_vgg.tex` |
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
profile = "cpu"

# %%
from thesis_lib.notebook import setup

plt, np, pd, ensure, percent, provenance_table, save_figure, save_table = setup()

from thesis_lib.plotting import plot_lr_range_step, plot_lr_range_tests, plot_one_cycle
from thesis_lib.reporting.stamp import profile_stamp
from thesis_lib.training import FLAT_DROP, THESIS_LR_BOUNDS, loss_drop, one_cycle_lr

# %%
# NBVAL_IGNORE_OUTPUT
# Runs the experiment(s) only if their results are missing or stale; otherwise just loads them.
res = ensure("vgg_lr_range", profile, results_dir, data=data, device=device)

# %%
provenance_table([res])

# %%
stamp = profile_stamp(res)  # on the range-test figures and the table

# %% [markdown]
# ## Range test of the ReLU VGG
#
# Training loss (raw, grey; smoothed, blue) against the learning rate, with the bounds read off the
# smoothed curve by `thesis_lib.training.lr_find`'s rule (first 5% of the total drop, and within 5%
# of the minimum).

# %%
beta = res.settings["beta"]
r = res.step("lr_find_relu")
if r.get("error"):  # a sweep whose loss never fell records why instead of bounds
    print("range test gave no bounds:", r["error"])
fig = plot_lr_range_step(r, smoothing=beta, title="Learning-rate range test (VGG, ReLU, fast AT)")
save_figure(fig, "lr_range_test", figures_dir, stamp=stamp)

# %% [markdown]
# ## All activations
#
# The full profile sweeps all seven; the smoke profile only relu and kaf (the others then train with
# the thesis's bounds).

# %%
acts = res.settings["activations"]
fig = plot_lr_range_tests({act: res.step(f"lr_find_{act}") for act in acts},
                          title=f"Range tests of the VGG (smoothed loss, EMA {beta})")
save_figure(fig, "lr_range_tests_vgg", figures_dir, stamp=stamp)

# %%
rows = []
for b in res.result["bounds"]:
    lo, hi = THESIS_LR_BOUNDS["vgg"].get(b["activation"], (None, None))
    sweep = res.step(f"lr_find_{b['activation']}")
    drop = None if sweep.get("error") else loss_drop(sweep["losses"])
    rows.append({"activation": b["activation"], "thesis lr_min": lo, "thesis lr_max": hi,
                 "measured lr_min": b["lr_min"], "measured lr_max": b["lr_max"], "sweep steps": b["steps"],
                 "loss drop %": None if drop is None else round(100 * drop, 1)})
table = pd.DataFrame(rows).set_index("activation")
save_table(table, "lr_bounds_vgg", figures_dir, float_format="%.3g",
           caption="One-cycle bounds: the thesis's range-test readings and this project's (VGG, fast AT); "
           "loss drop = how far the smoothed loss fell below its start.", stamp=stamp)

# %% [markdown]
# A sweep can satisfy the reading rule and still say little: if its smoothed loss fell by less than 5%
# of its starting level (`thesis_lib.training.FLAT_DROP`), the rule's 5% steps of that drop are under
# 0.25% of the loss, about the noise left in the smoothed curve, and the bounds are poorly determined
# (the loss stayed near chance, ln 10 = 2.30, for the whole sweep). Such flat sweeps are named here and
# in notebook 07's "bounds from" column; their bounds are still the ones the protocol's rule gives, and
# the VGG runs also train between the thesis's bounds (notebook 07's second row set).

# %%
flat = table.index[table["loss drop %"].notna() & (table["loss drop %"] < 100 * FLAT_DROP)].tolist()
print(f"flat sweeps (loss fell < {FLAT_DROP:.0%}): {', '.join(flat) or 'none'}")

# %% [markdown]
# ## The one-cycle schedule
#
# Linear from lr_min to lr_max at half of the run and back (Smith 2018; Wong et al. 2020), computed with
# `thesis_lib.training.one_cycle_lr` for the protocol's VGG ReLU run: 60 epochs of 391 steps (50,000 images
# in batches of 128), bounds (1e-4, 0.08). This is the schedule itself, not a result, so it is the same for
# every profile.

# %%
epochs, spe = 60, 391
lo, hi = THESIS_LR_BOUNDS["vgg"]["relu"]
schedule = [one_cycle_lr(i, epochs * spe, lo, hi) for i in range(epochs * spe)]
fig = plot_one_cycle(schedule, steps_per_epoch=spe, title=f"One-cycle schedule (VGG ReLU: {lo:g} to {hi:g})")
save_figure(fig, "one_cycle_schedule", figures_dir, stamp=profile_stamp())  # the formula: analytic
print(f"peak lr {max(schedule):.4f} at epoch {schedule.index(max(schedule)) / spe:.1f}")
