"""`--data` for the `keras-simmim` subcommands.

`--data` is one of:

* `digits` or `synthetic`: a built-in dataset (no download), with fixed
  train / validation / test splits and labels;
* `tfds:NAME`: a TensorFlow Datasets dataset (its `train` / `test` splits);
* a folder path: every image file under it (unlabeled pretraining), or, for
  labelled subcommands, class subfolders. A folder with `train/`
  (and optionally `validation/`, `test/`) subfolders provides those splits.
"""

import functools
import json
import os

import numpy as np

from keras_simmim.data import BUILTIN_DATASETS

SPLITS = ("train", "validation", "test")


def kind(spec):
    if spec in BUILTIN_DATASETS:
        return "builtin"
    if spec.startswith("tfds:"):
        return "tfds"
    if os.path.isdir(spec):
        return "folder"
    raise SystemExit(
        f"keras-simmim: --data {spec!r} is neither a built-in dataset "
        f"({', '.join(BUILTIN_DATASETS)}), a 'tfds:NAME' dataset, nor an "
        "existing folder."
    )


def recorded(spec):
    """`--data` as a run records it: a folder as an absolute path, so that
    `evaluate` finds it from any working directory."""
    return os.path.abspath(spec) if kind(spec) == "folder" else spec


def run_data(folder):
    """The `--data` the run in `folder` was trained on, as its
    `report.json` (finetune, upscale) or `history.json` (pretrain) records
    it, or None."""
    for name in ("report.json", "history.json"):
        try:
            with open(os.path.join(folder, name)) as f:
                saved = json.load(f)
        except (OSError, ValueError):
            continue
        if isinstance(saved, dict):
            data = saved.get("data") or (saved.get("settings") or {}).get(
                "data")
            if isinstance(data, str):
                return data
    return None


@functools.lru_cache(maxsize=8)
def builtin_arrays(spec, split, image_size, num_images=None):
    """A built-in split, generated once per process (the CLI rebuilds its
    pipeline every epoch)."""
    from keras_simmim.data import load_builtin

    images, labels = load_builtin(
        spec, split, image_size=image_size,
        num_images=num_images,
    )
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def num_batches(dataset):
    """Batches per pass, from the pipeline's cardinality when it is known
    (no decoding), else by counting."""
    count = int(dataset.cardinality())
    return count if count >= 0 else sum(1 for _ in dataset)


def _folder_split(spec, split):
    named = os.path.join(spec, split)
    if os.path.isdir(os.path.join(spec, "train")):
        return named if os.path.isdir(named) else None
    return spec if split == "train" else None


def open_split(spec, split, image_size, with_labels, channels=None,
               **options):
    """A `tf.data.Dataset` for `split` of `--data`, or None if it has none.

    `channels` is the images' channel count: None keeps the data's own
    (built-in data: 3; a folder: 1 when every file is grey, else 3; TFDS:
    the dataset's), 1 / 3 / 4 converts (see `keras_simmim.data.from_arrays`).
    `options` go to the loader (`batch_size`, `augment`, `shuffle`, `seed`,
    `flip`, ...). Built-in datasets take `num_images` and `subset`
    (indices into the split) as well.
    """
    from keras_simmim.data import from_arrays
    from keras_simmim.data import from_folder
    from keras_simmim.data import from_tfds

    source = kind(spec)
    num_images = options.pop("num_images", None)
    subset = options.pop("subset", None)
    if source == "builtin":
        images, labels = builtin_arrays(spec, split, image_size, num_images)
        if subset is not None:
            images, labels = images[subset], labels[subset]
        return from_arrays(
            images, labels if with_labels else None, channels=channels,
            **options,
        )
    if subset is not None:
        raise SystemExit(
            "keras-simmim: --labels-fraction works with the built-in "
            "datasets; for your own data, put the labelled subset in its "
            "own folder."
        )
    if source == "tfds":
        name = spec[len("tfds:"):]
        if split == "validation":
            return None
        try:
            return from_tfds(
                name, split, image_size=image_size, channels=channels,
                with_labels=with_labels, **options,
            )
        except ValueError as error:
            raise SystemExit(f"keras-simmim: --data {spec}: {error}") from None
    folder = _folder_split(spec, split)
    if folder is None:
        return None
    try:
        return from_folder(
            folder, image_size=image_size, channels=channels,
            labels="inferred" if with_labels else None, **options,
        )
    except ValueError as error:
        raise SystemExit(f"keras-simmim: --data {spec}: {error}") from None


def num_classes(spec, dataset, image_size):
    """Classes of a labelled `--data`: from the labels of a built-in split,
    a folder's class subfolders, or (TFDS) one pass over the labels."""
    if kind(spec) == "builtin":
        return int(builtin_arrays(spec, "train", image_size)[1].max()) + 1
    names = getattr(dataset, "class_names", None)
    if names:
        return len(names)
    return int(max(int(np.max(y)) for _, y in dataset)) + 1


def channels_of(dataset):
    """The channel count of a dataset's images (batches or pairs)."""
    spec = dataset.element_spec
    spec = spec[0] if isinstance(spec, tuple) else spec
    return int(spec.shape[-1])


def first_images(dataset, count=None):
    """Up to `count` images (numpy) from a dataset of batches; None: all."""
    taken = []
    for batch in dataset:
        batch = batch[0] if isinstance(batch, tuple) else batch
        taken.append(np.asarray(batch))
        if count is not None and sum(len(t) for t in taken) >= count:
            break
    return np.concatenate(taken)[:count]


def all_batches(dataset):
    """`(images, labels)` numpy arrays from a labelled dataset."""
    images, labels = [], []
    for x, y in dataset:
        images.append(np.asarray(x))
        labels.append(np.asarray(y))
    return np.concatenate(images), np.concatenate(labels)
