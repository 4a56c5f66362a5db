# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Missing modalities: how gracefully does accuracy fall?
#
# In deployment a modality is sometimes absent: a camera is covered, a transcript fails. A model
# that leaned on one dominant modality collapses when that one goes; a balanced model should
# degrade gently. The paper's Table 4 drops modalities at random at rates from 0% to 50% on
# IEMOCAP {cite:p}`busso2008iemocap` and reports that the method is best or near best at every
# rate (75.07% complete, 52.39% at 50% missing), against QMF, which weights each modality by its
# estimated reliability {cite:p}`zhang2023qmf`, MMIN, which imagines a missing modality from the
# others {cite:p}`zhao2021mmin`, TATE, which encodes which modalities are missing as a tag
# {cite:p}`zeng2022tate`, and MLA {cite:p}`zhang2024mla`. Its Sec. 5.6 says only that it follows
# MLA's protocol of randomly dropping modalities; it does not say whether the training data were
# also incomplete. We train on complete data and drop modalities in the test split only.
#
# Here: the embedded three-view `mfeat` digits (noisy `pix`, `fou`, `mor`; not the paper's data).
# Each test sample loses each modality independently with probability equal to the missing rate;
# a sample that would lose all keeps one at random (`mmlib.data.missing_modality_mask`). A model
# classifies each sample from the modalities it has (absent ones are left out of the chain for the
# method, zeroed at the fusion input for the baselines). All four of the paper's baselines run:
# QMF, MMIN and TATE (our implementations from the authors' code, `mmlib/methods/qmf.py`,
# `mmin.py`, `tate.py`; MMIN and TATE drop modalities from their own training batches, as their
# papers do) and MLA; Concat and Late Fusion are reference points. QMF, MMIN and TATE run on
# `baseline_seeds` seeds ({glue:text}`missing_modalities_baseline_seeds` here; below 6 a test
# against them cannot reach p < 0.05); a paired test pairs the seeds both ran.
#
# Where their papers are silent the three follow their authors' code: QMF's loss history covers
# the training samples only, MMIN clips each network's gradient on its own (at 5.0 in the
# teacher's epochs), and TATE's tag term weighs 0.1 / B beside the others, as the code's sums
# and means make it. Against the forms before these changes (commit 9bae1ac; this chapter at its
# defaults, seeds 0-9, run once at each commit, so these figures are written here, not glued),
# at 50% missing: QMF 85.3 ± 1.4% in both forms, MMIN 83.1 ± 2.5% against
# 81.8 ± 2.5% (paired +1.3 ± 0.8 points, Wilcoxon p = 0.13), TATE 80.2 ± 2.1% against
# 80.2 ± 1.9% (p = 0.98): no change is significant. The module docstrings cite the authors' lines.
#
# ````{admonition} The answer, measured
# :class: tip
# ```{glue:md} missing_modalities_answer
# :format: myst
# ```
# The curves are in {numref}`fig-missing`; {doc}`method` explains why a balanced model should
# lose less.
# ````

# %% tags=["parameters"]
dataset: str = "mfeat"  # registered dataset name (mfeat ships with the project)
modalities: str = "pix,fou,mor"  # modalities to train on
pix_noise: float = 2.0  # mfeat only: std of the Gaussian noise added to the pix view (0 for none)
data_root: str = ""  # folder of a prepared cache for real datasets; empty for embedded data
methods: str = "ours,mla,qmf,mmin,tate,concat,late_fusion"  # to compare (unregistered: skipped)
rates: str = "0,0.1,0.2,0.3,0.4,0.5"  # missing rates, comma-separated, each in [0, 1)
seeds: int = 10  # seeds 0..seeds-1; seed s also draws the missing mask (same mask for every method)
baseline_seeds: int = 10  # seeds 0..baseline_seeds-1 for qmf, mmin and tate (at most seeds)
epochs: int = 15  # training epochs per run
alpha: float = 0.05  # significance level of the Table 4 verdict (Wilcoxon signed-rank over seeds)
results_dir: str = "results/runs"  # results store shared by all chapters (from the repo root)
figures_dir: str = "book/figures"  # where figures are saved as PNG (150 dpi)
output_dir: str = "results/chapters"  # where missing_modalities.json is written
force: bool = False  # retrain even when the results store has the run

