"""A built-in detection dataset from real scans: scikit-learn's handwritten
digits scattered on a larger canvas, with their boxes and classes.

Also the checks of detection targets (`check_detection_targets`) and the
box formats Keras and keras-hub understand (`BOUNDING_BOX_FORMATS`).
"""

import numbers

import numpy as np

from keras_simmim.data.digits import SPLITS
from keras_simmim.data.digits import _split_indices
from keras_simmim.data.digits import all_digit_scans
from keras_simmim.utils.validation import check_choice
from keras_simmim.utils.validation import check_positive_int

# `keras.utils.bounding_boxes` formats (keras-hub's detectors use them).
BOUNDING_BOX_FORMATS = (
    "xyxy", "yxyx", "xywh", "center_xywh", "center_yxhw",
    "rel_xyxy", "rel_yxyx", "rel_xywh", "rel_center_xywh",
)
# Default number of canvases per split; each split only uses the digit scans
# of the same split of `load_digits` (1259 / 179 / 359 scans).
DETECTION_SPLIT_SIZES = {"train": 1024, "validation": 128, "test": 256}
# A pixel is ink when at least this bright (of 255); boxes are the tight
# boxes of a digit's ink, so every pixel this bright lies inside a box.
INK_THRESHOLD = 48
_PLACEMENT_TRIES = 40


