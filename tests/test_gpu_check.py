"""``gpu_check`` on a bare image: it needs only torch's trio and NumPy, and it cannot come back empty."""

from __future__ import annotations

import importlib.metadata
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

import mmlib.benchmarks.gpu_check as gpu_check
import mmlib.train
from mmlib.data import load_dataset

ROOT = Path(__file__).resolve().parents[1]
IMAGE = ("torch", "torchvision", "torchaudio", "numpy")  # what the GPU image has (with their requirements)
ABSENT = ("pandas", "tqdm", "sklearn", "seaborn", "cv2", "scipy", "threadpoolctl")


def requirement_closure(names: tuple[str, ...]) -> list[importlib.metadata.Distribution]:
    """The installed distributions ``names`` need, themselves included (requirements of extras left out)."""
    found, todo = {}, list(names)
    while todo:
        name = re.split(r"[\s;<>=!~\[(]", todo.pop(), maxsplit=1)[0].lower().replace("_", "-")
        if name in found:
            continue
        try:
            found[name] = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue  # a platform's requirement this machine does not install (CUDA libraries on a CPU build)
        todo += [r for r in found[name].requires or [] if "extra ==" not in r]
    return list(found.values())


def bare_site(folder: Path) -> Path:
    """A site-packages of links to the GPU image's packages only: what a bare image's interpreter can import."""
    folder.mkdir()
    for dist in requirement_closure(IMAGE):
        for top in {file.parts[0] for file in dist.files or [] if file.parts[0] != ".."}:
            if not (folder / top).exists() and Path(dist.locate_file(top)).exists():
                (folder / top).symlink_to(dist.locate_file(top))
    return folder


def wheel_of(name: str, folder: Path) -> Path:
    """A wheel of the installed distribution ``name``, zipped from its files (as ``make gpu-wheels`` would bring it)."""
    dist = importlib.metadata.distribution(name)
    folder.mkdir(exist_ok=True)
    wheel = folder / f"{name}-{dist.version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for file in dist.files:
            if file.parts[0] != ".." and "__pycache__" not in file.parts:
                archive.write(dist.locate_file(file), str(file))
    return wheel


