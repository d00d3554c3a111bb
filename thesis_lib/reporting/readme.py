"""The README's result blocks, computed from the committed results.

The README quotes the headline tables of the finished experiments (thesis chapters 4 to 6). Each
quoted block sits between `<!-- NAME: start -->` and `<!-- NAME: end -->` and is generated here from
`results/` (the same tables and tests the notebooks use: `thesis_lib.reporting.chapter5`), so no
number in it is typed by hand; `tests/test_readme.py` recomputes every block and fails when the
README is not current.

    python -m thesis_lib.reporting.readme            # rewrite the blocks of README.md
    python -m thesis_lib.reporting.readme --check    # exit 1 (naming the blocks) when one is stale

A block whose experiment has not finished is left as it is (a fresh checkout without results checks
nothing); a block named in the README but unknown here is an error.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from collections.abc import Callable
from pathlib import Path

from ..experiments.runner import DEFAULT_RESULTS_DIR, ExperimentResults, is_complete
from ..utils import ThesisError, short_commit

__all__ = ["BLOCKS", "render_block", "update_readme", "stale_blocks", "main"]

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
_BLOCK = re.compile(r"<!-- (?P<name>[a-z0-9-]+): start -->\n.*?<!-- (?P=name): end -->", re.S)


def _machine(res: ExperimentResults) -> str:
    """Where the results were computed, as their summary records it."""
    hw = res.summary.get("hardware", {})
    if hw.get("gpu"):
        return str(hw["gpu"])
    return f"{hw.get('cpu_count', '?')} CPUs, {hw.get('cpu_model') or hw.get('cpu', '?')}"


def _pct(x: float, digits: int = 1) -> str:
    return "--" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.{digits}f}%"


def _ci(lo: float, hi: float) -> str:
    if math.isnan(lo):
        return ""
    d = 2 if hi < 0.001 else 1  # a bound under 0.1% (0 of 10,000 images) would round to 0.0
    return f" [{100 * lo:.{d}f}, {100 * hi:.{d}f}]"


def _frac(x: float) -> str:
    """An attack radius or step as the thesis writes it: 8/255 when it is one, else 4 significant digits."""
    k = round(x * 255)
    return f"{k}/255" if k and abs(x - k / 255) < 1e-6 else f"{x:.4g}"


def _attack(pgd: dict) -> str:
    return f"PGD-{pgd['steps']} x {pgd.get('restarts', 1)}"


def _hours(*res: ExperimentResults) -> float:
    return sum(r.summary.get("compute_time_s", 0.0) for r in res) / 3600


def _paired_with(o: dict, a: str, b: str):
    from ..analysis.stats import mcnemar_exact, paired_difference

    d = paired_difference(o[a]["robust_pe"], o[b]["robust_pe"])
    return d, mcnemar_exact(o[a]["robust_pe"], o[b]["robust_pe"])["p_value"]


def _epochs_list(epochs: list[int]) -> str:
    """[2, 3, 4, 5] -> "epochs 2-5"; [3] -> "epoch 3"; [2, 5] -> "epochs 2, 5"."""
    if len(epochs) == 1:
        return f"epoch {epochs[0]}"
    if epochs == list(range(epochs[0], epochs[-1] + 1)):
        return f"epochs {epochs[0]}-{epochs[-1]}"
    return "epochs " + ", ".join(map(str, epochs))


def _watch(res, act: str) -> list[float]:
    run = res.run(act)
    return [h.get("watch_pgd_acc", math.nan) for h in run.get("history", [])]


def _collapse_sentences(res, table) -> str:
    """What the overfitting watch shows: the collapsed networks, and the others' passing dips to zero."""
    from . import chapter5 as c5

    failed = c5.failed_runs(table)
    parts = []
    for act in failed:
        w = _watch(res, act)
        zero_from = next((i for i in range(len(w)) if all(v == 0 for v in w[i:])), None)
        survive = table.loc[act, "robust"]
        tail = f" and is 0% from epoch {zero_from + 1} on" if zero_from is not None else ""
        test = "no test image survives PGD" if survive == 0 else f"{_pct(survive)} of the test images survive PGD"
        if failed[act].startswith("diverged"):
            # a non-finite run stopped early: its collapse is the divergence, not fast AT's overfitting
            parts.append(
                f"The {act} run {failed[act]} (a non-finite gradient; training stopped there), and "
                f"{test}, so every comparison with {act} measures the failed run, not the activation."
            )
            continue
        parts.append(
            f"The {act} network overfitted catastrophically (Wong et al. 2020): its PGD-10 watch accuracy on "
            f"training images never exceeds {max(w):.0%}{tail}, and {test}, so every comparison with {act} "
            "measures the collapse, not the activation."
        )
    dips = []
    for act in table.index:
        if act in failed:
            continue
        w = _watch(res, act)
        zeros = [i + 1 for i, v in enumerate(w) if v == 0]
        if zeros and w[-1] > 0:
            dips.append(f"{act}'s watch fell to 0% in {_epochs_list(zeros)}, then recovered to {w[-1]:.0%}")
    if dips:
        parts.append("A passing collapse: " + "; ".join(dips) + ".")
    return " ".join(parts)


