"""Object detection on a (SimMIM-pretrained) backbone, with existing
detectors: keras-hub's `RetinaNetObjectDetector`, or keras-cv's
`YOLOV8Detector` where keras-cv is installed.

* A keras-hub CNN with a feature pyramid (`ResNetBackbone`: P2-P5) goes
  into the detector as it is.
* A keras-hub Swin Transformer gives one level per stage (the stage's
  blocks, before its patch merging): P2-P5 for patch 4 and four stages.
* A plain ViT has one feature map at stride `p` (its patch size): a
  ViTDet-style `SimpleFeaturePyramid` makes the other levels from it
  (transposed convolutions below `p`, max pooling above).

`PyramidImageEncoder` is the keras-hub `FeaturePyramidBackbone` that wraps
a Swin or ViT that way. Every path calls the backbone's own layers, so the
detector trains the very variables of the backbone (and of a `SimMIMModel`
holding it).
"""

import math
import numbers

import keras
import keras_hub

from keras_simmim.data.detection import BOUNDING_BOX_FORMATS
from keras_simmim.models.masked_image_model import MaskedImageModel
from keras_simmim.utils.validation import check_choice
from keras_simmim.utils.validation import check_positive_int

DETECTORS = ("retinanet", "yolov8")
# What `build_object_detector` takes, for error messages.
SUPPORTED_BACKBONES = (
    "keras_hub.models.ResNetBackbone (or any keras-hub FeaturePyramidBackbone "
    "with pyramid outputs up to P5), keras_hub.models.SwinTransformerBackbone, "
    "keras_hub.models.ViTBackbone, or a keras_simmim SimMIMModel / MAEModel "
    "built on one of these"
)
INSTALL_HINT = "pip install keras-simmim[detection]"


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


def _check_levels(min_level, max_level):
    min_level = _check_level("min_level", min_level)
    max_level = _check_level("max_level", max_level)
    if min_level > max_level:
        raise ValueError(
            "`min_level` must be <= `max_level`. Received: "
            f"min_level={min_level}, max_level={max_level}."
        )
    return min_level, max_level


