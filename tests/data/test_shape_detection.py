"""Boxes of the generated scenes: Sort-of-CLEVR and the synthetic scenes."""

import numpy as np
import pytest

from keras_simmim.data import check_detection_targets
from keras_simmim.data import convert_boxes
from keras_simmim.data import load_sort_of_clevr
from keras_simmim.data import load_sort_of_clevr_detection
from keras_simmim.data import synthetic_scene_detection
from keras_simmim.data import synthetic_scenes
from keras_simmim.data.sort_of_clevr import COLORS


def test_sort_of_clevr_boxes_are_the_objects_pixels():
    images, targets = load_sort_of_clevr_detection(
        "validation", num_images=6, image_size=64, classes="color_shape")
    scenes = load_sort_of_clevr("validation", num_images=6, image_size=64)
    np.testing.assert_array_equal(images, scenes["images"])
    check_detection_targets(targets, images.shape[1:])
    for n, image in enumerate(images):
        for k, rgb in enumerate(COLORS.values()):
            ys, xs = np.nonzero((image == np.array(rgb, "uint8")).all(-1))
            # The tight box of the colour's pixels, in pixel edges.
            np.testing.assert_array_equal(
                targets["boxes"][n, k],
                [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
            shape = targets["labels"][n, k] % 2
            assert targets["labels"][n, k] // 2 == k
            # A square fills its box; a circle leaves the corners white.
            full = (np.ptp(xs) + 1) * (np.ptp(ys) + 1)
            assert (len(ys) == full) == (shape == 0)
    _, by_shape = load_sort_of_clevr_detection("validation", num_images=6,
                                               image_size=64)
    np.testing.assert_array_equal(by_shape["labels"],
                                  targets["labels"] % 2)


def test_synthetic_scene_boxes_cover_visible_shapes():
    images, targets = synthetic_scene_detection(24, image_size=32, seed=3)
    plain, largest = synthetic_scenes(24, image_size=32, seed=3)
    np.testing.assert_array_equal(images, plain)  # the same pixels
    check_detection_targets(targets, images.shape[1:])
    labels = targets["labels"]
    valid = labels >= 0
    assert valid.any(1).all() and set(labels[valid]) <= {0, 1, 2}
    boxes = targets["boxes"][valid]
    assert np.all(boxes[:, 2:] > boxes[:, :2])
    assert boxes.min() >= 0 and boxes.max() <= 32
    # The largest shape is drawn last, whole: the largest box is its, and
    # carries the scene's classification label.
    area = np.where(valid, np.prod(targets["boxes"][..., 2:]
                                   - targets["boxes"][..., :2], -1), -1)
    np.testing.assert_array_equal(
        labels[np.arange(24), area.argmax(1)], largest)
    # Covered shapes drop out as min_visible rises, never the reverse.
    strict = synthetic_scene_detection(24, image_size=32, seed=3,
                                       min_visible=1.0)[1]["labels"] >= 0
    loose = synthetic_scene_detection(24, image_size=32, seed=3,
                                      min_visible=0.0)[1]["labels"] >= 0
    assert strict.sum() <= valid.sum() <= loose.sum()
    assert loose.sum() > strict.sum()  # some shapes are partly covered
    xywh = synthetic_scene_detection(24, image_size=32, seed=3,
                                     bounding_box_format="xywh")[1]
    np.testing.assert_allclose(
        xywh["boxes"], convert_boxes(targets["boxes"], "xyxy", "xywh", 32,
                                     32))


@pytest.mark.parametrize("call, match", [
    (lambda: load_sort_of_clevr_detection(classes="size"), "classes"),
    (lambda: load_sort_of_clevr_detection(bounding_box_format="xy"),
     "bounding_box_format"),
    (lambda: synthetic_scene_detection(2, min_visible=1.5), "min_visible"),
])
def test_bad_arguments_name_themselves(call, match):
    with pytest.raises(ValueError, match=match):
        call()
