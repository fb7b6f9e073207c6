"""Pixel normalisation to and from the model's input space.

The one place that decides the per-channel `mean` / `std` for a channel
count: `channel_statistics`. Every loader, preprocessor and preview uses it.

Default (`mean=None`, `std=None`): ImageNet's statistics for the first three
channels (RGB) and their channel average (`GREY_MEAN`, `GREY_STD`) for every
other channel. So 3-channel images get ImageNet's, 1-channel (grey) images
get `GREY_MEAN` / `GREY_STD`, and a 4-band image (RGB + near-infrared, RGBA)
gets ImageNet's for its first three bands and the grey values for the
fourth. Pass explicit values for other conventions.
"""

import numpy as np

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# ImageNet's statistics averaged over its three channels (0.449, 0.226).
GREY_MEAN = float(np.mean(IMAGENET_MEAN))
GREY_STD = float(np.mean(IMAGENET_STD))


def channel_statistics(mean, std, channels):
    """Per-channel `(mean, std)` for images with `channels` channels.

    Args:
        mean, std: None (the default described in this module: ImageNet's
            for the first three channels, `GREY_MEAN` / `GREY_STD` for the
            others), a scalar, or a sequence of one value per channel, in
            the 0-1 pixel scale.
        channels: int, the images' channel count.

    Returns:
        Two float32 arrays of shape `(channels,)`.

    Raises:
        ValueError: `mean` or `std` has neither 1 nor `channels` values, or
            `std` is not positive.

    Example:

    >>> channel_statistics(None, None, 1)[0]
    array([0.449], dtype=float32)
    >>> channel_statistics(0.5, [0.1, 0.2], 2)[1]
    array([0.1, 0.2], dtype=float32)
    """
    channels = int(channels)
    rgb = 3 if channels >= 3 else 0
    defaults = {
        "mean": IMAGENET_MEAN[:rgb] + (GREY_MEAN,) * (channels - rgb),
        "std": IMAGENET_STD[:rgb] + (GREY_STD,) * (channels - rgb),
    }
    resolved = []
    for name, value in (("mean", mean), ("std", std)):
        array = np.asarray(
            defaults[name] if value is None else value, "float32"
        ).reshape(-1)
        if array.size not in (1, channels):
            raise ValueError(
                f"`{name}` has {array.size} values but the images have "
                f"{channels} channel(s). Received: {name}={value!r}. Pass "
                f"one value per channel, one scalar, or None for the "
                "default (see `keras_simmim.data.normalization`)."
            )
        resolved.append(np.broadcast_to(array, (channels,)).copy())
    if np.any(resolved[1] <= 0):
        raise ValueError(f"`std` must be positive. Received: std={std!r}.")
    return resolved[0], resolved[1]


def normalize(images, mean=None, std=None):
    """uint8 (or 0-255 float) images -> float32 `(x / 255 - mean) / std`.

    Args:
        images: array `(..., C)` of pixels in 0-255, any channel count.
        mean, std: per-channel statistics in the 0-1 scale: None for the
            default (ImageNet's for RGB, their average 0.449 / 0.226 for
            grey; see `channel_statistics`), a scalar, or `C` values.

    Returns:
        float32 array of the same shape as `images`.

    Raises:
        ValueError: `mean` / `std` do not match the channel count.

    Example:

    >>> normalize(np.full((1, 1, 1, 3), 255, "uint8"), mean=0.5, std=0.5)
    array([[[[1., 1., 1.]]]], dtype=float32)
    >>> normalize(np.zeros((4, 32, 32, 1), "uint8")).shape
    (4, 32, 32, 1)
    """
    x = np.asarray(images, dtype="float32")
    mean, std = channel_statistics(mean, std, x.shape[-1])
    return (x / 255.0 - mean) / std


def denormalize(images, mean=None, std=None):
    """Inverse of `normalize`, to uint8 with clipping.

    Args:
        images: normalised array `(..., C)`.
        mean, std: the statistics `normalize` used (None: its default for
            `C` channels).

    Returns:
        uint8 array of the same shape as `images`.

    Raises:
        ValueError: `mean` / `std` do not match the channel count.
    """
    x = np.asarray(images, dtype="float32")
    mean, std = channel_statistics(mean, std, x.shape[-1])
    return np.clip(np.round((x * std + mean) * 255.0), 0, 255).astype("uint8")
