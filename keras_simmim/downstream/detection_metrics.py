"""COCO-style detection metrics (mAP@0.5, mAP@[.5:.95]) through pycocotools.

The metric is the COCO evaluation itself (`pycocotools.cocoeval.COCOeval`,
the implementation the field reports), not a reimplementation: this module
only converts detector outputs and padded targets into its records.
"""

import contextlib
import io

import numpy as np

from keras_simmim.data.detection import BOUNDING_BOX_FORMATS
from keras_simmim.data.detection import convert_boxes
from keras_simmim.utils.validation import check_choice


def _import_pycocotools():
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError as error:
        raise ImportError(
            "`coco_metrics` needs pycocotools: "
            "`pip install keras-simmim[detection]` (or `pip install "
            "pycocotools`)."
        ) from error
    return COCO, COCOeval


def _as_numpy(name, value, ndim):
    array = np.asarray(value)
    if array.ndim != ndim:
        raise ValueError(
            f"`{name}` must have {ndim} dimensions. Received: "
            f"{name}.shape={array.shape}."
        )
    return array


def coco_metrics(detections, targets, image_shape,
                 bounding_box_format="xyxy", num_classes=None):
    """COCO mAP of a detector's predictions against padded targets.

    Evaluates with pycocotools' `COCOeval` (bounding boxes, all areas,
    up to 100 detections per image). Rows of `targets` with label -1 are
    padding; detections with confidence <= 0 or label -1 (what keras-hub's
    non-max suppression pads with) are dropped.

    Args:
        detections: dict with `"boxes"` `(B, D, 4)`, `"labels"` `(B, D)`
            and `"confidence"` `(B, D)`, e.g. `detector.predict(images)`
            of a keras-hub `RetinaNetObjectDetector` (or
            `build_object_detector`'s YOLOv8), boxes in
            `bounding_box_format`, in pixels.
        targets: dict with `"boxes"` `(B, N, 4)` and `"labels"` `(B, N)`,
            as `keras_simmim.data.load_digit_detection` returns.
        image_shape: `(height, width)` or `(height, width, channels)` of
            the images, in pixels (for relative formats and for clipping).
        bounding_box_format: the format of both, one of
            `keras_simmim.data.BOUNDING_BOX_FORMATS`.
        num_classes: int or None; the class ids are `0..num_classes - 1`
            (None: the ids that occur in `targets` or `detections`).

    Returns:
        dict of floats in [0, 1]: `"mAP@0.5"`, `"mAP@0.75"`,
        `"mAP@[.5:.95]"` (COCO's primary metric) and `"recall@100"`
        (average recall with 100 detections per image). A class absent
        from the ground truth is left out of the means, as COCO does.

    Raises:
        ValueError: an unknown format, arrays of the wrong rank or with
            different image counts, or missing keys.
        ImportError: pycocotools is not installed.

    Example:

    >>> import numpy as np
    >>> targets = {"boxes": np.array([[[2., 2., 20., 20.]]]),
    ...            "labels": np.array([[3]])}
    >>> detections = {"boxes": targets["boxes"], "labels": targets["labels"],
    ...               "confidence": np.array([[0.9]])}
    >>> round(coco_metrics(detections, targets, (32, 32))["mAP@0.5"], 3)
    1.0
    """
    check_choice("bounding_box_format", bounding_box_format,
                 BOUNDING_BOX_FORMATS)
    for name, given, keys in (("detections", detections,
                               ("boxes", "labels", "confidence")),
                              ("targets", targets, ("boxes", "labels"))):
        if not isinstance(given, dict) or any(k not in given for k in keys):
            raise ValueError(
                f"`{name}` must be a dict with keys {list(keys)}. Received: "
                f"{sorted(given) if isinstance(given, dict) else type(given)}."
            )
    height, width = (int(v) for v in tuple(image_shape)[:2])
    det_boxes = _as_numpy("detections['boxes']", detections["boxes"], 3)
    det_labels = _as_numpy("detections['labels']", detections["labels"], 2)
    det_scores = _as_numpy("detections['confidence']",
                           detections["confidence"], 2)
    true_boxes = _as_numpy("targets['boxes']", targets["boxes"], 3)
    true_labels = _as_numpy("targets['labels']", targets["labels"], 2)
    if len(det_boxes) != len(true_boxes):
        raise ValueError(
            "`detections` and `targets` must cover the same images. "
            f"Received: {len(det_boxes)} and {len(true_boxes)} images."
        )
    det_boxes = convert_boxes(det_boxes, bounding_box_format, "xywh",
                              height, width)
    true_boxes = convert_boxes(true_boxes, bounding_box_format, "xywh",
                               height, width)
    if num_classes is None:
        ids = np.concatenate([true_labels.ravel(), det_labels.ravel()])
        num_classes = int(ids.max()) + 1 if ids.size and ids.max() >= 0 else 1
    images, annotations, results = [], [], []
    for i in range(len(true_boxes)):
        images.append({"id": i, "height": height, "width": width})
        for box, label in zip(true_boxes[i], true_labels[i]):
            if label < 0:
                continue
            annotations.append({
                "id": len(annotations) + 1, "image_id": i,
                "category_id": int(label), "bbox": [float(v) for v in box],
                "area": float(box[2] * box[3]), "iscrowd": 0})
        for box, label, score in zip(det_boxes[i], det_labels[i],
                                     det_scores[i]):
            if label < 0 or score <= 0:
                continue
            results.append({"image_id": i, "category_id": int(label),
                            "bbox": [float(v) for v in box],
                            "score": float(score)})
    names = ("mAP@[.5:.95]", "mAP@0.5", "mAP@0.75", "recall@100")
    if not annotations:
        raise ValueError("`targets` holds no boxes (every label is -1).")
    if not results:  # COCO.loadRes cannot take an empty list.
        return dict.fromkeys(names, 0.0)
    COCO, COCOeval = _import_pycocotools()
    truth = COCO()
    truth.dataset = {
        "images": images, "annotations": annotations,
        "categories": [{"id": c} for c in range(int(num_classes))]}
    with contextlib.redirect_stdout(io.StringIO()):  # its progress prints
        truth.createIndex()
        evaluation = COCOeval(truth, truth.loadRes(results), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    stats = evaluation.stats  # -1 where there is nothing to average
    return {
        "mAP@[.5:.95]": max(float(stats[0]), 0.0),
        "mAP@0.5": max(float(stats[1]), 0.0),
        "mAP@0.75": max(float(stats[2]), 0.0),
        "recall@100": max(float(stats[8]), 0.0),
    }
