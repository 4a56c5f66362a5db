"""``python -m mmlib tune``: search spaces, determinism, resume after SIGKILL, several workers on one
study, validation only, bad input; and (issue 28) two sweeps and a tuning study sharing one store.

Trials are tiny (synthetic data, two or three epochs, no probes). The tests that start several
processes are marked slow.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from fabricate import dead_pid
from optuna.trial import TrialState

import mmlib.train
from mmlib.__main__ import main as mmlib_main
from mmlib.methods import available_methods, build_options
from mmlib.protocols import PROTOCOLS
from mmlib.results import RECORD_NAME, records_frame
from mmlib.sweep import expand_grid
from mmlib.config import TrainConfig
from mmlib.tuning.files import (
    method_entry,
    read_tuned,
    stale_methods,
    study_path,
    tuned_config,
    write_tuned,
)
from mmlib.tuning.space import COMMON, Float, SearchSpace
from mmlib.tuning.study import FINISHED, HOST, method_space, open_study, study_name, tune_method

REPO_ROOT = Path(__file__).resolve().parents[1]
TINY = TrainConfig(dataset="synthetic", modalities="m0,m1", dataset_options={"num_samples": 300}, epochs=2,
                   probe=False, method="ogm")
TINY_CLI = ["--dataset", "synthetic", "--modalities", "m0,m1", "--no-probe"]


# ---- search spaces -------------------------------------------------------------------------------
@pytest.mark.parametrize("method", available_methods())
def test_every_registered_method_has_a_search_space_whose_ranges_contain_its_defaults(method):
    space = method_space(method)
    options = dataclasses.asdict(build_options(method))
    assert set(space.own) <= set(options), set(space.own) - set(options)
    for protocol in PROTOCOLS.values():  # the book's Adam 1e-3 and the peers' SGD 1e-3, weight decay 1e-4
        defaults = {**options, "lr": protocol.lr, "weight_decay": protocol.weight_decay}
        assert space.outside(defaults) == []
    assert all(parameter.source for parameter in space.parameters.values())


def test_a_default_outside_its_range_is_named():
    space = SearchSpace(tau=Float(0.3, 0.5, source="hand-made"))
    assert space.outside({"lr": 1e-3, "weight_decay": 1e-4, "tau": 0.2}) == ["tau=0.2"]
    assert space.outside({"lr": 1.0, "weight_decay": 1e-4, "tau": 0.4}) == ["lr=1.0"]


def test_a_method_space_cannot_redeclare_the_common_parameters():
    with pytest.raises(ValueError, match="'lr' is a common parameter"):
        SearchSpace(lr=COMMON["lr"])


def test_the_space_digest_follows_the_ranges_not_the_sources():
    a = SearchSpace(tau=Float(0.1, 0.5, source="paper"))
    assert a.digest() == SearchSpace(tau=Float(0.1, 0.5, source="reworded")).digest()
    assert a.digest() != SearchSpace(tau=Float(0.1, 0.6, source="paper")).digest()


# ---- one study, in this process ------------------------------------------------------------------
def trials_of(study: optuna.Study) -> list[tuple]:
    return [(t.number, t.state, t.params, t.value) for t in study.get_trials(deepcopy=False)]


@pytest.fixture(scope="module")
def clean_study(tmp_path_factory):
    root = tmp_path_factory.mktemp("clean")
    path = study_path(root / "runs", "synthetic", "m0,m1")
    study = tune_method(TINY, (0, 1), 5, root / "runs", path, log=lambda _: None)
    return study, root


def test_the_same_seed_gives_the_same_trials_and_best_values(clean_study, tmp_path):
    first, _ = clean_study
    again = tune_method(TINY, (0, 1), 5, tmp_path / "runs", tmp_path / "study.db", log=lambda _: None)
    assert trials_of(again) == trials_of(first)
    assert method_entry(again, TINY, (0, 1), 5)["best"] == method_entry(first, TINY, (0, 1), 5)["best"]
    # the defaults first
    assert first.trials[0].params == {"lr": TINY.lr, "weight_decay": TINY.weight_decay, "alpha": 0.1}
    assert len({json.dumps(t.params, sort_keys=True) for t in first.trials}) == 5


def test_another_seed_draws_other_trials(clean_study, tmp_path):
    first, _ = clean_study
    other = tune_method(TINY, (0, 1), 3, tmp_path / "runs", tmp_path / "study.db", seed=1, log=lambda _: None)
    assert [t.params for t in other.trials[1:3]] != [t.params for t in first.trials[1:3]]


def test_the_objective_never_reads_the_test_split(clean_study, tmp_path, monkeypatch):
    """Every test label shifted by one class: the tuned values and every trial stay the same, although
    the runs' test accuracy falls (so the poison reached the data the loop saw)."""
    load = mmlib.train.load_config_dataset

    def poisoned(config):
        dataset = load(config)
        labels = dataset.labels.copy()
        test = dataset.splits["test"]
        labels[test] = (labels[test] + 1) % len(dataset.classes)
        return dataclasses.replace(dataset, labels=labels)

    monkeypatch.setattr(mmlib.train, "load_config_dataset", poisoned)
    study = tune_method(TINY, (0, 1), 5, tmp_path / "runs", tmp_path / "study.db", log=lambda _: None)
    first, root = clean_study
    assert trials_of(study) == trials_of(first)
    assert method_entry(study, TINY, (0, 1), 5)["best"] == method_entry(first, TINY, (0, 1), 5)["best"]
    clean = records_frame(json.loads(p.read_text()) for p in (root / "runs").glob("*.json")).set_index("run_id")
    dirty = records_frame(json.loads(p.read_text()) for p in (tmp_path / "runs").glob("*.json")).set_index("run_id")
    assert (dirty["fused_acc"] < clean.loc[dirty.index, "fused_acc"] - 20).all()


