"""Input pipelines: a folder of images, TensorFlow Datasets, numpy arrays.

Every loader returns a batched, prefetched `tf.data.Dataset` of normalised
float32 images `(batch, H, W, C)`, or of `(images, labels)` pairs when labels
are asked for. `tf.data` feeds `model.fit()` on every Keras backend.

The channel count `C` is the data's own (grey stays grey, 4 bands stay 4)
unless `channels=` asks for a conversion, and `mean` / `std` default to the
statistics of that count (`keras_simmim.data.channel_statistics`).

Augmentation randomness comes from `tf.data.Dataset.random` with
`rerandomize_each_iteration=True`: every epoch sees new crops, and the same
`seed` gives the same sequence of batches on every run.
"""

import os

import numpy as np

from keras_simmim.data.augmentation import PRETRAIN_RATIO
from keras_simmim.data.augmentation import PRETRAIN_SCALE
from keras_simmim.data.augmentation import ImagePreprocessor
from keras_simmim.data.image_files import scan_image_files
from keras_simmim.data.image_files import tensor_decoder
from keras_simmim.data.lazy_tensorflow import tf
from keras_simmim.utils.validation import check_choice
from keras_simmim.utils.validation import check_positive_int

IMAGE_EXTENSIONS = (
    ".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp",
)


# Channel counts a loader converts to: grey, RGB, RGB + a fourth band.
CHANNELS = (1, 3, 4)


def _convert_channels(image, channels):
    """One uint8 image `(H, W, c)` -> `(H, W, channels)`.

    `channels=None` or `c == channels` keeps it. Otherwise 1 is luminance
    (or the grey band of a grey + alpha image), 3 is RGB (grey replicated,
    alpha dropped), 4 is RGB plus the image's alpha band (2 or 4 channels)
    or an opaque 255 band. `c` may be unknown until run time (a decoded
    file), then `tf.cond` picks the conversion per image.
    """
    if channels is None or image.shape[-1] == channels:
        return image
    check_choice("channels", channels, CHANNELS)
    count = image.shape[-1]
    count = tf.shape(image)[-1] if count is None else count

    def pick(condition, yes, no):
        if isinstance(condition, bool):
            return yes() if condition else no()
        return tf.cond(condition, yes, no)

    colour = count >= 3
    if channels == 1:
        return pick(
            colour, lambda: tf.image.rgb_to_grayscale(image[..., :3]),
            lambda: image[..., :1],
        )
    rgb = pick(colour, lambda: image[..., :3],
               lambda: tf.repeat(image[..., :1], 3, axis=-1))
    if channels == 3:
        return rgb
    alpha = pick(
        (count == 2) | (count == 4), lambda: image[..., -1:],
        lambda: tf.fill(tf.concat([tf.shape(image)[:-1], [1]], 0),
                        tf.constant(255, image.dtype)),
    )
    return tf.concat([rgb, alpha], axis=-1)


