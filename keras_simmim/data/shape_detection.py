"""Detection targets for the built-in generated images: the synthetic scenes
and Sort-of-CLEVR, with each object's box and class.

A second detection set beside the scattered digits
(`keras_simmim.data.load_digit_detection`): colour objects on busy (the
synthetic scenes' gradients) or plain (Sort-of-CLEVR's white) backgrounds,
in the same `{"boxes", "labels"}` format, padded with -1 rows.
"""

import numpy as np

from keras_simmim.data.detection import BOUNDING_BOX_FORMATS
from keras_simmim.data.detection import _check_fraction
from keras_simmim.data.detection import convert_boxes
from keras_simmim.data.sort_of_clevr import COLORS
from keras_simmim.data.sort_of_clevr import SHAPES
from keras_simmim.data.sort_of_clevr import load_sort_of_clevr
from keras_simmim.data.synthetic import _generate
from keras_simmim.utils.validation import check_choice

# What a Sort-of-CLEVR object's class is: its shape (2 classes), its colour
# (6) or both (12: colour index * 2 + shape).
CLEVR_CLASSES = {
    "shape": SHAPES,
    "color": tuple(COLORS),
    "color_shape": tuple(f"{c} {s}" for c in COLORS for s in SHAPES),
}


def clevr_labels(shapes, classes):
    """Each Sort-of-CLEVR object's class under `classes` (a key of
    `CLEVR_CLASSES`), from the scenes' `shapes` int `(n, 6)` in `COLORS`
    order: the shape, the colour's index, or `2 * colour + shape`."""
    color = np.broadcast_to(np.arange(len(COLORS), dtype="int32"),
                            shapes.shape)
    return {"shape": shapes, "color": color,
            "color_shape": 2 * color + shapes}[classes]


def load_sort_of_clevr_detection(split="train", num_images=None,
                                 image_size=75, classes="shape",
                                 bounding_box_format="xyxy"):
    """Sort-of-CLEVR scenes as a detection set: six objects per image.

    The images of `load_sort_of_clevr` (same splits, same pixels), with
    every object's box: the tight box of its pixels, in pixel edges.
    Objects never overlap, and every image has all six.

    Args:
        split: `"train"`, `"validation"` or `"test"`.
        num_images: int or None, the first images of the split (None: all,
            9,800 / 200 / 1,000).
        image_size: int >= 24, the side in pixels.
        classes: what the label is: `"shape"` (0 square, 1 circle),
            `"color"` (index into `COLORS`) or `"color_shape"`
            (`2 * color + shape`); names in `CLEVR_CLASSES[classes]`.
        bounding_box_format: one of `BOUNDING_BOX_FORMATS`.

    Returns:
        `(images, targets)`: uint8 `(n, image_size, image_size, 3)` and
        `{"boxes": float32 (n, 6, 4), "labels": int32 (n, 6)}`.

    Raises:
        ValueError: an unknown `split`, `classes` or format, or a bad size.

    Example:

    >>> images, targets = load_sort_of_clevr_detection(
    ...     "test", num_images=2, image_size=64, classes="color")
    >>> images.shape, targets["boxes"].shape, targets["labels"][0].tolist()
    ((2, 64, 64, 3), (2, 6, 4), [0, 1, 2, 3, 4, 5])
    """
    check_choice("classes", classes, tuple(CLEVR_CLASSES))
    check_choice("bounding_box_format", bounding_box_format,
                 BOUNDING_BOX_FORMATS)
    scenes = load_sort_of_clevr(split, num_images=num_images,
                                image_size=image_size)
    labels = clevr_labels(scenes["shapes"], classes)
    boxes = convert_boxes(scenes["boxes"], "xyxy", bounding_box_format,
                          image_size, image_size)
    return scenes["images"], {"boxes": np.ascontiguousarray(boxes),
                              "labels": np.ascontiguousarray(labels,
                                                             "int32")}


def synthetic_scene_detection(num_images=1024, image_size=32, seed=0,
                              min_visible=0.5, bounding_box_format="xyxy"):
    """The synthetic scenes as a detection set: one to three shapes each.

    The images of `synthetic_scenes` with the same arguments (same pixels),
    with a box for every shape whose visible part (shapes are drawn
    smallest first, so a larger one may cover a smaller) is at least
    `min_visible` of its pixels: the tight box of the visible pixels, in
    pixel edges. The label is the shape's kind (`SHAPE_NAMES`: 0 square,
    1 circle, 2 triangle).

    Args:
        num_images: int, images.
        image_size: int or `(height, width)`, at least 8 pixels.
        seed: int, the generator seed (`synthetic_scenes`' images).
        min_visible: float in [0, 1], the visible fraction below which a
            covered shape gets no box.
        bounding_box_format: one of `BOUNDING_BOX_FORMATS`.

    Returns:
        `(images, targets)`: uint8 `(n, H, W, 3)` and `{"boxes": float32
        (n, 3, 4), "labels": int32 (n, 3)}`, -1 rows past an image's
        shapes.

    Raises:
        ValueError, TypeError: a bad argument, naming it.

    Example:

    >>> images, targets = synthetic_scene_detection(3, image_size=32)
    >>> images.shape, targets["boxes"].shape
    ((3, 32, 32, 3), (3, 3, 4))
    """
    check_choice("bounding_box_format", bounding_box_format,
                 BOUNDING_BOX_FORMATS)
    min_visible = _check_fraction("min_visible", min_visible)
    images, _, rows = _generate(num_images, image_size, seed,
                                min_visible=min_visible)
    height, width = images.shape[1:3]
    boxes = np.full((len(images), 3, 4), -1.0, "float32")
    labels = np.full((len(images), 3), -1, "int32")
    for n, found in enumerate(rows):
        for i, (kind, *box) in enumerate(found):
            boxes[n, i], labels[n, i] = box, kind
    return images, {"boxes": convert_boxes(boxes, "xyxy", bounding_box_format,
                                           height, width), "labels": labels}

