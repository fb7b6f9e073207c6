"""`from_folder` loads every file as an image viewer shows it (1-bit and
palette BMP, EXIF-rotated JPEG, 16-bit PNG, CMYK JPEG, palette PNG with
transparency, TIFF, WebP), skips the rest with a warning before training,
and never fails mid-epoch."""

import io
import os
import struct
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image
from PIL import ImageOps

from keras_simmim.data import from_folder
from keras_simmim.data import list_image_files
from keras_simmim.data.image_files import image_file_pixels
from keras_simmim.data.image_files import scan_image_files

PALETTE = np.array([[230, 20, 30], [20, 200, 40], [30, 40, 220],
                    [250, 220, 10]], "uint8")
CMYK_INKS = np.array([[255, 0, 0, 0], [0, 255, 0, 0], [0, 0, 255, 0],
                      [0, 0, 0, 255]], "uint8")
CMYK_AS_RGB = np.array([[0, 255, 255], [255, 0, 255], [255, 255, 0],
                        [0, 0, 0]], "uint8")
SIXTEEN_BIT = np.array([0, 128, 129, 257, 1000, 32767, 65534, 65535], "uint16")


def _indices(height=6, width=10, count=4):
    return np.arange(height * width).reshape(height, width) % count


def _bits_per_pixel(path):
    with open(path, "rb") as file:
        return struct.unpack("<H", file.read(30)[28:30])[0]


def _viewer(path):
    """What a viewer shows: Pillow with the EXIF orientation applied."""
    with Image.open(path) as image:
        return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))


def _one_bit_bmp(folder):
    path = os.path.join(folder, "one_bit.bmp")
    bits = _indices(7, 13, 3) == 0
    Image.fromarray(bits).save(path)
    assert _bits_per_pixel(path) == 1
    return path, np.repeat(bits[..., None] * np.uint8(255), 3, -1)


def _palette_bmp(folder):
    path = os.path.join(folder, "palette.bmp")
    image = Image.fromarray(_indices().astype("uint8"), "P")
    image.putpalette(PALETTE.ravel().tolist())
    image.save(path)
    assert _bits_per_pixel(path) == 8
    return path, PALETTE[_indices()]


def _rotated_jpeg(folder, orientation=6):
    """16 x 24 stored, bright top-left block; orientation 6 shows it turned
    90 degrees clockwise, 24 x 16, with the block top right."""
    path = os.path.join(folder, "rotated.jpg")
    pixels = np.full((16, 24, 3), 40, "uint8")
    pixels[:8, :8] = 255
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(pixels).save(path, exif=exif, quality=95)
    return path, _viewer(path)


def _sixteen_bit_png(folder):
    path = os.path.join(folder, "sixteen.png")
    values = np.tile(SIXTEEN_BIT, (3, 1))
    Image.fromarray(values).save(path)
    with Image.open(path) as image:
        assert image.mode == "I;16"
    scaled = np.round(values / 257).astype("uint8")
    return path, np.repeat(scaled[..., None], 3, -1)


def _sixteen_bit_rgb_png(folder):
    """Written by hand: Pillow cannot save 16 bits per colour sample."""
    path = os.path.join(folder, "sixteen_rgb.png")
    values = np.stack([SIXTEEN_BIT, SIXTEEN_BIT[::-1], SIXTEEN_BIT[::2]
                       .repeat(2)], -1)[None].repeat(2, 0)  # 2 x 8 x 3

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))

    header = struct.pack(">IIBBBBB", 8, 2, 16, 2, 0, 0, 0)  # RGB, 16 bits
    rows = b"".join(b"\0" + row.astype(">u2").tobytes() for row in values)
    with open(path, "wb") as file:
        file.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                   + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
    return path, np.round(values / 257).astype("uint8")


def _cmyk_jpeg(folder):
    path = os.path.join(folder, "cmyk.jpg")
    inks = np.repeat(np.repeat(CMYK_INKS[None], 8, 0), 8, 1)  # 8 x 32
    Image.fromarray(inks, "CMYK").save(path, quality=95)
    return path, _viewer(path)


def _transparent_palette_png(folder):
    path = os.path.join(folder, "transparent.png")
    image = Image.fromarray(_indices().astype("uint8"), "P")
    image.putpalette(PALETTE.ravel().tolist())
    image.save(path, transparency=0)
    return path, PALETTE[_indices()]


def _plain_png(folder):
    path = os.path.join(folder, "plain.png")
    pixels = np.random.default_rng(0).integers(0, 256, (9, 11, 3))
    Image.fromarray(pixels.astype("uint8")).save(path)
    return path, pixels