def _pipeline(
    source, image_size, batch_size, augment, shuffle, seed, with_labels,
    num_examples, mean, std, scale, ratio, flip, drop_remainder,
):
    check_positive_int("batch_size", batch_size)
    preprocess = ImagePreprocessor(
        image_size, augment=augment, scale=scale, ratio=ratio, flip=flip,
        mean=mean, std=std,
    )
    if shuffle:
        buffer = min(int(num_examples or 10_000), 10_000)
        source = source.shuffle(
            max(buffer, 1), seed=seed, reshuffle_each_iteration=True
        )
    seeds = tf.data.Dataset.random(
        seed=seed, rerandomize_each_iteration=True
    ).batch(2)
    dataset = tf.data.Dataset.zip((source, seeds))

    def transform(example, pair):
        image = preprocess(example["image"], pair)
        if with_labels:
            return image, tf.cast(example["label"], "int32")
        return image

    dataset = dataset.map(
        transform, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    return dataset.prefetch(tf.data.AUTOTUNE)


def _common_kwargs(kwargs):
    defaults = dict(
        batch_size=64, augment=False, shuffle=False, seed=0,
        mean=None, std=None, scale=PRETRAIN_SCALE,
        ratio=PRETRAIN_RATIO, flip=True, drop_remainder=False,
    )
    unknown = sorted(set(kwargs) - set(defaults))
    if unknown:
        raise TypeError(f"Unexpected keyword arguments: {unknown}.")
    defaults.update(kwargs)
    return defaults


def from_arrays(images, labels=None, image_size=None, channels=None, **kwargs):
    """A pipeline over in-memory images (and optional labels).

    Args:
        images: uint8 (or float in 0-255) array `(n, H, W, C)`.
        labels: optional int array `(n,)`; then batches are
            `(images, labels)`.
        image_size: int or `(height, width)`; default the arrays' size.
        channels: None (keep C), or 1 (luminance), 3 (RGB: grey
            replicated, a fourth band dropped) or 4 (RGB plus the fourth
            band, or an opaque 255 band when there is none).
        **kwargs: `batch_size=64`, `augment=False` (SimMIM's random resized
            crop and flip), `shuffle=False`, `seed=0`, `mean=None` and
            `std=None` (per channel, 0-1 scale; None is the default for the
            output channel count: ImageNet's for RGB, 0.449 / 0.226 for
            grey), `scale`, `ratio`, `flip=True`, `drop_remainder=False`.

    Raises:
        ValueError: bad shapes or values, or `mean` / `std` that do not
            match the output channel count.

    Returns:
        A `tf.data.Dataset`.

    Example:

    >>> import numpy as np
    >>> ds = from_arrays(np.zeros((10, 32, 32, 3), "uint8"), batch_size=4)
    >>> [tuple(b.shape) for b in ds]
    [(4, 32, 32, 3), (4, 32, 32, 3), (2, 32, 32, 3)]
    """
    options = _common_kwargs(kwargs)
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] not in (1, 3, 4):
        raise ValueError(
            "`images` must be an array (num_images, height, width, channels) "
            f"with 1, 3 or 4 channels. Received shape: {images.shape}."
        )
    if len(images) == 0:
        raise ValueError("`images` is empty: there is nothing to train on.")
    if images.dtype != np.uint8:
        if not np.issubdtype(images.dtype, np.number):
            raise TypeError(
                f"`images` must be numeric. Received dtype: {images.dtype}."
            )
        low, high = float(images.min()), float(images.max())
        if low < 0 or high > 255 or high <= 1.0:
            raise ValueError(
                "`images` must hold pixel values in 0-255 (uint8, or floats "
                f"in that range). Received values in [{low}, {high}]; for "
                "images scaled to [0, 1], pass `images * 255`."
            )
    features = {"image": images}
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (len(images),):
            raise ValueError(
                "`labels` must be a 1-D array with one label per image: "
                f"expected shape ({len(images)},), received {labels.shape}."
            )
        if not np.issubdtype(labels.dtype, np.integer):
            raise TypeError(
                f"`labels` must be integers. Received dtype: {labels.dtype}."
            )
        features["label"] = labels
    if image_size is None:
        image_size = images.shape[1:3]
    source = tf.data.Dataset.from_tensor_slices(features)
    if channels is not None:
        check_choice("channels", channels, CHANNELS)
        source = source.map(
            lambda e: {**e, "image": _convert_channels(e["image"], channels)}
        )
    return _pipeline(
        source, image_size, with_labels=labels is not None,
        num_examples=len(images), **options,
    )


def _checked_image_files(directory, on_error):
    """The `ImageFile`s (path, decoder, channels) under `directory`."""
    check_choice("on_error", on_error, ("warn", "raise"))
    if not os.path.isdir(directory):
        raise ValueError(
            f"`directory` must be an existing folder. Received: {directory!r}."
        )
    paths = []
    for root, dirs, files in os.walk(directory):
        dirs.sort()
        for name in sorted(files):
            if name.lower().endswith(IMAGE_EXTENSIONS):
                paths.append(os.path.join(root, name))
    if not paths:
        raise ValueError(
            f"No image files ({', '.join(IMAGE_EXTENSIONS)}) found under "
            f"{directory!r}."
        )
    files = scan_image_files(paths, on_error=on_error)
    if not files:
        raise ValueError(f"No readable image files under {directory!r}.")
    return files