# %% tags=["hide-input"]
import mmlib  # first: pins the CPU numerics before numpy loads (mmlib.numerics)
import dataclasses

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from IPython.display import Markdown
from myst_nb import glue

from mmlib.book import (data_options, format_p, glue_figure, mean_std_table, paired_table,
                        repo_path, save_summary, setup, show)
from mmlib.evaluate import evaluate_missing
from mmlib.experiments import intersection_union, paired_test
from mmlib.methods import available_methods, display_name
from mmlib.plots import legend_by_name, method_palette
from mmlib.results import weights_folder
from mmlib.config import TrainConfig
from mmlib.trained import train_model
from mmlib.verdicts import claim_row, deciding_test, p_source

paths = setup(results_dir, figures_dir)
rate_list = [float(r) for r in rates.split(",") if r.strip()]
wanted = [m.strip() for m in methods.split(",") if m.strip()]
method_list = [m for m in wanted if m in available_methods()]
skipped = [m for m in wanted if m not in available_methods()]
few_seeds = {"qmf", "mmin", "tate"}  # the missing-modality baselines, on baseline_seeds seeds
seeds_of = {m: min(baseline_seeds, seeds) if m in few_seeds else seeds for m in method_list}
print(f"methods run: {method_list}; not registered (skipped): {skipped or 'none'}; "
      f"seeds: {seeds_of}")

# %% [markdown]
# ## Train on complete data, test with modalities dropped

# %%
rows, records = [], []
options = data_options(dataset, modalities, pix_noise=pix_noise, data_root=data_root)
for method in method_list:
    base = TrainConfig(dataset=dataset, modalities=modalities, method=method, epochs=epochs,
                       probe=False, dataset_options=options)
    for seed in range(seeds_of[method]):
        config = dataclasses.replace(base, seed=seed)
        model, data, record = train_model(config, paths.runs, paths.weights, force=force)
        records.append(record)
        scores = evaluate_missing(model, data, rate_list, mask_seed=seed,
                                  batch_size=base.eval_batch_size)
        for rate, acc in scores.items():
            rows.append({"method": method, "seed": seed, "rate": rate, "accuracy": acc})
runs = pd.DataFrame(rows)
print(f"{len(method_list)} methods x {seeds} seeds, test split of {dataset}")

# %% [markdown]
# Every model is scored at every rate on the same test samples with the same masks (one mask
# per seed).

# %% tags=["hide-input"]
summary = runs.groupby(["method", "rate"])["accuracy"].agg(["mean", "std"]).reset_index()
wide = runs.pivot(index=["method", "seed"], columns="rate", values="accuracy").reset_index()
table = mean_std_table(wide, "method", {f"{int(round(100 * r))}% missing": r
                                        for r in sorted(set(rate_list))}, order=method_list)
show(table,
     f"Test accuracy (%) by missing rate, mean ± std over {seeds} seeds "
     f"({baseline_seeds} for QMF, MMIN, TATE; {dataset})")

# %% [markdown]
# Test accuracy (%) at each missing rate, mean ± std over seeds (our data: mfeat).

# %% tags=["hide-input"]
paper = pd.read_csv(repo_path("data/paper_reference/table4_robustness_iemocap.csv"))
paper.columns = [c.replace("missing_", "") + "% missing" if c != "method" else c
                 for c in paper.columns]
show(paper, "Paper (v1), Table 4: accuracy (%) on IEMOCAP, different data")

# %% [markdown]
# The paper's IEMOCAP numbers, for the pattern (how fast accuracy falls, who leads) rather than
# the values.

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(6.5, 4))
plot = runs.assign(percent=100 * runs["rate"])
sns.lineplot(data=plot, x="percent", y="accuracy", hue="method", hue_order=method_list,
             palette=method_palette(method_list), marker="o", errorbar="sd", ax=ax)
