"""Relational fusion: the Relation Network's pairwise module over image cells.

Santoro et al. 2017, "A simple neural network module for relational
reasoning": every cell of the image feature grid is an object, with its
(x, y) coordinates appended; every ordered pair of objects (i, j),
concatenated with the question vector, goes through one shared MLP `g`;
the results are aggregated over all pairs and an MLP `f` reads the sum.
Questions about relations ("what is the shape of the object furthest from
the red one?") are what it is for.

Cost: `cells ** 2` pairs per example. The first layer of `g` is split into
its three blocks of rows (`W [o_i; o_j; q] = W_i o_i + W_j o_j + W_q q`),
so the concatenated pairs `(batch, cells ** 2, 2 * channels + text)` are
never materialised, but every layer of `g` still holds a
`(batch, cells ** 2, dim)` activation (kept for the backward pass): an 8x8
grid (4,096 pairs), `dim=256`, batch 64 is 268 MB per `g` layer in float32.
`max_pairs` (4,096 by default, the paper's 8x8 grid) makes a bigger grid an
error rather than an out-of-memory crash: pool the grid or raise it.
"""

import keras
from keras import ops

from keras_simmim.multimodal.coordinates import coordinate_grid
from keras_simmim.multimodal.fusion import check_fusion_inputs
from keras_simmim.multimodal.fusion import pooled_text
from keras_simmim.utils.validation import check_bool
from keras_simmim.utils.validation import check_positive_int

NUM_F_LAYERS = 2


