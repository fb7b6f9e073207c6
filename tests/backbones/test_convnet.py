"""CNNs in pixel space: `keras.applications.ResNet50` (the seed text's own
example) and a hand-written functional CNN through the generic adapter."""

import keras
import numpy as np
import pytest

from keras_simmim import SimMIMModel
from keras_simmim.layers.masking import upsample_mask
from tests.conftest import to_numpy


def resnet50(**kwargs):
    # weights=None: nothing is downloaded. 64 px: 2 x 2 blocks of 32 px.
    return keras.applications.ResNet50(
        weights=None, input_shape=(64, 64, 3), classes=3, **kwargs
    )


@pytest.fixture
def big_images(images):
    return images[:8].repeat(2, axis=1).repeat(2, axis=2)  # 64 x 64


def test_resnet50_pretrains_and_masked_pixels_drive_the_loss(
    big_images, tmp_path
):
    backbone = resnet50()  # include_top=True: the head is left out
    model = SimMIMModel(backbone, mask_patch_size=32, mask_ratio=0.5, seed=0)
    assert type(model.adapter).__name__ == "ConvNetAdapter"
    assert (model.patch_size, model.adapter.stride) == (32, 32)
    assert model.mask_shape == (2, 2)
    mask = np.array([[[1, 0], [0, 1]], [[0, 1], [1, 0]]] * 4, bool)
    data = {"images": big_images, "mask": mask}
    pixel_mask = to_numpy(upsample_mask(mask, 32))[..., None]

    # Masked pixels are replaced by the learned fill before the network
    # sees them: changing them leaves the reconstruction unchanged, and
    # changing visible ones does not.
    base = model(data, training=False)
    noise = np.random.default_rng(0).normal(size=big_images.shape)
    hidden = big_images + (noise * pixel_mask).astype("float32")
    seen = big_images + (noise * ~pixel_mask).astype("float32")
    same = model({"images": hidden, "mask": mask}, training=False)
    moved = model({"images": seen, "mask": mask}, training=False)
    rec = to_numpy(base["reconstruction"])
    np.testing.assert_allclose(to_numpy(same["reconstruction"]), rec, atol=1e-5)
    assert np.abs(to_numpy(moved["reconstruction"]) - rec).max() > 1e-4

    # The loss reads masked pixels only: a wrong prediction on visible
    # pixels costs nothing, on masked pixels it does.
    def loss(reconstruction):
        y_pred = {"reconstruction": reconstruction, "mask": mask}
        return float(to_numpy(model.compute_loss(x=data, y_pred=y_pred)))

    base_loss = loss(rec)
    assert loss(rec + 5.0 * ~pixel_mask) == pytest.approx(base_loss, abs=1e-6)
    assert loss(rec + 5.0 * pixel_mask) > base_loss + 1.0

    model.compile(optimizer=keras.optimizers.Adam(1e-3, global_clipnorm=1.0))
    # Training-mode losses: BatchNorm's moving averages lag behind.
    history = model.fit(data, batch_size=8, epochs=8, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.75 * losses[0], losses

    # The pretrained ResNet50 is still the user's classifier, and the model
    # round-trips through .keras exactly.
    assert backbone.predict(big_images, verbose=0).shape == (8, 3)
    expected = to_numpy(model(data, training=False)["reconstruction"])
    path = str(tmp_path / "resnet50.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    got = to_numpy(loaded(data, training=False)["reconstruction"])
    np.testing.assert_allclose(got, expected, atol=1e-5)


def tiny_functional_cnn(image_shape=(32, 32, 3)):
    inputs = keras.Input(image_shape)
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Conv2D(32, 3, strides=2, padding="same")(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Conv2D(32, 3, padding="same", dilation_rate=2)(x)
    x = keras.layers.ReLU()(x)
    return keras.Model(inputs, x, name="tiny_cnn")


def test_functional_cnn_needs_no_adapter_code(images, tmp_path):
    model = SimMIMModel(
        tiny_functional_cnn(), mask_patch_size=8, model_patch_size=2, seed=0
    )
    assert type(model.adapter).__name__ == "ConvNetAdapter"
    assert (model.patch_size, model.adapter.stride) == (2, 4)
    assert model.mask_shape == (16, 16)
    model.compile(optimizer=keras.optimizers.Adam(1e-2, global_clipnorm=1.0))
    mask = np.random.default_rng(0).random((8, 4, 4)) < 0.6
    data = {"images": images[:8], "mask": upsample_mask(mask, 4)}
    losses = model.fit(data, batch_size=8, epochs=30, verbose=0).history
    assert losses["loss"][-1] < 0.75 * losses["loss"][0], losses
    preset = tmp_path / "preset"
    model.save_to_preset(preset)
    assert sorted(p.name for p in preset.iterdir()) == [
        "simmim.json", "simmim.weights.h5"
    ]
    restored = SimMIMModel.from_preset(preset)
    assert restored.patch_size == 2
    np.testing.assert_allclose(
        to_numpy(restored(data)["reconstruction"]),
        to_numpy(model(data)["reconstruction"]),
        atol=1e-6,
    )
