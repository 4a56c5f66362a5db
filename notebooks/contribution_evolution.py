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
# # Contribution evolution: does training drift toward equilibrium? (Fig. 3, Sec. 5.5.1)
#
# The paper follows each modality's Shapley share epoch by epoch on MVSA-Single and reports that
# alternating training pulls the shares toward equality. It then correlates the gap between the
# modalities with fused accuracy on Kinetics-Sounds and finds a negative Pearson correlation
# (r = −0.2648, p = 0.0112): smaller gaps, better fusion. This chapter draws the same curves for
# every method from the validation Shapley values that each run records after every epoch, and
# computes the same correlation over the runs of the main comparison (mfeat, not the paper's data).
#
# ````{admonition} The answer, measured
# :class: tip
# Over {glue:text}`evolution_runs` runs, the correlation between the gap of the views' Shapley
# shares and fused accuracy is r = {glue:text}`evolution_r:.3f` ({glue:text}`evolution_p`), against
# the paper's −0.26 on Kinetics-Sounds.
# ````

# %% tags=["parameters"]
methods: str = "concat,mla,ours"  # methods whose share curves are drawn, comma-separated
dataset: str = "mfeat"  # a registered dataset
modalities: str = "fou,mor"  # modalities of the runs (a two-modality set makes the gap one number)
pix_noise: float = 2.0  # mfeat: std of the Gaussian noise on pix when the set has it (0: none)
data_root: str = ""  # folder of a prepared cache for real datasets; empty for embedded data
# methods whose runs are pooled for the correlation of the modality gap with fused accuracy
correlation_methods: str = "sum,concat,ogm,ogm_ge,lfm,crmt,late_fusion,mla,ours"  # pooled runs
seeds: int = 10  # seeds per method; the same as the main comparison so its runs are reused
epochs: int = 15  # training epochs per run; the same as the main comparison
results_dir: str = "results/runs"  # results store shared by all chapters (from the repo root)
figures_dir: str = "book/figures"  # where figures are saved as PNG (150 dpi)
output_dir: str = "results/chapters"  # where contribution_evolution.json is written
force: bool = False  # retrain even when the results store has the run
workers: int = 0  # 0: train in this kernel; N: N processes per GPU (N on a CPU) via mmlib.sweep

# %% tags=["hide-input"]
import mmlib  # first: pins the CPU numerics before numpy loads (mmlib.numerics)
import matplotlib.pyplot as plt
import seaborn as sns
from myst_nb import glue
from scipy import stats

from mmlib.book import data_options, glue_figure, glue_p, mean_std_table, save_summary, setup, show
from mmlib.experiments import comparison_configs, run_grid
from mmlib.methods import display_name, parse_methods
from mmlib.plots import METHOD_ORDER, legend_by_name, method_palette, modality_palette
from mmlib.results import history_frame, records_frame

paths = setup(results_dir, figures_dir)  # figure style, MMLIB_CPU_THREADS threads, quiet bars
shown = parse_methods(methods, "methods")
pooled = parse_methods(correlation_methods, "correlation_methods")
views = [m.strip() for m in modalities.split(",") if m.strip()]
trained = [m for m in METHOD_ORDER if m in set(shown) | set(pooled)]
options = data_options(dataset, modalities, pix_noise=pix_noise, data_root=data_root)
configs = comparison_configs(trained, dataset, modalities, options, seeds, epochs)
records = run_grid(configs, paths.runs, force=force, progress=False, workers=workers)
history = history_frame(records)

# %% [markdown]
# ## Shapley shares per epoch
#
# A modality's share is its Shapley value over the sum of all values, in percent, measured on the
# validation split after each epoch; an equal share is 100 / n.

# %%
curves = history[history["method"].isin(shown)]
# at most 9 inches across: shown at page width, the text stays above 8 px
fig, axes = plt.subplots(1, len(shown), figsize=(min(9.0, 3.2 * len(shown)), 3.6), sharey=True,
                         squeeze=False, constrained_layout=True)
for ax, method in zip(axes[0], shown):
    sns.lineplot(data=curves[curves["method"] == method], x="epoch", y="share", hue="modality",
                 hue_order=views, palette=modality_palette(views), errorbar="sd", ax=ax)
    ax.axhline(100 / len(views), color="grey", lw=1, ls="--")
    ax.set_title(display_name(method))
    ax.set_xlabel("epoch")
    ax.set_ylabel("Shapley share (%)")
fig.suptitle(f"{dataset} [{modalities}]: mean ± std over {seeds} seeds; dashed: equal share")
glue_figure("contribution_evolution_fig", fig,
            paths.figures / "contribution_evolution.png")

# %% [markdown]
# ```{glue:figure} contribution_evolution_fig
# :name: fig-contribution-evolution
#
# Joint training settles where the strong view holds most of the value; the curves of the
# alternating methods show whether the weaker view's share grows.
# ```

# %%
last = history[history["epoch"] == history["epoch"].max()]
gaps = (last.groupby(["method", "seed"])["share"].agg(lambda s: s.max() - s.min())
        .rename("gap").reset_index())
