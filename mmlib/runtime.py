"""Where and how a run executes: the device, CPU threads, seeds and random states, autocast, compilation.

Determinism: seeds for Python, NumPy and torch, deterministic algorithms, and dedicated generators
for shuffling and augmentation, all saved in the checkpoint (:func:`rng_state`), so a run stopped
after epoch k and resumed ends with exactly the metrics of an uninterrupted run. Random states are
saved on the CPU (torch's CPU and CUDA generators, the loop's generators) and restored from there,
so a checkpoint resumes on either device. Mixed precision (bfloat16 :func:`autocast`) is used on
CUDA for training and evaluation; the CPU path is plain float32.

CPU threads: the book's models are small, and on a few shared cores extra threads only spin
(measured on the 2-core CI machine under load: 5 mfeat epochs took 2.3 s on one thread and 14.7 s
on two, and the linear probes 56 s instead of 1 s). CPU runs therefore use ``MMLIB_CPU_THREADS``
threads (default 1) for torch and for the BLAS behind scikit-learn; raise it for ResNets on a big CPU.
The count is recorded in the record's environment: CPU results are bitwise reproducible at equal
thread counts only (the order of floating-point sums depends on it).
"""

from __future__ import annotations

import contextlib
import os
import random
import warnings

import numpy as np
import torch
from torch import nn

def resolve_device(device: str) -> torch.device:
    """``auto`` (CUDA when available, else the CPU), ``cpu``, ``cuda`` or ``cuda:N``; a clear error otherwise."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        resolved = None
    if resolved is None or resolved.type not in {"cpu", "cuda"}:
        raise ValueError(f"unknown device {device!r}; choose auto, cpu, cuda or cuda:N")
    if resolved.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if (resolved.index or 0) >= count:
            raise ValueError(f"device {device!r} asked for, but torch sees {count} GPU(s) (torch {torch.__version__}, "
                             f"CUDA build {torch.version.cuda}); use device cpu or auto")
    return resolved


def cpu_thread_count() -> int:
    """``MMLIB_CPU_THREADS`` (default 1): a positive whole number, else a clear error."""
    text = os.environ.get("MMLIB_CPU_THREADS", "1")
    if not text.strip().isdigit() or int(text) < 1:
        raise ValueError(f"MMLIB_CPU_THREADS must be a positive whole number of CPU threads, got {text!r}; unset it "
                         "for 1")
    return int(text)


@contextlib.contextmanager
def cpu_threads(device: torch.device):
    """Limit torch and BLAS to ``MMLIB_CPU_THREADS`` threads (default 1) while training on the CPU."""
    if device.type != "cpu":
        yield
        return
    from threadpoolctl import threadpool_limits

    threads = cpu_thread_count()
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        torch.set_num_threads(before)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def rng_state(generators: dict[str, torch.Generator]) -> dict:
    """Every random state a resumed run needs: Python, NumPy, torch's CPU and CUDA generators, ours."""
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            **{name: g.get_state() for name, g in generators.items()}}


def set_rng_state(state: dict, generators: dict[str, torch.Generator]) -> None:
    """Restore :func:`rng_state`; RNG states are CPU byte tensors whatever device the run uses."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"].cpu())
    _restore_cuda_rng_states(state["cuda"])
    for name, generator in generators.items():
        generator.set_state(state[name].cpu())


def _restore_cuda_rng_states(states: list[torch.Tensor]) -> None:
    """One saved CUDA RNG state per visible device, as many as both have; a warning when the counts differ
    (a checkpoint of 8 GPUs resumed on 2: devices 0 and 1 continue their streams, the rest are not resumed)."""
    visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if len(states) != visible:
        warnings.warn(f"resume: the checkpoint saved {len(states)} CUDA RNG state(s) and {visible} CUDA device(s) are "
                      f"visible; restored the first {min(len(states), visible)}, so random draws on the other devices "
                      "do not continue the interrupted run's", stacklevel=4)
    if states and visible:
        torch.cuda.set_rng_state_all([s.cpu() for s in states[:visible]])


def compile_encoders(model: nn.Module) -> None:
    """``torch.compile`` every encoder in place (``nn.Module.compile``), for ``TrainConfig.compile``.

    The encoders are where the time goes (a ResNet-18 per modality in the peers' protocol); heads,
    mapping and memory stay eager, since methods call them on several subsets per step. The state
    dict keeps its keys, so checkpoints load into an eager model. Compiled dropout draws its masks
    from inductor's generator, not torch's, so a compiled run is not bitwise the eager one (measured
    on the CPU, synthetic data, 3 epochs: training loss 1.3898 vs 1.3837 after epoch 1) and has
    its own run id. Whether it pays is measured, not assumed: ``bench scale --compile`` prints
    compiled / eager samples per second (on the CPU, 400 samples: 40.8 s against 1.0 s, all of it
    compilation).
    """
    for encoder in model.encoders.values():
        encoder.compile()


def autocast(device: torch.device):
    """bfloat16 autocast on CUDA, for training and evaluation alike; off on the CPU (``amp`` is retired)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


class _HiddenBar:
    """The two calls ``train_one_epoch`` makes on a progress bar, doing nothing."""

    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def progress_bar(total: int, desc: str, show: bool):
    """A tqdm bar of ``total`` steps when ``show``, else a hidden one: tqdm is imported only to show
    progress, so a run without it (``gpu_check`` on a bare GPU image) needs no tqdm."""
    if not show:
        return _HiddenBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False)