def list_image_files(directory, on_error="warn"):
    """Image files under `directory` (recursive, sorted), checked readable.

    Files are found by extension (PNG, JPEG, BMP, GIF, TIFF, WebP). Every
    one is decoded once, by the decoder `from_folder` will use for it, so a
    corrupt or truncated file, or one that is not an image, is found here
    and named, never hit in the middle of training.

    Args:
        directory: the folder.
        on_error: `"warn"` skips an unreadable file with a one-line
            `UserWarning` naming it, `"raise"` raises on the first.

    Returns:
        A list of paths.

    Raises:
        ValueError: `directory` is not a folder, it holds no (readable)
            image files, or, with `on_error="raise"`, a file is unreadable.
    """
    return [f.path for f in _checked_image_files(directory, on_error)]


def from_folder(
    directory, image_size=224, labels=None, channels=None, on_error="warn",
    **kwargs,
):
    """A pipeline over a folder of image files (PNG, JPEG, BMP, GIF, ...).

    No labels are needed: by default every image file under `directory`,
    at any depth, is an unlabeled training image. With
    `labels="inferred"`, each first-level subfolder is a class (sorted
    names -> 0, 1, ...; the dataset's `class_names` lists them).

    Every file loads as an image viewer shows it: EXIF orientation applied,
    palette and 1-bit images in their colours, 16-bit images rounded to 8
    bits (`round(value / 257)`), CMYK converted to RGB, TIFF and WebP read. Plain PNG and JPEG
    files are decoded by TensorFlow, the others by Pillow (through
    `tf.numpy_function`). Before the dataset is returned every file is
    decoded once: one that cannot be decoded is skipped with a warning
    naming it (or raised), so none fails in the middle of training.

    Args:
        directory: the folder.
        image_size: int or `(height, width)` of the output images.
        labels: None or `"inferred"`.
        channels: None (default) follows the files: 1 when every file is
            greyscale, else 3 (RGB). Or 1 (grey: colour files become
            luminance), 3 (RGB: grey files are replicated), 4 (RGB plus
            each file's alpha band, opaque 255 when it has none).
        on_error: `"warn"` skips unreadable files with a one-line
            `UserWarning` naming each, `"raise"` raises on the first.
        **kwargs: as `from_arrays` (`batch_size`, `augment`, `shuffle`,
            `seed`, `mean`, `std`, ...).

    Returns:
        A `tf.data.Dataset` with attributes `file_paths`, `class_names` and
        `channels` (the channel count of its images).

    Raises:
        ValueError: no readable images, an unreadable file with
            `on_error="raise"`, bad `labels` / `channels`, or `mean` / `std`
            that do not match the channel count.

    Example:

    >>> import os, tempfile, numpy as np
    >>> from PIL import Image
    >>> folder = tempfile.mkdtemp()
    >>> for i in range(3):
    ...     Image.fromarray(np.zeros((20, 20, 3), "uint8")).save(
    ...         os.path.join(folder, f"{i}.png"))
    >>> ds = from_folder(folder, image_size=16, batch_size=2)
    >>> [tuple(b.shape) for b in ds]
    [(2, 16, 16, 3), (1, 16, 16, 3)]
    """
    options = _common_kwargs(kwargs)
    check_choice("labels", labels, (None, "inferred"))
    if channels is not None:
        check_choice("channels", channels, CHANNELS)
    files = _checked_image_files(directory, on_error)
    paths = [f.path for f in files]
    if channels is None:  # grey (+ alpha) files: 1 or 2 channels
        channels = 1 if all(f.channels < 3 for f in files) else 3
    class_names = None
    decode_file, decoders = tensor_decoder(files)
    features = {"path": paths, "decoder": decoders}
    if labels == "inferred":
        classes = [os.path.relpath(p, directory).split(os.sep) for p in paths]
        if any(len(parts) < 2 for parts in classes):
            loose = [p for p, parts in zip(paths, classes) if len(parts) < 2]
            raise ValueError(
                "labels='inferred' needs every image inside a class "
                f"subfolder; found {len(loose)} at the top level, e.g. "
                f"{loose[0]!r}."
            )
        class_names = sorted({parts[0] for parts in classes})
        index = {name: i for i, name in enumerate(class_names)}
        features["label"] = np.array(
            [index[parts[0]] for parts in classes], "int32"
        )

    def decode(example):
        # Decoded with the file's own channels (1-4), then converted.
        image = decode_file(example["path"], example["decoder"])
        image = _convert_channels(image, channels)
        image.set_shape((None, None, channels))
        return {**{k: v for k, v in example.items()
                   if k not in ("path", "decoder")},
                "image": image}

    source = tf.data.Dataset.from_tensor_slices(features)
    if options["shuffle"]:
        # Shuffle paths (cheap) rather than decoded images.
        source = source.shuffle(
            len(paths), seed=options["seed"], reshuffle_each_iteration=True
        )
        options["shuffle"] = False
    source = source.map(decode, num_parallel_calls=tf.data.AUTOTUNE,
                        deterministic=True)
    dataset = _pipeline(
        source, image_size, with_labels=labels == "inferred",
        num_examples=len(paths), **options,
    )
    dataset.file_paths = paths
    dataset.class_names = class_names
    dataset.channels = channels
    return dataset


