"""``make gpu-check``: the GPU path, checked in one command, figures in one JSON file.

Runs on a bare GPU machine that has Python 3.12 with torch / torchaudio / torchvision 2.11.0 and
NumPy and nothing else: no pandas, tqdm, scikit-learn or SciPy, no pip, perhaps no ``make``, and
this project not installed. Run from the checkout with the interpreter that has torch::

    /opt/torch/.venv/bin/python -m mmlib.benchmarks.gpu_check --out gpu-check.json [--wheels .whl]

``--wheels DIR`` unzips every wheel in ``DIR`` into ``DIR/site`` and puts it first on ``sys.path``
(a wheel is a zip file: no pip needed), before the check imports anything of its own beyond the
standard library. It writes (default ``gpu-check.json``), section by section:

* device name, versions, date;
* ``bench_scale``: ``bench scale`` at CREMA-D's shapes for concat, mla and ours (in both orders,
  the slower reported): data path / ceiling, evaluation share of an epoch (warmed, under the
  loop's autocast), ours / mla, peak memory; and a 100-epoch run of ``ours`` on CREMA-D, by part,
  everything the loop does included (start-up, training, validation, checkpoints written beside
  the JSON, test, probes; :func:`mmlib.benchmarks.scale.hundred_epochs`);
* ``determinism``: ours' epoch with the loop's deterministic algorithms and without, with and
  without ``cudnn.benchmark`` and ``fill_uninitialized_memory``: the price of bitwise
  reproducibility (on the CPU the path runs and is marked not applicable);
* ``sync_debug`` (CUDA): one training epoch of concat, mla and ours with every step run under
  ``torch.cuda.set_sync_debug_mode("error")``: whether a step waits for the host, and where;
* ``compile`` (CUDA): ``bench scale --compile`` for concat: compiled / eager samples per second
  and the compilation time; skipped with its reason when no C compiler or no ``Python.h`` is
  found (Triton builds a C module at first use);
* ``host_arrays`` (CUDA): ``bench scale --host-arrays`` for concat and ours: the arrays left on
  the host, as for a dataset too large for the device, so batches come through the side-stream
  prefetcher;
* ``prefetch`` (CUDA): whether those batches, and the batches of arrays kept on the device, hold
  exactly the rows, labels and values of the CPU's gather;
* ``short_runs``: a 3-epoch ``ogm_ge``-protocol run of concat, mla and ours on 256 fabricated
  clips through the real ``train``: wall time per epoch and test accuracy (meaningless on random
  data, but finite);
* ``resume``: ``ours`` stopped after epoch 1 and resumed, against an uninterrupted run: the
  largest difference of any logged metric (bf16 autocast and cuDNN may make it nonzero).

The JSON is replaced atomically after every section, so a section that fails, or a run that is
killed, keeps every figure measured before it. A section that raises records its error (type and
first line) under ``errors`` and the check goes on; one that cannot run here records why under
``skipped``; ``section_s`` holds each section's seconds. The exit status is 0 when every section
that could run did, 1 when one failed, 2 when the check could not start.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import sysconfig
import tempfile
import time
import traceback
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:  # pandas is optional on the bare GPU image; imported lazily where used
    import pandas as pd

RUN_CLIPS = {"samples": 256, "size": 224, "duration": 3.0, "n_fft": 512}
# --allow-cpu: the smallest run that exercises every step
CPU_BENCH = ["--samples", "16", "--batch-size", "8", "--epochs", "2"]
CPU_RUN_CLIPS = {"samples": 16, "size": 32, "duration": 0.5, "n_fft": 62}
CUDA_SECTIONS = ("compile", "host_arrays", "prefetch", "sync_debug")
SYNC_CLIPS = {**RUN_CLIPS, "samples": 64}  # one epoch per method under the sync debug mode
TORCH_PYTHON = "/opt/torch/.venv/bin/python"  # the GPU image's interpreter that has torch


def unpack_wheels(folder: str | Path) -> Path:
    """Every ``*.whl`` in ``folder`` unzipped into ``folder/site``, which is returned.

    A wheel is a zip file whose root is its site-packages tree; files under ``NAME.data/purelib``
    or ``NAME.data/platlib`` move to that root, the rest of ``NAME.data`` (scripts, headers) is left
    out. No pip, no compilation, no network.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"wheel folder {folder} does not exist; give the folder that holds the .whl files "
                         "(make gpu-wheels writes .whl/)")
    site = folder / "site"
    for wheel in sorted(folder.glob("*.whl")):
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(site)
    for data in site.glob("*.data"):
        for scheme in ("purelib", "platlib"):
            if (data / scheme).is_dir():
                shutil.copytree(data / scheme, site, dirs_exist_ok=True)
        shutil.rmtree(data)
    return site


