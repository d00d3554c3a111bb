# %% [markdown]
# # 10 · Future work (thesis section 4.1 and chapter 6)
#
# The thesis's future-work chapter lists: resolving the exploding gradients of deep KAF ResNets, other kernels, Lipschitz-based arguments (section 4.1 discusses their limits for KAFs) and adaptive attacks (Carlini et al. 2019; Tramer et al. 2020) against the adversarially trained KAF networks. Each is a runnable experiment here.
#
# | thesis figure / table | file |
# | --- | --- |
# | Lipschitz upper bounds (product of layer constants, eq. 2.36) vs local estimates, every trained model | `figures/lipschitz_bounds.tex`, `figures/lipschitz_bounds.pdf` / `.png` |
# | the same for the `cpu`-profile light CNNs (when those results exist) | `figures/lipschitz_bounds_light_cnn_cpu.tex` |
# | AutoAttack next to PGD on the same images (AT models, k-WTA CNN) | `figures/autoattack_vs_pgd.tex` |
# | the same for the `cpu`-profile light CNNs (when those results exist) | `figures/autoattack_vs_pgd_light_cnn_cpu.tex` |
# | a KafResNet-56 that trains: ablation of candidate fixes | `figures/resnet56_fix_ablation.tex`, `figures/resnet56_fix_ablation.pdf` / `.png` |
# | other kernels (analytic): Gaussian, ReLU and softplus KAFs ridge-fitted to ELU | `figures/kaf_kernels.pdf` / `.png` |
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

from thesis_lib.plotting import plot_fix_ablation, plot_kaf_kernels, plot_lipschitz_bounds, profile_stamp

# %%
# NBVAL_IGNORE_OUTPUT
# Runs the experiment(s) only if their results are missing or stale; otherwise just loads them.
res_lipschitz = ensure("lipschitz", profile, results_dir, data=data, device=device)
res_autoattack = ensure("autoattack", profile, results_dir, data=data, device=device)
res_resnet56_fix = ensure("resnet56_fix", profile, results_dir, data=data, device=device)

# %%
provenance_table([res_lipschitz, res_autoattack, res_resnet56_fix])

# %% [markdown]
# ## Lipschitz bounds (section 4.1, eq. 2.36)
#
# Upper bound: the product of per-layer L2 constants (convolutions by power iteration; `certified` uses
# a guaranteed FFT bound per convolution); lower estimate: the largest Jacobian spectral norm over test
# images (all as log10). k-WTA is discontinuous: no finite bound. The gap (orders of magnitude) is why product bounds
# say little about KAF networks, whose per-channel slopes can be large.

# %%
lip = pd.DataFrame(res_lipschitz.result["models"])
np.seterr(divide="ignore")  # log10(0) = -inf for a constant network, without a warning
table = pd.DataFrame({
    "model": lip["model"], "training": lip["training"], "activation": lip["activation"],
    "log10 bound": np.log10(lip["bound"].astype(float)).round(2),
    "log10 certified": np.log10(lip["certified"].astype(float)).round(2),
    "log10 local estimate": np.log10(lip["empirical_jacobian"].astype(float)).round(2),
}).set_index(["model", "training", "activation"])
save_table(table, "lipschitz_bounds", figures_dir, float_format="%.2f",
           caption="L2 Lipschitz upper bounds (log10) and local lower estimates of the trained networks.",
           stamp=profile_stamp(res_lipschitz))

# %%
fig = plot_lipschitz_bounds(res_lipschitz.result["models"])  # k-WTA's infinite bound is marked on the right edge
save_figure(fig, "lipschitz_bounds", figures_dir, stamp=profile_stamp(res_lipschitz))

# %% [markdown]
# ### The same for trained light CNNs (`cpu` profile)
#
# The smoke networks above are barely trained. When the `cpu`-profile results exist (the chapter-4
# light CNNs after 5 epochs on all 50,000 training images, see notebook 05), their bounds and local
# estimates follow: 500 power iterations per convolution, Jacobian norms over 500 test images.

# %%
from thesis_lib.experiments.runner import ExperimentResults, is_complete

if profile != "cpu" and is_complete("lipschitz", "cpu", results_dir):
    res_lip_cpu = ExperimentResults("lipschitz", "cpu", results_dir)
    lip_cpu = pd.DataFrame(res_lip_cpu.result["models"])
    table_cpu = pd.DataFrame({
        "activation": lip_cpu["activation"],
        "log10 bound": np.log10(lip_cpu["bound"].astype(float)).round(2),
        "log10 certified": np.log10(lip_cpu["certified"].astype(float)).round(2),
        "log10 local estimate": np.log10(lip_cpu["empirical_jacobian"].astype(float)).round(2),
    }).set_index("activation")
    display(save_table(table_cpu, "lipschitz_bounds_light_cnn_cpu", figures_dir, float_format="%.2f",
                       caption="L2 Lipschitz bounds (log10) of the cpu-profile light CNNs (standard training).",
                       stamp=profile_stamp(res_lip_cpu)))
else:
    print("No cpu-profile Lipschitz results here (python -m thesis_lib reproduce --profile cpu --only lipschitz).")

