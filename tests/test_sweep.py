"""``python -m mmlib sweep``: leases, concurrent sweeps, resume after SIGKILL, submitit, bad grids.

Runs are tiny (synthetic data, two epochs, no probes); most of the time goes to starting Python
processes, which is what a sweep is made of. The three tests that start several are marked slow.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
import tomllib
from pathlib import Path

import pytest
import torch
from fabricate import dead_pid

from mmlib.config import TrainConfig
from mmlib.experiments import comparison_configs, run_grid
from mmlib.results import weights_folder
from mmlib.sweep import FAILED, RAN, SKIPPED, expand_grid, local_slots, main, visible_gpus, write_grid
from mmlib.sweep.lease import HOST, Lease, Owner, acquire, read_lease
from mmlib.train import train

REPO_ROOT = Path(__file__).resolve().parents[1]
TINY = ["--datasets", "synthetic", "--data", "num_samples=300", "--set", "epochs=2", "--set", "probe=false"]


def sweep_process(*args: str, **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "mmlib", "sweep", "--quiet", *args], cwd=REPO_ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen)


def records(results: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in results.glob("*.json")}


def comparable(record: dict) -> dict:
    """A record without what differs between two identical runs: wall time and the environment."""
    return {k: v for k, v in record.items() if k not in {"wall_time_s", "environment"}}


def write_lease(path: Path, owner: Owner, age_s: float = 0.0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dataclasses.asdict(owner)))
    then = time.time() - age_s
    os.utime(path, (then, then))


# ---- leases -----------------------------------------------------------------------------------
def test_lease_of_dead_process_on_this_host_is_taken_over(tmp_path):
    path = tmp_path / "run.lease"
    write_lease(path, Owner(dead_pid(), HOST, "old", time.time()))
    lease = acquire(path, heartbeat_s=60, stale_after_s=300)
    assert isinstance(lease, Lease)
    assert read_lease(path)[0].token == lease.owner.token != "old"
    lease.release()
    assert not path.exists()


def test_lease_from_another_host_is_kept_while_its_heartbeat_is_fresh_and_taken_over_after(tmp_path):
    path = tmp_path / "run.lease"
    other = Owner(12345, "other-machine", "theirs", time.time())
    write_lease(path, other, age_s=10)
    assert acquire(path, heartbeat_s=60, stale_after_s=300) == other
    write_lease(path, other, age_s=301)
    lease = acquire(path, heartbeat_s=60, stale_after_s=300)
    assert isinstance(lease, Lease)
    lease.release()


def test_stale_lease_is_won_by_exactly_one_of_many_simultaneous_takers(tmp_path):
    path = tmp_path / "run.lease"
    write_lease(path, Owner(dead_pid(), HOST, "old", time.time()))
    start, results = threading.Barrier(8), []

    def take() -> None:
        start.wait()
        results.append(acquire(path, heartbeat_s=60, stale_after_s=300))

    threads = [threading.Thread(target=take) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    won = [r for r in results if isinstance(r, Lease)]
    assert len(won) == 1
    assert read_lease(path)[0].token == won[0].owner.token
    assert all(r is None or r == won[0].owner for r in results if not isinstance(r, Lease))
    won[0].release()


def test_heartbeat_notices_a_lease_taken_over(tmp_path):
    path = tmp_path / "run.lease"
    lease = acquire(path, heartbeat_s=0.05, stale_after_s=300)
    write_lease(path, Owner(1, "other-machine", "theirs", time.time()))
    assert lease.lost.wait(5)
    lease.release()
    assert read_lease(path)[0].token == "theirs"  # release leaves the new owner's lease alone


# ---- sweeps -----------------------------------------------------------------------------------
@pytest.mark.slow
def test_two_sweeps_at_once_train_every_run_exactly_once_and_a_third_skips_them_all(tmp_path, capsys):
    grid = tmp_path / "grid.toml"
    grid.write_text('methods = ["concat", "sum"]\ndatasets = ["synthetic"]\n'
                    '[train]\nepochs = 2\nprobe = false\n[data.synthetic]\nnum_samples = 300\n')
    results = tmp_path / "runs"
    # Each sweep gets its own (fictitious) GPU, which its training processes must see; they train on the CPU.
    sweeps = [sweep_process(str(grid), "--results-dir", str(results), "--gpus", gpu, "--set", "device=cpu",
                            "--stale-after", "8")
              for gpu in ("5", "7")]
    outputs = [s.communicate(timeout=240) for s in sweeps]
    assert [s.returncode for s in sweeps] == [0, 0], outputs
    stored = records(results)
    assert sorted(stored) == sorted(c.run_id for c in expand_grid(tomllib.loads(grid.read_text())))
    for run_id in stored:
        log = (results / ".sweep" / "logs" / f"{run_id}.log").read_text()
        assert log.count("--- ") == 1, f"{run_id} was started {log.count('--- ')} times"
        ran_in = [gpu for (out, _), gpu in zip(outputs, ("5", "7")) if f"ran      {run_id}" in out]
        skipped_in = [out for out, _ in outputs if f"skipped  {run_id}" in out]
        assert len(ran_in) == 1 and len(skipped_in) == 1
        assert f"CUDA_VISIBLE_DEVICES={ran_in[0]}\n" in log
    assert not list((results / ".sweep" / "leases").glob("*.lease"))
    assert main([str(grid), "--results-dir", str(results), "--quiet"]) == 0
    assert f"2 runs: 0 ran, 2 {SKIPPED}, 0 failed" in capsys.readouterr().out


def long_run(tmp_path: Path, stale_after: int) -> tuple[list[str], TrainConfig, Path]:
    """A sweep's arguments for one 5-epoch run long enough to be killed mid-run, its config and checkpoint."""
    args = ["--methods", "concat", "--datasets", "synthetic", "--data", "num_samples=20000", "--set", "epochs=5",
            "--set", "probe=false", "--results-dir", str(tmp_path / "runs"), "--stale-after", str(stale_after)]
    config = expand_grid({"methods": "concat", "datasets": "synthetic", "data": {"synthetic": {"num_samples": 20000}},
                          "train": {"epochs": 5, "probe": False}})[0]
    return args, config, weights_folder(tmp_path / "runs") / f"{config.run_id}.ckpt"


