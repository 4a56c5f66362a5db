"""Cost of exact Shapley and hybrid-order inference, as ratios measured in one run.

Ratio 1: one exact Shapley evaluation (encoders once, then all ``2**n`` subsets through the light
fusion) divided by one plain validation pass (encoders + hybrid-order fused prediction).
Ratio 2: hybrid-order inference (all ``n!`` orders, batched) divided by single-order inference,
both including the encoders. Target: both at most 1.5, which holds when the encoders dominate the
cost (ResNet-18 on spectrograms); with mfeat's two-layer MLP encoders the chain costs as much as
the encoders and the ratios are higher. Both input kinds are measured, so the output says which.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from mmlib.data.fabricated import random_dataset
from mmlib.evaluate import encode_split, subset_correct
from mmlib.config import TrainConfig
from mmlib.runtime import cpu_threads, resolve_device
from mmlib.train import build_model, load_config_dataset

INPUTS = ("mfeat", "spectrogram")
FOUR_CLASSES = ("0", "1", "2", "3")  # random inputs: only the cost matters


def _median_time(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(kind: str, modalities: str = "pix,fou,mor", num_modalities: int = 3, samples: int = 64,
            hidden_dim: int = 64, batch_size: int = 256, repeats: int = 5, device: str = "cpu") -> dict:
    """Median times (ms) of exact Shapley, one hybrid-order pass and one single-order pass.

    ``kind="mfeat"``: the mfeat ``modalities`` with MLP encoders; ``"spectrogram"``: ``num_modalities``
    random ``(1, 40, 64)`` inputs of ``samples`` samples with ResNet-18 encoders; ``"vector"``:
    ``num_modalities`` random 32-d inputs with MLP encoders (for the cost as n grows).
    """
    config = TrainConfig(dataset="mfeat", modalities=modalities, hidden_dim=hidden_dim, device=device)
    if kind == "mfeat":
        dataset = load_config_dataset(config)
    elif kind == "spectrogram":
        dataset = random_dataset({f"m{i}": ((1, 40, 64), "float32") for i in range(num_modalities)}, samples,
                                 FOUR_CLASSES)
    elif kind == "vector":
        dataset = random_dataset({f"m{i}": ((32,), "float32") for i in range(num_modalities)}, samples, FOUR_CLASSES)
    else:
        raise ValueError(f"unknown input kind {kind!r}; choose mfeat, spectrogram or vector")
    args = argparse.Namespace(batch_size=batch_size, repeats=repeats)
    device = resolve_device(device)
    model = build_model(config, dataset).to(device).eval()

    @torch.no_grad()
    def hybrid_pass():  # Ours' forward is hybrid-order inference over all n! orders
        for batch in dataset.batches("val", args.batch_size, device=device):
            model(batch.inputs).argmax(-1)

    def exact_shapley():
        features, labels = encode_split(model, dataset, "val", args.batch_size, device)
        subset_correct(model, features, labels, args.batch_size)

    @torch.no_grad()
    def single_order():
        for batch in dataset.batches("val", args.batch_size, device=device):
            model.head(model.fused_by_orders(model.encode(batch.inputs), [model.modalities])[0]).argmax(-1)

    with cpu_threads(device):
        times = {name: 1000 * _median_time(fn, args.repeats)
                 for name, fn in (("shapley_ms", exact_shapley), ("hybrid_ms", hybrid_pass),
                                  ("single_ms", single_order))}
    return {"kind": kind, "samples": len(dataset.splits["val"]), "n": len(dataset.modalities), **times}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m mmlib bench shapley", description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", choices=INPUTS + ("both",), default="both")
    parser.add_argument("--modalities", default="pix,fou,mor", help="mfeat views (3 views: 8 subsets, 6 orders)")
    parser.add_argument("--spectrogram-samples", type=int, default=64)
    parser.add_argument("--hidden-dim", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    kinds = INPUTS if args.input == "both" else (args.input,)
    print(f"device {args.device}; median of {args.repeats} repeats; Ours with sample-level mapping and gated memory")
    print(f"{'input':<12}{'samples':>8}{'Shapley ms':>12}{'1 pass ms':>11}{'ratio':>7}   "
          f"{'1 order ms':>11}{'ratio':>7}")
    for kind in kinds:
        r = measure(kind, args.modalities, 3, args.spectrogram_samples, args.hidden_dim, args.batch_size, args.repeats,
                    args.device)
        print(f"{kind:<12}{r['samples']:>8}{r['shapley_ms']:>12.1f}{r['hybrid_ms']:>11.1f}"
              f"{r['shapley_ms'] / r['hybrid_ms']:>7.2f}"
              f"   {r['single_ms']:>11.1f}{r['hybrid_ms'] / r['single_ms']:>7.2f}")
    print(f"ratios: exact Shapley (2^n subsets) / one validation pass, then hybrid ({r['n']}! orders) / single order; "
          "target <= 1.5")
    return 0
