"""The SimMIM objective: masked pixel loss and the local-normalised target."""

import numpy as np
from keras import ops

from keras_simmim.distribute.replicas import sum_over_replicas
from keras_simmim.layers.masking import upsample_mask
from keras_simmim.utils.validation import check_choice
from keras_simmim.utils.validation import check_pair

PIXEL_LOSSES = ("l1", "mse", "smooth_l1")
LOSSES = PIXEL_LOSSES + ("color_classification",)
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


def _pixel_mask(mask, height, region):
    """`(batch, H, W, 1)` float32 weights of the pixels the loss counts."""
    factor = height // mask.shape[1]
    pixel_mask = upsample_mask(ops.cast(mask, "float32"), factor)
    if region == "all":
        pixel_mask = ops.ones_like(pixel_mask)
    return ops.expand_dims(pixel_mask, -1)


def check_color_bins(num_color_bins, color_range):
    """Validates the colour-classification settings; returns them as
    `(int, (float, float))`."""
    if isinstance(num_color_bins, bool) or not isinstance(
        num_color_bins, (int, np.integer)
    ) or num_color_bins < 2:
        raise ValueError(
            "`num_color_bins` must be an int >= 2 (the number of bins each "
            f"pixel channel is quantised into). Received: "
            f"num_color_bins={num_color_bins!r}."
        )
    low, high = check_pair("color_range", color_range)
    if not low < high:
        raise ValueError(
            "`color_range` must have low < high. Received: "
            f"color_range={color_range!r}."
        )
    return int(num_color_bins), (low, high)


def quantize_colors(values, num_color_bins, color_range):
    """Bin index of every value: `K` equal bins over `color_range`; values
    outside fall into the first or last bin. Returns int32."""
    low, high = color_range
    scaled = (ops.cast(values, "float32") - low) / (high - low)
    index = ops.floor(scaled * num_color_bins)
    return ops.cast(ops.clip(index, 0, num_color_bins - 1), "int32")


def bin_centers(num_color_bins, color_range):
    """The `K` bin centres, float32 numpy."""
    low, high = color_range
    width = (high - low) / num_color_bins
    return (low + width * (np.arange(num_color_bins) + 0.5)).astype("float32")


def _split_bins(logits, num_color_bins):
    shape = tuple(logits.shape)
    channels = shape[-1] // num_color_bins
    return ops.reshape(
        ops.cast(logits, "float32"),
        (-1,) + shape[1:-1] + (channels, num_color_bins),
    )


def decode_color_logits(logits, num_color_bins, color_range):
    """Reads an image off colour-bin logits: each channel's expected bin
    centre under the softmax over its `K` bins.

    Args:
        logits: `(batch, H, W, C * K)`, channel `c`'s bins at
            `c * K ... c * K + K - 1`.
        num_color_bins: `K`.
        color_range: `(low, high)` of the binned values.

    Returns:
        float32 `(batch, H, W, C)`.
    """
    probs = ops.softmax(_split_bins(logits, num_color_bins), axis=-1)
    centers = ops.convert_to_tensor(bin_centers(num_color_bins, color_range))
    return ops.sum(probs * centers, axis=-1)


def color_classification_loss(
    target, logits, mask, num_color_bins, color_range, region="masked"
):
    """Cross-entropy of each pixel channel's colour bin (the paper's
    colour-classification target), on masked pixels (or all).

    `sum(ce * M) / (sum(M) + 1e-5) / C`, normalised like
    `masked_reconstruction_loss` so the two are compared per channel.

    Args:
        target: `(batch, H, W, C)` values to bin.
        logits: `(batch, H, W, C * K)` (see `decode_color_logits`).
        mask: `(batch, H // p, W // p)`, 1 (True) where masked.
        num_color_bins: `K` >= 2.
        color_range: `(low, high)`; values outside are clipped to the end
            bins.
        region: `"masked"` or `"all"`.

    Returns:
        A float32 scalar.
    """
    num_color_bins, color_range = check_color_bins(num_color_bins, color_range)
    bins = quantize_colors(target, num_color_bins, color_range)
    log_probs = ops.log_softmax(_split_bins(logits, num_color_bins), axis=-1)
    picked = ops.sum(
        log_probs * ops.one_hot(bins, num_color_bins, dtype="float32"),
        axis=-1,
    )
    pixel_mask = _pixel_mask(mask, target.shape[1], region)
    channels = float(target.shape[-1])
    count = sum_over_replicas(ops.sum(pixel_mask))
    return -ops.sum(picked * pixel_mask) / (count + 1e-5) / channels


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
        loss: `"l1"`, `"mse"` or `"smooth_l1"` (colour classification is
            `color_classification_loss`).
        region: `"masked"` (SimMIM) or `"all"` pixels.

    Returns:
        A float32 scalar.
    """
    check_choice("loss", loss, PIXEL_LOSSES)
    check_choice("region", region, REGIONS)
    target = ops.cast(target, "float32")
    reconstruction = ops.cast(reconstruction, "float32")
    pixel_mask = _pixel_mask(mask, target.shape[1], region)
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
