# %% [markdown]
# # 04 · k-WTA discontinuities (thesis section 3.1)
#
# k-Winners-Take-All keeps the k largest values of a layer and zeroes the rest: when the set of winners changes, the output jumps. Along a line in input space a k-WTA network is therefore discontinuous almost everywhere at fine scale (Tramer et al. 2020), which breaks gradient-based attacks without making the network robust. The networks are the chapter-4 light CNNs; jumps are detected on the grid and confirmed by zooming in (`thesis_lib.analysis.line_scan`).
#
# | thesis figure / table | file |
# | --- | --- |
# | logits along a line x + t d: dense jumps of the k-WTA network vs the smooth KAF network (and ReLU) | `figures/kwta_line_scan.pdf` / `.png` |
# | the same, zoomed on t in [-0.1, 0.1] | `figures/kwta_line_scan_zoom.pdf` / `.png` |
# | number of confirmed jumps per network | `figures/kwta_jumps.tex` |
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

from thesis_lib.plotting import plot_kwta_line_scan
from thesis_lib.reporting.stamp import profile_stamp

# %%
# NBVAL_IGNORE_OUTPUT
# Runs the experiment(s) only if their results are missing or stale; otherwise just loads them.
res = ensure("kwta_line", profile, results_dir, data=data, device=device)

# %%
provenance_table([res])

# %% [markdown]
# ## Logits along a random direction
#
# $x$ is a test image, $d$ a seeded Gaussian direction of unit L2 norm, $t \in [-1, 1]$. Red ticks mark
# confirmed jumps.

# %%
scans = {act: res.step(f"scan_{act}")[0] for act in res.settings["activations"]}
fig = plot_kwta_line_scan(scans)
save_figure(fig, "kwta_line_scan", figures_dir, stamp=profile_stamp(res))

# %%
fig = plot_kwta_line_scan(scans, zoom=0.1)
save_figure(fig, "kwta_line_scan_zoom", figures_dir, stamp=profile_stamp(res))

# %%
table = (pd.DataFrame(res.result["jumps"]).groupby("activation", sort=False)["n_jumps"]
         .agg(["count", "mean", "max"]).rename(columns={"count": "lines", "mean": "mean jumps", "max": "max jumps"}))
save_table(table, "kwta_jumps", figures_dir, float_format="%.1f",
           caption="Confirmed discontinuities of the logits along random lines (light CNNs).", stamp=profile_stamp(res))
