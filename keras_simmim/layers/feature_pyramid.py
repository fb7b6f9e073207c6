"""`SimpleFeaturePyramid`: ViTDet's pyramid from one feature map, and the
checks of pyramid levels (level `l` is stride `2**l`)."""

import math
import numbers

import keras


def _check_level(name, value, low=1):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"`{name}` must be an int (a pyramid level: stride 2**level). "
            f"Received: {name}={value!r} of type {type(value).__name__}."
        )
    if value < low:
        raise ValueError(
            f"`{name}` must be >= {low}. Received: {name}={value}."
        )
    return int(value)


def check_pyramid_levels(min_level, max_level):
    """`(min_level, max_level)` as ints, checked: levels >= 1, min <= max."""
    min_level = _check_level("min_level", min_level)
    max_level = _check_level("max_level", max_level)
    if min_level > max_level:
        raise ValueError(
            "`min_level` must be <= `max_level`. Received: "
            f"min_level={min_level}, max_level={max_level}."
        )
    return min_level, max_level


def check_power_of_two(name, value):
    """`value` as an int, checked to be a power of two (a stride)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or (
        value < 1 or value & (value - 1)
    ):
        raise ValueError(
            f"`{name}` must be a power of two (1, 2, 4, 8, 16, ...). "
            f"Received: {name}={value!r}."
        )
    return int(value)


def _halved(channels, times):
    for _ in range(times):
        channels = max(channels // 2, 1)
    return channels



@keras.saving.register_keras_serializable(package="keras_simmim")
class SimpleFeaturePyramid(keras.layers.Layer):
    """ViTDet's simple feature pyramid: levels from one plain-ViT feature map.

    Li et al. 2022 ("Exploring Plain Vision Transformer Backbones for Object
    Detection") build the detector's multi-scale features from the last map
    of a plain ViT alone (stride 16): transposed convolutions up to strides
    8 and 4, the map itself at 16, max pooling down to 32 (and 64). This
    layer does that for any power-of-two input stride `p`: level `l`
    (stride `2**l`) is

    * `2**l < p`: `log2(p / 2**l)` 2x2 stride-2 transposed convolutions,
      halving the channels each time, LayerNorm + GELU between them;
    * `2**l == p`: the input;
    * `2**l > p`: max pooling by `2**l / p` (`"same"` padding).

    The channel projection and smoothing (ViTDet's 1x1 and 3x3 convs) are
    left to the FPN that follows (keras-hub's RetinaNet FPN has them).

    Args:
        input_stride: int, power of two: the input map's stride in pixels
            (the ViT's patch size).
        min_level: int >= 1, the finest level made (stride `2**min_level`).
        max_level: int >= min_level, the coarsest level made.
        **kwargs: standard layer arguments (`name`, `dtype`).

    Input shape:
        `(batch, rows, cols, channels)`, channels-last.

    Output shape:
        a dict `{"P{l}": (batch, rows * p / 2**l, cols * p / 2**l, c_l)}`
        for `l` in `[min_level, max_level]` (rounded up when pooling),
        with `c_l = channels / 2**k` after `k` transposed convolutions and
        `channels` otherwise.

    Raises:
        ValueError: a stride that is not a power of two or levels out of
            order, naming the argument.

    Example:

    >>> import numpy as np
    >>> pyramid = SimpleFeaturePyramid(input_stride=16, min_level=2,
    ...                                max_level=6)
    >>> levels = pyramid(np.zeros((1, 4, 4, 32), "float32"))
    >>> {k: tuple(v.shape) for k, v in levels.items()}
    {'P2': (1, 16, 16, 8), 'P3': (1, 8, 8, 16), 'P4': (1, 4, 4, 32), \
'P5': (1, 2, 2, 32), 'P6': (1, 1, 1, 32)}
    """

    def __init__(self, input_stride=16, min_level=2, max_level=6, **kwargs):
        super().__init__(**kwargs)
        self.input_stride = check_power_of_two("input_stride", input_stride)
        self.min_level, self.max_level = check_pyramid_levels(min_level, max_level)

    @property
    def levels(self):
        return tuple(range(self.min_level, self.max_level + 1))

    def _steps(self, level):
        """Transposed convolutions (> 0) or pooling factor (< 0) of a level."""
        stride = 2**level
        if stride < self.input_stride:
            return int(round(math.log2(self.input_stride // stride)))
        if stride > self.input_stride:
            return -(stride // self.input_stride)
        return 0

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None:
            raise ValueError(
                "SimpleFeaturePyramid needs a known channel count. Received "
                f"input_shape={input_shape}."
            )
        self.branches = {}
        for level in self.levels:
            steps = self._steps(level)
            layers = []
            if steps > 0:
                dim = channels
                for i in range(steps):
                    if i:
                        layers.append(keras.layers.LayerNormalization(
                            epsilon=1e-6, dtype=self.dtype_policy,
                            name=f"P{level}_norm_{i}"))
                        layers.append(keras.layers.Activation(
                            "gelu", dtype=self.dtype_policy,
                            name=f"P{level}_gelu_{i}"))
                    dim = max(dim // 2, 1)
                    layers.append(keras.layers.Conv2DTranspose(
                        dim, 2, strides=2, dtype=self.dtype_policy,
                        name=f"P{level}_deconv_{i}"))
            elif steps < 0:
                layers.append(keras.layers.MaxPooling2D(
                    -steps, strides=-steps, padding="same",
                    dtype=self.dtype_policy, name=f"P{level}_pool"))
            shape = tuple(input_shape)
            for layer in layers:
                layer.build(shape)
                shape = layer.compute_output_shape(shape)
            self.branches[f"P{level}"] = layers
        self.built = True

    def call(self, inputs):
        outputs = {}
        for name, layers in self.branches.items():
            x = inputs
            for layer in layers:
                x = layer(x)
            outputs[name] = x
        return outputs

    def compute_output_shape(self, input_shape):
        batch, rows, cols, channels = input_shape
        shapes = {}
        for level in self.levels:
            steps = self._steps(level)
            if steps >= 0:
                scale = 2**steps
                shapes[f"P{level}"] = (
                    batch,
                    None if rows is None else rows * scale,
                    None if cols is None else cols * scale,
                    channels if steps == 0 else _halved(channels, steps),
                )
            else:
                shapes[f"P{level}"] = (
                    batch,
                    None if rows is None else -(-rows // -steps),
                    None if cols is None else -(-cols // -steps),
                    channels,
                )
        return shapes

    def get_config(self):
        config = super().get_config()
        config.update({
            "input_stride": self.input_stride,
            "min_level": self.min_level,
            "max_level": self.max_level,
        })
        return config
