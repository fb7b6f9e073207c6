"""Loaders (arrays, folder, TFDS), SimMIM augmentation, built-in datasets."""

import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from keras_simmim.data import ImagePreprocessor
from keras_simmim.data import from_arrays
from keras_simmim.data import from_folder
from keras_simmim.data import from_tfds
from keras_simmim.data import load_builtin
from keras_simmim.data import load_digits
from keras_simmim.data import stratified_subset



def test_arrays_with_labels_and_normalisation():
    images = np.full((5, 8, 8, 3), 255, "uint8")
    ds = from_arrays(images, np.arange(5), batch_size=2, mean=0.5, std=0.5)
    got = list(ds)
    assert [tuple(x.shape) for x, _ in got] == [(2, 8, 8, 3)] * 2 + [(1, 8, 8, 3)]
    np.testing.assert_allclose(np.concatenate([x for x, _ in got]), 1.0)
    np.testing.assert_array_equal(np.concatenate([y for _, y in got]), np.arange(5))


def test_array_errors_name_the_problem():
    images = np.zeros((4, 8, 8, 3), "uint8")
    with pytest.raises(ValueError, match=r"one label per image.*\(4,\).*\(3,\)"):
        from_arrays(images, np.arange(3))
    with pytest.raises(ValueError, match="0-255"):
        from_arrays(images.astype("float32") / 255.0 + 0.5)
    with pytest.raises(ValueError, match="channels"):
        from_arrays(np.zeros((4, 8, 8), "uint8"))
    with pytest.raises(ValueError, match="empty"):
        from_arrays(np.zeros((0, 8, 8, 3), "uint8"))
    with pytest.raises(TypeError, match="batch_sizes"):
        from_arrays(images, batch_sizes=2)


def test_grey_arrays_convert_to_rgb_only_when_asked():
    grey = np.arange(2 * 8 * 8).reshape(2, 8, 8, 1).astype("uint8")
    (kept,) = list(from_arrays(grey, batch_size=2, mean=0, std=1))
    assert kept.shape[-1] == 1
    (rgb,) = list(from_arrays(grey, channels=3, batch_size=2, mean=0, std=1))
    np.testing.assert_allclose(rgb[..., 0], rgb[..., 2])
    np.testing.assert_allclose(rgb[..., :1], kept)


def test_augmentation_ranges_shapes_and_determinism():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(16, 40, 30, 3)).astype("uint8")
    kwargs = dict(image_size=16, batch_size=16, augment=True, shuffle=True,
                  seed=3, mean=0.0, std=1.0)
    ds = from_arrays(images, **kwargs)
    first, second = [np.asarray(next(iter(ds))) for _ in range(2)]
    assert first.shape == (16, 16, 16, 3) and first.dtype == np.float32
    # Pixels stay inside the source range: crop + bilinear resize only.
    assert first.min() >= 0.0 and first.max() <= 1.0
    # New crops every pass, the same sequence for the same seed.
    assert not np.allclose(first, second)
    again = np.asarray(next(iter(from_arrays(images, **kwargs))))
    np.testing.assert_array_equal(first, again)


def test_crop_boxes_follow_scale_and_ratio():
    prep = ImagePreprocessor(8, augment=True, scale=(0.67, 1.0),
                             ratio=(3 / 4, 4 / 3))
    boxes = np.array([
        prep.crop_box(tf.constant([i, 7], "int64")).numpy()
        for i in range(300)
    ])
    heights = boxes[:, 2] - boxes[:, 0]
    widths = boxes[:, 3] - boxes[:, 1]
    assert np.all(boxes >= -1e-6) and np.all(boxes <= 1 + 1e-6)
    area = heights * widths
    # Clipping a side to the image can only shrink the area below `scale`.
    assert area.max() <= 1.0 + 1e-6 and np.median(area) > 0.67
    assert np.all(widths / heights <= 4 / 3 + 1e-4)
    assert np.all(widths / heights >= 3 / 4 - 1e-4)
    with pytest.raises(ValueError, match="scale"):
        ImagePreprocessor(8, augment=True, scale=(0.0, 1.0))


def test_flip_mirrors_the_image():
    image = np.zeros((8, 8, 1), "uint8")
    image[:, :2] = 255
    prep = ImagePreprocessor(8, augment=True, scale=(1.0, 1.0),
                             ratio=(1.0, 1.0), mean=0, std=1)
    outs = [prep(tf.constant(image), tf.constant([s, 0], "int64")).numpy()
            for s in range(20)]
    left = sum(o[:, 0].mean() > 0.9 for o in outs)
    right = sum(o[:, -1].mean() > 0.9 for o in outs)
    assert left + right == 20 and left > 0 and right > 0


def _write_images(folder, count, size=(12, 10), mode="RGB", fmt="png"):
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(count)
    channels = 3 if mode == "RGB" else 1
    for i in range(count):
        pixels = rng.integers(0, 256, size=(*size, channels)).astype("uint8")
        Image.fromarray(pixels.squeeze(-1) if channels == 1 else pixels,
                        mode).save(os.path.join(folder, f"img{i}.{fmt}"))


