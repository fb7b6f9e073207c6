"""Where each masking strategy puts its masked blocks.

Every strategy returns a score per block, `(batch, rows * cols)`;
`RandomPatchMasking` masks the `num_masked` lowest-scoring blocks of each
image, so every strategy masks exactly the requested number of blocks.
`STRATEGIES` place blocks on one image's grid (a spectrogram is an image
whose rows are frequencies and whose columns are time steps: `"time"` and
`"frequency"` mask whole bands of it). Clips `(batch, frames, H, W, C)`
take `VIDEO_STRATEGIES`: `"random"` over space-time blocks, or `"tube"`
(one spatial mask for every frame).
Random draws come from the layer's `SeedGenerator` (in-graph, every
backend) and ties are broken at random, so masks vary from step to step.
"""

import math

import keras
from keras import ops

STRATEGIES = (
    "random", "patch", "grid", "central", "blockwise", "time", "frequency"
)
# Strategies for clips (a leading frame axis): 3-D random blocks, or
# VideoMAE's tube masking.
VIDEO_STRATEGIES = ("random", "patch", "tube")
ALL_STRATEGIES = STRATEGIES + ("tube",)

# BEiT's block-wise masking: rectangles of at least 16 blocks, aspect ratio
# between 0.3 and 1 / 0.3.
BLOCKWISE_MIN_BLOCKS = 16
BLOCKWISE_ASPECT = 0.3


