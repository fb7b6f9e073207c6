"""Semantic segmentation on SimMIM backbones: keras-hub's DeepLabV3+ head
over the backbone's feature pyramid, and the digit canvases labelled per
pixel."""

import keras
import numpy as np
import pytest

from keras_simmim import SimMIMModel
from keras_simmim.data import DIGIT_SEGMENTATION_CLASSES
from keras_simmim.data import load_digit_detection
from keras_simmim.data import load_digit_segmentation
from keras_simmim.data import normalize
from keras_simmim.downstream import build_segmenter
from tests.conftest import to_numpy
from tests.downstream.test_detection import tiny_resnet
from tests.downstream.test_detection import tiny_swin
from tests.downstream.test_detection import tiny_vit


def test_digit_masks_are_the_digits_ink_with_their_classes():
    images, masks = load_digit_segmentation("validation", num_images=6,
                                            channels=1, seed=3)
    same, targets = load_digit_detection("validation", num_images=6,
                                         channels=1, seed=3)
    np.testing.assert_array_equal(images, same)  # the detection canvases
    assert masks.shape == (6, 64, 64) and masks.dtype == np.int32
    # Every ink pixel (>= 48 of 255) is a digit's; nothing else is.
    np.testing.assert_array_equal(masks > 0, images[..., 0] >= 48)
    boxes = targets["boxes"]
    for n in range(6):
        for box, label in zip(boxes[n], targets["labels"][n]):
            if label < 0:
                continue
            x0, y0, x1, y1 = box.astype(int)
            inside = masks[n, y0:y1, x0:x1]
            # A digit's own class is on its ink, inside its box.
            assert (inside == label + 1).any(), (n, label)
        outside = np.ones((64, 64), bool)
        for box, label in zip(boxes[n], targets["labels"][n]):
            if label >= 0:
                x0, y0, x1, y1 = box.astype(int)
                outside[y0:y1, x0:x1] = False
        assert not masks[n][outside].any()  # no class outside every box
    assert len(DIGIT_SEGMENTATION_CLASSES) == 11
    rgb, _ = load_digit_segmentation("validation", num_images=6, seed=3)
    np.testing.assert_array_equal(rgb[..., 2], images[..., 0])
    with pytest.raises(ValueError, match="split"):
        load_digit_segmentation("dev")
    with pytest.raises(ValueError, match="image_size"):
        load_digit_segmentation(image_size=8)


@pytest.mark.parametrize(
    "make, pooled, low",
    [(tiny_resnet, "P4", "P2"), (tiny_swin, "P4", "P3"),
     (lambda: tiny_vit(patch_size=16), "P4", "P2")],
    ids=["resnet", "swin", "vit"],
)
def test_default_levels_follow_deeplab_v3_plus(make, pooled, low):
    segmenter = build_segmenter(make(), num_classes=3, image_shape=(64, 64, 3))
    deeplab = segmenter.backbone
    assert deeplab.spatial_pyramid_pooling_key == pooled
    assert deeplab.low_level_feature_key == low
    assert tuple(segmenter.output.shape) == (None, 64, 64, 3)


def test_segmenter_trains_the_pretrained_backbone_and_round_trips(tmp_path):
    images, masks = load_digit_segmentation(
        "train", num_images=16, image_size=32, digit_size=(12, 16))
    images = normalize(images)
    simmim = SimMIMModel(tiny_vit(patch_size=4, image_shape=(32, 32, 3)),
                         mask_patch_size=8, seed=0)
    segmenter = build_segmenter(simmim, num_classes=11, projection_filters=8)
    # The same variables as the SimMIM model's backbone.
    backbone_ids = {id(v) for v in simmim.backbone.weights}
    assert backbone_ids <= {id(v) for v in segmenter.weights}
    before = to_numpy(simmim.backbone.weights[0]).copy()

    segmenter.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.MeanIoU(11, sparse_y_pred=False,
                                       name="mean_iou")])
    history = segmenter.fit(images, masks, batch_size=8, epochs=5,
                            verbose=0).history
    assert history["loss"][-1] < 0.6 * history["loss"][0], history["loss"]
    assert not np.array_equal(to_numpy(simmim.backbone.weights[0]), before)
    logits = to_numpy(segmenter(images, training=False))
    assert logits.shape == (16, 32, 32, 11)
    # The mean IoU over the 11 classes (training-mode outputs) goes up.
    assert history["mean_iou"][-1] > history["mean_iou"][0], history

    path = str(tmp_path / "segmenter.keras")
    segmenter.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(to_numpy(loaded(images, training=False)),
                               logits, atol=1e-5)


def test_errors_name_the_argument():
    vit = tiny_vit(patch_size=16)
    with pytest.raises(ValueError, match="num_classes"):
        build_segmenter(vit, num_classes=0)
    with pytest.raises(ValueError, match="spatial_pyramid_pooling_key.*'Q4'"):
        build_segmenter(vit, 3, spatial_pyramid_pooling_key="Q4")
    with pytest.raises(ValueError, match="low_level_feature_key.*finer"):
        build_segmenter(vit, 3, spatial_pyramid_pooling_key="P3",
                        low_level_feature_key="P3")
    with pytest.raises(ValueError, match="dilation_rates"):
        build_segmenter(vit, 3, dilation_rates=())
    with pytest.raises(TypeError, match="projection_filters"):
        build_segmenter(vit, 3, projection_filters=4.0)
    with pytest.raises(ValueError, match="low_level_feature_key.*P1.*gives"):
        build_segmenter(tiny_swin(), 3, low_level_feature_key="P1")
    # A backbone it cannot use: the message says which it can.
    with pytest.raises(TypeError, match="Supported.*ViTBackbone"):
        build_segmenter(keras.Sequential([keras.layers.Dense(2)]), 3)


def test_bad_label_maps_are_refused_before_training():
    segmenter = build_segmenter(
        tiny_vit(patch_size=4, image_shape=(32, 32, 3)), num_classes=3,
        projection_filters=8)
    images = np.zeros((2, 32, 32, 3), "float32")
    before = [to_numpy(w).copy() for w in segmenter.trainable_weights]
    good = np.zeros((2, 32, 32), "int32")
    cases = [
        (np.zeros((2, 16, 16), "int32"), "y.*32x32"),       # another size
        (np.zeros((2, 32, 32, 3), "int32"), "y.*shape"),     # one-hot-like
        (np.zeros((3, 32, 32), "int32"), "y.*3 label maps for 2"),
        (np.full((2, 32, 32), 3), r"y.*outside \[0, 3\): found 3"),
        (np.full((2, 32, 32), -1), r"y.*outside \[0, 3\): found -1"),
        (np.full((2, 32, 32), 0.5, "float32"), "y.*whole-number"),
    ]
    for masks, message in cases:
        with pytest.raises(ValueError, match=message):
            segmenter.fit(images, masks, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="y.*outside"):
        segmenter.evaluate(images, good + 5, verbose=0)
    with pytest.raises(ValueError, match="y.*outside"):
        segmenter.train_on_batch(images, good + 3)
    with pytest.raises(ValueError, match="validation_data.*outside"):
        segmenter.fit(images, good, validation_data=(images, good + 3),
                      epochs=1, verbose=0)
    # Nothing trained on the refused targets.
    for old, new in zip(before, segmenter.trainable_weights):
        np.testing.assert_array_equal(old, to_numpy(new))
    # Good targets, also as (n, H, W, 1) and whole-number floats, train.
    segmenter.fit(images, good[..., None].astype("float32"), epochs=1,
                  verbose=0)