legend_by_name(ax)
ax.set_xlabel("missing rate per modality (%)")
ax.set_ylabel("test accuracy (%)")
ax.set_title(f"{dataset}, {seeds} seeds")
glue_figure("missing_fig", fig, paths.figures / "missing_modalities.png")

# %% [markdown]
# ```{glue:figure} missing_fig
# :name: fig-missing
#
# Test accuracy against the missing rate for each method, trained on complete data; the band is
# the standard deviation over seeds.
# ```

# %%
tests = []
if "ours" in method_list and seeds >= 2:
    for other in [m for m in method_list if m != "ours" and seeds_of[m] >= 2]:
        for rate in rate_list:
            part = runs[runs["rate"] == rate]
            tests.append({"rate": rate, **paired_test(part, "method", "ours", other, "accuracy")})
tests = pd.DataFrame(tests)
claims = []  # Table 4's claim, judged once here (mmlib.verdicts); the report restates it
if len(tests):
    hardest = max(rate_list)
    hardest_tests = tests[tests["rate"] == hardest].to_dict("records")
    beats = intersection_union({t["b"]: t for t in hardest_tests})
    decided_by = deciding_test(beats, alpha)
    rival = display_name(decided_by.get("b", beats["closest"]))
    pct = round(100 * hardest)
    claims.append(claim_row(
        f"Table 4: Ours beats every method with {pct}% of modalities missing",
        f"{dataset} [{modalities}]", beats,
        f"Ours − {rival} {decided_by['mean_diff']:+.2f}; {p_source(beats, alpha)}", alpha))

# %% tags=["hide-input"]
if len(tests):
    shown = paired_table(tests.to_dict("records"), "Δ accuracy", b="baseline")
    shown.insert(0, "missing", [f"{round(100 * r)}%" for r in tests["rate"]])
    display(show(shown, "Paired differences over seeds (Δ = method − baseline, points)"))

# %% [markdown]
# Paired tests over seeds (same model seed, same mask) of the method against each baseline at
# each rate.

# %% tags=["hide-input"]
# The exercise at the end, run small: concat and late_fusion with and without the noise on pix,
# each scored complete and at 50% missing (the same masks)
clean_options = data_options(dataset, modalities, pix_noise=0.0, data_root=data_root)
exercise_records = []
for method in ("concat", "late_fusion"):
    for label, opts in (("noisy", options), ("clean", clean_options)):
        losses = []
        for seed in range(seeds_of.get(method, seeds)):
            config = TrainConfig(dataset=dataset, modalities=modalities, method=method,
                                 epochs=epochs, probe=False, dataset_options=opts, seed=seed)
            # the chapter's own runs where they exist, else the exercise's store
            own = label == "noisy" and method in method_list
            store = paths.runs if own else paths.runs / "exercises"
            model, data, record = train_model(config, store, weights_folder(store), force=force)
            exercise_records += [] if own else [record]
            scores = evaluate_missing(model, data, [0.0, 0.5], mask_seed=seed,
                                      batch_size=config.eval_batch_size)
            losses.append(scores[0.0] - scores[0.5])
        glue(f"missing_ex_{method}_{label}", sum(losses) / len(losses), display=False)
glue("provenance_exercise_records", sorted(r["run_id"] for r in exercise_records), display=False)

# %% tags=["hide-input"]
mean = summary.pivot(index="method", columns="rate", values="mean")
best_at = {r: mean[r].idxmax() for r in rate_list}
ours_best = sum(best_at[r] == "ours" for r in rate_list) if "ours" in method_list else 0
lo, hi = min(rate_list), max(rate_list)
first = method_list[0]
loss = {m: float(mean.loc[m, lo] - mean.loc[m, hi]) for m in method_list}


