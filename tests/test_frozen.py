"""Frozen pretrained backbones (paper Table 3): features computed once and cached, the backbone
never trained, adapters Linear + ReLU, the pretraining pool disjoint from every split."""

import numpy as np
import pytest
import torch

from mmlib.data import load_dataset
from mmlib.encoders import AdapterEncoder, build_encoder
from mmlib.config import TrainConfig
from mmlib.train import train

OPTIONS = {"modalities": "fou,mor", "pretrain_epochs": 2, "backbone_dim": 16}


def test_backbone_features_are_computed_once_and_cached(tmp_path, monkeypatch):
    import mmlib.data.frozen as frozen

    calls = []
    compute = frozen.compute_features
    monkeypatch.setattr(frozen, "compute_features", lambda *a, **k: calls.append(1) or compute(*a, **k))
    first = load_dataset("frozen", cache=str(tmp_path), **OPTIONS)
    second = load_dataset("frozen", cache=str(tmp_path), train_fraction=0.15, **OPTIONS)
    assert len(calls) == 1
    assert np.array_equal(first.inputs["fou"], second.inputs["fou"]) and first.inputs["fou"].shape[1] == 16


def test_the_backbone_is_bitwise_unchanged_by_training_and_not_in_the_model(tmp_path):
    data = load_dataset("frozen", cache=str(tmp_path), **OPTIONS)
    (weights_file,) = tmp_path.glob("*.pt")
    before = torch.load(weights_file)
    features_before = {m: data.inputs[m].copy() for m in data.modalities}
    config = TrainConfig(dataset="frozen", modalities="fou,mor", method="concat", epochs=2, probe=False, hidden_dim=8,
                         dataset_options={"cache": str(tmp_path), "pretrain_epochs": 2, "backbone_dim": 16})
    train(config, progress=False)
    after = torch.load(weights_file)
    assert all(torch.equal(before[m][k], after[m][k]) for m in before for k in before[m])
    again = load_dataset("frozen", cache=str(tmp_path), **OPTIONS)
    assert all(np.array_equal(features_before[m], again.inputs[m]) for m in data.modalities)


def test_frozen_encoder_kind_is_a_linear_relu_adapter():
    encoder = build_encoder((16,), 8, "frozen")
    assert isinstance(encoder, AdapterEncoder)
    assert [type(layer).__name__ for layer in encoder.net] == ["Linear", "ReLU"]
    assert encoder.net[0].in_features == 16 and encoder.net[0].out_features == 8


def test_pool_is_disjoint_and_the_limited_split_is_stratified(tmp_path):
    base = load_dataset("mfeat", modalities="fou,mor")
    full = load_dataset("frozen", cache=str(tmp_path), **OPTIONS)
    limited = load_dataset("frozen", cache=str(tmp_path), train_fraction=0.15, **OPTIONS)
    pool = np.setdiff1d(base.splits["train"], full.splits["train"])
    assert full.params["frozen"]["pool_size"] == len(pool) > 0
    for split in ("val", "test"):
        assert np.array_equal(full.splits[split], base.splits[split])
        assert not np.intersect1d(pool, full.splits[split]).size
    assert set(limited.splits["train"]) <= set(full.splits["train"])
    counts = np.bincount(base.labels[limited.splits["train"]], minlength=10)
    assert counts.min() == counts.max() and abs(len(limited.splits["train"]) / len(full.splits["train"]) - 0.15) < 0.02


def test_a_model_on_frozen_data_gets_adapters(tmp_path):
    from mmlib.train import build_model, load_config_dataset

    config = TrainConfig(dataset="frozen", modalities="fou,mor", method="sum", epochs=1, hidden_dim=8,
                         dataset_options={"cache": str(tmp_path), "pretrain_epochs": 2, "backbone_dim": 16})
    model = build_model(config, load_config_dataset(config))
    assert all(isinstance(e, AdapterEncoder) for e in model.encoders.values())


@pytest.mark.parametrize("options, message", [
    ({"train_fraction": 0.0}, "train_fraction must lie in (0, 1]"),
    ({"backbone": "ola"}, "backbone must be one of"),
    ({"base_options": "nois=pix=2"}, "base_options: 'nois=pix=2' is not KEY=VALUE"),
])
def test_bad_options_are_named(options, message, tmp_path):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_dataset("frozen", cache=str(tmp_path), **{**OPTIONS, **options})


