"""Throughput at CREMA-D's scale: the real data path against tensors already on the device.

For each method (default concat, mla, ours), on random clips of CREMA-D's prepared shapes
(``cremad_fabricated``: a ``(1, 257, 188)`` spectrogram and three 224 x 224 frames, ResNet-18 per
modality) under the ``ogm_ge`` protocol (SGD, batch 64, d = 512, crop + flip + ImageNet
normalisation on the device), it measures in one run:

* ``data path``: training samples per second through the loop's ``train_one_epoch``, which
  gathers, converts, normalises and augments every batch (:meth:`MultimodalDataset.batches`);
* ``ceiling``: the same epochs of the same model on batches made once beforehand and kept on the
  device (no gather, no conversion, no augmentation): what the model alone allows;
* their ratio (target on a GPU: at least 0.9);
* evaluation of the validation split with every Shapley subset as the loop runs it (under its
  autocast: bf16 on CUDA), the median of 3 after a warm-up, as a share of a training epoch:
  over the fabricated clips (every split holds all of them, so evaluation and epoch see the same
  clips), and at CREMA-D's split, per-clip times scaled to 744 validation and 6,698 training
  clips (target: at most 5 %);
* the peak memory (device memory on a GPU, the process's resident set on the CPU);
* for ``ours``, a 100-epoch ``ogm_ge``-protocol run on CREMA-D, everything the loop does included
  (:func:`hundred_epochs`): start-up (a fresh interpreter importing the loop, the arrays moved to
  the device, the model and optimizer built), 100 training epochs in the slower order and 100
  validations (per clip as measured, at CREMA-D's split), 100 checkpoints (a real
  ``save_checkpoint`` of the model, optimizer and best-epoch state into ``--checkpoint-dir``, the
  results folder), 100 best-state copies, the first epoch's warm-up, the test evaluation and the
  linear probes. Reading the prepared cache from disk is not included;
* with ``--determinism``, one method's epoch under the loop's deterministic settings and without
  them, ``cudnn.benchmark`` on and off, and without ``fill_uninitialized_memory``, side by side
  (:func:`determinism_prices`): on a GPU the price of bitwise reproducibility; on the CPU, where
  cuDNN does not exist, the path runs and is marked not applicable.

``ours`` trains its modalities in an order, and its cost depends on it: the frozen prefix of the
second pass is recomputed through its encoder, cheap for audio, three ResNet-18 frames for visual.
It is timed in both orders of CREMA-D's two modalities (audio first, as in its first epoch, and
visual first, as Shapley may pick); its row reports the slower, ``orders`` holds both.

On the CPU the defaults are tiny (64 clips of 32 x 32 frames, a short spectrogram, d = 16) so it
finishes in under a minute; ``--full`` uses the real shapes. Epochs are interleaved across methods
and modes; the first is a warm-up and the median of the rest is reported.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from mmlib.evaluate import evaluate_split, linear_probe_accuracy
from mmlib.config import TrainConfig
from mmlib.runtime import autocast, compile_encoders, cpu_threads, resolve_device, seed_everything
from mmlib.train import (
    AUGMENT_SEED_OFFSET, augment_batch, build_model, build_optimizer, load_config_dataset, save_checkpoint,
    train_one_epoch,
)

FULL = {"samples": 512, "size": 224, "duration": 3.0, "n_fft": 512}
TINY = {"samples": 64, "size": 32, "duration": 0.5, "n_fft": 62}
TARGETS = {"data_path_over_ceiling": 0.9, "shapley_share_cremad_split": 0.05, "ours_over_mla": 1.2}
CREMAD_TRAIN, CREMAD_VAL = 6698, 744  # clips in OGM-GE's CREMA-D training split and the validation split carved from it
CREMAD_TEST, CREMAD_CLIPS = 744, 7442  # OGM-GE's CREMA-D test list; every clip of the prepared cache
RUN_EPOCHS = 100  # the ogm_ge protocol's epochs
# (name, deterministic algorithms, cudnn.benchmark, fill_uninitialized_memory); the first is the loop's
# (seed_everything)
DETERMINISM = (
    ("deterministic (the loop's)", True, False, True),
    ("deterministic, no memory fill", True, False, False),
    ("deterministic, cudnn.benchmark", True, True, True),
    ("not deterministic", False, False, True),
    ("not deterministic, cudnn.benchmark", False, True, True),
)
# ours' order policies timed: "fixed" trains in the modalities' own order (audio, visual: the cheap encoder is the
# frozen prefix), "reverse" in the reverse (visual first, as Shapley may pick); without end_epoch here no epoch reorders
ORDERS = ("fixed", "reverse")
EVAL_REPEATS = 3  # evaluations timed after the warm-up; their median is reported


class PreparedBatches:
    """A dataset whose training batches were gathered, converted and augmented once, then replayed.

    Everything else (validation, the training-split features ``ours`` tabulates) is delegated to
    the wrapped dataset, so the ceiling differs from the data path only in the training batches.
    """

    def __init__(self, dataset, batch_size: int, device: torch.device, augmentation: torch.Generator | None) -> None:
        self._dataset, self._batch_size = dataset, batch_size
        batches = dataset.batches("train", batch_size, shuffle=True, generator=torch.Generator().manual_seed(0),
                                  device=device,
                                  full_frames=augmentation is not None)
        self._prepared = [augment_batch(b, augmentation, out_size=dataset.frame_size) if augmentation is not None else b
                          for b in batches]

    def batches(self, split, batch_size, shuffle=False, generator=None, device="cpu", **options):
        if split == "train" and batch_size == self._batch_size and shuffle:
            return iter(self._prepared)
        return self._dataset.batches(split, batch_size, shuffle=shuffle, generator=generator, device=device, **options)

    def __getattr__(self, name):
        return getattr(self._dataset, name)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _configs(method: str, clips: dict, hidden_dim: int, batch_size: int, epochs: int, device: torch.device) -> dict:
    """The ``ogm_ge`` configs timed for ``method``, keyed by order policy: ``{None: config}``, or for a
    method that trains in an order (ours) one config per policy of :data:`ORDERS`."""
    config = TrainConfig.from_protocol("ogm_ge", dataset="cremad_fabricated", dataset_options=dict(clips),
                                       method=method,
                                       hidden_dim=hidden_dim, batch_size=batch_size, epochs=epochs, probe=False,
                                       device=str(device))
    if "order" not in config.method_options:
        return {None: config}
    return {policy: dataclasses.replace(config, method_options={**config.method_options, "order": policy})
            for policy in ORDERS}


def _timed(device: torch.device, work) -> tuple:
    """``work()``'s result and its wall seconds, the device synchronised before and after."""
    _sync(device)
    start = time.perf_counter()
    result = work()
    _sync(device)
    return result, time.perf_counter() - start


