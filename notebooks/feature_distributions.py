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
# # Feature distributions across training (Fig. 4)
#
# Where do the fused features sit relative to each modality's features, and do the classes
# separate as training goes on? The paper's Fig. 4 shows 2-D embeddings on IEMOCAP: before
# training the fused features lie near the strong modalities and away from the weak visual one;
# by the last epochs they sit in the middle of the three modality clouds and every cluster is
# tighter. It gives pictures, not numbers.
#
# This chapter draws the same kind of picture for the method on the embedded three-view `mfeat`
# digits (noisy `pix`, `fou`, `mor`; not the paper's data), adds the same embedding for the Concat
# baseline, and puts a number on "better separated": the silhouette score of the ten digit
# classes, computed in the full feature space (from -1 to 1; higher means tighter, better
# separated classes), for every feature set, epoch and seed.
#
# ````{admonition} The answer, measured
# :class: tip
# Training raises the class silhouette of {glue:md}`feature_distributions_first_method`'s fused
# features from {glue:text}`feature_distributions_first_initial:.3f` to
# {glue:text}`feature_distributions_first_fused:.3f`, against
# {glue:text}`feature_distributions_second_fused:.3f` for
# {glue:md}`feature_distributions_second_method`'s concatenated features
# ({glue:text}`feature_distributions_p`, {glue:text}`feature_distributions_seeds` seeds).
# ````

# %% tags=["parameters"]
dataset: str = "mfeat"  # registered dataset name (mfeat ships with the project)
modalities: str = "pix,fou,mor"  # modalities to train on
pix_noise: float = 2.0  # mfeat only: std of the Gaussian noise added to the pix view (0 for none)
data_root: str = ""  # folder of a prepared cache for real datasets; empty for embedded data
methods: str = "ours,concat"  # methods to compare (the first is drawn in the modality panels)
seeds: int = 10  # seeds 0..seeds-1 for the silhouettes (paired test); pictures show seed 0
epochs: int = 15  # training epochs; snapshots at 0 (initial weights), 1, the middle and the last
embedding: str = "pca"  # 2-D embedding for the pictures: pca or tsne (scikit-learn)
results_dir: str = "results/runs"  # results store shared by all chapters (from the repo root)
figures_dir: str = "book/figures"  # where figures are saved as PNG (150 dpi)
output_dir: str = "results/chapters"  # where feature_distributions.json is written
force: bool = False  # recompute the snapshots even when stored

# %% tags=["hide-input"]
import mmlib  # first: pins the CPU numerics before numpy loads (mmlib.numerics)
import dataclasses
import json

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from IPython.display import Markdown
from myst_nb import glue
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE

from mmlib.book import (data_options, glue_figure, glue_p, mean_std_table, paired_table,
                        save_summary, setup, show)
from mmlib.embedding import class_silhouette, fused_features
from mmlib.evaluate import encode_split
from mmlib.experiments import paired_test
from mmlib.methods import display_name
from mmlib.plots import modality_palette
from mmlib.results import load_arrays, save_arrays, snapshots_folder
from mmlib.config import TrainConfig
from mmlib.train import load_config_dataset
from mmlib.trained import model_at_epoch