# Backbone ``hf``: any local Hugging Face folder, here tiny random ViTs saved in the test's folder.

def tiny_vit(folder, image_size=8, patch_size=4, seed=0):
    """A random one-layer ViT for 1-channel ``image_size`` squares, saved to ``folder``; returns the model."""
    import transformers

    torch.manual_seed(seed)
    config = transformers.ViTConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                                    image_size=image_size, patch_size=patch_size, num_channels=1)
    model = transformers.ViTModel(config).eval()
    model.save_pretrained(folder)
    return model


def count_hf_calls(monkeypatch):
    import mmlib.data.frozen as frozen

    calls = []
    compute = frozen.hf_features
    monkeypatch.setattr(frozen, "hf_features", lambda *a, **k: calls.append(a[2]) or compute(*a, **k))
    return calls


def test_hf_features_are_the_mean_last_hidden_state_computed_once(tmp_path, monkeypatch):
    model = tiny_vit(tmp_path / "vit")
    calls = count_hf_calls(monkeypatch)
    options = {"base": "digits", "backbone": "hf", "hf_models": str(tmp_path / "vit"), "cache": str(tmp_path / "cache")}
    first = load_dataset("frozen", **options)
    second = load_dataset("frozen", train_fraction=0.15, **options)
    assert calls == ["image"]
    base = load_dataset("digits")
    with torch.no_grad():
        expected = model(pixel_values=torch.as_tensor(base.inputs["image"][:5])).last_hidden_state.mean(dim=1)
    assert first.inputs["image"].shape == (len(base.labels), 16)
    assert np.allclose(first.inputs["image"][:5], expected.numpy(), atol=1e-5)
    assert np.array_equal(first.inputs["image"], second.inputs["image"])
    assert first.params["frozen"]["feature_dims"] == {"image": 16}
    assert first.params["frozen"]["pool_size"] == 0 and np.array_equal(first.splits["train"], base.splits["train"])


def test_hf_features_are_computed_again_when_the_model_in_the_folder_changes(tmp_path, monkeypatch):
    tiny_vit(tmp_path / "vit", seed=0)
    calls = count_hf_calls(monkeypatch)
    options = {"base": "digits", "backbone": "hf", "hf_models": f"image={tmp_path / 'vit'}",
               "cache": str(tmp_path / "c")}
    before = load_dataset("frozen", **options)
    tiny_vit(tmp_path / "vit", seed=1)
    after = load_dataset("frozen", **options)
    assert calls == ["image", "image"] and before.params["frozen"]["key"] != after.params["frozen"]["key"]
    assert not np.allclose(before.inputs["image"], after.inputs["image"])


def test_hf_pixels_are_standardised_with_the_folders_preprocessor_statistics(tmp_path):
    import json

    model = tiny_vit(tmp_path / "vit")
    (tmp_path / "vit" / "preprocessor_config.json").write_text(json.dumps({"image_mean": [0.5], "image_std": [0.25]}))
    data = load_dataset("frozen", base="digits", backbone="hf", hf_models=str(tmp_path / "vit"), cache=str(tmp_path))
    pixels = torch.as_tensor(load_dataset("digits").inputs["image"][:4])
    with torch.no_grad():
        expected = model(pixel_values=(pixels - 0.5) / 0.25).last_hidden_state.mean(dim=1)
    assert np.allclose(data.inputs["image"][:4], expected.numpy(), atol=1e-5)


