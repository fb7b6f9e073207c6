import json

import numpy as np
import pytest
import torch
from transformers import ViTConfig
from transformers import ViTForMaskedImageModeling

from keras_simmim import SimMIMModel
from keras_simmim.presets.transformers_vit import default_mask_patch_size
from tests.conftest import to_numpy


def save_random_hf_vit(path, **overrides):
    torch.manual_seed(0)
    config = dict(
        image_size=32, patch_size=4, encoder_stride=4, hidden_size=32,
        num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
    )
    config.update(overrides)
    model = ViTForMaskedImageModeling(ViTConfig(**config)).eval()
    with torch.no_grad():  # transformers starts the token at zero
        model.vit.embeddings.mask_token.normal_()
        model.decoder[0].bias.normal_()
    model.save_pretrained(path)
    return model


@pytest.mark.parametrize("image_size, patch_size", [(32, 4), (48, 8)])
def test_parity_with_transformers(tmp_path, image_size, patch_size):
    hf = save_random_hf_vit(
        tmp_path, image_size=image_size, patch_size=patch_size,
        encoder_stride=patch_size,
    )
    rng = np.random.default_rng(0)
    grid = image_size // patch_size
    pixels = rng.normal(size=(3, 3, image_size, image_size)).astype("float32")
    bool_masked_pos = rng.random((3, grid * grid)) < 0.6
    with torch.no_grad():
        want = hf(
            torch.tensor(pixels), bool_masked_pos=torch.tensor(bool_masked_pos)
        )
    model = SimMIMModel.from_preset(str(tmp_path))
    data = {"images": pixels.transpose(0, 2, 3, 1), "mask": bool_masked_pos}
    got = model(data)
    loss = float(to_numpy(model.compute_loss(x=data, y_pred=got)))
    assert abs(loss - float(want.loss)) <= 1e-5
    reconstruction = want.reconstruction.numpy().transpose(0, 2, 3, 1)
    diff = np.abs(to_numpy(got["reconstruction"]) - reconstruction).max()
    assert diff <= 1e-4
    assert model.backbone.layer_norm_epsilon == 1e-12
    # evaluate() reports the same loss through Keras's own loop.
    result = model.evaluate(data, batch_size=3, verbose=0)
    assert abs(result - float(want.loss)) <= 1e-5


def test_loaded_model_picks_a_mask_patch_size_that_fits(tmp_path):
    save_random_hf_vit(tmp_path, image_size=48, patch_size=8, encoder_stride=8)
    model = SimMIMModel.from_preset(str(tmp_path))
    assert model.mask_patch_size == 24  # 32 does not divide 48
    assert SimMIMModel.from_preset(str(tmp_path), mask_patch_size=16).mask_patch_size == 16
    assert default_mask_patch_size((224, 224), 16) == 32
    assert default_mask_patch_size((32, 32), 4) == 16
    assert default_mask_patch_size((20, 20), 4) == 4


def test_rejects_unsupported_checkpoints(tmp_path):
    save_random_hf_vit(tmp_path)
    config_path = tmp_path / "config.json"
    config = json.loads(config_path.read_text())
    config["encoder_stride"] = 8
    config_path.write_text(json.dumps(config))
    with pytest.raises(ValueError, match="encoder_stride=8, patch_size=4"):
        SimMIMModel.from_preset(str(tmp_path))
    config["model_type"] = "beit"
    config_path.write_text(json.dumps(config))
    with pytest.raises(ValueError, match="model_type='beit'"):
        SimMIMModel.from_preset(str(tmp_path))
