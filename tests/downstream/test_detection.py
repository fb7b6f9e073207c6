"""Detectors on SimMIM backbones: keras-hub RetinaNet over ResNet, Swin and
the ViT simple feature pyramid (keras-cv YOLOv8 where installed)."""

import sys

import keras
import keras_hub
import numpy as np
import pytest

from keras_simmim import SimMIMModel
from keras_simmim.data import convert_boxes
from keras_simmim.data import load_digit_detection
from keras_simmim.data import normalize
from keras_simmim.downstream import PyramidImageEncoder
from keras_simmim.downstream import SimpleFeaturePyramid
from keras_simmim.downstream import build_object_detector
from tests.conftest import to_numpy

SHAPE = (64, 64, 3)


def tiny_resnet():
    # keras-hub's ResNet needs 64 filters in its stem and first stage.
    return keras_hub.models.ResNetBackbone(
        input_conv_filters=[64], input_conv_kernel_sizes=[3],
        stackwise_num_filters=[64, 16, 16, 16], stackwise_num_blocks=[1] * 4,
        stackwise_num_strides=[1, 2, 2, 2], block_type="basic_block",
        image_shape=(None, None, 3))


def tiny_swin():
    # Patch 8 and three stages: levels P3-P5 (stride 32) at 64 px.
    return keras_hub.models.SwinTransformerBackbone(
        image_shape=SHAPE, patch_size=8, embed_dim=16, depths=(1, 1, 1),
        num_heads=(1, 2, 2), window_size=2)


def tiny_vit(patch_size=16, image_shape=SHAPE):
    return keras_hub.models.ViTBackbone(
        image_shape=image_shape, patch_size=patch_size, num_layers=1,
        num_heads=2, hidden_dim=32, mlp_dim=64)


BACKBONES = {"resnet": tiny_resnet, "swin": tiny_swin, "vit": tiny_vit}


@pytest.fixture(scope="module")
def digits():
    images, targets = load_digit_detection("train", num_images=8)
    return normalize(images), targets


def low_threshold_nms(box_format):
    return keras_hub.layers.NonMaxSuppression(
        bounding_box_format=box_format, from_logits=True,
        confidence_threshold=0.0, max_detections=10)


def detector_on(simmim, box_format="xyxy", **kwargs):
    return build_object_detector(
        simmim, num_classes=10, bounding_box_format=box_format,
        min_level=3, max_level=5, anchor_size=2,
        pre_logits_num_conv_layers=1,
        prediction_decoder=low_threshold_nms(box_format), **kwargs)


# Swin's levels are checked in `test_pyramid_encoder_levels_have_their_strides`;
# the detector over them is the same RetinaNet code as the ViT's pyramid, so
# training it too would only add a third compile of the step (70 s on JAX).
@pytest.mark.parametrize("family", ["resnet", "vit"])
def test_retinanet_trains_and_predicts(family, digits):
    images, targets = digits
    backbone = BACKBONES[family]()
    if family == "vit":
        # From the SimMIM model: the detector takes its `.backbone` (and the
        # image shape) and trains the very same variables.
        pretrained = SimMIMModel(backbone, mask_patch_size=32)
        detector = detector_on(pretrained)
        assert pretrained.backbone is backbone
    else:
        detector = detector_on(backbone, image_shape=SHAPE)
    assert isinstance(detector, keras_hub.models.RetinaNetObjectDetector)
    ids = {id(v) for v in detector.weights}
    assert all(id(v) in ids for v in backbone.weights)
    probe = backbone.trainable_weights[0]
    before = to_numpy(probe).copy()
    detector.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = detector.fit(images, targets, batch_size=8, epochs=3,
                           verbose=0)
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses)) and losses[-1] < 0.7 * losses[0]
    assert not np.allclose(to_numpy(probe), before)
    out = detector.predict(images[:2], verbose=0)
    assert out["boxes"].shape == (2, 10, 4)
    assert out["labels"].shape == out["confidence"].shape == (2, 10)
    boxes = out["boxes"][out["confidence"] > 0]
    assert len(boxes) and np.all(boxes[:, 2:] >= boxes[:, :2])
    if family == "vit":
        # The same weights in an "xywh" detector predict the same boxes,
        # in that format.
        twin = detector_on(pretrained, "xywh")
        twin.set_weights(detector.get_weights())
        got = twin.predict(images[:2], verbose=0)
        np.testing.assert_allclose(got["confidence"], out["confidence"],
                                   atol=1e-5)
        np.testing.assert_allclose(
            got["boxes"], convert_boxes(out["boxes"], "xyxy", "xywh", 64, 64),
            atol=1e-3)


