"""``python -m mmlib.sweep.child REQUEST``: the process that trains one run of a sweep (:mod:`mmlib.sweep.launch`)."""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
import threading
import time

from mmlib.config import TrainConfig
from mmlib.train import train


def _exit_with_parent(parent: int) -> None:
    """End this process when the sweep that started it (pid ``parent``) dies, so that no orphan trains a
    run whose lease has gone stale while a new sweep resumes it: the kernel kills it (Linux
    ``PR_SET_PDEATHSIG``), elsewhere a thread that polls the parent does."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    else:
        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(1.0)
            os._exit(1)

        threading.Thread(target=watch, name="parent watch", daemon=True).start()
    if os.getppid() != parent:  # the parent died before the watch began
        os._exit(1)


def _train_child(request: str) -> None:
    """``python -m mmlib.sweep.child REQUEST``: train one run of a sweep, resuming its checkpoint."""
    payload = json.loads(request)
    _exit_with_parent(payload["parent"])
    train(TrainConfig(**payload["config"]), results_dir=payload["results_dir"],
          checkpoint_dir=payload["checkpoint_dir"],
          resume=True, progress=False)


if __name__ == "__main__":
    _train_child(sys.argv[1])
