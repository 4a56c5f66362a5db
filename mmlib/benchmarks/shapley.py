"""Cost of exact Shapley and hybrid-order inference, as ratios measured in one run.

Ratio 1: one exact Shapley evaluation (encoders once, then all ``2**n`` subsets through the light
fusion) divided by one plain validation pass (encoders + fused prediction).
Ratio 2: hybrid-order inference (all ``n!`` orders, batched) divided by single-order inference,
both including the encoders. Target: both at most 1.5, because only the chain is repeated.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from mmlib.evaluate import encode_split, subset_correct
from mmlib.fusion import chain
from mmlib.train import TrainConfig, build_model, load_config_dataset


def _median_time(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m mmlib bench shapley", description=__doc__.split("\n\n")[0])
    parser.add_argument("--modalities", default="pix,fou,mor")
    parser.add_argument("--hidden-dim", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--split", default="val")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    config = TrainConfig(dataset="mfeat", modalities=args.modalities, hidden_dim=args.hidden_dim, device=args.device)
    dataset = load_config_dataset(config)
    device = torch.device(args.device)
    model = build_model(config, dataset).to(device).eval()
    n = len(dataset.modalities)

    @torch.no_grad()
    def plain_pass():
        for batch in dataset.batches(args.split, args.batch_size, device=device):
            model(batch.inputs).argmax(-1)

    def exact_shapley():
        features, labels = encode_split(model, dataset, args.split, args.batch_size, device)
        subset_correct(model, features, labels, args.batch_size)

    @torch.no_grad()
    def single_order():
        for batch in dataset.batches(args.split, args.batch_size, device=device):
            model.head(chain(model.encode(batch.inputs), model.modalities, model.mapping, model.memory)).argmax(-1)

    t_plain = _median_time(plain_pass, args.repeats)
    t_shapley = _median_time(exact_shapley, args.repeats)
    t_single = _median_time(single_order, args.repeats)
    # plain_pass is hybrid-order inference: Ours' forward averages the chain over all n! orders.
    print(f"mfeat [{args.modalities}], {len(dataset.splits[args.split])} {args.split} samples, device {args.device}, median of {args.repeats}")
    print(f"exact Shapley ({2**n} subsets)      {1000 * t_shapley:8.1f} ms")
    print(f"one validation pass (fused)      {1000 * t_plain:8.1f} ms")
    print(f"ratio Shapley / validation pass  {t_shapley / t_plain:8.2f}   (target <= 1.5)")
    print(f"single-order inference           {1000 * t_single:8.1f} ms")
    print(f"ratio hybrid ({n}! orders) / single {t_plain / t_single:8.2f}   (target <= 1.5)")
    return 0
