"""COCO mAP through pycocotools on detector-style outputs."""

import numpy as np
import pytest

from keras_simmim.data import convert_boxes
from keras_simmim.data import load_digit_detection
from keras_simmim.downstream import coco_metrics


@pytest.fixture(scope="module")
def scattered():
    images, targets = load_digit_detection("validation", num_images=12)
    return images.shape[1:3], targets


def as_detections(targets, shift=0.0, confidence=0.9):
    boxes = np.array(targets["boxes"], "float32")
    valid = targets["labels"] >= 0
    boxes[valid] += shift
    return {"boxes": boxes, "labels": targets["labels"].copy(),
            "confidence": np.where(valid, confidence, -1.0)}


def test_perfect_detections_score_one_and_shifts_score_less(scattered):
    shape, targets = scattered
    perfect = coco_metrics(as_detections(targets), targets, shape,
                           num_classes=10)
    assert perfect["mAP@0.5"] == pytest.approx(1.0)
    assert perfect["mAP@[.5:.95]"] == pytest.approx(1.0)
    # A 3-pixel shift of 14-24 px digits keeps IoU above 0.5 for most boxes
    # but not above 0.9: the strict average falls far more than mAP@0.5.
    shifted = coco_metrics(as_detections(targets, shift=3.0), targets, shape,
                           num_classes=10)
    assert 0.5 < shifted["mAP@0.5"] <= 1.0
    assert shifted["mAP@[.5:.95]"] < shifted["mAP@0.5"] - 0.2
    # Wrong classes find nothing.
    wrong = as_detections(targets)
    wrong["labels"] = np.where(wrong["labels"] >= 0,
                               (wrong["labels"] + 1) % 10, -1)
    assert coco_metrics(wrong, targets, shape)["mAP@0.5"] == 0.0


def test_formats_and_padding(scattered):
    shape, targets = scattered
    height, width = shape
    in_xywh = {
        "boxes": convert_boxes(targets["boxes"], "xyxy", "xywh", height,
                               width),
        "labels": targets["labels"]}
    detections = as_detections(in_xywh)
    # Extra padded rows (label -1, confidence -1) change nothing.
    pad = lambda a, v: np.concatenate(  # noqa: E731
        [a, np.full(a.shape[:1] + (3,) + a.shape[2:], v, a.dtype)], axis=1)
    detections = {"boxes": pad(detections["boxes"], -1.0),
                  "labels": pad(detections["labels"], -1),
                  "confidence": pad(detections["confidence"], -1.0)}
    got = coco_metrics(detections, in_xywh, shape, bounding_box_format="xywh")
    assert got["mAP@[.5:.95]"] == pytest.approx(1.0)
    empty = {k: v[:, :0] for k, v in detections.items()}
    assert coco_metrics(empty, in_xywh, shape, "xywh")["mAP@0.5"] == 0.0


def test_bad_input_names_the_argument(scattered):
    shape, targets = scattered
    with pytest.raises(ValueError, match="bounding_box_format"):
        coco_metrics(as_detections(targets), targets, shape, "xyzw")
    with pytest.raises(ValueError, match="confidence"):
        coco_metrics({"boxes": targets["boxes"]}, targets, shape)
    with pytest.raises(ValueError, match="same images"):
        coco_metrics(as_detections(targets), {
            "boxes": targets["boxes"][:2], "labels": targets["labels"][:2]},
            shape)
