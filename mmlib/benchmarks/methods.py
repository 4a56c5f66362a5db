"""Training cost of every method, as its epoch time divided by Concat's, measured in one run.

All methods train on the same data (default: mfeat ``pix,fou,mor`` with noise 2.0 on ``pix``),
same encoders, batch size and optimizer, through the shared loop's ``train_one_epoch``. Epochs are
interleaved (epoch e of every method, then epoch e + 1 of every method), so a change in machine
load hits every method alike; the first epoch is a warm-up and the median of the rest is used.
The warm-up epoch also counts each method's arithmetic (floating-point operations of its matrix
products and convolutions, forward and backward, ``torch.utils.flop_counter``): the part of the
cost that does not depend on the machine, and the ratio the time ratio approaches when the
arithmetic dominates (large encoders, a GPU at full load).

``--fabricate N`` times a real dataset's scale without the dataset: N random samples of the exact
shapes its prepared cache holds (``mmlib.data.fabricated``; CREMA-D: a ``(1, 257, 188)``
spectrogram and three 224 x 224 frames per clip, ResNet-18 encoders). Only shapes matter to the cost.

What to expect, with n modalities:
- sum, ogm, lfm, late_fusion, crmt (step 1): one joint step per batch (n encoder passes, one
  backward, one optimizer step): about 1x; OGM adds a softmax per modality, OGM-GE a Gaussian
  draw per encoder parameter, CRMT an eigendecomposition (C x C) per modality per step.
- mla: n unimodal steps per batch (the same n encoder passes, but n backward calls and n optimizer
  steps): up to n x when per-step overhead dominates (small MLP encoders), near 1x when the
  encoders dominate.
- ours (granularity "epoch"): n passes over the data; pass k trains encoder pi_k through the chain
  over the first k modalities of the order. The frozen prefix's features are tabulated once per
  pass in inference mode (``Ours.begin_pass``), and a table stays valid until its encoder trains
  again, so an epoch costs n trained encoder passes (as MLA) plus n - 1 frozen forward passes over
  the training split, plus k - 1 mapping + memory steps per batch in pass k. A forward pass is a
  third of a training pass's arithmetic, so the frozen passes add a third of the recomputed
  encoders' share of MLA's epoch. With mfeat's small MLP encoders the memory unit's gate layer
  (2d -> 3d) is larger than most encoder layers: the chain alone does more arithmetic than MLA's
  whole epoch (``ours`` 2.9x MLA's arithmetic on pix,fou,mor), so no implementation meets the target
  there. At CREMA-D's scale (``--fabricate``) the chain is negligible and the frozen pass is what
  remains: 1.26x MLA's arithmetic when the visual encoder (three frames) is recomputed, 1.08x when
  the audio one is, 1.00x with recorded prefix features. Target: at most 1.2 x MLA.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time

import pandas as pd
import torch
from torch.utils.flop_counter import FlopCounterMode

from mmlib.data.fabricated import fabricated
from mmlib.data.base import MultimodalDataset
from mmlib.data.registry import parse_data_option, typed_data_options
from mmlib.methods import available_methods
from mmlib.config import TrainConfig
from mmlib.runtime import cpu_threads, resolve_device, seed_everything
from mmlib.train import build_model, build_optimizer, load_config_dataset, train_one_epoch

TARGET_OURS_OVER_MLA = 1.2
# bench-only names for a method with options: the cheaper way to get ours' frozen prefix features
VARIANTS = {"ours_recorded": ("ours", {"prefix_features": "recorded"})}
MFEAT_VIEWS = "pix,fou,mor"


def bench_methods() -> list[str]:
    """Every registered method, then every variant."""
    return [*available_methods(), *VARIANTS]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m mmlib bench methods", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="mfeat")
    parser.add_argument("--modalities", default=None,
                        help=f"comma-separated, in the order ours trains them (default: {MFEAT_VIEWS} "
                        "for mfeat, else every modality of the dataset)")
    parser.add_argument("--noise", default="pix=2.0", help="mfeat noise option (empty for none)")
    parser.add_argument("--data", action="append", type=parse_data_option, default=[], metavar="KEY=VALUE",
                        help="another dataset option, repeatable; e.g. --dataset fsdd_av --data "
                             "root=../shared/data/fsdd")
    parser.add_argument("--fabricate", type=int, default=0, metavar="N",
                        help="time N random samples of the dataset's prepared shapes instead of loading it (cremad)")
    parser.add_argument("--methods", default=",".join(bench_methods()),
                        help="comma-separated; concat is always added; ours_recorded is ours with "
                             "prefix_features=recorded")
    parser.add_argument("--epochs", type=int, default=4, help="epochs per method; the first is a warm-up (default: 4)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--hidden-dim", type=int, default=64)
    parser.add_argument("--device", default="auto")

    args = parser.parse_args(argv)
    args.data = typed_data_options(args.dataset, args.data)
    if args.epochs < 2:
        parser.error("--epochs must be at least 2 (the first epoch is a warm-up)")
    if args.fabricate < 0:
        parser.error("--fabricate must be a number of samples (0: load the dataset)")
    return args


def measure_methods(methods: list[str], dataset: str = "mfeat", modalities: str | None = None, noise: str = "pix=2.0",
                    epochs: int = 4, batch_size: int = 64, hidden_dim: int = 64, device: str = "auto",
                    dataset_options: dict | None = None, fabricate: int = 0) -> dict[str, dict[str, float]]:
    """Per method: ``epoch_s``, the median epoch time (s, epochs 2..``epochs``, interleaved across methods),
    and ``epoch_gflop``, the arithmetic of the warm-up epoch (GFLOP). Concat is always included.

    ``noise`` is mfeat's noise option; ``dataset_options`` are any further options of the dataset's loader;
    ``fabricate > 0`` replaces the dataset by that many random samples of its prepared shapes.
    """
    unknown = [m for m in methods if m not in bench_methods()]
    if unknown:
        raise ValueError(f"bench methods: unknown method {unknown[0]!r}; choose from {bench_methods()}")
    if epochs < 2:
        raise ValueError("epochs must be at least 2 (the first epoch is a warm-up)")
    if fabricate and dataset_options:
        raise ValueError(f"fabricated inputs have the prepared shapes only; dataset options {sorted(dataset_options)} "
                         "do not apply to them")
    methods = methods if "concat" in methods else ["concat", *methods]
    modalities = default_modalities(dataset, modalities)
    options = {"noise": noise} if dataset == "mfeat" and noise else {}
    options.update(dataset_options or {})
    torch_device = resolve_device(device)
    data, runs = None, {}
    for name in methods:
        method, method_options = VARIANTS.get(name, (name, {}))
        config = TrainConfig(dataset=dataset, modalities=modalities, dataset_options=options, method=method,
                             method_options=method_options, epochs=epochs, batch_size=batch_size, hidden_dim=hidden_dim,
                             device=str(torch_device), probe=False)
        if data is None:
            data = _bench_dataset(config, fabricate)  # one dataset, shared read-only by every method
        seed_everything(config.seed)
        model = build_model(config, data).to(torch_device)
        runs[name] = {"config": config, "dataset": data, "model": model, "optimizer": build_optimizer(config, model),
                      "shuffle": torch.Generator().manual_seed(config.seed), "times": []}
    with cpu_threads(torch_device):
        gflop = _interleave_epochs(runs, epochs, torch_device)
    return {m: {"epoch_s": statistics.median(run["times"][1:]), "epoch_gflop": gflop[m]} for m, run in runs.items()}


def default_modalities(dataset: str, modalities: str | None) -> str | None:
    """``modalities``, or the bench's default for ``dataset`` (mfeat: pix,fou,mor; otherwise None, every modality)."""
    return MFEAT_VIEWS if modalities is None and dataset == "mfeat" else modalities


