"""Semantic segmentation on a (SimMIM-pretrained) backbone, with keras-hub's
DeepLabV3+ head (`DeepLabV3Backbone` + `DeepLabV3ImageSegmenter`) over the
feature pyramid the backbone gives (`keras_simmim.backbones.pyramid`)."""

import numbers

import keras
import keras_hub

from keras_simmim.backbones.pyramid import pyramid_encoder
from keras_simmim.data.segmentation import check_segmentation_targets
from keras_simmim.downstream.detection import backbone_and_image_shape
from keras_simmim.utils.validation import check_positive_int

# DeepLabV3's output stride: atrous pooling on the stride-16 map.
DEFAULT_POOLING_LEVEL = 4
# DeepLabV3+'s decoder: the stride-4 map as the low-level feature.
DEFAULT_LOW_LEVEL = 2


@keras.saving.register_keras_serializable(package="keras_simmim")
class SemanticSegmenter(keras_hub.models.DeepLabV3ImageSegmenter):
    """keras-hub's `DeepLabV3ImageSegmenter` that checks its class-id
    targets: what `build_segmenter` returns.

    Sparse cross-entropy treats bad targets differently on each backend (an
    error on TensorFlow, an index error on torch, a silently wrong loss on
    JAX). When `fit`, `evaluate`, `train_on_batch` or `test_on_batch` get
    arrays (`x` and `y`, or `validation_data=(x, y)`), the label maps are
    checked first with `keras_simmim.data.check_segmentation_targets`: one
    per image, the images' height and width, whole-number ids in
    `[0, num_classes)`. Datasets and generators are passed through as they
    are (check their arrays before building them). Everything else is
    keras-hub's: the same constructor, config and `.keras` format.

    Raises:
        ValueError: from those methods, naming `y` (or `validation_data`)
            and what was expected.

    Example:

    >>> import keras_hub, numpy as np
    >>> vit = keras_hub.models.ViTBackbone(
    ...     image_shape=(32, 32, 3), patch_size=4, num_layers=1, num_heads=2,
    ...     hidden_dim=32, mlp_dim=64)
    >>> segmenter = build_segmenter(vit, num_classes=3)
    >>> isinstance(segmenter, SemanticSegmenter)
    True
    >>> images = np.zeros((2, 32, 32, 3), "float32")
    >>> segmenter.fit(images, np.full((2, 32, 32), 3))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: `y` holds class ids outside [0, 3): found 3. ...
    """

    def _check(self, x, y, name):
        if y is None or x is None or isinstance(x, dict):
            return
        if not hasattr(x, "shape") or not hasattr(y, "shape"):
            return  # a dataset, generator or list: not checked here
        check_segmentation_targets(
            keras.ops.convert_to_numpy(y), self.num_classes,
            image_shape=tuple(x.shape)[1:3], num_images=x.shape[0], name=name)

    def fit(self, x=None, y=None, *args, **kwargs):
        self._check(x, y, "y")
        validation = kwargs.get("validation_data")
        if isinstance(validation, (tuple, list)) and len(validation) >= 2:
            self._check(validation[0], validation[1], "validation_data")
        return super().fit(x, y, *args, **kwargs)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        self._check(x, y, "y")
        return super().evaluate(x, y, *args, **kwargs)

    def train_on_batch(self, x, y=None, *args, **kwargs):
        self._check(x, y, "y")
        return super().train_on_batch(x, y, *args, **kwargs)

    def test_on_batch(self, x, y=None, *args, **kwargs):
        self._check(x, y, "y")
        return super().test_on_batch(x, y, *args, **kwargs)


def _parse_key(name, key):
    """The level `l` of a `"P{l}"` key, or None for None."""
    if key is None:
        return None
    if not (isinstance(key, str) and key[:1] == "P" and key[1:].isdigit()
            and int(key[1:]) >= 1):
        raise ValueError(
            f"`{name}` must be a pyramid level key such as 'P4' (level l at "
            f"stride 2**l). Received: {name}={key!r}."
        )
    return int(key[1:])