def test_simple_pyramid_strides_shapes_and_config():
    pyramid = SimpleFeaturePyramid(input_stride=16, min_level=2, max_level=6)
    grid = np.random.default_rng(0).normal(size=(2, 4, 4, 32))
    levels = pyramid(grid.astype("float32"))
    shapes = {k: tuple(v.shape) for k, v in levels.items()}
    # Image side 64: level l has side 64 / 2**l; channels halve per deconv.
    assert shapes == {"P2": (2, 16, 16, 8), "P3": (2, 8, 8, 16),
                      "P4": (2, 4, 4, 32), "P5": (2, 2, 2, 32),
                      "P6": (2, 1, 1, 32)}
    assert pyramid.compute_output_shape((2, 4, 4, 32)) == shapes
    np.testing.assert_allclose(to_numpy(levels["P4"]), grid, rtol=1e-6)
    np.testing.assert_allclose(
        to_numpy(levels["P5"]), grid.reshape(2, 2, 2, 2, 2, 32).max((2, 4)),
        rtol=1e-6)
    np.testing.assert_allclose(to_numpy(levels["P6"])[:, 0, 0],
                               grid.max((1, 2)), rtol=1e-6)
    assert [w.name for w in pyramid.weights if "P2" in w.path].count(
        "kernel") == 2
    config = keras.saving.serialize_keras_object(pyramid)
    assert config["registered_name"] == "keras_simmim>SimpleFeaturePyramid"
    clone = keras.saving.deserialize_keras_object(config)
    assert clone.get_config() == pyramid.get_config()
    # Stride 8 from a patch-8 ViT: one deconvolution to P2, pools above.
    small = SimpleFeaturePyramid(input_stride=8, min_level=2, max_level=5)
    assert {k: v[1:] for k, v in small.compute_output_shape(
        (None, 8, 8, 32)).items()} == {"P2": (16, 16, 16), "P3": (8, 8, 32),
                                       "P4": (4, 4, 32), "P5": (2, 2, 32)}


@pytest.mark.parametrize("family, levels", [
    ("vit", {3: 16, 4: 32, 5: 32, 6: 32}),
    ("swin", {3: 16, 4: 32, 5: 64}),
])
def test_pyramid_encoder_levels_have_their_strides(family, levels):
    backbone = BACKBONES[family]()
    encoder = PyramidImageEncoder(backbone, min_level=3, max_level=6)
    outputs = encoder.pyramid_outputs
    assert sorted(outputs) == [f"P{level}" for level in levels]
    for level, channels in levels.items():
        side = 64 // 2**level
        assert tuple(outputs[f"P{level}"].shape) == (None, side, side, channels)
    ids = {id(v) for v in encoder.weights}
    assert all(id(v) in ids for v in backbone.weights)
    # Rebuilt from its config (as a saved detector is), with the weights.
    config = keras.saving.serialize_keras_object(encoder)
    assert config["registered_name"] == "keras_simmim>PyramidImageEncoder"
    clone = keras.saving.deserialize_keras_object(config)
    assert {k: v.shape for k, v in clone.pyramid_outputs.items()} == {
        k: v.shape for k, v in outputs.items()}
    clone.set_weights(encoder.get_weights())


@pytest.mark.parametrize("kwargs, error, match", [
    ({"detector": "ssd"}, ValueError, "`detector` must be one of"),
    ({"bounding_box_format": "corners"}, ValueError,
     "`bounding_box_format` must be one of"),
    ({"num_classes": 0}, ValueError, "num_classes"),
    ({"image_shape": (32, 32, 3)}, ValueError, "does not match"),
    ({"min_level": 6, "max_level": 5}, ValueError, "min_level"),
    ({"anchor_size": -1}, ValueError, "anchor_size"),
    ({"detector": "yolov8", "anchor_size": 2}, ValueError,
     "retinanet' only"),
])
def test_bad_arguments_name_themselves(kwargs, error, match):
    kwargs = {"num_classes": 10, **kwargs}
    with pytest.raises(error, match=match):
        build_object_detector(tiny_vit(), **kwargs)


def test_backbones_the_detector_cannot_take():
    with pytest.raises(TypeError, match="ResNetBackbone.*ViTBackbone"):
        build_object_detector(keras.Sequential([keras.layers.Dense(2)]), 3)
    # A ViT on 48 px gives a 3x3 map: the FPN cannot halve it exactly.
    with pytest.raises(ValueError, match="multiples of 32"):
        build_object_detector(tiny_vit(image_shape=(48, 48, 3)), 3)
    with pytest.raises(ValueError, match="power of two"):
        SimpleFeaturePyramid(input_stride=14)
    # The Swin's stages start at P3 (patch 8): no P2 to read.
    with pytest.raises(ValueError, match=r"reads pyramid levels \['P2'"):
        build_object_detector(tiny_swin(), 3, min_level=2)


def test_yolov8_without_keras_cv_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "keras_cv", None)
    with pytest.raises(ImportError, match=r"pip install keras-simmim\[detection\]"):
        build_object_detector(tiny_resnet(), 10, detector="yolov8",
                              image_shape=SHAPE)


def test_yolov8_trains_where_keras_cv_is_installed(digits):
    pytest.importorskip("keras_cv")
    images, targets = digits
    detector = build_object_detector(
        tiny_resnet(), 10, detector="yolov8", image_shape=SHAPE, fpn_depth=1)
    yolo_targets = {"boxes": targets["boxes"], "classes": targets["labels"]}
    history = detector.fit(images, yolo_targets, batch_size=8, epochs=3,
                           verbose=0)
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]
    out = detector.predict(images[:2], verbose=0)
    assert sorted(out) == ["boxes", "confidence", "labels", "num_detections"]
    assert out["boxes"].shape[0] == 2 and out["boxes"].shape[-1] == 4
