"""Pixel decoders: SimMIM's linear head (`ReconstructionHead`), a 2-layer
MLP head and a heavier transformer head, for the paper's head comparison."""

import inspect

import keras
from keras import ops

from keras_simmim.layers.pixel_shuffle import PixelShuffle
from keras_simmim.layers.transformer_block import TransformerBlock
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

    def _check_shape(self, input_shape):
        if len(input_shape) != 4 or input_shape[-1] is None:
            raise ValueError(
                f"{type(self).__name__} expects a feature map of shape "
                "(batch, height, width, dim) with a known dim. Received "
                f"shape: {tuple(input_shape)}."
            )

    def build(self, input_shape):
        self._check_shape(input_shape)
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


@keras.saving.register_keras_serializable(package="keras_simmim")
class MLPReconstructionHead(ReconstructionHead):
    """Two 1x1 convolutions with a GELU between, then a pixel shuffle.

    The paper's "2-layer MLP" head: a hidden width of `hidden_dim` (None:
    the feature width) before the linear projection of `ReconstructionHead`.

    Args:
        stride: int, the encoder's output stride (the upsampling factor).
        channels: int, channels predicted per pixel.
        hidden_dim: int or None, width of the hidden layer.
        kernel_initializer: initializer of both convolutions.
        **kwargs: standard `keras.layers.Layer` arguments.

    Example:

    >>> import numpy as np
    >>> head = MLPReconstructionHead(stride=4, channels=3, hidden_dim=16)
    >>> tuple(head(np.zeros((2, 8, 8, 32), "float32")).shape)
    (2, 32, 32, 3)
    """

    def __init__(self, stride, channels, hidden_dim=None,
                 kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(stride, channels,
                         kernel_initializer=kernel_initializer, **kwargs)
        if hidden_dim is not None:
            check_positive_int("hidden_dim", hidden_dim)
        self.hidden_dim = None if hidden_dim is None else int(hidden_dim)

    def build(self, input_shape):
        self._check_shape(input_shape)
        width = self.hidden_dim or int(input_shape[-1])
        self.hidden = keras.layers.Conv2D(
            width, kernel_size=1, activation="gelu",
            kernel_initializer=self.kernel_initializer,
            dtype=self.dtype_policy, name="hidden")
        self.hidden.build(input_shape)
        super().build(tuple(input_shape[:3]) + (width,))

    def call(self, features):
        return super().call(self.hidden(features))

    def get_config(self):
        config = super().get_config()
        config["hidden_dim"] = self.hidden_dim
        return config


@keras.saving.register_keras_serializable(package="keras_simmim")
class TransformerReconstructionHead(ReconstructionHead):
    """A few transformer blocks over the feature map, then the linear head.

    The "decoder like the encoder" of the paper's head comparison: the
    feature map is flattened to tokens, projected to `hidden_dim`, passed
    through `num_layers` pre-norm `TransformerBlock`s and a LayerNorm, and
    predicted with the 1x1 convolution + pixel shuffle of
    `ReconstructionHead`.

    Args:
        stride: int, the encoder's output stride.
        channels: int, channels predicted per pixel.
        num_layers: int, transformer blocks (2).
        hidden_dim: int or None, token width inside the head (None: the
            feature width).
        num_heads: int or None, attention heads (None: the most of 8, 4, 2
            that leaves at least 16 channels per head, else 1).
        kernel_initializer: initializer of the output convolution.
        **kwargs: standard `keras.layers.Layer` arguments.

    Example:

    >>> import numpy as np
    >>> head = TransformerReconstructionHead(stride=4, channels=3,
    ...                                      num_layers=1)
    >>> tuple(head(np.zeros((2, 8, 8, 32), "float32")).shape)
    (2, 32, 32, 3)
    """

    def __init__(self, stride, channels, num_layers=2, hidden_dim=None,
                 num_heads=None, kernel_initializer="glorot_uniform",
                 **kwargs):
        super().__init__(stride, channels,
                         kernel_initializer=kernel_initializer, **kwargs)
        check_positive_int("num_layers", num_layers)
        for name, value in (("hidden_dim", hidden_dim),
                            ("num_heads", num_heads)):
            if value is not None:
                check_positive_int(name, value)
        self.num_layers = int(num_layers)
        self.hidden_dim = None if hidden_dim is None else int(hidden_dim)
        self.num_heads = None if num_heads is None else int(num_heads)

    def build(self, input_shape):
        self._check_shape(input_shape)
        _, rows, cols, dim = input_shape
        width = self.hidden_dim or int(dim)
        heads = self.num_heads or next(
            (h for h in (8, 4, 2) if width % h == 0 and width // h >= 16), 1)
        policy = self.dtype_policy
        self.input_projection = keras.layers.Dense(
            width, dtype=policy, name="input_projection")
        self.blocks = [
            TransformerBlock(heads, dtype=policy, name=f"block_{i}")
            for i in range(self.num_layers)
        ]
        self.norm = keras.layers.LayerNormalization(
            epsilon=1e-6, dtype=policy, name="norm")
        tokens = (None, None, int(dim))
        self.input_projection.build(tokens)
        tokens = (None, None, width)
        for block in self.blocks:
            block.build(tokens)
        self.norm.build(tokens)
        super().build((None, rows, cols, width))

    def call(self, features):
        shape = ops.shape(features)
        rows, cols = features.shape[1], features.shape[2]
        x = ops.reshape(features, (shape[0], rows * cols, features.shape[-1]))
        x = self.input_projection(x)
        for block in self.blocks:
            x = block(x)
        x = self.norm(x)
        return super().call(ops.reshape(x, (shape[0], rows, cols, -1)))

    def get_config(self):
        config = super().get_config()
        config.update({"num_layers": self.num_layers,
                       "hidden_dim": self.hidden_dim,
                       "num_heads": self.num_heads})
        return config


HEADS = {
    "linear": ReconstructionHead,
    "mlp": MLPReconstructionHead,
    "transformer": TransformerReconstructionHead,
}


def make_head(kind, stride, channels, options=None, **kwargs):
    """Builds the head named `kind` (a key of `HEADS`) with `options`
    (its own constructor arguments, e.g. `{"num_layers": 4}`)."""
    if kind not in HEADS:
        raise ValueError(
            f"`head` must be one of {sorted(HEADS)}. Received: head={kind!r}."
        )
    options = dict(options or {})
    if not all(isinstance(k, str) for k in options):
        raise TypeError(
            f"`head_options` must be a dict of argument names. Received: "
            f"head_options={options!r}."
        )
    accepted = set(inspect.signature(HEADS[kind].__init__).parameters) - {
        "self", "stride", "channels", "kwargs"}
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise TypeError(
            f"`head_options` has {unknown}, which head={kind!r} does not "
            f"take; it takes {sorted(accepted)}. Received: "
            f"head_options={options!r}."
        )
    return HEADS[kind](stride, channels, **options, **kwargs)
