"""Failing well: a user's mistake is one line and exit status 2, nothing is silently wrong, and
nothing stored is lost to a kill, a second process or a failed write."""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from fabricate import cremad_names, fabricate_cremad

from mmlib import chapters
from mmlib.__main__ import main as mmlib_main
from mmlib.chapters import ChapterError, ChapterFailed, run_chapter
from mmlib.data import cache as cache_module
from mmlib.data.base import stratified_split
from mmlib.data.cache import build_cache, load_cache, read_manifest
from mmlib.data.cremad import plan_cremad
from mmlib.data.media import MediaError, load_audio
from mmlib.results import find_record, read_record, record_paths, records_frame, save_record
from mmlib.config import TrainConfig
from mmlib.train import save_checkpoint, train

SMALL_CACHE = dict(frames=2, size=8, sample_rate=8000, duration=0.25, n_fft=32, hop=16, val_fraction=0.25,
                   test_fraction=0.25)
TRAIN_ARGS = ["train", "--dataset", "synthetic", "--data", "num_samples=200", "--epochs", "1", "--hidden-dim", "8",
              "--probe", "false", "--quiet"]

TINY_CHAPTER = '''# %% tags=["parameters"]
mode: str = "ok"  # ok | raise | kill | sleep

# %%
import os
import time
if mode == "sleep":
    time.sleep(120)
if mode == "raise":
    raise ValueError("asked to fail")
if mode == "kill":
    os.kill(os.getpid(), 9)
print("good run")
'''


def small_config(**changes) -> TrainConfig:
    base = dict(dataset="synthetic", dataset_options={"num_samples": 200}, method="concat", epochs=2, batch_size=32,
                hidden_dim=8, seed=0, probe=False, device="cpu")
    return TrainConfig(**{**base, **changes})


def as_stored(record: dict) -> dict:
    """``record`` as the store reads it back (JSON types)."""
    return json.loads(json.dumps(record))


def run_main(capsys, *argv) -> tuple[int, str, str]:
    code = mmlib_main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


# --- chapters -------------------------------------------------------------------------------------


@pytest.fixture
def tiny_book(tmp_path):
    """A one-cell chapter in its own notebook folder, run once successfully into ``out/``."""
    (tmp_path / "nb").mkdir()
    (tmp_path / "nb" / "tiny.py").write_text(TINY_CHAPTER)
    good = run_chapter("tiny", {}, output_dir=tmp_path / "out", notebook_dir=tmp_path / "nb")
    return tmp_path, good, good.read_bytes()


def test_killed_chapter_keeps_the_last_good_notebook(tiny_book):
    root, good, good_bytes = tiny_book
    with pytest.raises(ChapterFailed) as caught:
        run_chapter("tiny", {"mode": "kill"}, output_dir=root / "out", notebook_dir=root / "nb")
    assert good.read_bytes() == good_bytes
    assert "DeadKernelError" in str(caught.value) and f"{good} still holds the last good run" in str(caught.value)
    assert (root / "out" / "tiny.failed.ipynb").is_file()
    assert sorted(p.name for p in (root / "out").iterdir()) == ["tiny.failed.ipynb", "tiny.ipynb"]  # no temporary left


