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
# # Main comparison: every method, accuracy and EDM (Table 1)
#
# The paper's central table trains nine methods on four datasets and reports, for each, the
# accuracy of every modality alone, the fused accuracy, and the equilibrium deviation metric
# (EDM, lower is more balanced). Its claim: the Shapley-guided method has the best fused accuracy
# and by far the lowest EDM everywhere. This chapter runs the same nine methods through one
# training loop, with the same encoders and data, on the book's embedded data (mfeat, real
# handwritten-digit features; not the paper's datasets), over many seeds, and tests each
# difference seed by seed. The paper's method appears in two forms: `ours`, the literal Eq. 11
# (each sample adds its batch neighbours' features with raw weights, so the mapped feature grows
# with the batch), and `ours_rownorm`, the same method with the weights of each sample divided by
# their sum (a weighted mean of neighbours, the form to run).
#
# Unimodal accuracy is shown two ways: through the model's own classifier with the other
# modalities zeroed (`head`), and by a logistic regression on the frozen encoder (`probe`). EDM is
# the `sample` reading (per-sample Shapley values, see the method chapter); the `share` reading is
# shown beside it.

# %% tags=["parameters"]
methods: str = "sum,concat,ogm,ogm_ge,lfm,crmt,late_fusion,mla,ours,ours_rownorm"  # methods to compare, comma-separated
dataset: str = "mfeat"  # a registered dataset (mfeat, synthetic, or a prepared real one such as cremad)
view_sets: str = "fou,mor|pix,fou,mor"  # modality sets separated by |, each comma-separated
pix_noise: float = 2.0  # mfeat: std of the Gaussian noise on the pix view in every set that has it (0: none)
data_root: str = ""  # folder of a prepared cache for real datasets; empty for embedded data
seeds: int = 10  # seeds 0 .. seeds-1 per method and set; verdicts use paired tests over them
epochs: int = 15  # training epochs per run
protocol: str = "book"  # preset in mmlib/protocols.py: book, ogm_ge or mla (epochs overrides it)
results_dir: str = "results/runs"  # results store shared by all chapters (relative to the repository root)
figures_dir: str = "book/figures"  # where figures are saved as PNG (150 dpi)
output_dir: str = "results/chapters"  # where main_comparison.json (the summary tables) is written
force: bool = False  # retrain even when the results store has the run
workers: int = 0  # 0: train in this kernel; N: N training processes per GPU on every GPU (N on a CPU) through mmlib.sweep

# %%
import json
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from myst_nb import glue

from mmlib.analysis import data_options, repo_path
from mmlib.experiments import comparison_configs, mean_std, paired_test, run_grid
from mmlib.methods import parse_methods
from mmlib.plots import METHOD_ORDER, save_figure, use_book_style
from mmlib.results import records_frame

use_book_style()
requested = parse_methods(methods, "methods")
chosen = [m for m in METHOD_ORDER if m in requested]
sets = [s.strip() for s in view_sets.split("|") if s.strip()]
noise = f"pix={pix_noise}" if pix_noise else ""
runs_dir, fig_dir = repo_path(results_dir), repo_path(figures_dir)

# %% [markdown]
# ## Training every method on every modality set
#
# Each run is stored once in the results store; rerunning the chapter reuses stored runs.

# %%
frames = {}
for views in sets:
    configs = comparison_configs(chosen, dataset, views, data_options(dataset, views, noise, data_root), seeds, epochs,
                                 protocol=protocol)
    frames[views] = records_frame(run_grid(configs, runs_dir, force=force, progress=False, workers=workers))
    print(f"{dataset} [{views}]: {len(configs)} runs")


