"""The results store: one JSON record per run, written once, read back as pandas frames.

A record holds the full config, the seed, the dataset's split identity, per-epoch metrics, final
test metrics, the git commit, library versions, the device and the wall time. Tables and figures
in the book are built from records only. Records are written atomically and never overwritten:
``save_record`` writes a uniquely named temporary file (mode per the umask) and links it to its
name, refusing an existing one; a forced rerun is stored beside the first as ``-2``, ``-3``. The
reader knows only the names it writes (``RUNID.json``, ``RUNID-K.json``), ignores any other file
(a ``RUNID-backup.json`` beside a record), and names the file of any record it cannot use.
"""

from __future__ import annotations

import json
import os
import platform
import re
import resource
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Callable, Iterable, Mapping

import numpy as np

if TYPE_CHECKING:  # pandas is imported by the two frame builders only: the GPU check's bare image has none
    import pandas as pd

RECORD_NAME = re.compile(r"^(?P<run_id>.+-s\d+-[0-9a-f]{12})(?:-(?P<copy>\d+))?\.json$")  # RUNID.json, RUNID-K.json
RECORD_FIELDS = ("run_id", "config", "modalities", "history", "best_epoch", "test")


def environment_info(device: str) -> dict:
    """Git commit, library versions, device and CPU numerics of the current process.

    ``numerics`` (:func:`mmlib.numerics.numerics_info`) holds what decides a CPU run's bits beside
    the thread count: the CPU model, torch's CPU capability, the BLAS, MKL's branch and the pin.
    """
    import numpy
    import torch

    from mmlib.numerics import numerics_info

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
            cwd=Path(__file__).resolve().parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = None
    gpu = torch.cuda.get_device_name(0) if device.startswith("cuda") and torch.cuda.is_available() else None
    return {
        "git_commit": commit,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "device": device,
        "gpu": gpu,
        "cpu_threads": torch.get_num_threads(),  # CPU results are bitwise reproducible at equal thread counts
        "platform": platform.platform(),
        "numerics": numerics_info(),
    }


def file_mode() -> int:
    """``0o666`` less the process umask: the mode ``open(path, "w")`` gives a new file."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def temporary_file(directory: str | Path, name: str) -> tuple[int, str]:
    """A new file in ``directory`` under a name no other process can hold (``.NAME.XXXXXXXX.tmp``).

    Returns ``(fd, path)``; the mode respects the umask. Every record and checkpoint is written to
    one of these and then moved to its name, so two processes never write the same file.
    """
    fd, path = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
    os.fchmod(fd, file_mode())
    return fd, path


def replace_atomically(path: str | Path, write: Callable[[BinaryIO], None]) -> None:
    """``write(handle)`` into a uniquely named file beside ``path``, then moved onto ``path``: a reader
    sees the old file or the whole new one, never a half-written copy (a failed write leaves no trace)."""
    path = Path(path)
    fd, tmp = temporary_file(path.parent, path.name)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def human_size(size: int) -> str:
    """``size`` bytes for a reader: ``512 B``, ``3.4 kB``, ``12.0 MB``, ``4.1 GB`` (powers of 1000)."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


def no_room(folder: str | Path, size: int) -> str | None:
    """Why a file of ``size`` bytes cannot be written into ``folder`` (the file-size limit of
    ``ulimit -f``, or the free space of its disk), in words; None when it fits."""
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if limit != resource.RLIM_INFINITY and size > limit:
        return (f"file too large: the file-size limit (ulimit -f) is {human_size(limit)}, the file needs "
                f"{human_size(size)}")
    free = shutil.disk_usage(folder).free
    if size > free:
        return f"disk full: {human_size(free)} free, the file needs {human_size(size)}"
    return None


def writable_folder(path: str | Path, what: str) -> Path:
    """``path``, created when missing and proven writable before any work is done; else a clear error."""
    if str(path) == "":
        raise ValueError(f"{what} is empty; give a folder (e.g. {RUNS_DIR})")
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{what} {path} is a file, not a folder; give a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = temporary_file(path, "write-test")
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        raise ValueError(f"{what} {path} is not a writable folder ({error.strerror}); choose another or fix its "
                         "permissions") from None
    return path


