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
# # Reproduction report
#
# What this book reproduced of the paper, cell by cell and claim by claim. Two facts frame every
# verdict. First, the paper's datasets (CREMA-D, Kinetics-400, MVSA-Single, IEMOCAP) are not
# redistributable, so the default runs use mfeat, real handwritten-digit features that ship with
# the project: a paper number and a book number are never the same quantity, and no cell can be
# "reproduced" in value. Second, the paper reports single runs; the book reports means over
# seeds and decides each qualitative claim with a paired test across seeds (Wilcoxon signed-rank,
# 5% level), and says how many seeds each verdict rests on.
#
# The claims come from six chapters. This page judges the runs of {doc}`main_comparison` and
# {doc}`component_ablation`, read back from the results store (it trains nothing: it takes their
# parameters, with the same names and defaults, and judges exactly the runs they made), and
# restates the verdicts that {doc}`frozen_backbones` (Table 3), {doc}`missing_modalities`
# (Table 4), {doc}`av_evidence` (AV-MNIST) and {doc}`decision_layer` (the companion paper) gave
# their own claims, by the same rule. The paper's method appears in two forms: Ours (`ours`), the
# literal Eq. 11, and Ours (row-normalised) (`ours_rownorm`), the same method with each sample's
# neighbour weights divided by their sum ({doc}`main_comparison` explains why). Methods go by the
# names of {doc}`the glossary <../glossary>`.
#
# ```{admonition} The verdict, measured
# :class: tip
# Of {glue:text}`report_claims` claims of the paper tested on the book's data,
# **{glue:text}`report_reproduced` are reproduced**, {glue:text}`report_not_reproduced` are not
# reproduced (the opposite is significant), {glue:text}`report_inconclusive` are inconclusive and
# {glue:text}`report_not_testable` are not testable with the seeds they have, at the
# {glue:text}`report_alpha_pct`% level (paired Wilcoxon tests over {glue:text}`report_seeds`
# seeds, each row says how many). The paper's own Table 1 contradicts itself in
# {glue:text}`report_mismatches` cells.
# ```
#
# ```{glue:md} report_tuning
# :format: myst
# ```
#
# The claims that held and those that failed, with their data and the paired difference in
# points (the others and every detail are in the table {ref}`below <report-claims>`):
#
# ```{glue:md} report_claim_lines
# :format: myst
# ```

# %% tags=["parameters"]
dataset: str = "mfeat"  # the dataset the verdicts are measured on
methods: str = "sum,concat,ogm,ogm_ge,lfm,crmt,late_fusion,mla,ours,ours_rownorm"  # Table 1's rows
view_sets: str = "fou,mor|pix,fou,mor"  # modality sets of the main comparison, separated by |
ablation_modalities: str = "pix,fou,mor"  # modality set of the component ablation (its modalities)
pix_noise: float = 2.0  # mfeat: std of the Gaussian noise on pix (0: none)
data_root: str = ""  # folder of a prepared cache for real datasets; empty for embedded data
seeds: int = 10  # seeds per method, as in the main comparison and the component ablation
epochs: int = 15  # training epochs per run, as in those chapters
protocol: str = "book"  # preset in mmlib/protocols.py (book, ogm_ge, mla), as in those chapters
alpha: float = 0.05  # significance level of the paired tests
results_dir: str = "results/runs"  # results store shared by all chapters (from the repo root)
output_dir: str = "results/chapters"  # where report.json (every verdict) is written

# %% tags=["hide-input"]
import mmlib  # first: pins the CPU numerics before numpy loads (mmlib.numerics)
import json

import pandas as pd
from IPython.display import Markdown
from myst_nb import glue

from mmlib.book import data_options, format_p, repo_path, save_summary, setup, show
from mmlib.experiments import (ablation_configs, beats_all, comparison_configs, mean_std,
                               paired_test, paper_ablation_deltas, stored_grid)
from mmlib.methods import display_name, method_class, parse_methods
from mmlib.plots import METHOD_ORDER
from mmlib.results import records_frame
from mmlib.verdicts import (INCONCLUSIVE, NOT_REPRODUCED, NOT_TESTABLE, REPRODUCED, claim_row,
                            judged_again, p_source, smallest_p, verdict_kind)

