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
# # Performance: what each method costs, and how Shapley and hybrid order scale
#
# Alternating training steps through the modalities one at a time, and the paper's method adds
# two evaluations on top: the Shapley values after every epoch (every subset of modalities) and
# hybrid-order inference (every order of the present modalities). This chapter measures what
# that costs on this machine, against plain joint training (Concat) measured in the same run,
# and how the two evaluations grow with the number of modalities n. Beside each time stands the
# method's arithmetic (floating-point operations of its matrix products and convolutions, forward
# and backward, counted by `torch.utils.flop_counter`): the part of the cost that no machine
# changes, and the ratio that times approach when the arithmetic dominates. All timings are CPU
# timings on one thread (`MMLIB_CPU_THREADS`, see the training loop's docstring).
# {glue:md}`perf_gpu_status`
#
# ````{admonition} The answer, measured
# :class: tip
# On mfeat the paper's method costs {glue:text}`perf_ours_over_concat:.1f` Concat epochs per epoch
# and {glue:text}`perf_ours_over_mla:.2f` MLA epochs on this CPU; at CREMA-D's scale its
# arithmetic is {glue:text}`perf_paper_recorded_over_mla_flop:.2f` times MLA's with recorded
# prefix features. {glue:md}`perf_paper_verdict`
# ````

# %% tags=["parameters"]
methods: str = "sum,concat,ogm,ogm_ge,lfm,crmt,late_fusion,mla,ours,ours_recorded"  # to time
modalities: str = "pix,fou,mor"  # mfeat views the methods train on
pix_noise: float = 2.0  # mfeat: std of the Gaussian noise on pix (0 for none)
epochs: int = 4  # epochs timed per method; the first is a warm-up, the rest's median is shown
repeats: int = 5  # repetitions of each Shapley / inference timing (median)
max_modalities: int = 5  # the scaling study uses n from 2 up to this many synthetic modalities
samples: int = 256  # samples in the scaling study's evaluation split
paper_samples: int = 8  # random clips of CREMA-D's shapes for the paper-scale count (0: skip)
paper_hidden_dim: int = 512  # feature width d at the paper's scale (OGM-GE's CREMA-D setting)
scale_samples: int = 64  # toy clips of CREMA-D's layout for the data-path measurement (0: skip)
output_dir: str = "results/performance"  # where performance.json (every timing) is written
figures_dir: str = "book/figures"  # where figures are saved as PNG (150 dpi)
gpu_check: str = "data/measurements/gpu-check*.json"  # figures of `make gpu-check`, if stored
prefix_measurement: str = "data/measurements/prefix-features-cpu.json"  # recorded vs recomputed
drift_seeds: int = 10  # seeds of main_comparison's fou,mor grid, run pinned and native (0: skip)
drift_methods: str = "sum,concat,ogm,ogm_ge,lfm,crmt,late_fusion,mla,ours,ours_rownorm"  # methods
drift_epochs: int = 15  # epochs per run (main_comparison's, so its stored pinned runs are reused)
drift_workers: int = 2  # processes that train the native grid (and any pinned run not stored)
results_dir: str = "results/runs"  # pinned runs, shared with main_comparison (native: ../native)

# %% tags=["hide-input"]
import mmlib  # first: pins the CPU numerics before numpy loads (mmlib.numerics)
import math

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from IPython.display import Markdown
from myst_nb import glue

from mmlib.benchmarks.methods import TARGET_OURS_OVER_MLA, VARIANTS, measure_methods, relative_cost
from mmlib.benchmarks.shapley import measure
from mmlib.book import format_p, glue_figure, pix_noise_spec, repo_path, save_summary, setup, show
from mmlib.methods import available_methods
from mmlib.plots import METHOD_ORDER, ticks_by_name

paths = setup(figures_dir=figures_dir)  # figure style, MMLIB_CPU_THREADS threads, quiet bars
chosen = [m.strip() for m in methods.split(",") if m.strip()]
gpu_files = sorted(repo_path(gpu_check).parent.glob(repo_path(gpu_check).name))
glue("perf_gpu_status", Markdown(
    f"GPU figures come only from `make gpu-check` files stored with the book "
    f"({len(gpu_files)} here); "
    "they are summarised at the end of the chapter." if gpu_files else
    "No GPU was available when this book was built: every GPU figure is unmeasured, and no GPU "
    "figure is shown."), display=False)