# %%
def summary_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per method: mean ± std over seeds of every Table 1 column."""
    views = frame["modalities"].iloc[0].split(",")
    columns = {"fused": "fused_acc", **{f"head {m}": f"head_acc_{m}" for m in views},
               **{f"probe {m}": f"probe_acc_{m}" for m in views}, "EDM": "edm", "EDM (share)": "edm_share"}
    rows = {}
    for method, part in frame.groupby("method", sort=False):
        rows[method] = {label: mean_std(part[col].mean(), part[col].std()) for label, col in columns.items() if col in part}
    return pd.DataFrame(rows).T.loc[[m for m in chosen if m in rows]]


tables = {views: summary_table(frame) for views, frame in frames.items()}
first, *rest = sets
tables[first].style.set_caption(f"{dataset} [{first}]: test accuracy (%) and EDM, mean ± std over {seeds} seeds")

# %% [markdown]
# The first modality set. `head` columns show how much each modality achieves through the
# trained classifier alone; `probe` columns show what its encoder learned.

# %%
if rest:
    display(tables[rest[0]].style.set_caption(
        f"{dataset} [{rest[0]}{', ' + noise if noise and 'pix' in rest[0] else ''}]: test accuracy (%) and EDM, "
        f"mean ± std over {seeds} seeds"))

# %% [markdown]
# The second modality set, three views with a noisy `pix`.
#
# ## The paper's Table 1, for context
#
# The paper's CREMA-D rows (audio and visual, ResNet-18 encoders): different data and encoders,
# so only the pattern can be compared.

# %%
paper = pd.read_csv(repo_path("data/paper_reference/table1_main.csv"))
cremad = paper[paper["dataset"] == "CREMA-D"]
paper_table = cremad.pivot_table(index="method", columns="row", values=["accuracy", "edm"], sort=False)
paper_table.columns = [f"{'acc' if stat == 'accuracy' else 'EDM'} {row}" for stat, row in paper_table.columns]
paper_table.style.format("{:.2f}").set_caption("Paper, Table 1, CREMA-D (accuracy %, EDM)")

# %% [markdown]
# ## Paired tests: the paper's method against each baseline
#
# For each seed the two methods saw the same split; the table gives the mean difference
# (method − baseline) over seeds and the Wilcoxon signed-rank p-value, for each form of the
# paper's method, and the row-normalised form against the literal one.

# %%
forms = [m for m in ("ours", "ours_rownorm") if m in chosen]
pairs = [(form, baseline) for form in forms for baseline in chosen if baseline not in forms]
if len(forms) == 2:
    pairs.append(("ours_rownorm", "ours"))
tests = []
for views, frame in frames.items():
    for form, baseline in pairs:
        for metric in ("fused_acc", "edm"):
            result = paired_test(frame, "method", form, baseline, metric)
            tests.append({"modalities": views, "method": form, "baseline": baseline, "metric": metric,
                          "method − baseline": result["mean_diff"], "p (Wilcoxon)": result["p_wilcoxon"]})
tests = pd.DataFrame(tests)
if len(tests):
    display(tests.pivot_table(index=["method", "baseline"], columns=["modalities", "metric"],
                              values=["method − baseline", "p (Wilcoxon)"], sort=False).style.format("{:.3g}"))

# %% [markdown]
# Positive `fused_acc` differences favour ours; negative `edm` differences favour ours.

# %%
fig, axes = plt.subplots(1, len(frames), figsize=(6 * len(frames), 4), squeeze=False)
for ax, (views, frame) in zip(axes[0], frames.items()):
    stats = frame.groupby("method")[["fused_acc", "edm"]].agg(["mean", "std"])
    for method in chosen:
        if method not in stats.index:
            continue
        row = stats.loc[method]
        ax.errorbar(row[("edm", "mean")], row[("fused_acc", "mean")], xerr=row[("edm", "std")], yerr=row[("fused_acc", "std")],
                    fmt="o", capsize=3, color="#c44e52" if method in ("ours", "ours_rownorm") else "#4c72b0")
        ax.annotate(method, (row[("edm", "mean")], row[("fused_acc", "mean")]), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xlabel("EDM, sample reading (lower = more balanced)")
    ax.set_ylabel("fused test accuracy (%)")
    ax.set_title(f"{dataset} [{views}]")
fig.suptitle(f"Accuracy against balance, mean ± std over {seeds} seeds")
save_figure(fig, fig_dir / "main_comparison.png")
plt.show()

# %% [markdown]
# Each point is a method; error bars are the standard deviation over seeds. The paper's claim
# puts its method at the top left: most accurate and most balanced.

# %%
summary = {}
for views, frame in frames.items():
    means = frame.groupby("method")[["fused_acc", "edm"]].mean()
    summary[views] = {"best_fused": means["fused_acc"].idxmax(), "lowest_edm": means["edm"].idxmin(),
                      "means": means.to_dict(orient="index")}
key = sets[0]
glue("main_sets", " and ".join(f"[{v}]" for v in sets), display=False)
glue("main_best_fused_first", summary[key]["best_fused"], display=False)
glue("main_lowest_edm_first", summary[key]["lowest_edm"], display=False)
if "ours" in chosen:
    for i, views in enumerate(sets):
        glue(f"main_ours_fused_{i}", float(summary[views]["means"]["ours"]["fused_acc"]), display=False)
        glue(f"main_ours_edm_{i}", float(summary[views]["means"]["ours"]["edm"]), display=False)
        glue(f"main_best_fused_{i}", summary[views]["best_fused"], display=False)
        glue(f"main_lowest_edm_{i}", summary[views]["lowest_edm"], display=False)
if "ours_rownorm" in chosen:
    for i, views in enumerate(sets):
        glue(f"main_ours_rownorm_fused_{i}", float(summary[views]["means"]["ours_rownorm"]["fused_acc"]), display=False)
out = repo_path(output_dir)
out.mkdir(parents=True, exist_ok=True)
(out / "main_comparison.json").write_text(json.dumps(
    {"tables": {v: t.to_dict(orient="index") for v, t in tables.items()}, "summary": summary,
     "paired_tests": tests.to_dict(orient="records"), "seeds": seeds, "epochs": epochs}, indent=1, default=str))

# %% [markdown]
# ## Conclusion
#
# On mfeat [fou,mor] the method with the best fused accuracy is
# {glue:text}`main_best_fused_0` and the most balanced (lowest EDM) is {glue:text}`main_lowest_edm_0`;
# the paper's method reaches {glue:text}`main_ours_fused_0:.1f`% with an EDM of
# {glue:text}`main_ours_edm_0:.1f`. On the noisy three-view set the best fused accuracy belongs to
# {glue:text}`main_best_fused_1` and the lowest EDM to {glue:text}`main_lowest_edm_1`; ours reaches
# {glue:text}`main_ours_fused_1:.1f`% with an EDM of {glue:text}`main_ours_edm_1:.1f`. With
# row-normalised weights the method reaches {glue:text}`main_ours_rownorm_fused_0:.1f`% and
# {glue:text}`main_ours_rownorm_fused_1:.1f`% on the two sets. The paired
# tests above say which of these gaps exceed the variation between seeds; the reproduction report
# turns them into verdicts.