def missing_toolchain() -> str | None:
    """Why Triton could not build its C helper module here (no C compiler, no ``Python.h``), or None."""
    if not any(shutil.which(compiler) for compiler in ("cc", "gcc", "clang")):
        return "no C compiler (cc, gcc or clang) on PATH; torch.compile's Triton backend builds a C module at first use"
    header = Path(sysconfig.get_paths()["include"]) / "Python.h"
    if not header.exists():
        return (f"no {header} (Python's development headers); torch.compile's Triton backend builds a C module at "
                "first use")
    return None


def describe(error: BaseException) -> str:
    """``TypeName: first line of the message``: what a failed section records."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


def write_figures(path: Path, figures: dict) -> None:
    """``figures`` as indented JSON onto ``path``, atomically: a reader never sees a half-written file."""
    from mmlib.results import replace_atomically

    replace_atomically(path, lambda handle: handle.write(json.dumps(figures, indent=1).encode()))


def run_section(figures: dict, name: str, measure: Callable[[], object], out: Path) -> None:
    """``figures[name] = measure()``; if it raises, its error under ``figures["errors"][name]`` instead.
    Either way the section's seconds are added and the figures written to ``out``."""
    started = time.perf_counter()
    print(f"gpu-check: {name} ...", flush=True)
    try:
        figures[name] = measure()
    except Exception as error:  # a failing section must not lose the others' figures
        figures.setdefault("errors", {})[name] = describe(error)
        print(f"gpu-check: {name} failed: {describe(error)}", file=sys.stderr, flush=True)
    figures.setdefault("section_s", {})[name] = time.perf_counter() - started
    write_figures(out, figures)


def skip_reason(name: str, device: str) -> str | None:
    """Why section ``name`` cannot run on ``device`` here, or None."""
    if name in CUDA_SECTIONS and device != "cuda":
        return "CUDA only: torch sees no CUDA device"
    return missing_toolchain() if name == "compile" else None


def _largest_difference(a: list[dict], b: list[dict]) -> float:
    """The largest absolute difference between numeric entries of two histories."""
    largest = 0.0
    for left, right in zip(a, b):
        for key, value in left.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                largest = max(largest, abs(value - right[key]))
    return largest


def _ogm_ge_config(device: str, clips: dict, method: str):
    """A 3-epoch ``ogm_ge``-protocol run of ``method`` on fabricated CREMA-D clips, without probes."""
    from mmlib.config import TrainConfig

    return TrainConfig.from_protocol("ogm_ge", dataset="cremad_fabricated", dataset_options=dict(clips), method=method,
                                     epochs=3, probe=False, device=device)


def short_runs(device: str, clips: dict) -> dict:
    """3-epoch runs of concat, mla and ours under the ogm_ge protocol: wall time, test accuracy, losses."""
    from mmlib.train import train

    runs = {}
    for method in ("concat", "mla", "ours"):
        record = train(_ogm_ge_config(device, clips, method), progress=False)
        runs[method] = {"wall_s": record["wall_time_s"], "epoch_s": record["wall_time_s"] / 3,
                        "test_fused_acc": record["test"]["fused_acc"],
                        "train_loss": [h["train_loss"] for h in record["history"]]}
    return runs


def resume_check(device: str, clips: dict) -> dict:
    """``ours`` stopped after epoch 1 and resumed against an uninterrupted run: their largest difference."""
    from mmlib.train import train

    config = _ogm_ge_config(device, clips, "ours")
    uninterrupted = train(config, progress=False)
    with tempfile.TemporaryDirectory() as folder:
        train(config, checkpoint_dir=folder, progress=False, stop_after_epoch=1)
        resumed = train(config, checkpoint_dir=folder, resume=True, progress=False)
    return {"largest_history_difference": _largest_difference(uninterrupted["history"], resumed["history"]),
            "test_fused_acc": [uninterrupted["test"]["fused_acc"], resumed["test"]["fused_acc"]]}


