"""`--data` for the `keras-simmim` subcommands.

`--data` is one of:

* `digits` or `synthetic`: a built-in dataset (no download), with fixed
  train / validation / test splits and labels;
* `tfds:NAME`: a TensorFlow Datasets dataset (its `train` / `test` splits);
* a folder path: every image file under it (unlabeled pretraining), or, for
  labelled subcommands, class subfolders. A folder with `train/`
  (and optionally `validation/`, `test/`) subfolders provides those splits.
  A folder without them (or with `train/` alone) is split by the command:
  `HELD_OUT_FRACTION` of its images (of each class subfolder, when every
  image is in one) is held out for validation and as much again for
  testing, at least one image each, always the same images (`SPLIT_SEED`),
  so every subcommand and every `--seed` trains and tests on the same
  parts. `announce` prints the split.
"""

import atexit
import functools
import json
import os
import shutil
import tempfile
import types
import zlib

import numpy as np

from keras_simmim.data import BUILTIN_DATASETS

SPLITS = ("train", "validation", "test")
HELD_OUT_SPLITS = ("validation", "test")
# A folder without held-out subfolders: this fraction of its images (of
# each class) for validation, and as much for testing, at least one each.
HELD_OUT_FRACTION = 0.1
MIN_HELD_OUT = 1
# Fixed, not `--seed`: every subcommand holds out the same images, so
# `inpaint`, `upscale` and `evaluate` test on images `pretrain` and
# `finetune` did not train on.
SPLIT_SEED = 0


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


def held_out_count(count):
    """Images of a group of `count` held out for validation, and again for
    testing."""
    return max(MIN_HELD_OUT, int(round(count * HELD_OUT_FRACTION)))


def minimum_images():
    """The fewest images (per class) a folder split by the command needs:
    one for training, the rest held out."""
    return 1 + 2 * MIN_HELD_OUT


def _carve(paths, seed_text):
    """`{split: [paths]}` of one group (a class, or a whole folder)."""
    rng = np.random.default_rng([SPLIT_SEED, zlib.crc32(seed_text.encode())])
    order = [paths[i] for i in rng.permutation(len(paths))]
    held = held_out_count(len(paths))
    return {"validation": sorted(order[:held]),
            "test": sorted(order[held:2 * held]),
            "train": sorted(order[2 * held:])}


def _link(source, target):
    os.makedirs(os.path.dirname(target), exist_ok=True)
    try:
        os.symlink(source, target)
    except OSError:  # no symlinks (Windows without the privilege)
        try:
            os.link(source, target)
        except OSError:
            shutil.copyfile(source, target)


LINKS_PREFIX = "keras-simmim-split-"


def _links_folder():
    """A new temporary folder for the split's links, removed when the
    process exits; those of processes that ended without removing theirs
    (killed) are removed here."""
    parent = tempfile.gettempdir()
    if os.name == "posix":
        for name in os.listdir(parent):
            pid = name[len(LINKS_PREFIX):].split("-")[0]
            if not name.startswith(LINKS_PREFIX) or not pid.isdigit():
                continue
            try:
                os.kill(int(pid), 0)  # signal 0: only asks if it runs
            except ProcessLookupError:
                shutil.rmtree(os.path.join(parent, name), True)
            except OSError:  # another user's process: leave it
                pass
    links = tempfile.mkdtemp(prefix=f"{LINKS_PREFIX}{os.getpid()}-")
    atexit.register(shutil.rmtree, links, True)
    return links


