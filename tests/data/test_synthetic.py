import numpy as np
import pytest

from keras_simmim.data import denormalize
from keras_simmim.data import normalize
from keras_simmim.data import synthetic_scenes


def test_scenes_are_deterministic_and_labelled():
    a, la = synthetic_scenes(16, image_size=(24, 40), seed=5)
    b, lb = synthetic_scenes(16, image_size=(24, 40), seed=5)
    c, _ = synthetic_scenes(16, image_size=(24, 40), seed=6)
    assert a.shape == (16, 24, 40, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(la, lb)
    assert not np.array_equal(a, c)
    assert set(np.unique(synthetic_scenes(200, seed=0)[1])) == {0, 1, 2}
    # Images are not flat: each has real structure to reconstruct.
    assert np.all(a.reshape(16, -1).std(axis=1) > 5)


def test_scene_argument_errors():
    with pytest.raises(ValueError, match="num_images"):
        synthetic_scenes(0)
    with pytest.raises(ValueError, match="at least 8"):
        synthetic_scenes(2, image_size=4)
    with pytest.raises(TypeError, match="image_size"):
        synthetic_scenes(2, image_size=(32.0, 32))


def test_normalize_round_trip():
    pixels = np.random.default_rng(0).integers(0, 256, (2, 4, 4, 3)).astype("uint8")
    x = normalize(pixels)
    assert x.dtype == np.float32
    np.testing.assert_allclose(x.mean(), ((pixels / 255.0 - 0.45) / 0.226).mean(), atol=0.1)
    np.testing.assert_array_equal(denormalize(x), pixels)