# The one results root. Everything a run or a chapter stores lives under ``results/``:
#   results/runs/RUNID.json        one record per run (the store: CLI, chapters, sweeps)
#   results/weights/RUNID.ckpt     each run's checkpoint: last and best-epoch weights, for resume and analysis
#   results/runs/.sweep/           a sweep's leases and per-run logs (mmlib.sweep)
#   results/snapshots/             checkpoints of runs stopped at chosen epochs and the arrays computed from
#                                  them (the feature-distributions chapter; :func:`save_arrays`)
#   results/frozen/KEY.npz, .pt   frozen-backbone features computed once, and the backbone (mmlib.data.frozen)
#   results/chapters/NAME.json     a chapter's summary tables and verdicts
#   results/performance/           benchmark timings of the performance chapter
#   results/native/runs/           the performance chapter's drift grid trained without the CPU pin
#   results/tuning/DATA-VIEWS.db   an Optuna study of `mmlib tune` (mmlib.tuning.files.study_path)
RUNS_DIR = "results/runs"
WEIGHTS_DIR = "results/weights"


def weights_folder(runs_dir: str | Path) -> Path:
    """Where the weights of the runs stored in ``runs_dir`` are kept: ``weights/`` beside it.

    :func:`mmlib.experiments.run_grid` writes each run's checkpoint (final and best-epoch weights)
    there, and :func:`mmlib.trained.train_model` reads it, so analysis chapters load a stored
    run's model instead of training it again.
    """
    return Path(runs_dir).parent / "weights"


def snapshots_folder(runs_dir: str | Path) -> Path:
    """Where analyses keep runs stopped at chosen epochs and what they computed from them:
    ``snapshots/`` beside the store (:func:`mmlib.trained.model_at_epoch`, :func:`save_arrays`)."""
    return Path(runs_dir).parent / "snapshots"


def save_arrays(path: str | Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Arrays a chapter computed, as one ``.npz`` at ``path`` (folders created), written atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_atomically(path, lambda handle: np.savez(handle, **arrays))


def load_arrays(path: str | Path) -> dict[str, np.ndarray] | None:
    """The arrays :func:`save_arrays` stored at ``path``, or None when there is no such file."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as stored:
            return {key: stored[key] for key in stored.files}
    except (OSError, ValueError) as error:
        raise ValueError(f"cached arrays {path} cannot be read ({error}); delete the file to compute them "
                         "again") from None


def save_record(record: dict, directory: str | Path, name: str | None = None) -> Path:
    """Write ``record`` as ``directory/name.json`` atomically; raise if that file already exists."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name or record['run_id']}.json"
    fd, tmp = temporary_file(directory, path.name)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(record, handle, indent=1, sort_keys=True)
        os.link(tmp, path)  # fails if path exists: never overwrites
    except FileExistsError:
        raise FileExistsError(f"result {path} already exists; records are never overwritten (use force to store a "
                              "rerun beside it)") from None
    finally:
        os.unlink(tmp)
    return path


def next_free_name(directory: str | Path, run_id: str) -> str:
    """``run_id`` if unused, else ``run_id-2``, ``run_id-3``, ..."""
    directory, k = Path(directory), 2
    if not (directory / f"{run_id}.json").exists():
        return run_id
    while (directory / f"{run_id}-{k}.json").exists():
        k += 1
    return f"{run_id}-{k}"


def store_run(record: dict, directory: str | Path, force: bool = False) -> dict:
    """Store a finished run as ``RUNID.json`` and return the record the store now holds for it.

    When another process stored the same config first, its record is kept and returned (the same
    config and seed give the same numbers at equal CPU thread counts). With ``force`` the record is
    stored beside earlier ones as ``RUNID-2.json``, ``RUNID-3.json``, ...
    """
    while True:
        name = next_free_name(directory, record["run_id"]) if force else record["run_id"]
        try:
            save_record(record, directory, name)
            return record
        except FileExistsError:
            if not force:
                return find_record(directory, record["run_id"])


def read_record(path: str | Path) -> dict:
    """One stored record; a record that is not valid JSON or lacks a field is an error naming its file."""
    try:
        record = json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"record {path} is not valid JSON ({error}); it was cut short or edited: "
                         f"delete it to train that run again, or restore it") from None
    check_record(record, f"record {path}")
    return record


