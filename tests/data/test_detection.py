"""The scattered-digits detection dataset and the target checks."""

import keras
import numpy as np
import pytest

from keras_simmim.data import BOUNDING_BOX_FORMATS
from keras_simmim.data import check_detection_targets
from keras_simmim.data import load_digit_detection
from keras_simmim.data.detection import INK_THRESHOLD
from keras_simmim.data.detection import convert_boxes
from keras_simmim.data.digits import _split_indices


def box_masks(images, targets):
    """Per image, the pixels inside any of its boxes (xyxy pixel edges)."""
    inside = np.zeros(images.shape[:3], bool)
    for n, boxes in enumerate(targets["boxes"]):
        for (x0, y0, x1, y1), label in zip(boxes, targets["labels"][n]):
            if label >= 0:
                inside[n, int(y0):int(y1), int(x0):int(x1)] = True
    return inside


def test_boxes_lie_on_the_digits():
    images, targets = load_digit_detection("train", num_images=64)
    assert images.shape == (64, 64, 64, 3) and images.dtype == np.uint8
    assert np.array_equal(images[..., 0], images[..., 2])
    grey = images[..., 0]
    inside = box_masks(images, targets)
    # Every bright pixel is in a box; outside, the canvas is almost all 0.
    assert grey[~inside].max() < INK_THRESHOLD
    assert np.mean(grey[~inside] > 0) < 0.05
    assert grey[inside].mean() > 50 * max(grey[~inside].mean(), 0.1)
    labels = targets["labels"]
    valid = labels >= 0
    assert set(np.unique(labels[valid])) <= set(range(10))
    assert np.all(valid.sum(1) >= 2)
    for n, k in zip(*np.nonzero(valid)):
        x0, y0, x1, y1 = targets["boxes"][n, k].astype(int)
        patch = grey[n, y0:y1, x0:x1]
        assert patch.max() >= 160
        # Tight: ink on each of the box's four edges.
        for edge in (patch[0], patch[-1], patch[:, 0], patch[:, -1]):
            assert edge.max() >= INK_THRESHOLD
    # Padding rows are all -1; some digits touch or overlap slightly.
    assert np.all(targets["boxes"][~valid] == -1)
    touching = 0
    for n in range(len(images)):
        boxes = targets["boxes"][n][valid[n]]
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                a, b = boxes[i], boxes[j]
                gap_x = max(a[0], b[0]) - min(a[2], b[2])
                gap_y = max(a[1], b[1]) - min(a[3], b[3])
                touching += gap_x <= 0 and gap_y <= 0
    assert touching >= 5


def scan_indices(images, targets):
    """The scikit-learn scans each single-digit 8-px canvas can be."""
    from sklearn.datasets import load_digits

    scans = np.round(load_digits().images * (255.0 / 16.0)).astype("uint8")

    def tight(a):
        ys, xs = np.nonzero(a >= INK_THRESHOLD)
        return a[ys.min():ys.max() + 1, xs.min():xs.max() + 1]

    crops = [tight(s) for s in scans]
    found = []
    for image, box in zip(images[..., 0], targets["boxes"][:, 0]):
        x0, y0, x1, y1 = box.astype(int)
        crop = image[y0:y1, x0:x1]
        found.append({i for i, c in enumerate(crops)
                      if c.shape == crop.shape and np.array_equal(c, crop)})
    return found


def test_splits_are_disjoint_down_to_the_scans_and_deterministic():
    pools = _split_indices(
        __import__("sklearn.datasets").datasets.load_digits().target)
    for split in ("train", "validation", "test"):
        images, targets = load_digit_detection(
            split, num_images=40, image_size=16, digits_per_image=1,
            digit_size=8)
        matches = scan_indices(images, targets)
        assert all(matches)
        # Each digit is one of the split's own scans.
        pool = set(pools[split].tolist())
        assert all(m & pool for m in matches)
    first = load_digit_detection("validation", num_images=16)
    again = load_digit_detection("validation", num_images=16)
    other = load_digit_detection("validation", num_images=16, seed=1)
    assert np.array_equal(first[0], again[0])
    assert np.array_equal(first[1]["boxes"], again[1]["boxes"])
    assert not np.array_equal(first[0], other[0])
    train = load_digit_detection("train", num_images=16)
    assert not np.array_equal(first[0], train[0])


@pytest.mark.parametrize("box_format", BOUNDING_BOX_FORMATS)
def test_box_formats_match_keras(box_format):
    _, xyxy = load_digit_detection("test", num_images=6, channels=1)
    _, converted = load_digit_detection(
        "test", num_images=6, channels=1, bounding_box_format=box_format)
    valid = xyxy["labels"] >= 0
    want = keras.ops.convert_to_numpy(keras.utils.bounding_boxes.convert_format(
        xyxy["boxes"], source="xyxy", target=box_format, height=64, width=64))
    np.testing.assert_allclose(converted["boxes"][valid], want[valid],
                               atol=1e-4)
    assert np.all(converted["boxes"][~valid] == -1)
    np.testing.assert_allclose(
        convert_boxes(converted["boxes"], box_format, "xyxy", 64, 64),
        xyxy["boxes"], atol=1e-4)
    check_detection_targets(converted, (64, 64), box_format, num_classes=10)


def test_target_checks_name_the_fault():
    _, targets = load_digit_detection("test", num_images=4)
    check_detection_targets(targets, (64, 64, 3), num_classes=10)
    outside = {k: v.copy() for k, v in targets.items()}
    outside["boxes"][2, 1] = [50.0, 10.0, 70.0, 30.0]
    with pytest.raises(ValueError, match="Box 1 of image 2 is outside"):
        check_detection_targets(outside, (64, 64))
    with pytest.raises(ValueError, match="Label 0 of image 0"):
        check_detection_targets(targets, (64, 64), num_classes=2)
    with pytest.raises(ValueError, match="bounding_box_format"):
        check_detection_targets(targets, (64, 64), "xyzw")
    with pytest.raises(TypeError, match="targets"):
        check_detection_targets(targets["boxes"], (64, 64))


@pytest.mark.parametrize("kwargs, error, name", [
    ({"split": "val"}, ValueError, "split"),
    ({"bounding_box_format": "corners"}, ValueError, "bounding_box_format"),
    ({"digit_size": (20, 80)}, ValueError, "digit_size"),
    ({"digits_per_image": (4, 2)}, ValueError, "digits_per_image"),
    ({"digits_per_image": 2.5}, TypeError, "digits_per_image"),
    ({"channels": 2}, ValueError, "channels"),
    ({"max_boxes": 3}, ValueError, "max_boxes"),
    ({"touching": 1.5}, ValueError, "touching"),
    ({"image_size": 8}, ValueError, "image_size"),
])
def test_dataset_argument_errors(kwargs, error, name):
    with pytest.raises(error, match=name):
        load_digit_detection(**{"num_images": 2, **kwargs})