# %% [markdown]
# ## Training cost per epoch, relative to Concat
#
# Every method trains the same encoders on the same batches; epochs of all methods are
# interleaved so that a change in machine load hits them alike.

# %%
measured = measure_methods(chosen, "mfeat", modalities, pix_noise_spec(pix_noise), epochs=epochs)
times = {m: row["epoch_s"] for m, row in measured.items()}
cost = relative_cost(measured)
cost = cost.loc[[m for m in (*METHOD_ORDER, *VARIANTS) if m in cost.index]]
COST = ["epoch time (s)", "GFLOP per epoch", "time × Concat", "arithmetic × Concat"]
show(cost.reset_index()[["method", *COST]],
     f"Training cost per epoch on mfeat [{modalities}], CPU, one thread")

# %% [markdown]
# Joint methods cost about one Concat epoch; MLA takes one unimodal step per modality and batch;
# the paper's method makes n passes over the data, the k-th training one encoder through the
# memory chain over the first k modalities of the order. The encoders before it are frozen, so
# their features are computed once at the start of the pass (in inference mode) and looked up per
# batch: on top of MLA's n unimodal trainings, an epoch adds n - 1 forward passes and the chain.
# `ours_recorded` is the same method with `prefix_features="recorded"`: it reuses the features each
# encoder produced while it trained earlier in the epoch and skips those forward passes.
#
# The arithmetic column separates the two kinds of cost. MLA does Concat's arithmetic, in more,
# smaller steps: its extra time is per-step overhead (one backward call and one optimizer step per
# modality and batch). The paper's method does more arithmetic: with mfeat's MLP encoders the
# memory unit's gate layer (from 2d to 3d features) is larger than most encoder layers, and
# pass k runs k - 1 of them.

# %%
fig, ax = plt.subplots(figsize=(6.5, 3.2))
cost_long = cost[["time × Concat", "arithmetic × Concat"]].reset_index().melt(
    id_vars="method", var_name="measure", value_name="ratio")
sns.barplot(data=cost_long, x="method", y="ratio", hue="measure", palette=["#4c72b0", "#c44e52"],
            ax=ax)
ax.axhline(1.0, color="grey", lw=1, ls="--")
ax.set_xlabel("method")
ax.set_ylabel("epoch cost / Concat's (ratio)")
ticks_by_name(ax, "x")
plt.setp(ax.get_xticklabels(), rotation=30, ha="right", rotation_mode="anchor")
ax.legend(title=None)
ax.set_title(f"Training cost on mfeat [{modalities}], CPU, one thread")
glue_figure("performance_methods_fig", fig, paths.figures / "performance_methods.png")

# %% [markdown]
# ```{glue:figure} performance_methods_fig
# :name: fig-performance-methods
#
# Each method's epoch on mfeat as a multiple of Concat's: measured time (blue) and counted
# arithmetic (red). The dashed line is Concat.
# ```

# %% [markdown]
# ## At the paper's scale: CREMA-D's shapes, ResNet-18 encoders
#
# mfeat's encoders are tiny, so the chain weighs as much as they do. On CREMA-D the encoders are
# two ResNet-18s, one on a 257 x 188 spectrogram and one on three 224 x 224 frames per clip, with
# d = 512. The dataset is not needed to count the cost, only its shapes: the cells below train
# one epoch on random clips of exactly the shapes `python -m mmlib prepare cremad` writes. With
# two modalities the paper's method recomputes one frozen encoder per epoch, the first of the
# order, so the order matters: the visual encoder (three frames) costs about three times the
# audio one. Shapley's weakest-first order trains visual first while visual is the weaker
# modality, and audio first once it overtakes audio (in the paper's Table 1 the final visual
# accuracy of the alternating methods is above the audio one). Both orders are measured.
# The times come from a single short epoch (noisy); the arithmetic is exact.

# %%
paper_tables = {}
if paper_samples:
    for order, names in (("visual,audio", ["mla", "ours", "ours_recorded"]),
                         ("audio,visual", ["ours", "ours_recorded"])):
        paper = measure_methods(names, "cremad", order, epochs=2, hidden_dim=paper_hidden_dim,
                                fabricate=paper_samples)
        paper_tables[order] = relative_cost(paper).loc[names]