def _seconds(device: torch.device, work) -> float:
    """Wall seconds of ``work()``, the device synchronised before and after."""
    return _timed(device, work)[1]


def evaluation_seconds(run: dict, device: torch.device, repeats: int = EVAL_REPEATS) -> float:
    """Median seconds of evaluating the validation split with every Shapley subset as the loop does (under
    its autocast: bf16 on CUDA), over ``repeats`` evaluations after an untimed warm-up."""
    config = run["config"]

    def evaluate():
        with autocast(device):
            evaluate_split(run["model"], run["dataset"], "val", config.eval_batch_size, device, config.empty_value,
                           config.eval_seed)

    return statistics.median([_seconds(device, evaluate) for _ in range(repeats + 1)][1:])


def measure(methods: list[str], clips: dict, hidden_dim: int, batch_size: int, epochs: int, device: torch.device,
            compiled: bool = False, host_arrays: bool = False, checkpoint_dir: str | Path | None = None) -> list[dict]:
    """Per method: samples/s of the data path and of the ceiling, evaluation share, peak memory;
    with ``compiled``, also the data path with compiled encoders (:func:`mmlib.train.compile_encoders`);
    with ``host_arrays``, the arrays stay on the host as for a dataset too large for the device, so
    the data path is the side-stream prefetcher (:mod:`mmlib.data.prefetch`). A method that trains in
    an order (ours) is timed in each order of :data:`ORDERS`; its row is the slower order's, and
    ``orders`` holds both. With ``checkpoint_dir``, ours' row also holds the per-run costs beside the
    epochs (:func:`overheads`, checkpoints written there)."""
    runs = {}
    for method in methods:
        configs = _configs(method, clips, hidden_dim, batch_size, epochs, device)
        first = next(iter(configs.values()))  # the configs differ in the order only: one dataset serves them all
        seed_everything(first.seed)
        dataset = load_config_dataset(first)
        dataset, to_device_s = _timed(device, lambda: dataset if host_arrays else dataset.on_device(device))
        augmentation = torch.Generator().manual_seed(first.seed + AUGMENT_SEED_OFFSET)
        for policy, config in configs.items():
            for mode in ("data path", "ceiling", "compiled") if compiled else ("data path", "ceiling"):
                model = build_model(config, dataset).to(device)
                if device.type == "cuda":
                    model = model.to(memory_format=torch.channels_last)
                if mode == "compiled":
                    compile_encoders(model)
                source = PreparedBatches(dataset, batch_size, device, augmentation) if mode == "ceiling" else dataset
                runs[method, policy, mode] = {"config": config, "model": model,
                                              "optimizer": build_optimizer(config, model),
                                              "dataset": source, "times": [],
                                              "shuffle": torch.Generator().manual_seed(0),
                                              "augmentation": None if mode == "ceiling" else augmentation,
                                              "to_device_s": to_device_s}
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for epoch in range(1, epochs + 1):
        for run in runs.values():
            run["times"].append(_seconds(device, lambda: train_one_epoch(
                run["model"], run["dataset"], run["optimizer"], run["config"], epoch, run["shuffle"], device,
                progress=False,
                augmentation=run["augmentation"])))
    rows = []
    for method in methods:
        orders = [_order_row(runs, method, policy, compiled)
                  for m, policy, mode in runs if m == method and mode == "data path"]
        row = {"method": method, **max(orders, key=lambda r: r["epoch_s"])}
        path = runs[method, row.pop("policy"), "data path"]
        samples, validation = row["samples"], len(path["dataset"].splits["val"])
        evaluation = evaluation_seconds(path, device)
        row.update({
            "arrays": "device" if path["dataset"].resident else "host", "evaluation_s": evaluation,
            "validation_samples": validation,
            "shapley_share_of_epoch": evaluation / row["epoch_s"],
            "shapley_share_cremad_split": (evaluation / validation * CREMAD_VAL)
                                          / (row["epoch_s"] / samples * CREMAD_TRAIN),
        })
        if len(orders) > 1:
            row["orders"] = [{k: v for k, v in r.items() if k != "policy"} for r in orders]
        if method == "ours" and checkpoint_dir is not None:
            row["overheads"] = overheads(path, device, Path(checkpoint_dir))
        rows.append(row)
    peak = _peak_memory_mb(device)
    for row in rows:
        row["peak_memory_mb"] = peak
    return rows


