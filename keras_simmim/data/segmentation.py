"""Built-in semantic segmentation data: the digit canvases of
`load_digit_detection` with a class id on every pixel."""

import numpy as np

from keras_simmim.data.detection import checked_canvas_arguments
from keras_simmim.data.detection import draw_digit_canvases
from keras_simmim.data.shape_detection import CLEVR_CLASSES
from keras_simmim.data.shape_detection import clevr_labels
from keras_simmim.data.sort_of_clevr import COLORS
from keras_simmim.data.sort_of_clevr import load_sort_of_clevr
from keras_simmim.utils.validation import check_choice

# Class 0 is the background; digit d is class d + 1.
DIGIT_SEGMENTATION_CLASSES = ("background",) + tuple(str(d) for d in range(10))


def load_digit_segmentation(
    split="train",
    num_images=None,
    image_size=64,
    digits_per_image=(2, 5),
    digit_size=(14, 24),
    touching=0.3,
    max_overlap=0.1,
    channels=3,
    seed=0,
):
    """Scanned handwritten digits on a canvas, with a class on every pixel.

    The same canvases as `load_digit_detection` (same arguments, same
    images: real scans from scikit-learn's digits, nothing downloaded),
    labelled per pixel: a pixel of a digit's ink (at least
    `INK_THRESHOLD` = 48 of 255, the digit's own scanned strokes, not its
    box) is class `1 + digit`, every other pixel is class 0 (background).
    Where two digits' ink meets, the brighter pixel's digit owns it, as the
    pixel-wise maximum that draws the canvas. The class names are
    `DIGIT_SEGMENTATION_CLASSES`.

    About 15% of the pixels are ink, so a model predicting background
    everywhere scores a mean IoU near 1/11 over the 11 classes: report
    `keras.metrics.MeanIoU`, not pixel accuracy.

    Args:
        split: `"train"`, `"validation"` or `"test"` (disjoint down to the
            scans).
        num_images: int, canvases to make; None for the split's default
            (1024 / 128 / 256).
        image_size: int >= 16, canvas height and width in pixels.
        digits_per_image: int or `(min, max)`, digits per canvas.
        digit_size: int or `(min, max)`, the side a scan is scaled to.
        touching: float in [0, 1], the chance a digit goes beside another.
        max_overlap: float in [0, 1), the largest IoU of two digits' boxes.
        channels: 1 (grayscale) or 3 (grey replicated to RGB).
        seed: int, seed of the placement.

    Returns:
        `(images, masks)`: uint8 `(n, image_size, image_size, channels)` and
        int32 `(n, image_size, image_size)` class ids in `0..10`.

    Raises:
        ValueError, TypeError: an argument out of range, naming it.

    Example:

    >>> images, masks = load_digit_segmentation("test", num_images=4)
    >>> images.shape, masks.shape, int(masks.max()) <= 10
    ((4, 64, 64, 3), (4, 64, 64), True)
    >>> # Class 1 + d exactly where the detection labels put digit d.
    >>> from keras_simmim.data import load_digit_detection
    >>> _, targets = load_digit_detection("test", num_images=4)
    >>> sorted(set(masks[0][masks[0] > 0].tolist())) == sorted(
    ...     {d + 1 for d in targets["labels"][0].tolist() if d >= 0})
    True
    """
    num_images, digits, sizes, touching, max_overlap = (
        checked_canvas_arguments(split, num_images, image_size,
                                 digits_per_image, digit_size, touching,
                                 max_overlap, channels, seed))
    images, _, _, masks = draw_digit_canvases(
        split, num_images, image_size, digits, sizes, touching, max_overlap,
        digits[1], seed)
    images = images[..., None]
    if channels == 3:
        images = np.repeat(images, 3, axis=-1)
    return np.ascontiguousarray(images), masks


