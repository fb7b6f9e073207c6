"""`RandomPatchMasking`: SimMIM's random block mask, drawn inside the graph."""

import math

import keras
from keras import ops

from keras_simmim.distribute.replicas import draw_for_global_batch
from keras_simmim.layers.mask_strategies import ALL_STRATEGIES
from keras_simmim.layers.mask_strategies import SCORES
from keras_simmim.layers.mask_strategies import VIDEO_STRATEGIES
from keras_simmim.utils.validation import check_choice
from keras_simmim.utils.validation import check_positive_int
from keras_simmim.utils.validation import check_ratio

SEED_STATE_KEY = "seed_generator_state"


def upsample_mask(mask, factor):
    """Repeats a mask's last two (spatial) axes `factor` times:
    `(batch, h, w)` -> `(batch, h * factor, w * factor)`, and a clip's
    `(batch, frames, h, w)` -> `(batch, frames, h * factor, w * factor)`."""
    if factor == 1:
        return mask
    rank = len(mask.shape)
    return ops.repeat(
        ops.repeat(mask, factor, axis=rank - 2), factor, axis=rank - 1)


def split_mask_patch_size(mask_patch_size):
    """`mask_patch_size` as `(frames, pixels)`: an int `p` is `(1, p)` (a
    block one frame long), a tuple `(t, p, p)` is `(t, p)`.

    Raises:
        ValueError / TypeError naming `mask_patch_size` when it is neither.
    """
    if isinstance(mask_patch_size, (tuple, list)):
        square = len(mask_patch_size) == 3 and (
            mask_patch_size[1] == mask_patch_size[2])
        if not square:
            raise ValueError(
                "`mask_patch_size` must be an int or a tuple (frames, "
                "pixels, pixels) with square blocks. Received: "
                f"mask_patch_size={mask_patch_size!r}."
            )
        for value in mask_patch_size:
            check_positive_int("mask_patch_size", value)
        return int(mask_patch_size[0]), int(mask_patch_size[1])
    check_positive_int("mask_patch_size", mask_patch_size)
    return 1, int(mask_patch_size)