# %% [markdown]
# ## Adaptive attacks: AutoAttack vs PGD
#
# AutoAttack (Croce & Hein 2020; the `standard` version: APGD-CE, APGD-T, FAB-T, Square; the smoke profile
# runs the cheaper APGD-CE + APGD-T with 5 iterations) and PGD on exactly the same images. A lower AutoAttack
# accuracy means PGD overestimated robustness; "only AA" counts images broken by AutoAttack but not by PGD.

# %%
aa = pd.DataFrame(res_autoattack.result["models"])
table = pd.DataFrame({
    "model": aa["model"], "training": aa["training"], "activation": aa["activation"],
    "eps x255": (aa["eps"] * 255).round(2), "clean (%)": [percent(v) for v in aa["clean_acc"]],
    "PGD (%)": [percent(v) for v in aa["pgd_acc"]], "AutoAttack (%)": [percent(v) for v in aa["autoattack_acc"]],
    "only AA": aa["only_autoattack"], "images": aa["n"],
}).set_index(["model", "training", "activation"])
save_table(table, "autoattack_vs_pgd", figures_dir,
           caption=f"AutoAttack ({res_autoattack.result['version']}) vs PGD robust accuracy on the same images.",
           stamp=profile_stamp(res_autoattack))

# %%
# The same for the cpu-profile light CNNs (standard AutoAttack on 1000 test images), when those results exist.
if profile != "cpu" and is_complete("autoattack", "cpu", results_dir):
    res_aa_cpu = ExperimentResults("autoattack", "cpu", results_dir)
    aa_cpu = pd.DataFrame(res_aa_cpu.result["models"])
    table_cpu = pd.DataFrame({
        "activation": aa_cpu["activation"], "eps x255": (aa_cpu["eps"] * 255).round(2),
        "clean (%)": [percent(v) for v in aa_cpu["clean_acc"]], "PGD (%)": [percent(v) for v in aa_cpu["pgd_acc"]],
        "AutoAttack (%)": [percent(v) for v in aa_cpu["autoattack_acc"]], "only AA": aa_cpu["only_autoattack"],
        "images": aa_cpu["n"],
    }).set_index("activation")
    display(save_table(table_cpu, "autoattack_vs_pgd_light_cnn_cpu", figures_dir,
                       caption="Standard AutoAttack vs PGD-50x10 on the cpu-profile light CNNs (standard training).",
                       stamp=profile_stamp(res_aa_cpu)))
else:
    print("No cpu-profile AutoAttack results here (python -m thesis_lib reproduce --profile cpu --only autoattack).")

# %% [markdown]
# ## A KAF ResNet-56 that trains: ablation
#
# Each candidate changes one thing of the section-5.2 recipe (SGD, lr 0.1) and trains for a short budget;
# the table reports clean accuracy and whether and where the run turned non-finite.

# %%
ab = pd.DataFrame(res_resnet56_fix.result["candidates"])
table = pd.DataFrame({
    "candidate": ab["candidate"], "activation": ab["activation"],
    "change": [", ".join(f"{k}={v}" for k, v in c.items()) or "-" for c in ab["change"]],
    "clean acc (%)": [percent(v) for v in ab["clean_acc"]], "best acc (%)": [percent(v) for v in ab["best_test_acc"]],
    "epochs": ab["epochs_done"],
    "diverged": [f"step {d['step']} ({d['quantity']})" if d else "no" for d in ab["diverged"]],
}).set_index("candidate")
save_table(table, "resnet56_fix_ablation", figures_dir,
           caption="KAF ResNet-56 fix ablation (standard training, SGD lr 0.1, short budget).",
           stamp=profile_stamp(res_resnet56_fix))

# %%
fig = plot_fix_ablation(res_resnet56_fix.result["candidates"])
save_figure(fig, "resnet56_fix_ablation", figures_dir, stamp=profile_stamp(res_resnet56_fix))

# %% [markdown]
# ## Other kernels (analytic)
#
# The KAF paper also proposes ReLU ($k(s, d) = \max(0, s d)$) and softplus kernels. Ridge-fitting each to
# ELU on the thesis dictionary shows how differently they extrapolate outside [-3, 3]. A sum of ReLU
# kernels is piecewise linear with a single kink at 0 (for $s > 0$ only the $d_i > 0$ terms are active,
# all proportional to $s$), so the best it can do is two straight pieces. Their ridge coefficients are
# huge (the Gram matrix of the ReLU kernel has rank 2, the softplus one is nearly singular) and cancel
# in the sum, so the fits are computed in float64 (`plotting.future_work.kaf_kernel_fit`): rounded to
# float32, as a KAF module stores its coefficients, they leave cancellation noise (measured below).

# %%
fig = plot_kaf_kernels(("gaussian", "relu", "softplus"), s_range=(-5, 5), dictionary_range=(-3, 3))
save_figure(fig, "kaf_kernels", figures_dir, stamp=profile_stamp())  # analytic
import torch

import thesis_lib
from thesis_lib.plotting.future_work import kaf_kernel_fit

s = torch.linspace(-5, 5, 501, dtype=torch.float64)
for kernel in ("relu", "softplus"):
    f64, alpha = kaf_kernel_fit(kernel, s)
    f32 = thesis_lib.make_activation("kaf", 1, kernel=kernel, init="elu").evaluate(s)[0].double()
    print(f"{kernel} kernel: max |alpha| = {float(alpha.abs().max()):.3g}; the float32 KAF module deviates from "
          f"the float64 fit by up to {float((f32 - f64).abs().max()):.2g} on [-5, 5]")
