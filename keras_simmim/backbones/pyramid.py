"""Feature pyramids from backbones: what detection and segmentation heads
read (levels `P{l}` at stride `2**l`).

* A keras-hub CNN with a feature pyramid (`ResNetBackbone`: P2-P5) is used
  as it is.
* Other backbones ask their adapter (`BackboneAdapter.pyramid_levels`),
  which builds the levels from its own stages: a Swin gives one level per
  stage (the stage's blocks before its patch merging), a plain ViT one
  feature map at stride `p` from which a ViTDet-style
  `SimpleFeaturePyramid` makes the other levels.

`PyramidImageEncoder` is the keras-hub `FeaturePyramidBackbone` around such
a backbone. Every path calls the backbone's own layers, so a head trains
the very variables of the backbone (and of a `SimMIMModel` holding it).
"""

import numbers

import keras
import keras_hub

from keras_simmim.backbones.adapter import get_adapter
from keras_simmim.layers.feature_pyramid import check_power_of_two
from keras_simmim.layers.feature_pyramid import check_pyramid_levels

# What `pyramid_encoder` takes, for error messages.
SUPPORTED_BACKBONES = (
    "keras_hub.models.ResNetBackbone (or any keras-hub FeaturePyramidBackbone "
    "with pyramid outputs up to P5), keras_hub.models.SwinTransformerBackbone, "
    "keras_hub.models.ViTBackbone, or a keras_simmim SimMIMModel / MAEModel "
    "built on one of these"
)


def pyramid_patch_size(backbone):
    """The backbone's square, power-of-two patch side (channels-last)."""
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
    return check_power_of_two(f"{type(backbone).__name__}.patch_size", patch)


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
        min_level, max_level = check_pyramid_levels(min_level, max_level)
        image_shape = tuple(backbone.image_shape) if hasattr(
            backbone, "image_shape") else None
        adapter = get_adapter(backbone)
        if not adapter.has_pyramid():
            raise TypeError(
                "PyramidImageEncoder wraps a backbone whose adapter builds "
                "pyramid levels from its stages (keras_hub.models.ViTBackbone "
                "or SwinTransformerBackbone). Received: backbone of type "
                f"{type(backbone).__name__}."
            )
        top = adapter.pyramid_top_stride(max_level)
        if image_shape[0] % top or image_shape[1] % top:
            raise ValueError(
                f"The {type(backbone).__name__}'s image sides "
                f"{tuple(image_shape[:2])} must be multiples of {top} (the "
                "coarsest level's stride) for the pyramid's levels to halve "
                "exactly."
            )
        inputs = keras.Input(image_shape, name="images")
        outputs = adapter.pyramid_levels(inputs, min_level, max_level)
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


def merge_image_shape(name, value, fixed):
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


def pyramid_encoder(backbone, image_shape=None, min_level=3, max_level=7):
    """The keras-hub image encoder with `pyramid_outputs` for `backbone`,
    and the image shape it takes: what detection and segmentation heads
    read.

    A keras-hub `FeaturePyramidBackbone` with pyramid outputs (ResNet) is
    returned as it is; a backbone whose adapter builds levels from its
    stages (ViT, Swin) is wrapped in a `PyramidImageEncoder`.

    Args:
        backbone: the backbone.
        image_shape: `(H, W, C)` or None (the backbone's).
        min_level, max_level: ints, the levels the head reads (a ViT's
            simple pyramid is built for them; pooled to P6 where the image
            sides allow, as ViTDet, never above `max_level`).

    Returns:
        `(encoder, image_shape)`.

    Raises:
        TypeError: a backbone with neither.
        ValueError: an `image_shape` that contradicts the backbone.
    """
    name = type(backbone).__name__
    try:
        adapter = get_adapter(backbone)
    except (TypeError, ValueError):
        adapter = None
    if adapter is not None and adapter.has_pyramid():
        image_shape = merge_image_shape(
            name, image_shape, tuple(adapter.image_shape))
        top = adapter.pyramid_max_level(image_shape, min_level, max_level)
        return PyramidImageEncoder(
            backbone, min_level=min_level, max_level=top,
            name="pyramid_image_encoder"), image_shape
    if isinstance(backbone, keras_hub.models.FeaturePyramidBackbone) and (
        getattr(backbone, "pyramid_outputs", None)
    ):
        fixed = getattr(backbone, "image_shape", None)
        if fixed is None:
            fixed = tuple(backbone.inputs[0].shape[1:])
        return backbone, merge_image_shape(name, image_shape, tuple(fixed))
    raise TypeError(
        f"A feature pyramid (for detection or segmentation) cannot be built "
        f"from a backbone of type {name}. Supported: {SUPPORTED_BACKBONES}."
    )
