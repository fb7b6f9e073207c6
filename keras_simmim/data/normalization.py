"""Pixel normalisation to and from the model's input space."""

import numpy as np

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalize(images, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """uint8 (or 0-255 float) images -> float32 `(x / 255 - mean) / std`.

    Example:

    >>> normalize(np.full((1, 1, 1, 3), 255, "uint8"), mean=0.5, std=0.5)
    array([[[[1., 1., 1.]]]], dtype=float32)
    """
    x = np.asarray(images, dtype="float32") / 255.0
    return (x - np.asarray(mean, "float32")) / np.asarray(std, "float32")


def denormalize(images, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """Inverse of `normalize`, to uint8 with clipping."""
    x = np.asarray(images, dtype="float32")
    x = x * np.asarray(std, "float32") + np.asarray(mean, "float32")
    return np.clip(np.round(x * 255.0), 0, 255).astype("uint8")