def _iterations_sentence(res) -> str:
    from . import chapter5 as c5

    it = c5.iterations_table(res)
    if it.empty:
        return ""
    acts = list(dict.fromkeys(it["activation"]))
    top = int(it["iterations"].max())
    if 50 not in set(it["iterations"]) or top <= 50:
        return ""
    drops = {}
    for act in acts:
        curve = it[it["activation"] == act].set_index("iterations")["robust_acc"]
        drops[act] = curve.get(50, math.nan) - curve[top]
    n = int(it["n"].iloc[0])
    who = " and ".join(acts)
    if all(d == 0 for d in drops.values()):
        return f"PGD has converged: {top} iterations break no image that 50 did not ({who}, {n} images)."
    moved = ", ".join(f"{a} {100 * d:.1f} points" for a, d in drops.items())
    return f"From 50 to {top} PGD iterations robust accuracy falls by {moved} ({n} images)."


def _fast_at_block(res: ExperimentResults, res_lr: ExperimentResults, arch: str, epochs_of: int) -> str:
    """Section 5.3's table (one fast-AT family of the cpu profile) with the paired comparisons to relu."""
    from . import chapter5 as c5

    table = c5.robustness_table(res)
    o = c5.at_outcomes(res)
    epochs = res.settings.get("epochs")
    first = res.run(table.index[0])
    pgd = res.settings["pgd"]
    attack = _attack(pgd)
    n_clean, n_robust = f"{int(table['clean_n'].iloc[0]):,}", f"{int(table['robust_n'].iloc[0]):,}"
    rows = [
        f"| activation | clean, {n_clean} images [95% CI] | {attack}, {n_robust} images [95% CI] | thesis's ART "
        f"evaluation, same images | watch, final epoch ({c5.watch_label(res)}) | training (min) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for act, r in table.iterrows():
        rows.append(
            f"| {act} | {_pct(r['clean'])}{_ci(r['clean_lo'], r['clean_hi'])} | {_pct(r['robust'])}"
            f"{_ci(r['robust_lo'], r['robust_hi'])} | {_pct(r['thesis'])}{_ci(r['thesis_lo'], r['thesis_hi'])} | "
            f"{_pct(r['watch_final'])} | {r['train_min']:.0f} |"
        )
    others = [a for a in table.index if a != "relu"]
    pairs = {a: _paired_with(o, a, "relu") for a in others}
    cmps = "; ".join(
        f"{a} - relu {100 * d.value:+.1f} points [{100 * d.lo:+.1f}, {100 * d.hi:+.1f}] (McNemar p = {p:.2g})"
        for a, (d, p) in pairs.items()
    )
    ahead = [
        f"{a} ({100 * d.value:+.1f} points, p = {p:.2g})" for a, (d, p) in pairs.items() if p < 0.05 and d.value > 0
    ]
    ahead = [a for a in ahead if a.startswith("kaf")]
    verdict = "No KAF is more robust than ReLU by a margin this run resolves (p < 0.05)"
    verdict += " except " + ", ".join(ahead) if ahead else ""
    kaf_sentence = "."
    if "kaf" in pairs:
        d_kaf = pairs["kaf"][0].value
        kaf_clean = table.loc["kaf", "clean"] - table.loc["relu", "clean"]
        kaf_sentence = (
            f"; the thesis's kaf is {abs(100 * d_kaf):.1f} points {'less' if d_kaf < 0 else 'more'} robust and "
            f"{abs(100 * kaf_clean):.1f} points {'less' if kaf_clean < 0 else 'more'} accurate on clean images."
        )
    gaps = [100 * table.loc[a, "thesis_minus_ours"] for a in table.index]
    collapses = ("\n" + c) if (c := _collapse_sentences(res, table)) else ""
    who = "every network" if min(gaps) > 0 else "the networks"
    weights = f"`results/{res.profile}/{res.name}/weights/`"
    loader = f'`thesis_lib.load_pretrained("{res.name}", "kaf", profile="{res.profile}")`'
    precision = f"{first.get('precision', 'fp32')} + {first.get('memory_format', 'contiguous')}"
    return f"""**Chapter 5.3 at the `{res.profile}` profile** ({_machine(res)}; {precision}
training, float32 attacks): {arch} with fast adversarial training (FGSM-RS, eps {_frac(first["config"]["eps"])})
on {first["n_train"]:,} training images for **{epochs} of the protocol's {epochs_of} epochs**, one-cycle between
the bounds of one-epoch range tests; {attack} (eps {_frac(pgd["eps"])}, step {_frac(pgd["step"])}) on
{n_robust} stratified test images, the same images for every network, and the thesis's own evaluation
(ART 2020's PGD without labels, one restart kept for the whole set) on the same images.
Weights and model cards: {weights} ({loader}).
Compute: {_hours(res, res_lr):.1f} CPU hours (range tests {_hours(res_lr):.1f} h, training and evaluation
{_hours(res):.1f} h), wall-clock on a 2-vCPU VM that was not always idle, so the training minutes bound the
cost rather than measure it. Notebook {res.summary.get("notebook", "09")[:2]} has the verdicts (McNemar's
exact test on the shared images) and figures; notebook 11 the claims.

{chr(10).join(rows)}

Paired with relu on the {n_robust} images (p-values not corrected for the {len(others)} comparisons): {cmps}.
{verdict}{kaf_sentence}{collapses}
The thesis's evaluation reports {min(gaps):.1f} to {max(gaps):.1f} points more robust accuracy than PGD with
labels on the same images, for {who}: without labels the attack pushes the network's own prediction, so
misclassified images it flips onto the true class count as robust. {_iterations_sentence(res)}"""


def _resnet20_cpu(results: Path) -> str | None:
    res = ExperimentResults("resnet20_at", "cpu", results)
    res_lr = ExperimentResults("resnet20_lr_range", "cpu", results)
    return _fast_at_block(res, res_lr, "ResNet-20", 80)


def _resnet20_seeds_cpu(results: Path) -> str | None:
    """The ResNet-20 repeats with other training seeds, and the comparisons they decide or undo."""
    from . import chapter5 as c5

    res = ExperimentResults("resnet20_at", "cpu", results)
    seeds = ExperimentResults("resnet20_seeds", "cpu", results)
    table = c5.seed_display(c5.seed_table(res, seeds))
    if not len(table):
        return None
    cols = list(table.columns)
    rows = ["| activation | " + " | ".join(cols) + " |", "| --- | " + " | ".join("---" for _ in cols) + " |"]
    rows += [f"| {act} | " + " | ".join(str(r[c]) for c in cols) + " |" for act, r in table.iterrows()]
    verdicts = c5.robustness_verdicts(res, res_seeds=seeds)
    touched = verdicts[[t == c5._SEEDS or "one seed;" in m for t, m in zip(verdicts["test"], verdicts["measured"])]]
    lines = c5.verdict_lines(touched)
    others = " and ".join(str(s) for s in seeds.settings.get("seeds", []))
    return f"""**Training seeds** (cpu profile, same recipe and images as above): relu, swish and kaf trained again
with seeds {others} ({_hours(seeds):.1f} CPU hours); seed {res.settings.get("seed", 0)} is the table above. Clean
accuracy on the test set, robust accuracy under {_attack(res.settings["pgd"])} on the same images for every
run. Catastrophic overfitting depends on the seed: a network at 0.0% robust accuracy collapsed.

{chr(10).join(rows)}

Comparisons of two networks that both have repeats are decided over the seeds (t-test, the seed as the
unit); one decided on the base seed alone is not distinguishable when one side's repeats spread wider
than the difference (notebook 09):

{chr(10).join(lines)}"""


def _largest_init_grad(row) -> str:
    """A row of `chapter5.exploding_table` / `fix_table`: its largest finite gradient norm at initialisation
    and the layer group holding it, or "--"."""
    g = {k.removeprefix("grad_init_"): row[k] for k in row.index if k.startswith("grad_init_")}
    fin = {k: x for k, x in g.items() if isinstance(x, float) and math.isfinite(x)}
    top = max(fin, key=fin.get) if fin else None
    return f"{fin[top]:.3g} ({top})" if top else "--"


def _resnet_standard_cpu(results: Path) -> str | None:
    from . import chapter5 as c5

    res = ExperimentResults("resnet_standard", "cpu", results)
    t = c5.exploding_table(res)
    rows = [
        "| network | clean, 10,000 images [95% CI] | best test acc | diverged at step | largest gradient norm at "
        "initialisation (group) | training (min) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for (arch, act), r in t.iterrows():
        grad = _largest_init_grad(r)
        diverged = r["diverged_step"] if r["diverged_step"] is not None else "none"
        minutes = res.run(f"{arch}_{act}")["wall_time_s"] / 60
        rows.append(
            f"| {arch} {act} | {_pct(r['clean'])}{_ci(r['clean_lo'], r['clean_hi'])} | {_pct(r['best_test_acc'])} | "
            f"{diverged} | {grad} | {minutes:.0f} |"
        )
    nonfinite = [f"{a} {b}" for (a, b), r in t.iterrows() if r["diverged_step"] is not None]
    epochs = res.settings.get("epochs")
    if nonfinite:
        finite = f"Non-finite in {epochs} epochs: {', '.join(nonfinite)}."
    else:
        finite = f"No run turned non-finite in {epochs} epochs (the thesis reports NaN gradients in early layers)."
    return f"""**Chapter 5.2 at the `{res.profile}` profile** ({_machine(res)}): ResNet-20 and ResNet-56 x
{{relu, kaf}}, standard training (SGD, lr 0.1, x0.1 at 50% and 75% of the epochs; batch 128, augmentation)
on all 50,000 training images for **{epochs} of the protocol's 150 epochs**, each layer's weight and
gradient norms over the first 200 iterations ({_hours(res):.1f} CPU hours; notebook 08).

{chr(10).join(rows)}

{chr(10).join(c5.verdict_lines(c5.exploding_verdicts(res)))}

{finite}
What the norm logs show (notebook 08):

{chr(10).join(c5.init_gradient_lines(t))}"""


def _resnet56_fix_cpu(results: Path) -> str | None:
    from . import chapter5 as c5

    res = ExperimentResults("resnet56_fix", "cpu", results)
    res_std = ExperimentResults("resnet_standard", "cpu", results)
    final = (res.result or {}).get("final")
    if not final:
        return None
    cands = res.result["candidates"]
    rows = [
        f"| candidate | activation | change | clean after {cands[0]['epochs_done']} epochs | training (min) |",
        "| --- | --- | --- | ---: | ---: |",
    ]
    for c in cands:
        change = ", ".join(f"{k}={v}" for k, v in c["change"].items()) or "-"
        minutes = res.run(c["candidate"])["wall_time_s"] / 60
        rows.append(f"| {c['candidate']} | {c['activation']} | {change} | {_pct(c['clean_acc'])} | {minutes:.0f} |")
    t = c5.fix_table(res, res_std)
    frows = [
        "| network | clean, 10,000 images [95% CI] | largest gradient norm at initialisation (group) |",
        "| --- | ---: | ---: |",
    ]
    for run, r in t.iterrows():
        grad = _largest_init_grad(r)
        frows.append(f"| ResNet-56 {run} | {_pct(r['clean'])}{_ci(r['clean_lo'], r['clean_hi'])} | {grad} |")
    epochs = res_std.settings.get("epochs")
    return f"""**A KAF ResNet-56 that trains (chapter 6) at the `{res.profile}` profile** ({_machine(res)}): each
candidate fix changes one thing of section 5.2's recipe (SGD, lr 0.1, batch 128, augmentation) and trains
for {cands[0]["epochs_done"]} epochs on all 50,000 images; the best one is then trained with the recipe
and budget of the ResNet-56s above ({epochs} epochs, step schedule; {final["train_wall_time_s"] / 60:.0f} min) and set
against them ({_hours(res):.1f} CPU hours; notebook 10). Minutes are wall-clock on a 2-vCPU VM that was not
always idle.

{chr(10).join(rows)}

{chr(10).join(frows)}

{chr(10).join(c5.verdict_lines(c5.fix_verdicts(res, res_std)))}"""


def _autoattack_block(res: ExperimentResults) -> str:
    """AutoAttack against PGD-50 x 10 on the same images, per model, with McNemar's test on the images only one
    of them breaks and the masking flag (AutoAttack more than `MASKING_GAP` below PGD)."""
    from ..analysis.stats import mcnemar_exact
    from ..experiments.autoattack_eval import MASKING_GAP
    from . import chapter5 as c5
    from .claims import _counts_pairs

    rows = [
        f"| model | activation | clean, same images | {_attack(res.settings['pgd'])} [95% CI] | AutoAttack [95% CI] | "
        "broken only by AutoAttack / only by PGD | McNemar p | PGD masked? |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    masked = []
    n = None
    for m in res.result["models"]:
        step = res.step(f"autoattack_{m['experiment']}_{m['key']}")
        n = step["n"]
        only_aa, only_pgd = int(step["only_autoattack"]), int(step["only_pgd"])
        p = mcnemar_exact(*_counts_pairs(only_aa, only_pgd))["p_value"]
        pgd, aa = step["pgd_acc"], step["autoattack_acc"]
        if m["pgd_overestimates"]:
            masked.append(f"{m['model']} {m['activation']}")
        rows.append(
            f"| {m['model']} ({m['training']}) | {m['activation']} | {_pct(step['clean_acc'])} | {_pct(pgd)}"
            f"{_ci(*c5._interval(pgd, n))} | {_pct(aa)}{_ci(*c5._interval(aa, n))} | {only_aa} / {only_pgd} | "
            f"{c5.format_p(p)} | {'**yes**' if m['pgd_overestimates'] else 'no'} |"
        )
    s = res.settings
    version = "standard AutoAttack (APGD-CE, APGD-T, FAB-T, Square)" if s["version"] == "standard" else s["version"]
    flag = (
        f"PGD looks masked for {', '.join(masked)}: AutoAttack is more than {100 * MASKING_GAP:.0f} points below it."
        if masked
        else f"No model's AutoAttack accuracy is more than {100 * MASKING_GAP:.0f} points below its PGD accuracy: "
        "no sign that PGD was masked."
    )
    pgd = s["pgd"]
    return f"""**AutoAttack against PGD at the `{res.profile}` profile** ({_machine(res)}): {version}, L-inf eps
{_frac(res.result["models"][0]["eps"])}, against {_attack(pgd)} (eps {_frac(pgd["eps"])}, step
{_frac(pgd["step"])}) on the same {n:,} test images per model ({_hours(res):.1f} CPU hours; notebook 10).

{chr(10).join(rows)}

{flag}"""


def _autoattack_light_cnn(results: Path) -> str:
    """The light CNNs' AutoAttack at the largest finished profile (full: all 10,000 test images)."""
    profile = "full" if is_complete("autoattack_light_cnn", "full", results) else "cpu"
    return _autoattack_block(ExperimentResults("autoattack_light_cnn", profile, results))


def _autoattack_cpu(results: Path) -> str:
    return _autoattack_block(ExperimentResults("autoattack", "cpu", results))


def _vgg_cpu(results: Path) -> str:
    from . import chapter5 as c5

    res = ExperimentResults("vgg", "cpu", results)
    text = _fast_at_block(res, ExperimentResults("vgg_lr_range", "cpu", results), "VGG", 60)
    second = c5.thesis_lr_rows(res)
    if second is None:
        return text
    t = c5.robustness_table(second)
    rows = [
        "| activation | lr bounds | clean [95% CI] | PGD-50 x 10 [95% CI] | thesis's ART evaluation | training (min) |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for act, r in t.iterrows():
        rows.append(
            f"| {act} | {r['lr_min']:.2g}-{r['lr_max']:.2g} | {_pct(r['clean'])}{_ci(r['clean_lo'], r['clean_hi'])} | "
            f"{_pct(r['robust'])}{_ci(r['robust_lo'], r['robust_hi'])} | {_pct(r['thesis'])} | {r['train_min']:.0f} |"
        )
    return f"""{text}

The same networks trained between the thesis's recorded one-cycle bounds instead of this project's range
tests (second row set, same evaluation):

{chr(10).join(rows)}"""


def _robust(step: dict) -> float:
    from .observations import _robust_per_image

    robust = _robust_per_image(step)
    return sum(robust) / len(robust)


def _run_precision(run: dict) -> str:
    # runs from before the precision was recorded trained in float32 on CPU (autocast was CUDA-only then)
    return f"{run['precision']} + {run.get('memory_format', 'contiguous')}" if run.get("precision") else "float32"


def _light_cnn_full(results: Path) -> str:
    """Chapter 4 at the protocol's scale next to the 5-epoch cpu runs: the table, the observations of notebook
    05 with their intervals, k-WTA's jumps along lines (notebook 04) and the Lipschitz numbers (notebook 10)."""
    from .observations import observations_across_profiles

    full, cpu = (ExperimentResults("light_cnn", p, results) for p in ("full", "cpu"))
    both = [cpu, full] if is_complete("light_cnn", "cpu", results) else [full]
    acts = list(full.settings["activations"])
    models = {r.profile: {m["activation"]: m for m in r.result["models"]} for r in both}
    label = {r.profile: f"{r.settings['epochs']} epochs ({r.profile})" for r in both}
    fs = full.settings
    profiles = " / ".join(r.profile for r in both)
    restarts = " / ".join(f"{r.settings['restarts_text']} restarts ({r.profile})" for r in both)
    rows = [
        "| activation | "
        + " | ".join(f"clean accuracy, 10,000 images: {label[r.profile]}" for r in both)
        + f" | PGD-{fs['steps']} x 1: {profiles} | PGD-{fs['steps']}, {restarts} | "
        f"gradient masking flagged: {profiles} |",
        "| --- | " + " | ".join("---:" for _ in both) + " | ---: | ---: | --- |",
    ]
    for a in acts:
        clean = " | ".join(_pct(models[r.profile][a]["clean_acc"]) for r in both)
        pgd1 = " / ".join(_pct(_robust(r.step(f"pgd_{a}"))) for r in both)
        pgdr = " / ".join(_pct(_robust(r.step(f"pgd_text_{a}"))) for r in both)
        flag = " / ".join("yes" if models[r.profile][a]["gradient_masking_flagged"] else "no" for r in both)
        rows.append(f"| {a} | {clean} | {pgd1} | {pgdr} | {flag} |")
    obs = observations_across_profiles(full)
    lines = []
    for name, o in obs.iterrows():
        parts = []
        for col in (c for c in obs.columns if c.endswith(": measured")):
            prof, epochs = col.removesuffix(": measured").split(", ")
            parts.append(f"{epochs} ({prof}): {o[col]} -> {o[col.replace('measured', 'holds')]}")
        changed = "; the verdict changed" if o.get("verdict changed") == "yes" else ""
        lines.append(f"- {name}: " + "; ".join(parts) + changed + ".")
    run = full.run(acts[0])
    cfg = run["config"]
    cpu_note = ""
    if len(both) == 2:
        hw, commit = cpu.summary.get("hardware", {}), short_commit(cpu.summary.get("git_commit"))
        cpu_note = (
            f", next to the earlier {cpu.settings['epochs']}-epoch `cpu` runs ({_machine(cpu)}, "
            f"torch {hw.get('torch', '?')}, {_run_precision(cpu.run(acts[0]))}, commit {commit})"
        )
    text = f"""**Chapter 4 at the `{full.profile}` profile** (notebooks 02, 04, 05): the light CNNs trained with
Adam (lr {cfg["lr_max"]:g}, batch {cfg["batch_size"]}) on {run["n_train"]:,} training images for the protocol's
{fs["epochs"]} epochs ({_machine(full)}, {_run_precision(run)}, {_hours(full):.1f} CPU hours for the three networks
and their analyses){cpu_note}; PGD L-inf eps {fs["eps"]:g}, step {fs["step"]:g}, {fs["steps"]} iterations,
on the protocol's {fs["attack_n"]:,} test images (the same images for every network). Weights and model
cards: `results/{full.profile}/light_cnn/weights/` (`thesis_lib.load_pretrained("light_cnn", "kaf",
profile="{full.profile}")`).

{chr(10).join(rows)}

The thesis's chapter-4 observations (notebook 05; differences with 95% intervals -> does the observation hold):

{chr(10).join(lines)}"""
    lines_runs = [ExperimentResults("kwta_line", r.profile, results) for r in reversed(both)]
    lines_runs = [r for r in lines_runs if is_complete(r.name, r.profile, results)]
    if lines_runs:
        parts = []
        for r in lines_runs:
            per = {}
            for j in r.result["jumps"]:
                per.setdefault(j["activation"], []).append(j["n_jumps"])
            smooth = [a for a, n in per.items() if max(n) == 0]
            desc = [f"{a} {sum(n) / len(n):.0f} on average (up to {max(n)})" for a, n in per.items() if max(n) > 0]
            desc += [" and ".join(smooth) + " never"] if smooth else []
            parts.append(f"{label.get(r.profile, r.profile)}: " + ", ".join(desc))
        text += (
            f"\n\nAlong random lines through {lines_runs[0].settings['images']} test images (notebook 04), how often "
            "the logits jump per line: " + "; ".join(parts) + "."
        )
    lip = [ExperimentResults("lipschitz_light_cnn", r.profile, results) for r in reversed(both)]
    lip = [r for r in lip if is_complete(r.name, r.profile, results)]
    if lip:
        parts = []
        for r in lip:
            ms = r.result["models"]
            bound = ", ".join(
                f"{m['activation']} 10^{math.log10(m['bound']):.1f}"
                if math.isfinite(m["bound"])
                else f"{m['activation']} none (discontinuous)"
                for m in ms
            )
            local = ", ".join(f"{m['activation']} {m['empirical_jacobian']:.0f}" for m in ms)
            parts.append(f"{label.get(r.profile, r.profile)}: product bound {bound}; local estimate {local}")
        text += (
            "\n\nLipschitz analysis (notebook 10), the product-of-layers upper bound and the local estimate "
            f"(largest Jacobian norm over {lip[0].settings['empirical_n']} test images): " + "; ".join(parts) + "."
        )
    return text


# Block name -> (the experiments it needs, as (name, profile); its text from the results folder).
def _status(results: Path) -> str | None:
    """Per experiment and profile beyond smoke: finished (with its compute time), started, or not yet run;
    None when nothing beyond smoke has finished (a fresh results folder)."""
    from ..experiments.registry import EXPERIMENTS, list_experiments
    from ..experiments.runner import stored_progress

    profiles = ("cpu", "full")
    total = dict.fromkeys(profiles, 0.0)
    machines: dict[str, set] = {p: set() for p in profiles}
    lines = [
        "| experiment | section | notebook | " + " | ".join(f"`{p}` profile" for p in profiles) + " |",
        "| --- | --- | --- | " + " | ".join("---" for _ in profiles) + " |",
    ]
    for name in list_experiments():
        exp, cells = EXPERIMENTS[name], []
        for p in profiles:
            if not exp.has_profile(p):
                cells.append("--")
            elif is_complete(name, p, results):
                res = ExperimentResults(name, p, results)
                total[p] += _hours(res)
                machines[p].add(_machine(res))
                cells.append(f"done, {_hours(res):.1f} h")
            elif any(stored_progress(name, p, results)):
                runs, steps = stored_progress(name, p, results)
                cells.append(f"started ({runs} training runs, {steps} steps stored)")
            else:
                cells.append("not run")
        lines.append(f"| {name} | {exp.section} | {exp.notebook[:2]} | " + " | ".join(cells) + " |")
    if not any(machines.values()):
        return None
    lines.append(
        "| **total** | | | "
        + " | ".join(f"**{total[p]:.1f} h** ({'; '.join(sorted(machines[p])) or '--'})" for p in profiles)
        + " |"
    )
    return "\n".join(lines)


BLOCKS: dict[str, tuple[tuple[tuple[str, str], ...], Callable[[Path], str | None]]] = {
    "light-cnn-full": ((("light_cnn", "full"),), _light_cnn_full),
    "resnet-standard-cpu": ((("resnet_standard", "cpu"),), _resnet_standard_cpu),
    "resnet56-fix-cpu": ((("resnet56_fix", "cpu"), ("resnet_standard", "cpu")), _resnet56_fix_cpu),
    "resnet20-cpu": ((("resnet20_at", "cpu"), ("resnet20_lr_range", "cpu")), _resnet20_cpu),
    "resnet20-seeds-cpu": ((("resnet20_at", "cpu"), ("resnet20_seeds", "cpu")), _resnet20_seeds_cpu),
    "vgg-cpu": ((("vgg", "cpu"), ("vgg_lr_range", "cpu")), _vgg_cpu),
    "autoattack-light-cnn": ((("autoattack_light_cnn", "cpu"),), _autoattack_light_cnn),
    "autoattack-cpu": ((("autoattack", "cpu"),), _autoattack_cpu),
    "status": ((), _status),  # renders once some experiment has finished beyond smoke
}


def render_block(name: str, results_dir: str | Path = DEFAULT_RESULTS_DIR) -> str | None:
    """The text of block `name` between its markers, from the results; None while its experiments are unfinished."""
    if name not in BLOCKS:
        raise ThesisError(f"Unknown README block {name!r}; known: {', '.join(BLOCKS)}.")
    needs, make = BLOCKS[name]
    results = Path(results_dir)
    if not all(is_complete(exp, profile, results) for exp, profile in needs):
        return None
    text = make(results)
    if text is None:
        return None
    body = "\n".join(line.rstrip() for line in text.splitlines())
    return f"<!-- {name}: start -->\n{body}\n<!-- {name}: end -->"


def _blocks(text: str) -> list[re.Match]:
    return list(_BLOCK.finditer(text))


def _read(readme: str | Path) -> str:
    path = Path(readme)
    if not path.is_file():
        raise ThesisError(f"No README at {path}; pass the repository's README.md with --readme.")
    return path.read_text()


def stale_blocks(readme: str | Path = README, results_dir: str | Path = DEFAULT_RESULTS_DIR) -> list[str]:
    """The README blocks whose text differs from what the results give now."""
    text = _read(readme)
    return [m["name"] for m in _blocks(text) if render_block(m["name"], results_dir) not in (None, m[0])]


def update_readme(readme: str | Path = README, results_dir: str | Path = DEFAULT_RESULTS_DIR) -> list[str]:
    """Rewrite the stale blocks of the README in place (atomically); returns their names."""
    from ..utils import atomic_write_text

    path = Path(readme)
    text = _read(path)
    stale = stale_blocks(path, results_dir)
    if stale:
        new = _BLOCK.sub(lambda m: (render_block(m["name"], results_dir) or m[0]) if m["name"] in stale else m[0], text)
        atomic_write_text(path, new)
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m thesis_lib.reporting.readme", description=__doc__.splitlines()[0])
    parser.add_argument("--readme", default=str(README))
    parser.add_argument("--results-dir", default=str(ROOT / DEFAULT_RESULTS_DIR))
    parser.add_argument("--check", action="store_true", help="only report stale blocks (exit 1 if any)")
    args = parser.parse_args(argv)
    try:
        if args.check:
            stale = stale_blocks(args.readme, args.results_dir)
            print("stale README blocks: " + ", ".join(stale) if stale else "README blocks are current")
            return 1 if stale else 0
        stale = update_readme(args.readme, args.results_dir)
    except ThesisError as e:
        print(e, file=sys.stderr)
        return 2
    print("rewrote README blocks: " + ", ".join(stale) if stale else "README blocks are current")
    return 0


if __name__ == "__main__":
    sys.exit(main())