def _order_row(runs: dict, method: str, policy: str | None, compiled: bool) -> dict:
    """The epoch figures of ``method`` trained under order ``policy``: medians after the warm-up epoch."""
    path, ceiling = runs[method, policy, "data path"], runs[method, policy, "ceiling"]
    samples = len(path["dataset"].splits["train"])
    path_time, ceiling_time = statistics.median(path["times"][1:]), statistics.median(ceiling["times"][1:])
    row = {"policy": policy, "samples": samples, "epoch_s": path_time, "data_path_samples_per_s": samples / path_time,
           "ceiling_samples_per_s": samples / ceiling_time, "data_path_over_ceiling": ceiling_time / path_time}
    order = path["model"].describe_epoch().get("order")
    if order is not None:
        row["order"] = order
    if compiled:
        times = runs[method, policy, "compiled"]["times"]
        row.update({"compiled_samples_per_s": samples / statistics.median(times[1:]),
                    "compiled_over_eager": path_time / statistics.median(times[1:]),
                    "compile_s": times[0] - path["times"][0]})
    return row


def overheads(run: dict, device: torch.device, folder: Path) -> dict:
    """What a run of ``run``'s model pays beside its epochs, measured on it.

    ``checkpoint_s``: the median of 3 writes of the loop's checkpoint (:func:`mmlib.train.save_checkpoint`:
    serialised, then replaced atomically) of the model, the optimizer and the best epoch's state
    into ``folder``, removed afterwards; ``checkpoint_mb`` its size. ``best_copy_s``: one copy of the
    model's state, which the loop makes whenever validation improves. ``probes_s``: the linear probes
    on the fabricated clips (None, with ``probes_skipped``, without scikit-learn). ``to_device_s``:
    moving the arrays to the device (0 on the CPU, where they stay). ``build_s``: the model and
    optimizer built and moved. ``warmup_s``: the first timed epoch's excess over the median.
    """
    model, config, dataset = run["model"], run["config"], run["dataset"]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"bench-scale-{os.getpid()}.ckpt"

    def state() -> dict:
        return {"model": model.state_dict(), "optimizer": run["optimizer"].state_dict(),
                "best": {"state": copy.deepcopy(model.state_dict())}}

    try:
        checkpoint_s = statistics.median(_seconds(device, lambda: save_checkpoint(path, state()))
                                         for _ in range(EVAL_REPEATS))
        checkpoint_mb = path.stat().st_size / 2**20
    finally:
        path.unlink(missing_ok=True)
    build_s = _seconds(device, lambda: build_optimizer(config, build_model(config, dataset).to(device)))
    found = {"checkpoint_s": checkpoint_s, "checkpoint_mb": checkpoint_mb,
             "best_copy_s": _seconds(device, lambda: copy.deepcopy(model.state_dict())),
             "to_device_s": run["to_device_s"], "build_s": build_s,
             "warmup_s": max(0.0, run["times"][0] - statistics.median(run["times"][1:])),
             "dataset_clips": len(dataset.labels), "probes_s": None}
    try:
        import sklearn  # noqa: F401  (the probes' logistic regression)
    except ImportError:
        found["probes_skipped"] = "scikit-learn is not installed; a run with probe=True needs it"
        return found
    found["probes_s"] = _seconds(device, lambda: linear_probe_accuracy(model, dataset, config.eval_batch_size, device))
    return found


