"""(x, y) coordinate features for image cells (CoordConv; FiLM's and the
Relation Network's "where is this cell" channels)."""

import numpy as np
from keras import ops


def coordinate_grid(rows, cols):
    """`(rows, cols, 2)` float32: channel 0 the column (x), channel 1 the
    row (y), each from -1 to 1 across the grid (0 for a single cell).

    Example:

    >>> coordinate_grid(2, 3)[..., 0].tolist()
    [[-1.0, 0.0, 1.0], [-1.0, 0.0, 1.0]]
    """
    x = np.linspace(-1.0, 1.0, cols) if cols > 1 else np.zeros(1)
    y = np.linspace(-1.0, 1.0, rows) if rows > 1 else np.zeros(1)
    xx, yy = np.meshgrid(x, y)
    return np.stack([xx, yy], axis=-1).astype("float32")


def append_coordinates(grid):
    """`(batch, rows, cols, channels)` -> `(batch, rows, cols,
    channels + 2)` with `coordinate_grid` as the last two channels."""
    _, rows, cols, _ = grid.shape
    if rows is None or cols is None:
        raise ValueError(
            "Coordinate features need a grid of static size; received "
            f"shape {tuple(grid.shape)}. Use a fixed image size."
        )
    coords = ops.cast(coordinate_grid(rows, cols), grid.dtype)
    coords = ops.broadcast_to(coords[None],
                              (ops.shape(grid)[0], rows, cols, 2))
    return ops.concatenate([grid, coords], axis=-1)