def _check_given(name, key, level, available):
    """`level` (parsed from `key`), checked to be one the encoder gives."""
    if level not in available:
        raise ValueError(
            f"`{name}`={key!r} is not a pyramid level this backbone gives; "
            f"it gives {['P%d' % level for level in available]} (level l at "
            "stride 2**l)."
        )
    return level


def build_segmenter(
    backbone_or_simmim_model,
    num_classes,
    image_shape=None,
    spatial_pyramid_pooling_key=None,
    low_level_feature_key="auto",
    dilation_rates=(6, 12, 18),
    projection_filters=48,
    **kwargs,
):
    """A trainable semantic segmenter on a (SimMIM-pretrained) backbone.

    keras-hub's DeepLabV3+ (`DeepLabV3ImageSegmenter` over a
    `DeepLabV3Backbone`: atrous spatial pyramid pooling on one pyramid level,
    upsampled and joined with a finer "low-level" level, a 1x1 classifier,
    then bilinear upsampling to the input size) whose image encoder is the
    backbone's feature pyramid, as for detection: a ViT's simple pyramid
    (ViTDet), Swin's stages, a ResNet's own `pyramid_outputs`. The
    segmenter trains the very same variables as the backbone (or the
    `SimMIMModel` that pretrained it).

    Defaults, DeepLabV3+'s: pooling on P4 (stride 16; a lower level when the
    image sides are not multiples of 16 or the backbone stops earlier) and
    the finest level from P2 (stride 4) up that is finer than the pooled one
    as the low-level feature (none when there is none: DeepLabV3).

    It comes compiled for class-id targets: keras-hub's optimizer (Adam
    5e-5), sparse categorical cross-entropy (on logits unless
    `activation="softmax"`) and `keras.metrics.MeanIoU` as `"mean_iou"`;
    `compile()` again to change them (keep a `MeanIoU(...,
    sparse_y_pred=False)`: the outputs are per-class scores).

    Args:
        backbone_or_simmim_model: a keras-hub `ViTBackbone` (power-of-two
            patch), `SwinTransformerBackbone`, `ResNetBackbone` or other
            `FeaturePyramidBackbone`, or a `SimMIMModel` / `MAEModel` on one.
        num_classes: int, pixel classes (ids `0..num_classes - 1`).
        image_shape: `(H, W, C)`; None takes it from the backbone or the
            SimMIM model.
        spatial_pyramid_pooling_key: `"P{l}"`, the level the atrous pooling
            reads; None for the default above.
        low_level_feature_key: `"P{l}"` finer than the pooled level, None
            for no decoder (DeepLabV3), or `"auto"` for the default above.
        dilation_rates: the atrous pooling's dilation rates, in cells of the
            pooled level.
        projection_filters: int, channels of the projected low-level
            feature.
        **kwargs: passed to `DeepLabV3ImageSegmenter` (`activation`, `name`).

    Returns:
        A `SemanticSegmenter` (keras-hub's `DeepLabV3ImageSegmenter` that
        checks its targets): `fit(images, class_ids)` with `images`
        `(B, H, W, C)` and `class_ids` int `(B, H, W)` (or `(B, H, W, 1)`);
        `predict` returns per-pixel logits `(B, H, W, num_classes)` at the
        input size.

    Raises:
        TypeError: a backbone without a feature pyramid (the message names
            those that have one). (Its `fit` and `evaluate` raise
            `ValueError` for label maps of the wrong shape or class ids out
            of range: `SemanticSegmenter`.)
        ValueError: `num_classes` not a positive int, levels the backbone
            does not give, a low-level key not finer than the pooled one, an
            `image_shape` the backbone does not take or whose sides do not
            split into whole cells at the pooled level.

    Example:

    >>> import keras_hub, numpy as np
    >>> from keras_simmim.data import load_digit_segmentation, normalize
    >>> vit = keras_hub.models.ViTBackbone(
    ...     image_shape=(32, 32, 3), patch_size=4, num_layers=1, num_heads=2,
    ...     hidden_dim=32, mlp_dim=64)
    >>> segmenter = build_segmenter(vit, num_classes=11)
    >>> images, masks = load_digit_segmentation(
    ...     "train", num_images=4, image_size=32, digit_size=(10, 14))
    >>> history = segmenter.fit(normalize(images), masks, epochs=1, verbose=0)
    >>> sorted(history.history)
    ['loss', 'mean_iou']
    >>> tuple(segmenter(normalize(images)).shape)  # logits at input size
    (4, 32, 32, 11)
    """
    check_positive_int("num_classes", num_classes)
    check_positive_int("projection_filters", projection_filters)
    rates = list(dilation_rates) if isinstance(
        dilation_rates, (list, tuple)) else None
    if not rates or any(
        isinstance(r, bool) or not isinstance(r, numbers.Integral) or r < 1
        for r in rates
    ):
        raise ValueError(
            "`dilation_rates` must be a non-empty list of positive ints. "
            f"Received: dilation_rates={dilation_rates!r}."
        )
    backbone, hinted_shape = backbone_and_image_shape(backbone_or_simmim_model)
    if image_shape is None:
        image_shape = hinted_shape
    pooled_wanted = _parse_key("spatial_pyramid_pooling_key",
                               spatial_pyramid_pooling_key)
    low_key = low_level_feature_key
    low_wanted = None if low_key in ("auto", None) else _parse_key(
        "low_level_feature_key", low_key)
    top = pooled_wanted or DEFAULT_POOLING_LEVEL
    encoder, image_shape = pyramid_encoder(
        backbone, image_shape, min(low_wanted or DEFAULT_LOW_LEVEL, top), top)
    available = sorted(int(key[1:]) for key in encoder.pyramid_outputs)
    height, width = image_shape[:2]

    def fits(level):
        stride = 2**level
        return (height is None or height % stride == 0) and (
            width is None or width % stride == 0)

    if spatial_pyramid_pooling_key is None:
        candidates = [level for level in available
                      if level <= DEFAULT_POOLING_LEVEL and fits(level)]
        if not candidates:
            raise ValueError(
                f"No pyramid level of {type(backbone).__name__} up to "
                f"P{DEFAULT_POOLING_LEVEL} splits `image_shape`="
                f"{tuple(image_shape)} into whole cells (it gives "
                f"{['P%d' % level for level in available]}); pass "
                "`spatial_pyramid_pooling_key`."
            )
        pooled = max(candidates)
    else:
        pooled = _check_given("spatial_pyramid_pooling_key",
                              spatial_pyramid_pooling_key, pooled_wanted,
                              available)
        if not fits(pooled):
            raise ValueError(
                f"`image_shape`={tuple(image_shape)}: the image sides must be "
                f"multiples of {2**pooled}, the stride of "
                f"spatial_pyramid_pooling_key={spatial_pyramid_pooling_key!r}."
            )
    if low_key == "auto":
        finer = [level for level in available
                 if DEFAULT_LOW_LEVEL <= level < pooled]
        low = min(finer) if finer else None
    elif low_key is None:
        low = None
    else:
        low = _check_given("low_level_feature_key", low_key, low_wanted,
                           available)
        if low >= pooled:
            raise ValueError(
                f"`low_level_feature_key`={low_key!r} must be finer than the "
                f"pooled level P{pooled} (a smaller level number)."
            )
    deeplab = keras_hub.models.DeepLabV3Backbone(
        image_encoder=encoder,
        spatial_pyramid_pooling_key=f"P{pooled}",
        upsampling_size=2 ** (pooled - low) if low is not None else 1,
        dilation_rates=rates,
        low_level_feature_key=None if low is None else f"P{low}",
        projection_filters=int(projection_filters),
        image_shape=tuple(image_shape),
    )
    segmenter = SemanticSegmenter(
        backbone=deeplab, num_classes=int(num_classes), preprocessor=None,
        **kwargs)
    # keras-hub's default loss is one-hot cross-entropy; these targets are
    # class ids.
    from_logits = keras.activations.get(
        kwargs.get("activation")) is not keras.activations.softmax
    segmenter.compile(
        loss=keras.losses.SparseCategoricalCrossentropy(
            from_logits=from_logits),
        metrics=[keras.metrics.MeanIoU(
            int(num_classes), sparse_y_pred=False, name="mean_iou")])
    return segmenter