if paper_tables:
    paper_cost = pd.concat(paper_tables, names=["order", "method"]).swaplevel()
else:  # paper_samples = 0: the same table, empty
    paper_cost = pd.DataFrame(columns=cost.columns,
                              index=pd.MultiIndex.from_arrays([[], []], names=["method", "order"]))
show(paper_cost.reset_index()[["method", "order", *COST]],
     f"One epoch of {paper_samples} random clips of CREMA-D's prepared shapes, "
     f"ResNet-18 encoders, d = {paper_hidden_dim}")

# %% [markdown]
# MLA does Concat's arithmetic here too, and with ResNets its per-step overhead, which made its
# mfeat epochs much longer than Concat's, is small beside the convolutions. The chain is
# negligible at this scale (the paper's method with recorded prefix features does MLA's
# arithmetic), and what is left is the one frozen forward pass per epoch over the training split.
# A forward pass in inference mode also runs faster per operation than a training step (no
# autograd records, one large batch), so the time ratio of the exact variant can lie below
# its arithmetic ratio.

# %% [markdown]
# ## Exact Shapley and hybrid order as n grows
#
# Exact Shapley needs the accuracy of every one of the 2^n subsets, and hybrid-order fusion of a
# subset of size k averages k! chains. The encoders run once per evaluation and every subset and
# order reuses their features, so what grows is only the light chain. The table times one
# exact Shapley evaluation, one hybrid-order pass and one single-order pass on random 32-wide
# inputs with MLP encoders.

# %%
scaling = pd.DataFrame([measure("vector", num_modalities=n, samples=samples, repeats=repeats)
                        for n in range(2, max_modalities + 1)])
scaling["chains per Shapley evaluation"] = [
    sum(math.comb(n, k) * math.factorial(k) for k in range(1, n + 1)) for n in scaling["n"]]
TIMED = {"shapley_ms": "exact Shapley (ms)", "hybrid_ms": "hybrid order (ms)",
         "single_ms": "single order (ms)"}
show(scaling[["n", *TIMED, "chains per Shapley evaluation"]].rename(columns=TIMED),
     f"One evaluation of {samples} samples with n modalities", digits=1)

# %%
fig, ax = plt.subplots(figsize=(6.5, 3.2))
for column, label in (("shapley_ms", "exact Shapley (all subsets)"),
                      ("hybrid_ms", "hybrid order (n! orders)"), ("single_ms", "single order")):
    ax.plot(scaling["n"], scaling[column], marker="o", label=label)
ax.set_yscale("log")
ax.set_xlabel("number of modalities n")
ax.set_ylabel(f"time per evaluation of {samples} samples (ms, log)")
ax.set_xticks(scaling["n"])
ax.legend()
glue_figure("performance_scaling_fig", fig, paths.figures / "performance_scaling.png")

# %% [markdown]
# ```{glue:figure} performance_scaling_fig
# :name: fig-performance-scaling
#
# Time of one evaluation against the number of modalities n (log scale): every subset for the
# exact Shapley values, all n! chains for the hybrid order, and one chain.
# ```

# %% [markdown]
# The chain count grows factorially, so beyond about six modalities exact evaluation stops being
# cheap; `mmlib.shapley.sampled_shapley` estimates the values from random orders with a stated
# error bound instead.
#
# ## Does caching the encoders pay off?
#
# The ratios below compare one exact Shapley evaluation with one validation pass, and hybrid
# order with a single order, for mfeat's small MLP encoders and for ResNet-18 encoders on
# spectrogram-sized inputs, where the encoders dominate the cost.

# %%
ratios = pd.DataFrame([measure("mfeat", modalities, repeats=repeats),
                       measure("spectrogram", num_modalities=3, samples=64, repeats=repeats)])
ratios["Shapley / validation pass"] = ratios["shapley_ms"] / ratios["hybrid_ms"]
ratios["hybrid / single order"] = ratios["hybrid_ms"] / ratios["single_ms"]
show(ratios[["kind", *TIMED, "Shapley / validation pass", "hybrid / single order"]]
     .rename(columns={"kind": "inputs", **TIMED}), "Cost ratios with cached encoder features")