requested = parse_methods(methods, "methods")
chosen = [m for m in METHOD_ORDER if m in requested]
sets = [s.strip() for s in view_sets.split("|") if s.strip()]
runs_dir = setup(results_dir).runs  # MMLIB_CPU_THREADS threads, quiet bars; the results store
paper = pd.read_csv(repo_path("data/paper_reference/table1_main.csv"))
paper_ablation = pd.read_csv(repo_path("data/paper_reference/table2_component_ablation_cremad.csv"))
VERDICT_ORDER = {REPRODUCED: 0, NOT_REPRODUCED: 1, INCONCLUSIVE: 2, NOT_TESTABLE: 3}
# Table 1's rows, by the paper's names
PAPER_NAMES = {method_class(m).display_name: m for m in METHOD_ORDER if m != "ours_rownorm"}

# %% tags=["hide-input"]
def command(chapter: str, **chosen_parameters) -> str:
    """The command that makes a chapter's runs with this page's parameters."""
    given = {"dataset": dataset, "seeds": seeds, "epochs": epochs, "protocol": protocol,
             "pix_noise": pix_noise, "data_root": data_root, "results_dir": results_dir,
             **chosen_parameters}
    return f"python -m mmlib chapter {chapter} " + " ".join(
        f"-p {k} '{v}'" for k, v in given.items() if v != "")


def runs_of(configs, chapter: str, **chosen_parameters) -> pd.DataFrame:
    """The stored records of ``configs`` as a frame; none is trained here."""
    return records_frame(stored_grid(configs, runs_dir, command(chapter, **chosen_parameters)))


def options_of(views: str) -> dict:
    return data_options(dataset, views, pix_noise=pix_noise, data_root=data_root)


frames = {views: runs_of(comparison_configs(chosen, dataset, views, options_of(views), seeds,
                                             epochs, protocol=protocol),
                         "main_comparison", methods=methods, view_sets=view_sets)
          for views in sets}
grid = ablation_configs(dataset, ablation_modalities, options_of(ablation_modalities), seeds,
                        epochs, protocol=protocol)
ablation = pd.concat([runs_of(c, "component_ablation", modalities=ablation_modalities)
                      .assign(variant=v) for v, c in grid.items()], ignore_index=True)
# a run that two tables share (Table 1's ours is Table 2's full model) is one run read
records_read = sorted({r for f in [*frames.values(), ablation] for r in f["run_id"]})
print(f"{len(records_read)} runs read from the results store")

# %% [markdown]
# ## Table 1 beside the book's analogue
#
# The paper's fused ("Multi") accuracy of each method on its four datasets (v1, single runs),
# beside the same method's fused test accuracy here on each modality set (mean ± std over
# seeds). The two sides are different data, so no cell can be reproduced in value; the claims
# below compare patterns instead.

# %% tags=["hide-input"]
multi = paper[paper["row"] == "Multi"]
cells = multi.pivot_table(index="method", columns="dataset", values="accuracy", sort=False)
cells = cells.map(lambda v: f"{v:.2f}")  # the paper prints two decimals
cells.columns = [f"paper {c}" for c in cells.columns]
for views, frame in frames.items():
    stats = frame.groupby("method")["fused_acc"].agg(["mean", "std"])
    cells[f"book [{views}]"] = [mean_std(*stats.loc[PAPER_NAMES[m]], 2)
                                if PAPER_NAMES[m] in stats.index else "not run"
                                for m in cells.index]
if all("ours_rownorm" in f["method"].values for f in frames.values()):
    row = {c: "–" for c in cells.columns if c.startswith("paper")}
    row.update({f"book [{v}]": mean_std(*f[f.method == "ours_rownorm"]["fused_acc"].agg(
        ["mean", "std"]), 2) for v, f in frames.items()})
    cells.loc[display_name("ours_rownorm")] = row
cells = cells.reset_index()
show(cells, "Table 1 (v1) beside the book: fused accuracy (%), the paper's single runs and the "
     "book's mean ± std over seeds").set_properties(subset=["method"], **{"white-space": "normal"})


