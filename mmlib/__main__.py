"""``python -m mmlib COMMAND ...``: one entry point, one module per command.

    train     train one method on one dataset and store the run        (mmlib.cli)
    chapter   run one book chapter with papermill parameters            (mmlib.chapters)
    prepare   convert a real dataset into the tensor cache once         (mmlib.data.prepare)
    bench     print speed ratios measured in one run                    (mmlib.benchmarks)
    sweep     train a grid of runs in parallel processes, resumable     (mmlib.sweep)
    doctor    check the installed versions and compiled extensions      (mmlib.doctor)
    diagnose  imbalance diagnostic of a stored run: Shapley, EDM, decision layer (mmlib.diagnosis)
    tune      tune hyperparameters on validation, equal budget per method (mmlib.tuning.cli)
"""

from __future__ import annotations

import importlib
import signal
import sys

COMMANDS = {
    "train": "mmlib.cli",
    "chapter": "mmlib.chapters",
    "prepare": "mmlib.data.prepare",
    "bench": "mmlib.benchmarks",
    "sweep": "mmlib.sweep",
    "doctor": "mmlib.doctor",
    "diagnose": "mmlib.diagnosis",
    "tune": "mmlib.tuning.cli",
}

# A wrong option, file or folder: every message raised for one names what was wrong and what to
# do, so the user gets that one line and exit status 2. Ctrl-C is one line and status 130 (nothing
# half-written is left: records and checkpoints are moved into place whole). Any other exception is
# a bug: traceback. A write past the file-size limit (``ulimit -f``) fails with an OSError ("File too
# large") instead of the signal SIGXFSZ killing the process, so it too is one line.
USER_ERRORS = (ValueError, OSError)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help"}:
        print(__doc__.strip())
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"mmlib: unknown command {command!r}; choose one of {sorted(COMMANDS)}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        return int(importlib.import_module(COMMANDS[command]).main(rest) or 0)
    except USER_ERRORS as error:
        print(f"mmlib {command}: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        hint = (" (a train run keeps every finished epoch in its checkpoint: add --resume to "
                "continue)") if command == "train" else ""
        print(f"mmlib {command}: interrupted{hint}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
