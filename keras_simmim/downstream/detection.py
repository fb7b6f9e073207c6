"""Object detection on a (SimMIM-pretrained) backbone, with existing
detectors: keras-hub's `RetinaNetObjectDetector`, or keras-cv's
`YOLOV8Detector` where keras-cv is installed. The feature pyramid they read
comes from the backbone (`keras_simmim.backbones.pyramid`); this module
assembles the detector around it.
"""

import math
import numbers

import keras
import keras_hub

from keras_simmim.backbones.pyramid import NamedPyramidBackbone
from keras_simmim.backbones.pyramid import pyramid_encoder
from keras_simmim.data.detection import BOUNDING_BOX_FORMATS
from keras_simmim.layers.feature_pyramid import check_pyramid_levels
from keras_simmim.models.masked_image_model import MaskedImageModel
from keras_simmim.utils.validation import check_choice
from keras_simmim.utils.validation import check_positive_int

DETECTORS = ("retinanet", "yolov8")
INSTALL_HINT = "pip install keras-simmim[detection]"


def backbone_and_image_shape(model):
    """`(backbone, image_shape hint)` of a backbone or a masked image model."""
    if isinstance(model, MaskedImageModel):
        return model.backbone, tuple(model.image_shape)
    return model, None


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
    backbone, hinted_shape = backbone_and_image_shape(backbone_or_simmim_model)
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
        min_level, max_level = check_pyramid_levels(
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
    encoder, image_shape = pyramid_encoder(backbone, image_shape, min_level, max_level)
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