# %% [markdown]
# The last row, Ours (row-normalised), is not in the paper: it is the row-normalised form of
# Eq. 11.
#
# (report-claims)=
# ## The paper's claims, tested
#
# Each claim is a comparison between methods (or variants) that the paper's tables support. A
# claim is *reproduced* when the book's data shows the same direction with p < alpha, *not
# reproduced* when the opposite direction is significant, *inconclusive* when neither is, and
# *not testable with n seeds* when its test could not reach alpha whatever the data: with n
# paired seeds, all differences of one sign, the exact two-sided Wilcoxon test gives its
# smallest p, $2 / 2^n$ (0.25 with 3 seeds, 0.0625 with 5, 0.031 with 6), so at the 5%
# level a claim needs at least 6 seeds. The `seeds` column is the number of paired seeds behind
# each row. Rows from another chapter carry that chapter's verdict (judged by the same rule,
# `mmlib.verdicts.judged_again`); they are absent when the chapter has not run (the
# AV-MNIST rows also when FSDD was not there).

# %% tags=["hide-input"]
def claim(text: str, data: str, evidence: str, test: dict, chapter: str,
          higher_is_better: bool = True) -> dict:
    """One row of the claims table (:func:`mmlib.verdicts.claim_row`), judged at ``alpha``, and
    the chapter whose runs it rests on."""
    return {**claim_row(text, data, test, evidence, alpha, higher_is_better), "chapter": chapter,
            "source": None}


def restated(row: dict, text: str, data: str, chapter: str) -> dict:
    """A claim row ``chapter`` stored, its claim and data as the report words them, with the
    chapter's verdict (:func:`mmlib.verdicts.judged_again`: the same rule at ``alpha``) and the
    chapter's own wording of it (``source``), so the two can be compared."""
    return {**row, "claim": text, "data": data, "verdict": judged_again(row, alpha),
            "chapter": chapter, "source": {"claim": row["claim"], "data": row["data"]}}


def stored(name: str) -> dict:
    """What another chapter stored at its last run (``results/chapters/NAME.json``); empty if it
    has not run."""
    path = repo_path(output_dir) / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else {}


forms = [form for form in ("ours", "ours_rownorm")
         if all(form in f["method"].values for f in frames.values())]
claims = []
for views, frame in frames.items():
    data = f"{dataset} [{views}]"
    means = frame.groupby("method")[["fused_acc", "edm"]].mean()
    spread = frame.groupby("method")[["fused_acc", "edm"]].std()
    for form in forms:
        for metric, label, positive in (("fused_acc", "highest fused accuracy", True),
                                        ("edm", "lowest EDM", False)):
            # both forms of Eq. 11 are ours: the rival is the best of the others
            others = means[metric].drop(["ours", "ours_rownorm"], errors="ignore")
            rival = others.idxmax() if positive else others.idxmin()
            ours_cell = mean_std(means.loc[form, metric], spread.loc[form, metric], 2)
            rival_cell = mean_std(means.loc[rival, metric], spread.loc[rival, metric], 2)
            claims.append(claim(f"{display_name(form)} has the {label} of all methods", data,
                                f"{display_name(form)} {ours_cell} vs best other "
                                f"({display_name(rival)}) {rival_cell}",
                                paired_test(frame, "method", form, rival, metric),
                                "main_comparison", positive))
        for metric, label, positive in (
                ("fused_acc", "higher fused accuracy than joint training (Concat)", True),
                ("edm", "lower EDM than joint training (Concat)", False)):
            test = paired_test(frame, "method", form, "concat", metric)
            claims.append(claim(f"{display_name(form)} has {label}", data,
                                f"{display_name(form)} − Concat {test['mean_diff']:+.2f}", test,
                                "main_comparison", positive))
        weakest = min(frame["modalities"].iloc[0].split(","),
                      key=lambda m: frame[f"head_acc_{m}"].mean())
        test = paired_test(frame, "method", form, "concat", f"head_acc_{weakest}")
        claims.append(claim(f"{display_name(form)} keeps the weak modality usable alone better "
                            "than joint training", data, f"head accuracy of {weakest}: "
                            f"{display_name(form)} − Concat {test['mean_diff']:+.2f}", test,
                            "main_comparison"))

