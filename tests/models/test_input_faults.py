"""Fault kinds users of other SimMIM code bases reported, tried here:
inputs whose static shape is unknown at trace time, and a CNN's mask grid
(`mask_patch_size` that is not a multiple of the CNN's output stride)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_simmim import MAEModel
from keras_simmim import SimMIMModel
from tests.conftest import tiny_vit
from tests.conftest import to_numpy


def test_both_documented_mask_layouts_after_one_another(images):
    model = SimMIMModel(tiny_vit(), mask_patch_size=8, seed=0)
    mask = np.zeros((2, 8, 8), "float32")
    mask[:, :4] = 1.0
    grid = model.predict({"images": images[:2], "mask": mask}, verbose=0)
    flat = model.predict({"images": images[:2], "mask": mask.reshape(2, 64)},
                         verbose=0)
    np.testing.assert_array_equal(grid["reconstruction"],
                                  flat["reconstruction"])
    np.testing.assert_array_equal(flat["mask"], mask.astype(bool))
    # A mask of the wrong size after those (TensorFlow now traces with
    # relaxed, unknown shapes) fails; it is never reshaped into another
    # batch.
    with pytest.raises(Exception, match=r"mask|reshape"):
        model.predict({"images": images[:2], "mask": np.zeros((2, 4, 4))},
                      verbose=0)


def shapeless(dataset):
    """The same elements with their static shape lost, as after
    `tf.py_function` in a user's pipeline."""

    def forget(element):
        out = tf.py_function(lambda x: x, [element], tf.float32)
        return out  # shape and rank unknown

    return dataset.map(forget)


@pytest.mark.parametrize("model_cls", [SimMIMModel, MAEModel])
def test_pipeline_without_static_shapes_trains(model_cls, images):
    kwargs = ({"mask_patch_size": 8} if model_cls is SimMIMModel
              else {"decoder_dim": 16, "decoder_depth": 1,
                    "decoder_num_heads": 2})
    model = model_cls(tiny_vit(num_layers=1), seed=0, **kwargs)
    data = shapeless(tf.data.Dataset.from_tensor_slices(images[:8]).batch(4))
    assert data.element_spec.shape.rank is None
    history = model.fit(data, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    outputs = model.predict(data, verbose=0)
    assert outputs["reconstruction"].shape == (8, 32, 32, 3)


def test_mask_without_static_shape_in_a_pipeline(images):
    model = SimMIMModel(tiny_vit(num_layers=1), mask_patch_size=8, seed=0)
    mask = np.zeros((8, 64), "float32")
    mask[:, :32] = 1.0
    data = tf.data.Dataset.from_tensor_slices(
        {"images": images[:8], "mask": mask}).batch(4)

    def forget(element):
        return {key: tf.py_function(lambda x: x, [value], tf.float32)
                for key, value in element.items()}

    outputs = model.predict(data.map(forget), verbose=0)
    expected = model.predict({"images": images[:8], "mask": mask}, verbose=0)
    np.testing.assert_allclose(outputs["reconstruction"],
                               expected["reconstruction"], atol=1e-6)


def test_wrong_image_size_is_still_named_when_shapes_are_known(images):
    model = SimMIMModel(tiny_vit(num_layers=1), mask_patch_size=8)
    with pytest.raises(ValueError, match=r"images.*\(2, 16, 16, 3\)"):
        model(np.zeros((2, 16, 16, 3), "float32"))
    with pytest.raises(ValueError, match=r"mask.*\(2, 63\)"):
        model({"images": images[:2], "mask": np.zeros((2, 63))})


def resnet50(size=64):
    return keras.applications.ResNet50(
        weights=None, include_top=False, input_shape=(size, size, 3))


def test_cnn_mask_grid_follows_the_mask_patch_size():
    # ResNet-50 has output stride 32; a 16 px block masks a 16 px grid.
    model = SimMIMModel(resnet50(), mask_patch_size=16, mask_ratio=0.5,
                        seed=0)
    assert (model.adapter.stride, model.patch_size) == (32, 16)
    assert model.mask_shape == (4, 4)
    mask = to_numpy(model.predict(
        np.zeros((2, 64, 64, 3), "float32"), verbose=0)["mask"])
    assert mask.shape == (2, 4, 4)
    assert mask.reshape(2, -1).sum(axis=1).tolist() == [8, 8]
    # The default, 32 px blocks, keeps the stride as the grid.
    assert SimMIMModel(resnet50(), mask_patch_size=32).patch_size == 32


def test_cnn_grid_errors_say_which_argument_to_pass():
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, strides=4, padding="same")(inputs)
    cnn = keras.Model(inputs, x)
    # The largest grid cell dividing the stride (4) and the block (2).
    assert SimMIMModel(cnn, mask_patch_size=2).patch_size == 2
    assert SimMIMModel(cnn, mask_patch_size=8).patch_size == 4
    with pytest.raises(ValueError, match="model_patch_size`.*divisor of 12"):
        SimMIMModel(cnn, mask_patch_size=12, model_patch_size=8)
    with pytest.raises(ValueError, match="ViTBackbone fixes its patch size"):
        SimMIMModel(tiny_vit(), mask_patch_size=6)
