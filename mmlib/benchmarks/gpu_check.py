"""``make gpu-check``: the GPU path, checked in one command, figures in one JSON file.

Runs on a bare GPU machine that has Python 3.12 with torch / torchaudio / torchvision 2.11.0 (and
NumPy, pandas, scikit-learn, SciPy, tqdm, threadpoolctl) but not this project installed: the
Makefile runs it with ``PYTHONPATH`` set to the checkout. A package the machine lacks travels as
wheels unpacked into a folder on ``PYTHONPATH`` (README, "GPU check"). It takes a few minutes
and writes (default ``gpu-check.json``):

* device name, versions, date;
* ``bench scale`` at CREMA-D's shapes for concat, mla and ours: data path / ceiling, evaluation
  share of an epoch, ours / mla, peak memory; and the 100-epoch time of ``ours`` on CREMA-D
  extrapolated from it (6,698 training and 744 validation clips, OGM-GE's split);
* a 3-epoch ``ogm_ge``-protocol run of concat, mla and ours on 256 fabricated clips through the
  real ``train``: wall time per epoch and test accuracy (meaningless on random data, but finite);
* on CUDA, ``bench scale --compile`` for concat: compiled / eager samples per second and the
  compilation time;
* on CUDA, ``bench scale --host-arrays`` for concat and ours: the arrays left on the host, as for
  a dataset too large for the device, so batches come through the side-stream prefetcher; and
  whether those batches hold exactly the rows, labels and values of the CPU's gather;
* resume on CUDA: ``ours`` stopped after epoch 1 and resumed, against an uninterrupted run: the
  largest difference of any logged metric (bf16 autocast and cuDNN may make it nonzero).
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import torch

from mmlib.benchmarks import scale
from mmlib.data import load_dataset
from mmlib.doctor import installed_versions
from mmlib.train import TrainConfig, train

RUN_CLIPS = {"samples": 256, "size": 224, "duration": 3.0, "n_fft": 512}


def _largest_difference(a: list[dict], b: list[dict]) -> float:
    """The largest absolute difference between numeric entries of two histories."""
    largest = 0.0
    for left, right in zip(a, b):
        for key, value in left.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                largest = max(largest, abs(value - right[key]))
    return largest


def short_runs(device: str, clips: dict) -> dict:
    """3-epoch runs of concat, mla and ours under the ogm_ge protocol, and ours' resume equality."""
    runs = {}
    for method in ("concat", "mla", "ours"):
        config = TrainConfig.from_protocol("ogm_ge", dataset="cremad_fabricated", dataset_options=dict(clips),
                                           method=method, epochs=3, probe=False, device=device)
        record = train(config, progress=False)
        runs[method] = {"wall_s": record["wall_time_s"], "epoch_s": record["wall_time_s"] / 3,
                        "test_fused_acc": record["test"]["fused_acc"], "train_loss": [h["train_loss"] for h in record["history"]]}
    config = TrainConfig.from_protocol("ogm_ge", dataset="cremad_fabricated", dataset_options=dict(clips),
                                       method="ours", epochs=3, probe=False, device=device)
    uninterrupted = train(config, progress=False)
    with tempfile.TemporaryDirectory() as folder:
        train(config, checkpoint_dir=folder, progress=False, stop_after_epoch=1)
        resumed = train(config, checkpoint_dir=folder, resume=True, progress=False)
    runs["resume"] = {"largest_history_difference": _largest_difference(uninterrupted["history"], resumed["history"]),
                      "test_fused_acc": [uninterrupted["test"]["fused_acc"], resumed["test"]["fused_acc"]]}
    return runs


def prefetch_check(device: str) -> dict:
    """Batches prefetched to ``device`` from host arrays against the CPU's gather of the same rows."""
    dataset = load_dataset("cremad_fabricated", samples=40, size=64, duration=0.5, n_fft=62).with_frame_normalization("imagenet")
    same_rows, largest = True, 0.0
    for moved, host in zip(dataset.batches("train", 16, shuffle=True, generator=torch.Generator().manual_seed(1), device=device),
                           dataset.batches("train", 16, shuffle=True, generator=torch.Generator().manual_seed(1))):
        same_rows &= torch.equal(moved.index.cpu(), host.index) and torch.equal(moved.labels.cpu(), host.labels)
        for m in dataset.modalities:
            largest = max(largest, float((moved.inputs[m].cpu() - host.inputs[m]).abs().max()))
    return {"same_rows_and_labels": bool(same_rows), "largest_input_difference": largest}