# %% [markdown]
# ## The data path: from stored arrays to a training batch
#
# A prepared CREMA-D clip is stored as it came out of the preparer: three uint8 frames and a
# float16 spectrogram. Every training batch is gathered from those arrays, converted to float32,
# its frames standardised with ImageNet's statistics and randomly cropped and flipped (OGM-GE's
# protocol, `ogm_ge`). On a GPU the arrays move to the device once when they fit, and otherwise
# batches are copied one step ahead on a second stream; on this CPU they are gathered in place.
# `python -m mmlib bench scale` times training epochs through this path against the same epochs
# on batches prepared once beforehand, its ceiling, in one run, at CREMA-D's layout (here at toy
# size: {glue:text}`perf_scale_clips` clips of 32 x 32 frames, d = 16).

# %% tags=["hide-input"]
from mmlib.benchmarks import scale

if scale_samples:
    bench = scale.run(["--device", "cpu", "--samples", str(scale_samples),
                       "--batch-size", str(min(64, scale_samples)), "--epochs", "3",
                       "--checkpoint-dir", str(repo_path(output_dir))])
    data_path = pd.DataFrame(bench["rows"])
    ratio = data_path["data_path_over_ceiling"]
    share = data_path["shapley_share_cremad_split"]
    show(pd.DataFrame({
        "method": data_path["method"],
        "data path (clips/s)": data_path["data_path_samples_per_s"].round(1),
        "ceiling (clips/s)": data_path["ceiling_samples_per_s"].round(1),
        "data path / ceiling": ratio.round(2),
        "evaluation / epoch at CREMA-D": share.map("{:.1%}".format),
    }), f"The data path against its ceiling, CPU, {scale_samples} toy clips of CREMA-D's layout")
    reading = ("on this CPU, gathering, converting and augmenting a batch costs little next to "
               "the model's arithmetic" if ratio.min() >= scale.TARGETS["data_path_over_ceiling"]
               else "on this CPU the data path itself takes a visible share of the epoch")
    data_path_text = (
        f"Through the data path an epoch reaches {ratio.min():.2f} to {ratio.max():.2f} of the "
        f"ceiling's speed: {reading}. Evaluating the validation split with every Shapley subset, "
        f"scaled per clip to CREMA-D's 744 validation and 6,698 training clips, costs at most "
        f"{share.max():.1%} of an epoch. Whether a GPU, which runs the model far faster, still "
        f"keeps 0.9 of its ceiling is what `make gpu-check` measures (below); until its figures "
        f"are stored, that ratio on a GPU is unmeasured.")
else:
    bench = {"rows": []}
    data_path_text = "(The data-path measurement was skipped: `scale_samples = 0`.)"
glue("perf_scale_clips", scale_samples, display=False)
glue("perf_data_path", Markdown(data_path_text), display=False)

# %% [markdown]
# {glue:md}`perf_data_path`

# %% tags=["hide-input"]
def over_mla(rows, name: str, column: str) -> float:
    """``name``'s cost / MLA's in ``column`` (NaN when either was not measured)."""
    if not {name, "mla"} <= set(rows):
        return float("nan")
    return float(rows[name][column] / rows["mla"][column])


resnet = ratios.set_index("kind").loc["spectrogram"]
mlp = ratios.set_index("kind").loc["mfeat"]
glue("perf_ours_over_concat", float(times.get("ours", float("nan")) / times["concat"]),
     display=False)
glue("perf_ours_over_mla", over_mla(measured, "ours", "epoch_s"), display=False)
glue("perf_ours_recorded_over_mla", over_mla(measured, "ours_recorded", "epoch_s"), display=False)
glue("perf_ours_over_mla_flop", over_mla(measured, "ours", "epoch_gflop"), display=False)
glue("perf_target", TARGET_OURS_OVER_MLA, display=False)
last_two = scaling.iloc[-2:]  # the two largest n measured, for the exercise's solution
glue("perf_growth_n", int(last_two["n"].iloc[1]), display=False)
glue("perf_growth_time", float(last_two["shapley_ms"].iloc[1] / last_two["shapley_ms"].iloc[0]),
     display=False)
glue("perf_growth_chains", float(last_two["chains per Shapley evaluation"].iloc[1]
                                 / last_two["chains per Shapley evaluation"].iloc[0]),
     display=False)
paper_flop = paper_cost["GFLOP per epoch"].to_dict()
paper_mla = paper_flop.get(("mla", "visual,audio"), float("nan"))
paper_runs = {"visual": ("ours", "visual,audio"), "audio": ("ours", "audio,visual"),
              "recorded": ("ours_recorded", "visual,audio")}