def import_seconds() -> float:
    """Seconds a fresh interpreter (this one, with this path) takes to start and import the training loop."""
    flags = [flag for flag, on in (("-S", sys.flags.no_site), ("-s", sys.flags.no_user_site)) if on]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    started = time.perf_counter()
    subprocess.run([sys.executable, *flags, "-c", "import mmlib.train"], check=True, env=env, capture_output=True)
    return time.perf_counter() - started


def hundred_epochs(row: dict, import_s: float, epochs: int = RUN_EPOCHS) -> dict:
    """The seconds of an ``epochs``-epoch run of ``row``'s method on CREMA-D, by part, and their sum.

    Training and evaluation are scaled per clip from the fabricated clips to CREMA-D's split
    (:data:`CREMAD_TRAIN`, :data:`CREMAD_VAL`, :data:`CREMAD_TEST`), every epoch in the order timed
    slower; the probes per clip of the training and test splits they encode (their fit is taken to
    grow alike); moving the arrays per clip of the whole cache; checkpoints, best-state copies,
    start-up and warm-up as measured (a best-state copy every epoch: at most what the loop pays).
    """
    extra = row["overheads"]
    per_train, per_eval = row["epoch_s"] / row["samples"], row["evaluation_s"] / row["validation_samples"]
    clips = extra["dataset_clips"]
    parts = {
        "start-up: interpreter and imports": import_s,
        "start-up: arrays to the device": extra["to_device_s"] / clips * CREMAD_CLIPS,
        "start-up: model and optimizer": extra["build_s"],
        "first-epoch warm-up": extra["warmup_s"],
        "training": epochs * per_train * CREMAD_TRAIN,
        "validation (every Shapley subset)": epochs * per_eval * CREMAD_VAL,
        "checkpoints": epochs * extra["checkpoint_s"],
        "best-state copies": epochs * extra["best_copy_s"],
        "test": per_eval * CREMAD_TEST,
    }
    if extra["probes_s"] is not None:
        parts["linear probes"] = extra["probes_s"] / (2 * row["samples"]) * (CREMAD_TRAIN + CREMAD_TEST)
    left_out = ["reading the prepared cache from disk"] + ([] if extra["probes_s"] is not None else ["linear probes"])
    return {"epochs": epochs, "order": row.get("order"), "parts_s": parts, "total_s": sum(parts.values()),
            "includes": ", ".join(parts), "left_out": ", ".join(left_out), "checkpoint_mb": extra["checkpoint_mb"]}


@contextlib.contextmanager
def determinism(deterministic: bool, benchmark: bool, fill: bool):
    """Run the block with deterministic algorithms (warn-only, as the loop sets them), ``cudnn.benchmark`` and
    ``fill_uninitialized_memory`` as given; the previous settings are restored after it."""
    saved = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
             torch.backends.cudnn.benchmark, torch.utils.deterministic.fill_uninitialized_memory)
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    torch.backends.cudnn.benchmark, torch.utils.deterministic.fill_uninitialized_memory = benchmark, fill
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])
        torch.backends.cudnn.benchmark, torch.utils.deterministic.fill_uninitialized_memory = saved[2:]


