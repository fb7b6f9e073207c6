"""Image files decoded as an image viewer shows them, checked up front.

`tf.io.decode_image` is fast but literal. It returns a palette BMP's
indices as grey. It cannot decode a 1-bit BMP, and fails on one mid-epoch
without naming the file. It ignores EXIF orientation, and it reads a CMYK
JPEG's inks as RGB. `scan_image_files` opens every file once, before
training, and picks a decoder per file:

* `"tensorflow"`: a plain, upright 8-bit PNG (grey, grey + alpha, RGB or
  RGBA, without a transparent colour key) or a grey or RGB JPEG. The check
  decodes it with the same op as the pipeline, so it cannot fail later.
* `"tensorflow-16bit"`: the same kinds of PNG with 16 bits per sample,
  decoded in full and rounded to 8 bits (`round(value / 257)`; TensorFlow
  and Pillow would keep the high byte, `value // 256`).
* `"pillow"`: anything else Pillow reads: BMP, GIF, palette and 1-bit
  images, CMYK, EXIF-rotated, TIFF, WebP.
  `image_file_pixels` decodes it, in the check and (through
  `tf.numpy_function`) in the pipeline.

A file that no decoder reads is skipped with a warning naming it
before training starts, or it is raised as an error.
"""

import collections
import functools
import os
import sys
import warnings

import numpy as np

from keras_simmim.data.lazy_tensorflow import tf

TENSORFLOW = "tensorflow"
TENSORFLOW_16BIT = "tensorflow-16bit"
PILLOW = "pillow"
DECODERS = (TENSORFLOW, TENSORFLOW_16BIT, PILLOW)

# Pillow modes that TensorFlow's PNG and JPEG decoders return unchanged, with
# their channel counts.
_PLAIN_MODES = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}
_ORIENTATION = 0x0112  # the EXIF tag

ImageFile = collections.namedtuple("ImageFile", ["path", "decoder", "channels"])
ImageFile.__doc__ = """One checked image file.

`decoder` is one of `DECODERS`. `channels` is the channel count
of its decoded pixels: 1 (grey), 2 (grey + alpha), 3 (RGB) or 4 (RGBA).
"""


def _orientation(image):
    """The EXIF (or XMP) orientation in the file's header: 1 is upright."""
    # The base class reads only the header. PNG's override decodes the whole
    # image to look for an eXIf chunk after the pixel data.
    from PIL import Image

    try:
        return Image.Image.getexif(image).get(_ORIENTATION, 1)
    except Exception:  # unreadable metadata: let Pillow's decoder decide
        return None


def _png_bit_depth(path):
    """Bits per sample, from the PNG's header chunk."""
    with open(path, "rb") as file:
        return file.read(26)[24]


def _tensorflow_route(image, path):
    """`(decoder, channels)` when TensorFlow shows the opened `image` as a
    viewer does, else `(None, None)`."""
    if "transparency" in image.info or _orientation(image) != 1:
        return None, None
    # MPO: a camera's JPEG with extra pictures; both decode the first.
    if image.format in ("JPEG", "MPO") and image.mode in ("L", "RGB"):
        return TENSORFLOW, _PLAIN_MODES[image.mode]
    if image.format != "PNG":
        return None, None
    # Pillow opens 16-bit grey as "I;16", other 16-bit PNGs as 8 bits.
    channels = 1 if image.mode.startswith("I;16") else _PLAIN_MODES.get(
        image.mode
    )
    if channels is None:
        return None, None
    if _png_bit_depth(path) == 16:
        return TENSORFLOW_16BIT, channels
    return TENSORFLOW, channels


def _rescale_to_uint8(pixels, maximum):
    """Integer or float pixels in `[0, maximum]` -> rounded uint8."""
    pixels = np.nan_to_num(np.asarray(pixels, "float64"))
    pixels = np.clip(pixels, 0, maximum) * (255.0 / maximum)
    return np.round(pixels).astype("uint8")


def _viewer_pixels(image):
    """A Pillow image -> uint8 `(H, W, c)`, c 1-4, as a viewer shows it."""
    from PIL import ImageOps

    try:
        image = ImageOps.exif_transpose(image)
    except Exception:  # malformed EXIF: viewers show the pixels as stored
        image.load()
    mode = image.mode
    if mode in ("P", "PA"):
        alpha = mode == "PA" or "transparency" in image.info or (
            image.palette is not None and image.palette.mode == "RGBA"
        )
        palette = np.reshape(image.getpalette() or [0, 0, 0], (-1, 3))
        grey = bool(np.all(palette == palette[:, :1]))
        image = image.convert("RGBA" if alpha else "RGB")
        mode = ("LA" if alpha else "L") if grey else image.mode
    elif mode in ("L", "RGB") and "transparency" in image.info:
        mode += "A"  # a transparent colour key becomes an alpha band
    elif mode == "1":
        mode = "L"
    elif mode.startswith("I"):  # 16-bit grey: "I;16", "I;16B", "I" (TIFF)
        return _rescale_to_uint8(image, 65535)[..., None]
    elif mode == "F":  # floating point grey, 0-1
        return _rescale_to_uint8(image, 1.0)[..., None]
    elif mode not in _PLAIN_MODES:  # CMYK, YCbCr, LAB, RGBa, La, ...
        mode = "RGBA" if "A" in image.getbands() else "RGB"
    if image.mode != mode:
        image = image.convert(mode)
    pixels = np.asarray(image, "uint8")
    return pixels[..., None] if pixels.ndim == 2 else pixels