# %% tags=["hide-input"]
# Table 2 (component ablation): each variant against the full model, and the order claim of v2
ablation_data = f"{dataset} [{ablation_modalities}]"
for variant, paper_delta in paper_ablation_deltas(paper_ablation).items():  # variant − full
    test = paired_test(ablation, "variant", variant, "full", "fused_acc")
    claims.append(claim(f"{variant} costs fused accuracy (paper: {paper_delta:+.2f} on CREMA-D)",
                        ablation_data, f"variant − full {test['mean_diff']:+.2f}", test,
                        "component_ablation", higher_is_better=False))
orders = beats_all(ablation, "variant", "full", ["reverse order", "random order", "fixed order"],
                   "fused_acc")
differences = ", ".join(f"{o.split()[0]} {t['mean_diff']:+.2f}" for o, t in orders["tests"].items())
claims.append(claim("v2: the weak-to-strong order beats every other order", ablation_data,
                    f"weak-to-strong − {differences} ({p_source(orders, alpha)})", orders,
                    "component_ablation"))

# %% tags=["hide-input"]
# The claims other chapters judged on their own runs, restated by the same rule
for row in stored("av_evidence").get("claims", []):
    claims.append(restated(row, row["claim"], "AV-MNIST", "av_evidence"))
frozen = stored("frozen_backbones")
frozen_data = {"claims": f"{frozen.get('base')} [{frozen.get('modalities')}]",
               "avmnist": "AV-MNIST"}
for part, label in frozen_data.items():  # Table 3: full and limited data, both datasets
    rows = frozen.get("claims", []) if part == "claims" else frozen.get(part, {}).get("claims", [])
    for row in rows:  # data: the share of the training split
        share = row["data"].replace(" of the training split", "")
        claims.append(restated(row, f"Table 3: {row['claim']}",
                               f"{label}, frozen, {share} of the data", "frozen_backbones"))
for row in stored("missing_modalities").get("claims", []):  # Table 4
    claims.append(restated(row, row["claim"], row["data"], "missing_modalities"))
decision = stored("decision_layer")
if decision:  # the companion paper: an adaptive decision layer helps
    calibration = decision["calibration"]
    claims.append(claim("companion: calibrating each modality's logits helps "
                        "(Sum (calibrated) against Sum)",
                        f"{decision['dataset']} [{decision['modalities']}]",
                        f"Sum (calibrated) − Sum {calibration['mean_diff']:+.2f}", calibration,
                        "decision_layer"))
claims = pd.DataFrame(claims)
claims["smallest p"] = [smallest_p(n) for n in claims["seeds"]]
key_columns = ["verdict", "claim", "data", "mean diff", "p", "seeds"]
show(claims[key_columns].rename(columns={"mean diff": "Δ"}),
     "The paper's claims: paired tests over seeds (Δ: the claim's paired difference, points; "
     "Wilcoxon p)", p_columns=["p"]).set_properties(
    subset=["verdict", "claim", "data"], **{"white-space": "normal"})

# %% [markdown]
# Δ is the difference the claim is about (first named minus second, or variant minus full);
# its sign that supports the claim is in the claim's words. The evidence behind each row, the
# smallest p its seeds allow and the chapter it comes from:

# %% tags=["remove-input", "hide-output"]
show(claims[["claim", "data", "evidence", "smallest p", "chapter"]],
     "The claims' evidence", p_columns=["smallest p"]).set_properties(
    subset=["claim", "data", "evidence"], **{"white-space": "normal"})

# %% [markdown]
# ## The paper's own inconsistencies
#
# In Table 1, the fused ("Multi") EDM should be the sum of the per-modality EDMs of the same
# column. The cells below break that rule by more than 0.01.

# %% tags=["hide-input"]
parts = paper[paper["row"] != "Multi"].groupby(["dataset", "method"], sort=False)["edm"].sum()
multi_edm = paper[paper["row"] == "Multi"].set_index(["dataset", "method"])["edm"]
mismatch = pd.DataFrame({"sum of per-modality EDMs": parts, "Multi EDM as printed": multi_edm})
mismatch["difference"] = mismatch["Multi EDM as printed"] - mismatch["sum of per-modality EDMs"]
mismatch = mismatch[mismatch["difference"].abs() > 0.01 + 1e-9]
show(mismatch.reset_index(), "Paper (v1), Table 1: fused EDM against the sum of its parts")

