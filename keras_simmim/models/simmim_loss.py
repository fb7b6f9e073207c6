"""The SimMIM objective: masked pixel loss and the local-normalised target."""

import numpy as np
from keras import ops

from keras_simmim.distribute.replicas import sum_over_replicas
from keras_simmim.layers.masking import upsample_mask

LOSSES = ("l1", "mse", "smooth_l1")
REGIONS = ("masked", "all")


def _window_counts(height, width, window):
    """Number of in-image pixels in each pixel's window, `(H, W, 1)`."""
    half = window // 2

    def along(n):
        idx = np.arange(n)
        return np.minimum(idx + half, n - 1) - np.maximum(idx - half, 0) + 1

    return (along(height)[:, None] * along(width)[None, :])[..., None].astype(
        "float32"
    )


def local_statistics(images, window=47):
    """Mean and standard deviation of each pixel's neighbourhood.

    Mean and unbiased variance over a `window x window` stride-1
    neighbourhood whose padding is not counted, as in the later SimMIM code
    (Swin-Transformer repository); the deviation is `sqrt(var + 1e-6)`.
    Computed in float32.

    Args:
        images: `(batch, height, width, channels)`.
        window: odd int >= 3, the neighbourhood side (47 in the reference).

    Returns:
        `(mean, std)`, float32 tensors of the shape of `images`.
    """
    if window % 2 != 1 or window < 3:
        raise ValueError(
            f"`window` must be an odd int >= 3. Received: window={window}."
        )
    x = ops.cast(images, "float32")

    def box_mean(t):
        return ops.average_pool(t, window, strides=1, padding="same")

    # Dividing by the pooled ones makes the mean exclude the padding whatever
    # convention the backend's pooling follows.
    coverage = box_mean(ops.ones_like(x[..., :1]))
    mean = box_mean(x) / coverage
    mean_sq = box_mean(ops.square(x)) / coverage
    count = ops.convert_to_tensor(_window_counts(x.shape[1], x.shape[2], window))
    var = (mean_sq - ops.square(mean)) * (count / (count - 1.0))
    var = ops.maximum(var, 0.0)
    return mean, ops.sqrt(var + 1e-6)


def local_normalized_target(images, window=47):
    """SimMIM's normalised target `(x - mean) / std` (see
    `local_statistics`). Returns float32 of the shape of `images`."""
    mean, std = local_statistics(images, window)
    return (ops.cast(images, "float32") - mean) / std


def masked_reconstruction_loss(
    target, reconstruction, mask, loss="l1", region="masked"
):
    """SimMIM's loss on masked pixels, summed over the whole batch.

    `sum(err * M) / (sum(M) + 1e-5) / C`, with `err` the absolute (l1),
    squared (mse) or smooth-L1 (Huber with beta 1: squared below 1, linear
    above) error, `M` the mask upsampled to pixels (all ones for
    `region="all"`, the paper's "predict all pixels" ablation) and `C` the
    number of channels. Computed in float32.

    Args:
        target: `(batch, H, W, C)` images (or normalised targets).
        reconstruction: `(batch, H, W, C)` predictions.
        mask: `(batch, H // p, W // p)`, 1 (True) where masked.
        loss: `"l1"`, `"mse"` or `"smooth_l1"`.
        region: `"masked"` (SimMIM) or `"all"` pixels.

    Returns:
        A float32 scalar.
    """
    target = ops.cast(target, "float32")
    reconstruction = ops.cast(reconstruction, "float32")
    factor = target.shape[1] // mask.shape[1]
    pixel_mask = upsample_mask(ops.cast(mask, "float32"), factor)
    if region == "all":
        pixel_mask = ops.ones_like(pixel_mask)
    pixel_mask = ops.expand_dims(pixel_mask, -1)
    diff = ops.abs(target - reconstruction)
    if loss == "mse":
        err = ops.square(diff)
    elif loss == "smooth_l1":
        err = ops.where(diff < 1.0, 0.5 * ops.square(diff), diff - 0.5)
    else:
        err = diff
    channels = float(target.shape[-1])
    total = ops.sum(err * pixel_mask)
    # Under tf.distribute: this replica's share of the global-batch loss.
    count = sum_over_replicas(ops.sum(pixel_mask))
    return total / (count + 1e-5) / channels