def check_record(record: dict, what: str) -> None:
    """Raise when ``record`` lacks a field of a finished run (``test``, ``history``, ...)."""
    missing = [key for key in RECORD_FIELDS if key not in record]
    if missing:
        raise ValueError(f"{what} lacks {', '.join(map(repr, missing))}: it is not a finished run's record; "
                         f"delete it to train that run again, or move it out of the results folder")


def record_paths(directory: str | Path, run_id: str | None = None) -> list[Path]:
    """The record files in ``directory`` (of ``run_id`` only, when given), each run's copies in the order stored."""
    found = []
    for path in Path(directory).glob("*.json"):
        match = RECORD_NAME.match(path.name)
        if match and run_id in (None, match["run_id"]):
            found.append((match["run_id"], int(match["copy"] or 1), path))
    return [path for _, _, path in sorted(found)]


def find_record(directory: str | Path, run_id: str) -> dict | None:
    """The newest stored record of ``run_id`` (a forced rerun supersedes the first), or None."""
    paths = record_paths(directory, run_id)
    return read_record(paths[-1]) if paths else None


def records_frame(records: Iterable[dict]) -> pd.DataFrame:
    """One row per run: config columns, method options, and final test metrics (wide)."""
    import pandas as pd

    rows = []
    for r in records:
        check_record(r, f"record {r.get('run_id')}")
        cfg, test = r["config"], r["test"]
        row = {
            "run_id": r["run_id"], "method": cfg["method"], "dataset": cfg["dataset"],
            "modalities": ",".join(r["modalities"]), "seed": cfg["seed"], "epochs": cfg["epochs"],
            **{f"opt_{k}": v for k, v in cfg["method_options"].items()},
            **{f"data_{k}": (json.dumps(v) if isinstance(v, dict) else v) for k, v in cfg["dataset_options"].items()},
            "fused_acc": test["fused_acc"], "edm": test["edm"], "edm_share": test["edm_share"],
            "best_epoch": r["best_epoch"], "wall_time_s": r["wall_time_s"],
        }
        for m in r["modalities"]:
            row[f"head_acc_{m}"] = test["unimodal_acc"][m]
            row[f"shapley_{m}"] = test["shapley"][m]
            row[f"edm_{m}"] = test["edm_terms"][m]
            if r.get("probe_acc"):
                row[f"probe_acc_{m}"] = r["probe_acc"][m]
        rows.append(row)
    return pd.DataFrame(rows)


def history_frame(records: Iterable[dict]) -> pd.DataFrame:
    """One row per (run, epoch, modality): validation Shapley value, share, unimodal accuracy, order position."""
    import pandas as pd

    rows = []
    for r in records:
        cfg = r["config"]
        for epoch in r["history"]:
            total = sum(epoch["shapley"].values())
            order = epoch.get("order") or []
            for m in r["modalities"]:
                rows.append({
                    "run_id": r["run_id"], "method": cfg["method"], "seed": cfg["seed"], "epoch": epoch["epoch"],
                    "modality": m, "shapley": epoch["shapley"][m],
                    "share": 100.0 * epoch["shapley"][m] / total if total else float("nan"),
                    "head_acc": epoch["unimodal_acc"][m], "fused_acc": epoch["fused_acc"],
                    "edm": epoch["edm"], "train_loss": epoch["train_loss"],
                    "order_position": order.index(m) + 1 if m in order else None,
                })
    return pd.DataFrame(rows)