paper_over_mla = {key: float(paper_flop.get(run, float("nan")) / paper_mla)
                  for key, run in paper_runs.items()}
for key, ratio in paper_over_mla.items():
    glue(f"perf_paper_{key}_over_mla_flop", ratio, display=False)
labels = {"visual": "exact features with visual first", "audio": "exact features with audio first",
          "recorded": "recorded features"}
within = [label for key, label in labels.items() if paper_over_mla[key] <= TARGET_OURS_OVER_MLA]
if not paper_samples:
    verdict = "(The paper-scale count was skipped: `paper_samples = 0`.)"
elif within:
    verb = "stays" if len(within) == 1 else "stay"
    verdict = (f"In arithmetic, {' and '.join(within)} {verb} within "
               f"{TARGET_OURS_OVER_MLA} MLA epochs.")
else:
    verdict = f"In arithmetic, no variant stays within {TARGET_OURS_OVER_MLA} MLA epochs."
glue("perf_paper_verdict", Markdown(verdict), display=False)
glue("perf_resnet_shapley_ratio", float(resnet["Shapley / validation pass"]), display=False)
glue("perf_resnet_hybrid_ratio", float(resnet["hybrid / single order"]), display=False)
glue("perf_mlp_shapley_ratio", float(mlp["Shapley / validation pass"]), display=False)
glue("perf_mlp_hybrid_ratio", float(mlp["hybrid / single order"]), display=False)
save_summary("performance", output_dir, {
    "epoch_times_s": times, "epoch_gflop": {m: row["epoch_gflop"] for m, row in measured.items()},
    "paper_scale": paper_cost.reset_index().to_dict(orient="records"),
    "scaling": scaling.to_dict(orient="records"), "ratios": ratios.to_dict(orient="records"),
    "data_path": bench["rows"],
    "available_methods": available_methods()})

# %% [markdown]
# ## Recorded prefix features: cheaper, and as accurate?
#
# Ours recomputes the frozen prefix's training features once per pass
# (`prefix_features="recompute"`, the default). With `"recorded"` it reuses the features each
# encoder produced while it trained earlier in the epoch, up to one pass stale, and skips those
# forward passes. The measurement below, stored with the book, trained both variants on mfeat
# [pix,fou,mor] with noise 2.0 on pix, the book's protocol, one CPU thread, the two runs of a seed
# back to back, and compared them paired by seed
# (`python -m mmlib.benchmarks.prefix --seeds 10 --epochs 15 --out
# data/measurements/prefix-features-cpu.json`).

# %% tags=["hide-input"]
import json

from mmlib.experiments import mean_std

prefix_path = repo_path(prefix_measurement)
if prefix_path.exists():
    prefix = json.loads(prefix_path.read_text())
    paired = prefix["paired"]
    by_variant = pd.DataFrame(prefix["runs"]).groupby("variant", sort=False)
    accuracies = [mean_std(g["test_fused_acc"].mean(), g["test_fused_acc"].std())
                  for _, g in by_variant]
    epochs_s = [mean_std(g["epoch_s"].mean(), g["epoch_s"].std(), digits=2) for _, g in by_variant]
    display(show(pd.DataFrame({
        "prefix features": list(by_variant.groups),
        "test fused accuracy (%, mean ± std)": accuracies,
        "epoch with validation (s, mean ± std)": epochs_s,
        "training epoch (s, median)": [prefix["training_epoch_s"][v] for v in by_variant.groups],
    }), f"Ours with recomputed and recorded prefix features, {len(prefix['seeds'])} seeds, "
        f"{prefix['epochs']} epochs, CPU ({prefix['date']})"))
    accuracy, seconds = paired["test_fused_acc"], paired["epoch_s"]
    prefix_text = (
        f"Recorded minus recomputed, paired over {accuracy['seeds']} seeds: test fused accuracy "
        f"{accuracy['mean_diff']:+.2f} ± {accuracy['se_diff']:.2f} points "
        f"(standard error; Wilcoxon {format_p(accuracy['p_wilcoxon'])}), and a whole epoch "
        f"with its validation {prefix['recorded_over_recompute_epoch_s']:.2f} times as long "
        f"({format_p(seconds['p_wilcoxon'])}); "
        f"the training epoch alone, timed interleaved, "
        f"{prefix['recorded_over_recompute_training_epoch_s']:.2f} times. ")
    saves = seconds["p_wilcoxon"] < 0.05 and seconds["mean_diff"] < 0
    prefix_text += ("Recording the prefix saves measurable time on mfeat. " if saves else
                    "On mfeat's small MLP encoders the recomputed forward passes are a small "
                    "share of an epoch, and recording them saves no measurable time on this CPU. ")
    at_scale = (f", where recomputing the visual encoder's forward pass adds "
                f"{paper_over_mla['visual'] - 1:.0%} to MLA's arithmetic (above)"
                if paper_samples else "")
    prefix_text += (
        "Whether `recorded` becomes the default of the GPU protocols is decided on a GPU at "
        f"CREMA-D's scale{at_scale}, and only if it is as accurate there: on a GPU both its time "
        "and its accuracy are unmeasured, and the default stays `recompute`.")