def load_sort_of_clevr_segmentation(split="train", num_images=None,
                                    image_size=75, classes="shape"):
    """Sort-of-CLEVR scenes with a class on every pixel.

    The images of `load_sort_of_clevr` (same splits, same pixels): six
    objects (a square or a circle of each colour in `COLORS`) on white.
    Every pixel an object covers is class `1 + label`, where the label is
    the object's shape, colour or both, as in
    `load_sort_of_clevr_detection`; the background is class 0. Objects
    never overlap, and each is drawn in its own exact colour, so the masks
    are the objects' pixels themselves.

    Args:
        split: `"train"`, `"validation"` or `"test"`.
        num_images: int or None, the first images of the split (None: all,
            9,800 / 200 / 1,000).
        image_size: int, the side in pixels.
        classes: `"shape"` (classes: background, square, circle),
            `"color"` (background and the six colours) or `"color_shape"`
            (background and the 12 pairs, `1 + 2 * color + shape`); the
            object names are `CLEVR_CLASSES[classes]`.

    Returns:
        `(images, masks)`: uint8 `(n, image_size, image_size, 3)` and int32
        `(n, image_size, image_size)` class ids in
        `0..len(CLEVR_CLASSES[classes])`.

    Raises:
        ValueError: an unknown `split` or `classes`, or a bad size.

    Example:

    >>> images, masks = load_sort_of_clevr_segmentation(
    ...     "test", num_images=2, image_size=64, classes="color")
    >>> images.shape, masks.shape, sorted(set(masks[0].ravel().tolist()))
    ((2, 64, 64, 3), (2, 64, 64), [0, 1, 2, 3, 4, 5, 6])
    >>> bool(((masks > 0) == (images != 255).any(axis=-1)).all())
    True
    """
    check_choice("classes", classes, tuple(CLEVR_CLASSES))
    scenes = load_sort_of_clevr(split, num_images=num_images,
                                image_size=image_size)
    images = scenes["images"]
    labels = clevr_labels(scenes["shapes"], classes)
    masks = np.zeros(images.shape[:3], "int32")
    for index, colour in enumerate(COLORS.values()):
        where = (images == np.asarray(colour, "uint8")).all(axis=-1)
        masks = np.where(where, 1 + labels[:, index, None, None], masks)
    return images, masks


def check_segmentation_targets(masks, num_classes, image_shape=None,
                               num_images=None, name="y"):
    """Checks per-pixel class ids before training; raises on the first fault.

    Sparse cross-entropy does not look at its targets the same way on every
    backend: a class id past the head is an error on TensorFlow, an index
    error on torch and a silently wrong loss on JAX; label maps of another
    size fail deep inside the loss. This names the fault instead.

    Args:
        masks: array-like `(n, H, W)` or `(n, H, W, 1)` of class ids:
            integers (any int dtype, or floats holding whole numbers).
        num_classes: int, the ids must lie in `[0, num_classes)`.
        image_shape: `(H, W)` or `(H, W, C)` the masks must match, or None.
        num_images: int, the number of images the masks go with, or None.
        name: str, the argument's name in the messages (`"y"`).

    Raises:
        ValueError: wrong rank or size, not whole numbers, ids out of range,
            a count that differs from `num_images`. Each message names
            `name` and what was expected.

    Example:

    >>> import numpy as np
    >>> check_segmentation_targets(np.zeros((2, 8, 8), "int32"), 3, (8, 8))
    >>> check_segmentation_targets(  # doctest: +ELLIPSIS
    ...     np.full((2, 8, 8), 3), num_classes=3)
    Traceback (most recent call last):
    ...
    ValueError: `y` holds class ids outside [0, 3): found 3. ...
    """
    values = np.asarray(masks)
    shape = values.shape
    if values.ndim == 4 and shape[-1] == 1:
        values = values[..., 0]
    if values.ndim != 3:
        raise ValueError(
            f"`{name}` must be per-pixel class ids of shape (n, H, W) or "
            f"(n, H, W, 1). Received: shape {shape}."
        )
    if num_images is not None and len(values) != num_images:
        raise ValueError(
            f"`{name}` holds {len(values)} label maps for {num_images} "
            "images; pass one label map per image."
        )
    if image_shape is not None:
        height, width = tuple(image_shape)[:2]
        if (height is not None and values.shape[1] != height) or (
                width is not None and values.shape[2] != width):
            raise ValueError(
                f"`{name}`: label maps must be {height}x{width}, the size of "
                f"the images. Received: shape {shape}."
            )
    if values.dtype.kind not in "iub":
        if values.dtype.kind != "f" or not np.all(
                np.isfinite(values) & (values == np.round(values))):
            raise ValueError(
                f"`{name}` must hold whole-number class ids; received dtype "
                f"{values.dtype} with values that are not whole numbers."
            )
    if values.size:
        low, high = values.min(), values.max()
        if low < 0 or high >= num_classes:
            bad = high if high >= num_classes else low
            raise ValueError(
                f"`{name}` holds class ids outside [0, {num_classes}): found "
                f"{int(bad)}. Ids are 0..num_classes - 1 (num_classes="
                f"{num_classes}); build the segmenter with more classes or "
                "remap the labels."
            )