def image_file_pixels(path):
    """Decodes an image file with Pillow, as an image viewer shows it.

    The EXIF orientation is applied. Palette images become RGB, or grey when
    the palette is grey, with an alpha band when the file has transparency.
    1-bit images become 0 / 255 grey. CMYK and other colour spaces become
    RGB. 16-bit grey is rescaled to 8 bits (`round(value / 257)`), and
    floating point grey (TIFF) from 0-1.

    Args:
        path: the file's path (`str` or `bytes`).

    Returns:
        A uint8 array `(height, width, channels)` with 1 (grey), 2 (grey +
        alpha), 3 (RGB) or 4 (RGBA) channels.

    Raises:
        OSError: Pillow cannot read the file (Pillow's
            `UnidentifiedImageError` for a file that is not an image).
        ValueError: Pillow can read the file but cannot convert its pixels.
    """
    from PIL import Image

    with Image.open(os.fsdecode(path)) as image:
        return _viewer_pixels(image)


def _pillow_op(path):
    def decode(name):
        try:
            return image_file_pixels(name)
        except Exception as error:  # the file changed after the check
            raise ValueError(
                f"Cannot decode image file {os.fsdecode(name)!r}: {error}"
            ) from error

    image = tf.numpy_function(decode, [path], tf.uint8, stateful=False)
    image.set_shape((None, None, None))
    return image


def _tensorflow_decode(data, decoder=TENSORFLOW):
    if decoder == TENSORFLOW:
        return tf.io.decode_image(data, expand_animations=False)
    image = tf.cast(tf.io.decode_png(data, dtype=tf.uint16), "int32")
    return tf.cast((image + 128) // 257, tf.uint8)  # round(value / 257)


def _tensorflow_op(path, decoder):
    return _tensorflow_decode(tf.io.read_file(path), decoder)


def tensor_decoder(files):
    """The graph function that decodes `files` inside a `tf.data` map.

    Args:
        files: the `ImageFile`s of `scan_image_files`.

    Returns:
        `(decode, codes)`: `codes` is an int32 array, a decoder code per
        file, and `decode(path, code)` maps string and int32 tensors to the
        uint8 image `(H, W, c)`. It holds only the decoders `files` use:
        a folder of plain PNG and JPEG files never calls Python during
        training.
    """
    used = sorted({f.decoder for f in files}, key=DECODERS.index)
    codes = np.array([used.index(f.decoder) for f in files], "int32")
    ops = [
        _pillow_op if name == PILLOW
        else functools.partial(_tensorflow_op, decoder=name)
        for name in used
    ]
    if len(ops) == 1:
        return (lambda path, code: ops[0](path)), codes

    def decode(path, code):
        return tf.switch_case(code, [functools.partial(op, path) for op in ops])

    return decode, codes


def _decoded_by_tensorflow(path, size=None, decoder=TENSORFLOW):
    """The channel count TensorFlow decodes the file to, or None if it
    fails or disagrees with Pillow's size `(width, height)`."""
    try:
        with open(path, "rb") as file:
            shape = tuple(_tensorflow_decode(file.read(), decoder).shape)
    except Exception:  # TensorFlow's errors for undecodable data vary
        return None
    if len(shape) != 3 or not 1 <= shape[-1] <= 4:
        return None
    if size is not None and shape[:2] != (size[1], size[0]):
        return None
    return shape[-1]


def _one_line(text):
    return " ".join(str(text).split())


def warn_at_caller(message):
    """A `UserWarning` attributed to the user's code.

    It points at the first caller outside `keras_simmim`, so the location
    printed is the user's `from_folder(...)` call, never a line inside this
    package.

    Args:
        message: the warning's text, one line.
    """
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    frame, level = sys._getframe(1), 2
    while frame is not None and os.path.abspath(
        frame.f_code.co_filename
    ).startswith(package + os.sep):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, UserWarning, stacklevel=level)


def _check(path):
    """`ImageFile` for `path`; raises when no decoder reads it."""
    from PIL import Image
    from PIL import UnidentifiedImageError

    try:
        with Image.open(path) as image:  # the header only
            decoder, channels = _tensorflow_route(image, path)
            size = image.size
    except UnidentifiedImageError as error:
        # Not a format Pillow knows; TensorFlow may still decode it.
        channels = _decoded_by_tensorflow(path)
        if channels is None:
            raise ValueError(
                "not an image file (no decoder recognises its contents)"
            ) from error
        return ImageFile(path, TENSORFLOW, channels)
    if decoder is not None and channels == _decoded_by_tensorflow(
        path, size, decoder
    ):
        return ImageFile(path, decoder, channels)
    pixels = image_file_pixels(path)
    return ImageFile(path, PILLOW, pixels.shape[-1])


def scan_image_files(paths, on_error="warn"):
    """Checks image files and picks each one's decoder, before training.

    Every file is decoded once, by the decoder the pipeline will use for
    it, so a file that cannot be decoded is found here and never fails
    mid-epoch.

    Args:
        paths: the files' paths.
        on_error: `"warn"` skips a file no decoder reads with a one-line
            `UserWarning` naming it, `"raise"` raises on the first.

    Returns:
        A list of `ImageFile` (`path`, `decoder`, `channels`), in the order
        of `paths`, without the skipped files.

    Raises:
        ValueError: with `on_error="raise"`, the first unreadable file,
            named.
    """
    files = []
    for path in paths:
        try:
            files.append(_check(path))
        except Exception as error:  # Pillow raises many types for bad files
            message = f"Unreadable image file {path!r}: {_one_line(error)}"
            if on_error == "raise":
                raise ValueError(message) from error
            warn_at_caller(message + " (skipped)")
    return files