def prefetch_check(device: str) -> dict:
    """Batches prefetched to ``device`` from host arrays, and batches of the arrays moved to ``device``
    (:meth:`MultimodalDataset.on_device`), against the CPU's gather of the same rows."""
    import torch

    from mmlib.data import load_dataset

    dataset = load_dataset("cremad_fabricated", samples=40, size=64, duration=0.5,
                           n_fft=62).with_frame_normalization("imagenet")
    found = {}
    for name, source in (("prefetched", dataset), ("resident", dataset.on_device(device))):
        same_rows, largest = True, 0.0
        for moved, host in zip(source.batches("train", 16, shuffle=True, generator=torch.Generator().manual_seed(1),
                                              device=device),
                               dataset.batches("train", 16, shuffle=True, generator=torch.Generator().manual_seed(1))):
            same_rows &= torch.equal(moved.index.cpu(), host.index) and torch.equal(moved.labels.cpu(), host.labels)
            for m in dataset.modalities:
                largest = max(largest, float((moved.inputs[m].cpu() - host.inputs[m]).abs().max()))
        found[name] = {"arrays": "device" if source.resident else "host", "same_rows_and_labels": bool(same_rows),
                       "largest_input_difference": largest}
    return {**found["prefetched"], "resident": found["resident"]}


class SyncDebugged:
    """A dataset whose training batches are served under ``torch.cuda.set_sync_debug_mode("error")``:
    set when the first batch is asked for, reset to ``default`` when the last is done, so every step
    of a pass runs under it and what a pass does once (``begin_pass``, the epoch's final loss read)
    does not. Everything else is delegated to the wrapped dataset."""

    def __init__(self, dataset) -> None:
        self._dataset = dataset

    def batches(self, split, batch_size, shuffle=False, generator=None, device="cpu", **options):
        served = self._dataset.batches(split, batch_size, shuffle=shuffle, generator=generator, device=device,
                                       **options)
        # the steps' batches, not a pass's table
        return self._debugged(served) if split == "train" and shuffle else served

    @staticmethod
    def _debugged(batches):
        import torch

        torch.cuda.set_sync_debug_mode("error")
        try:
            yield from batches
        finally:
            torch.cuda.set_sync_debug_mode("default")

    def __getattr__(self, name):
        return getattr(self._dataset, name)


def where_in_mmlib(error: BaseException) -> str | None:
    """``path:line in function`` of the innermost frame of ``error``'s traceback inside the mmlib package."""
    root = Path(__file__).resolve().parents[1]
    frames = [f for f in traceback.extract_tb(error.__traceback__) if Path(f.filename).resolve().is_relative_to(root)]
    if not frames:
        return None
    frame = frames[-1]
    return f"{Path(frame.filename).resolve().relative_to(root.parent).as_posix()}:{frame.lineno} in {frame.name}"


def sync_check(device: str, clips: dict) -> dict:
    """Per method (concat, mla, ours): one ``ogm_ge``-protocol training epoch of the loop's ``train_one_epoch``
    on arrays kept on the device, every step under the sync debug mode (:class:`SyncDebugged`).
    ``waits_for_host`` False: no step synchronised; True: the first synchronising call, and where."""
    import torch

    from mmlib.runtime import resolve_device, seed_everything
    from mmlib.train import AUGMENT_SEED_OFFSET, build_model, build_optimizer, load_config_dataset, train_one_epoch

    found, target = {}, resolve_device(device)
    for method in ("concat", "mla", "ours"):
        config = _ogm_ge_config(device, clips, method)
        seed_everything(config.seed)
        dataset = load_config_dataset(config).on_device(target)
        model = build_model(config, dataset).to(target)
        if target.type == "cuda":
            model = model.to(memory_format=torch.channels_last)
        augmentation = torch.Generator().manual_seed(config.seed + AUGMENT_SEED_OFFSET)
        try:
            train_one_epoch(model, SyncDebugged(dataset), build_optimizer(config, model), config, 1,
                            torch.Generator().manual_seed(config.seed), target, False, augmentation)
            found[method] = {"arrays": "device" if dataset.resident else "host", "waits_for_host": False}
        except RuntimeError as error:
            if "synchroniz" not in str(error):
                raise
            found[method] = {"arrays": "device" if dataset.resident else "host", "waits_for_host": True,
                             "error": describe(error), "where": where_in_mmlib(error)}
    return found