def determinism_prices(method: str, clips: dict, hidden_dim: int, batch_size: int, epochs: int,
                       device: torch.device) -> dict:
    """The data-path epoch of ``method`` (ours: in its first epoch's order) under each setting of
    :data:`DETERMINISM`, epochs interleaved across settings, the first a warm-up (``cudnn.benchmark``
    tunes its algorithms there), the median of the rest; each as a multiple of the loop's setting.
    ``reproducibility_price``: the loop's epoch over the fastest non-deterministic one."""
    config = next(iter(_configs(method, clips, hidden_dim, batch_size, epochs, device).values()))
    seed_everything(config.seed)
    dataset = load_config_dataset(config).on_device(device)
    runs = []
    for name, deterministic, benchmark, fill in DETERMINISM:
        with determinism(deterministic, benchmark, fill):
            seed_everything(config.seed)
            model = build_model(config, dataset).to(device)
            if device.type == "cuda":
                model = model.to(memory_format=torch.channels_last)
            runs.append({"setting": name, "deterministic": deterministic, "cudnn_benchmark": benchmark,
                         "fill_uninitialized_memory": fill, "model": model, "optimizer": build_optimizer(config, model),
                         "shuffle": torch.Generator().manual_seed(0), "times": [],
                         "augmentation": torch.Generator().manual_seed(config.seed + AUGMENT_SEED_OFFSET)})
    for epoch in range(1, epochs + 1):
        for run in runs:
            with determinism(run["deterministic"], run["cudnn_benchmark"], run["fill_uninitialized_memory"]):
                run["times"].append(_seconds(device, lambda: train_one_epoch(
                    run["model"], dataset, run["optimizer"], config, epoch, run["shuffle"], device, progress=False,
                    augmentation=run["augmentation"])))
    settings = [{k: run[k] for k in ("setting", "deterministic", "cudnn_benchmark", "fill_uninitialized_memory")}
                | {"epoch_s": statistics.median(run["times"][1:])} for run in runs]
    loop = settings[0]["epoch_s"]
    for setting in settings:
        setting["over_loop"] = setting["epoch_s"] / loop
    fastest = min(s["epoch_s"] for s in settings if not s["deterministic"])
    applicable = device.type == "cuda"
    return {"method": method, "order": runs[0]["model"].describe_epoch().get("order"), "samples": clips["samples"],
            "applicable": applicable, "settings": settings, "reproducibility_price": loop / fastest,
            "note": "measured on the GPU" if applicable else (
                "not applicable on the CPU: cuDNN and its benchmark do not exist there; timed only to run the code "
                "path")}


def shapes(device: torch.device, full: bool, samples: int | None) -> tuple[dict, int]:
    """The clips' shapes and the feature width d: CREMA-D's (d = 512) on a GPU or with ``full``, else toy ones."""
    full = full or device.type == "cuda"
    clips = dict(FULL if full else TINY)
    if samples is not None:
        clips["samples"] = samples
    return clips, 512 if full else 16


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m mmlib bench scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", default="concat,mla,ours", help="comma-separated (default: concat,mla,ours)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    parser.add_argument("--full", action="store_true", help="CREMA-D's real shapes and d = 512 (the default on a GPU)")
    parser.add_argument("--samples", type=int, default=None, help="clips per epoch (default: 512 full, 64 tiny)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=4,
                        help="per method and mode; the first is a warm-up (default: 4)")
    parser.add_argument("--compile", action="store_true",
                        help="also time the data path with torch.compile'd encoders (first epoch: compilation)")
    parser.add_argument("--host-arrays", action="store_true",
                        help="keep the arrays on the host, as for data that does not fit on the device (GPU: "
                             "prefetched batches)")
    parser.add_argument("--checkpoint-dir", default="results", metavar="DIR",
                        help="where ours' timed checkpoints are written, then removed (default: results)")
    parser.add_argument("--determinism", action="store_true",
                        help="also time ours' epoch with and without deterministic algorithms and cudnn.benchmark")
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    if args.epochs < 2 or args.batch_size < 1 or (args.samples is not None and args.samples < args.batch_size):
        parser.error("--epochs must be at least 2 (one warm-up) and --samples at least --batch-size")
    return args