def _power_of_two(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or (
        value < 1 or value & (value - 1)
    ):
        raise ValueError(
            f"`{name}` must be a power of two (1, 2, 4, 8, 16, ...). "
            f"Received: {name}={value!r}."
        )
    return int(value)


def _square_patch(backbone):
    patch = backbone.patch_size
    if not isinstance(patch, numbers.Integral):
        patch_h, patch_w = patch
        if patch_h != patch_w:
            raise ValueError(
                f"Detection needs square patches. {type(backbone).__name__} "
                f"has patch_size={patch}."
            )
        patch = patch_h
    if getattr(backbone, "data_format", "channels_last") != "channels_last":
        raise ValueError(
            "Detection supports channels_last backbones only. Received "
            f"data_format={backbone.data_format!r}."
        )
    return _power_of_two(f"{type(backbone).__name__}.patch_size", patch)


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
        self.input_stride = _power_of_two("input_stride", input_stride)
        self.min_level, self.max_level = _check_levels(min_level, max_level)

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


def _halved(channels, times):
    for _ in range(times):
        channels = max(channels // 2, 1)
    return channels


def _vit_levels(backbone, inputs, min_level, max_level):
    """The simple pyramid over a keras-hub ViT's patch tokens."""
    patch = _square_patch(backbone)
    height, width = backbone.image_shape[:2]
    prefix = int(getattr(backbone, "use_class_token", True))
    tokens = backbone(inputs)
    if prefix:
        tokens = keras.layers.Cropping1D(
            (prefix, 0), dtype=backbone.dtype_policy, name="drop_class_token"
        )(tokens)
    grid = keras.layers.Reshape(
        (height // patch, width // patch, backbone.hidden_dim),
        dtype=backbone.dtype_policy, name="token_grid",
    )(tokens)
    return SimpleFeaturePyramid(
        input_stride=patch, min_level=min_level, max_level=max_level,
        dtype=backbone.dtype_policy, name="simple_feature_pyramid",
    )(grid)


class _SwinStageFeatures(keras.layers.Layer):
    """A keras-hub Swin stage split at its patch merging: returns the
    blocks' output `(batch, rows * cols, dim)` and, when the stage merges,
    the merged tokens for the next stage (the blocks' output alone for a
    stage that does not merge). Its blocks are the stage's own
    (calling them one by one in a new graph would clash on their names);
    `PyramidImageEncoder` rebuilds it from the backbone, so it has no config
    of its own."""

    def __init__(self, stage, rows, cols, **kwargs):
        super().__init__(**kwargs)
        self.stage = stage
        self.rows, self.cols = rows, cols

    def call(self, tokens):
        for block in self.stage.blocks:
            tokens = block(tokens)
        if self.stage.downsample is None:
            return tokens
        return tokens, self.stage.downsample(tokens, H=self.rows, W=self.cols)


def _swin_levels(backbone, inputs):
    """One level per Swin stage: its blocks' output before patch merging."""
    patch = _square_patch(backbone)
    rows, cols = (side // patch for side in backbone.image_shape[:2])
    x = backbone.patch_embedding(inputs)
    x = backbone.get_layer("pos_drop")(x)
    outputs = {}
    level = int(round(math.log2(patch)))
    for index, stage in enumerate(backbone.stages):
        features = _SwinStageFeatures(
            stage, rows, cols, dtype=backbone.dtype_policy,
            name=f"stage_{index}_features",
        )(x)
        if stage.downsample is None:
            features = backbone.norm(features)
        else:
            features, x = features
        outputs[f"P{level + index}"] = keras.layers.Reshape(
            (rows, cols, stage.dim), dtype=backbone.dtype_policy,
            name=f"stage_{index}_grid",
        )(features)
        rows, cols = (rows + 1) // 2, (cols + 1) // 2
    return outputs


@keras.saving.register_keras_serializable(package="keras_simmim")
class PyramidImageEncoder(keras_hub.models.FeaturePyramidBackbone):
    """A keras-hub `FeaturePyramidBackbone` around a ViT or Swin backbone.

    keras-hub's detectors take an image encoder with `pyramid_outputs`
    (`{"P3": ..., "P4": ..., ...}`, level `l` at stride `2**l`), as its
    CNNs have. This builds them for transformer backbones, calling the
    backbone's own layers (its weights are the encoder's):

    * `ViTBackbone` (patch `p`, a power of two): the patch tokens, without
      the class token, as a `(H/p, W/p, D)` map, then a
      `SimpleFeaturePyramid` for levels `min_level`..`max_level`.
    * `SwinTransformerBackbone`: each stage's blocks' output before its
      patch merging (the last stage after the final LayerNorm), at level
      `log2(patch) + stage`; `min_level` / `max_level` are not used.

    Args:
        backbone: a keras-hub `ViTBackbone` or `SwinTransformerBackbone`
            (channels-last, square power-of-two patches).
        min_level: int, the ViT pyramid's finest level.
        max_level: int, the ViT pyramid's coarsest level.
        **kwargs: `name`, `dtype`, `trainable`.

    Raises:
        TypeError: another kind of backbone.
        ValueError: bad levels or patch size, or image sides that do not
            split into whole cells at the coarsest level.

    Example:

    >>> import keras_hub, numpy as np
    >>> vit = keras_hub.models.ViTBackbone(
    ...     image_shape=(64, 64, 3), patch_size=16, num_layers=1, num_heads=2,
    ...     hidden_dim=32, mlp_dim=64)
    >>> encoder = PyramidImageEncoder(vit, min_level=3, max_level=6)
    >>> {k: tuple(v.shape) for k, v in encoder.pyramid_outputs.items()}
    {'P3': (None, 8, 8, 16), 'P4': (None, 4, 4, 32), 'P5': (None, 2, 2, 32), \
'P6': (None, 1, 1, 32)}
    """

    def __init__(self, backbone, min_level=3, max_level=6, dtype=None,
                 **kwargs):
        min_level, max_level = _check_levels(min_level, max_level)
        image_shape = tuple(backbone.image_shape) if hasattr(
            backbone, "image_shape") else None
        if isinstance(backbone, keras_hub.models.ViTBackbone):
            kind = "vit"
        elif isinstance(backbone, keras_hub.models.SwinTransformerBackbone):
            kind = "swin"
        else:
            raise TypeError(
                "PyramidImageEncoder wraps a keras_hub.models.ViTBackbone or "
                "SwinTransformerBackbone. Received: backbone of type "
                f"{type(backbone).__name__}."
            )
        patch = _square_patch(backbone)
        if kind == "swin":
            top = patch * 2 ** (len(backbone.stages) - 1)
        else:
            top = max(patch, 2**max_level)
        if image_shape[0] % top or image_shape[1] % top:
            raise ValueError(
                f"The {type(backbone).__name__}'s image sides "
                f"{tuple(image_shape[:2])} must be multiples of {top} (the "
                "coarsest level's stride) for the pyramid's levels to halve "
                "exactly."
            )
        inputs = keras.Input(image_shape, name="images")
        if kind == "vit":
            outputs = _vit_levels(backbone, inputs, min_level, max_level)
        else:
            outputs = _swin_levels(backbone, inputs)
        super().__init__(inputs=inputs, outputs=outputs, dtype=dtype, **kwargs)
        self.backbone = backbone
        self.min_level = min_level
        self.max_level = max_level
        self.image_shape = image_shape
        self.pyramid_outputs = outputs

    def get_config(self):
        config = super().get_config()
        config.update({
            "backbone": keras.layers.serialize(self.backbone),
            "min_level": self.min_level,
            "max_level": self.max_level,
        })
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.layers.deserialize(config["backbone"])
        return super().from_config(config)


@keras.saving.register_keras_serializable(package="keras_simmim")
class NamedPyramidBackbone(keras.Model):
    """An image encoder's pyramid levels as layers named `"P3"`, `"P4"`, ...

    keras-cv's detectors (`YOLOV8Detector`) find their features by layer
    name through the backbone's `pyramid_level_inputs`; keras-hub's give
    tensors (`pyramid_outputs`). This functional model bridges the two,
    sharing the encoder's layers and weights.

    Args:
        image_encoder: a keras-hub `FeaturePyramidBackbone` (e.g.
            `ResNetBackbone`, `PyramidImageEncoder`).
        levels: the levels to expose, e.g. `(3, 4, 5)`.
        image_shape: `(H, W, C)` of the input; None takes the encoder's.
        **kwargs: `name`, `dtype`, `trainable`.

    Example:

    >>> import keras_hub
    >>> resnet = keras_hub.models.ResNetBackbone(
    ...     input_conv_filters=[64], input_conv_kernel_sizes=[3],
    ...     stackwise_num_filters=[64, 8, 8, 8], stackwise_num_blocks=[1] * 4,
    ...     stackwise_num_strides=[1, 2, 2, 2], block_type="basic_block",
    ...     image_shape=(64, 64, 3))
    >>> named = NamedPyramidBackbone(resnet)
    >>> named.pyramid_level_inputs, tuple(named.get_layer("P5").output.shape)
    ({'P3': 'P3', 'P4': 'P4', 'P5': 'P5'}, (None, 2, 2, 8))
    """

    def __init__(self, image_encoder, levels=(3, 4, 5), image_shape=None,
                 **kwargs):
        levels = tuple(int(level) for level in levels)
        available = getattr(image_encoder, "pyramid_outputs", None) or {}
        missing = [level for level in levels if f"P{level}" not in available]
        if missing:
            raise ValueError(
                f"The image encoder ({type(image_encoder).__name__}) has no "
                f"pyramid level(s) {['P%d' % m for m in missing]}; it has "
                f"{sorted(available)}."
            )
        if image_shape is None:
            image_shape = tuple(image_encoder.inputs[0].shape[1:])
        image_shape = tuple(image_shape)
        features = keras.Model(
            image_encoder.inputs,
            {f"P{level}": available[f"P{level}"] for level in levels},
            name="pyramid_features",
        )
        inputs = keras.Input(image_shape, name="images")
        levels_out = features(inputs)
        outputs = {
            f"P{level}": keras.layers.Identity(name=f"P{level}")(
                levels_out[f"P{level}"])
            for level in levels
        }
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.image_encoder = image_encoder
        self.levels = levels
        self.image_shape = image_shape
        self.pyramid_level_inputs = {f"P{level}": f"P{level}" for level in levels}

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "image_encoder": keras.layers.serialize(self.image_encoder),
            "levels": list(self.levels),
            "image_shape": list(self.image_shape),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["image_encoder"] = keras.layers.deserialize(
            config["image_encoder"])
        return cls(**config)


def _unwrap(model):
    """`(backbone, image_shape hint)` of a backbone or a masked image model."""
    if isinstance(model, MaskedImageModel):
        return model.backbone, tuple(model.image_shape)
    return model, None


def _image_shape(name, value, fixed):
    """Merges the `image_shape` argument with what the backbone fixes."""
    if value is None:
        return fixed
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise TypeError(
            "`image_shape` must be a tuple (height, width, channels). "
            f"Received: image_shape={value!r}."
        )
    shape = tuple(value)
    if len(shape) != 3 or any(
        v is not None and (isinstance(v, bool) or not isinstance(
            v, numbers.Integral) or v < 1)
        for v in shape
    ):
        raise ValueError(
            "`image_shape` must be (height, width, channels) with positive "
            f"ints (None for any size). Received: image_shape={value!r}."
        )
    if fixed is not None:
        for got, want in zip(shape, fixed):
            if want is not None and got != want:
                raise ValueError(
                    f"`image_shape`={shape} does not match the {name}'s input "
                    f"shape {tuple(fixed)} (None = any). Leave image_shape as "
                    "None to use the backbone's."
                )
    return tuple(None if v is None else int(v) for v in shape)


def _encoder(backbone, image_shape, min_level, max_level):
    """The keras-hub image encoder (with `pyramid_outputs`) for `backbone`,
    and the image shape the detector takes."""
    name = type(backbone).__name__
    if isinstance(backbone, (keras_hub.models.ViTBackbone,
                             keras_hub.models.SwinTransformerBackbone)):
        image_shape = _image_shape(name, image_shape, tuple(backbone.image_shape))
        if isinstance(backbone, keras_hub.models.ViTBackbone):
            height, width = image_shape[:2]
            # Pool to 64 where the sides allow it (ViTDet), else let the
            # FPN's strided convolutions make the levels above 32.
            top = 6 if height % 64 == 0 and width % 64 == 0 else 5
            top = max(min(top, max_level), min_level)
            return PyramidImageEncoder(
                backbone, min_level=min_level, max_level=top,
                name="pyramid_image_encoder"), image_shape
        return PyramidImageEncoder(
            backbone, name="pyramid_image_encoder"), image_shape
    if isinstance(backbone, keras_hub.models.FeaturePyramidBackbone) and (
        getattr(backbone, "pyramid_outputs", None)
    ):
        fixed = getattr(backbone, "image_shape", None)
        if fixed is None:
            fixed = tuple(backbone.inputs[0].shape[1:])
        return backbone, _image_shape(name, image_shape, tuple(fixed))
    raise TypeError(
        f"build_object_detector cannot take a backbone of type {name}. It "
        f"takes a {SUPPORTED_BACKBONES}."
    )


def _check_pyramid(encoder, image_shape, min_level, max_level, detector):
    """The encoder has the levels the detector reads, and the image splits
    into whole cells at the coarsest of them."""
    available = sorted(int(key[1:]) for key in encoder.pyramid_outputs)
    top = min(max(available), max_level)
    if detector == "yolov8":
        needed = [3, 4, 5]
    else:
        needed = list(range(min_level, top + 1))
        if max(available) < 5 <= max_level:
            needed.append(5)
    missing = [level for level in needed if level not in available]
    if missing:
        raise ValueError(
            f"detector={detector!r} reads pyramid levels "
            f"{['P%d' % level for level in needed]} (min_level={min_level}, "
            f"max_level={max_level}), but the backbone "
            f"({type(getattr(encoder, 'backbone', encoder)).__name__}) gives "
            f"{['P%d' % level for level in available]}. Choose levels it has "
            "(RetinaNet needs up to P5 when max_level >= 5)."
        )
    stride = 2 ** (5 if detector == "yolov8" else top)
    height, width = image_shape[:2]
    if (height is not None and height % stride) or (
        width is not None and width % stride
    ):
        raise ValueError(
            f"`image_shape`={tuple(image_shape)}: the image sides must be "
            f"multiples of {stride} (the stride of level P{int(math.log2(stride))}, "
            "the coarsest level the backbone gives the FPN), so that each "
            "level is exactly twice the next."
        )


def build_object_detector(
    backbone_or_simmim_model,
    num_classes,
    detector="retinanet",
    bounding_box_format="xyxy",
    image_shape=None,
    min_level=None,
    max_level=None,
    anchor_size=None,
    **kwargs,
):
    """A trainable object detector on a (SimMIM-pretrained) backbone.

    One call from a pretrained backbone (or the `SimMIMModel` that trained
    it: its `.backbone` is used, so the detector trains the very same
    variables) to an existing detector:

    * `detector="retinanet"`: keras-hub's `RetinaNetObjectDetector` (its
      FPN, focal loss, anchors and NMS) over a `RetinaNetBackbone` whose
      image encoder is

      - a keras-hub `ResNetBackbone` (or any keras-hub
        `FeaturePyramidBackbone` reaching P5): its own pyramid outputs;
      - a keras-hub `SwinTransformerBackbone`: its stages (P2-P5 for
        patch 4 and four stages), via `PyramidImageEncoder`;
      - a keras-hub `ViTBackbone` (power-of-two patch `p`): ViTDet's simple
        feature pyramid from its single stride-`p` map (transposed
        convolutions to the finer levels, max pooling to 32, and to 64
        when the image sides are multiples of 64); levels above come from
        the FPN's strided convolutions.

      It comes compiled with keras-hub's defaults (Adam 5e-5, Huber box
      loss, focal classification loss); `compile()` again to change them.
    * `detector="yolov8"`: keras-cv's `YOLOV8Detector` over the same
      backbones' P3-P5 (`NamedPyramidBackbone`), compiled with its CIoU box
      loss, binary cross-entropy classification loss and Adam 1e-3 (global
      clip norm 10). Needs keras-cv (`pip install keras-simmim[detection]`).
      keras-cv names the class targets `"classes"`: fit it with
      `{"boxes": t["boxes"], "classes": t["labels"]}`. Its predictions go
      through keras-hub's `NonMaxSuppression` (keras-cv's default, with the
      same thresholds, imports torchvision on torch), so `predict` returns
      the same keys as RetinaNet's, on every backend.

    Nothing is downloaded: the backbone's weights are whatever it holds.

    Args:
        backbone_or_simmim_model: a keras-hub `ResNetBackbone`,
            `SwinTransformerBackbone`, `ViTBackbone` or other
            `FeaturePyramidBackbone`, or a `SimMIMModel` / `MAEModel` on one.
        num_classes: int, object classes (ids `0..num_classes - 1`).
        detector: `"retinanet"` or `"yolov8"`.
        bounding_box_format: the format of the boxes the detector is fit on
            and predicts, one of `keras_simmim.data.BOUNDING_BOX_FORMATS`
            (`"xyxy"`: left, top, right, bottom in pixels).
        image_shape: `(H, W, C)` of the images; None takes it from the
            backbone or the SimMIM model (a ViT or Swin fixes it; a ResNet
            accepts any size, `(None, None, 3)`).
        min_level: RetinaNet's finest pyramid level (default 3, stride 8).
        max_level: RetinaNet's coarsest level (default 7, stride 128).
        anchor_size: RetinaNet's anchor side at each level, in units of the
            level's stride (default 4, keras-hub's: 32 px at P3; use 2 for
            objects of 16-24 px).
        **kwargs: passed to the detector's constructor, e.g.
            `pre_logits_num_conv_layers`, `prediction_decoder` (RetinaNet)
            or `fpn_depth` (YOLOv8).

    Returns:
        `keras_hub.models.RetinaNetObjectDetector` or
        `keras_cv.models.YOLOV8Detector`. Train with `fit(images,
        {"boxes": (B, N, 4), "labels": (B, N)})` (rows of -1 are padding;
        `keras_simmim.data.load_digit_detection` makes such data and
        `keras_simmim.data.check_detection_targets` checks it); `predict`
        returns `{"boxes": (B, max_detections, 4)` in
        `bounding_box_format`, `"labels"`, `"confidence"`,
        `"num_detections"}`.

    Raises:
        TypeError: a backbone the detector cannot take (the message names
            those it can), or an argument of the wrong type.
        ValueError: an unknown `detector` or `bounding_box_format`, an
            `image_shape` the backbone does not take or whose sides the
            pyramid cannot halve exactly, levels the backbone does not
            give, or RetinaNet-only arguments with `"yolov8"`.
        ImportError: `detector="yolov8"` without keras-cv.

    Example:

    >>> import keras_hub, numpy as np
    >>> from keras_simmim.data import load_digit_detection, normalize
    >>> vit = keras_hub.models.ViTBackbone(
    ...     image_shape=(64, 64, 3), patch_size=16, num_layers=1, num_heads=2,
    ...     hidden_dim=32, mlp_dim=64)
    >>> detector = build_object_detector(
    ...     vit, num_classes=10, anchor_size=2, max_level=5,
    ...     pre_logits_num_conv_layers=1)
    >>> images, targets = load_digit_detection("train", num_images=4)
    >>> history = detector.fit(normalize(images), targets, epochs=1,
    ...                        verbose=0)
    >>> detections = detector.predict(normalize(images), verbose=0)
    >>> detections["boxes"].shape[-1], sorted(detections)
    (4, ['boxes', 'confidence', 'labels', 'num_detections'])
    """
    check_positive_int("num_classes", num_classes)
    check_choice("detector", detector, DETECTORS)
    check_choice("bounding_box_format", bounding_box_format,
                 BOUNDING_BOX_FORMATS)
    backbone, hinted_shape = _unwrap(backbone_or_simmim_model)
    if image_shape is None:
        image_shape = hinted_shape
    keras_cv = None
    if detector == "yolov8":
        given = {name: value for name, value in (
            ("min_level", min_level), ("max_level", max_level),
            ("anchor_size", anchor_size)) if value is not None}
        if given:
            raise ValueError(
                f"{sorted(given)} apply to detector='retinanet' only; "
                "YOLOv8 reads P3-P5 and is anchor-free. Received: "
                + ", ".join(f"{k}={v!r}" for k, v in sorted(given.items()))
                + "."
            )
        min_level, max_level = 3, 5
        keras_cv = _import_keras_cv()
    else:
        min_level, max_level = _check_levels(
            3 if min_level is None else min_level,
            7 if max_level is None else max_level,
        )
        anchor_size = 4 if anchor_size is None else anchor_size
        if isinstance(anchor_size, bool) or not isinstance(
            anchor_size, numbers.Real
        ) or anchor_size <= 0:
            raise ValueError(
                "`anchor_size` must be a positive number (anchor side in "
                f"strides). Received: anchor_size={anchor_size!r}."
            )
    encoder, image_shape = _encoder(backbone, image_shape, min_level, max_level)
    _check_pyramid(encoder, image_shape, min_level, max_level, detector)
    if detector == "yolov8":
        return _yolov8(keras_cv, encoder, image_shape, num_classes,
                       bounding_box_format, kwargs)
    retinanet_backbone = keras_hub.models.RetinaNetBackbone(
        image_encoder=encoder,
        min_level=min_level,
        max_level=max_level,
        use_p5=False,
        image_shape=image_shape,
    )
    anchor_generator = kwargs.pop("anchor_generator", None) or (
        keras_hub.layers.AnchorGenerator(
            bounding_box_format,
            min_level=min_level,
            max_level=max_level,
            num_scales=3,
            aspect_ratios=[0.5, 1.0, 2.0],
            anchor_size=anchor_size,
        )
    )
    return keras_hub.models.RetinaNetObjectDetector(
        backbone=retinanet_backbone,
        num_classes=int(num_classes),
        bounding_box_format=bounding_box_format,
        anchor_generator=anchor_generator,
        **kwargs,
    )


def _import_keras_cv():
    try:
        import keras_cv
    except ImportError as error:
        raise ImportError(
            "detector='yolov8' uses keras-cv's YOLOV8Detector, and keras-cv "
            f"is not installed: {INSTALL_HINT} (or pip install "
            "keras-cv==0.9.0). detector='retinanet' needs only keras-hub."
        ) from error
    return keras_cv


def _yolov8(keras_cv, encoder, image_shape, num_classes, bounding_box_format,
            kwargs):
    backbone = NamedPyramidBackbone(
        encoder, levels=(3, 4, 5), image_shape=image_shape,
        name="yolov8_backbone")
    if kwargs.get("prediction_decoder") is None:
        # keras-cv's default decoder with keras-hub's NMS (keras.ops only):
        # keras-cv's own imports torchvision on the torch backend.
        kwargs["prediction_decoder"] = keras_hub.layers.NonMaxSuppression(
            bounding_box_format=bounding_box_format, from_logits=False,
            confidence_threshold=0.2, iou_threshold=0.7)
    model = keras_cv.models.YOLOV8Detector(
        backbone=backbone,
        num_classes=int(num_classes),
        bounding_box_format=bounding_box_format,
        **kwargs,
    )
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3, global_clipnorm=10.0),
        box_loss="ciou",
        classification_loss="binary_crossentropy",
    )
    return model