@keras.saving.register_keras_serializable(package="keras_simmim")
class RelationalFusion(keras.layers.Layer):
    """Relation Network fusion of an image feature grid and a text.

    Objects are the grid's cells, with (x, y) coordinates in [-1, 1]
    appended (`coordinates=True`); the question is the mean of the real
    text tokens. `g` (`num_layers` Dense + ReLU layers of width `dim`) runs
    on every ordered pair `[o_i, o_j, q]` (all `cells ** 2`, i = j
    included, as in the paper's code); its outputs are averaged over the
    pairs (the paper sums: the mean is the sum divided by the constant
    pair count, which keeps the scale independent of the grid size) and
    `f` (two Dense + ReLU layers of width `dim`) gives the fused vector.
    The result does not depend on the order of the objects
    (`relate`): where a cell is comes only from its coordinates.

    See the module docstring for the memory cost (`cells ** 2` pairs).

    Args:
        dim: int, width of `g` and `f` (128).
        num_layers: int, layers of `g` (2; the paper uses 4).
        coordinates: bool, append (x, y) coordinates to the cells (True).
        max_pairs: int, the most pairs (`cells ** 2`) accepted (4096,
            an 8x8 grid).
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        image_grid: `(batch, h, w, channels)`, e.g. a backbone's feature
            grid.
        text_tokens: `(batch, T, text_dim)`.
        text_mask: optional `(batch, T)`, True / 1 for real tokens.

    Output shape:
        `(batch, dim)`.

    Raises:
        ValueError: the grid has more than `max_pairs` pairs, is not 4-D
            or of another batch size than the text.
        TypeError / ValueError: `dim`, `num_layers` or `max_pairs` not a
            positive int, `coordinates` not a bool.

    Example:

    >>> import numpy as np
    >>> fusion = RelationalFusion(dim=8)
    >>> grid, text = np.zeros((2, 4, 4, 12)), np.zeros((2, 5, 6))
    >>> tuple(fusion(grid, text, np.ones((2, 5), bool)).shape)
    (2, 8)
    """

    def __init__(self, dim=128, num_layers=2, coordinates=True,
                 max_pairs=4096, **kwargs):
        super().__init__(**kwargs)
        check_positive_int("dim", dim)
        check_positive_int("num_layers", num_layers)
        check_positive_int("max_pairs", max_pairs)
        check_bool("coordinates", coordinates)
        self.dim = int(dim)
        self.num_layers = int(num_layers)
        self.coordinates = coordinates
        self.max_pairs = int(max_pairs)
        policy = self.dtype_policy
        self.g_layers = [
            keras.layers.Dense(self.dim, activation="relu", dtype=policy,
                               name=f"g_{i}")
            for i in range(self.num_layers)
        ]
        self.f_layers = [
            keras.layers.Dense(self.dim, activation="relu", dtype=policy,
                               name=f"f_{i}")
            for i in range(NUM_F_LAYERS)
        ]

    @property
    def output_dim(self):
        return self.dim

    def _check_pairs(self, cells, name):
        if cells is not None and cells * cells > self.max_pairs:
            raise ValueError(
                f"RelationalFusion compares every pair of cells: {cells} "
                f"cells in `{name}` make {cells * cells} pairs, more than "
                f"`max_pairs`={self.max_pairs}. Each layer of g holds a "
                "(batch, pairs, dim) activation; pool the grid to fewer "
                f"cells or pass max_pairs >= {cells * cells}."
            )

    def build(self, image_grid_shape, text_tokens_shape,
              text_mask_shape=None):
        if len(image_grid_shape) != 4 or image_grid_shape[-1] is None:
            raise ValueError(
                "`image_grid` must have shape (batch, height, width, "
                f"channels). Received shape: {tuple(image_grid_shape)}."
            )
        rows, cols = image_grid_shape[1:3]
        if rows is not None and cols is not None:
            self._check_pairs(rows * cols, "image_grid")
        self.object_dim = int(image_grid_shape[-1]) + (
            2 if self.coordinates else 0)
        self.question_dim = int(text_tokens_shape[-1])
        self.g_layers[0].build((None, 2 * self.object_dim
                                + self.question_dim))
        for layer in self.g_layers[1:] + self.f_layers:
            layer.build((None, self.dim))

    def relate(self, objects, question):
        """The module on a set of objects: `objects (batch, n,
        object_dim)` (cells with their coordinates), `question (batch,
        question_dim)` -> `(batch, dim)`. Invariant to the order of the
        objects."""
        self._check_pairs(objects.shape[1], "objects")
        d = self.object_dim
        first = self.g_layers[0]
        kernel = ops.cast(first.kernel, objects.dtype)
        bias = ops.cast(first.bias, objects.dtype)
        left = ops.matmul(objects, kernel[:d])          # o_i, (B, n, dim)
        right = ops.matmul(objects, kernel[d:2 * d])    # o_j
        query = ops.matmul(ops.cast(question, objects.dtype),
                           kernel[2 * d:]) + bias       # q, (B, dim)
        pairs = ops.relu(ops.expand_dims(left, 2) + ops.expand_dims(right, 1)
                         + query[:, None, None, :])     # (B, n, n, dim)
        for layer in self.g_layers[1:]:
            pairs = layer(pairs)
        x = ops.mean(pairs, axis=(1, 2))
        for layer in self.f_layers:
            x = layer(x)
        return x

    def objects(self, image_grid):
        """The grid's cells as objects `(batch, h * w, channels [+ 2])`,
        row-major, coordinates last."""
        _, rows, cols, channels = image_grid.shape
        if rows is None or cols is None:
            raise ValueError(
                "RelationalFusion needs a grid of static size; received "
                f"`image_grid` of shape {tuple(image_grid.shape)}."
            )
        image_grid = ops.convert_to_tensor(image_grid, self.compute_dtype)
        objects = ops.reshape(image_grid, (-1, rows * cols, channels))
        if self.coordinates:
            coords = ops.cast(
                ops.reshape(coordinate_grid(rows, cols), (1, rows * cols, 2)),
                objects.dtype)
            coords = ops.broadcast_to(
                coords, (ops.shape(objects)[0], rows * cols, 2))
            objects = ops.concatenate([objects, coords], axis=-1)
        return objects

    def call(self, image_grid, text_tokens, text_mask=None):
        check_fusion_inputs("image_grid", image_grid,
                            "batch, height, width, channels", text_tokens,
                            text_mask)
        question = pooled_text(text_tokens, text_mask)
        return self.relate(self.objects(image_grid), question)

    def compute_output_shape(self, image_grid_shape, text_tokens_shape,
                             text_mask_shape=None):
        return (image_grid_shape[0], self.dim)

    def get_config(self):
        config = super().get_config()
        config.update({
            "dim": self.dim, "num_layers": self.num_layers,
            "coordinates": self.coordinates, "max_pairs": self.max_pairs,
        })
        return config
