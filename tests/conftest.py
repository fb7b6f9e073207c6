import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import keras_hub  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402


def tiny_vit(image_shape=(32, 32, 3), patch_size=4, **kwargs):
    """The test suite's ViT: 2 layers, width 32."""
    config = dict(
        image_shape=image_shape,
        patch_size=patch_size,
        num_layers=2,
        num_heads=2,
        hidden_dim=32,
        mlp_dim=64,
    )
    config.update(kwargs)
    return keras_hub.models.ViTBackbone(**config)


def to_numpy(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


@pytest.fixture
def images():
    from keras_simmim.data import normalize
    from keras_simmim.data import synthetic_scenes

    pixels, _ = synthetic_scenes(32, image_size=32, seed=0)
    return normalize(pixels)