def _check_range(name, value, low, high=None):
    """`value` as a `(min, max)` pair of ints with low <= min <= max <= high."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value, value)
    try:
        pair = tuple(value)
    except TypeError:
        pair = ()
    if len(pair) != 2 or any(
        isinstance(v, bool) or not isinstance(v, numbers.Integral)
        for v in pair
    ):
        raise TypeError(
            f"`{name}` must be an int or a (min, max) pair of ints. "
            f"Received: {name}={value!r}."
        )
    lo, hi = int(pair[0]), int(pair[1])
    if lo < low or lo > hi or (high is not None and hi > high):
        bound = f"{low} <= min <= max" + (f" <= {high}" if high else "")
        raise ValueError(
            f"`{name}` must satisfy {bound}. Received: {name}={value!r}."
        )
    return lo, hi


def _check_fraction(name, value, closed_top=True):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"`{name}` must be a float. Received: {name}={value!r}."
        )
    top_ok = value <= 1.0 if closed_top else value < 1.0
    if not (0.0 <= value and top_ok):
        interval = "[0, 1]" if closed_top else "[0, 1)"
        raise ValueError(
            f"`{name}` must be in {interval}. Received: {name}={value}."
        )
    return float(value)


def _axis_sizes(base, height, width):
    """Per-coordinate image size of a format: width for x-like values."""
    y_first = base in ("yxyx", "center_yxhw")
    return np.array(
        [height, width, height, width] if y_first
        else [width, height, width, height], dtype="float64")


def convert_boxes(boxes, source, target, height, width):
    """Converts `(..., 4)` boxes between two `BOUNDING_BOX_FORMATS` in NumPy.

    The same conventions as `keras.utils.bounding_boxes.convert_format`
    (`rel_*` formats are divided by the image width and height), for data
    code that should not go through a backend. Rows of -1 (padding) are
    kept as -1.

    Args:
        boxes: array `(..., 4)`.
        source: the format of `boxes`.
        target: the format to return.
        height: image height in pixels.
        width: image width in pixels.

    Returns:
        float32 array of the same shape.

    Example:

    >>> convert_boxes([[2, 4, 10, 8]], "xyxy", "center_yxhw", 16, 16)
    array([[6., 6., 4., 8.]], dtype=float32)
    """
    check_choice("source", source, BOUNDING_BOX_FORMATS)
    check_choice("target", target, BOUNDING_BOX_FORMATS)
    boxes = np.asarray(boxes, dtype="float64")
    if boxes.shape[-1:] != (4,):
        raise ValueError(
            f"`boxes` must have a last axis of 4. Received shape {boxes.shape}."
        )
    padding = np.all(boxes == -1, axis=-1)
    source_base = source[4:] if source.startswith("rel_") else source
    target_base = target[4:] if target.startswith("rel_") else target
    if source.startswith("rel_"):
        boxes = boxes * _axis_sizes(source_base, height, width)
    a, b, c, d = (boxes[..., i] for i in range(4))
    if source_base == "xyxy":
        x0, y0, x1, y1 = a, b, c, d
    elif source_base == "yxyx":
        y0, x0, y1, x1 = a, b, c, d
    elif source_base == "xywh":
        x0, y0, x1, y1 = a, b, a + c, b + d
    elif source_base == "center_xywh":
        x0, y0, x1, y1 = a - c / 2, b - d / 2, a + c / 2, b + d / 2
    else:  # center_yxhw
        y0, x0, y1, x1 = a - c / 2, b - d / 2, a + c / 2, b + d / 2
    if target_base == "xyxy":
        out = (x0, y0, x1, y1)
    elif target_base == "yxyx":
        out = (y0, x0, y1, x1)
    elif target_base == "xywh":
        out = (x0, y0, x1 - x0, y1 - y0)
    elif target_base == "center_xywh":
        out = ((x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0)
    else:  # center_yxhw
        out = ((y0 + y1) / 2, (x0 + x1) / 2, y1 - y0, x1 - x0)
    out = np.stack(out, axis=-1)
    if target.startswith("rel_"):
        out = out / _axis_sizes(target_base, height, width)
    out[padding] = -1.0
    return out.astype("float32")


def check_detection_targets(targets, image_shape, bounding_box_format="xyxy",
                            num_classes=None):
    """Checks detection targets before training; raises on the first fault.

    Keras-hub's detectors take targets `{"boxes": (n, max_boxes, 4),
    "labels": (n, max_boxes)}`, with rows of -1 as padding, and do not look
    at them: a box outside the image or a class id past the head trains
    silently on garbage. This finds such faults and names the image and
    row.

    Args:
        targets: dict with `"boxes"` and `"labels"` arrays.
        image_shape: `(height, width)` or `(height, width, channels)` of the
            images the boxes belong to.
        bounding_box_format: one of `BOUNDING_BOX_FORMATS`.
        num_classes: int or None; labels must then be < num_classes.

    Raises:
        ValueError: the shapes disagree, a box lies (partly) outside the
            image, has no area, or a label is not in `[0, num_classes)`
            (-1 marks padding).
        TypeError: `targets` is not such a dict.

    Example:

    >>> check_detection_targets(
    ...     {"boxes": np.array([[[1., 1., 5., 5.], [-1., -1., -1., -1.]]]),
    ...      "labels": np.array([[3, -1]])}, (8, 8), "xyxy", num_classes=10)
    >>> check_detection_targets(  # doctest: +ELLIPSIS
    ...     {"boxes": np.array([[[4., 4., 12., 9.]]]),
    ...      "labels": np.array([[3]])}, (8, 8))
    Traceback (most recent call last):
    ...
    ValueError: Box 0 of image 0 is outside the 8x8 image: [4.0, 4.0, 12.0, 9.0] ...
    """
    check_choice("bounding_box_format", bounding_box_format,
                 BOUNDING_BOX_FORMATS)
    if not isinstance(targets, dict) or not {"boxes", "labels"} <= set(targets):
        raise TypeError(
            "`targets` must be a dict with 'boxes' and 'labels'. Received: "
            f"{type(targets).__name__}"
            + (f" with keys {sorted(targets)}" if isinstance(targets, dict) else "")
            + "."
        )
    boxes = np.asarray(targets["boxes"], dtype="float64")
    labels = np.asarray(targets["labels"])
    if boxes.ndim != 3 or boxes.shape[-1] != 4 or labels.shape != boxes.shape[:2]:
        raise ValueError(
            "`targets['boxes']` must be (n, max_boxes, 4) and "
            "`targets['labels']` (n, max_boxes). Received shapes "
            f"{boxes.shape} and {labels.shape}."
        )
    height, width = (int(v) for v in tuple(image_shape)[:2])
    padding = labels == -1
    xyxy = convert_boxes(boxes, bounding_box_format, "xyxy", height, width)
    tolerance = 1e-3
    for n, k in zip(*np.nonzero(~padding)):
        x0, y0, x1, y1 = (float(v) for v in xyxy[n, k])
        original = [round(float(v), 4) for v in boxes[n, k]]
        if not (x1 > x0 and y1 > y0):
            raise ValueError(
                f"Box {k} of image {n} has no area: {original} "
                f"({bounding_box_format})."
            )
        if (x0 < -tolerance or y0 < -tolerance or x1 > width + tolerance
                or y1 > height + tolerance):
            raise ValueError(
                f"Box {k} of image {n} is outside the {height}x{width} image: "
                f"{original} ({bounding_box_format}) spans x {x0:.1f}..{x1:.1f}, "
                f"y {y0:.1f}..{y1:.1f}; boxes must lie within x 0..{width} and "
                f"y 0..{height}."
            )
    bad = (~padding) & ((labels < 0) | (
        labels >= num_classes if num_classes is not None else False))
    if np.any(bad):
        n, k = (int(v) for v in np.argwhere(bad)[0])
        expected = (f"[0, {num_classes})" if num_classes is not None
                    else "a class id >= 0")
        raise ValueError(
            f"Label {k} of image {n} is {labels[n, k]}; expected {expected}, "
            "or -1 for padding."
        )


def _render(scan, size):
    from PIL import Image

    return np.asarray(
        Image.fromarray(scan).resize((size, size), Image.BILINEAR)
    )


def _tight_box(digit):
    """`(y0, x0, y1, x1)` (end exclusive) of the ink in `digit`."""
    rows = np.flatnonzero(np.any(digit >= INK_THRESHOLD, axis=1))
    cols = np.flatnonzero(np.any(digit >= INK_THRESHOLD, axis=0))
    return rows[0], cols[0], rows[-1] + 1, cols[-1] + 1


def _iou(a, b):
    """IoU of two `(y0, x0, y1, x1)` boxes."""
    inter = max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(
        0, min(a[3], b[3]) - max(a[1], b[1]))
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])
    return inter / (area - inter)


def _place(rng, boxes, height, width, box_h, box_w, touching, max_overlap):
    """Top-left `(y, x)` of a new tight box, or None after many tries."""
    for _ in range(_PLACEMENT_TRIES):
        if boxes and rng.random() < touching:
            # Beside an earlier digit, as in a written number: the boxes
            # abut or overlap by up to 2 pixels.
            ref = boxes[rng.integers(len(boxes))]
            shift = int(rng.integers(-2, 1))
            if rng.random() < 0.5:
                x = ref[3] + shift
            else:
                x = ref[1] - box_w - shift
            y = ref[0] + int(rng.integers(-(box_h // 4), box_h // 4 + 1))
        else:
            y = int(rng.integers(0, height - box_h + 1))
            x = int(rng.integers(0, width - box_w + 1))
        if y < 0 or x < 0 or y + box_h > height or x + box_w > width:
            continue
        box = (y, x, y + box_h, x + box_w)
        if all(_iou(box, other) <= max_overlap for other in boxes):
            return box
    return None


def load_digit_detection(
    split="train",
    num_images=None,
    image_size=64,
    digits_per_image=(2, 5),
    digit_size=(14, 24),
    touching=0.3,
    max_overlap=0.1,
    bounding_box_format="xyxy",
    channels=3,
    max_boxes=None,
    seed=0,
):
    """Scanned handwritten digits scattered on a canvas: a detection dataset.

    Real images, nothing to download: the 8x8 scans of scikit-learn's
    digits (see `load_digits`), each upscaled bilinearly to a random side in
    `digit_size` and pasted (pixel-wise maximum, bright ink on black) at a
    random place on an `image_size` canvas, several per image. With
    probability `touching` a digit is put right beside an earlier one (their
    boxes abut or overlap by up to 2 pixels), and any two boxes overlap by
    at most `max_overlap` IoU. A digit's box is the tight box of its ink
    (pixels >= `INK_THRESHOLD` of 255) in pixel-edge coordinates (pixel
    `(i, j)` spans `x in [j, j + 1)`), so every bright pixel lies in a box
    and the background outside the boxes is almost all zero.

    The splits are disjoint down to the scans: a split's canvases use only
    the scans of the same split of `load_digits` (train 1259, validation
    179, test 359 scans). The same arguments give the same images on any
    machine; `seed` draws another set of canvases from the same scans.

    Args:
        split: `"train"`, `"validation"` or `"test"`.
        num_images: int, canvases to make; None for the split's default
            (1024 / 128 / 256).
        image_size: int >= 16, canvas height and width in pixels.
        digits_per_image: int or `(min, max)`, digits per canvas (fewer
            only when a digit finds no room).
        digit_size: int or `(min, max)`, the side a scan is scaled to,
            between 8 and `image_size`.
        touching: float in [0, 1], the chance a digit goes beside another.
        max_overlap: float in [0, 1), the largest IoU of two boxes.
        bounding_box_format: one of `BOUNDING_BOX_FORMATS` (`"xyxy"`:
            left, top, right, bottom in pixels).
        channels: 1 (grayscale) or 3 (grey replicated to RGB).
        max_boxes: int or None, rows per image in the targets (default: the
            largest `digits_per_image`).
        seed: int, seed of the placement.

    Returns:
        `(images, targets)`: uint8 `(n, image_size, image_size, channels)`
        and `{"boxes": float32 (n, max_boxes, 4), "labels": int32
        (n, max_boxes)}` with the digit classes 0-9; rows past an image's
        digits are -1, keras-hub's `RetinaNetObjectDetector` input format.

    Raises:
        ValueError, TypeError: an argument out of range, naming it.

    Example:

    >>> images, targets = load_digit_detection("test", num_images=4)
    >>> images.shape, targets["boxes"].shape, targets["labels"].shape
    ((4, 64, 64, 3), (4, 5, 4), (4, 5))
    >>> targets["labels"][0].tolist()
    [5, 7, 5, 2, 7]
    """
    check_choice("bounding_box_format", bounding_box_format,
                 BOUNDING_BOX_FORMATS)
    num_images, (low, high), sizes, touching, max_overlap = (
        checked_canvas_arguments(split, num_images, image_size,
                                 digits_per_image, digit_size, touching,
                                 max_overlap, channels, seed))
    if max_boxes is None:
        max_boxes = high
    check_positive_int("max_boxes", max_boxes)
    if max_boxes < high:
        raise ValueError(
            f"`max_boxes` must be at least the largest `digits_per_image` "
            f"({high}). Received: max_boxes={max_boxes}."
        )
    images, boxes, labels, _ = draw_digit_canvases(
        split, num_images, image_size, (low, high), sizes, touching,
        max_overlap, max_boxes, seed)
    if bounding_box_format != "xyxy":
        boxes = convert_boxes(boxes, "xyxy", bounding_box_format,
                              image_size, image_size)
    images = images[..., None]
    if channels == 3:
        images = np.repeat(images, 3, axis=-1)
    return np.ascontiguousarray(images), {"boxes": boxes, "labels": labels}


def checked_canvas_arguments(split, num_images, image_size, digits_per_image,
                             digit_size, touching, max_overlap, channels,
                             seed):
    """The digit canvases' arguments, checked (each error names its
    argument): `(num_images, (low, high), (size_low, size_high), touching,
    max_overlap)`, `num_images` None meaning the split's default."""
    check_choice("split", split, SPLITS)
    check_choice("channels", channels, (1, 3))
    if num_images is None:
        num_images = DETECTION_SPLIT_SIZES[split]
    check_positive_int("num_images", num_images)
    check_positive_int("image_size", image_size)
    if image_size < 16:
        raise ValueError(
            f"`image_size` must be at least 16. Received: image_size={image_size}."
        )
    digits = _check_range("digits_per_image", digits_per_image, 1)
    sizes = _check_range("digit_size", digit_size, 8, image_size)
    touching = _check_fraction("touching", touching)
    max_overlap = _check_fraction("max_overlap", max_overlap, closed_top=False)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(
            f"`seed` must be a non-negative int. Received: seed={seed!r}."
        )
    return num_images, digits, sizes, touching, max_overlap


def draw_digit_canvases(split, num_images, image_size, digits_per_image,
                        digit_size, touching, max_overlap, max_boxes, seed):
    """The canvases of `load_digit_detection` (arguments already checked):
    `(images uint8 (n, S, S), boxes xyxy (n, max_boxes, 4), labels
    (n, max_boxes), masks int32 (n, S, S))`. `masks` holds 0 for the
    background and `1 + digit class` on each digit's ink (pixels >=
    `INK_THRESHOLD`); where two digits' ink meets, the brighter pixel's
    digit owns it, as the pixel-wise maximum that draws the canvas."""
    low, high = digits_per_image
    size_low, size_high = digit_size
    scans, classes = all_digit_scans()
    pool = _split_indices(classes)[split]
    rng = np.random.default_rng([int(seed), SPLITS.index(split)])

    images = np.zeros((num_images, image_size, image_size), "uint8")
    masks = np.zeros((num_images, image_size, image_size), "int32")
    boxes = np.full((num_images, max_boxes, 4), -1.0, "float32")
    labels = np.full((num_images, max_boxes), -1, "int32")
    rendered = {}
    for n in range(num_images):
        placed = []
        for _ in range(int(rng.integers(low, high + 1))):
            index = int(pool[rng.integers(len(pool))])
            side = int(rng.integers(size_low, size_high + 1))
            key = (index, side)
            if key not in rendered:
                digit = _render(scans[index], side)
                rendered[key] = (digit, _tight_box(digit))
            digit, (ty0, tx0, ty1, tx1) = rendered[key]
            box = _place(rng, placed, image_size, image_size, ty1 - ty0,
                         tx1 - tx0, touching, max_overlap)
            if box is None:
                continue
            # Paste the whole rendered scan (its faint margin included),
            # clipped to the canvas.
            top, left = box[0] - ty0, box[1] - tx0
            y0, x0 = max(top, 0), max(left, 0)
            y1 = min(top + side, image_size)
            x1 = min(left + side, image_size)
            region = images[n, y0:y1, x0:x1]
            pasted = digit[y0 - top:y1 - top, x0 - left:x1 - left]
            owns = (pasted >= INK_THRESHOLD) & (pasted >= region)
            masks[n, y0:y1, x0:x1][owns] = classes[index] + 1
            np.maximum(region, pasted, out=region)
            boxes[n, len(placed)] = (box[1], box[0], box[3], box[2])
            labels[n, len(placed)] = classes[index]
            placed.append(box)
    return images, boxes, labels, masks
