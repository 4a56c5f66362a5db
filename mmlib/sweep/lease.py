"""Leases in the results store: at most one process trains a run, however many sweeps share the store.

A lease is a small JSON file (owner pid, host, a random token, start time) that appears
atomically with its content: it is written to a temporary file and hard-linked to
``<run_id>.lease``, which fails when the name exists (``O_EXCL`` semantics, also on NFS). While the
run trains, a heartbeat thread touches the file every ``heartbeat_s`` seconds; the file's
modification time is the heartbeat.

A lease is **stale** when its owner is a dead process on this host, or when its heartbeat is older
than ``stale_after_s`` (an owner on another machine, or a pid reused after a reboot); a stale lease
is taken over. Taking over is serialised by a second exclusive file, ``<run_id>.takeover``: the
taker re-reads the lease and replaces it (``os.replace``) only if it still holds the token that was
judged stale, so two sweeps that find the same stale lease at once never both win. A taker killed
inside that millisecond window leaves its takeover file behind; it is removed once older than
``stale_after_s``. Heartbeat ages compare this machine's clock with the file server's, so
``stale_after_s`` must exceed any clock skew between the machines sharing the store.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import socket
import tempfile
import threading
import time
import uuid
from pathlib import Path

HOST = socket.gethostname()


@dataclasses.dataclass(frozen=True)
class Owner:
    """Who holds a lease: process id, host name, the lease's random token, and when it was taken."""

    pid: int
    host: str
    token: str
    since: float

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host}"


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` of this host still runs (one owned by another user counts as running).

    0 and negative numbers name process groups, not a process (``os.kill(0, 0)`` always succeeds),
    so they are never alive.
    """
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, owned by another user
    return True


def read_lease(path: Path) -> tuple[Owner, float] | None:
    """The owner of the lease at ``path`` and its heartbeat age in seconds; None when there is no lease."""
    try:
        text, mtime = path.read_text(), path.stat().st_mtime
    except FileNotFoundError:
        return None
    return Owner(**json.loads(text)), time.time() - mtime


def is_stale(owner: Owner, age: float, stale_after_s: float) -> bool:
    """A lease whose heartbeat is older than ``stale_after_s``, or whose owner is a dead process on this host."""
    return age > stale_after_s or (owner.host == HOST and not pid_alive(owner.pid))


class Lease:
    """A lease this process holds: heartbeats in a daemon thread until :meth:`release`.

    ``lost`` is set when the heartbeat finds the lease gone or replaced (another process judged it
    stale, e.g. after this machine was suspended longer than ``stale_after_s``); the holder should
    then stop training the run.
    """

    def __init__(self, path: Path, owner: Owner, heartbeat_s: float) -> None:
        self.path, self.owner, self.heartbeat_s = path, owner, heartbeat_s
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat {path.stem}", daemon=True)
        self._thread.start()

    def _still_mine(self) -> bool:
        held = read_lease(self.path)
        return held is not None and held[0].token == self.owner.token

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            try:
                if not self._still_mine():
                    raise FileNotFoundError
                os.utime(self.path)
            except FileNotFoundError:
                self.lost.set()
                return

    def release(self) -> None:
        """Stop the heartbeat and remove the lease file (unless another process has taken it over)."""
        self._stop.set()
        self._thread.join()
        if self._still_mine():
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    def __enter__(self) -> "Lease":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _take_over(path: Path, candidate: str, stale: Owner, stale_after_s: float) -> bool:
    """Replace the stale lease of ``stale`` by the file ``candidate``; False when another process got there first."""
    lock = path.with_suffix(".takeover")
    try:
        os.close(os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        with contextlib.suppress(FileNotFoundError):
            if time.time() - lock.stat().st_mtime > stale_after_s:
                lock.unlink()
        return False
    try:
        held = read_lease(path)
        if held is None or held[0].token != stale.token:
            return False
        os.replace(candidate, path)
        return True
    finally:
        lock.unlink()


def acquire(path: str | Path, heartbeat_s: float = 30.0, stale_after_s: float = 300.0) -> Lease | Owner | None:
    """Lease ``path`` for this process: a :class:`Lease` when won, else the :class:`Owner` holding it.

    A stale lease is taken over. None when the lease changed hands three times during the call
    (each time released or taken over by someone else); the caller tries again later.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mine = Owner(pid=os.getpid(), host=HOST, token=uuid.uuid4().hex, since=time.time())
    fd, candidate = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        json.dump(dataclasses.asdict(mine), handle)
    try:
        for _ in range(3):
            try:
                os.link(candidate, path)
                return Lease(path, mine, heartbeat_s)
            except FileExistsError:
                pass
            held = read_lease(path)
            if held is None:
                continue  # released between our two looks: try again
            owner, age = held
            if not is_stale(owner, age, stale_after_s):
                return owner
            if _take_over(path, candidate, owner, stale_after_s):
                return Lease(path, mine, heartbeat_s)
        return None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(candidate)