def _split_folder(spec, root, given):
    """Splits the images under `root` (see the module's docstring) into
    folders of links, one per split. Returns the layout namespace."""
    from keras_simmim.data import list_image_files

    try:
        paths = list_image_files(root)
    except ValueError as error:
        raise SystemExit(f"keras-simmim: --data {spec}: {error}") from None
    relative = [os.path.relpath(p, root) for p in paths]
    groups = {}
    for path in relative:
        parts = path.split(os.sep)
        groups.setdefault(parts[0] if len(parts) > 1 else None, []).append(
            path)
    need = minimum_images()
    where = (f"--data {spec} has no validation/ or test/ subfolder"
             if given else f"--data {spec} has no train/ and test/ "
             "subfolders")
    rule = (f"keras-simmim holds out {HELD_OUT_FRACTION:.0%} of "
            "{what} for validation and as much for testing, at least "
            f"{MIN_HELD_OUT} each, and trains on the rest")
    class_problem = None
    if None in groups:
        class_problem = (
            f"keras-simmim: {where}, and {len(groups[None])} of its images "
            "are not in a class subfolder (e.g. "
            f"{os.path.join(root, groups[None][0])!r}); a labelled "
            "subcommand needs every image inside one subfolder per class.")
    else:
        small = sorted((len(v), k) for k, v in groups.items()
                       if len(v) < need)
        if small:
            count, name = small[0]
            class_problem = (
                f"keras-simmim: {where}: {rule.format(what='each class')}, "
                f"so every class needs at least {need} images; class "
                f"{name!r} has {count}. Add images, or give the splits as "
                "train/ and test/ subfolders of class folders.")
    if len(paths) < need:
        raise SystemExit(
            f"keras-simmim: {where}, and it holds {len(paths)} image(s): "
            f"{rule.format(what='its images')}, so it needs at least {need}."
            " Add images, or give the splits as train/ and test/ "
            "subfolders.")
    if class_problem is None:  # stratified: each class in every split
        parts = [_carve(v, k) for k, v in sorted(groups.items())]
    else:
        parts = [_carve(relative, "")]
    splits = {s: sorted(p for part in parts for p in part[s])
              for s in SPLITS}
    links = _links_folder()
    for split, files in splits.items():
        for path in files:
            _link(os.path.abspath(os.path.join(root, path)),
                  os.path.join(links, split, path))
    classes = None if class_problem else len(groups)
    counts = {s: len(v) for s, v in splits.items()}
    what = f"{classes} classes, " if classes else ""
    note = (
        f"keras-simmim: {where}, so it is split here ({what}"
        f"{HELD_OUT_FRACTION:.0%}{' of each class' if classes else ''} "
        "held out for validation and again for testing, the same images "
        f"in every run): {len(paths)} images found, {counts['train']} for "
        f"training, {counts['validation']} held out for validation, "
        f"{counts['test']} for testing.")
    return types.SimpleNamespace(
        folders={s: os.path.join(links, s) for s in SPLITS}, counts=counts,
        classes=classes, class_problem=class_problem, note=note)


@functools.lru_cache(maxsize=8)
def _folder_layout(spec, folder, modified):
    del modified  # part of the cache key: a changed folder is split anew
    train = os.path.join(folder, "train")
    if os.path.isdir(train):
        given = {s: os.path.join(folder, s) for s in SPLITS
                 if os.path.isdir(os.path.join(folder, s))}
        if set(given) & set(HELD_OUT_SPLITS):
            return types.SimpleNamespace(
                folders=given, note=None, class_problem=None,
                classes=_subfolder_count(train))
        return _split_folder(spec, train, given=True)
    return _split_folder(spec, folder, given=False)


def _subfolder_count(folder):
    """The class subfolders of a given `train/` folder (None when it holds
    image files at its top level)."""
    entries = [e for e in os.scandir(folder) if not e.name.startswith(".")]
    if any(e.is_file() for e in entries):
        return None
    return sum(e.is_dir() for e in entries) or None


def folder_layout(spec):
    """Where each split of a folder `--data` is: `folders` maps the splits
    it has to folders (its own subfolders, or folders of links to the
    images the command split off; see the module's docstring). A folder
    too small to split raises `SystemExit` naming `--data`."""
    folder = os.path.abspath(spec)
    return _folder_layout(spec, folder, os.stat(folder).st_mtime_ns)


def has_split(spec, split):
    """Whether `--data` has `split` (checked before any training)."""
    source = kind(spec)
    if source == "builtin":
        return True
    if source == "tfds":
        return split != "validation"
    return split in folder_layout(spec).folders