def run(argv: list[str]) -> dict:
    """Measure as :func:`main` does and return the figures (device, shapes, rows, targets)."""
    args = parse_args(argv)
    device = resolve_device(args.device)
    clips, hidden_dim = shapes(device, args.full, args.samples)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    with cpu_threads(device):
        rows = measure(methods, clips, hidden_dim, args.batch_size, args.epochs, device, compiled=args.compile,
                       host_arrays=args.host_arrays, checkpoint_dir=args.checkpoint_dir)
        prices = determinism_prices("ours" if "ours" in methods else methods[0], clips, hidden_dim, args.batch_size,
                                    args.epochs, device) if args.determinism else None
    by_method = {row["method"]: row for row in rows}
    figures = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "clips": clips, "hidden_dim": hidden_dim, "batch_size": args.batch_size, "protocol": "ogm_ge", "rows": rows,
        "targets": TARGETS,
    }
    if "ours" in by_method and "mla" in by_method:
        figures["ours_over_mla"] = by_method["ours"]["epoch_s"] / by_method["mla"]["epoch_s"]
    if "overheads" in by_method.get("ours", {}):
        figures["ours_100_epochs_cremad"] = hundred_epochs(by_method["ours"], import_seconds())
        figures["ours_100_epochs_cremad_s"] = figures["ours_100_epochs_cremad"]["total_s"]
    if prices is not None:
        figures["determinism"] = prices
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
    return figures


def main(argv: list[str]) -> int:
    figures = run(argv)
    print(f"bench scale on {figures['device']} (torch {figures['torch']}), clips {figures['clips']}, d = "
          f"{figures['hidden_dim']}, batch {figures['batch_size']}, protocol ogm_ge, arrays on the "
          f"{figures['rows'][0]['arrays']}")
    print(f"{'method':<8} {'data path/s':>12} {'ceiling/s':>10} {'ratio':>6} {'eval share':>10} {'at CREMA-D':>10} "
          f"{'peak MB':>8}")
    for row in figures["rows"]:
        print(f"{row['method']:<8} {row['data_path_samples_per_s']:>12.1f} {row['ceiling_samples_per_s']:>10.1f} "
              f"{row['data_path_over_ceiling']:>6.2f} {row['shapley_share_of_epoch']:>10.1%} "
              f"{row['shapley_share_cremad_split']:>10.1%} {row['peak_memory_mb']:>8.0f}")
    for row in figures["rows"]:
        if "compiled_over_eager" in row:
            print(f"{row['method']:<8} compiled encoders: {row['compiled_samples_per_s']:.1f}/s, compiled / eager "
                  f"{row['compiled_over_eager']:.2f}, compilation {row['compile_s']:.1f} s")
    for row in figures["rows"]:
        if "orders" in row:
            timed = "; ".join(f"in order {','.join(r['order'])} {r['epoch_s']:.3f} s "
                              f"({r['data_path_samples_per_s']:.1f}/s, {r['data_path_over_ceiling']:.2f} of its "
                              "ceiling)" for r in row["orders"])
            print(f"{row['method']:<8} epoch {timed}; the table reports the slower, {','.join(row['order'])}")
    if "ours_over_mla" in figures:
        print(f"ours / mla epoch time = {figures['ours_over_mla']:.2f} (target <= {TARGETS['ours_over_mla']})")
    print(f"eval share: evaluating the {figures['clips']['samples']} clips (median of {EVAL_REPEATS} after a warm-up, "
          f"under the loop's autocast) against training on them; at CREMA-D: {CREMAD_VAL} validation clips against an "
          f"epoch of {CREMAD_TRAIN}, per clip as measured")
    print(f"targets on a GPU: data path / ceiling >= {TARGETS['data_path_over_ceiling']}, "
          f"evaluation <= {TARGETS['shapley_share_cremad_split']:.0%} of an epoch at CREMA-D")
    if "ours_100_epochs_cremad" in figures:
        whole = figures["ours_100_epochs_cremad"]
        print(f"ours, {whole['epochs']} epochs on CREMA-D, everything included: {whole['total_s'] / 60:.1f} min "
              f"(checkpoints of {whole['checkpoint_mb']:.1f} MB; not included: {whole['left_out']})")
        for part, seconds in whole["parts_s"].items():
            print(f"  {part:<36} {seconds:10.1f} s")
    if "determinism" in figures:
        prices = figures["determinism"]
        print(f"determinism, {prices['method']} epoch ({prices['note']}):")
        for setting in prices["settings"]:
            print(f"  {setting['setting']:<36} {setting['epoch_s']:8.3f} s  {setting['over_loop']:5.2f} x the loop's")
        print(f"  price of bitwise reproducibility: {prices['reproducibility_price']:.2f} x the fastest "
              "non-deterministic epoch")
    return 0
