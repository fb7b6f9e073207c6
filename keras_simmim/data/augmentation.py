"""SimMIM's image preprocessing as `tf.data` functions (any backend).

The functions here run inside a `tf.data` pipeline on one uint8 image
`(H, W, C)` and return a float32 normalised image: they are data code, not
model code, so they use TensorFlow ops and feed JAX and torch models as
well (Keras converts the batches).
"""

import math

from keras_simmim.data.lazy_tensorflow import tf
from keras_simmim.data.normalization import channel_statistics
from keras_simmim.utils.validation import check_positive_int

PRETRAIN_SCALE = (0.67, 1.0)
PRETRAIN_RATIO = (3.0 / 4.0, 4.0 / 3.0)


def _check_range(name, value, low, high=None):
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError):
        raise TypeError(
            f"`{name}` must be a pair of floats (min, max). "
            f"Received: {name}={value!r}."
        ) from None
    if not (low < a <= b and (high is None or b <= high)):
        upper = "" if high is None else f" and max <= {high}"
        raise ValueError(
            f"`{name}` must satisfy {low} < min <= max{upper}. "
            f"Received: {name}={value!r}."
        )
    return a, b


def _as_size(image_size):
    if isinstance(image_size, int):
        image_size = (image_size, image_size)
    height, width = image_size
    check_positive_int("image_size[0]", height)
    check_positive_int("image_size[1]", width)
    return int(height), int(width)


class ImagePreprocessor:
    """Resizes, optionally augments, and normalises one image in `tf.data`.

    With `augment=True` it is SimMIM's pretraining augmentation: a random
    resized crop (area fraction in `scale`, aspect ratio in `ratio`,
    log-uniform), a horizontal flip with probability 1/2, then
    `(x / 255 - mean) / std`. With `augment=False` the image is resized to
    `image_size` and normalised.

    The channel count is kept (grey stays grey, 4 bands stay 4 bands); it
    must be known statically (`image.shape[-1]`).

    The randomness is stateless: `__call__` takes a seed pair per image, so a
    pipeline that draws its seeds from `tf.data.Dataset.random` is
    reproducible whatever the parallelism (see `keras_simmim.data.loaders`).

    Args:
        image_size: int or `(height, width)` of the output.
        augment: bool, random crop and flip (True) or plain resize (False).
        scale: `(min, max)` area fraction of the crop, in (0, 1].
        ratio: `(min, max)` aspect ratio (width / height) of the crop.
        flip: bool, random horizontal flip when augmenting.
        mean, std: normalisation per channel in the 0-1 scale: None for
            the default of the images' channel count (ImageNet's for RGB,
            0.449 / 0.226 for grey; see
            `keras_simmim.data.channel_statistics`), a scalar, or one value
            per channel.

    Raises:
        ValueError (when called): `mean` / `std` do not match the images'
            channel count, or the channel count is unknown.

    Example:

    >>> import numpy as np, tensorflow as tf
    >>> prep = ImagePreprocessor(16, augment=True)
    >>> image = tf.constant(np.full((40, 30, 3), 255, "uint8"))
    >>> out = prep(image, seed=tf.constant([1, 2], "int64"))
    >>> tuple(out.shape), out.dtype.name
    ((16, 16, 3), 'float32')
    """

    def __init__(
        self,
        image_size,
        augment=False,
        scale=PRETRAIN_SCALE,
        ratio=PRETRAIN_RATIO,
        flip=True,
        mean=None,
        std=None,
    ):
        self.image_size = _as_size(image_size)
        self.augment = bool(augment)
        self.scale = _check_range("scale", scale, 0.0, 1.0)
        self.ratio = _check_range("ratio", ratio, 0.0)
        self.flip = bool(flip)
        # Resolved per call, for the images' channel count (a pipeline
        # traces it once, so a bad value fails when the pipeline is built).
        self.mean, self.std = mean, std

    def crop_box(self, seed):
        """A random crop `[y0, x0, y1, x1]` in relative coordinates."""
        seeds = tf.random.experimental.stateless_split(seed, 4)
        area = tf.random.stateless_uniform(
            [], seeds[0], self.scale[0], self.scale[1]
        )
        log_ratio = tf.random.stateless_uniform(
            [], seeds[1], math.log(self.ratio[0]), math.log(self.ratio[1])
        )
        ratio = tf.exp(log_ratio)
        width = tf.minimum(tf.sqrt(area * ratio), 1.0)
        height = tf.minimum(tf.sqrt(area / ratio), 1.0)
        y0 = tf.random.stateless_uniform([], seeds[2]) * (1.0 - height)
        x0 = tf.random.stateless_uniform([], seeds[3]) * (1.0 - width)
        return tf.stack([y0, x0, y0 + height, x0 + width])

    def __call__(self, image, seed=None):
        image = tf.convert_to_tensor(image)
        channels = image.shape[-1]
        if channels is None:
            raise ValueError(
                "ImagePreprocessor needs images with a known channel count; "
                f"received shape {image.shape}. Decode with `channels=`."
            )
        mean, std = channel_statistics(self.mean, self.std, channels)
        pixels = tf.cast(image, "float32")[None]
        if self.augment:
            if seed is None:
                raise ValueError(
                    "ImagePreprocessor(augment=True) needs a `seed` pair."
                )
            seed = tf.cast(seed, "int64")
            crop_seed, flip_seed = tf.unstack(
                tf.random.experimental.stateless_split(seed, 2)
            )
            box = self.crop_box(crop_seed)[None]
            pixels = tf.image.crop_and_resize(
                pixels, box, [0], self.image_size, method="bilinear"
            )
            if self.flip:
                flip = tf.random.stateless_uniform([], flip_seed) < 0.5
                pixels = tf.cond(
                    flip, lambda: tf.reverse(pixels, [2]), lambda: pixels
                )
        else:
            pixels = tf.image.resize(pixels, self.image_size, "bilinear")
        pixels = (pixels[0] / 255.0 - mean) / std
        return tf.ensure_shape(pixels, (*self.image_size, channels))
