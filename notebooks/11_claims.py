# %% [markdown]
# # 11 · Claims and their verdicts (thesis section 1.2, section 2.1.3, section 3.1, chapter 4, section 4.1, section 5.1, section 5.2, section 5.3, chapter 6 and chapter 7)
#
# Every claim the thesis makes in its text (introduction, related work, solution approach, evaluation, future work, conclusion) and in the protocol (docs/protocol.md), each with its verdict, the experiment, profile and scale it rests on, and the notebook and figure or table holding the evidence. Nothing here is typed by hand: the claims and their rules are `thesis_lib.reporting.claims.CLAIMS`, and each verdict is computed from the stored results with the project's own statistics (`thesis_lib.reporting.observations` for chapter 4, `thesis_lib.reporting.chapter5` for chapter 5; 95% intervals, McNemar's exact test for paired robust accuracies, significance level 0.05).
#
# | thesis figure / table | file |
# | --- | --- |
# | every claim: section, wording, verdict, the results it rests on (experiment and profile), where the evidence is | `figures/claims.tex` |
# | clean and robust accuracy of the fast-AT networks beside the literature's (Wong, Rice, Kolter 2020; marked: not our run) | `figures/claims_robustness.tex` |
#
# **Profile and hardware.** This notebook trains and attacks nothing: for each experiment a claim
# rests on it reads the largest profile with complete results in `results/` (smoke < cpu < full),
# whatever the `profile` parameter says, and the table below lists which one that is. Verdicts:
# "supported", "refuted", "cannot decide at this scale" (the 95% interval includes no difference, a
# network is at chance, or the evidence is mixed) and "not tested yet" with its reason: "(smoke only)"
# when a claim's experiment has only `smoke` results (a pipeline check whose networks are near
# chance, never a result), "(no results)", "(not measured)". A verdict on a `cpu` result holds for
# that stated reduction of the protocol, not for the protocol itself.

# %% tags=["parameters"]
profile = "smoke"  # "smoke" (CPU, minutes: proves the pipeline), "cpu" (a stated reduced scale, where run) or "full" (the protocol, GPU)
results_dir = "../results"  # results/<profile>/<experiment>/ (JSON/CSV, committed)
figures_dir = "../figures"  # figures/<name>.pdf, .png and tables figures/<name>.tex
data = None  # CIFAR-10 location; None: $THESIS_DATA, else torchvision's download into ./data
device = "auto"  # "auto" (CUDA when present), "cpu", "cuda"

# %%
from thesis_lib.notebook import setup

plt, np, pd, ensure, percent, provenance_table, save_figure, save_table = setup()

from IPython.display import Markdown

from thesis_lib.reporting import claims as cl

# %% [markdown]
# ## What the claims rest on
#
# Per experiment: the largest profile with complete results (the `profile` parameter is not used
# here), its scale (the same stamp the figures carry), and the claims that rest on it; then where
# those results were computed.

# %%
results = cl.select_results(results_dir)
with pd.option_context("display.max_colwidth", 90, "display.width", 250):
    display(cl.results_used(results))

# %%
found = [r for r in results.values() if r is not None]
provenance_table(found) if found else print("no complete results of any experiment the claims rest on")

# %% [markdown]
# ## The claims and their verdicts
#
# One row per claim, in thesis order (a claim tested on two networks has one row each). "rests on"
# names the experiment and the profile behind the verdict; "evidence" the notebook and the figures and
# tables it saves. The measured values that decided each verdict follow below the table.

# %%
claims = cl.evaluate_claims(results=results)
print(cl.verdict_counts(claims))
shown = claims[["section", "claim", "verdict", "rests on", "evidence"]]
with pd.option_context("display.max_colwidth", 60, "display.width", 250):
    display(save_table(shown, "claims", figures_dir, stamp=cl.claims_stamp(results),
                       caption="Every claim of the thesis with its verdict, computed from the stored results."))

# %% [markdown]
# ## What decided each verdict
#
# Differences in percentage points with their 95% intervals and the p-value of the test named in
# the module docstring of `thesis_lib.reporting.claims` (paired over the same attacked images for
# robust accuracies). A claim that combines comparisons says which way each went; "conclusion"
# lists the verdicts of the claims it gathers.

# %%
Markdown(cl.verdict_lines(claims))

# %% [markdown]
# ## Robustness of the fast-AT networks beside the literature
#
# Our VGG and ResNet-20 networks (each at the profile listed above; PGD robust accuracy: an image
# counts when it survives every restart) and, last, a **literature value, not a run of this project**:
# the FGSM-RS (fast adversarial training) PreActResNet-18 of Wong, Rice and Kolter (2020), the method
# of thesis section 4.2. Different architectures and budgets: the row gives the scale to expect, it
# decides no claim.

# %%
print("literature row:", cl.LITERATURE_CITATION)
comparison = cl.robustness_comparison(results).set_index(["source", "model", "activation"])
stamp = cl.claims_stamp({k: results[k] for k in ("vgg", "resnet20_at")})
with pd.option_context("display.max_colwidth", 60, "display.width", 250):
    display(save_table(comparison, "claims_robustness", figures_dir, stamp=stamp,
                       caption="Fast adversarial training on CIFAR-10 (eps 8/255): our networks and, last, a "
                       "literature value that is not our run (Wong, Rice, Kolter 2020, ICLR)."))
