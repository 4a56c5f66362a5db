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
# # Quickstart: how strong is each modality alone?
#
# Modality imbalance starts with a plain fact: some inputs carry more of the answer than others.
# Before any multimodal training, this chapter measures that fact on real data that ships with
# the project, the six feature views of the UCI *Multiple Features* handwritten digits (`mfeat`,
# 2000 digits, 10 classes). For each view we fit a linear classifier on that view alone, then one
# on all views together, and compare their test accuracy. The paper's method is not trained
# here at first; the chapter measures the imbalance, explains why the later chapters use the
# views they use, and ends by training the paper's method for a few epochs to show the Shapley
# values that steer its training order.
#
# ```{admonition} The answer, measured
# :class: tip
# Alone, the strongest view ({glue:md}`quickstart_best_view`) reaches
# {glue:text}`quickstart_best_view_accuracy:.1f`% test accuracy and the weakest
# ({glue:md}`quickstart_weakest_view`) {glue:text}`quickstart_weakest_view_accuracy:.1f`%; one
# classifier on all of them reaches {glue:text}`quickstart_all_views_accuracy:.1f`%
# ({numref}`fig-quickstart-views`). That gap between views is the imbalance every later chapter
# works with.
# ```
#
# Every number below is a mean over several stratified train / validation / test splits; the
# spread is the standard deviation across them. The classifier is scikit-learn's logistic
# regression, fitted on the training split and scored on the test split.

# %% tags=["parameters"]
modalities: str = "pix,fac,kar,fou,zer,mor"  # mfeat views to compare, comma-separated
# noise is given in std units of the standardised features, e.g. pix at 2.0 std
noise: str = ""  # Gaussian noise per view: a comma list of VIEW, equals sign, STD; empty for none
noisy_pix_std: float = 2.0  # noise on `pix` in the three-view set `pix,fou,mor` compared at the end
split_seeds: int = 3  # number of train/val/test splits (seeds 0, 1, ...); mean and std over them
max_iter: int = 500  # iteration budget of the logistic regression (lbfgs)
output_dir: str = "results/quickstart"  # where quickstart.json (every accuracy per seed) goes
figures_dir: str = "book/figures"  # where the figure is saved as PNG (150 dpi)
train_modalities: str = "pix,fou,mor"  # mfeat views the paper's method is trained on at the end
train_noise: str = "pix=2.0"  # noise option of that training set (empty for none)
epochs: int = 8  # training epochs of the paper's method
seed: int = 0  # seed of that training run
results_dir: str = "results/runs"  # the results store shared by every chapter (stored runs reused)

# %% tags=["hide-input"]
import mmlib  # first: pins the CPU numerics before numpy loads (mmlib.numerics)
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from IPython.display import Markdown
from myst_nb import glue
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from mmlib.book import glue_figure, save_summary, setup, show
from mmlib.data import load_dataset
from mmlib.plots import modality_palette
from mmlib.results import history_frame
from mmlib.config import TrainConfig
from mmlib.train import train

paths = setup(results_dir, figures_dir)  # figure style, MMLIB_CPU_THREADS threads, quiet bars
threadpool_limits(1)  # small problems: one BLAS thread is much faster than two on a busy CPU
warnings.filterwarnings("ignore", category=ConvergenceWarning)  # small max_iter in smoke tests
seeds = list(range(split_seeds))

# %% [markdown]
# One helper fits a classifier on any group of views (concatenated) and returns its test
# accuracy in percent. The data are already standardised by the loader, using the training
# split's statistics only.

# %%
def test_accuracy(data, views) -> float:
    """Logistic regression on the concatenated ``views``, fitted on train, scored on test (%)."""
    train, test = data.splits["train"], data.splits["test"]
    X = np.concatenate([data.inputs[v] for v in views], axis=1)
    model = LogisticRegression(max_iter=max_iter).fit(X[train], data.labels[train])
    return 100.0 * model.score(X[test], data.labels[test])


def accuracy_table(views: str, noise: str, groups: dict[str, tuple[str, ...]]) -> pd.DataFrame:
    """One row per (group, seed): the test accuracy of each group of views."""
    rows = []
    for seed in seeds:
        data = load_dataset("mfeat", modalities=views, noise=noise or None, split_seed=seed)
        for label, group in groups.items():
            rows.append({"input": label, "seed": seed, "accuracy": test_accuracy(data, group)})
    return pd.DataFrame(rows)