def test_adapters_train_on_hf_features_and_the_backbone_is_bitwise_unchanged(tmp_path, monkeypatch, shared_data):
    from safetensors.torch import load_file

    from mmlib.train import build_model, load_config_dataset

    tiny_vit(tmp_path / "image_vit", image_size=14, patch_size=7)  # avmnist images (1, 14, 14)
    tiny_vit(tmp_path / "audio_vit", image_size=16, patch_size=4, seed=1)  # spectrograms (1, 16, 16)
    weights = {m: load_file(tmp_path / f"{m}_vit" / "model.safetensors") for m in ("audio", "image")}
    calls = count_hf_calls(monkeypatch)
    options = {"base": "avmnist", "backbone": "hf", "cache": str(tmp_path / "cache"),
               "base_options": f"root={shared_data / 'fsdd'};samples_per_class=20;image_size=14;mels=16;hop=512",
               "hf_models": f"audio={tmp_path / 'audio_vit'};image={tmp_path / 'image_vit'}"}
    config = TrainConfig(dataset="frozen", modalities="audio,image", method="concat", epochs=2, probe=False,
                         hidden_dim=8, dataset_options=options)
    record = train(config, results_dir=tmp_path / "runs", progress=False)
    model = build_model(config, load_config_dataset(config))
    assert sorted(calls) == ["audio", "image"]  # once per modality, for training and the model built again
    assert len(record["history"]) == 2 and all(isinstance(e, AdapterEncoder) for e in model.encoders.values())
    for m in ("audio", "image"):
        after = load_file(tmp_path / f"{m}_vit" / "model.safetensors")
        assert weights[m].keys() == after.keys() and all(torch.equal(weights[m][k], after[k]) for k in after)


def test_the_pretrained_backbone_of_images_is_a_frozen_cnn(tmp_path):
    data = load_dataset("frozen", base="digits", pretrain_epochs=2, backbone_dim=8, cache=str(tmp_path))
    (weights_file,) = tmp_path.glob("*.pt")
    layers = torch.load(weights_file)["image"]
    assert data.inputs["image"].shape == (1797, 8) and (data.inputs["image"] >= 0).all()  # after a ReLU
    assert layers["net.0.weight"].shape == (16, 1, 3, 3) and layers["net.6.weight"].shape == (8, 128)


def test_hf_errors_name_the_folder_and_what_to_do(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "README.md").write_text("not a model")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text('{"hidden_size": 4}')
    tiny_vit(tmp_path / "vit14", image_size=14, patch_size=7)
    options = {"base": "digits", "backbone": "hf", "cache": str(tmp_path / "cache")}
    cases = [(tmp_path / "absent", FileNotFoundError, "absent does not exist; expected a folder written by"),
             (tmp_path / "notes", ValueError, "notes is not a transformers model: it has no config.json"),
             (tmp_path / "bad", ValueError, "bad is not a transformers model AutoModel can load"),
             (tmp_path / "vit14", ValueError,
              r"takes pixel_values \(1, 14, 14\) per image .* shape \(1, 8, 8\): resize"),
             (f"audio={tmp_path / 'vit14'}", ValueError, r"missing \['image'\], unknown \['audio'\]"),
             ("", ValueError, "backbone 'hf' needs hf_models")]
    for folder, error, message in cases:
        with pytest.raises(error, match=message):
            load_dataset("frozen", hf_models=str(folder), **options)


def test_hf_text_features_average_the_unpadded_tokens_and_audio_takes_waveforms(tmp_path):
    import transformers

    from mmlib.data.hf_backbone import hf_features

    torch.manual_seed(0)
    bert = transformers.BertModel(transformers.BertConfig(
        vocab_size=20, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16,
        pad_token_id=0)).eval()
    bert.save_pretrained(tmp_path / "bert")
    ids = np.array([[5, 6, 7, 0, 0], [3, 4, 0, 0, 0]], dtype=np.int64)
    with torch.no_grad():
        first = bert(input_ids=torch.as_tensor(ids[:1, :3])).last_hidden_state.mean(dim=1)
    assert np.allclose(hf_features(tmp_path / "bert", ids, "text")[:1], first.numpy(), atol=1e-5)
    with pytest.raises(ValueError, match=r"takes input_ids \(L,\) integer token ids; modality 'text' has float32"):
        hf_features(tmp_path / "bert", ids.astype(np.float32), "text")
    wav2vec = transformers.Wav2Vec2Model(transformers.Wav2Vec2Config(
        hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16, conv_dim=(8, 8),
        conv_stride=(4, 4), conv_kernel=(8, 4), num_conv_pos_embeddings=4, num_conv_pos_embedding_groups=2)).eval()
    wav2vec.save_pretrained(tmp_path / "w2v")
    waves = np.random.default_rng(0).normal(size=(3, 1, 400)).astype(np.float32)
    with torch.no_grad():
        expected = wav2vec(input_values=torch.as_tensor(waves[:, 0])).last_hidden_state.mean(dim=1)
    assert np.allclose(hf_features(tmp_path / "w2v", waves, "audio"), expected.numpy(), atol=1e-5)