def require_split(spec, split, flag="--split"):
    """Exits with a message, before any work, when `--data` lacks `split`."""
    if not has_split(spec, split):
        others = [s for s in SPLITS if s != split and has_split(spec, s)]
        raise SystemExit(
            f"keras-simmim: --data {spec} has no {split!r} split; choose "
            f"another with {flag} ({', '.join(others)})."
        )


def check_labelled_held_out(spec, purpose):
    """`check(spec, labelled=True)`, and a validation or test split to
    measure `purpose` on (a folder without one gets it held out)."""
    check(spec, labelled=True)
    if not any(has_split(spec, split) for split in HELD_OUT_SPLITS):
        raise SystemExit(
            f"keras-simmim: --data {spec} has no validation or test split "
            f"to {purpose}.")


def check(spec, labelled=False):
    """Checks `--data` before any work: it exists, a folder holds enough
    images to split, and (`labelled`) a split folder has one subfolder per
    class with enough images each."""
    if kind(spec) != "folder":
        return
    layout = folder_layout(spec)
    if labelled and layout.class_problem:
        raise SystemExit(layout.class_problem)


def announce(spec):
    """Prints how the command split a folder `--data` that has no
    held-out subfolders (nothing for other data)."""
    if kind(spec) == "folder" and folder_layout(spec).note:
        print(folder_layout(spec).note)


def has_classes(spec):
    """Whether `--data` has labels: built-in and TFDS data, or a folder of
    one subfolder per class."""
    if kind(spec) != "folder":
        return True
    layout = folder_layout(spec)
    return bool(layout.classes) and not layout.class_problem


def open_split(spec, split, image_size, with_labels, channels=None,
               **options):
    """A `tf.data.Dataset` for `split` of `--data`, or None if it has none.

    `channels` is the images' channel count: None keeps the data's own
    (built-in data: 3; a folder: 1 when every file is grey, else 3; TFDS:
    the dataset's), 1 / 3 / 4 converts (see `keras_simmim.data.from_arrays`).
    `options` go to the loader (`batch_size`, `augment`, `shuffle`, `seed`,
    `flip`, ...). Built-in datasets take `num_images` and `subset`
    (indices into the split) as well.

    The dataset's `num_images` is its image count (None when unknown), and
    `num_classes` the class count of a labelled built-in or folder split.
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
        dataset = from_arrays(
            images, labels if with_labels else None, channels=channels,
            **options,
        )
        dataset.num_images = len(images)
        dataset.num_classes = int(labels.max()) + 1 if with_labels else None
        return dataset
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
            dataset = from_tfds(
                name, split, image_size=image_size, channels=channels,
                with_labels=with_labels, **options,
            )
        except ValueError as error:
            raise SystemExit(f"keras-simmim: --data {spec}: {error}") from None
        dataset.num_images = _tfds_count(name, split)
        dataset.num_classes = None
        return dataset
    check(spec, labelled=with_labels)
    layout = folder_layout(spec)
    folder = layout.folders.get(split)
    if folder is None:
        return None
    try:
        dataset = from_folder(
            folder, image_size=image_size, channels=channels,
            labels="inferred" if with_labels else None, **options,
        )
    except ValueError as error:
        raise SystemExit(f"keras-simmim: --data {spec}: {error}") from None
    dataset.num_images = len(dataset.file_paths)
    dataset.num_classes = (len(dataset.class_names)
                           if dataset.class_names else None)
    return dataset


def _tfds_count(name, split):
    try:
        import tensorflow_datasets as tfds

        return int(tfds.builder(name).info.splits[split].num_examples)
    except Exception:  # unknown: the start-up line says so
        return None


def describe(dataset, num_classes=None):
    """`dataset`'s size for a start-up line: "96 images" or "96 images in
    3 classes"."""
    count = getattr(dataset, "num_images", None)
    text = "an unknown number of images" if count is None else (
        f"{count} image{'s' if count != 1 else ''}")
    classes = num_classes or getattr(dataset, "num_classes", None)
    return f"{text} in {classes} classes" if classes else text


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