def test_a_finished_study_trains_nothing_more(clean_study, monkeypatch):
    study, root = clean_study
    monkeypatch.setattr(mmlib.train, "_train", lambda *a, **k: pytest.fail("a finished study trained a run"))
    again = tune_method(TINY, (0, 1), 5, root / "runs", study_path(root / "runs", "synthetic", "m0,m1"),
                        log=lambda _: None)
    assert trials_of(again) == trials_of(study)


@pytest.mark.parametrize("left_by, counted", [
    ({}, False),  # killed between asking for the trial and writing its pid
    ({"pid": "dead", "host": HOST}, False),  # killed while training it
    ({"pid": "self", "host": HOST}, True),  # still running it
    ({"pid": "dead", "host": "another-host"}, True),  # cannot be checked from here
])
def test_reopening_a_study_fails_the_trials_no_live_process_will_finish(left_by, counted, tmp_path):
    study = open_study(TINY, (0,), 3, tmp_path / "study.db")
    trial = study.ask()
    pids = {"dead": dead_pid(), "self": os.getpid()}
    for key, value in left_by.items():
        trial.set_user_attr(key, pids.get(value, value))
    reopened = open_study(TINY, (0,), 3, tmp_path / "study.db")
    assert reopened.trials[0].state == (TrialState.RUNNING if counted else TrialState.FAIL)


def test_a_resumed_study_runs_the_budget_less_its_finished_trials(tmp_path):
    """The resume of the killed-process test above, without the race: one trial finished, one
    asked for by a process killed before it wrote its pid; the budget of 3 runs two more."""
    runs, path = tmp_path / "runs", tmp_path / "study.db"
    tune_method(TINY, (0,), 1, runs, path, log=lambda _: None)
    open_study(TINY, (0,), 3, path).ask()
    ran = []
    study = tune_method(TINY, (0,), 3, runs, path, log=ran.append)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE, TrialState.FAIL, *[TrialState.COMPLETE] * 2]
    assert len(ran) == 2


def test_the_tuned_file_holds_budget_trials_time_commit_versions_and_applies_back(clean_study, tmp_path):
    study, _ = clean_study
    entry = method_entry(study, TINY, (0, 1), 5)
    written = write_tuned(tmp_path / "synthetic-m0,m1.json", TINY, {"ogm": entry}, note="tiny")
    tuned = read_tuned(tmp_path / "synthetic-m0,m1.json")
    assert tuned == json.loads(json.dumps(written))
    entry_trials = tuned["methods"]["ogm"]["trials"]
    assert tuned["methods"]["ogm"]["budget"] == 5 and sum(entry_trials[s.name.lower()] for s in FINISHED) == 5
    assert tuned["methods"]["ogm"]["best_value"] == max(t.value for t in study.trials if t.value is not None)
    assert tuned["methods"]["ogm"]["default_value"] == study.trials[0].value
    history = tuned["methods"]["ogm"]["history"]
    assert [(h["trial"], h["value"], h["params"]) for h in history] == [(t.number, t.value, t.params)
                                                                        for t in study.trials]
    assert all(len(h["per_seed_mean"]) == (2 if h["state"] == "complete" else 1) for h in history)
    assert tuned["wall_s"] > 0 and tuned["git_commit"] and tuned["versions"]["optuna"] == optuna.__version__
    config = tuned_config(dataclasses.replace(TINY, seed=7), tuned)
    assert (config.lr, config.weight_decay, config.method_options["alpha"]) == tuple(entry["best"].values())
    assert stale_methods(tuned) == {}


