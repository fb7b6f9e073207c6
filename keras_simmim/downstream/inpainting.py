"""Inpainting quality: PSNR on masked pixels and classical baselines."""

import numpy as np
from keras import ops

from keras_simmim.layers.masking import upsample_mask


def pixel_mask_from_grid(mask, image_shape):
    """`(batch, h, w)` mask grid -> `(batch, H, W)` bool pixel mask (square
    grid cells, as every model's mask grid has)."""
    mask = np.asarray(mask).astype(bool)
    factor = image_shape[0] // mask.shape[1]
    if mask.shape[2] * factor != image_shape[1]:
        raise ValueError(
            f"`mask` of shape {mask.shape} does not tile images of size "
            f"{tuple(image_shape[:2])} with square cells."
        )
    return np.asarray(ops.convert_to_numpy(upsample_mask(mask, factor)))


def masked_psnr(predicted, target, pixel_mask, max_value=255.0):
    """PSNR (dB) over the masked pixels only, all channels and images.

    Args:
        predicted, target: `(batch, H, W, C)` arrays in the same range.
        pixel_mask: bool `(batch, H, W)`, True where scored.
        max_value: the range's maximum (255 for uint8 pixels).

    Example:

    >>> import numpy as np
    >>> a = np.zeros((1, 2, 2, 1)); b = a.copy(); b[0, 0, 0] = 255
    >>> round(masked_psnr(a, b, np.array([[[True, True], [False, False]]])), 2)
    3.01
    """
    predicted = np.asarray(predicted, "float64")
    target = np.asarray(target, "float64")
    pixel_mask = np.asarray(pixel_mask, bool)
    if predicted.shape != target.shape or pixel_mask.shape != target.shape[:3]:
        raise ValueError(
            "`predicted` and `target` must share a shape (batch, H, W, C) "
            "and `pixel_mask` be (batch, H, W). Received: "
            f"{predicted.shape}, {target.shape}, {pixel_mask.shape}."
        )
    if not pixel_mask.any():
        raise ValueError("`pixel_mask` selects no pixel.")
    error = np.mean((predicted[pixel_mask] - target[pixel_mask]) ** 2)
    return float(10.0 * np.log10(max_value**2 / max(error, 1e-12)))


def mean_fill(pixels, pixel_mask):
    """Baseline: masked pixels get the mean colour of the image's visible
    pixels."""
    filled = np.asarray(pixels, "float64").copy()
    for i in range(len(filled)):
        visible = filled[i][~pixel_mask[i]]
        filled[i][pixel_mask[i]] = visible.mean(axis=0)
    return filled


def biharmonic_fill(pixels, pixel_mask):
    """Baseline: scikit-image's `inpaint_biharmonic`, per image."""
    from skimage.restoration import inpaint_biharmonic

    return np.stack([
        inpaint_biharmonic(
            np.asarray(p, "float64"), m, channel_axis=-1
        )
        for p, m in zip(pixels, pixel_mask)
    ])