def mark_interrupted_checkpoint(tmp_path: Path, checkpoint: Path) -> None:
    """Check the killed run stored nothing and stopped mid-run; mark its checkpoint's elapsed time,
    which a resumed run carries into its wall time."""
    assert not records(tmp_path / "runs"), "the run finished before the kill; make it longer"
    saved = torch.load(checkpoint, weights_only=False)
    assert 1 <= len(saved["history"]) < 5
    saved["elapsed"] = 1e6
    torch.save(saved, checkpoint)


@pytest.mark.slow
def test_sweep_killed_mid_run_resumes_to_the_uninterrupted_record(tmp_path):
    args, config, checkpoint = long_run(tmp_path, stale_after=60)
    sweep = sweep_process(*args)
    while not checkpoint.exists():
        assert sweep.poll() is None, sweep.communicate()
        time.sleep(0.02)
    sweep.send_signal(signal.SIGKILL)
    sweep.wait()
    mark_interrupted_checkpoint(tmp_path, checkpoint)

    assert main(args + ["--quiet"]) == 0
    stored = records(tmp_path / "runs")
    assert list(stored) == [config.run_id]
    assert stored[config.run_id]["wall_time_s"] >= 1e6
    assert comparable(stored[config.run_id]) == comparable(json.loads(json.dumps(train(config, progress=False))))


def children(pid: int) -> list[int]:
    """The child processes of ``pid`` started by any of its threads (Linux)."""
    return [int(c) for task in Path(f"/proc/{pid}/task").iterdir() for c in (task / "children").read_text().split()]


@pytest.mark.slow
def test_sweep_killed_mid_run_is_taken_over_by_a_waiting_sweep_that_resumes_it(tmp_path):
    args, config, checkpoint = long_run(tmp_path, stale_after=8)
    sweeps = [sweep_process(*args) for _ in range(2)]
    while not checkpoint.exists():
        assert all(s.poll() is None for s in sweeps), [s.communicate() for s in sweeps]
        time.sleep(0.02)
    owner, _ = read_lease(tmp_path / "runs" / ".sweep" / "leases" / f"{config.run_id}.lease")
    (holder,) = [s for s in sweeps if s.pid == owner.pid]
    (waiter,) = [s for s in sweeps if s is not holder]
    waiter.send_signal(signal.SIGSTOP)  # it takes over only once the checkpoint below is marked
    trainer = children(holder.pid)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    while any(Path(f"/proc/{pid}").exists() for pid in trainer):  # the training process dies with its sweep
        time.sleep(0.02)
    mark_interrupted_checkpoint(tmp_path, checkpoint)
    waiter.send_signal(signal.SIGCONT)

    out, err = waiter.communicate(timeout=240)
    assert waiter.returncode == 0, err
    assert f"ran      {config.run_id}" in out and "1 runs: 1 ran, 0 skipped, 0 failed" in out
    stored = records(tmp_path / "runs")
    assert list(stored) == [config.run_id] and stored[config.run_id]["wall_time_s"] >= 1e6
    assert comparable(stored[config.run_id]) == comparable(json.loads(json.dumps(train(config, progress=False))))
    assert (tmp_path / "runs" / ".sweep" / "logs" / f"{config.run_id}.log").read_text().count("--- ") == 2
    assert not list((tmp_path / "runs" / ".sweep" / "leases").glob("*.lease"))


