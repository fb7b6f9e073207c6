"""`PixelShuffle`: rearranges channels into space (depth to space)."""

import keras
from keras import ops

from keras_simmim.utils.validation import check_positive_int


@keras.saving.register_keras_serializable(package="keras_simmim")
class PixelShuffle(keras.layers.Layer):
    """Moves blocks of channels into `factor x factor` spatial blocks.

    Channels-last depth-to-space: input channel `(i * factor + j) * C + c`
    becomes output pixel `(y * factor + i, x * factor + j)`, channel `c`.
    This is TensorFlow's `depth_to_space` order. PyTorch's `nn.PixelShuffle`
    reads channel `c * factor**2 + i * factor + j` instead; converted PyTorch
    weights must have their output channels permuted (see
    `keras_simmim.presets`).

    Args:
        factor: int. Upscaling factor.
        **kwargs: standard `keras.layers.Layer` arguments.

    Input shape:
        `(batch, height, width, factor**2 * channels)`.

    Output shape:
        `(batch, height * factor, width * factor, channels)`.

    Example:

    >>> import keras
    >>> import numpy as np
    >>> x = np.arange(4, dtype="float32").reshape(1, 1, 1, 4)
    >>> keras.ops.convert_to_numpy(PixelShuffle(2)(x))[0, :, :, 0].tolist()
    [[0.0, 1.0], [2.0, 3.0]]
    """

    def __init__(self, factor, **kwargs):
        super().__init__(**kwargs)
        check_positive_int("factor", factor)
        self.factor = int(factor)

    def _check(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(
                "PixelShuffle expects inputs of shape (batch, height, width, "
                f"channels). Received shape: {tuple(input_shape)}."
            )
        height, width, depth = input_shape[1:]
        if depth is None or depth % (self.factor**2):
            raise ValueError(
                f"PixelShuffle(factor={self.factor}) needs a channel count "
                f"divisible by {self.factor**2}. Received shape: "
                f"{tuple(input_shape)}."
            )
        return height, width, depth // self.factor**2

    def call(self, inputs):
        height, width, channels = self._check(tuple(inputs.shape))
        s = self.factor
        batch = ops.shape(inputs)[0]
        if height is None or width is None:
            shape = ops.shape(inputs)
            height, width = shape[1], shape[2]
        x = ops.reshape(inputs, (batch, height, width, s, s, channels))
        x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
        return ops.reshape(x, (batch, height * s, width * s, channels))

    def compute_output_shape(self, input_shape):
        height, width, channels = self._check(tuple(input_shape))
        scale = lambda n: None if n is None else n * self.factor  # noqa: E731
        return (input_shape[0], scale(height), scale(width), channels)

    def get_config(self):
        config = super().get_config()
        config["factor"] = self.factor
        return config
