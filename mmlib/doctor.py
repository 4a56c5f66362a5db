"""``python -m mmlib doctor``: is this environment able to run the book?

Prints Python, torch / torchaudio / torchvision and CUDA versions and the device, then checks three
things a broken install gets wrong long before any test notices:

1. **The compiled trio belongs together.** torch, torchaudio and torchvision ship C++ extensions
   built against one exact torch release. pip can pair them wrongly when a range allows it (it once
   paired torchaudio 2.11.1 with torch 2.11.0, and ``libtorchaudio.so`` failed to load with
   ``undefined symbol``). The rule, from PyTorch's release matrix: torchaudio's version equals
   torch's, and torchvision ``0.(minor + 15).patch`` goes with torch ``2.minor.patch``. Versions
   are read from the installed distributions' metadata, before anything is imported, so a
   mismatch is named even when the import itself would crash.
2. **The CPU numerics' pin** (:mod:`mmlib.numerics`): one line says whether it is in force and, if
   not, why; a pin variable set to a value its library does not know is a problem.
3. **Every compiled extension the project uses loads and runs**: a torchaudio kernel (the
   resampler and the Kaldi filterbank of the preparers, :mod:`mmlib.data.media`), a torchvision
   op (``nms``) and ResNet-18, an OpenCV video written and read back, a WAV through soundfile.

Exit 0 when everything passes, 1 with one line per problem and the command that fixes it.
``make test`` and ``.ci/run`` run it first, so a broken environment fails in seconds.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import platform
import sys
import tempfile
from pathlib import Path
from typing import Callable

TRIO = ("torch", "torchaudio", "torchvision")
LOCK = "constraints.txt"
FIX = f"python -m pip install --force-reinstall -c {LOCK} torch torchaudio torchvision"


def installed_versions() -> dict[str, str | None]:
    """Versions of the trio from package metadata (None when a package is not installed)."""
    versions = {}
    for name in TRIO:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _release(version: str) -> tuple[int, int, int]:
    """``2.11.0+cpu`` -> ``(2, 11, 0)``: the public release, local build tag dropped."""
    public = version.split("+")[0]
    parts = [int("".join(ch for ch in part if ch.isdigit()) or 0) for part in public.split(".")[:3]]
    return tuple(parts + [0] * (3 - len(parts)))  # type: ignore[return-value]


def expected_partners(torch_version: str) -> dict[str, str]:
    """The torchaudio and torchvision releases built against ``torch_version``."""
    major, minor, patch = _release(torch_version)
    return {"torchaudio": f"{major}.{minor}.{patch}", "torchvision": f"0.{minor + 15}.{patch}"}


def version_problems(versions: dict[str, str | None]) -> list[str]:
    """One sentence per missing package or mismatched pair, each naming both packages and the fix."""
    missing = [name for name in TRIO if versions.get(name) is None]
    if missing:
        return [f"{name} is not installed; install the locked trio: {FIX}" for name in missing]
    partners = expected_partners(versions["torch"])
    problems = []
    for name, wanted in partners.items():
        if ".".join(map(str, _release(versions[name]))) != wanted:
            problems.append(
                f"{name} {versions[name]} does not belong to torch {versions['torch']} "
                f"(torch {versions['torch']} needs {name} {wanted}); its compiled extension will not load. "
                f"Fix: {FIX}"
            )
    return problems


def _check_torchaudio() -> str:
    import torch
    import torchaudio._extension
    import torchaudio.compliance.kaldi
    import torchaudio.functional
    import torchaudio.transforms

    if not torchaudio._extension._IS_TORCHAUDIO_EXT_AVAILABLE:
        raise RuntimeError("libtorchaudio did not load")
    wave = torch.sin(torch.linspace(0, 400.0, 16000))
    filtered = torchaudio.functional.lfilter(wave[None], torch.tensor([1.0, -0.5]), torch.tensor([0.5, 0.5]))
    resampled = torchaudio.transforms.Resample(16000, 22050)(wave)
    bank = torchaudio.compliance.kaldi.fbank(wave[None], num_mel_bins=128, sample_frequency=16000)
    return (f"lfilter kernel {tuple(filtered.shape)}, resample {tuple(wave.shape)} -> {tuple(resampled.shape)}, "
            f"fbank {tuple(bank.shape)}")


def _check_torchvision() -> str:
    import torch
    import torchvision.ops
    from torchvision.models import resnet18

    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 11.0, 11.0], [50.0, 50.0, 60.0, 60.0]])
    kept = torchvision.ops.nms(boxes, torch.tensor([0.9, 0.8, 0.7]), iou_threshold=0.5)
    with torch.no_grad():
        logits = resnet18(num_classes=4).eval()(torch.zeros(1, 3, 32, 32))
    return f"nms kept {kept.tolist()}, resnet18 -> {tuple(logits.shape)}"


def _check_opencv() -> str:
    import cv2
    import numpy as np

    with tempfile.TemporaryDirectory() as folder:
        path = str(Path(folder) / "check.avi")
        writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 10, (32, 24))
        for value in range(0, 250, 50):
            writer.write(np.full((24, 32, 3), value, dtype=np.uint8))
        writer.release()
        capture = cv2.VideoCapture(path)
        frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        ok, frame = capture.read()
        capture.release()
    if not ok or frames != 5:
        raise RuntimeError(f"OpenCV wrote 5 frames but read back {frames} (first read ok: {ok})")
    return f"video read back, {frames} frames of {frame.shape}, opencv {cv2.__version__}"


def _check_soundfile() -> str:
    import numpy as np
    import soundfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "check.wav"
        soundfile.write(str(path), np.zeros(800, dtype=np.float32), 8000, subtype="PCM_16")
        samples, rate = soundfile.read(str(path), dtype="float32")
    return f"wav read back, {len(samples)} samples at {rate} Hz, libsndfile {soundfile.__libsndfile_version__}"


EXTENSION_CHECKS: dict[str, tuple[Callable[[], str], str]] = {
    "torchaudio": (_check_torchaudio, FIX),
    "torchvision": (_check_torchvision, FIX),
    "opencv": (_check_opencv, f"python -m pip install -c {LOCK} -e '.[data]'"),
    "soundfile": (_check_soundfile, f"python -m pip install -c {LOCK} soundfile"),
}


def device_summary() -> list[str]:
    """Python, the trio's versions, CUDA, the device training would use and the CPU numerics' pin."""
    import torch

    from mmlib.numerics import numerics_info, pin_status

    lines = [f"python       {platform.python_version()} ({sys.executable})"]
    lines += [f"{name:<12} {version or 'not installed'}" for name, version in installed_versions().items()]
    lines.append(f"cuda         {torch.version.cuda or 'none (CPU build)'}")
    if torch.cuda.is_available():
        lines.append(f"device       cuda: {torch.cuda.get_device_name(0)} ({torch.cuda.device_count()} visible)")
    else:
        lines.append("device       cpu (no CUDA device visible)")
    lines.append(f"numerics     {pin_status(numerics_info())}")
    return lines


def run_checks() -> list[str]:
    """Print what is installed and each check's outcome; return the problems (empty when healthy)."""
    from mmlib.numerics import pin_problems

    problems = version_problems(installed_versions())
    if problems:  # importing a mismatched extension can crash the process: name the pair and stop
        return problems
    for line in device_summary():
        print(line)
    for name, (check, fix) in EXTENSION_CHECKS.items():
        try:
            print(f"ok           {name}: {check()}")
        except Exception as error:  # any failure to load or run a compiled extension is the finding
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            problems.append(f"{name} failed to load or run: {first_line}. Fix: {fix}")
    return problems + pin_problems()


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(prog="python -m mmlib doctor", description=__doc__.split("\n\n")[0]).parse_args(argv)
    problems = run_checks()
    for problem in problems:
        print(f"mmlib doctor: {problem}", file=sys.stderr)
    if not problems:
        print("mmlib doctor: the environment is ready")
    return 1 if problems else 0