def test_a_run_that_fails_in_its_process_is_reported_with_the_reason_and_its_log(tmp_path, capsys):
    bad = ["--set", 'modalities="m0,nope"']  # fails in the training process, not in the grid check
    assert main(["--methods", "concat", *TINY, *bad, "--results-dir", str(tmp_path / "runs"), "--quiet"]) == 1
    out = capsys.readouterr().out
    assert "1 runs: 0 ran, 0 skipped, 1 failed" in out
    failure = next(line for line in out.splitlines() if line.startswith(f"  {FAILED}"))
    assert "ValueError" in failure and "'nope'" in failure and failure.endswith(".log)")
    assert not records(tmp_path / "runs")


@pytest.mark.slow
def test_submitit_local_executor_runs_a_two_run_grid(tmp_path, capsys):
    pytest.importorskip("submitit")
    results = tmp_path / "runs"
    assert main(["--methods", "concat,sum", *TINY, "--results-dir", str(results), "--quiet",
                 "--launcher", "submitit", "--cluster", "local", "--gpus-per-task", "0"]) == 0
    assert f"2 runs: 2 {RAN}" in capsys.readouterr().out
    assert sorted(r["config"]["method"] for r in records(results).values()) == ["concat", "sum"]


def test_run_grid_with_workers_returns_the_records_of_the_in_process_path(tmp_path):
    configs = expand_grid({"methods": "concat", "datasets": "synthetic", "data": {"synthetic": {"num_samples": 300}},
                           "train": {"epochs": 2, "probe": False}})
    here = run_grid(configs, tmp_path / "here" / "runs", progress=False)
    swept = run_grid(configs, tmp_path / "swept" / "runs", progress=False, workers=1)
    assert [comparable(r) for r in swept] == [comparable(r) for r in here]
    assert sorted(records(tmp_path / "swept" / "runs")) == sorted(c.run_id for c in configs)
    assert (sorted(p.stem for p in weights_folder(tmp_path / "swept" / "runs").glob("*.ckpt"))
            == [c.run_id for c in configs])
    with pytest.raises(ValueError, match="workers=0"):
        run_grid(configs, tmp_path / "swept" / "runs", force=True, workers=1)


# ---- the grid ---------------------------------------------------------------------------------
@pytest.mark.parametrize("grid, named", [
    ('methods = ["concat", "bogus"]', "'bogus'"),
    ('methods = ["concat"]\ndatasets = ["mfeat", "imagenet"]', "'imagenet'"),
    ('methods = ["concat"]\n[train]\nlearning_rate = 0.1', "[train]: unknown parameter 'learning_rate'"),
    ('methods = ["ours"]\n[options.ours]\ntau = 0.1\ntaux = 2', "no option 'taux'"),
    ('methods = ["concat"]\n[options.ours]\ntau = 0.1', "method 'ours', which the grid does not run"),
    ('methods = ["concat"]\n[data.mfeat]\nnoize = "pix=1.0"', "no option 'noize'"),
    ('methods = ["concat"]\n[train]\nepochs = "two"', "epochs expects int"),
    ('methods = ["concat"]\nepochs = 2', "unknown entry 'epochs'"),
])
def test_bad_grid_entry_is_rejected_by_name_before_anything_starts(tmp_path, capsys, grid, named):
    path = tmp_path / "grid.toml"
    path.write_text(grid + "\n")
    assert main([str(path), "--results-dir", str(tmp_path / "runs")]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"mmlib sweep: {path}") and named in error and len(error.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


def test_submitit_launcher_without_submitit_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "submitit", None)  # import submitit now raises ImportError
    assert main(["--methods", "concat", "--results-dir", str(tmp_path), "--launcher", "submitit"]) == 2
    assert "pip install -e .[scale]" in capsys.readouterr().err


def test_grid_is_the_product_of_its_axes_and_an_integer_seed_count_means_seeds_from_zero():
    configs = expand_grid({"methods": "concat,ours", "seeds": 3, "train": {"lr": [1, 0.01]},
                           "options": {"ours": {"tau": [0.1, 0.3]}}})
    assert len(configs) == 3 * 2 * (1 + 2)
    assert {c.seed for c in configs} == {0, 1, 2} and {c.lr for c in configs} == {1.0, 0.01}
    assert expand_grid({"methods": "sum", "train": {"lr": 1}})[0].run_id == TrainConfig(method="sum", lr=1.0).run_id


def test_exported_chapter_grid_reads_back_as_the_same_runs(tmp_path):
    configs = comparison_configs(["concat", "ours"], "mfeat", "fou,mor", {"noise": "pix=2.0"}, seeds=2, epochs=3)
    path = write_grid(configs, tmp_path / "grid.toml")
    again = expand_grid(tomllib.loads(path.read_text()), str(path))
    assert [c.run_id for c in again] == [c.run_id for c in configs]


def test_local_slots_interleave_gpus_so_the_first_runs_land_on_different_ones(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    assert local_slots(visible_gpus(), per_gpu=2) == ["2", "3", "2", "3"]
    assert local_slots([], workers=3) == ["", "", ""]
    with pytest.raises(ValueError, match="--per-gpu"):
        local_slots(["0"], workers=2)