def summary(path: str | Path) -> tuple[str, "pd.DataFrame | None"]:
    """A paragraph and a table of the figures in a ``gpu-check.json``, or a paragraph saying there is none."""
    import pandas as pd

    path = Path(path)
    if not path.exists():
        return (f"No GPU measurement is stored with the book ({path} is absent): no run of this book has been "
                "timed on a GPU yet. On a GPU machine, `make gpu-check` writes `gpu-check.json`; copy it to that path "
                "and rebuild this chapter to show its figures here."), None
    figures = json.loads(path.read_text())
    rows = figures["bench_scale"]["rows"] + figures.get("host_arrays", [])
    table = pd.DataFrame({
        "method": [r["method"] for r in rows],
        "arrays on": [r.get("arrays", "device") for r in rows],
        "data path (clips/s)": [round(r["data_path_samples_per_s"]) for r in rows],
        "ceiling (clips/s)": [round(r["ceiling_samples_per_s"]) for r in rows],
        "data path / ceiling": [round(r["data_path_over_ceiling"], 2) for r in rows],
        "evaluation / epoch at CREMA-D": [f"{r['shapley_share_cremad_split']:.1%}" for r in rows],
    })
    resume = figures["short_runs"]["resume"]["largest_history_difference"]
    text = (f"Measured on {figures['device']} on {figures['date']} (torch {figures['versions']['torch']}, "
            f"CUDA {figures['versions']['cuda']}) at CREMA-D's shapes under the ogm_ge protocol: "
            f"ours takes {figures['bench_scale'].get('ours_over_mla', float('nan')):.2f} MLA epochs per epoch, and 100 "
            f"epochs of ours on CREMA-D would take about {figures['ours_100_epochs_cremad_s'] / 60:.1f} minutes "
            f"(extrapolated from the measured epoch). A run resumed on the GPU differs from an uninterrupted one by "
            f"at most {resume:.3g} in any logged metric.")
    return text, table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mmlib.benchmarks.gpu_check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="gpu-check.json", help="where the figures go (default: gpu-check.json)")
    parser.add_argument("--allow-cpu", action="store_true", help="run on the CPU at toy scale (to test this script)")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available() and not args.allow_cpu:
        print("gpu-check: torch sees no CUDA device; run it on a GPU machine (or pass --allow-cpu to test the script)")
        return 2
    started = time.perf_counter()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    figures = {"versions": {**installed_versions(), "python": platform.python_version(), "cuda": torch.version.cuda}}
    bench = scale.run(["--device", device, "--epochs", "3"] + ([] if device == "cuda" else ["--samples", "64"]))
    figures.update(device=bench["device"], date=bench["date"], bench_scale=bench)
    ours = next(row for row in bench["rows"] if row["method"] == "ours")
    per_clip_train, per_clip_eval = ours["epoch_s"] / ours["samples"], ours["evaluation_s"] / ours["samples"]
    figures["ours_100_epochs_cremad_s"] = 100 * (per_clip_train * scale.CREMAD_TRAIN + per_clip_eval * scale.CREMAD_VAL)
    if device == "cuda":  # torch.compile of concat's two ResNet-18 encoders: compiled / eager samples per second
        figures["compile"] = scale.run(["--device", device, "--epochs", "3", "--methods", "concat", "--compile"])["rows"][0]
        figures["host_arrays"] = scale.run(["--device", device, "--epochs", "3", "--methods", "concat,ours", "--host-arrays"])["rows"]
        figures["prefetch"] = prefetch_check(device)
    figures["short_runs"] = short_runs(device, RUN_CLIPS if device == "cuda" else {**scale.TINY, "samples": 24})
    figures["wall_s"] = time.perf_counter() - started
    Path(args.out).write_text(json.dumps(figures, indent=1))
    print(json.dumps({k: v for k, v in figures.items() if k != "bench_scale"}, indent=1))
    print(f"gpu-check: figures written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
