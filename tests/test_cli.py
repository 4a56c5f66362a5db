"""``python -m mmlib``: the train command, its options and its errors."""

import json
import subprocess
import sys

import pytest

from mmlib.cli import build_parser, config_from_args


def run(*args):
    return subprocess.run([sys.executable, "-m", "mmlib", *args], capture_output=True, text=True, env={"TQDM_DISABLE": "1", "PATH": ""})


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
