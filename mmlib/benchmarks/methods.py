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
from mmlib.train import TrainConfig, build_model, build_optimizer, load_config_dataset, resolve_device, seed_everything, train_one_epoch

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
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: leave torch's default)")
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error("--epochs must be at least 2 (the first epoch is a warm-up)")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in available_methods()]
    if unknown:
        print(f"bench methods: unknown method {unknown[0]!r}; choose from {available_methods()}")
        return 2
    if "concat" not in methods:
        methods.insert(0, "concat")
    options = {"noise": args.noise} if args.dataset == "mfeat" and args.noise else {}
    device = resolve_device(args.device)
    runs = {}
    for method in methods:
        config = TrainConfig(dataset=args.dataset, modalities=args.modalities, dataset_options=options, method=method,
                             epochs=args.epochs, batch_size=args.batch_size, hidden_dim=args.hidden_dim, device=str(device), probe=False)
        seed_everything(config.seed)
        dataset = load_config_dataset(config)
        model = build_model(config, dataset).to(device)
        runs[method] = {"config": config, "dataset": dataset, "model": model, "optimizer": build_optimizer(config, model),
                        "shuffle": torch.Generator().manual_seed(config.seed), "times": []}
    for epoch in range(1, args.epochs + 1):
        for method, run in runs.items():
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            train_one_epoch(run["model"], run["dataset"], run["optimizer"], run["config"], epoch, run["shuffle"], device, progress=False)
            if device.type == "cuda":
                torch.cuda.synchronize()
            run["times"].append(time.perf_counter() - start)
    median = {m: statistics.median(run["times"][1:]) for m, run in runs.items()}
    dataset = runs["concat"]["dataset"]
    print(f"epoch time / concat's, {args.dataset} [{','.join(dataset.modalities)}] (n = {len(dataset.modalities)}), "
          f"batch {args.batch_size}, {device}, torch threads {torch.get_num_threads()}, median of epochs 2..{args.epochs}")
    print(f"{'method':<12} {'epoch (s)':>10} {'/ concat':>9}")
    for method in methods:
        print(f"{method:<12} {median[method]:>10.3f} {median[method] / median['concat']:>9.2f}")
    n = len(dataset.modalities)
    print(f"expected: joint methods ~1x; mla up to {n}x ({n} unimodal steps per batch); "
          f"ours ({n} passes, 1+..+{n} encoder forwards per batch) at most {TARGET_OURS_OVER_MLA}x mla")
    if "ours" in median and "mla" in median:
        ratio = median["ours"] / median["mla"]
        verdict = "meets" if ratio <= TARGET_OURS_OVER_MLA else "misses"
        print(f"ours / mla = {ratio:.2f} ({verdict} the target of {TARGET_OURS_OVER_MLA})")
    return 0