def _plain_jpeg(folder):
    path = os.path.join(folder, "plain.jpg")
    pixels = np.zeros((16, 16, 3), "uint8")
    pixels[:, 8:] = (200, 100, 50)
    Image.fromarray(pixels).save(path, quality=95)
    return path, _viewer(path)


def _tiff(folder):
    path = os.path.join(folder, "scan.tif")
    Image.fromarray(PALETTE[_indices()]).save(path)
    return path, PALETTE[_indices()]


def _webp(folder):
    path = os.path.join(folder, "lossless.webp")
    Image.fromarray(PALETTE[_indices()]).save(path, lossless=True)
    return path, PALETTE[_indices()]


FILES = {
    "one_bit_bmp": _one_bit_bmp,
    "palette_bmp": _palette_bmp,
    "rotated_jpeg": _rotated_jpeg,
    "sixteen_bit_png": _sixteen_bit_png,
    "sixteen_bit_rgb_png": _sixteen_bit_rgb_png,
    "cmyk_jpeg": _cmyk_jpeg,
    "transparent_palette_png": _transparent_palette_png,
    "plain_png": _plain_png,
    "plain_jpeg": _plain_jpeg,
    "tiff": _tiff,
    "webp": _webp,
}


def _write_bad_files(folder):
    with open(os.path.join(folder, "empty.bmp"), "wb"):
        pass
    with open(os.path.join(folder, "notes.png"), "w") as file:
        file.write("not an image")
    buffer = io.BytesIO()
    Image.fromarray(PALETTE[_indices(16, 16)]).save(buffer, "JPEG")
    with open(os.path.join(folder, "truncated.jpg"), "wb") as file:
        file.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    return ["empty.bmp", "notes.png", "truncated.jpg"]


def _load(folder, size, **kwargs):
    """Every image of the folder as 0-255 floats (no normalisation)."""
    ds = from_folder(str(folder), image_size=size, batch_size=16, mean=0.0,
                     std=1.0, **kwargs)
    return np.concatenate([np.asarray(b) for b in ds]) * 255.0


@pytest.mark.parametrize("name", sorted(FILES))
def test_every_file_loads_as_a_viewer_shows_it(tmp_path, name):
    path, expected = FILES[name](str(tmp_path))
    (loaded,) = _load(tmp_path, expected.shape[:2], channels=3)
    # Lossy files are decoded by TensorFlow's or Pillow's libjpeg.
    atol = 3 if path.endswith(".jpg") else 0.01
    np.testing.assert_allclose(loaded, expected, atol=atol)
    (checked,) = scan_image_files([path])
    if checked.decoder != "pillow":
        return
    # Pillow's decoder alone gives the same pixels, in the file's channels.
    pixels = image_file_pixels(path)
    assert pixels.dtype == np.uint8 and pixels.shape[:2] == expected.shape[:2]
    grey = pixels.shape[-1] < 3
    np.testing.assert_allclose(
        pixels[..., :1] if grey else pixels[..., :3],
        expected[..., :1] if grey else expected, atol=atol)


def test_plain_files_use_tensorflow_and_the_others_pillow(tmp_path):
    paths = sorted(build(str(tmp_path))[0] for build in FILES.values())
    decoders = {os.path.basename(f.path): (f.decoder, f.channels)
                for f in scan_image_files(paths)}
    assert decoders == {
        "cmyk.jpg": ("pillow", 3),
        "lossless.webp": ("pillow", 3),
        "one_bit.bmp": ("pillow", 1),
        "palette.bmp": ("pillow", 3),
        "plain.jpg": ("tensorflow", 3),
        "plain.png": ("tensorflow", 3),
        "rotated.jpg": ("pillow", 3),
        "scan.tif": ("pillow", 3),
        "sixteen.png": ("tensorflow-16bit", 1),
        "sixteen_rgb.png": ("tensorflow-16bit", 3),
        "transparent.png": ("pillow", 4),
    }


@pytest.mark.parametrize("orientation, corner", [(6, (0, -1)), (8, (-1, 0))])
def test_exif_orientation_turns_the_jpeg(tmp_path, orientation, corner):
    _rotated_jpeg(str(tmp_path), orientation)
    (image,) = _load(tmp_path, (24, 16), channels=3)
    assert image.shape == (24, 16, 3)  # shown upright, taller than wide
    row, column = corner
    rows = slice(0, 8) if row == 0 else slice(-8, None)
    columns = slice(0, 8) if column == 0 else slice(-8, None)
    assert image[rows, columns].min() > 200  # the bright block landed here
    # ... and nowhere else.
    assert (image > 200).mean() == pytest.approx(64 / (24 * 16), abs=0.02)


