"""Built-in datasets by name: nothing to download."""

from keras_simmim.data.digits import load_digits
from keras_simmim.data.synthetic import synthetic_scenes
from keras_simmim.utils.validation import check_choice
from keras_simmim.utils.validation import check_positive_int

BUILTIN_DATASETS = ("digits", "synthetic")
# Synthetic scenes: fixed seeds and sizes per split.
_SYNTHETIC_SPLITS = {"train": (0, 2048), "validation": (1, 256), "test": (2, 512)}


def load_builtin(name, split="train", image_size=32, num_images=None):
    """A built-in labelled dataset as uint8 arrays.

    Args:
        name: `"digits"` (real scikit-learn handwritten digits, 10 classes)
            or `"synthetic"` (generated shapes, 3 classes).
        split: `"train"`, `"validation"` or `"test"` (fixed splits).
        image_size: int, output height and width.
        num_images: int or None, the number of images. Synthetic scenes:
            that many are generated instead of the split's 2048 / 256 / 512.
            Digits: the first `num_images` of the fixed split (at most its
            1259 / 179 / 359 images). None: the whole split.

    Returns:
        `(images, labels)`, uint8 `(n, size, size, 3)` and int32 `(n,)`.

    Example:

    >>> images, labels = load_builtin("synthetic", "test", num_images=4)
    >>> images.shape, labels.shape
    ((4, 32, 32, 3), (4,))
    """
    check_choice("name", name, BUILTIN_DATASETS)
    check_choice("split", split, tuple(_SYNTHETIC_SPLITS))
    if num_images is not None:
        check_positive_int("num_images", num_images)
    if name == "digits":
        images, labels = load_digits(split, image_size=image_size)
        if num_images is not None and num_images > len(images):
            raise ValueError(
                f"`num_images` must be at most the digits {split!r} split's "
                f"{len(images)} images. Received: num_images={num_images}."
            )
        return images[:num_images], labels[:num_images]
    seed, size = _SYNTHETIC_SPLITS[split]
    return synthetic_scenes(num_images or size, image_size=image_size, seed=seed)
