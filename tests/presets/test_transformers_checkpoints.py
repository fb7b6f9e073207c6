import json

import keras_hub
import numpy as np
import pytest
import torch
import transformers

from keras_simmim import SimMIMModel
from keras_simmim.presets.transformers_checkpoints import default_mask_patch_size
from tests.conftest import to_numpy


HF_CONFIGS = {
    "vit": dict(
        image_size=32, patch_size=4, encoder_stride=4, hidden_size=32,
        num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
    ),
    "deit": dict(
        image_size=32, patch_size=4, encoder_stride=4, hidden_size=32,
        num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
    ),
    # Two stages: patch 4, stride 8; window 4 covers each stage's grid.
    "swin": dict(
        image_size=32, patch_size=4, encoder_stride=8, embed_dim=16,
        depths=[2, 2], num_heads=[2, 4], window_size=4,
    ),
}


def save_random_hf(path, family="vit", **overrides):
    """Saves a random-init transformers *ForMaskedImageModeling model."""
    config_cls, model_cls = {
        "vit": (transformers.ViTConfig, transformers.ViTForMaskedImageModeling),
        "deit": (
            transformers.DeiTConfig, transformers.DeiTForMaskedImageModeling
        ),
        "swin": (
            transformers.SwinConfig, transformers.SwinForMaskedImageModeling
        ),
    }[family]
    torch.manual_seed(0)
    config = dict(HF_CONFIGS[family], **overrides)
    model = model_cls(config_cls(**config)).eval()
    with torch.no_grad():  # transformers starts these at zero
        getattr(model, family).embeddings.mask_token.normal_()
        model.decoder[0].bias.normal_()
    model.save_pretrained(path)
    return model


def assert_parity(hf, model, image_size, patch_size):
    rng = np.random.default_rng(0)
    grid = image_size // patch_size
    pixels = rng.normal(size=(3, 3, image_size, image_size)).astype("float32")
    bool_masked_pos = rng.random((3, grid * grid)) < 0.6
    with torch.no_grad():
        want = hf(
            torch.tensor(pixels), bool_masked_pos=torch.tensor(bool_masked_pos)
        )
    data = {"images": pixels.transpose(0, 2, 3, 1), "mask": bool_masked_pos}
    got = model(data)
    loss = float(to_numpy(model.compute_loss(x=data, y_pred=got)))
    assert abs(loss - float(want.loss)) <= 1e-5
    reconstruction = want.reconstruction.numpy().transpose(0, 2, 3, 1)
    diff = np.abs(to_numpy(got["reconstruction"]) - reconstruction).max()
    assert diff <= 1e-4
    # evaluate() reports the same loss through Keras's own loop.
    result = model.evaluate(data, batch_size=3, verbose=0)
    assert abs(result - float(want.loss)) <= 1e-5


@pytest.mark.parametrize("image_size, patch_size", [(32, 4), (48, 8)])
def test_vit_parity_with_transformers(tmp_path, image_size, patch_size):
    hf = save_random_hf(
        tmp_path, "vit", image_size=image_size, patch_size=patch_size,
        encoder_stride=patch_size,
    )
    model = SimMIMModel.from_preset(str(tmp_path))
    assert model.backbone.layer_norm_epsilon == 1e-12
    assert_parity(hf, model, image_size, patch_size)


@pytest.mark.parametrize("family", ["swin", "deit"])
def test_parity_with_transformers(tmp_path, family):
    hf = save_random_hf(tmp_path, family)
    model = SimMIMModel.from_preset(str(tmp_path))
    backbone_cls = {
        "swin": keras_hub.models.SwinTransformerBackbone,
        "deit": keras_hub.models.DeiTBackbone,
    }[family]
    assert isinstance(model.backbone, backbone_cls)
    assert model.adapter.stride == HF_CONFIGS[family]["encoder_stride"]
    assert_parity(hf, model, 32, 4)


def test_swin_checkpoint_with_192px_geometry(tmp_path):
    """The released SimMIM Swin layout: 4 stages, stride 32, 192 px."""
    hf = save_random_hf(
        tmp_path, "swin", image_size=64, encoder_stride=32, embed_dim=8,
        depths=[1, 1, 1, 1], num_heads=[1, 1, 2, 2], window_size=2,
    )
    model = SimMIMModel.from_preset(str(tmp_path))
    assert (model.patch_size, model.adapter.stride) == (4, 32)
    assert model.mask_patch_size == 32
    assert_parity(hf, model, 64, 4)


def test_loaded_model_picks_a_mask_patch_size_that_fits(tmp_path):
    save_random_hf(tmp_path, image_size=48, patch_size=8, encoder_stride=8)
    model = SimMIMModel.from_preset(str(tmp_path))
    assert model.mask_patch_size == 24  # 32 does not divide 48
    assert SimMIMModel.from_preset(str(tmp_path), mask_patch_size=16).mask_patch_size == 16
    assert default_mask_patch_size((224, 224), 16) == 32
    assert default_mask_patch_size((32, 32), 4) == 16
    assert default_mask_patch_size((20, 20), 4) == 4


def test_rejects_unsupported_checkpoints(tmp_path):
    save_random_hf(tmp_path)
    config_path = tmp_path / "config.json"
    config = json.loads(config_path.read_text())
    config["encoder_stride"] = 8
    config_path.write_text(json.dumps(config))
    with pytest.raises(ValueError, match="needs encoder_stride=4"):
        SimMIMModel.from_preset(str(tmp_path))
    config["model_type"] = "beit"
    config_path.write_text(json.dumps(config))
    with pytest.raises(ValueError, match="model_type='beit'"):
        SimMIMModel.from_preset(str(tmp_path))


def test_rejects_swin_checkpoints_keras_hub_cannot_express(tmp_path):
    save_random_hf(tmp_path, "swin")
    config_path = tmp_path / "config.json"
    config = json.loads(config_path.read_text())
    bad = dict(config, encoder_stride=32)
    config_path.write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="needs encoder_stride=8"):
        SimMIMModel.from_preset(str(tmp_path))
    bad = dict(config, use_absolute_embeddings=True, layer_norm_eps=1e-6)
    config_path.write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="use_absolute_embeddings=True"):
        SimMIMModel.from_preset(str(tmp_path))
