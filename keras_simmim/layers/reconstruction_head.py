"""`ReconstructionHead`: SimMIM's one-layer linear pixel decoder."""

import keras

from keras_simmim.layers.pixel_shuffle import PixelShuffle
from keras_simmim.utils.validation import check_positive_int


@keras.saving.register_keras_serializable(package="keras_simmim")
class ReconstructionHead(keras.layers.Layer):
    """Predicts raw pixels from an encoder feature map.

    A 1x1 convolution from the feature width to `stride * stride * channels`
    outputs, followed by a `PixelShuffle(stride)`: every feature vector
    predicts the `stride x stride` pixels it covers. This is the whole SimMIM
    decoder; the paper shows heavier heads buy nothing.

    Args:
        stride: int. Output stride of the encoder (16 for ViT-B/16, 32 for
            Swin); the head upsamples by this factor.
        channels: int. Number of image channels to predict.
        kernel_initializer: initializer of the 1x1 convolution.
        **kwargs: standard `keras.layers.Layer` arguments.

    Input shape:
        `(batch, height // stride, width // stride, dim)`.

    Output shape:
        `(batch, height, width, channels)`.

    Example:

    >>> import numpy as np
    >>> head = ReconstructionHead(stride=4, channels=3)
    >>> tuple(head(np.zeros((2, 8, 8, 32), "float32")).shape)
    (2, 32, 32, 3)
    """

    def __init__(
        self, stride, channels, kernel_initializer="glorot_uniform", **kwargs
    ):
        super().__init__(**kwargs)
        check_positive_int("stride", stride)
        check_positive_int("channels", channels)
        self.stride = int(stride)
        self.channels = int(channels)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.projection = keras.layers.Conv2D(
            self.stride * self.stride * self.channels,
            kernel_size=1,
            kernel_initializer=self.kernel_initializer,
            dtype=self.dtype_policy,
            name="projection",
        )
        self.pixel_shuffle = PixelShuffle(
            self.stride, dtype=self.dtype_policy, name="pixel_shuffle"
        )

    def build(self, input_shape):
        if len(input_shape) != 4 or input_shape[-1] is None:
            raise ValueError(
                "ReconstructionHead expects a feature map of shape (batch, "
                "height, width, dim) with a known dim. Received shape: "
                f"{tuple(input_shape)}."
            )
        self.projection.build(input_shape)

    def call(self, features):
        return self.pixel_shuffle(self.projection(features))

    def compute_output_shape(self, input_shape):
        return self.pixel_shuffle.compute_output_shape(
            self.projection.compute_output_shape(input_shape)
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "stride": self.stride,
                "channels": self.channels,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
            }
        )
        return config