def test_interrupted_chapter_keeps_the_last_good_notebook(tiny_book):
    root, good, good_bytes = tiny_book
    program = ("import sys; from mmlib.chapters import run_chapter\n"
               "try:\n    run_chapter('tiny', {'mode': 'sleep'}, output_dir=sys.argv[1], notebook_dir=sys.argv[2])\n"
               "except KeyboardInterrupt:\n    sys.exit(130)\n")
    proc = subprocess.Popen([sys.executable, "-c", program, str(root / "out"), str(root / "nb")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while not list((root / "out").glob(".tiny-*.ipynb")) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(3)  # the sleeping cell is running
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    assert good.read_bytes() == good_bytes
    assert sorted(p.name for p in (root / "out").iterdir()) == ["tiny.failed.ipynb", "tiny.ipynb"]


def test_ctrl_c_in_the_chapter_command_is_one_line_and_exit_130(tiny_book):
    root, good, good_bytes = tiny_book
    program = ("import functools, sys; from mmlib import chapters; from mmlib.__main__ import main\n"
               "chapters.run_chapter = functools.partial(chapters.run_chapter, notebook_dir=sys.argv[2])\n"
               "sys.exit(main(['chapter', 'tiny', '-p', 'mode', 'sleep', '--output-dir', sys.argv[1]]))\n")
    proc = subprocess.Popen([sys.executable, "-c", program, str(root / "out"), str(root / "nb")],
                            stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while not list((root / "out").glob(".tiny-*.ipynb")) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(3)  # the sleeping cell is running
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C: to the whole foreground process group
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert err == (f"mmlib chapter: tiny interrupted (its copy: {root / 'out' / 'tiny.failed.ipynb'}); {good} still "
                   "holds the last good run\n")
    assert good.read_bytes() == good_bytes
    assert sorted(p.name for p in (root / "out").iterdir()) == ["tiny.failed.ipynb", "tiny.ipynb"]


def test_failing_chapter_names_the_cell_and_error_in_a_few_lines(tiny_book):
    root, good, good_bytes = tiny_book
    with pytest.raises(ChapterFailed) as caught:
        run_chapter("tiny", {"mode": "raise"}, output_dir=root / "out", notebook_dir=root / "nb")
    lines = str(caught.value).splitlines()
    assert lines == [
        "chapter tiny failed in cell 2 (`import os`): ValueError: asked to fail",
        f"  the executed copy with the error: {root / 'out' / 'tiny.failed.ipynb'}",
        f"  {good} still holds the last good run",
    ]
    assert good.read_bytes() == good_bytes


def test_chapter_count_parameter_below_one_is_refused_before_running(capsys):
    assert chapters.main(["main_comparison", "-p", "seeds", "-1"]) == 2
    assert capsys.readouterr().err == ("mmlib chapter: chapter 'main_comparison': parameter 'seeds' must be at least "
                                       "1, got -1\n")
    with pytest.raises(ChapterError, match="'epochs' must be at least 1, got 0"):
        chapters.check_parameters("x", chapters.chapter_parameters("main_comparison"), {"epochs": 0})


# --- training: folders, NaN, two processes, the thread count ---------------------------------------


def test_nan_loss_stops_without_a_record(tmp_path):
    with pytest.raises(ValueError, match=r"training loss became nan in epoch 1 of concat-synthetic-s0-\w+; the run is "
                                         r"stopped and no record is stored \(lower the learning rate, now 1e\+30; the "
                                         r"training inputs are finite\)"):
        train(small_config(lr=1e30), results_dir=tmp_path / "runs", checkpoint_dir=tmp_path / "ckpt", progress=False)
    assert list((tmp_path / "runs").iterdir()) == [] and list((tmp_path / "ckpt").iterdir()) == []


@pytest.mark.parametrize("folder", ["results_dir", "checkpoint_dir"])
def test_unusable_folder_is_refused_before_training(tmp_path, monkeypatch, folder):
    (tmp_path / "taken").write_text("a file, not a folder")
    monkeypatch.setattr("mmlib.train.load_config_dataset", lambda config: pytest.fail("training started"))
    what = "results folder" if folder == "results_dir" else "checkpoint folder"
    with pytest.raises(ValueError, match=f"{what} {tmp_path / 'taken'} is a file, not a folder"):
        train(small_config(), progress=False, **{folder: tmp_path / "taken"})
    with pytest.raises(ValueError, match=f"{what} {tmp_path / 'taken' / 'sub'} is not a writable folder"):
        train(small_config(), progress=False, **{folder: tmp_path / "taken" / "sub"})


def test_failed_record_write_names_the_checkpoint_that_stores_it_on_resume(tmp_path, monkeypatch):
    config = small_config()
    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr("mmlib.train.store_run", disk_full)
        with pytest.raises(OSError, match=r"\(No space left on device\); checkpoint .*\.ckpt holds every epoch: .* "
                                          r"rerun with resume"):
            train(config, results_dir=tmp_path / "runs", checkpoint_dir=tmp_path / "ckpt", progress=False)
    monkeypatch.setattr("mmlib.train.train_one_epoch", lambda *args: pytest.fail("trained again"))
    record = train(config, results_dir=tmp_path / "runs", checkpoint_dir=tmp_path / "ckpt", resume=True, progress=False)
    assert len(record["history"]) == 2 and find_record(tmp_path / "runs", config.run_id) == as_stored(record)


def file_size_limit(limit: int, ignore_sigxfsz: bool = False):
    """A child's ``preexec_fn``: no file beyond ``limit`` bytes can be written (``ulimit -f``); with
    ``ignore_sigxfsz`` such a write fails with EFBIG instead of the signal killing the child."""
    def limit_files():
        if ignore_sigxfsz:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    return limit_files


def test_checkpoint_write_past_the_file_size_limit_names_the_cause_and_keeps_the_last(tmp_path):
    path = tmp_path / "run.ckpt"
    save_checkpoint(path, {"weights": torch.zeros(10)})
    before = path.read_bytes()
    program = ("import sys, torch; from pathlib import Path; from mmlib.train import save_checkpoint\n"
               "try:\n    save_checkpoint(Path(sys.argv[1]), {'weights': torch.zeros(10000)})\n"
               "except OSError as error:\n    sys.exit(str(error))\n")
    out = subprocess.run([sys.executable, "-c", program, str(path)], capture_output=True, text=True,
                         env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
                         preexec_fn=file_size_limit(4096, ignore_sigxfsz=True))
    assert out.returncode == 1
    assert re.fullmatch(rf"cannot write checkpoint run.ckpt into {re.escape(str(tmp_path))} \(file too large: the "
                        rf"file-size limit \(ulimit -f\) is 4.1 kB, the file needs 4\d.\d kB\); {re.escape(str(path))} "
                        rf"still holds the last finished epoch: free space, raise the limit or choose another "
                        r"checkpoint folder and rerun with resume\n",
                        out.stderr), out.stderr
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["run.ckpt"]  # no temporary left


def test_train_under_a_file_size_limit_too_small_for_its_checkpoint_is_one_line_and_exit_2(tmp_path):
    config = TrainConfig(dataset="synthetic", dataset_options={"num_samples": 200}, epochs=2, hidden_dim=8, probe=False)
    train(config, checkpoint_dir=tmp_path / "ckpt", stop_after_epoch=1, progress=False)
    (path,) = (tmp_path / "ckpt").iterdir()
    before = path.read_bytes()
    out = subprocess.run([sys.executable, "-m", "mmlib", *TRAIN_ARGS, "--epochs", "2", "--resume", "--results-dir",
                          str(tmp_path / "runs"), "--checkpoint-dir", str(tmp_path / "ckpt")], capture_output=True,
                         text=True,
                         env={**os.environ, "TQDM_DISABLE": "1", "PYTHONDONTWRITEBYTECODE": "1"},
                         preexec_fn=file_size_limit(1024))
    assert out.returncode == 2
    assert re.fullmatch(rf"mmlib train: checkpoint folder {re.escape(str(path.parent))} cannot hold the checkpoint of "
                        rf"{config.run_id} \(file too large: the file-size limit \(ulimit -f\) is 1.0 kB, the file "
                        rf"needs [\d.]+ kB\); free space, raise the limit or choose another checkpoint folder before "
                        r"training\n", out.stderr), out.stderr
    assert path.read_bytes() == before and [p.name for p in path.parent.iterdir()] == [path.name]
    assert list((tmp_path / "runs").iterdir()) == []


def test_checkpoint_larger_than_the_free_space_is_refused_before_training(tmp_path, monkeypatch):
    monkeypatch.setattr("mmlib.results.shutil.disk_usage",
                        lambda folder: shutil._ntuple_diskusage(10**9, 10**9 - 1000, 1000))
    monkeypatch.setattr("mmlib.train.train_one_epoch", lambda *args: pytest.fail("training started"))
    with pytest.raises(OSError,
                       match=rf"checkpoint folder {tmp_path} cannot hold the checkpoint of concat-synthetic-s0-\w+ "
                                      rf"\(disk full: 1.0 kB free, the file needs [\d.]+ kB\); free space"):
        train(small_config(), checkpoint_dir=tmp_path, progress=False)


def test_two_processes_training_one_config_store_exactly_one_record(tmp_path):
    args = [sys.executable, "-m", "mmlib", *TRAIN_ARGS, "--epochs", "3", "--results-dir", str(tmp_path / "runs"),
            "--checkpoint-dir", str(tmp_path / "ckpt")]
    env = {**os.environ, "TQDM_DISABLE": "1"}
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(2)]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert all(err == "" for _, err in outputs), outputs
    (path,) = record_paths(tmp_path / "runs")
    record = read_record(path)
    assert all(f"record {tmp_path / 'runs'}/{record['run_id']}.json" in out for out, _ in outputs)
    assert [p.name for p in (tmp_path / "ckpt").iterdir()] == [f"{record['run_id']}.ckpt"]  # no temporary left
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == [path.name]


def test_record_carries_the_cpu_thread_count(monkeypatch):
    monkeypatch.setenv("MMLIB_CPU_THREADS", "2")
    assert train(small_config(epochs=1), progress=False)["environment"]["cpu_threads"] == 2


@pytest.mark.parametrize("value", ["0", "abc", "-1"])
def test_bad_cpu_thread_count_is_one_line(capsys, monkeypatch, tmp_path, value):
    monkeypatch.setenv("MMLIB_CPU_THREADS", value)
    code, _, err = run_main(capsys, *TRAIN_ARGS, "--results-dir", str(tmp_path))
    assert (code, err) == (2, ("mmlib train: MMLIB_CPU_THREADS must be a positive whole number of CPU threads, "
                               f"got {value!r}; unset it for 1\n"))


# --- the results store ----------------------------------------------------------------------------


def test_records_are_created_with_the_umask_mode(tmp_path):
    record = {"run_id": "concat-synthetic-s0-0123456789ab"}
    previous = os.umask(0o027)
    try:
        path = save_record(record, tmp_path)
    finally:
        os.umask(previous)
    assert path.stat().st_mode & 0o777 == 0o640


def test_store_ignores_files_it_did_not_write(tmp_path):
    record = train(small_config(epochs=1), results_dir=tmp_path, progress=False)
    (tmp_path / f"{record['run_id']}-backup.json").write_text("{\"my\": \"notes\"}")
    (tmp_path / "summary.json").write_text("[1, 2]")
    assert train(small_config(epochs=1), results_dir=tmp_path, progress=False) == as_stored(record)
    assert [read_record(path) for path in record_paths(tmp_path)] == [as_stored(record)]


def test_corrupt_record_is_named(tmp_path):
    record = train(small_config(epochs=1), results_dir=tmp_path, progress=False)
    path = tmp_path / f"{record['run_id']}.json"
    path.write_text(path.read_text()[:100])
    with pytest.raises(ValueError, match=rf"record {path} is not valid JSON .*delete it to train that run again"):
        find_record(tmp_path, record["run_id"])


def test_record_without_test_is_named(tmp_path):
    record = train(small_config(epochs=1), results_dir=tmp_path, progress=False)
    path = tmp_path / f"{record['run_id']}.json"
    path.write_text(json.dumps({k: v for k, v in record.items() if k != "test"}))
    with pytest.raises(ValueError, match=rf"record {path} lacks 'test': it is not a finished run's record"):
        train(small_config(epochs=1), results_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match=rf"record {record['run_id']} lacks 'test'"):
        records_frame([{k: v for k, v in record.items() if k != "test"}])


# --- the train command ----------------------------------------------------------------------------


@pytest.mark.parametrize("extra, message", [
    (["--modalities", ""], "mmlib train: dataset 'synthetic': no modality given; choose from ['m0', 'm1']"),
    (["--results-dir", ""], "mmlib train: results folder is empty; give a folder (e.g. results/runs)"),
    (["--device", "foo"], "mmlib train: unknown device 'foo'; choose auto, cpu, cuda or cuda:N"),
    (["--data", "seed=abc"],
     "mmlib train: --data seed=abc: option 'seed' of dataset 'synthetic' expects int (default 0), got 'abc'"),
])
def test_train_mistake_is_one_line_naming_it(capsys, tmp_path, extra, message):
    code, _, err = run_main(capsys, *TRAIN_ARGS, "--checkpoint-dir", str(tmp_path / "ckpt"), *extra)
    assert (code, err) == (2, message + "\n")


@pytest.mark.parametrize("flag, value, expected", [
    ("--lr", "inf", "a finite learning rate above 0 (the book's is 1e-3), got inf"),
    ("--lr", "nan", "a finite learning rate above 0 (the book's is 1e-3), got nan"),
    ("--lr", "-0.1", "a finite learning rate above 0 (the book's is 1e-3), got -0.1"),
    ("--lr", "0", "a finite learning rate above 0 (the book's is 1e-3), got 0.0"),
    ("--weight-decay", "-1e-4", "a finite number, at least 0 (0: no decay), got -0.0001"),
    ("--lr-gamma", "nan", "a factor in (0, 1] that each step of the schedule multiplies the rate by, got nan"),
    ("--epochs", "0", "a whole number of epochs, at least 1, got 0"),
    ("--batch-size", "-8", "a whole number of samples, at least 1, got -8"),
    ("--seed", "-1", "a whole number in 0..4294967295, got -1"),
])
def test_numeric_parameter_out_of_range_is_one_line_before_anything_loads(capsys, monkeypatch, tmp_path, flag, value,
                                                                          expected):
    monkeypatch.setattr("mmlib.train.load_config_dataset", lambda config: pytest.fail("the dataset was loaded"))
    code, _, err = run_main(capsys, *TRAIN_ARGS, "--results-dir", str(tmp_path / "runs"), f"{flag}={value}")
    name = flag[2:].replace("-", "_")
    assert (code, err) == (2, f"mmlib train: {name} must be {expected}\n")
    assert not (tmp_path / "runs").exists()


def test_cuda_without_a_gpu_is_one_line(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code, _, err = run_main(capsys, *TRAIN_ARGS, "--device", "cuda", "--results-dir", str(tmp_path))
    assert code == 2 and err.startswith("mmlib train: device 'cuda' asked for, but torch sees 0 "
                                        "GPU(s)") and err.count("\n") == 1


def test_resume_without_a_checkpoint_of_this_config_says_so(capsys, tmp_path):
    ckpt = tmp_path / "ckpt"
    assert run_main(capsys, *TRAIN_ARGS, "--seed", "3", "--epochs", "2", "--results-dir", str(tmp_path),
                    "--checkpoint-dir", str(ckpt))[0] == 0
    code, _, err = run_main(capsys, *TRAIN_ARGS, "--seed", "3", "--resume", "--results-dir", str(tmp_path),
                            "--checkpoint-dir", str(ckpt))
    (other,) = [p.name for p in ckpt.glob("*.ckpt")]
    assert code == 2 and err.startswith(f"mmlib train: --resume: no checkpoint of this config in {ckpt} (expected ")
    assert f"it holds {other} of ours on synthetic seed 3 with other options" in err and err.count("\n") == 1
    assert len(list(tmp_path.glob("*.json"))) == 1  # only the first run's record


def test_bench_with_an_unknown_dataset_is_one_line(capsys):
    code, _, err = run_main(capsys, "bench", "methods", "--dataset", "foo")
    assert code == 2 and err.startswith("mmlib bench: unknown dataset 'foo'; valid choices are "
                                        "[") and err.count("\n") == 1
    assert "'mfeat'" in err and "'synthetic'" in err


# --- the tensor cache -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    return fabricate_cremad(tmp_path_factory.mktemp("cremad"), frames=3, seconds=0.2)


@pytest.fixture(scope="module")
def built(raw, tmp_path_factory):
    return build_cache(plan_cremad(raw, **SMALL_CACHE), tmp_path_factory.mktemp("cache") / "c", progress=False)


@pytest.fixture
def cache(built, tmp_path):
    """A copy of a complete cache that a test may damage."""
    return Path(shutil.copytree(built, tmp_path / "c"))


def edit_manifest(cache: Path, change) -> Path:
    manifest = json.loads((cache / "manifest.json").read_text())
    change(manifest)
    (cache / "manifest.json").write_text(json.dumps(manifest))
    return cache / "manifest.json"


def test_overlapping_cache_splits_are_refused(cache):
    shared = json.loads((cache / "manifest.json").read_text())["splits"]["test"][0]
    where = edit_manifest(cache, lambda m: m["splits"]["train"].append(shared))
    with pytest.raises(ValueError, match=rf"cache manifest {where}: sample {shared} is in split 'train' and in 'test'; "
                                         r"splits must be disjoint"):
        load_cache(cache)


def test_cache_split_index_out_of_range_is_refused(cache):
    where = edit_manifest(cache, lambda m: m["splits"]["val"].append(48))
    with pytest.raises(ValueError, match=rf"cache manifest {where}: split 'val' names sample 48, outside 0..47"):
        load_cache(cache)


def test_cache_label_beyond_the_classes_is_refused(cache):
    labels = np.load(cache / "labels.npy")
    labels[3] = 6
    np.save(cache / "labels.npy", labels)
    with pytest.raises(ValueError, match=rf"cache file {cache / 'labels.npy'} holds label 6, outside the 6 classes"):
        load_cache(cache)


def test_cache_array_that_disagrees_with_the_manifest_is_refused(cache):
    np.save(cache / "visual.npy", np.zeros((48, 3, 3, 8, 8), dtype=np.uint8))
    with pytest.raises(ValueError, match=rf"cache file {cache / 'visual.npy'} holds uint8 \(48, 3, 3, 8, 8\), but .* "
                                         r"as uint8 \(48, 2, 3, 8, 8\)"):
        load_cache(cache)


def test_edited_manifest_fails_its_fingerprint(cache):
    where = edit_manifest(cache, lambda m: m["params"].update(hop=8))
    with pytest.raises(ValueError, match=rf"cache manifest {where} does not match its fingerprint"):
        load_cache(cache)


def test_damaged_cache_files_are_named(cache):
    (cache / "audio.npy").write_bytes((cache / "audio.npy").read_bytes()[:200])
    with pytest.raises(ValueError,
                       match=rf"cache file {cache / 'audio.npy'} cannot be read .*prepare it again into a new folder"):
        load_cache(cache)
    (cache / "manifest.json").write_text("{\"dataset\": ")
    with pytest.raises(ValueError, match=rf"cache manifest {cache / 'manifest.json'} is not valid JSON"):
        load_cache(cache)


def test_corrupted_cache_bytes_are_named_with_the_file_and_prepare(cache):
    with open(cache / "visual.npy", "r+b") as handle:
        handle.seek(-64, os.SEEK_END)
        handle.write(bytes(range(64)))
    with pytest.raises(ValueError) as caught:
        load_cache(cache)
    assert str(caught.value) == (f"cache {cache}: file visual.npy does not match the sha256 that "
                                 f"{cache / 'manifest.json'} lists; its bytes changed after preparation (a bad disk, "
                                 f"an edit or a partial copy): prepare it again into a new folder (python -m mmlib "
                                 "prepare DATASET --root RAW --out NEW)")
    load_cache(cache, modalities="audio")  # a modality not asked for is not read


def test_cache_file_of_another_size_than_listed_is_named(cache):
    with open(cache / "audio.npy", "ab") as handle:
        handle.write(b"\0" * 10)
    size = (cache / "audio.npy").stat().st_size
    with pytest.raises(ValueError,
                       match=rf"cache {cache}: file audio.npy holds {size} bytes, but {cache / 'manifest.json'} lists "
                                         rf"{size - 10}; it was cut short or damaged: prepare it again"):
        load_cache(cache)


def test_verified_cache_is_hashed_again_only_when_a_file_changes(cache, monkeypatch):
    hashed = []
    real = cache_module.file_record
    monkeypatch.setattr(cache_module, "file_record", lambda path, root: hashed.append(path.name) or real(path, root))
    load_cache(cache)
    assert hashed == []  # prepare remembered what it hashed
    os.utime(cache / "labels.npy")
    load_cache(cache)
    load_cache(cache)
    assert hashed == ["labels.npy"]


def test_nonfinite_training_input_is_named_with_modality_and_samples(cache, monkeypatch):
    dataset = load_cache(cache)
    audio = np.array(dataset.inputs["audio"])
    rows = sorted(dataset.splits["train"][[1, 4]])
    audio[rows[0], 0, 0] = np.nan
    audio[rows[1], 0, 1] = np.inf
    planted = dataclasses.replace(dataset, inputs={**dataset.inputs, "audio": audio})
    monkeypatch.setattr("mmlib.train.load_config_dataset", lambda config: planted)
    config = small_config(dataset="cache", dataset_options={"path": str(cache)}, batch_size=64)
    with pytest.raises(ValueError) as caught:
        train(config, results_dir=cache.parent / "runs", progress=False)
    ids = [dataset.sample_ids[r] for r in rows]
    assert str(caught.value) == (f"training loss became nan in epoch 1 of {config.run_id}; the run is stopped and no "
                                 "record is stored: the data hold NaN or inf (modality 'audio' in 2 training "
                                 f"sample(s): {ids[0]}, {ids[1]}); repair or drop those samples (a cache: prepare it "
                                 "again)")
    assert list((cache.parent / "runs").iterdir()) == []


def test_cache_with_skipped_samples_passes_its_fingerprint(raw, tmp_path):
    broken = shutil.copytree(raw, tmp_path / "raw")
    (broken / "VideoFlash" / f"{cremad_names()[4]}.flv").write_bytes(b"not a video")
    load_cache(build_cache(plan_cremad(broken, **SMALL_CACHE), tmp_path / "c", skip_bad=True, progress=False))


def test_prepare_killed_before_its_first_flush_resumes(raw, built, tmp_path):
    plan = plan_cremad(raw, **SMALL_CACHE)

    def killed(sample):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_cache(dataclasses.replace(plan, process=killed), tmp_path / "c", progress=False)
    with pytest.raises(ValueError, match=r"is incomplete \(0 of 48 samples\); rerun prepare to finish it"):
        read_manifest(tmp_path / "c")
    build_cache(plan, tmp_path / "c", progress=False)
    for name in ("audio.npy", "visual.npy", "labels.npy"):
        assert (tmp_path / "c" / name).read_bytes() == (built / name).read_bytes()


# --- prepare --------------------------------------------------------------------------------------


def prepare_args(root: Path, out: Path, *extra: str) -> list[str]:
    return ["prepare", "cremad", "--root", str(root), "--out", str(out), "--quiet", "--frames", "2", "--size", "8",
            "--sample-rate", "8000", "--duration", "0.25", "--n-fft", "32", "--hop", "16",
            "--val-fraction", "0.25", "--test-fraction", "0.25", *extra]


def test_prepare_mistakes_are_one_line_with_exit_2(tmp_path):
    out = subprocess.run([sys.executable, "-m", "mmlib", *prepare_args(tmp_path / "missing", tmp_path / "c")],
                         capture_output=True, text=True, env={**os.environ, "TQDM_DISABLE": "1"})
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr == (f"mmlib prepare: CREMA-D root {tmp_path / 'missing'} does not exist; "
                          f"expected AudioWAV/*.wav and VideoFlash/*.flv (see data/README.md)\n")


def test_prepare_zero_frames_is_refused_before_any_folder(capsys, raw, tmp_path):
    code, _, err = run_main(capsys, *prepare_args(raw, tmp_path / "c", "--frames", "0"))
    assert (code, err) == (2, "mmlib prepare: --frames must be positive, got 0\n") and not (tmp_path / "c").exists()


def test_truncated_wav_is_reported(raw, tmp_path):
    wav = tmp_path / "cut.wav"
    data = (raw / "AudioWAV" / f"{cremad_names()[0]}.wav").read_bytes()
    wav.write_bytes(data[: len(data) // 3])
    with pytest.raises(MediaError, match=rf"audio file {wav} is cut short: its data chunk declares \d+ bytes but the "
                                         r"file holds \d+"):
        load_audio(wav, 8000)


def test_skip_bad_prints_the_count_it_kept(capsys, raw, tmp_path):
    broken = shutil.copytree(raw, tmp_path / "raw")
    wav = broken / "AudioWAV" / f"{cremad_names()[7]}.wav"
    wav.write_bytes(wav.read_bytes()[:300])
    code, out, _ = run_main(capsys, *prepare_args(broken, tmp_path / "c", "--skip-bad"))
    assert code == 0
    assert out == (f"prepared cremad: 47 samples into {tmp_path / 'c'} (1 undecodable left out, listed under 'bad' in "
                   f"{tmp_path / 'c' / 'manifest.json'})\n")


def test_too_small_cremad_subset_says_how_many_clips_are_needed(tmp_path):
    root = fabricate_cremad(tmp_path / "raw", names=cremad_names(per_class=1, actors=4), frames=2, seconds=0.1)
    with pytest.raises(ValueError,
                       match=r"split of 24 samples into 10% validation and 20% test needs at least 52 samples spread "
                                         r"evenly over the 6 classes \(about 9 each\).*OGM-GE lists \(--train-list, "
                                         r"--test-list\)"):
        plan_cremad(root)
    stratified_split(np.arange(52) % 6, 0.1, 0.2, 0)  # the number it names is enough, and one fewer is not
    with pytest.raises(ValueError, match="needs at least 52 samples"):
        stratified_split(np.arange(51) % 6, 0.1, 0.2, 0)


def test_cremad_list_label_that_contradicts_the_clip_name_is_refused(raw, tmp_path):
    names = cremad_names()
    (tmp_path / "train.csv").write_text("".join(f"{n},{n.split('_')[2]}\n" for n in names[:30]))
    (tmp_path / "test.csv").write_text(f"{names[30]},NEU\n" if names[30].split("_")[2] != "NEU"
                                       else f"{names[30]},HAP\n")
    with pytest.raises(ValueError, match=rf"test.csv line 1: clip {names[30]} is labelled \w+ but its name says \w+; "
                                         r"correct the label"):
        plan_cremad(raw, train_list=str(tmp_path / "train.csv"), test_list=str(tmp_path / "test.csv"))


def test_cached_arrays_round_trip_and_a_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    from mmlib.results import load_arrays, save_arrays

    path = tmp_path / "chapter" / "features.npz"
    assert load_arrays(path) is None
    save_arrays(path, {"a": np.arange(3), "b": np.eye(2)})
    stored = load_arrays(path)
    assert stored["a"].tolist() == [0, 1, 2] and stored["b"].tolist() == [[1.0, 0.0], [0.0, 1.0]]
    def half_written(handle, **arrays):
        handle.write(b"PK")
        raise OSError("disk full")

    with monkeypatch.context() as patch:
        patch.setattr(np, "savez", half_written)
        with pytest.raises(OSError, match="disk full"):
            save_arrays(path, {"a": np.arange(5)})
    assert load_arrays(path)["a"].tolist() == [0, 1, 2]
    assert [p.name for p in path.parent.iterdir()] == ["features.npz"]  # no temporary file left behind
    path.write_bytes(b"not an npz")
    with pytest.raises(ValueError,
                       match=rf"cached arrays {path} cannot be read .*delete the file to compute them again"):
        load_arrays(path)
