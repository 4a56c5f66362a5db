"""The tensor cache: resumable, deterministic, refuses unfinished or complete folders."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from fabricate import fabricate_cremad

from mmlib.data import load_dataset
from mmlib.data.cache import build_cache, load_cache
from mmlib.data.cremad import plan_cremad

SMALL = dict(frames=2, size=8, sample_rate=8000, duration=0.25, n_fft=32, hop=16, val_fraction=0.25, test_fraction=0.25)


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    return fabricate_cremad(tmp_path_factory.mktemp("cremad"), frames=3, seconds=0.2)


def interrupted_plan(plan, after: int):
    calls = {"n": 0}

    def process(sample):
        if calls["n"] == after:
            raise KeyboardInterrupt
        calls["n"] += 1
        return plan.process(sample)

    return dataclasses.replace(plan, process=process)


def test_resume_after_interrupt_matches_uninterrupted(raw, tmp_path):
    plan = plan_cremad(raw, **SMALL)
    with pytest.raises(KeyboardInterrupt):
        build_cache(interrupted_plan(plan, 17), tmp_path / "resumed", progress=False, flush_every=5)
    with pytest.raises(ValueError, match=r"is incomplete \(17 of 48 samples\); rerun prepare to finish it"):
        load_cache(tmp_path / "resumed")
    build_cache(plan, tmp_path / "resumed", progress=False)
    build_cache(plan, tmp_path / "straight", progress=False)
    for name in ("audio.npy", "visual.npy", "labels.npy"):
        assert (tmp_path / "resumed" / name).read_bytes() == (tmp_path / "straight" / name).read_bytes()
    assert load_cache(tmp_path / "resumed").identity == load_cache(tmp_path / "straight").identity


def test_complete_cache_is_never_overwritten(raw, tmp_path):
    plan = plan_cremad(raw, **SMALL)
    build_cache(plan, tmp_path / "c", progress=False)
    with pytest.raises(FileExistsError, match="already complete and is never overwritten"):
        build_cache(plan, tmp_path / "c", progress=False)


def test_unfinished_cache_with_other_options_is_refused(raw, tmp_path):
    with pytest.raises(KeyboardInterrupt):
        build_cache(interrupted_plan(plan_cremad(raw, **SMALL), 3), tmp_path / "c", progress=False)
    with pytest.raises(ValueError, match="other samples or parameters"):
        build_cache(plan_cremad(raw, **{**SMALL, "hop": 8}), tmp_path / "c", progress=False)


def test_folder_that_is_not_a_cache_is_refused(raw, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="is not a cache being prepared"):
        build_cache(plan_cremad(raw, **SMALL), tmp_path, progress=False)
    with pytest.raises(FileNotFoundError, match="is not a tensor cache"):
        load_cache(tmp_path)


def test_loaded_cache_is_read_only_memory_map_and_selects_modalities(raw, tmp_path):
    build_cache(plan_cremad(raw, **SMALL), tmp_path / "c", progress=False)
    ds = load_dataset("cache", path=str(tmp_path / "c"), modalities="visual")
    assert ds.modalities == ("visual",) and isinstance(ds.inputs["visual"], np.memmap)
    assert not ds.inputs["visual"].flags.writeable
    batch = next(ds.batches("train", batch_size=4))
    assert batch.inputs["visual"].dtype.is_floating_point and float(batch.inputs["visual"].max()) <= 1.0
    with pytest.raises(ValueError, match="holds dataset 'cremad', not 'mvsa'"):
        load_dataset("mvsa", cache=str(tmp_path / "c"))
