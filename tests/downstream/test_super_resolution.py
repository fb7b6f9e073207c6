"""Super-resolution: the degradation, the residual model, training, saving."""

import os

import keras
import numpy as np
import pytest
from PIL import Image

from keras_simmim import SimMIMModel
from keras_simmim.downstream import SuperResolutionModel
from keras_simmim.downstream import bicubic_upscale
from keras_simmim.downstream import degrade
from tests.conftest import tiny_vit
from tests.conftest import to_numpy


def pillow_resize(image, size):
    """Pillow's bicubic resize of one float channel: the reference."""
    return np.asarray(Image.fromarray(image, mode="F").resize(
        size, Image.BICUBIC))


def smooth_images(count, size=16, seed=0):
    """Images with detail at several scales (sums of random sinusoids)."""
    rng = np.random.default_rng(seed)
    grid = np.linspace(0, 2 * np.pi, size, endpoint=False)
    y, x = np.meshgrid(grid, grid, indexing="ij")
    images = np.zeros((count, size, size, 3), "float32")
    for i in range(count):
        for c in range(3):
            for _ in range(4):
                fy, fx = rng.integers(1, size // 3, size=2)
                images[i, :, :, c] += np.sin(fy * y + fx * x + rng.random() * 6)
    return images / 2


def test_degradation_is_pillows_bicubic_on_every_backend():
    images = np.random.default_rng(0).random((2, 16, 12, 1)).astype("float32")
    blurred = to_numpy(degrade(images, 2))
    for i in range(2):
        small = pillow_resize(images[i, :, :, 0], (6, 8))
        expected = pillow_resize(small, (12, 16))
        np.testing.assert_allclose(blurred[i, :, :, 0], expected, atol=1e-5)
    upscaled = to_numpy(bicubic_upscale(images[:, :8, :8], 4))
    np.testing.assert_allclose(
        upscaled[0, :, :, 0], pillow_resize(images[0, :8, :8, 0], (32, 32)),
        atol=1e-5)
    # Detail is lost, a flat image is kept.
    assert np.abs(blurred - images).mean() > 0.05
    flat = np.full((1, 8, 8, 3), 0.25, "float32")
    np.testing.assert_allclose(to_numpy(degrade(flat, 4)), flat, atol=1e-6)


def test_degradation_rejects_bad_input():
    with pytest.raises(ValueError, match="scale=1"):
        degrade(np.zeros((1, 8, 8, 3)), 1)
    with pytest.raises(ValueError, match="12x12 and scale=5"):
        degrade(np.zeros((1, 12, 12, 3)), 5)
    with pytest.raises(ValueError, match=r"shape \(8, 8, 3\)"):
        degrade(np.zeros((8, 8, 3)), 2)
    with pytest.raises(TypeError, match="scale"):
        bicubic_upscale(np.zeros((1, 8, 8, 3)), 2.5)


def test_untrained_model_is_bicubic_and_training_beats_it():
    keras.utils.set_random_seed(0)
    images = smooth_images(16)
    blurred = to_numpy(degrade(images, 2))
    model = SuperResolutionModel(
        tiny_vit(image_shape=(16, 16, 3), patch_size=2), scale=2)
    np.testing.assert_allclose(
        model.predict(blurred, verbose=0), blurred, atol=1e-6)
    model.compile_for_super_resolution(
        learning_rate=3e-3, total_steps=60, layer_decay=1.0)
    history = model.fit(blurred, images, batch_size=8, epochs=30, verbose=0)
    losses = history.history["loss"]
    bicubic_error = np.abs(blurred - images).mean()
    restored = model.predict(blurred, verbose=0)
    assert losses[-1] < 0.8 * losses[0]
    assert np.abs(restored - images).mean() < 0.8 * bicubic_error
    upscaled = model.upscale(images[:, ::2, ::2])
    assert upscaled.shape == images.shape and upscaled.dtype == np.float32


def test_simmim_model_shares_its_backbone_and_head_kind(tmp_path):
    simmim = SimMIMModel(tiny_vit(), mask_patch_size=8, head="mlp")
    model = SuperResolutionModel(simmim, scale=4)
    assert model.backbone is simmim.backbone
    assert model.head_kind == "mlp" and model.image_shape == (32, 32, 3)
    assert {id(v) for v in simmim.backbone.weights} <= {
        id(v) for v in model.weights}
    images = np.random.default_rng(1).random((2, 32, 32, 3)).astype("float32")
    path = os.path.join(tmp_path, "sr.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, SuperResolutionModel) and loaded.scale == 4
    np.testing.assert_allclose(
        loaded.predict(images, verbose=0), model.predict(images, verbose=0),
        atol=1e-6)


def test_bad_arguments_name_themselves():
    vit = tiny_vit()
    with pytest.raises(ValueError, match="scale=1"):
        SuperResolutionModel(vit, scale=1)
    with pytest.raises(ValueError, match="scale=3"):
        SuperResolutionModel(vit, scale=3)  # 32 is not divisible by 3
    with pytest.raises(ValueError, match="head"):
        SuperResolutionModel(vit, head="deconv")
    with pytest.raises(TypeError, match="residual"):
        SuperResolutionModel(vit, residual="yes")
    model = SuperResolutionModel(vit, scale=2)
    with pytest.raises(ValueError, match=r"\(batch, 16, 16, 3\).*\(2, 32, 32, 3\)"):
        model.upscale(np.zeros((2, 32, 32, 3)))


def test_image_quality_is_psnr_and_ssim_on_8_bit_pixels():
    from keras_simmim.data import normalize
    from keras_simmim.downstream import image_quality

    pixels = np.random.default_rng(0).integers(10, 200, (3, 16, 16, 3))
    same_psnr, same_ssim = image_quality(normalize(pixels), normalize(pixels))
    assert same_psnr > 100 and same_ssim == pytest.approx(1.0)
    # Every pixel 4 levels off: PSNR = 10 log10(255^2 / 4^2).
    psnr, ssim = image_quality(normalize(pixels + 4), normalize(pixels))
    assert psnr == pytest.approx(10 * np.log10(255.0 ** 2 / 16), abs=1e-6)
    assert 0.5 < ssim < 1.0
    with pytest.raises(ValueError, match="same shape"):
        image_quality(normalize(pixels[:2]), normalize(pixels))