else:
    prefix_text = (f"(No measurement of recorded prefix features is stored: {prefix_path} "
                   "is absent.)")
glue("perf_prefix", Markdown(prefix_text), display=False)

# %% [markdown]
# {glue:md}`perf_prefix`

# %% [markdown]
# ## The same numbers on every CPU
#
# A CPU's math libraries choose their code path for the CPU they find: an AVX-512 Xeon and an
# AMD EPYC without AVX-512 add in different orders, and a three-epoch run turns a difference in
# the last bit into another best epoch. Every run of this book is therefore *pinned*
# (`mmlib.numerics`): MKL, ATen, oneDNN and OpenBLAS take their AVX2 path on every CPU that has
# one, so a rerun on any such CPU gives the book's records bit for bit. A reader who sets
# `MMLIB_NUMERICS=native` trades that for speed, and a GPU runs cuBLAS and cuDNN, other paths
# again. How far does a result move then? Here the main comparison's {glue:text}`drift_runs`
# runs on `fou,mor` are trained a second time on this CPU's native path
# ({glue:text}`drift_native_path`) and compared with the pinned ones.

# %% tags=["hide-input"]
from mmlib.book import data_options
from mmlib.drift import (compare_records, compare_verdicts, describe_drift, drift_by_method,
                         train_with_numerics)
from mmlib.experiments import comparison_configs
from mmlib.methods import parse_methods
from mmlib.numerics import numerics_info, pin_status

glue("perf_numerics_status", pin_status(numerics_info()), display=False)
if drift_seeds:
    drift_chosen = [m for m in METHOD_ORDER if m in parse_methods(drift_methods, "drift_methods")]
    drift_configs = comparison_configs(drift_chosen, "mfeat", "fou,mor",
                                       data_options("mfeat", "fou,mor"), drift_seeds, drift_epochs)
    pinned_runs = train_with_numerics(drift_configs, repo_path(results_dir), "pinned",
                                      drift_workers)
    native_store = repo_path(results_dir).parent / "native" / "runs"  # same run ids: apart
    native_runs = train_with_numerics(drift_configs, native_store, "native", drift_workers)
    drift = compare_records(pinned_runs, native_runs)
    # the report's claims on this data: fused accuracy, EDM and the weak modality's head accuracy
    weakest = min(pinned_runs[0]["modalities"],
                  key=lambda m: sum(r["test"]["unimodal_acc"][m] for r in pinned_runs))
    drift_verdicts = compare_verdicts(
        pinned_runs, native_runs, [m for m in ("ours", "ours_rownorm") if m in drift_chosen],
        [("fused_acc", True), ("edm", False), (f"head_acc_{weakest}", True)])
    native = native_runs[0]["environment"]["numerics"]
    display(show(drift_by_method(drift).rename(columns=lambda c: c.replace("_", " ")),
                 "Pinned against native numerics, per method: runs whose stored numbers differ, "
                 "how many numbers, best epochs that moved, and the largest change of test fused "
                 "accuracy (points)"))
    moved = drift_verdicts[drift_verdicts["verdict moved"]]
    if len(moved):
        display(show(moved.drop(columns="verdict moved"),
                     "Paired verdicts that differ between the two paths"))
    drift_text = describe_drift(drift, drift_verdicts)
    glue("drift_runs", len(drift), display=False)
    glue("drift_native_path", f"MKL {native['mkl_branch']}, ATen {native['cpu_capability']}, "
                              f"OpenBLAS {'/'.join(native['openblas']) or 'not loaded'}",
         display=False)
    save_summary("numerics_drift", output_dir, {
        "pinned": pinned_runs[0]["environment"]["numerics"], "native": native,
        "runs": drift.to_dict(orient="records"),
        "verdicts": drift_verdicts.to_dict(orient="records")}, records=pinned_runs)
