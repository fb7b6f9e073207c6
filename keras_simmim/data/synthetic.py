"""Built-in synthetic scenes: deterministic images generated in code."""

import numpy as np

from keras_simmim.utils.validation import check_positive_int

SHAPE_NAMES = ("square", "circle", "triangle")


def _draw_shape(canvas, kind, cy, cx, radius, colour, yy, xx):
    if kind == 0:
        inside = (np.abs(yy - cy) <= radius) & (np.abs(xx - cx) <= radius)
    elif kind == 1:
        inside = (yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2
    else:  # upward triangle inside the square of side 2 * radius
        top = cy - radius
        rel = (yy - top) / (2.0 * radius)
        inside = (
            (yy >= top)
            & (yy <= cy + radius)
            & (np.abs(xx - cx) <= rel * radius)
        )
    canvas[inside] = colour
    return inside


def synthetic_scenes(num_images=1024, image_size=32, seed=0):
    """Generates labelled scenes of coloured shapes on smooth backgrounds.

    Each image has a two-colour gradient background and one to three filled
    shapes (square, circle, triangle) of random colour, size and position.
    The label is the kind of the largest shape (0 square, 1 circle,
    2 triangle). The same arguments always give the same images, on any
    machine: nothing is downloaded.

    Args:
        num_images: int, number of images.
        image_size: int or `(height, width)`, image size in pixels (>= 8).
        seed: int, seed of the generator.

    Returns:
        `(images, labels)`: uint8 array `(num_images, height, width, 3)` and
        int32 array `(num_images,)`.

    Example:

    >>> images, labels = synthetic_scenes(4, image_size=32, seed=0)
    >>> images.shape, images.dtype, labels.shape
    ((4, 32, 32, 3), dtype('uint8'), (4,))
    """
    images, labels, _ = _generate(num_images, image_size, seed)
    return images, labels


def _generate(num_images, image_size, seed, min_visible=None):
    """`synthetic_scenes`' images and labels, and with `min_visible` a
    float, each image's `(kind, x0, y0, x1, y1)` rows: the tight box of
    the visible pixels of every shape with at least that fraction of its
    pixels visible (None: no boxes)."""
    check_positive_int("num_images", num_images)
    if isinstance(image_size, int):
        image_size = (image_size, image_size)
    height, width = image_size
    check_positive_int("image_size[0]", height)
    check_positive_int("image_size[1]", width)
    if min(height, width) < 8:
        raise ValueError(
            f"`image_size` must be at least 8 pixels. Received: {image_size}."
        )
    rng = np.random.default_rng(seed)
    yy, xx = np.meshgrid(
        np.arange(height, dtype="float32"),
        np.arange(width, dtype="float32"),
        indexing="ij",
    )
    images = np.empty((num_images, height, width, 3), dtype="uint8")
    labels = np.empty((num_images,), dtype="int32")
    boxes = None if min_visible is None else []
    side = float(min(height, width))
    for n in range(num_images):
        start, end = rng.uniform(0, 255, size=(2, 3))
        angle = rng.uniform(0, 2 * np.pi)
        ramp = np.cos(angle) * yy / height + np.sin(angle) * xx / width
        ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6)
        canvas = start + ramp[..., None] * (end - start)
        count = rng.integers(1, 4)
        radii = rng.uniform(0.1, 0.3, size=count) * side
        kinds = rng.integers(0, len(SHAPE_NAMES), size=count)
        # Draw the largest shape last so it is never hidden.
        if boxes is not None:
            owner, areas = np.full((height, width), -1), {}
        for k in np.argsort(radii):
            r = radii[k]
            cy = rng.uniform(r, height - r)
            cx = rng.uniform(r, width - r)
            colour = rng.uniform(0, 255, size=3)
            inside = _draw_shape(canvas, kinds[k], cy, cx, r, colour, yy, xx)
            if boxes is not None:
                owner[inside] = k
                areas[k] = int(inside.sum())
        images[n] = np.clip(np.round(canvas), 0, 255).astype("uint8")
        labels[n] = kinds[np.argmax(radii)]
        if boxes is not None:
            rows = []
            for k in np.argsort(radii):
                ys, xs = np.nonzero(owner == k)
                if len(ys) and len(ys) >= min_visible * areas[k]:
                    rows.append((int(kinds[k]), xs.min(), ys.min(),
                                 xs.max() + 1, ys.max() + 1))
            boxes.append(rows)
    return images, labels, boxes