# %% tags=["hide-input"]
counts = claims["verdict"].map(verdict_kind).value_counts()
glue("report_claims", int(len(claims)), display=False)
glue("report_reproduced", int(counts.get(REPRODUCED, 0)), display=False)
glue("report_not_reproduced", int(counts.get(NOT_REPRODUCED, 0)), display=False)
glue("report_inconclusive", int(counts.get(INCONCLUSIVE, 0)), display=False)
glue("report_not_testable", int(counts.get(NOT_TESTABLE, 0)), display=False)
glue("report_mismatches", int(len(mismatch)), display=False)
fewest, most = int(claims["seeds"].min()), int(claims["seeds"].max())
glue("report_seeds", f"{fewest}" if fewest == most else f"{fewest} to {most}", display=False)
decided = claims[claims["verdict"].isin([REPRODUCED, NOT_REPRODUCED])].sort_values(
    "verdict", key=lambda v: v.map(VERDICT_ORDER))
glue("report_claim_lines", Markdown("\n".join(
    f"- **{row['verdict']}**: {row['claim']} ({row['data']}, {row['seeds']} seeds; "
    f"difference {row['mean diff']:+.2f}, {format_p(row['p'])})"
    for _, row in decided.iterrows()) or "- none"), display=False)
tuning = stored("tuning")
if tuning:
    tuned_claims = pd.DataFrame(tuning["claims"])
    judged = len(tuned_claims[["claim", "data"]].drop_duplicates())
    flips = [f"\"{c['claim']}\" on {c['data']} is {c['verdict (defaults)']} at the defaults but "
             f"{c['verdict (tuned)']} tuned" for c in tuning["changed"]]
    tuning_text = (f"**Under tuned hyperparameters** (an equal validation-only budget per method, "
                   f"{{doc}}`tuning`, {tuning['seeds']} seeds), {judged - len(flips)} of {judged} "
                   f"verdicts judged there stay the same"
                   + (": " + "; ".join(flips) + "." if flips else "; none flips, and none appears "
                      "only once tuned."))
else:
    tuning_text = ("The {doc}`tuning` chapter has not run, so no verdict here has been checked "
                   "under tuned hyperparameters.")
glue("report_tuning", Markdown(tuning_text), display=False)
save_summary("report", output_dir, {
    "claims": claims.to_dict(orient="records"),
    "paper_mismatches": mismatch.reset_index().to_dict(orient="records"),
    "cells": cells.to_dict(orient="records"), "seeds": seeds, "epochs": epochs,
    "protocol": protocol, "methods": chosen, "alpha": alpha, "runs_read": len(records_read)},
    records=[{"run_id": r} for r in records_read], report_runs=len(records_read),
    report_alpha_pct=round(100 * alpha))

# %% [markdown]
# ## Summary
#
# Of {glue:text}`report_claims` tested claims, {glue:text}`report_reproduced` are reproduced on
# the book's data, {glue:text}`report_not_reproduced` are not reproduced,
# {glue:text}`report_inconclusive` are inconclusive and {glue:text}`report_not_testable` are not
# testable with their seeds at the {glue:text}`report_alpha_pct`% level, judged on the
# {glue:text}`report_runs` runs of the main comparison and the component ablation and on what
# four more chapters stored.
# No single number of the paper can be checked here, because its datasets are not available; the
# {doc}`../rerun` page explains how to run every chapter on them. The paper's Table 1 contradicts
# itself in {glue:text}`report_mismatches` cells, where its fused EDM is not the sum of its parts.
#
# ```{exercise}
# :label: ex-report-alpha
#
# Rerun with `-p alpha 0.01`. Predict first: which verdicts can change, and in which direction?
# ```
#
# ```{solution} ex-report-alpha
# :class: dropdown
#
# A stricter level can only move claims from *reproduced* or *not reproduced* to
# *inconclusive* or *not testable*, never the other way: the p-values do not change, only the
# bar they must clear. Claims whose p-value lies between 0.01 and 0.05 are the ones that move,
# and every claim on fewer than eight seeds becomes not testable: with seven pairs, the exact
# test cannot reach the stricter level.
# ```
