"""Grey (1-channel) and 4-band images through every public path:
normalisation, loaders, augmentation, previews, inpainting, the command."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from keras_simmim import SimMIMModel
from keras_simmim import cli
from keras_simmim.data import GREY_MEAN
from keras_simmim.data import GREY_STD
from keras_simmim.data import IMAGENET_MEAN
from keras_simmim.data import ImagePreprocessor
from keras_simmim.data import denormalize
from keras_simmim.data import from_arrays
from keras_simmim.data import from_folder
from keras_simmim.data import normalize
from keras_simmim.downstream import biharmonic_fill
from keras_simmim.downstream import masked_psnr
from keras_simmim.downstream import mean_fill
from keras_simmim.downstream import pixel_mask_from_grid
from keras_simmim.visualization import ReconstructionPreview
from keras_simmim.visualization import reconstruction_grid
from keras_simmim.visualization import save_reconstruction_grid
from tests.conftest import tiny_vit


def _pixels(channels, count=4, size=32, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (count, size, size, channels)).astype("uint8")


def _read_png(path):
    with Image.open(path) as picture:
        return np.asarray(picture.convert("RGB"))


def _write_grey_files(folder, count=6, size=(20, 18), formats=("png",)):
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(count)
    for i in range(count):
        pixels = rng.integers(0, 256, size).astype("uint8")
        fmt = formats[i % len(formats)]
        Image.fromarray(pixels, "L").save(os.path.join(folder, f"{i}.{fmt}"))


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_normalize_round_trip_keeps_the_shape(channels):
    pixels = _pixels(channels, count=2, size=8)
    x = normalize(pixels)
    assert x.shape == pixels.shape and x.dtype == np.float32
    np.testing.assert_array_equal(denormalize(x), pixels)
    # Scalars and length-1 sequences broadcast to every channel.
    for mean, std in ((0.5, 0.25), ([0.5], [0.25])):
        y = normalize(pixels, mean, std)
        assert y.shape == pixels.shape
        np.testing.assert_array_equal(denormalize(y, mean, std), pixels)


def test_default_statistics_per_channel_count():
    white = np.full((1, 1, 1, 1), 255, "uint8")
    np.testing.assert_allclose(
        normalize(white), (1 - GREY_MEAN) / GREY_STD, rtol=1e-6)
    assert GREY_MEAN == pytest.approx(np.mean(IMAGENET_MEAN))
    four = normalize(np.full((1, 1, 1, 4), 255, "uint8"))[0, 0, 0]
    np.testing.assert_allclose(four[:3], normalize(
        np.full((1, 1, 1, 3), 255, "uint8"))[0, 0, 0])
    np.testing.assert_allclose(four[3], (1 - GREY_MEAN) / GREY_STD, rtol=1e-6)


def test_mismatched_mean_or_std_names_them():
    grey = np.zeros((4, 32, 32, 1), "uint8")
    with pytest.raises(ValueError, match=r"`mean` has 3 values.*1 channel"
                       r".*mean=\(0\.485, 0\.456, 0\.406\)"):
        normalize(grey, mean=IMAGENET_MEAN)
    with pytest.raises(ValueError, match=r"`std` has 2 values.*4 channel"
                       r".*std=\[0\.2, 0\.3\]"):
        denormalize(np.zeros((1, 2, 2, 4)), std=[0.2, 0.3])
    with pytest.raises(ValueError, match="`std` must be positive"):
        normalize(grey, std=0.0)
    with pytest.raises(ValueError, match="`mean` has 3 values"):
        from_arrays(grey, mean=IMAGENET_MEAN)
    with pytest.raises(ValueError, match="`mean` has 3 values"):
        reconstruction_grid(grey * 1.0, grey * 1.0, np.zeros((4, 4, 4)),
                            mean=IMAGENET_MEAN)
    with pytest.raises(ValueError, match="`mean` has 2 values"):
        ReconstructionPreview(grey * 1.0, "unused", mean=(0.1, 0.2))


@pytest.mark.parametrize("channels", [1, 4])
def test_model_trains_and_previews_other_channel_counts(channels, tmp_path):
    model = SimMIMModel(tiny_vit(image_shape=(32, 32, channels)),
                        mask_patch_size=8)
    images = normalize(_pixels(channels))
    history = model.fit(images, epochs=1, batch_size=4, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    path = save_reconstruction_grid(
        str(tmp_path / "preview.png"), model, images[:2], scale=1)
    grid = _read_png(path)
    assert grid.shape == (2 * 34, 4 * 34, 3)
    # The first panel is the original: grey for 1 channel, the first three
    # channels as RGB for 4.
    original = denormalize(images[0])
    if channels == 1:
        assert np.array_equal(grid[..., 0], grid[..., 1])
        assert np.array_equal(grid[..., 0], grid[..., 2])
        np.testing.assert_array_equal(grid[1:33, 1:33, 0], original[..., 0])
    else:
        np.testing.assert_array_equal(grid[1:33, 1:33], original[..., :3])
    # The callback writes the same kind of picture with its defaults.
    preview = ReconstructionPreview(images[:2], tmp_path / "previews")
    model.fit(images, epochs=1, batch_size=4, verbose=0, callbacks=[preview])
    assert os.listdir(tmp_path / "previews") == ["epoch-0001.png"]


def test_a_grey_model_rejects_rgb_images_by_name():
    model = SimMIMModel(tiny_vit(image_shape=(32, 32, 1)), mask_patch_size=8)
    rgb = normalize(_pixels(3))
    expected = r"`images`.*\(None, 32, 32, 1\).*Received shape: \((None|4),"
    with pytest.raises(ValueError, match=expected + r" 32, 32, 3\)"):
        model.fit(rgb, epochs=1, batch_size=4, verbose=0)
    with pytest.raises(ValueError, match=expected + r" 32, 32, 3\)"):
        model(rgb)


def test_folder_of_grey_files_stays_grey(tmp_path):
    # GIF stores grey as a palette and BMP cannot be decoded to 1 channel
    # by TensorFlow: both still load grey.
    _write_grey_files(tmp_path, formats=("png", "gif", "bmp", "jpg"))
    ds = from_folder(str(tmp_path), image_size=16, batch_size=4)
    assert ds.channels == 1
    assert [tuple(b.shape) for b in ds] == [(4, 16, 16, 1), (2, 16, 16, 1)]
    rgb = from_folder(str(tmp_path), image_size=16, batch_size=6, channels=3)
    (batch,) = list(rgb)
    assert batch.shape == (6, 16, 16, 3)
    pixels = denormalize(np.asarray(batch))
    np.testing.assert_array_equal(pixels[..., 0], pixels[..., 2])
    with pytest.raises(ValueError, match="channels"):
        from_folder(str(tmp_path), channels=2)


def test_folder_keeps_a_fourth_band_when_asked(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (8, 8, 4)).astype("uint8"),
                        "RGBA").save(tmp_path / f"{i}.png")
    Image.fromarray(rng.integers(0, 256, (8, 8, 3)).astype("uint8"),
                    "RGB").save(tmp_path / "2.png")
    assert from_folder(str(tmp_path), image_size=8).channels == 3
    ds = from_folder(str(tmp_path), image_size=8, batch_size=3, channels=4,
                     mean=0.0, std=1.0)
    (batch,) = list(ds)
    assert batch.shape == (3, 8, 8, 4)
    np.testing.assert_allclose(batch[2, ..., 3], 1.0)  # opaque when absent


@pytest.mark.parametrize("channels", [1, 4])
def test_augmentation_keeps_the_channel_count(channels):
    image = tf.constant(_pixels(channels, count=1, size=40)[0])
    out = ImagePreprocessor(16, augment=True)(image, tf.constant([1, 2]))
    assert tuple(out.shape) == (16, 16, channels)
    ds = from_arrays(_pixels(channels, count=6, size=40), image_size=16,
                     batch_size=6, augment=True, shuffle=True)
    assert next(iter(ds)).shape == (6, 16, 16, channels)
    converted = from_arrays(_pixels(4, count=2, size=8), channels=1,
                            batch_size=2)
    assert next(iter(converted)).shape == (2, 8, 8, 1)


def test_inpainting_grey_images_keeps_visible_pixels():
    model = SimMIMModel(tiny_vit(image_shape=(32, 32, 1)), mask_patch_size=8)
    images = normalize(_pixels(1, count=2))
    mask = np.zeros((2, 8, 8), bool)
    mask[:, :4] = True  # the top half
    filled = model.inpaint(images, mask)
    assert filled.shape == images.shape
    np.testing.assert_array_equal(filled[:, 16:], images[:, 16:])
    pixels = denormalize(images)
    pixel_mask = pixel_mask_from_grid(mask, images.shape[1:3])
    for baseline in (mean_fill, biharmonic_fill):
        guess = baseline(pixels, pixel_mask)
        assert guess.shape == pixels.shape
        assert np.isfinite(masked_psnr(guess, pixels, pixel_mask))


def test_pretrain_and_inpaint_commands_on_a_grey_folder(tmp_path):
    data = str(tmp_path / "scans")
    _write_grey_files(data, count=8, size=(16, 16))
    out = str(tmp_path / "run")
    cli.main([
        "pretrain", "--data", data, "--epochs", "1", "--image-size", "16",
        "--batch-size", "8", "--mask-patch-size", "8", "--depth", "1",
        "--output", out,
        "--backend", keras.backend.backend(),
    ])
    assert {"model.keras", "preset", "previews", "reconstructions.png",
            "history.json"} <= set(os.listdir(out))
    history = json.load(open(os.path.join(out, "history.json")))
    assert np.isfinite(history["history"]["loss"][0])
    model = SimMIMModel.from_preset(os.path.join(out, "preset"))
    assert model.image_shape == (16, 16, 1)
    for picture in ("reconstructions.png", "previews/epoch-0001.png"):
        grid = _read_png(os.path.join(out, picture))
        assert np.array_equal(grid[..., 0], grid[..., 2])

    inp = str(tmp_path / "inp")
    cli.main(["inpaint", "--from", out, "--data", data, "--split", "train",
              "--num-images", "4", "--output", inp])
    filled = np.load(os.path.join(inp, "inpainted.npy"))
    assert filled.shape == (4, 16, 16, 1) and filled.dtype == np.uint8
    grid = _read_png(os.path.join(inp, "inpainted.png"))
    assert np.array_equal(grid[..., 0], grid[..., 1])
    metrics = json.load(open(os.path.join(inp, "report.json")))["metrics"]
    assert np.isfinite(metrics["psnr_simmim"])