# %% [markdown]
# ## Each view alone, and all views together

# %%
views = tuple(v.strip() for v in modalities.split(",") if v.strip())
groups = {v: (v,) for v in views} | {"all views": views}
runs = accuracy_table(modalities, noise, groups)
summary = (
    runs.groupby("input", sort=False)["accuracy"].agg(["mean", "std"]).fillna(0.0)
    .rename(columns={"mean": "test accuracy (%)", "std": "std over splits"})
)
show(summary.reset_index(), f"mfeat: test accuracy (%) of each view alone and of all views, "
     f"mean and std over {len(seeds)} splits", digits=1)

# %% [markdown]
# The table lists each view's accuracy on its own and the accuracy of one classifier that sees
# every view. The gap between the best and the worst view is the imbalance a multimodal model
# inherits: trained jointly, it can lean on the strong view and leave the weak one under-used.

# %% tags=["hide-input"]
per_view = summary.loc[list(views), "test accuracy (%)"]
palette = modality_palette(list(views)) | {"all views": "#222222"}
fig, ax = plt.subplots(figsize=(6.5, 3.6))
sns.barplot(data=runs, x="input", y="accuracy", hue="input", palette=palette, errorbar="sd",
            order=list(groups), legend=False, ax=ax)
ax.set_xlabel("input to the logistic regression (mfeat view)")
ax.set_ylabel("test accuracy (%)")
ax.set_ylim(0, 100)
ax.set_title(f"Each mfeat view alone vs all together ({len(seeds)} splits)")
glue_figure("quickstart_views_fig", fig, paths.figures / "quickstart_views.png")

# %% [markdown]
# ```{glue:figure} quickstart_views_fig
# :name: fig-quickstart-views
#
# Test accuracy of a logistic regression on each mfeat view alone and on all the chosen views
# together (mean over splits; error bars: standard deviation over splits). Each view keeps the
# colour it has in every chapter of the book.
# ```

# %% [markdown]
# ## Why the later chapters use `fou,mor` and a noisy `pix`
#
# With the clean `pix` view almost any classifier is near the ceiling, so methods cannot differ.
# Two view sets leave room: `fou,mor`, where one view is clearly stronger than the other, and
# `pix,fou,mor` with Gaussian noise on `pix` (parameter `noisy_pix_std`), which pulls the
# otherwise dominant `pix` view down towards `fou`.

# %%
noisy = f"pix={noisy_pix_std}"
pair = accuracy_table("fou,mor", "", {"fou": ("fou",), "mor": ("mor",), "fou+mor": ("fou", "mor")})
pair["view set"] = "fou,mor"
triple = accuracy_table("pix,fou,mor", noisy, {
    "pix (noisy)": ("pix",), "fou": ("fou",), "mor": ("mor",),
    "pix+fou+mor": ("pix", "fou", "mor")})
triple["view set"] = f"pix,fou,mor with {noisy}"
defaults = (
    pd.concat([pair, triple]).groupby(["view set", "input"], sort=False)["accuracy"]
    .agg(["mean", "std"]).fillna(0.0)
    .rename(columns={"mean": "test accuracy (%)", "std": "std over splits"})
)
show(defaults.reset_index(), "The two view sets of the later chapters: test accuracy (%)", digits=1)

# %% [markdown]
# In both sets the views differ clearly on their own, yet the joint classifier beats each of
# them: every view adds something. That is the setting where the order and balance of training
# can matter, and where the later chapters compare methods.

# %% tags=["hide-input"]
best_view, weakest_view = per_view.idxmax(), per_view.idxmin()
results = {
    "parameters": {"modalities": modalities, "noise": noise, "noisy_pix_std": noisy_pix_std,
                   "split_seeds": split_seeds, "max_iter": max_iter},
    "dataset": "mfeat",
    "per_view_accuracy": {v: float(per_view[v]) for v in views},
    "all_views_accuracy": float(summary.loc["all views", "test accuracy (%)"]),
    "best_view": best_view,
    "weakest_view": weakest_view,
    "fou_mor_accuracy": float(defaults.loc[("fou,mor", "fou+mor"), "test accuracy (%)"]),
    "noisy_pix_accuracy": float(
        defaults.loc[(f"pix,fou,mor with {noisy}", "pix (noisy)"), "test accuracy (%)"]),
    "runs": pd.concat([runs.assign(**{"view set": modalities}), pair, triple])
    .to_dict(orient="records"),
}
for key in ("all_views_accuracy", "fou_mor_accuracy", "noisy_pix_accuracy"):
    glue(f"quickstart_{key}", results[key], display=False)