else:
    drift_text = "(The comparison was skipped: `drift_seeds = 0`.)"
    glue("drift_runs", 0, display=False)
    glue("drift_native_path", "not measured", display=False)
glue("perf_drift", Markdown(drift_text), display=False)

# %% [markdown]
# {glue:md}`perf_drift` This chapter ran {glue:text}`perf_numerics_status`.
#
# Records agree bit for bit only under the pin. A rerun on another code path, a GPU's included,
# is compared with the book through its verdicts, seed by seed, not through its last digits.

# %% [markdown]
# ## Conclusion
#
# On mfeat the paper's method costs {glue:text}`perf_ours_over_concat:.1f` Concat epochs per epoch
# on this CPU and {glue:text}`perf_ours_over_mla:.2f` MLA epochs
# ({glue:text}`perf_ours_recorded_over_mla:.2f` with recorded prefix features). In arithmetic it
# does {glue:text}`perf_ours_over_mla_flop:.2f` times MLA's work: mfeat's MLP encoders are so small
# that the memory chain outweighs them, so no implementation of the method comes near
# {glue:text}`perf_target:.1f` MLA epochs on this data. At CREMA-D's scale the chain is negligible
# and the arithmetic over MLA's is {glue:text}`perf_paper_visual_over_mla_flop:.2f` in an epoch
# that trains visual first and recomputes its frozen features,
# {glue:text}`perf_paper_audio_over_mla_flop:.2f` in one that trains audio first, and
# {glue:text}`perf_paper_recorded_over_mla_flop:.2f` with recorded prefix features.
# {glue:md}`perf_paper_verdict`
# The command
# `python -m mmlib bench methods --dataset cremad --fabricate 128 --modalities visual,audio
# --hidden-dim 512` times every method at that scale, over more clips and more epochs.
#
# With ResNet-18 encoders one exact Shapley
# evaluation costs {glue:text}`perf_resnet_shapley_ratio:.2f` validation passes and hybrid order
# {glue:text}`perf_resnet_hybrid_ratio:.2f` single-order passes, because the encoders run once; with
# mfeat's tiny MLPs the chain is as heavy as the encoders and the same ratios are
# {glue:text}`perf_mlp_shapley_ratio:.2f` and {glue:text}`perf_mlp_hybrid_ratio:.2f`.

# %% [markdown]
# ## On a GPU
#
# {glue:md}`perf_gpu_summary`

# %% tags=["hide-input"]
from mmlib.benchmarks.gpu_check import summary as gpu_summary

gpu_text, gpu_table = gpu_summary(repo_path(gpu_check), shown_as=gpu_check)
glue("perf_gpu_summary", Markdown(gpu_text), display=False)
if gpu_table is not None:
    display(show(gpu_table, "Figures of `make gpu-check`"))

# %% [markdown]
# ## Summary and exercise
#
# Timing every method on the same batches, and counting the Shapley and hybrid-order work as
# the number of modalities grows, shows where the method's extra cost comes from. The
# {doc}`report` collects the verdicts of every chapter.
#
# ```{exercise}
# :label: ex-performance-n
#
# Rerun with `-p max_modalities 6`. Predict first: by what factor does the Shapley
# evaluation time grow from five to six modalities?
# ```
#
# ```{solution} ex-performance-n
# :class: dropdown
#
# Much more than twice. There are $2^n$ subsets, but each subset of size $k$ is evaluated in
# hybrid order, over $k!$ chains, so one exact evaluation runs
# $\sum_k \binom{n}{k} k!$ chains: 325 for five modalities, 1956 for six, six times as many. In
# the table above the time follows the chains: from {glue:text}`perf_growth_n`−1 to
# {glue:text}`perf_growth_n` modalities it grew {glue:text}`perf_growth_time:.1f` times while the
# chains grew {glue:text}`perf_growth_chains:.1f` times, so expect a factor near six.
# ```