share_gap = gaps.groupby("method")["gap"].agg(["mean", "std"]).loc[trained]
show(mean_std_table(gaps, "method", {"share gap at last epoch (points)": "gap"}, order=trained),
     f"Gap between the largest and smallest Shapley share at the last epoch, "
     f"mean ± std over {seeds} seeds")

# %% [markdown]
# ## Modality gap against fused accuracy
#
# The paper's modality difference is the gap between the modalities' unimodal accuracies. Here it
# is the largest minus the smallest head accuracy on the test split; each point is one run
# (method × seed).

# %%
runs = records_frame(records)
head_columns = [f"head_acc_{m}" for m in views]
runs["modality gap"] = runs[head_columns].max(axis=1) - runs[head_columns].min(axis=1)
r, p = stats.pearsonr(runs["modality gap"], runs["fused_acc"])

# %% tags=["hide-input"]
order = [m for m in METHOD_ORDER if m in pooled]
fig, ax = plt.subplots(figsize=(7, 4.5))
sns.scatterplot(data=runs, x="modality gap", y="fused_acc", hue="method", hue_order=order,
                palette=method_palette(order), ax=ax, s=40)
ax.set_xlabel("modality gap: max − min unimodal head accuracy (points)")
ax.set_ylabel("fused test accuracy (%)")
ax.set_title(f"Pearson r = {r:.3f}, {len(runs)} runs")
legend_by_name(ax, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
glue_figure("gap_fig", fig, paths.figures / "contribution_gap_vs_accuracy.png")

# %% [markdown]
# ```{glue:figure} gap_fig
# :name: fig-gap-vs-accuracy
#
# Each point is one run (method × seed): the gap between its strongest and weakest modality
# through the classifier, against its fused test accuracy.
# ```

# %% tags=["hide-input"]
# The exercise at the end, run small: `ours` with twice the epochs (main_comparison's runs)
longer = run_grid(comparison_configs(["ours"], dataset, modalities, options, seeds, 2 * epochs),
                  paths.runs / "exercises", force=force, progress=False, workers=workers)
glue("provenance_exercise_records", sorted(r["run_id"] for r in longer), display=False)
long_last = history_frame(longer).query("epoch == epoch.max()")
long_gap = long_last.groupby("seed")["share"].agg(lambda v: v.max() - v.min())
glue("evolution_ex_epochs", 2 * epochs, display=False)
glue("evolution_ex_gap_long", float(long_gap.mean()), display=False)
glue("evolution_ex_gap_long_std", float(long_gap.std()), display=False)
short_gap = gaps.loc[gaps["method"] == "ours", "gap"]  # empty (NaN below) when ours is not run
glue("evolution_ex_gap_short", float(short_gap.mean()), display=False)
glue("evolution_ex_gap_short_std", float(short_gap.std()), display=False)

# %% tags=["hide-input"]
glue("evolution_r", float(r), display=False)
glue_p("evolution_p", float(p))
glue("evolution_runs", int(len(runs)), display=False)
save_summary("contribution_evolution", output_dir, {
    "pearson_r": float(r), "p_value": float(p), "runs": int(len(runs)),
    "share_gap_last_epoch": share_gap.to_dict(orient="index")}, records=records)

# %% [markdown]
# ## Conclusion
#
# Over {glue:text}`evolution_runs` runs the Pearson correlation between the modality gap and fused
# accuracy is {glue:text}`evolution_r:.3f` ({glue:text}`evolution_p`), against the paper's
# −0.2648 (p = 0.0112) on Kinetics-Sounds. A negative r would mean that smaller gaps go with
# better fusion; pooling methods mixes two effects (how balanced a method is, and how accurate),
# so the sign says more about the methods than about balance as such.
#
# ## Summary and exercise
#
# The Shapley shares follow each view's contribution epoch by epoch, and the correlation across
# runs tests whether a smaller gap between views goes with higher fused accuracy.
# {doc}`feature_distributions` looks at the features themselves.
#
# ```{exercise}
# :label: ex-evolution-epochs
#
# Rerun with twice the epochs (`-p epochs 30`). Predict first: do the shares of Ours move
# closer to the equal share than at the chapter's epochs?
# ```
#
# ```{solution} ex-evolution-epochs
# :class: dropdown
#
# The book ran Ours with {glue:text}`evolution_ex_epochs` epochs on the same seeds. At the last
# epoch the gap between the largest and the smallest Shapley share is
# {glue:text}`evolution_ex_gap_long:.1f` ± {glue:text}`evolution_ex_gap_long_std:.1f` points,
# against {glue:text}`evolution_ex_gap_short:.1f` ±
# {glue:text}`evolution_ex_gap_short_std:.1f` at the chapter's epochs (mean ± std over seeds).
# Training the weakest view first keeps lifting whichever view falls behind, but the views differ
# in how much of the digit they carry, which no schedule removes: a gap that stays above zero is
# what that predicts.
# ```