glue("quickstart_best_view", Markdown(f"`{best_view}`"), display=False)
glue("quickstart_weakest_view", Markdown(f"`{weakest_view}`"), display=False)
glue("quickstart_best_view_accuracy", float(per_view.max()), display=False)
glue("quickstart_weakest_view_accuracy", float(per_view.min()), display=False)

# %% [markdown]
# ## Training the paper's method for a few epochs
#
# The method trains one modality at a time. After every epoch it measures each view's Shapley
# value, its average marginal gain in validation accuracy over all groups of the other views, and
# trains the views in ascending order of that value in the next epoch, weakest first. One call
# trains it and stores the run in the results store; the figure below is drawn from that record.

# %%
config = TrainConfig(dataset="mfeat", modalities=train_modalities,
                     dataset_options={"noise": train_noise} if train_noise else {},
                     method="ours", epochs=epochs, seed=seed)
record = train(config, results_dir=results_dir, progress=False)
orders = pd.DataFrame({
    "epoch": [h["epoch"] for h in record["history"]],
    "training order (weakest first)": [" → ".join(h["order"]) for h in record["history"]],
    "validation fused accuracy (%)": [h["fused_acc"] for h in record["history"]]})
show(orders, f"Ours on mfeat [{train_modalities}]: the order of each epoch", digits=1)

# %% [markdown]
# Epoch 1 follows the listed order; from epoch 2 on, the order is the ranking of the previous
# epoch's Shapley values, so a view that falls behind moves to the front.

# %% tags=["hide-input"]
# The two exercises at the end, run small: twice the noise on pix, and 20 epochs with seed 1
louder = accuracy_table("pix,fou,mor", f"pix={2 * noisy_pix_std}", {
    "pix": ("pix",), "mor": ("mor",), "all": ("pix", "fou", "mor")}).groupby("input")["accuracy"]
for label, value in louder.mean().items():
    glue(f"quickstart_ex_louder_{label}", float(value), display=False)
glue("quickstart_ex_louder_std", 2 * noisy_pix_std, display=False)
glue("quickstart_ex_triple_default", float(
    defaults.loc[(f"pix,fou,mor with {noisy}", "pix+fou+mor"), "test accuracy (%)"]), display=False)
glue("quickstart_ex_pix_drop", results["noisy_pix_accuracy"] - float(louder.mean()["pix"]),
     display=False)
glue("quickstart_ex_all_drop", float(defaults.loc[(f"pix,fou,mor with {noisy}", "pix+fou+mor"),
                                                   "test accuracy (%)"] - louder.mean()["all"]),
     display=False)
glue("quickstart_ex_mor_default", float(
    defaults.loc[(f"pix,fou,mor with {noisy}", "mor"), "test accuracy (%)"]), display=False)
# the exercises' own store (results_dir/exercises): the chapter's records stay its own
longer = train(TrainConfig(dataset="mfeat", modalities=train_modalities, method="ours", epochs=20,
                           seed=1, dataset_options=config.dataset_options),
               results_dir=paths.runs / "exercises", progress=False)
glue("provenance_exercise_records", [longer["run_id"]], display=False)
spread = history_frame([longer]).groupby("epoch")["share"].agg(lambda v: v.max() - v.min())
glue("quickstart_ex_spread_first", float(spread.iloc[0]), display=False)
glue("quickstart_ex_spread_last", float(spread.iloc[-1]), display=False)
glue("quickstart_ex_spread_min", float(spread.min()), display=False)
final = history_frame([longer]).query("epoch == epoch.max()").set_index("modality")["share"]
glue("quickstart_ex_leader", Markdown(f"`{final.idxmax()}`"), display=False)

# %% tags=["hide-input"]
history = history_frame([record])
train_views = list(record["modalities"])
fig, ax = plt.subplots(figsize=(6.5, 3.4))
sns.lineplot(data=history, x="epoch", y="share", hue="modality",
             palette=modality_palette(train_views), hue_order=train_views, marker="o", ax=ax)
ax.axhline(100 / len(train_views), color="grey", lw=1, ls="--", label="equal share")
ax.set_xlabel("epoch")
ax.set_ylabel("Shapley share of validation accuracy (%)")
ax.set_title(f"Ours on mfeat [{train_modalities}], seed {seed}")
ax.legend(title="view")
glue_figure("quickstart_shares_fig", fig, paths.figures / "quickstart_shapley_shares.png")

