"""The results store: one JSON record per run, written once, read back as pandas frames.

A record holds the full config, the seed, the dataset's split identity, per-epoch metrics, final
test metrics, the git commit, library versions, the device and the wall time. Tables and figures
in the book are built from records only. Records are written atomically and never overwritten:
``save_record`` refuses an existing name; a forced rerun is stored beside the first as ``-2``, ``-3``.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import tempfile
from pathlib import Path
from typing import Iterable

import pandas as pd


def environment_info(device: str) -> dict:
    """Git commit, library versions and device of the current process."""
    import numpy
    import torch

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
        "platform": platform.platform(),
    }


def save_record(record: dict, directory: str | Path, name: str | None = None) -> Path:
    """Write ``record`` as ``directory/name.json`` atomically; raise if that file already exists."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name or record['run_id']}.json"
    fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(record, handle, indent=1, sort_keys=True)
        os.link(tmp, path)  # fails if path exists: never overwrites
    except FileExistsError:
        raise FileExistsError(f"result {path} already exists; records are never overwritten (use force to store a rerun beside it)") from None
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


def find_record(directory: str | Path, run_id: str) -> dict | None:
    """The newest stored record of ``run_id`` (a forced rerun supersedes the first), or None."""
    directory = Path(directory)
    candidates = [directory / f"{run_id}.json"] + sorted(
        directory.glob(f"{run_id}-*.json"), key=lambda p: int(p.stem.rsplit("-", 1)[1])
    )
    existing = [p for p in candidates if p.exists()]
    return json.loads(existing[-1].read_text()) if existing else None


def load_records(directory: str | Path) -> list[dict]:
    """Every record in ``directory`` (recursively), oldest first by file name."""
    return [json.loads(p.read_text()) for p in sorted(Path(directory).rglob("*.json"))]


def records_frame(records: Iterable[dict]) -> pd.DataFrame:
    """One row per run: config columns, method options, and final test metrics (wide)."""
    rows = []
    for r in records:
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