def test_folder_of_png_and_jpeg_unlabeled_and_labelled(tmp_path):
    _write_images(tmp_path / "cats", 3, fmt="png")
    _write_images(tmp_path / "dogs", 2, fmt="jpg", mode="L")  # grey JPEGs
    (tmp_path / "notes.txt").write_text("not an image")
    ds = from_folder(str(tmp_path), image_size=8, batch_size=8)
    (batch,) = list(ds)
    assert batch.shape == (5, 8, 8, 3)  # grey files converted to RGB
    assert len(ds.file_paths) == 5 and ds.class_names is None
    labelled = from_folder(str(tmp_path), image_size=8, batch_size=8,
                           labels="inferred")
    ((images, labels),) = list(labelled)
    assert labelled.class_names == ["cats", "dogs"]
    np.testing.assert_array_equal(labels, [0, 0, 0, 1, 1])
    # A grey JPEG is stored grey: its three channels come out equal.
    np.testing.assert_allclose(
        images[3, ..., 0] * 0.229 + 0.485, images[3, ..., 1] * 0.224 + 0.456,
        atol=1e-5)


def test_folder_errors_and_unreadable_files(tmp_path):
    with pytest.raises(ValueError, match="No image files"):
        from_folder(str(tmp_path), image_size=8)
    with pytest.raises(ValueError, match="existing folder"):
        from_folder(str(tmp_path / "missing"), image_size=8)
    _write_images(tmp_path, 2)
    bad = tmp_path / "broken.png"
    data = open(tmp_path / "img0.png", "rb").read()
    bad.write_bytes(data[: len(data) // 2])  # truncated PNG
    with pytest.warns(UserWarning, match="broken.png"):
        ds = from_folder(str(tmp_path), image_size=8, batch_size=8)
    assert next(iter(ds)).shape[0] == 2
    with pytest.raises(ValueError, match="broken.png"):
        from_folder(str(tmp_path), image_size=8, on_error="raise")
    with pytest.raises(ValueError, match="class subfolder"):
        from_folder(str(tmp_path), image_size=8, labels="inferred",
                    on_error="warn")


def test_tfds_by_name_with_mock_data():
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=5):
        ds = from_tfds("mnist", "train", image_size=16, channels=3,
                       with_labels=True, batch_size=4, augment=True)
        got = list(ds)
        assert [tuple(x.shape) for x, _ in got] == [(4, 16, 16, 3), (1, 16, 16, 3)]
        assert all(y.dtype == tf.int32 for _, y in got)
        with pytest.raises(ValueError, match="no label feature 'digit'"):
            from_tfds("mnist", "train", with_labels=True, label_key="digit")


def test_digits_splits_are_fixed_disjoint_and_stratified():
    train, train_y = load_digits("train", image_size=8)
    val, val_y = load_digits("validation", image_size=8)
    test, test_y = load_digits("test", image_size=16, channels=1)
    assert (len(train), len(val), len(test)) == (1259, 179, 359)
    assert test.shape == (359, 16, 16, 1)
    rows = {x.tobytes() for x in train}
    assert not any(x.tobytes() in rows for x in val)
    for labels in (train_y, val_y, test_y):
        counts = np.bincount(labels, minlength=10)
        assert counts.min() >= 0.9 * counts.max()
    again, _ = load_digits("train", image_size=8)
    np.testing.assert_array_equal(train, again)
    with pytest.raises(ValueError, match="split"):
        load_digits("dev")


def test_builtin_and_stratified_subset():
    images, labels = load_builtin("synthetic", "validation", image_size=16)
    assert images.shape == (256, 16, 16, 3) and labels.shape == (256,)
    picked = stratified_subset(labels, 0.1, seed=1)
    assert set(np.unique(labels[picked])) == set(np.unique(labels))
    assert not np.array_equal(picked, stratified_subset(labels, 0.1, seed=2))
    first, first_labels = load_builtin("digits", num_images=5, image_size=8)
    whole, whole_labels = load_builtin("digits", image_size=8)
    np.testing.assert_array_equal(first, whole[:5])
    np.testing.assert_array_equal(first_labels, whole_labels[:5])
    with pytest.raises(ValueError, match="num_images=2000"):
        load_builtin("digits", num_images=2000)
    with pytest.raises(ValueError, match="num_images"):
        load_builtin("synthetic", num_images=0)


def test_grey_batches_for_an_rgb_model_fail_clearly():
    from keras_simmim import SimMIMModel
    from tests.conftest import tiny_vit

    model = SimMIMModel(tiny_vit(), mask_patch_size=8)
    # ImageNet statistics have three values: a grey image is not silently
    # broadcast to RGB by the normalisation (the default stays grey).
    with pytest.raises(ValueError, match="3 values but the images have 1"):
        from_arrays(np.zeros((4, 32, 32, 1), "uint8"),
                    mean=(0.485, 0.456, 0.406))
    grey = from_arrays(np.zeros((4, 32, 32, 1), "uint8"), batch_size=4)
    assert grey.element_spec.shape[-1] == 1
    with pytest.raises(ValueError, match=r"channels.*\(None, 32, 32, 3\)"):
        model.fit(grey, epochs=1, verbose=0)
    # Converted explicitly, the same images train.
    rgb = from_arrays(np.zeros((4, 32, 32, 1), "uint8"), channels=3,
                      batch_size=4)
    SimMIMModel(tiny_vit(), mask_patch_size=8).fit(rgb, epochs=1, verbose=0)