def from_tfds(
    name, split="train", image_size=None, with_labels=False, channels=None,
    data_dir=None, download=True, image_key="image", label_key="label",
    **kwargs,
):
    """A pipeline over a TensorFlow Datasets dataset, by name.

    Args:
        name: the TFDS name, e.g. `"cifar10"`, `"mnist"`.
        split: the TFDS split string, e.g. `"train"`, `"train[:10%]"`.
        image_size: int or `(height, width)`; needed when the dataset's
            images vary in size, default their fixed size.
        with_labels: bool, yield `(images, labels)` from `label_key`.
        channels: None (keep the dataset's), or 1 / 3 / 4 (as
            `from_arrays`).
        data_dir, download: passed to `tfds.load`.
        image_key, label_key: feature names in the dataset.
        **kwargs: as `from_arrays`.

    Returns:
        A `tf.data.Dataset`.
    """
    import tensorflow_datasets as tfds

    options = _common_kwargs(kwargs)
    builder = tfds.builder(name, data_dir=data_dir)
    feature_dict = builder.info.features
    if image_key not in feature_dict:
        raise ValueError(
            f"Dataset {name!r} has no image feature {image_key!r}; its "
            f"features are {sorted(feature_dict.keys())}. Pass `image_key`."
        )
    if with_labels and label_key not in feature_dict:
        raise ValueError(
            f"Dataset {name!r} has no label feature {label_key!r}; its "
            f"features are {sorted(feature_dict.keys())}. Pass `label_key`."
        )
    if image_size is None:
        shape = feature_dict[image_key].shape
        if shape[0] is None or shape[1] is None:
            raise ValueError(
                f"Dataset {name!r} has images of varying size {shape}: pass "
                "`image_size`."
            )
        image_size = tuple(shape[:2])
    if download:
        builder.download_and_prepare()
    source = builder.as_dataset(split=split)
    if channels is not None:
        check_choice("channels", channels, CHANNELS)

    def select(example):
        out = {"image": _convert_channels(example[image_key], channels)}
        if with_labels:
            out["label"] = example[label_key]
        return out

    source = source.map(select, num_parallel_calls=tf.data.AUTOTUNE)
    return _pipeline(
        source, image_size, with_labels=with_labels,
        num_examples=builder.info.splits[split].num_examples
        if split in builder.info.splits else None,
        **options,
    )