def test_values_tuned_under_another_search_space_are_flagged_stale(clean_study, tmp_path):
    study, _ = clean_study
    entry = {**method_entry(study, TINY, (0, 1), 5), "space_digest": "000000000000"}
    tuned = write_tuned(tmp_path / "t.json", TINY, {"ogm": entry})
    assert stale_methods(tuned) == {"ogm": "its search space changed since it was tuned"}
    with pytest.warns(UserWarning, match="search space changed"):
        tuned_config(TINY, tuned)


def test_the_study_name_changes_with_the_base_config_and_seeds():
    assert study_name(TINY, (0, 1)) != study_name(dataclasses.replace(TINY, epochs=3), (0, 1))
    assert study_name(TINY, (0, 1)) != study_name(TINY, (0, 1, 2))
    assert study_name(TINY, (0, 1)) == study_name(dataclasses.replace(TINY, seed=5, lr=0.1), (0, 1))


# ---- bad input -----------------------------------------------------------------------------------
@pytest.mark.parametrize("args, named", [
    (["--methods", "bogus"], "unknown method 'bogus'"),
    (["--trials", "0"], "--trials must be at least 1, got 0"),
    (["--seeds", "0"], "--seeds must be at least 1, got 0"),
    (["--methods", ","], "--methods is empty"),
    (["--modalities", "m0,m9", "--dataset", "synthetic"], "m9"),
])
def test_an_unknown_method_or_an_empty_budget_is_one_clear_line(args, named, tmp_path, capsys):
    assert mmlib_main(["tune", *args, "--results-dir", str(tmp_path / "runs"), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and named in err and err.startswith("mmlib tune: ")
    assert not list(tmp_path.glob("*.json"))


# ---- several processes ---------------------------------------------------------------------------
def tune_process(tmp_path: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "mmlib", "tune", *TINY_CLI, "--results-dir", str(tmp_path / "runs"),
                             "--out", str(tmp_path / "tuned"), *args], cwd=REPO_ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def ran(output: str) -> set[int]:
    """The trial numbers a process says it finished."""
    return {int(n) for n in re.findall(r"^\w+ trial (\d+) (?:complete|pruned)", output, flags=re.MULTILINE)}


def finished_trials(tmp_path: Path) -> dict[int, tuple]:
    storage = f"sqlite:///{study_path(tmp_path / 'runs', 'synthetic', 'm0,m1')}"
    names = optuna.get_all_study_names(storage)
    trials = optuna.load_study(study_name=names[0], storage=storage).get_trials(states=FINISHED) if names else []
    return {t.number: (t.params, t.value, t.datetime_complete, t.user_attrs.get("pid")) for t in trials}


def finished_count(tmp_path: Path) -> int:
    """Finished trials read with sqlite3 alone while a process may still be creating the file."""
    path = study_path(tmp_path / "runs", "synthetic", "m0,m1")
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            return db.execute("select count(*) from trials where state in ('COMPLETE', 'PRUNED')").fetchone()[0]
    except sqlite3.OperationalError:  # no file or no table yet
        return 0


@pytest.mark.slow
def test_a_killed_tune_resumes_without_redoing_finished_trials(tmp_path):
    args = ["--methods", "concat", "--data", "num_samples=3000", "--epochs", "3", "--trials", "6", "--seeds", "1"]
    process = tune_process(tmp_path, *args)
    deadline = time.time() + 240
    while finished_count(tmp_path) < 2 and time.time() < deadline and process.poll() is None:
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    before = finished_trials(tmp_path)
    assert 2 <= len(before) < 6, "the study finished (or never started) before the kill; make the trials longer"
    resumed = tune_process(tmp_path, *args)
    out, err = resumed.communicate(timeout=240)
    assert resumed.returncode == 0, err
    after = finished_trials(tmp_path)
    assert {n: after[n] for n in before} == before  # kept as they were
    assert ran(out).isdisjoint(before) and len(ran(out)) == 6 - len(before)
    assert len(after) == 6
    assert not [p.name for p in (tmp_path / "runs").glob("*.json") if RECORD_NAME.match(p.name).group("copy")]


@pytest.mark.slow
def test_two_processes_on_one_study_never_run_the_same_trial_twice(tmp_path):
    args = ["--methods", "concat", "--data", "num_samples=2000", "--epochs", "2", "--trials", "8", "--seeds", "1"]
    workers = [tune_process(tmp_path, *args, "--worker", str(k)) for k in (0, 1)]
    outputs = [w.communicate(timeout=300) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    runs = [ran(out) for out, _ in outputs]
    assert runs[0].isdisjoint(runs[1])
    trials = finished_trials(tmp_path)
    assert runs[0] | runs[1] == set(trials) and len(trials) >= 8
    for worker, numbers in zip(workers, runs):
        assert {trials[n][3] for n in numbers} <= {worker.pid}
    tuned = json.loads((tmp_path / "tuned" / "synthetic-m0,m1.json").read_text())
    assert sum(tuned["methods"]["concat"]["trials"][s.name.lower()] for s in FINISHED) == 8


@pytest.mark.slow
def test_two_sweeps_and_a_tuning_study_sharing_one_store_do_not_corrupt_each_other(tmp_path):
    """Issue 28. The tuner's first trial (the defaults) is the sweeps' runs of seeds 0 and 1, so all
    three want the same runs at once; every run is stored once and every record reads back."""
    runs = tmp_path / "runs"
    sweep = ["--methods", "concat,sum", "--datasets", "synthetic", "--seeds", "3", "--set", "epochs=2",
             "--set", "probe=false", "--set", "modalities=m0,m1", "--data", "num_samples=300",
             "--results-dir", str(runs), "--quiet", "--stale-after", "20"]
    processes = [subprocess.Popen([sys.executable, "-m", "mmlib", "sweep", *sweep], cwd=REPO_ROOT, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    processes.append(tune_process(tmp_path, "--methods", "concat", "--data", "num_samples=300", "--epochs", "2",
                                  "--trials", "4", "--seeds", "2"))
    outputs = [p.communicate(timeout=300) for p in processes]
    assert [p.returncode for p in processes] == [0, 0, 0], outputs
    names = [p.name for p in runs.glob("*.json")]
    assert all(RECORD_NAME.match(n) and not RECORD_NAME.match(n).group("copy") for n in names), names
    frame = records_frame(json.loads((runs / n).read_text()) for n in names)
    assert len(frame) == len(names)
    grid = {c.run_id for c in expand_grid({"methods": "concat,sum", "datasets": "synthetic", "seeds": 3,
                                           "data": {"synthetic": {"num_samples": 300}},
                                           "train": {"epochs": 2, "probe": False, "modalities": "m0,m1"}})}
    trials = finished_trials(tmp_path)
    storage = f"sqlite:///{study_path(runs, 'synthetic', 'm0,m1')}"
    study = optuna.load_study(study_name=optuna.get_all_study_names(storage)[0], storage=storage)
    tuned_runs = {r for t in study.get_trials(states=FINISHED) for r in t.user_attrs["run_ids"]}
    assert grid | tuned_runs == set(frame["run_id"])
    assert len(grid & tuned_runs) == 2  # the defaults' runs of seeds 0 and 1, wanted by all three processes
    assert len(trials) == 4
    assert not list(runs.glob(".*.tmp")) and not list((runs / ".sweep" / "claims").glob("*.claim"))


# ---- the chapter ---------------------------------------------------------------------------------
@pytest.mark.slow
def test_tuning_chapter_retunes_in_place_and_judges_each_claim_under_both_settings(run_notebook, tmp_path):
    params = {"methods": "concat,ours,ours_rownorm", "view_sets": "fou,mor", "seeds": 2, "epochs": 2,
              "tune_trials": 3, "tune_seeds": 1, "tuned_dir": str(tmp_path / "tuned"),
              "results_dir": str(tmp_path / "results" / "runs"), "figures_dir": str(tmp_path / "figures")}
    run = run_notebook("tuning", params)
    stored = json.loads((run.output_dir / "tuning.json").read_text())
    tuned = read_tuned(tmp_path / "tuned" / "mfeat-fou,mor.json")
    assert sorted(tuned["methods"]) == ["concat", "ours", "ours_rownorm"]
    assert all(entry["budget"] == 3 and entry["trials"]["complete"] == 3 for entry in tuned["methods"].values())
    claims = {(c["claim"], c["setting"]) for c in stored["claims"]}
    assert claims == {(claim, setting) for setting in ("defaults", "tuned")
                      for claim in ("Ours beats every baseline", "Ours (row-normalised) beats every baseline",
                                    "weakest-first beats strongest-first (Ours against its reverse order)")}
    assert set(stored["tables"]["fou,mor"]) == {"concat", "ours", "ours_rownorm"}
    assert set(stored["importance"]) == {"fou,mor|ours", "fou,mor|ours_rownorm"}
    assert all(abs(sum(v.values()) - 1) < 1e-6 for v in stored["importance"].values())
    assert run.glued["tuning_verdicts"] == 3 and 0 <= run.glued["tuning_changed"] <= 3
    assert (tmp_path / "figures" / "tuning_ours.png").stat().st_size > 1000
