import faulthandler
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import keras_hub  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402


def tiny_vit(image_shape=(32, 32, 3), patch_size=4, **kwargs):
    """The test suite's ViT: one transformer block, width 32 (tests of
    anything per block pass `num_layers=2`). A second block made
    TensorFlow's first fit of a tiny SimMIM 40% slower (8.0 -> 11.2 s);
    JAX's tests gained only about 6% from dropping it."""
    config = dict(
        image_shape=image_shape,
        patch_size=patch_size,
        num_layers=1,
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


# How long a pytest-xdist worker may stay alive after its last test before it
# prints every thread's stack and exits. A worker normally waits there only
# until the other worker's last test ends (a few minutes at most).
WORKER_EXIT_WATCHDOG_SECONDS = 600


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session):
    """A worker that hangs after its last test must not stall the run.

    A CI run once sat at [100%] until CI's time limit: every test had
    reported, and a worker never said it was finished. xdist counts a
    worker that dies after its last test as down, not as a failure, so
    exiting here keeps the run's verdict the tests' and prints where the
    worker hung (on stderr).
    """
    if hasattr(session.config, "workerinput"):
        faulthandler.dump_traceback_later(
            WORKER_EXIT_WATCHDOG_SECONDS, exit=True)
