"""``python -m mmlib bench NAME``: benchmarks that print ratios against a baseline measured in the same run.

    shapley   exact Shapley (8 subsets) / one validation pass; hybrid order (6 orders) / one order
    methods   each method's epoch time / Concat's
    data      samples per second from the tensor cache / decoding media every epoch
    scale     CREMA-D-shaped throughput: the real data path / tensors already on the device
    frames    crops from a cache of each frame size / crops from the source frame (PSNR, cache GB)
"""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = ("shapley", "methods", "data", "scale", "frames")


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in BENCHMARKS:
        print(__doc__.strip())
        if argv and argv[0] not in {"-h", "--help"}:
            print(f"\nmmlib bench: unknown benchmark {argv[0]!r}; choose one of {list(BENCHMARKS)}", file=sys.stderr)
            return 2
        return 0 if argv else 2
    return int(importlib.import_module(f"mmlib.benchmarks.{argv[0]}").main(argv[1:]) or 0)
