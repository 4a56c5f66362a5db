"""``prefix_features="recorded"`` against the default ``"recompute"`` for ours: epoch time and accuracy, paired by seed.

Ours (granularity ``epoch``) trains its n modalities in n passes; before pass k the frozen prefix's
training features are recomputed by a forward pass of each earlier encoder (``recompute``), or
taken from what each encoder produced while it trained earlier in the epoch (``recorded``, up to one
pass stale; :mod:`mmlib.methods.ours`). Per seed, both variants train the same config (the book's
protocol on mfeat ``pix,fou,mor``, noise 2.0 on ``pix``, as the performance chapter times them)
through the real ``train``, the two runs of a seed back to back so that a change in machine load
hits them alike. Reported per run: test fused accuracy, best validation accuracy and wall seconds
per epoch (training, validation with every Shapley subset, everything the loop does); and, paired
over seeds, the difference recorded - recompute with its Wilcoxon and t-test p-values
(:func:`mmlib.experiments.paired_test`). Beside them, the training epoch alone of both variants,
epochs interleaved, the median after a warm-up (:func:`mmlib.benchmarks.methods.measure_methods`).

Whether ``recorded`` becomes the default of the GPU protocols is decided on a GPU, at CREMA-D's
scale, and only if it is as accurate there: on mfeat's small MLP encoders the recomputed forward
passes are a small part of an epoch, and the CPU figures say nothing about ResNets' BatchNorm in
training mode, which is where recorded and recomputed features differ most.

    python -m mmlib.benchmarks.prefix --seeds 5 --epochs 10 --out data/measurements/prefix-features-cpu.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import pandas as pd
import torch

from mmlib.benchmarks.methods import measure_methods
from mmlib.experiments import paired_test
from mmlib.config import TrainConfig
from mmlib.runtime import cpu_thread_count, cpu_threads
from mmlib.train import train

VARIANTS = ("recompute", "recorded")
MODALITIES, NOISE = "pix,fou,mor", "pix=2.0"
TIMED_EPOCHS = 6  # training epochs timed per variant, interleaved; the first is a warm-up


def measure(seeds: int, epochs: int, modalities: str = MODALITIES, noise: str = NOISE) -> dict:
    """Both variants for seeds ``0 .. seeds - 1``: one row per run and the paired comparisons."""
    rows = []
    for seed in range(seeds):
        for variant in VARIANTS:
            config = TrainConfig(dataset="mfeat", modalities=modalities,
                                 dataset_options={"noise": noise} if noise else {},
                                 method="ours", method_options={"prefix_features": variant}, epochs=epochs, seed=seed,
                                 probe=False, device="cpu")
            record = train(config, progress=False)
            rows.append({"variant": variant, "seed": seed, "test_fused_acc": record["test"]["fused_acc"],
                         "best_val_fused_acc": max(h["fused_acc"] for h in record["history"]),
                         "epoch_s": record["wall_time_s"] / epochs, "run_id": config.run_id})
    frame = pd.DataFrame(rows)
    paired = {metric: paired_test(frame, "variant", "recorded", "recompute", metric)
              for metric in ("test_fused_acc", "epoch_s")}
    means = frame.groupby("variant")[["test_fused_acc", "epoch_s"]].mean()
    timed = measure_methods(["ours", "ours_recorded"], "mfeat", modalities, noise, epochs=TIMED_EPOCHS, device="cpu")
    training = {"recompute": timed["ours"]["epoch_s"], "recorded": timed["ours_recorded"]["epoch_s"]}
    return {"dataset": "mfeat", "modalities": modalities, "noise": noise, "method": "ours", "protocol": "book",
            "seeds": list(range(seeds)), "epochs": epochs, "device": "cpu", "cpu_threads": cpu_thread_count(),
            "training_epoch_s": training, "training_epochs_timed": TIMED_EPOCHS - 1,
            "recorded_over_recompute_training_epoch_s": training["recorded"] / training["recompute"],
            "torch": torch.__version__, "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "runs": rows, "paired": paired,
            "recorded_over_recompute_epoch_s": float(means.loc["recorded", "epoch_s"]
                                                     / means.loc["recompute", "epoch_s"])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mmlib.benchmarks.prefix", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0 .. N-1, each run with both variants (default: 5)")
    parser.add_argument("--epochs", type=int, default=10, help="epochs per run (default: 10)")
    parser.add_argument("--modalities", default=MODALITIES, help=f"mfeat views (default: {MODALITIES})")
    parser.add_argument("--out", default=None, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    if args.seeds < 2 or args.epochs < 1:
        parser.error("--seeds must be at least 2 (a paired comparison) and --epochs at least 1")
    with cpu_threads(torch.device("cpu")):
        figures = measure(args.seeds, args.epochs, args.modalities)
    for metric, test in figures["paired"].items():
        print(f"{metric}: recorded - recompute = {test['mean_diff']:+.4f} +- {test['se_diff']:.4f} (se), "
              f"Wilcoxon p = {test['p_wilcoxon']:.3g}, t-test p = {test['p_ttest']:.3g}, {test['seeds']} seeds")
    print("epoch time (everything the loop does) recorded / recompute = "
          f"{figures['recorded_over_recompute_epoch_s']:.3f}; training epoch alone "
          f"{figures['recorded_over_recompute_training_epoch_s']:.3f}")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(figures, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