def _bench_dataset(config: TrainConfig, fabricate: int) -> MultimodalDataset:
    """The dataset of ``config``, or ``fabricate`` random samples of its prepared shapes when ``fabricate > 0``."""
    if not fabricate:
        return load_config_dataset(config)
    data = fabricated(config.dataset, fabricate, config.seed)
    return data.select(config.modalities) if config.modalities else data


def relative_cost(measured: dict[str, dict[str, float]]) -> pd.DataFrame:
    """:func:`measure_methods`'s result as a table: epoch time (s), GFLOP per epoch, and both divided by Concat's."""
    cost = pd.DataFrame.from_dict(measured, orient="index").rename(columns={"epoch_s": "epoch time (s)",
                                                                            "epoch_gflop": "GFLOP per epoch"})
    cost["time × Concat"] = cost["epoch time (s)"] / cost.loc["concat", "epoch time (s)"]
    cost["arithmetic × Concat"] = cost["GFLOP per epoch"] / cost.loc["concat", "GFLOP per epoch"]
    return cost.rename_axis("method")


def _interleave_epochs(runs: dict, epochs: int, torch_device: torch.device) -> dict[str, float]:
    """Train every run ``epochs`` epochs, interleaved, appending each epoch's time; returns the warm-up epoch's GFLOP
    per run."""
    gflop = {}
    for epoch in range(1, epochs + 1):
        for method, run in runs.items():
            counter = FlopCounterMode(display=False) if epoch == 1 else None
            if torch_device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            with counter or contextlib.nullcontext():
                train_one_epoch(run["model"], run["dataset"], run["optimizer"], run["config"], epoch, run["shuffle"],
                                torch_device, progress=False)
            if torch_device.type == "cuda":
                torch.cuda.synchronize()
            run["times"].append(time.perf_counter() - start)
            if counter is not None:
                gflop[method] = counter.get_total_flops() / 1e9
    return gflop


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    try:
        measured = measure_methods(methods, args.dataset, args.modalities, args.noise, args.epochs, args.batch_size,
                                   args.hidden_dim, args.device, args.data, args.fabricate)
    except ValueError as error:
        print(f"mmlib bench methods: {error}", file=sys.stderr)
        return 2
    data = f"{args.fabricate} random samples of {args.dataset}'s prepared shapes" if args.fabricate else args.dataset
    modalities = default_modalities(args.dataset, args.modalities) or "all modalities"
    print(f"epoch time and arithmetic / concat's, {data} [{modalities}], batch {args.batch_size}, hidden "
          f"{args.hidden_dim}, {resolve_device(args.device)}, CPU threads MMLIB_CPU_THREADS (default 1); time: median "
          f"of epochs 2..{args.epochs}, GFLOP: epoch 1 (matrix products and convolutions, forward and backward)")
    print(f"{'method':<14} {'epoch (s)':>10} {'/ concat':>9} {'GFLOP':>10} {'/ concat':>9}")
    for method, row in relative_cost(measured).iterrows():
        print(f"{method:<14} {row['epoch time (s)']:>10.3f} {row['time × Concat']:>9.2f} "
              f"{row['GFLOP per epoch']:>10.2f} {row['arithmetic × Concat']:>9.2f}")
    print("expected: joint methods ~1x; mla up to n x in time (n unimodal steps per batch), ~1x in arithmetic; ours: "
          "mla's n unimodal trainings + n - 1 frozen forward passes + the chain; ours_recorded: without the frozen "
          "forward passes")
    for name in ("ours", "ours_recorded"):
        if name in measured and "mla" in measured:
            time_ratio = measured[name]["epoch_s"] / measured["mla"]["epoch_s"]
            flop_ratio = measured[name]["epoch_gflop"] / measured["mla"]["epoch_gflop"]
            verdict = "meets" if time_ratio <= TARGET_OURS_OVER_MLA else "misses"
            print(f"{name} / mla = {time_ratio:.2f} in time, {flop_ratio:.2f} in arithmetic ({verdict} the target of "
                  f"{TARGET_OURS_OVER_MLA})")
            if flop_ratio > TARGET_OURS_OVER_MLA:
                print(f"  {name}'s arithmetic alone exceeds the target here: its chain and frozen passes outweigh "
                      "these encoders; at the paper's scale try --dataset cremad --fabricate 128 --modalities "
                      "visual,audio --hidden-dim 512")
    return 0