def bench_scale(device: str, folder: Path) -> dict:
    """``bench scale`` for concat, mla and ours, with ours' 100 epochs on CREMA-D, everything included; its
    checkpoints are timed in ``folder`` (the JSON's) and removed."""
    from mmlib.benchmarks import scale

    return scale.run(["--device", device, "--epochs", "3", "--checkpoint-dir", str(folder)]
                     + ([] if device == "cuda" else CPU_BENCH))


def determinism(device: str) -> dict:
    """Ours' epoch with and without the loop's deterministic settings
    (:func:`mmlib.benchmarks.scale.determinism_prices`)."""
    import torch

    from mmlib.benchmarks import scale
    from mmlib.runtime import cpu_threads

    target = torch.device(device)
    small = device != "cuda"
    clips, hidden_dim = scale.shapes(target, False, 16 if small else None)
    with cpu_threads(target):
        return scale.determinism_prices("ours", clips, hidden_dim, 8 if small else 64, 2 if small else 3, target)


def compile_check(device: str) -> dict:
    """``bench scale --compile`` for concat: compiled / eager samples per second and the compilation time."""
    from mmlib.benchmarks import scale

    return scale.run(["--device", device, "--epochs", "3", "--methods", "concat", "--compile"])["rows"][0]


def host_arrays(device: str) -> list[dict]:
    """``bench scale --host-arrays`` for concat and ours: batches through the side-stream prefetcher."""
    from mmlib.benchmarks import scale

    return scale.run(["--device", device, "--epochs", "3", "--methods", "concat,ours", "--host-arrays"])["rows"]


def sections(device: str, folder: Path) -> dict[str, Callable[[], object]]:
    """The check's sections in the order they run: name and what measures it (``folder``: the JSON's)."""
    clips = RUN_CLIPS if device == "cuda" else CPU_RUN_CLIPS
    return {
        "bench_scale": lambda: bench_scale(device, folder),
        "determinism": lambda: determinism(device),
        "sync_debug": lambda: sync_check(device, SYNC_CLIPS if device == "cuda" else CPU_RUN_CLIPS),
        "compile": lambda: compile_check(device),
        "host_arrays": lambda: host_arrays(device),
        "prefetch": lambda: prefetch_check(device),
        "short_runs": lambda: short_runs(device, clips),
        "resume": lambda: resume_check(device, clips),
    }


