"""Every supported backbone family, on every backend: SimMIM trains it, the
mask hides masked pixels, `.keras` and presets round-trip exactly, and the
pretrained backbone runs inside its downstream task."""

import keras
import keras_hub
import numpy as np
import pytest

from keras_simmim import SimMIMModel
from keras_simmim.layers.masking import upsample_mask
from tests.backbones.families import downstream_task
from tests.backbones.families import tiny_backbone
from tests.conftest import to_numpy

FAMILIES = ("vit", "deit", "dinov2", "swin", "resnet")
ADAPTERS = {
    "vit": "ViTAdapter",
    "deit": "DeiTAdapter",
    "dinov2": "DINOV2Adapter",
    "swin": "SwinAdapter",
    "resnet": "ResNetAdapter",
}
# (model patch, output stride) each family's 32x32 tiny config should get.
GEOMETRY = {
    "vit": (4, 4),
    "deit": (4, 4),
    "dinov2": (4, 4),
    "swin": (4, 8),
    "resnet": (8, 8),
}


def build(family, **kwargs):
    keras.utils.set_random_seed(0)  # the loss-drop bars need a fixed init
    backbone, overrides = tiny_backbone(family)
    model = SimMIMModel(
        backbone, mask_patch_size=8, seed=0, **overrides, **kwargs
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    return model


def fixed_mask(model, batch, seed=0):
    rows, cols = model.mask_shape
    blocks = np.random.default_rng(seed).random((batch, rows, cols)) < 0.6
    return blocks


@pytest.mark.parametrize("family", FAMILIES)
def test_adapter_is_picked_and_geometry_comes_from_backbone(family):
    model = build(family)
    assert type(model.adapter).__name__ == ADAPTERS[family]
    assert (model.patch_size, model.adapter.stride) == GEOMETRY[family]
    patch = model.patch_size
    assert model.mask_shape == (32 // patch, 32 // patch)


@pytest.mark.parametrize("family", FAMILIES)
def test_masked_pixels_do_not_reach_the_reconstruction(family, images):
    model = build(family)
    data = {"images": images[:2], "mask": fixed_mask(model, 2)}
    pixel_mask = to_numpy(upsample_mask(data["mask"], model.patch_size))
    noise = np.random.default_rng(1).normal(size=images[:2].shape)
    hidden = images[:2] + (noise * pixel_mask[..., None]).astype("float32")
    seen = images[:2] + (noise * ~pixel_mask[..., None]).astype("float32")
    base = to_numpy(model(data, training=False)["reconstruction"])
    same = model({"images": hidden, "mask": data["mask"]}, training=False)
    moved = model({"images": seen, "mask": data["mask"]}, training=False)
    np.testing.assert_allclose(to_numpy(same["reconstruction"]), base, atol=1e-5)
    assert np.abs(to_numpy(moved["reconstruction"]) - base).max() > 1e-3


@pytest.mark.parametrize("family", FAMILIES)
def test_pretrain_round_trip_and_downstream(family, images, tmp_path):
    model = build(family)
    data = {"images": images[:8], "mask": fixed_mask(model, 8)}
    before = model.evaluate(data, batch_size=8, verbose=0)
    history = model.fit(data, batch_size=4, epochs=15, verbose=0)
    after = model.evaluate(data, batch_size=8, verbose=0)
    assert after < 0.75 * before, (before, history.history["loss"], after)

    expected = to_numpy(model(data, training=False)["reconstruction"])
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    for a, b in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(to_numpy(a), to_numpy(b))
    got = to_numpy(loaded(data, training=False)["reconstruction"])
    np.testing.assert_allclose(got, expected, atol=1e-6)

    preset = str(tmp_path / "preset")
    model.save_to_preset(preset)
    restored = SimMIMModel.from_preset(preset)
    got = to_numpy(restored(data, training=False)["reconstruction"])
    np.testing.assert_allclose(got, expected, atol=1e-6)
    backbone = keras_hub.models.Backbone.from_preset(preset)
    assert type(backbone) is type(model.backbone)
    for a, b in zip(model.backbone.weights, backbone.weights):
        np.testing.assert_array_equal(to_numpy(a), to_numpy(b))

    # The trained object itself goes into its task, no conversion.
    task = downstream_task(family, model.backbone)
    trained = [to_numpy(w) for w in model.backbone.weights]
    task.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    labels = np.arange(8) % 3
    task.fit(images[:8], labels, batch_size=4, epochs=1, verbose=0)
    assert task.predict(images[:8], verbose=0).shape == (8, 3)
    changed = [
        not np.array_equal(w, to_numpy(v))
        for w, v in zip(trained, model.backbone.weights)
    ]
    assert any(changed)  # fine-tuning updated the SimMIM-trained weights


@pytest.mark.parametrize("family", ["vit", "deit", "swin", "resnet"])
def test_non_square_images(family, images):
    backbone, overrides = tiny_backbone(family, image_shape=(32, 64, 3))
    model = SimMIMModel(backbone, mask_patch_size=16, seed=0, **overrides)
    wide = np.concatenate([images[:4], images[4:8]], axis=2)
    out = model.predict(wide, verbose=0)
    assert out["reconstruction"].shape == (4, 32, 64, 3)
    patch = model.patch_size
    assert out["mask"].shape == (4, 32 // patch, 64 // patch)
    # 2 x 4 blocks of 16 px, ceil(8 * 0.6) = 5 masked per image.
    blocks = out["mask"][:, :: 16 // patch, :: 16 // patch]
    assert blocks.reshape(4, -1).sum(1).tolist() == [5] * 4
    history = model.fit(wide, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