paths = setup(results_dir, figures_dir)
snap_dir = snapshots_folder(paths.runs)  # results/snapshots: stopped runs and their features
method_list = [m.strip() for m in methods.split(",") if m.strip()]
views = [m.strip() for m in modalities.split(",") if m.strip()]
snapshots = sorted({0, 1, max(1, epochs // 2), epochs})
if embedding not in ("pca", "tsne"):
    raise ValueError(f"embedding must be 'pca' or 'tsne', got {embedding!r}")


def embed(points: np.ndarray) -> np.ndarray:
    """2-D embedding of ``points`` (rows)."""
    if embedding == "pca":
        return PCA(n_components=2, random_state=0).fit_transform(points)
    return TSNE(n_components=2, init="pca", random_state=0, perplexity=30).fit_transform(points)


# %% [markdown]
# ## Features at each snapshot
#
# One continuing training run per method and seed, stopped after each snapshot epoch to read the
# current weights (epoch 0: the initial weights). Features are computed on the test split.

# %%
cache = snap_dir / f"features-{dataset}-{modalities.replace(',', '_')}-e{epochs}-n{pix_noise}.npz"
stored = None if force else load_arrays(cache)
feats = {} if stored is None else {tuple(json.loads(k)): v for k, v in stored.items()}
rows = []
for method in method_list:
    options = data_options(dataset, modalities, pix_noise=pix_noise, data_root=data_root)
    config = TrainConfig(dataset=dataset, modalities=modalities, method=method, epochs=epochs,
                         probe=False, dataset_options=options)
    data = load_config_dataset(config)
    for seed in range(seeds):
        for epoch in snapshots:
            if (method, seed, epoch, "labels") not in feats:
                cfg = dataclasses.replace(config, seed=seed)
                model = model_at_epoch(cfg, data, snap_dir, epoch)
                features, labels = encode_split(model, data, "test", cfg.eval_batch_size, "cpu")
                for m in views:
                    feats[(method, seed, epoch, m)] = features[m].numpy()
                fused = fused_features(model, features, cfg.eval_batch_size)
                feats[(method, seed, epoch, "fused")] = fused.numpy()
                feats[(method, seed, epoch, "labels")] = labels.numpy()
            y = feats[(method, seed, epoch, "labels")]
            for part in views + ["fused"]:
                rows.append({"method": method, "seed": seed, "epoch": epoch, "features": part,
                             "silhouette": class_silhouette(feats[(method, seed, epoch, part)], y)})
save_arrays(cache, {json.dumps(list(k)): v for k, v in feats.items()})
scores = pd.DataFrame(rows)
print(f"{len(method_list)} methods x {seeds} seeds x snapshots at epochs {snapshots}")

# %% [markdown]
# The features are stored under the results root (`results/snapshots`), so a rerun draws the same
# pictures without training.

# %% tags=["hide-input"]
first = method_list[0]
palette = modality_palette(views) | {"fused": "#222222"}
rows_of = (len(snapshots) + 1) // 2  # two panels per row: legible at page width
fig, axes = plt.subplots(rows_of, 2, figsize=(7, 3.4 * rows_of), squeeze=False,
                         constrained_layout=True)
for ax in axes.flat[len(snapshots):]:
    ax.set_visible(False)
for ax, epoch in zip(axes.flat, snapshots):
    parts = views + ["fused"]
    stacked = np.concatenate([feats[(first, 0, epoch, p)] for p in parts])
    xy = embed(stacked)
    n = len(feats[(first, 0, epoch, "labels")])
    for k, p in enumerate(parts):
        ax.scatter(*xy[k * n:(k + 1) * n].T, s=4, alpha=0.5, color=palette[p], label=p)
    ax.set_title(f"{display_name(first)}, epoch {epoch}")
    ax.set_xlabel(f"{embedding.upper()} 1 (a.u.)")
    ax.set_ylabel(f"{embedding.upper()} 2 (a.u.)")
axes.flat[0].legend(markerscale=3, loc="best")
glue_figure("feature_distributions_modalities_fig", fig,
            paths.figures / "feature_distributions_modalities.png")

# %% [markdown]
# ```{glue:figure} feature_distributions_modalities_fig
# :name: fig-feature-distributions-modalities
#
# One joint 2-D embedding per epoch of the three modality features and the fused (hybrid-order)
# features of the method, seed 0, coloured by modality: the picture the paper's Fig. 4 draws.
# ```

# %% tags=["hide-input"]
# one row per snapshot, one column per method: at most two panels across the page
fig, axes = plt.subplots(len(snapshots), len(method_list), squeeze=False, constrained_layout=True,
                         figsize=(3.5 * len(method_list), 3.2 * len(snapshots)))
for j, method in enumerate(method_list):
    for i, epoch in enumerate(snapshots):
        ax = axes[i, j]
        xy = embed(feats[(method, 0, epoch, "fused")])
        y = feats[(method, 0, epoch, "labels")]
        points = ax.scatter(*xy.T, c=y, cmap="tab10", vmin=-0.5, vmax=9.5, s=5, alpha=0.7)
        s = scores.query("method == @method and seed == 0 and epoch == @epoch "
                         "and features == 'fused'")["silhouette"].iloc[0]
        ax.set_title(f"{display_name(method)}, epoch {epoch}: silhouette {s:.2f}")
        ax.set_xlabel(f"{embedding.upper()} 1 (a.u.)")
        ax.set_ylabel(f"{embedding.upper()} 2 (a.u.)")
fig.colorbar(points, ax=axes, ticks=range(10), label="digit class", shrink=0.8)  # the ten colours
glue_figure("feature_distributions_fused_fig", fig,
            paths.figures / "feature_distributions_fused.png")

# %% [markdown]
# ```{glue:figure} feature_distributions_fused_fig
# :name: fig-feature-distributions-fused
#
# The fused features of each method, seed 0, coloured by digit class; each panel's title gives the
# class silhouette score of those features (full feature space).
# ```

# %%
fig, ax = plt.subplots(figsize=(7, 3.8))
sns.lineplot(data=scores, x="epoch", y="silhouette", hue="features", style="method",
             palette=palette, errorbar="sd", marker="o", ax=ax)
ax.set_xlabel("training epoch (0 = initial weights)")
ax.set_ylabel("class silhouette score (unitless, -1 to 1)")
ax.set_title(f"Class separation of each feature set ({seeds} seeds, bands: std over seeds)")
ax.legend(ncol=2)
glue_figure("feature_distributions_silhouette_fig", fig,
            paths.figures / "feature_distributions_silhouette.png")

# %% [markdown]
# ```{glue:figure} feature_distributions_silhouette_fig
# :name: fig-feature-distributions-silhouette
#
# Silhouette of the digit classes in each feature set over training, per method (mean and std
# over seeds).
# ```

# %%
last = scores[scores["epoch"] == epochs]
wide = last.pivot(index=["features", "seed"], columns="method", values="silhouette").reset_index()
table = mean_std_table(wide, "features", {m: m for m in method_list}, digits=2)
show(table, f"Class silhouette at the last epoch, mean ± std over {seeds} seeds")

# %% [markdown]
# Silhouette at the last epoch, mean ± std over seeds.

# %% tags=["hide-input"]
# The exercise at the end, run small: the first method with twice the noise on pix, last epoch
louder_config = TrainConfig(dataset=dataset, modalities=modalities, method=method_list[0],
                            epochs=epochs, probe=False, dataset_options=data_options(
                                dataset, modalities, pix_noise=2 * pix_noise, data_root=data_root))
louder_data = load_config_dataset(louder_config)
louder = []
for seed in range(seeds):
    cfg = dataclasses.replace(louder_config, seed=seed)
    model = model_at_epoch(cfg, louder_data, snap_dir, epochs)
    features, labels = encode_split(model, louder_data, "test", cfg.eval_batch_size, "cpu")
    parts = {m: features[m].numpy() for m in views}
    parts["fused"] = fused_features(model, features, cfg.eval_batch_size).numpy()
    louder += [{"features": k, "silhouette": class_silhouette(x, labels.numpy())}
               for k, x in parts.items()]
louder_mean = pd.DataFrame(louder).groupby("features")["silhouette"].mean()
default_mean = scores.query("method == @method_list[0] and epoch == @epochs").groupby(
    "features")["silhouette"].mean()
glue("features_ex_method", Markdown(display_name(method_list[0])), display=False)
glue("features_ex_noise", 2 * pix_noise, display=False)
for key, part in (("first", views[0]), ("fused", "fused")):
    glue(f"features_ex_{key}_louder", float(louder_mean[part]), display=False)
    glue(f"features_ex_{key}_default", float(default_mean[part]), display=False)
glue("features_ex_first", Markdown(f"`{views[0]}`"), display=False)

# %% tags=["hide-input"]
fused_last = last[last["features"] == "fused"]
test = paired_test(fused_last, "method", method_list[0], method_list[1], "silhouette") \
    if len(method_list) > 1 and seeds >= 2 else None


def mean_of(method: str, part: str, epoch: int = epochs) -> float:
    """Mean silhouette of ``part``'s features of ``method`` at ``epoch``, over seeds."""
    at = scores[(scores["method"] == method) & (scores["epoch"] == epoch)]
    return float(at[at["features"] == part]["silhouette"].mean())


mean_scores = scores.groupby(["method", "epoch", "features"])["silhouette"].mean().reset_index()
results = {"dataset": dataset, "seeds": seeds, "epochs": epochs, "snapshots": snapshots,
           "silhouette": mean_scores.to_dict(orient="records"), "paired_fused_last": test}
# the snapshots are runs stopped at chosen epochs (results/snapshots), which store no record in
# the results store: the chapter reads none, and says so (an empty ``run_ids``)
save_summary("feature_distributions", output_dir, results, records=[])
glue("feature_distributions_first_method", Markdown(display_name(method_list[0])), display=False)
glue("feature_distributions_second_method", Markdown(display_name(method_list[-1])), display=False)
glue("feature_distributions_first_fused", mean_of(method_list[0], "fused"), display=False)
glue("feature_distributions_second_fused", mean_of(method_list[-1], "fused"), display=False)
glue("feature_distributions_first_initial", mean_of(first, "fused", epoch=0), display=False)
glue_p("feature_distributions_p", float(test["p_wilcoxon"]) if test else float("nan"))
glue("feature_distributions_seeds", seeds, display=False)
if test:
    display(show(paired_table([test], "Δ silhouette"),
                 "Fused silhouette at the last epoch, paired by seed"))

# %% [markdown]
# The paired comparison (same seeds) of the fused features' silhouette at the last epoch.
#
# ## Conclusion
#
# The fused features of {glue:md}`feature_distributions_first_method` go from a class silhouette of
# {glue:text}`feature_distributions_first_initial:.3f` at initialisation to
# {glue:text}`feature_distributions_first_fused:.3f` after training, against
# {glue:text}`feature_distributions_second_fused:.3f` for
# {glue:md}`feature_distributions_second_method`'s concatenated features (paired Wilcoxon
# {glue:text}`feature_distributions_p` over {glue:text}`feature_distributions_seeds`
# seeds; same seeds and same snapshots for both methods).
# The paper's Fig. 4 makes the qualitative claim only (clusters tighten, fusion moves to the centre
# of the modality clouds); it gives no number to compare with.
#
# ## Summary and exercise
#
# Two-dimensional pictures of the features and the silhouette of the classes show how the
# representation of each view and of the fused chain separates the digits as training proceeds.
# {doc}`order_upper_bound` asks how much the fusion order matters.
#
# ```{exercise}
# :label: ex-features-noise
#
# Rerun with `-p pix_noise 4.0`. Predict first: does the silhouette of the `pix` features
# fall, and does the fused representation's silhouette fall as much?
# ```
#
# ```{solution} ex-features-noise
# :class: dropdown
#
# The book ran {glue:md}`features_ex_method` again with noise of std
# {glue:text}`features_ex_noise:.1f` on `pix`, same seeds and epochs. At the last epoch the
# silhouette of the {glue:md}`features_ex_first` features is
# {glue:text}`features_ex_first_louder:.3f`, against {glue:text}`features_ex_first_default:.3f`
# at the chapter's noise; that of the fused features {glue:text}`features_ex_fused_louder:.3f`,
# against {glue:text}`features_ex_fused_default:.3f`. The fused representation also draws on
# `fou` and `mor`: compare how far each of the two falls.
# ```
