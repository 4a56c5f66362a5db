"""``python -m mmlib``: the train command, its options and its errors."""

import dataclasses
import json
import subprocess
import sys

import pytest

from mmlib.cli import build_parser, config_from_args


def run(*args):
    return subprocess.run([sys.executable, "-m", "mmlib", *args], capture_output=True, text=True,
                          env={"TQDM_DISABLE": "1", "PATH": ""})


def test_train_prints_summary_and_writes_record(tmp_path):
    out = run("train", "--dataset", "synthetic", "--data", "num_samples=200", "--method", "ours", "--tau", "0.3",
              "--epochs", "1", "--hidden-dim", "8", "--probe", "false",
              "--results-dir", str(tmp_path), "--checkpoint-dir", str(tmp_path / "ckpt"), "--quiet")
    assert out.returncode == 0, out.stderr
    assert "ours on synthetic [m0,m1] seed 0: test fused" in out.stdout
    (record_path,) = tmp_path.glob("*.json")
    record = json.loads(record_path.read_text())
    assert record["config"]["method_options"]["tau"] == 0.3
    assert record["config"]["dataset_options"] == {"num_samples": 200}


def test_train_subprocess_runs_pinned_and_its_record_names_the_numerics(tmp_path):
    """The child starts with none of the pin's variables (run() passes PATH and TQDM_DISABLE only):
    importing mmlib pins it, and the record says so with the CPU, its capability and the BLAS."""
    from mmlib.numerics import cpu_supports_pin

    out = run("train", "--dataset", "synthetic", "--data", "num_samples=120", "--method", "concat", "--epochs", "1",
              "--hidden-dim", "8", "--probe", "false", "--results-dir", str(tmp_path),
              "--checkpoint-dir", str(tmp_path / "ckpt"), "--quiet")
    assert out.returncode == 0, out.stderr
    (record_path,) = tmp_path.glob("*.json")
    numerics = json.loads(record_path.read_text())["environment"]["numerics"]
    assert numerics["cpu"] and numerics["blas"] and numerics["cpu_capability"]
    if not cpu_supports_pin():
        pytest.skip(f"this CPU ({numerics['cpu']}) has no AVX2 and FMA: the pin cannot be in force")
    assert numerics["pinned"] and numerics["cpu_capability"] == "AVX2" and numerics["mkl_branch"] == "AVX2", numerics
    assert all(kernels == "Haswell" for kernels in numerics["openblas"]), numerics


def test_option_of_another_method_is_rejected():
    out = run("train", "--method", "concat", "--tau", "0.3")
    assert out.returncode == 2 and "--tau is not an option of --method concat" in out.stderr


def test_unknown_dataset_option_is_rejected():
    out = run("train", "--dataset", "synthetic", "--data", "strenghts=1,2", "--epochs", "1")
    assert out.returncode == 2 and "dataset 'synthetic' has no option 'strenghts'" in out.stderr


def test_help_documents_every_method_option():
    text = build_parser().format_help()
    for flag in ("--tau", "--mapping", "--row-normalize", "--memory", "--order", "--granularity"):
        assert flag in text


def test_unknown_command_and_modality():
    assert run("fly").returncode == 2
    out = run("train", "--modalities", "fou,fou", "--epochs", "1")
    assert out.returncode == 2 and "listed twice" in out.stderr


def test_parsed_bool_and_defaults():
    parser = build_parser()
    config = config_from_args(parser.parse_args(["--row-normalize", "true", "--epochs", "2"]), parser)
    assert config.method_options["row_normalize"] is True and config.epochs == 2


