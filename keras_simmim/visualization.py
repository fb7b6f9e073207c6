"""Reconstruction previews: original / masked / reconstruction grids."""

import os

import keras
import numpy as np

from keras_simmim.data.normalization import IMAGENET_MEAN
from keras_simmim.data.normalization import IMAGENET_STD
from keras_simmim.data.normalization import denormalize

COLUMNS = ("original", "masked", "reconstruction", "visible + reconstruction")


def reconstruction_grid(
    images, reconstruction, mask, mean=IMAGENET_MEAN, std=IMAGENET_STD
):
    """Builds a uint8 picture with one row per image and four columns.

    Columns: the original, the masked input (masked patches grey), the raw
    reconstruction, and the visible pixels with the reconstruction pasted
    into the masked patches.

    Args:
        images: `(batch, H, W, C)` normalised images (C is 1 or 3).
        reconstruction: `(batch, H, W, C)` predictions in the same space.
        mask: `(batch, H // p, W // p)`, True where masked.
        mean, std: the normalisation to undo (see `keras_simmim.data`).

    Returns:
        uint8 array `(batch * (H + 2), 4 * (W + 2), 3)`.
    """
    images = np.asarray(keras.ops.convert_to_numpy(images), "float32")
    reconstruction = np.asarray(
        keras.ops.convert_to_numpy(reconstruction), "float32"
    )
    mask = np.asarray(keras.ops.convert_to_numpy(mask)).astype(bool)
    if images.shape != reconstruction.shape or images.ndim != 4:
        raise ValueError(
            "`images` and `reconstruction` must have the same shape "
            f"(batch, H, W, C). Received: {images.shape} and "
            f"{reconstruction.shape}."
        )
    factor = images.shape[1] // mask.shape[1]
    pixel_mask = mask.repeat(factor, 1).repeat(factor, 2)[..., None]
    original = denormalize(images, mean, std)
    predicted = denormalize(reconstruction, mean, std)
    masked = np.where(pixel_mask, np.uint8(127), original)
    pasted = np.where(pixel_mask, predicted, original)
    panels = [original, masked, predicted, pasted]
    if images.shape[-1] == 1:
        panels = [np.repeat(p, 3, axis=-1) for p in panels]
    panels = [np.pad(p, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=255)
              for p in panels]
    rows = [np.concatenate([p[i] for p in panels], axis=1)
            for i in range(images.shape[0])]
    return np.concatenate(rows, axis=0)


def save_reconstruction_grid(
    path, model, images, mask=None, mean=IMAGENET_MEAN, std=IMAGENET_STD,
    scale=4,
):
    """Runs `model` on `images` and writes the grid as a PNG at `path`.

    Args:
        path: output file (`.png`); its folder is created if needed.
        model: a `keras_simmim.SimMIMModel`.
        images: normalised images `(batch, H, W, C)`.
        mask: optional mask; drawn by the model when None.
        mean, std: the normalisation of `images`.
        scale: int, nearest-neighbour upscaling of the picture.

    Returns:
        The path written.
    """
    from PIL import Image

    inputs = images if mask is None else {"images": images, "mask": mask}
    outputs = model.predict(inputs, verbose=0)
    pixels = model.reconstruction_to_images(images, outputs["reconstruction"])
    grid = reconstruction_grid(images, pixels, outputs["mask"], mean, std)
    picture = Image.fromarray(grid)
    if scale != 1:
        picture = picture.resize(
            (grid.shape[1] * scale, grid.shape[0] * scale), Image.NEAREST
        )
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    picture.save(path)
    return path