def summary(path: str | Path, shown_as: str | None = None) -> tuple[str, "pd.DataFrame | None"]:
    """A paragraph and a table of the figures in a ``gpu-check.json``, or a paragraph saying there is none.

    ``path`` may be a pattern (``data/measurements/gpu-check*.json``): every file it matches is
    summarised, in name order, and their tables stacked with a ``device`` column. Sections that
    failed or were skipped are named with their error or reason; the table holds the bench rows
    measured (None when there are none). ``shown_as``: how the text names ``path`` (a chapter passes
    the repository-relative pattern, never the build machine's absolute path)."""
    import pandas as pd

    path = Path(path)
    found = (sorted(path.parent.glob(path.name)) if any(c in path.name for c in "*?[")
             else ([path] if path.exists() else []))
    if not found:
        return (f"No GPU measurement is stored with the book (no {shown_as or path} exists): "
                "no run of this book has been "
                "timed on a GPU yet, and every GPU figure in this book is unmeasured. On a GPU machine, `make "
                "gpu-check` writes `gpu-check.json`; copy it into that folder and rebuild this chapter to show its "
                "figures here."), None
    if len(found) > 1:
        parts = [summary(one) for one in found]
        tables = [table.assign(device=json.loads(one.read_text())["device"])
                  for one, (_, table) in zip(found, parts) if table is not None]
        return " ".join(text for text, _ in parts), pd.concat(tables, ignore_index=True) if tables else None
    figures = json.loads(found[0].read_text())
    bench = figures.get("bench_scale", {})
    rows = bench.get("rows", []) + figures.get("host_arrays", [])
    table = pd.DataFrame({
        "method": [r["method"] for r in rows],
        "arrays on": [r.get("arrays", "device") for r in rows],
        "data path (clips/s)": [round(r["data_path_samples_per_s"]) for r in rows],
        "ceiling (clips/s)": [round(r["ceiling_samples_per_s"]) for r in rows],
        "data path / ceiling": [round(r["data_path_over_ceiling"], 2) for r in rows],
        "evaluation / epoch at CREMA-D": [f"{r['shapley_share_cremad_split']:.1%}" for r in rows],
    }) if rows else None
    text = (f"Measured on {figures['device']} on {figures['date']} (torch {figures['versions']['torch']}, "
            f"CUDA {figures['versions']['cuda']}) at CREMA-D's shapes under the ogm_ge protocol.")
    if "ours_100_epochs_cremad_s" in bench:
        whole = bench.get("ours_100_epochs_cremad", {})
        parts = (f"{whole['includes']}; not included: {whole['left_out']}" if whole
                 else "extrapolated from the measured epoch")
        text += (f" Ours takes {bench.get('ours_over_mla', float('nan')):.2f} MLA epochs per epoch, and 100 epochs of "
                 f"ours on CREMA-D would take about {bench['ours_100_epochs_cremad_s'] / 60:.1f} minutes ({parts}).")
    prices = figures.get("determinism", {})
    if prices.get("applicable"):
        text += (f" Bitwise reproducibility (the loop's deterministic algorithms, no cudnn.benchmark) makes an epoch "
                 f"of {prices['method']} take {prices['reproducibility_price']:.2f} times the fastest "
                 "non-deterministic one.")
    if "sync_debug" in figures:
        waiting = {m: r for m, r in figures["sync_debug"].items() if r["waits_for_host"]}
        methods = ", ".join(figures["sync_debug"])
        text += (f" Under CUDA's sync debug mode no training step of {methods} waited for the host." if not waiting else
                 " A training step waited for the host (CUDA's sync debug mode) in " + "; ".join(
                     f"{m} at {r['where']} ({r['error']})" for m, r in waiting.items()) + ".")
    if "resume" in figures:
        text += (" A run resumed on the GPU differs from an uninterrupted one by at most "
                 f"{figures['resume']['largest_history_difference']:.3g} in any logged metric.")
    for heading, entries in (("Failed", figures.get("errors", {})), ("Skipped", figures.get("skipped", {}))):
        if entries:
            text += f" {heading}: " + "; ".join(f"{name} ({why})" for name, why in entries.items()) + "."
    return text, table


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m mmlib.benchmarks.gpu_check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="gpu-check.json", help="where the figures go (default: gpu-check.json)")
    parser.add_argument("--wheels", default=None, metavar="DIR",
                        help="unzip the wheels in DIR into DIR/site and import from there first (make gpu-wheels "
                             "writes .whl/)")
    parser.add_argument("--allow-cpu", action="store_true", help="run on the CPU at toy scale (to test this script)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.wheels is not None:
        try:
            sys.path.insert(0, str(unpack_wheels(args.wheels)))
        except ValueError as error:
            print(f"gpu-check: {error}", file=sys.stderr)
            return 2
    try:
        import torch
    except ImportError as error:
        print(f"gpu-check: {sys.executable} cannot import torch ({describe(error)}); run it with the interpreter that "
              f"has torch (on the GPU image {TORCH_PYTHON})", file=sys.stderr)
        return 2
    if not torch.cuda.is_available() and not args.allow_cpu:
        print("gpu-check: torch sees no CUDA device; run it on a GPU machine (or pass --allow-cpu to test the script)")
        return 2
    from mmlib.doctor import installed_versions

    started, out = time.perf_counter(), Path(args.out)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    figures = {"device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
               "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "python": sys.executable,
               "versions": {**installed_versions(), "python": platform.python_version(), "cuda": torch.version.cuda}}
    write_figures(out, figures)
    for name, measure in sections(device, out.resolve().parent).items():
        reason = skip_reason(name, device)
        if reason is None:
            run_section(figures, name, measure, out)
        else:
            figures.setdefault("skipped", {})[name] = reason
    figures["wall_s"] = time.perf_counter() - started
    write_figures(out, figures)
    print(json.dumps({k: v for k, v in figures.items() if k != "bench_scale"}, indent=1))
    failed = figures.get("errors", {})
    print(f"gpu-check: figures written to {out}" + (f"; {len(failed)} section(s) failed: "
                                                    f"{', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