def test_ctrl_c_is_one_line_naming_resume(tmp_path):
    """SIGINT after the first checkpoint: exit 130, one line naming --resume, no traceback, no record."""
    import signal
    import time

    args = ["train", "--dataset", "synthetic", "--data", "num_samples=2000", "--method", "concat", "--epochs", "400",
            "--hidden-dim", "8", "--probe", "false", "--device", "cpu", "--quiet",
            "--results-dir", str(tmp_path / "runs"), "--checkpoint-dir", str(tmp_path / "ckpt")]
    # a shell starts background jobs with SIGINT ignored, and children inherit that: restore the default
    # so that the child installs Python's KeyboardInterrupt handler as it does in a terminal
    process = subprocess.Popen([sys.executable, "-m", "mmlib", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env={"TQDM_DISABLE": "1", "PATH": ""},
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while not list((tmp_path / "ckpt").glob("*.ckpt")) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
    assert process.poll() is None, "the run ended before it could be interrupted"
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert stderr.strip().splitlines() == ["mmlib train: interrupted (a train run keeps every finished epoch in its "
                                           "checkpoint: add --resume to continue)"]
    assert not list((tmp_path / "runs").glob("*.json"))  # no record of an unfinished run


def test_help_explains_every_config_field_in_its_group():
    """Each TrainConfig field's flag sits under its group's heading with the sentence of its metadata."""
    import re

    from mmlib.config import GROUPS, TrainConfig

    parser = build_parser()
    flat = re.sub(r"\s+", " ", parser.format_help())
    titles = {group.title: group for group in parser._action_groups}
    for f in dataclasses.fields(TrainConfig):
        flag = "--data" if f.name == "dataset_options" else f"--{f.name.replace('_', '-')}"
        if f.name == "method_options":
            continue  # one flag per option, under each method's heading
        group = titles[GROUPS[f.metadata["group"]]]
        assert flag in {s for a in group._group_actions for s in a.option_strings}, (flag, group.title)
        assert re.sub(r"\s+", " ", f.metadata["help"]) in flat, flag


def test_config_file_gives_the_run_in_the_sweep_layout(tmp_path):
    from mmlib.sweep.grid import write_grid
    from mmlib.config import TrainConfig

    wanted = TrainConfig(dataset="synthetic", dataset_options={"num_samples": 120}, method="concat", epochs=1,
                         hidden_dim=8,
                         probe=False, device="cpu")
    one = write_grid([wanted], tmp_path / "run.toml")
    args = build_parser().parse_args(["--config", str(one)])
    assert config_from_args(args, build_parser()).run_id == wanted.run_id
    (tmp_path / "layout.toml").write_text('methods = ["concat"]\ndatasets = ["synthetic"]\n[train]\nepochs = 1\n'
                                          'hidden_dim = 8\nprobe = false\n[data.synthetic]\nnum_samples = 120\n')
    args = build_parser().parse_args(["--config", str(tmp_path / "layout.toml"), "--device", "cpu"])
    with pytest.raises(ValueError, match=r"--config .*layout.toml gives the run; drop --device or put it in the file"):
        config_from_args(args, build_parser())
    out = run("train", "--config", str(tmp_path / "layout.toml"), "--results-dir", str(tmp_path / "runs"), "--quiet")
    assert out.returncode == 0, out.stderr
    assert "concat on synthetic [m0,m1] seed 0" in out.stdout
    write_grid([wanted, dataclasses.replace(wanted, seed=1)], tmp_path / "two.toml")
    out = run("train", "--config", str(tmp_path / "two.toml"))
    assert out.returncode == 2
    assert out.stderr.strip().endswith("holds 2 runs; train takes one (python -m mmlib sweep "
                                       f"{tmp_path / 'two.toml'} runs them all)")


def test_a_file_exported_before_a_field_was_retired_still_reads(tmp_path):
    from mmlib.sweep.grid import GridError, build_config

    fields = {"dataset": "synthetic", "method": "concat", "epochs": 1}
    assert build_config({**fields, "selection": "best", "selection_window": 3, "amp": True}, "old.toml").run_id == \
        build_config(fields, "new.toml").run_id
    with pytest.raises(GridError, match=r"old.toml: selection = 'smoothed', but selection was retired at 'best'"):
        build_config({**fields, "selection": "smoothed"}, "old.toml")