def _grid(rows, cols):
    """Row and column index of each block, `(rows * cols,)` float32."""
    index = ops.arange(rows * cols, dtype="int32")
    return (
        ops.cast(index // cols, "float32"),
        ops.cast(index % cols, "float32"),
    )


def random_scores(batch, rows, cols, num_masked, seed):
    """Uniformly random blocks (SimMIM's default; `"patch"` uses it on the
    model-patch grid)."""
    return keras.random.uniform((batch, rows * cols), seed=seed)


def grid_scores(batch, rows, cols, num_masked, seed):
    """A regular lattice: blocks at even (row, col) offsets first, then the
    other diagonal of each 2x2 cell (a checkerboard at ratio 0.5), then the
    rest; the lattice's phase is random per image, and within a tier blocks
    are taken in random order. Ratio 0.25 masks every other block of every
    other row, 0.5 a checkerboard, 0.75 all but a lattice."""
    row, col = _grid(rows, cols)
    offset = keras.random.randint((batch, 2), 0, 2, seed=seed)
    offset = ops.cast(offset, "float32")
    r = ops.mod(row[None, :] + offset[:, :1], 2.0)
    c = ops.mod(col[None, :] + offset[:, 1:], 2.0)
    # Tier 0: (even, even); 1: (odd, odd); 2: (even, odd); 3: (odd, even).
    same = ops.cast(ops.equal(r, c), "float32")
    tier = (1.0 - same) * (2.0 + r) + same * r
    noise = keras.random.uniform((batch, rows * cols), seed=seed)
    return tier + 0.5 * noise


def central_scores(batch, rows, cols, num_masked, seed):
    """A central square: blocks by their (Chebyshev) distance from the
    image centre, the outermost ring partly filled in random order. When
    the count is a square that fits the grid's parity the mask is the same
    every step (by design)."""
    row, col = _grid(rows, cols)
    distance = ops.maximum(
        ops.abs(row - (rows - 1) / 2.0), ops.abs(col - (cols - 1) / 2.0)
    )
    noise = keras.random.uniform((batch, rows * cols), seed=seed)
    return distance[None, :] + 0.25 * noise


def blockwise_scores(batch, rows, cols, num_masked, seed):
    """BEiT's block-wise masking, vectorised: a sequence of random
    rectangles (at least 16 blocks or all of `num_masked` if fewer, aspect
    ratio 0.3 to 3.3, random position) is laid down in order and blocks are
    masked in the order the rectangles cover them, so the mask is a union of
    whole rectangles plus part of the last one (BEiT instead retries
    rectangles that overshoot); the last one is filled in raster order.
    Blocks no rectangle covers come last, in random order."""
    low = float(min(BLOCKWISE_MIN_BLOCKS, num_masked))
    high = float(max(num_masked, low))
    count = int(math.ceil(num_masked / low)) + 4
    shape = (batch, count)
    area = keras.random.uniform(shape, low, high + 1e-3, seed=seed)
    log_aspect = keras.random.uniform(
        shape, math.log(BLOCKWISE_ASPECT), -math.log(BLOCKWISE_ASPECT),
        seed=seed,
    )
    aspect = ops.exp(log_aspect)
    height = ops.clip(ops.round(ops.sqrt(area * aspect)), 1.0, float(rows))
    width = ops.clip(ops.round(ops.sqrt(area / aspect)), 1.0, float(cols))
    top = ops.floor(
        keras.random.uniform(shape, seed=seed) * (rows - height + 1.0)
    )
    left = ops.floor(
        keras.random.uniform(shape, seed=seed) * (cols - width + 1.0)
    )
    row, col = _grid(rows, cols)
    row, col = row[None, None, :], col[None, None, :]
    top, left = top[..., None], left[..., None]
    covered = ops.logical_and(
        ops.logical_and(row >= top, row < top + height[..., None]),
        ops.logical_and(col >= left, col < left + width[..., None]),
    )  # (batch, count, blocks)
    order = ops.arange(count, dtype="float32")[None, :, None]
    first = ops.min(ops.where(covered, order, float(count)), axis=1)
    # Within a rectangle, raster order, so a partly used last rectangle is
    # a compact band; uncovered blocks in random order.
    raster = ops.arange(rows * cols, dtype="float32")[None, :] / (rows * cols)
    noise = keras.random.uniform((batch, rows * cols), seed=seed)
    return first + 0.5 * ops.where(first < count, raster, noise)


def _band_scores(batch, bands, across, seed, by_column):
    """Whole bands in random order: every block of a band scores the band's
    rank (0, 1, ...), plus noise below 1 that orders the blocks of the
    band that is filled last."""
    band = keras.random.uniform((batch, bands), seed=seed)
    rank = ops.cast(ops.argsort(ops.argsort(band, axis=-1), axis=-1),
                    "float32")
    if by_column:  # rank of each block's column, in row-major order
        rank = ops.tile(rank, (1, across))
    else:  # rank of each block's row
        rank = ops.repeat(rank, across, axis=1)
    noise = keras.random.uniform((batch, bands * across), seed=seed)
    return rank + 0.5 * noise


def time_scores(batch, rows, cols, num_masked, seed):
    """Whole columns (time steps of a spectrogram whose columns are time),
    in random order; the last column is partly filled. AudioMAE's "time"
    masking."""
    return _band_scores(batch, cols, rows, seed, by_column=True)


def frequency_scores(batch, rows, cols, num_masked, seed):
    """Whole rows (frequency bands of a spectrogram whose rows are
    frequencies), in random order; the last row is partly filled."""
    return _band_scores(batch, rows, cols, seed, by_column=False)


SCORES = {
    "random": random_scores,
    "patch": random_scores,
    "grid": grid_scores,
    "central": central_scores,
    "blockwise": blockwise_scores,
    "time": time_scores,
    "frequency": frequency_scores,
}


def average_distance(mask, pixels_per_cell=1):
    """The SimMIM paper's AvgDist: the mean Euclidean distance (in pixels)
    from each masked pixel to its nearest visible pixel.

    Averaged over all masked pixels of the batch. Larger means harder
    (more of the masked area is far from any visible context): the paper
    finds fine-tuning works best at moderate AvgDist (about 10-20 pixels at
    224 px).

    Args:
        mask: `(batch, h, w)` or `(h, w)` array, True (1) where masked, on a
            grid whose cells are `pixels_per_cell` pixels wide (a model's
            mask grid: its patch size).
        pixels_per_cell: int >= 1.

    Returns:
        A Python float.

    Example:

    >>> import numpy as np
    >>> mask = np.zeros((3, 3), bool)
    >>> mask[1, 1] = True
    >>> average_distance(mask)
    1.0
    >>> round(average_distance(mask, pixels_per_cell=2), 4)
    1.0
    """
    import numpy as np
    from scipy import ndimage

    if isinstance(pixels_per_cell, bool) or not isinstance(
        pixels_per_cell, (int, np.integer)
    ) or pixels_per_cell < 1:
        raise ValueError(
            "`pixels_per_cell` must be an int >= 1. Received: "
            f"pixels_per_cell={pixels_per_cell!r}."
        )
    mask = np.asarray(keras.ops.convert_to_numpy(mask)).astype(bool)
    if mask.ndim == 2:
        mask = mask[None]
    if mask.ndim != 3:
        raise ValueError(
            "`mask` must have shape (batch, h, w) or (h, w). Received shape: "
            f"{mask.shape}."
        )
    if pixels_per_cell > 1:
        mask = mask.repeat(pixels_per_cell, 1).repeat(pixels_per_cell, 2)
    if not mask.any():
        raise ValueError("`mask` masks nothing: AvgDist is undefined.")
    total, count = 0.0, 0
    for image in mask:
        if image.all():
            raise ValueError(
                "An image of `mask` is masked entirely: no visible pixel to "
                "measure a distance to."
            )
        distance = ndimage.distance_transform_edt(image)
        total += float(distance[image].sum())
        count += int(image.sum())
    return total / count
