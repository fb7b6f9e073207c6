"""MAEModel: the MAE counterpart for ViT-type backbones."""

import json

import keras
import keras_hub
import numpy as np
import pytest

from keras_simmim import MAEModel
from keras_simmim.models.mae_model import patchify
from keras_simmim.models.mae_model import unpatchify
from tests.conftest import tiny_vit
from tests.conftest import to_numpy


def small_mae(**kwargs):
    config = dict(decoder_dim=32, decoder_depth=1, decoder_num_heads=2,
                  seed=0)
    config.update(kwargs)
    return MAEModel(tiny_vit(), **config)


def exact_mask(batch, count=48, seed=0):
    rng = np.random.default_rng(seed)
    mask = np.zeros((batch, 64), bool)
    for row in mask:
        row[rng.permutation(64)[:count]] = True
    return mask.reshape(batch, 8, 8)


def test_patchify_order_and_inverse():
    images = np.arange(2 * 8 * 8 * 3, dtype="float32").reshape(2, 8, 8, 3)
    patches = to_numpy(patchify(images, 4))
    assert patches.shape == (2, 4, 48)
    # Patch 1 is the top-right 4x4 block, flattened row, column, channel.
    np.testing.assert_array_equal(patches[0, 1], images[0, :4, 4:].ravel())
    np.testing.assert_array_equal(
        to_numpy(unpatchify(patches, 4, (8, 8, 3))), images)


def test_encoder_sees_visible_patches_only(images):
    model = small_mae()
    mask = exact_mask(2)
    changed = images[:2].copy()
    pixel_mask = mask.repeat(4, 1).repeat(4, 2)
    changed[pixel_mask] += 5.0  # only pixels of dropped patches
    a = model({"images": images[:2], "mask": mask})["reconstruction"]
    b = model({"images": changed, "mask": mask})["reconstruction"]
    np.testing.assert_allclose(to_numpy(a), to_numpy(b), atol=1e-5)
    # ... while a visible pixel changes the output.
    changed = images[:2].copy()
    changed[~pixel_mask] += 5.0
    c = model({"images": changed, "mask": mask})["reconstruction"]
    assert np.abs(to_numpy(a) - to_numpy(c)).max() > 1e-3


def test_masks_are_exact_and_vary(images):
    model = small_mae(mask_ratio=0.75)
    assert model.num_masked == 48
    first = model.predict(images[:4], verbose=0)["mask"]
    second = model.predict(images[:4], verbose=0)["mask"]
    assert first.reshape(4, -1).sum(1).tolist() == [48] * 4
    assert (first != second).any()


@pytest.mark.parametrize("norm_pix_loss", [False, True])
def test_fit_lowers_the_loss_and_round_trips(images, norm_pix_loss,
                                             tmp_path):
    keras.utils.set_random_seed(0)
    model = small_mae(norm_pix_loss=norm_pix_loss)
    model.compile(optimizer=keras.optimizers.AdamW(2e-3, weight_decay=0.05))
    probe = {"images": images, "mask": exact_mask(len(images))}
    before = model.evaluate(probe, batch_size=32, verbose=0)
    weights = to_numpy(model.backbone.weights[1])
    model.fit(images, batch_size=8, epochs=6, verbose=0)
    after = model.evaluate(probe, batch_size=32, verbose=0)
    assert after < 0.8 * before, (before, after)
    assert not np.allclose(to_numpy(model.backbone.weights[1]), weights)
    path = str(tmp_path / "mae.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, MAEModel)
    as_json = lambda m: json.loads(json.dumps(m.get_config()))  # noqa: E731
    assert as_json(loaded) == as_json(model)
    np.testing.assert_allclose(
        loaded.predict(probe, verbose=0)["reconstruction"],
        model.predict(probe, verbose=0)["reconstruction"], atol=1e-5)
    loaded.fit(images[:8], batch_size=8, epochs=1, verbose=0)


def test_loss_is_mse_on_masked_patches_and_target_units(images):
    model = small_mae(norm_pix_loss=True)
    data = {"images": images[:2], "mask": exact_mask(2)}
    outputs = model(data)
    target = to_numpy(model.reconstruction_target(images[:2]))
    prediction = to_numpy(patchify(outputs["reconstruction"], 4))
    weights = data["mask"].reshape(2, -1)
    expected = (((prediction - target) ** 2).mean(-1) * weights).sum() / 96
    got = float(to_numpy(model.compute_loss(x=data, y_pred=outputs)))
    np.testing.assert_allclose(got, expected, rtol=1e-4)
    # A perfect normalised prediction maps back to the images.
    perfect = unpatchify(target, 4, (32, 32, 3))
    np.testing.assert_allclose(
        to_numpy(model.reconstruction_to_images(images[:2], perfect)),
        images[:2], atol=1e-4)


def test_errors_name_the_problem():
    cnn = keras_hub.models.ResNetBackbone(
        input_conv_filters=[64], input_conv_kernel_sizes=[7],
        stackwise_num_filters=[64], stackwise_num_blocks=[1],
        stackwise_num_strides=[1], block_type="basic_block",
        image_shape=(32, 32, 3))
    with pytest.raises(ValueError, match="ResNetBackbone.*token"):
        MAEModel(cnn)
    with pytest.raises(ValueError, match="mask_ratio.*visible"):
        small_mae(mask_ratio=0.999)
    with pytest.raises(TypeError, match="norm_pix_loss"):
        small_mae(norm_pix_loss="yes")
    with pytest.raises(ValueError, match="decoder_num_heads"):
        small_mae(decoder_num_heads=3)
    with pytest.raises(ValueError, match="MAEModel takes an image batch"):
        small_mae()({"pixels": np.zeros((1, 32, 32, 3))})
    with pytest.raises(ValueError, match="loss"):
        small_mae().compile(loss="mse")