def test_palette_bmp_has_the_palette_colours_not_indices(tmp_path):
    _palette_bmp(str(tmp_path))
    ds = from_folder(str(tmp_path), image_size=(6, 10))
    assert ds.channels == 3
    (image,) = _load(tmp_path, (6, 10))
    colours = {tuple(c) for c in np.round(image).reshape(-1, 3).astype(int)}
    assert colours == {tuple(c) for c in PALETTE.tolist()}


def test_grey_files_stay_grey_and_sixteen_bits_scale(tmp_path):
    _one_bit_bmp(str(tmp_path))
    _sixteen_bit_png(str(tmp_path))  # decoded by TensorFlow
    tiff = str(tmp_path / "sixteen.tif")  # decoded by Pillow
    Image.fromarray(np.tile(SIXTEEN_BIT, (3, 1))).save(tiff)
    assert Image.open(tiff).mode == "I;16"
    assert from_folder(str(tmp_path), image_size=8).channels == 1
    os.remove(tmp_path / "one_bit.bmp")
    images = _load(tmp_path, (3, 8))
    assert images.shape == (2, 3, 8, 1)
    # round(value / 257): 65535 -> 255, 32767 -> 127, 129 -> 1; neither
    # clipped (255 from 256 up) nor the high byte (129 -> 0, 1000 -> 3).
    expected = [0, 0, 1, 1, 4, 127, 255, 255]
    np.testing.assert_allclose(images[:, 0, :, 0], [expected] * 2, atol=0.01)
    np.testing.assert_array_equal(image_file_pixels(tiff)[0, :, 0], expected)


def test_cmyk_jpeg_inks_become_rgb(tmp_path):
    _cmyk_jpeg(str(tmp_path))
    (image,) = _load(tmp_path, (8, 32))
    blocks = image.reshape(8, 4, 8, 3).mean(axis=(0, 2))
    np.testing.assert_allclose(blocks, CMYK_AS_RGB, atol=8)


def test_transparent_palette_png_keeps_colours_and_alpha(tmp_path):
    _transparent_palette_png(str(tmp_path))
    assert from_folder(str(tmp_path), image_size=4).channels == 3
    (image,) = _load(tmp_path, (6, 10), channels=4)
    np.testing.assert_allclose(image[..., 3], np.where(_indices() == 0, 0, 255),
                               atol=0.01)
    np.testing.assert_allclose(image[..., :3], PALETTE[_indices()], atol=0.01)


def test_bad_files_are_skipped_with_a_warning_before_training(tmp_path):
    good = [FILES[name](str(tmp_path))[0]
            for name in ("one_bit_bmp", "palette_bmp", "plain_png")]
    bad = _write_bad_files(str(tmp_path))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = from_folder(str(tmp_path), image_size=8, batch_size=8)
    skipped = [w for w in caught if "Unreadable image file" in str(w.message)]
    assert [os.path.basename(str(w.message).split("'")[1])
            for w in skipped] == bad
    for warning in skipped:
        assert warning.category is UserWarning
        assert str(warning.message).endswith("(skipped)")
        # One line, attributed to the caller (this file), not the package.
        assert "\n" not in str(warning.message)
        assert warning.filename == __file__
    assert ds.file_paths == sorted(good)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        (batch,) = list(ds)
    assert batch.shape == (3, 8, 8, 3)
    assert not [w for w in caught if "Unreadable" in str(w.message)]
    with pytest.raises(ValueError, match="empty.bmp"):
        list_image_files(str(tmp_path), on_error="raise")
    with pytest.warns(UserWarning) as record:
        assert list_image_files(str(tmp_path)) == sorted(good)
    assert "'notes.png': not an image file" in "".join(
        str(w.message).replace(str(tmp_path) + os.sep, "") for w in record)


def test_fit_on_a_folder_of_every_kind_completes(tmp_path):
    from keras_simmim import SimMIMModel
    from tests.conftest import tiny_vit

    for build in FILES.values():
        build(str(tmp_path))
    _write_bad_files(str(tmp_path))
    with pytest.warns(UserWarning) as record:
        # One batch of all of them: one compiled train step.
        ds = from_folder(str(tmp_path), image_size=32,
                         batch_size=len(FILES), augment=True, shuffle=True)
    assert len([w for w in record if "(skipped)" in str(w.message)]) == 3
    assert ds.channels == 3 and len(ds.file_paths) == len(FILES)
    model = SimMIMModel(tiny_vit(), mask_patch_size=8)
    history = model.fit(ds, epochs=1, verbose=0, shuffle=False)
    assert np.isfinite(history.history["loss"][0])