def run_bare(site: Path, *arguments: str) -> subprocess.CompletedProcess:
    """``python -S -s`` (no site-packages, no user site) with only the checkout and ``site`` on its path."""
    return subprocess.run([sys.executable, "-S", "-s", *arguments], cwd=ROOT, capture_output=True, text=True,
                          timeout=600,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{ROOT}:{site}", "MMLIB_CPU_THREADS": "1"})


@pytest.mark.slow  # starts a process that trains five small runs and times ours under five settings (about 2 min)
def test_gpu_check_runs_end_to_end_with_only_the_image_and_the_brought_wheels(tmp_path):
    site = bare_site(tmp_path / "site-packages")
    probe = run_bare(site, "-c", f"import importlib.util as u; print([n for n in {ABSENT!r} if u.find_spec(n)])")
    assert probe.stdout.strip() == "[]", probe.stderr  # the simulation lacks what the image lacks
    wheels = tmp_path / "wheels"
    wheel_of("threadpoolctl", wheels)
    out = tmp_path / "gpu-check.json"

    done = run_bare(site, "-m", "mmlib.benchmarks.gpu_check", "--allow-cpu", "--wheels", str(wheels), "--out", str(out))

    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(out.read_text())
    assert "errors" not in figures and figures["device"] == "cpu" and figures["versions"]["torch"]
    assert [row["method"] for row in figures["bench_scale"]["rows"]] == ["concat", "mla", "ours"]
    whole = figures["bench_scale"]["ours_100_epochs_cremad"]
    assert figures["bench_scale"]["ours_100_epochs_cremad_s"] == pytest.approx(sum(whole["parts_s"].values()))
    assert whole["parts_s"]["training"] > 0 and whole["parts_s"]["checkpoints"] > 0
    assert whole["includes"].split(", ") == [
        "start-up: interpreter and imports", "start-up: arrays to the device", "start-up: model and optimizer",
        "first-epoch warm-up", "training", "validation (every Shapley subset)", "checkpoints", "best-state copies",
        "test"]
    assert whole["left_out"] == "reading the prepared cache from disk, linear probes"  # the image has no scikit-learn
    assert whole["checkpoint_mb"] > 40 and not list(tmp_path.glob("*.ckpt"))  # two ResNet-18s written, then removed
    prices = figures["determinism"]
    assert prices["applicable"] is False and prices["note"].startswith("not applicable on the CPU")
    assert ([s["setting"] for s in prices["settings"]][0] == "deterministic (the loop's)"
            and len(prices["settings"]) == 5)
    assert all(s["epoch_s"] > 0 for s in prices["settings"]) and prices["settings"][0]["over_loop"] == 1.0
    assert sorted(figures["short_runs"]) == ["concat", "mla", "ours"]
    assert figures["resume"]["largest_history_difference"] == 0.0  # the CPU resumes bitwise
    assert figures["skipped"] == dict.fromkeys(("sync_debug", "compile", "host_arrays", "prefetch"),
                                               "CUDA only: torch sees no CUDA device")
    assert list(figures["section_s"]) == ["bench_scale", "determinism", "short_runs", "resume"]
    assert (wheels / "site" / "threadpoolctl.py").exists()


def test_a_failing_section_keeps_the_figures_measured_before_it(tmp_path, monkeypatch):
    out = tmp_path / "gpu-check.json"

    def fail():
        raise RuntimeError("CUDA error: an illegal memory access was encountered\nCUDA kernel errors might be ...")

    monkeypatch.setattr(gpu_check, "sections", lambda device, folder: {
        "first": lambda: {"samples_per_s": 12.5},
        "second": fail,
        "third": lambda: json.loads(out.read_text()),  # what is on disk when the third section starts
    })
    assert gpu_check.main(["--allow-cpu", "--out", str(out)]) == 1

    figures = json.loads(out.read_text())
    assert figures["first"] == {"samples_per_s": 12.5} and "second" not in figures
    assert figures["errors"] == {"second": "RuntimeError: CUDA error: an illegal memory access was encountered"}
    on_disk = figures["third"]
    assert on_disk["first"] == {"samples_per_s": 12.5} and on_disk["errors"] == figures["errors"]
    assert list(figures["section_s"]) == ["first", "second", "third"]


def test_compile_is_skipped_with_its_reason_without_a_compiler_or_python_h(tmp_path, monkeypatch):
    include = tmp_path / "include"
    include.mkdir()
    monkeypatch.setattr(gpu_check.sysconfig, "get_paths", lambda: {"include": str(include)})
    monkeypatch.setattr(gpu_check.shutil, "which", lambda name: None)
    assert gpu_check.missing_toolchain().startswith("no C compiler (cc, gcc or clang) on PATH")
    monkeypatch.setattr(gpu_check.shutil, "which", lambda name: f"/usr/bin/{name}")
    assert gpu_check.missing_toolchain().startswith(f"no {include / 'Python.h'} (Python's development headers)")
    (include / "Python.h").write_text("")
    assert gpu_check.missing_toolchain() is None
    assert gpu_check.skip_reason("compile", "cuda") is None
    assert gpu_check.skip_reason("compile", "cpu") == "CUDA only: torch sees no CUDA device"


def test_unpacked_wheels_hold_their_packages_and_purelib_data_at_the_root(tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    with zipfile.ZipFile(wheels / "demo-1.0-py3-none-any.whl", "w") as archive:
        archive.writestr("demo/__init__.py", "VALUE = 1\n")
        archive.writestr("demo-1.0.dist-info/METADATA", "Name: demo\nVersion: 1.0\n")
        archive.writestr("demo-1.0.data/purelib/demo_extra.py", "")
        archive.writestr("demo-1.0.data/scripts/demo", "#!/bin/sh\n")

    site = gpu_check.unpack_wheels(wheels)

    assert site == wheels / "site"
    assert sorted(p.relative_to(site).as_posix() for p in site.rglob("*") if p.is_file()) == [
        "demo-1.0.dist-info/METADATA", "demo/__init__.py", "demo_extra.py"]


def test_a_missing_wheel_folder_is_one_clear_line(tmp_path, capsys):
    assert gpu_check.main(["--allow-cpu", "--wheels", str(tmp_path / "nowhere")]) == 2
    assert capsys.readouterr().err == (f"gpu-check: wheel folder {tmp_path / 'nowhere'} does not exist; give the "
                                       "folder that holds the .whl files (make gpu-wheels writes .whl/)\n")


def test_steps_run_under_the_sync_debug_mode_and_a_pass_before_them_does_not(monkeypatch):
    modes = []
    monkeypatch.setattr(torch.cuda, "set_sync_debug_mode", modes.append)
    dataset = load_dataset("synthetic")
    debugged = gpu_check.SyncDebugged(dataset)
    assert debugged.splits is dataset.splits  # everything else is the dataset's
    list(debugged.batches("train", 64))  # a pass's table (encode_rows) reads the training split in order
    assert modes == []
    served = debugged.batches("train", 64, shuffle=True, generator=torch.Generator().manual_seed(0))
    first = next(served)
    assert modes == ["error"] and len(first) == 64
    rest = list(served)
    assert modes == ["error", "default"] and len(rest) == -(-len(dataset.splits["train"]) // 64) - 1


def test_the_sync_check_trains_one_epoch_per_method_and_says_where_a_step_waited(monkeypatch):
    modes = []
    monkeypatch.setattr(torch.cuda, "set_sync_debug_mode", modes.append)
    clean = gpu_check.sync_check("cpu", gpu_check.CPU_RUN_CLIPS)
    assert clean == dict.fromkeys(("concat", "mla", "ours"), {"arrays": "host", "waits_for_host": False})
    assert modes.count("error") == modes.count("default") >= 3  # ours makes two passes: two runs of steps

    def waits(*args, **kwargs):
        raise RuntimeError("called a synchronizing CUDA operation\nmore")

    monkeypatch.setattr(mmlib.train, "augment_batch", waits)
    found = gpu_check.sync_check("cpu", gpu_check.CPU_RUN_CLIPS)["ours"]
    assert found["waits_for_host"] and found["error"] == "RuntimeError: called a synchronizing CUDA operation"
    line = next(n for n, text in enumerate(Path(mmlib.train.__file__).read_text().splitlines(), 1)
                if "batch = augment_batch(batch, augmentation" in text)
    assert found["where"] == f"mmlib/train.py:{line} in train_one_epoch"


def test_the_gpu_summary_reads_every_stored_check_and_says_when_there_is_none(tmp_path):
    pattern = tmp_path / "gpu-check*.json"
    text, table = gpu_check.summary(pattern)
    assert table is None and f"no {pattern} exists" in text and "every GPU figure in this book is unmeasured" in text
    row = {"method": "ours", "data_path_samples_per_s": 900.0, "ceiling_samples_per_s": 1000.0,
           "data_path_over_ceiling": 0.9,
           "shapley_share_cremad_split": 0.03}
    for name, device in (("gpu-check-h100.json", "NVIDIA H100"), ("gpu-check-h200.json", "NVIDIA H200")):
        figures = {"device": device, "date": "2026-12-08 10:00 UTC", "versions": {"torch": "2.11.0", "cuda": "13.0"},
                   "bench_scale": {"rows": [row]},
                   "determinism": {"applicable": True, "method": "ours", "reproducibility_price": 1.25},
                   "sync_debug": {"concat": {"waits_for_host": False},
                                  "ours": {"waits_for_host": True, "where": "mmlib/prefix_cache.py:57 in write",
                                           "error": "RuntimeError: called a synchronizing CUDA operation"}}}
        (tmp_path / name).write_text(json.dumps(figures))
    text, table = gpu_check.summary(pattern)
    assert text.count("Measured on NVIDIA H") == 2 and text.index("H100") < text.index("H200")
    assert "makes an epoch of ours take 1.25 times the fastest non-deterministic one" in text
    assert ("A training step waited for the host (CUDA's sync debug mode) in ours at mmlib/prefix_cache.py:57 in write "
            "(RuntimeError: called a synchronizing CUDA operation).") in text
    assert table["device"].tolist() == ["NVIDIA H100", "NVIDIA H200"]


def test_gpu_summary_names_failed_and_skipped_sections(tmp_path):
    figures = {"device": "NVIDIA H100", "date": "2026-12-01 10:00 UTC", "versions": {"torch": "2.11.0", "cuda": "13.0"},
               "errors": {"bench_scale": "RuntimeError: CUDA out of memory"},
               "skipped": {"compile": "no C compiler (cc, gcc or clang) on PATH"},
               "resume": {"largest_history_difference": 0.0}}
    (tmp_path / "gpu-check.json").write_text(json.dumps(figures))
    text, table = gpu_check.summary(tmp_path / "gpu-check.json")
    assert table is None
    assert text.endswith("differs from an uninterrupted one by at most 0 in any logged metric. "
                         "Failed: bench_scale (RuntimeError: CUDA out of memory). "
                         "Skipped: compile (no C compiler (cc, gcc or clang) on PATH).")


@pytest.mark.parametrize("message, described",
                         [("boom", "ValueError: boom"), ("", "ValueError"), ("\n a\nb", "ValueError: a")])
def test_a_section_error_is_its_type_and_first_line(message, described):
    assert gpu_check.describe(ValueError(message)) == described