test = record["test"]
glue("quickstart_ours_fused", test["fused_acc"], display=False)
glue("quickstart_ours_edm", test["edm"], display=False)
glue("quickstart_ours_epochs", epochs, display=False)
results["ours"] = {"run_id": record["run_id"], "fused_acc": test["fused_acc"],
                   "edm": test["edm"], "orders": [h["order"] for h in record["history"]]}
save_summary("quickstart", output_dir, results, records=[record])

# %% [markdown]
# ```{glue:figure} quickstart_shares_fig
# :name: fig-quickstart-shares
#
# Each view's share of the validation accuracy, by Shapley value, after every epoch of the
# paper's method (one seed; the dashed line is an equal share). The training order of the next
# epoch ranks these values from low to high.
# ```

# %% [markdown]
# ## Conclusion
#
# On its own, the strongest view ({glue:md}`quickstart_best_view`) reaches
# {glue:text}`quickstart_best_view_accuracy:.1f`% test accuracy and the weakest
# ({glue:md}`quickstart_weakest_view`) {glue:text}`quickstart_weakest_view_accuracy:.1f`%;
# one classifier on all the chosen views reaches {glue:text}`quickstart_all_views_accuracy:.1f`%.
# The two-view set `fou,mor` reaches {glue:text}`quickstart_fou_mor_accuracy:.1f`% together,
# and noise on `pix` brings that view down to {glue:text}`quickstart_noisy_pix_accuracy:.1f`%.
# After {glue:text}`quickstart_ours_epochs` epochs, the paper's method reaches
# {glue:text}`quickstart_ours_fused:.1f`% fused test accuracy on the noisy three-view set, with
# an EDM of {glue:text}`quickstart_ours_edm:.1f` (one seed: the later chapters use ten).
#
# The next chapter, {doc}`method`, takes the method apart piece by piece; {doc}`main_comparison`
# then trains it against its baselines on these two view sets.
#
# ## Summary and exercises
#
# The views of one dataset differ widely in how much of the answer they carry, and a classifier
# that sees them all beats each one: the setting in which balancing their training can matter.
# More exercises for a class are in {doc}`../rerun`.
#
# ```{exercise}
# :label: ex-quickstart-noise
#
# Rerun with `-p noisy_pix_std 4.0`. Predict first: does the noisy `pix` view fall below `mor`,
# and does the three-view classifier lose as much as `pix` does?
# ```
#
# ```{solution} ex-quickstart-noise
# :class: dropdown
#
# The book ran it (same splits). With noise of std {glue:text}`quickstart_ex_louder_std:.1f` on
# `pix`, that view alone reaches {glue:text}`quickstart_ex_louder_pix:.1f`% (at the default
# noise {glue:text}`quickstart_noisy_pix_accuracy:.1f`%), `mor` alone
# {glue:text}`quickstart_ex_louder_mor:.1f`% (unchanged:
# {glue:text}`quickstart_ex_mor_default:.1f`%), and the classifier on all three views
# {glue:text}`quickstart_ex_louder_all:.1f`% (at the default noise
# {glue:text}`quickstart_ex_triple_default:.1f`%): `pix` loses
# {glue:text}`quickstart_ex_pix_drop:.1f` points, the three-view classifier
# {glue:text}`quickstart_ex_all_drop:.1f`. Compare the three-view classifier with `mor` alone:
# whether a joint model still beats its best remaining view when one view turns to noise is the
# question the later chapters ask of every method.
# ```
#
# ```{exercise}
# :label: ex-quickstart-epochs
#
# Rerun with `-p epochs 20 -p seed 1`. Predict first: do the Shapley shares of
# {numref}`fig-quickstart-shares` move toward the equal-share line or away from it?
# ```
#
# ```{solution} ex-quickstart-epochs
# :class: dropdown
#
# The book ran it. The gap between the largest and the smallest Shapley share is
# {glue:text}`quickstart_ex_spread_first:.1f` points after the first epoch,
# {glue:text}`quickstart_ex_spread_last:.1f` after the twentieth (smallest on the way:
# {glue:text}`quickstart_ex_spread_min:.1f`), and {glue:md}`quickstart_ex_leader` holds the largest
# share at the end. Training the weakest view first raises it, but no schedule removes the
# difference in how much of the digit each view carries.
# ```
