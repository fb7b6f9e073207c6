"""The scikit-learn handwritten digits as a built-in real dataset."""

import numpy as np

from keras_simmim.utils.validation import check_choice
from keras_simmim.utils.validation import check_positive_int

SPLITS = ("train", "validation", "test")
# Fixed split sizes of the 1797 digits (stratified, seed 0): 70 / 10 / 20 %.
VALIDATION_SIZE = 180
TEST_SIZE = 360


def _split_indices(labels):
    """Stratified, fixed split of the digits into train / validation / test.

    Every class is shuffled with its own fixed seed and dealt out in the
    same proportions, so the splits never change between machines or
    library versions.
    """
    parts = {name: [] for name in SPLITS}
    total = len(labels)
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        members = np.random.default_rng(1000 + int(c)).permutation(members)
        n_test = int(round(len(members) * TEST_SIZE / total))
        n_val = int(round(len(members) * VALIDATION_SIZE / total))
        parts["test"].append(members[:n_test])
        parts["validation"].append(members[n_test:n_test + n_val])
        parts["train"].append(members[n_test + n_val:])
    return {name: np.sort(np.concatenate(p)) for name, p in parts.items()}


def load_digits(split="train", image_size=32, channels=3):
    """The handwritten digits shipped with scikit-learn, resized.

    1797 real 8x8 scans of the digits 0-9 (UCI "optical recognition of
    handwritten digits"), bright ink on black, bilinearly resized to
    `image_size` and returned as uint8. Nothing is downloaded: the data is
    part of the scikit-learn package. The splits are fixed and stratified:
    train 1259, validation 179, test 359 images.

    Args:
        split: `"train"`, `"validation"` or `"test"`.
        image_size: int, output height and width in pixels (>= 8).
        channels: 1 (grayscale) or 3 (grey replicated to RGB).

    Returns:
        `(images, labels)`: uint8 `(n, image_size, image_size, channels)` and
        int32 `(n,)`.

    Example:

    >>> images, labels = load_digits("test", image_size=16)
    >>> images.shape, images.dtype, labels[:3].tolist()
    ((359, 16, 16, 3), dtype('uint8'), [1, 7, 8])
    """
    check_choice("split", split, SPLITS)
    check_positive_int("image_size", image_size)
    check_choice("channels", channels, (1, 3))
    if image_size < 8:
        raise ValueError(
            f"`image_size` must be at least 8. Received: image_size={image_size}."
        )
    from PIL import Image

    all_scans, labels = all_digit_scans()
    index = _split_indices(labels)[split]
    scans = all_scans[index]
    if image_size == 8:
        images = scans
    else:
        images = np.stack([
            np.asarray(
                Image.fromarray(scan).resize(
                    (image_size, image_size), Image.BILINEAR
                )
            )
            for scan in scans
        ])
    images = images[..., None]
    if channels == 3:
        images = np.repeat(images, 3, axis=-1)
    return np.ascontiguousarray(images), labels[index]


def all_digit_scans():
    """Every scikit-learn digit scan, uint8 0-255 `(1797, 8, 8)`, and its
    int32 label: what the classification and detection sets are cut from."""
    try:
        from sklearn.datasets import load_digits as sklearn_digits
    except ImportError as error:  # pragma: no cover - a dependency
        raise ImportError(
            "The digits dataset needs scikit-learn: pip install scikit-learn"
        ) from error
    data = sklearn_digits()
    scans = np.round(data.images * (255.0 / 16.0)).astype("uint8")
    return scans, data.target.astype("int32")
