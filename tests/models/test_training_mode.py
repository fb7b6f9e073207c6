"""`fit()` trains the layers a model calls in training mode on every
backend (Keras's JAX trainer bypasses `__call__`, see
`keras_simmim.utils.training_mode`)."""

import keras
import numpy as np

from keras_simmim import SimMIMModel
from keras_simmim.downstream import SimMIMClassifier
from tests.conftest import to_numpy


def cnn_with_batch_norm():
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same")(inputs)
    x = keras.layers.BatchNormalization(momentum=0.5)(x)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same")(x)
    return keras.Model(inputs, x)


def batch_norm_of(model):
    return next(layer for layer in model.layers
                if isinstance(layer, keras.layers.BatchNormalization))


def test_fit_updates_batch_norm_statistics_inside_the_backbone():
    keras.utils.set_random_seed(0)
    images = np.random.default_rng(0).random((8, 16, 16, 3), "float32") + 3
    backbone = cnn_with_batch_norm()
    model = SimMIMModel(backbone, mask_patch_size=4, image_shape=(16, 16, 3))
    model.compile(optimizer="adam")
    norm = batch_norm_of(backbone)
    model.predict(images, verbose=0)  # inference leaves the statistics
    np.testing.assert_array_equal(to_numpy(norm.moving_mean), 0.0)
    model.fit(images, batch_size=8, epochs=1, verbose=0)
    # momentum 0.5: half of the first batch's mean, which is far from 0
    # for inputs around 3.5.
    assert np.abs(to_numpy(norm.moving_mean)).max() > 1e-3
    assert np.abs(to_numpy(norm.moving_variance) - 1.0).max() > 1e-3

    classifier = SimMIMClassifier(backbone, num_classes=2)
    classifier.compile(optimizer="adam",
                       loss="sparse_categorical_crossentropy")
    before = to_numpy(norm.moving_mean).copy()
    classifier.fit(images, np.arange(8) % 2, batch_size=8, epochs=1,
                   verbose=0)
    assert np.abs(to_numpy(norm.moving_mean) - before).max() > 1e-4
