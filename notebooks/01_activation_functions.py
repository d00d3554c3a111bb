# %% [markdown]
# # 01 · Activation functions (thesis section 2.1.3)
#
# Reproduces the analytic figures of section 2.1.3 ("Activation Functions", eqs. 2.13-2.19):
#
# | thesis | figure file |
# | --- | --- |
# | Fig. 2.6: sigmoid (eq. 2.13) and its first derivative | `figures/activation_sigmoid.pdf` / `.png` |
# | Fig. 2.7: ELU (eq. 2.18), LeakyReLU(0.1) (eq. 2.17) and Swish (eq. 2.19) together | `figures/activation_functions.pdf` / `.png` |
# | first derivatives of ReLU, ELU and Swish (smoothness) | `figures/activation_derivatives.pdf` / `.png` |
# | table: derivative left/right of 0 and Lipschitz constant | `figures/activation_properties.tex` |
#
# **Profile and hardware.** Nothing here is trained: every curve is computed in this notebook from
# the very activation modules the networks use (`thesis_lib.make_activation`), with derivatives from
# autograd, so the output is the same for every profile and machine.

# %% tags=["parameters"]
profile = "smoke"  # "smoke" (CPU, minutes: proves the pipeline), "cpu" (a stated reduced scale, where run) or "full" (the protocol, GPU)
results_dir = "../results"  # results/<profile>/<experiment>/ (JSON/CSV, committed)
figures_dir = "../figures"  # figures/<name>.pdf, .png and tables figures/<name>.tex
data = None  # CIFAR-10 location; None: $THESIS_DATA, else torchvision's download into ./data
device = "auto"  # "auto" (CUDA when present), "cpu", "cuda"

# %%
from thesis_lib.notebook import setup

plt, np, pd, ensure, percent, provenance_table, save_figure, save_table = setup()

import torch

import thesis_lib
from thesis_lib.plotting import plot_activation_derivatives, plot_activation_functions, plot_sigmoid
from thesis_lib.reporting.stamp import profile_stamp

# %% [markdown]
# ## Sigmoid and the vanishing gradient (eq. 2.13, Fig. 2.6)
#
# $\mathrm{sigmoid}(s) = 1 / (1 + e^{-s})$ is smooth, but its derivative
# $\sigma'(s) = \sigma(s)(1 - \sigma(s))$ never exceeds $1/4$: a product of many such factors in
# backpropagation vanishes with depth.

# %%
stamp = profile_stamp()  # analytic: every figure and table here says so (nothing trained)
fig = plot_sigmoid()
save_figure(fig, "activation_sigmoid", figures_dir, stamp=stamp)
s = torch.linspace(-6, 6, 1201, dtype=torch.float64, requires_grad=True)
(slope,) = torch.autograd.grad(torch.sigmoid(s).sum(), s)
print(f"max sigmoid'(s) on [-6, 6] = {slope.max().item():.4f} at s = {s[slope.argmax()].item() + 0.0:.2f}")

# %% [markdown]
# ## ELU, LeakyReLU and Swish (eqs. 2.17-2.19, Fig. 2.7)
#
# They mostly differ for negative inputs and behave like ReLU for positive ones. LeakyReLU uses
# $\alpha = 0.1$ as in the thesis figure, ELU $\alpha = 1$.

# %%
fig = plot_activation_functions(("elu", "leaky_relu", "swish"))
save_figure(fig, "activation_functions", figures_dir, stamp=stamp)

# %% [markdown]
# ## Smoothness: first derivatives of ReLU, ELU and Swish
#
# ReLU's derivative jumps from 0 to 1 at the origin; ELU's (with $\alpha = 1$) and Swish's are
# continuous. One panel each (on one axis ReLU's derivative would lie under ELU's for $s > 0$); at a
# jump the filled dot is the value autograd returns at the point, the open circle the other one-sided
# limit. This is the property "smooth" refers to in the rest of the thesis (smooth adversarial
# training, section 3.2). The table measures the one-sided derivatives at 0 with autograd and lists
# each module's Lipschitz constant (`slope_bound()`, used by the bounds of chapter 6).

# %%
fig = plot_activation_derivatives(("relu", "elu", "swish"))
save_figure(fig, "activation_derivatives", figures_dir, stamp=stamp)

# %%
rows = []
for name in ("sigmoid", "tanh", "relu", "leaky_relu", "elu", "swish"):
    act = thesis_lib.make_activation(name, 1).double()
    s = torch.tensor([-1e-6, 1e-6], dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(act(s).sum(), s)
    rows.append({"activation": name, "f'(0-)": round(g[0].item(), 3), "f'(0+)": round(g[1].item(), 3),
                 "derivative continuous at 0": bool(abs(g[1].item() - g[0].item()) < 1e-3),
                 "Lipschitz constant": round(float(act.slope_bound().max()), 3)})
table = pd.DataFrame(rows).set_index("activation")
save_table(table, "activation_properties", figures_dir, float_format="%.3f",
           caption="One-sided derivatives at 0 and Lipschitz constants of the fixed activations.", stamp=stamp)
