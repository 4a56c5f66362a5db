"""Training cost of every method, as its epoch time divided by Concat's, measured in one run.

All methods train on the same data (default: mfeat ``pix,fou,mor`` with noise 2.0 on ``pix``),
same encoders, batch size and optimizer, through the shared loop's ``train_one_epoch``. Epochs are
interleaved (epoch e of every method, then epoch e + 1 of every method), so a change in machine
load hits every method alike; the first epoch is a warm-up and the median of the rest is used.

What to expect, with n modalities:
- sum, ogm, lfm, late_fusion, crmt (step 1): one joint step per batch (n encoder passes, one
  backward, one optimizer step): about 1x; OGM adds a softmax per modality, OGM-GE a Gaussian
  draw per encoder parameter, CRMT an eigendecomposition (C x C) per modality per step.
- mla: n unimodal steps per batch (the same n encoder passes, but n backward calls and n optimizer
  steps): up to n x when per-step overhead dominates (small MLP encoders), near 1x when the
  encoders dominate.
- ours (granularity "epoch"): n passes over the data; pass k runs the chain over a prefix of k
  modalities, encoders of the first k - 1 without gradient: 1 + 2 + ... + n encoder forwards
  and n backward calls per batch. Target: at most 1.2 x MLA.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from mmlib.methods import available_methods
from mmlib.train import (
    TrainConfig, build_model, build_optimizer, cpu_threads, load_config_dataset, resolve_device, seed_everything, train_one_epoch,
)

TARGET_OURS_OVER_MLA = 1.2


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m mmlib bench methods", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="mfeat")
    parser.add_argument("--modalities", default="pix,fou,mor")
    parser.add_argument("--noise", default="pix=2.0", help="mfeat noise option (empty for none)")
    parser.add_argument("--methods", default=",".join(available_methods()), help="comma-separated; concat is always added")
    parser.add_argument("--epochs", type=int, default=4, help="epochs per method; the first is a warm-up (default: 4)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--hidden-dim", type=int, default=64)
    parser.add_argument("--device", default="auto")

    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error("--epochs must be at least 2 (the first epoch is a warm-up)")
    return args


def epoch_times(methods: list[str], dataset: str = "mfeat", modalities: str = "pix,fou,mor", noise: str = "pix=2.0",
                epochs: int = 4, batch_size: int = 64, hidden_dim: int = 64, device: str = "auto") -> dict[str, float]:
    """Median epoch time (s, epochs 2..``epochs``) of each method, epochs interleaved across methods; Concat always included."""
    unknown = [m for m in methods if m not in available_methods()]
    if unknown:
        raise ValueError(f"bench methods: unknown method {unknown[0]!r}; choose from {available_methods()}")
    if epochs < 2:
        raise ValueError("epochs must be at least 2 (the first epoch is a warm-up)")
    methods = methods if "concat" in methods else ["concat", *methods]
    options = {"noise": noise} if dataset == "mfeat" and noise else {}
    torch_device = resolve_device(device)
    runs = {}
    for method in methods:
        config = TrainConfig(dataset=dataset, modalities=modalities, dataset_options=options, method=method,
                             epochs=epochs, batch_size=batch_size, hidden_dim=hidden_dim, device=str(torch_device), probe=False)
        seed_everything(config.seed)
        data = load_config_dataset(config)
        model = build_model(config, data).to(torch_device)
        runs[method] = {"config": config, "dataset": data, "model": model, "optimizer": build_optimizer(config, model),
                        "shuffle": torch.Generator().manual_seed(config.seed), "times": []}
    with cpu_threads(torch_device):
        _interleave_epochs(runs, epochs, torch_device)
    return {m: statistics.median(run["times"][1:]) for m, run in runs.items()}


def _interleave_epochs(runs: dict, epochs: int, torch_device: torch.device) -> None:
    for epoch in range(1, epochs + 1):
        for method, run in runs.items():
            if torch_device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            train_one_epoch(run["model"], run["dataset"], run["optimizer"], run["config"], epoch, run["shuffle"], torch_device, progress=False)
            if torch_device.type == "cuda":
                torch.cuda.synchronize()
            run["times"].append(time.perf_counter() - start)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    try:
        median = epoch_times(methods, args.dataset, args.modalities, args.noise, args.epochs, args.batch_size,
                             args.hidden_dim, args.device)
    except ValueError as error:
        print(error)
        return 2
    n = len([m for m in args.modalities.split(",") if m.strip()])
    print(f"epoch time / concat's, {args.dataset} [{args.modalities}] (n = {n}), batch {args.batch_size}, "
          f"{resolve_device(args.device)}, CPU threads MMLIB_CPU_THREADS (default 1), median of epochs 2..{args.epochs}")
    print(f"{'method':<12} {'epoch (s)':>10} {'/ concat':>9}")
    for method in median:
        print(f"{method:<12} {median[method]:>10.3f} {median[method] / median['concat']:>9.2f}")
    print(f"expected: joint methods ~1x; mla up to {n}x ({n} unimodal steps per batch); "
          f"ours ({n} passes, 1+..+{n} encoder forwards per batch) at most {TARGET_OURS_OVER_MLA}x mla")
    if "ours" in median and "mla" in median:
        ratio = median["ours"] / median["mla"]
        verdict = "meets" if ratio <= TARGET_OURS_OVER_MLA else "misses"
        print(f"ours / mla = {ratio:.2f} ({verdict} the target of {TARGET_OURS_OVER_MLA})")
    return 0