@keras.saving.register_keras_serializable(package="keras_simmim")
class RandomPatchMasking(keras.layers.Layer):
    """Draws SimMIM's random block mask for a batch of images.

    The image is cut into blocks of `mask_patch_size` pixels. In every image,
    exactly `ceil(num_blocks * mask_ratio)` blocks are chosen uniformly at
    random and masked; each block is then expanded to the grid of the model's
    patches (`model_patch_size` pixels), which is the resolution the backbone
    consumes. This is the mask generator of the official SimMIM code, but it
    runs inside the graph: the randomness comes from a
    `keras.random.SeedGenerator`, so the mask changes at every step on every
    backend (JAX included) and the layer can sit inside `model.fit()`.

    Clips `(batch, frames, height, width, channels)` are masked in
    space-time blocks of `(t, p, p)` (frames, pixels, pixels) with
    `strategy="random"`, or with `strategy="tube"`, VideoMAE's tube
    masking: one random spatial mask repeated over every frame.

    Args:
        mask_patch_size: int, or a tuple `(t, p, p)` for clips. Side of a
            masked block in pixels (32 in the paper), a multiple of
            `model_patch_size`; the tuple's `t` is the block's length in
            frames (an int is one frame long), which must divide the
            number of frames.
        model_patch_size: int. Side of the backbone's patches in pixels
            (16 for ViT-B/16, 4 for Swin). The mask is returned on this grid.
        mask_ratio: float in (0, 1). Fraction of blocks to mask (0.6 in the
            paper); rounded up to a whole number of blocks.
        strategy: where the blocks go, always exactly
            `ceil(num_blocks * mask_ratio)` per image:
            `"random"` (SimMIM, the default): uniformly random blocks;
            `"patch"`: random single model patches (needs
            `mask_patch_size == model_patch_size`);
            `"grid"`: a regular lattice with a random phase (0.25: every
            other block of every other row, 0.5: a checkerboard);
            `"central"`: a central square, the outer ring partly filled;
            `"blockwise"`: BEiT's block-wise masking, a union of random
            rectangles of at least 16 blocks, aspect ratio 0.3 to 3.3;
            `"time"` / `"frequency"`: whole columns / rows of blocks in
            random order (the time and frequency bands of a spectrogram
            with time along its width), the last band partly filled;
            `"tube"` (clips only): one random spatial mask for every frame.
            Clips take `"random"`, `"patch"` or `"tube"`.
            See `keras_simmim.layers.mask_strategies`.
        seed: int or None. Seed of the layer's random stream. Two layers with
            the same seed draw the same sequence of masks.
        **kwargs: standard `keras.layers.Layer` arguments (`name`, ...).

    Input shape:
        `(batch, height, width, channels)` images or `(batch, frames,
        height, width, channels)` clips; height and width must be known and
        divisible by `mask_patch_size`. Only the shape is read.

    Output shape:
        `(batch, height // model_patch_size, width // model_patch_size)`,
        boolean, `True` where masked; for clips `(batch, frames, ...)`.

    Raises:
        ValueError: inputs of another rank, sides or frames the blocks do
            not divide, a clip strategy on images or an image strategy on
            clips.

    Example:

    >>> import keras
    >>> import numpy as np
    >>> masking = RandomPatchMasking(
    ...     mask_patch_size=8, model_patch_size=4, mask_ratio=0.5, seed=0
    ... )
    >>> mask = masking(np.zeros((2, 32, 32, 3), "float32"))
    >>> tuple(mask.shape)
    (2, 8, 8)
    >>> int(keras.ops.convert_to_numpy(mask)[0].sum()) // 4  # masked 8x8 blocks per image
    8
    """

    def __init__(
        self,
        mask_patch_size=32,
        model_patch_size=16,
        mask_ratio=0.6,
        seed=None,
        strategy="random",
        **kwargs,
    ):
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        temporal, mask_patch_size = split_mask_patch_size(mask_patch_size)
        check_positive_int("model_patch_size", model_patch_size)
        check_ratio("mask_ratio", mask_ratio)
        check_choice("strategy", strategy, ALL_STRATEGIES)
        if strategy == "tube" and temporal != 1:
            raise ValueError(
                "strategy='tube' masks the same blocks in every frame: "
                "`mask_patch_size` takes no temporal side. Received: "
                f"mask_patch_size="
                f"{(temporal, mask_patch_size, mask_patch_size)}."
            )
        if strategy == "patch" and mask_patch_size != model_patch_size:
            raise ValueError(
                "strategy='patch' masks single model patches: "
                "`mask_patch_size` must equal `model_patch_size`. Received: "
                f"mask_patch_size={mask_patch_size}, "
                f"model_patch_size={model_patch_size}."
            )
        if mask_patch_size % model_patch_size != 0:
            raise ValueError(
                "`mask_patch_size` must be a multiple of `model_patch_size`. "
                f"Received: mask_patch_size={mask_patch_size}, "
                f"model_patch_size={model_patch_size}."
            )
        if seed is not None and (
            isinstance(seed, bool) or not isinstance(seed, int)
        ):
            raise TypeError(
                f"`seed` must be an int or None. Received: seed={seed!r} "
                f"of type {type(seed).__name__}."
            )
        self.mask_patch_size = int(mask_patch_size)
        self.temporal_mask_patch_size = temporal
        self.model_patch_size = int(model_patch_size)
        self.mask_ratio = float(mask_ratio)
        self.seed = seed
        self.strategy = strategy
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.built = True

    def block_grid(self, height, width):
        """Returns `(blocks_high, blocks_wide)` for an image size.

        Raises a `ValueError` when the size is unknown or not divisible by
        `mask_patch_size`.
        """
        if height is None or width is None:
            raise ValueError(
                "RandomPatchMasking needs a known image height and width. "
                f"Received: height={height}, width={width}."
            )
        if height % self.mask_patch_size or width % self.mask_patch_size:
            raise ValueError(
                f"Image size ({height}, {width}) must be divisible by "
                f"`mask_patch_size`={self.mask_patch_size}. Resize the "
                "images or choose a `mask_patch_size` that divides both "
                "sides."
            )
        return height // self.mask_patch_size, width // self.mask_patch_size

    def temporal_blocks(self, frames):
        """Blocks along the frame axis of a clip with `frames` frames (1
        for `"tube"`, whose one spatial mask covers every frame)."""
        if self.strategy == "tube":
            return 1
        if frames is None or frames % self.temporal_mask_patch_size:
            raise ValueError(
                f"A clip's {frames} frames must be divisible by the "
                "temporal side of `mask_patch_size`. Received: "
                f"mask_patch_size={self._mask_patch_size_config()}, "
                f"frames={frames}."
            )
        return frames // self.temporal_mask_patch_size

    def num_masked_blocks(self, height, width, frames=None):
        """Number of blocks masked in every image (or clip of `frames`
        frames) of this size: `ceil(blocks * mask_ratio)`."""
        rows, cols = self.block_grid(height, width)
        depth = 1 if frames is None else self.temporal_blocks(frames)
        return int(math.ceil(depth * rows * cols * self.mask_ratio))

    def _sizes(self, shape):
        """`(frames or None, height, width)` of an input shape, checking
        its rank and that the strategy fits it."""
        if len(shape) == 4:
            if self.strategy == "tube" or self.temporal_mask_patch_size > 1:
                raise ValueError(
                    "RandomPatchMasking with "
                    f"strategy={self.strategy!r} and mask_patch_size="
                    f"{self._mask_patch_size_config()} masks clips "
                    "(batch, frames, height, width, channels). Received "
                    f"images of shape {shape}."
                )
            return None, shape[1], shape[2]
        if len(shape) == 5:
            if self.strategy not in VIDEO_STRATEGIES:
                raise ValueError(
                    f"strategy={self.strategy!r} places blocks on one "
                    f"image; clips take one of {VIDEO_STRATEGIES}. "
                    f"Received a clip batch of shape {shape}."
                )
            return shape[1], shape[2], shape[3]
        raise ValueError(
            "RandomPatchMasking expects images (batch, height, width, "
            "channels) or clips (batch, frames, height, width, channels). "
            f"Received shape: {shape}."
        )

    def call(self, images):
        frames, height, width = self._sizes(tuple(images.shape))
        rows, cols = self.block_grid(height, width)
        depth = 1 if frames is None else self.temporal_blocks(frames)
        num_masked = self.num_masked_blocks(height, width, frames)
        batch = ops.shape(images)[0]
        # A tube is one random spatial mask; space-time blocks (depth > 1,
        # only "random" / "patch") are scored as `depth * rows` rows.
        strategy = "random" if self.strategy == "tube" else self.strategy
        # Under tf.distribute each replica draws the whole global batch's
        # scores and keeps its own rows: the masks one device would draw.
        scores = draw_for_global_batch(
            lambda size: SCORES[strategy](
                size, depth * rows, cols, num_masked, self.seed_generator),
            batch,
        )
        # The `num_masked` lowest-scoring blocks are masked: for random
        # scores (the default) the ranks are a uniformly random permutation,
        # so this is an exact-size, uniformly chosen subset.
        ranks = ops.argsort(ops.argsort(scores, axis=-1), axis=-1)
        blocks = ops.less(ranks, num_masked)
        if frames is None:
            blocks = ops.reshape(blocks, (batch, rows, cols))
        else:
            blocks = ops.reshape(blocks, (batch, depth, rows, cols))
            blocks = ops.repeat(blocks, frames // depth, axis=1)
        return upsample_mask(
            blocks, self.mask_patch_size // self.model_patch_size
        )

    def compute_output_shape(self, input_shape):
        frames, height, width = self._sizes(tuple(input_shape))
        rows, cols = self.block_grid(height, width)
        scale = self.mask_patch_size // self.model_patch_size
        grid = (rows * scale, cols * scale)
        if frames is None:
            return (input_shape[0],) + grid
        self.temporal_blocks(frames)  # checks that the blocks divide them
        return (input_shape[0], frames) + grid

    def _mask_patch_size_config(self):
        if self.temporal_mask_patch_size == 1:
            return self.mask_patch_size
        side = self.mask_patch_size
        return (self.temporal_mask_patch_size, side, side)

    def compute_output_spec(self, images):
        return keras.KerasTensor(
            self.compute_output_shape(images.shape), dtype="bool"
        )

    # The random state is a variable of the SeedGenerator, which Keras does
    # not save with the layer; saving it makes a resumed run draw the masks
    # an uninterrupted run would have drawn.
    def save_own_variables(self, store):
        super().save_own_variables(store)
        store[SEED_STATE_KEY] = ops.convert_to_numpy(self.seed_generator.state)

    def load_own_variables(self, store):
        own = self._trainable_variables + self._non_trainable_variables
        for index, variable in enumerate(own):
            variable.assign(store[str(index)])
        if SEED_STATE_KEY in store:  # files written by 0.1.0 lack it
            self.seed_generator.state.assign(store[SEED_STATE_KEY])

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "mask_patch_size": self._mask_patch_size_config(),
                "model_patch_size": self.model_patch_size,
                "mask_ratio": self.mask_ratio,
                "seed": self.seed,
                "strategy": self.strategy,
            }
        )
        return config
