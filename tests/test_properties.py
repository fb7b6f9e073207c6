"""Property-based tests of the public edges: random constructor arguments and
inputs either work as documented or raise a ValueError/TypeError whose
message names the offending argument. No other exception type escapes.

Example counts are kept small (the model cases build a real model each);
the counts that ran are printed by `pytest -s` via hypothesis statistics.
"""

import keras
import numpy as np
import pytest
from hypothesis import HealthCheck
from hypothesis import event
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from keras_simmim import SimMIMModel
from keras_simmim.layers import RandomPatchMasking
from tests.conftest import tiny_vit
from tests.conftest import to_numpy



def cases(count):
    """Fixed (derandomized) examples, so CI runs the same cases each time."""
    return settings(
        max_examples=count,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[
            HealthCheck.too_slow, HealthCheck.function_scoped_fixture
        ],
    )


anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-64, 64),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=3),
    st.lists(st.integers(0, 8), max_size=3),
)


def mostly(valid, other=anything, odds=4):
    """`valid`, except one time in `odds` `other` (anything at all)."""
    return st.integers(1, odds).flatmap(lambda k: other if k == 1 else valid)



@cases(150)
@given(
    mask_patch_size=mostly(st.sampled_from([8, 4, 16, 2, 32, 12, 0, -4])),
    model_patch_size=mostly(st.sampled_from([4, 2, 1, 8, 0, -1])),
    mask_ratio=mostly(st.floats(0.05, 0.95)),
    size=st.tuples(
        st.one_of(st.integers(1, 6).map(lambda k: 8 * k), st.integers(1, 48)),
        st.one_of(st.integers(1, 6).map(lambda k: 8 * k), st.integers(1, 48)),
    ),
    batch=st.integers(1, 3),
)
def test_masking_works_or_says_why(
    mask_patch_size, model_patch_size, mask_ratio, size, batch
):
    try:
        layer = RandomPatchMasking(
            mask_patch_size, model_patch_size, mask_ratio, seed=0
        )
        mask = to_numpy(layer(np.zeros((batch, *size, 3), "float32")))
    except (ValueError, TypeError) as error:
        event(f"refused: {type(error).__name__}")
        message = str(error)
        assert any(
            name in message
            for name in ("mask_patch_size", "model_patch_size", "mask_ratio",
                         "height", "width", "size")
        ), message
        return
    event("masked")
    rows, cols = size[0] // mask_patch_size, size[1] // mask_patch_size
    factor = mask_patch_size // model_patch_size
    assert mask.shape == (batch, rows * factor, cols * factor)
    blocks = mask[:, ::factor, ::factor].reshape(batch, -1)
    expected = int(np.ceil(rows * cols * mask_ratio - 1e-9))
    assert blocks.sum(axis=1).tolist() == [expected] * batch


@cases(25)
@given(
    mask_patch_size=mostly(st.sampled_from([4, 8, 16, 32]), odds=8),
    mask_ratio=mostly(st.floats(0.01, 0.99), odds=8),
    loss=mostly(st.sampled_from(["l1", "mse"]), odds=8),
    norm_target=mostly(st.booleans(), odds=8),
    norm_target_window=mostly(st.sampled_from([3, 5, 47]), odds=8),
)
def test_model_constructor_works_or_says_why(
    mask_patch_size, mask_ratio, loss, norm_target, norm_target_window
):
    kwargs = dict(
        mask_patch_size=mask_patch_size, mask_ratio=mask_ratio, loss=loss,
        norm_target=norm_target, norm_target_window=norm_target_window,
    )
    try:
        model = SimMIMModel(tiny_vit(), **kwargs)
    except (ValueError, TypeError) as error:
        event(f"refused: {type(error).__name__}")
        assert any(name in str(error) for name in kwargs), str(error)
        return
    event("built")
    out = model.predict(np.zeros((1, 32, 32, 3), "float32"), verbose=0)
    assert out["reconstruction"].shape == (1, 32, 32, 3)


@pytest.fixture(scope="module")
def model():
    return SimMIMModel(tiny_vit(), mask_patch_size=8, seed=0)


shapes = st.lists(st.integers(0, 34), min_size=0, max_size=5).map(tuple)
dtypes = st.sampled_from(["float32", "float16", "int32", "uint8", "bool"])


@cases(60)
@given(
    image_shape=mostly(st.just((2, 32, 32, 3)), shapes),
    image_dtype=dtypes,
    mask_shape=mostly(
        st.sampled_from([None, (2, 64), (2, 8, 8)]), shapes
    ),
    mask_dtype=dtypes,
    extra_key=mostly(st.none(), st.sampled_from(["labels", "image"])),
)
def test_model_inputs_work_or_say_why(
    model, image_shape, image_dtype, mask_shape, mask_dtype, extra_key
):
    images = np.ones(image_shape, image_dtype)
    inputs = {"images": images}
    if mask_shape is not None:
        inputs["mask"] = np.ones(mask_shape, mask_dtype)
    if extra_key is not None:
        inputs[extra_key] = images
    try:
        out = model(inputs)
    except (ValueError, TypeError) as error:
        event(f"refused: {type(error).__name__}")
        assert any(
            word in str(error) for word in ("images", "mask", "keys")
        ), str(error)
        return
    event("ran")
    assert tuple(out["reconstruction"].shape) == (2, 32, 32, 3)
    assert tuple(out["mask"].shape) == (2, 8, 8)
    assert np.isfinite(to_numpy(out["reconstruction"])).all()
    assert keras.backend.standardize_dtype(out["mask"].dtype) == "bool"