def losses_in_words() -> str:
    """The answer: how much each method loses, who leads, which gaps of Ours are real."""
    pct = round(100 * hi)
    by_loss = sorted(method_list, key=loss.get)
    text = [f"Going from {round(100 * lo)}% to {pct}% missing, {display_name(first)} loses "
            f"**{loss[first]:.1f} points** ({mean.loc[first, lo]:.1f}% → "
            f"{mean.loc[first, hi]:.1f}%)"
            + "".join(f", {display_name(m)} {loss[m]:.1f}" for m in method_list if m != first)
            + "."]
    text.append(f"The gentlest decline is {display_name(by_loss[0])}'s and the steepest "
                f"{display_name(by_loss[-1])}'s; at {pct}% the best is "
                f"{display_name(best_at[hi])} ({mean.loc[best_at[hi], hi]:.1f}%).")
    if "ours" in method_list:
        text.append(f"Ours has the best mean at {ours_best} of {len(rate_list)} rates.")
    if len(tests):
        worse = tests[(tests["rate"] == hi) & (tests["mean_diff"] < 0)]
        behind = [f"{display_name(r.b)} by {-r.mean_diff:.1f} points ({format_p(r.p_wilcoxon)})"
                  for r in worse.itertuples()]
        text.append(f"At {pct}% missing Ours is behind " + "; ".join(behind) + "."
                    if behind else f"At {pct}% missing Ours is behind no method on average.")
    for row in claims:
        text.append(f"The paper's claim that Ours beats every method at {pct}% missing is "
                    f"**{row['verdict']}** ({row['seeds']} paired seeds; {format_p(row['p'])}).")
    return " ".join(text)


glue("missing_modalities_answer", Markdown(losses_in_words()), display=False)
save_summary("missing_modalities", output_dir, {
    "dataset": dataset, "seeds": seeds, "epochs": epochs, "methods": method_list,
    "skipped": skipped, "mean": {m: {str(r): float(mean.loc[m, r]) for r in rate_list}
                                 for m in method_list},
    "best_at": {str(r): m for r, m in best_at.items()}, "loss": loss,
    "tests": tests.to_dict(orient="records"), "claims": claims, "alpha": alpha}, records=records,
    missing_modalities_first_lo=float(mean.loc[first, lo]),
    missing_modalities_first_hi=float(mean.loc[first, hi]),
    missing_modalities_hi_pct=int(round(100 * hi)), missing_modalities_best_count=int(ours_best),
    missing_modalities_rates=len(rate_list),
    missing_modalities_best_hi_acc=float(mean.loc[best_at[hi], hi]),
    missing_modalities_seeds=seeds, missing_modalities_baseline_seeds=min(baseline_seeds, seeds))

# %% [markdown]
# ## Conclusion
#
# Trained on complete data and tested on {glue:text}`missing_modalities_seeds` seeds:
#
# ```{glue:md} missing_modalities_answer
# :format: myst
# ```
#
# The paper reports 75.07% → 52.39% for its method on IEMOCAP, best at three of six rates. A
# model that loses fewer points when views go missing leans less on any single view; the
# {doc}`modality_ablation` chapter shows what each view contributes when present.
#
# ## Summary and exercise
#
# Dropping views at test time measures how much a trained model depends on each of them; the
# paired tests say which differences between methods survive the variation between seeds.
#
# ```{exercise}
# :label: ex-missing-noise
#
# Rerun with `-p pix_noise 0` (a clean, strong `pix` view). Predict first: does every method
# lose more or fewer points at 50% missing, and does the gap between Concat and Late Fusion
# grow?
# ```
#
# ```{solution} ex-missing-noise
# :class: dropdown
#
# The book ran Concat and Late Fusion again with a clean `pix`, same seeds, epochs and masks.
# From complete data to 50% missing, Concat loses {glue:text}`missing_ex_concat_clean:.1f`
# points with a clean `pix` and {glue:text}`missing_ex_concat_noisy:.1f` with the noisy one;
# Late Fusion, whose per-view models were trained apart and still answer alone, loses
# {glue:text}`missing_ex_late_fusion_clean:.1f` and {glue:text}`missing_ex_late_fusion_noisy:.1f`.
# The gap between the two losses is the answer to the second question; the other methods are
# yours to rerun.
# ```
