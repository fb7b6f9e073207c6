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
from keras_simmim.layers.mask_strategies import STRATEGIES
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



side = mostly(st.integers(1, 3).map(lambda k: 16 * k), st.integers(1, 48))


@cases(120)
@given(
    mask_patch_size=mostly(
        st.sampled_from([8, 4, 16, 8, 4, 2, 32, 12, 0, -4]), odds=6
    ),
    model_patch_size=mostly(st.sampled_from([4, 2, 1, 4, 8, 0, -1]), odds=6),
    mask_ratio=mostly(st.floats(0.05, 0.95), odds=6),
    size=st.tuples(side, side),
    batch=st.integers(1, 3),
    strategy=mostly(st.sampled_from(STRATEGIES), odds=8),
)
def test_masking_works_or_says_why(
    mask_patch_size, model_patch_size, mask_ratio, size, batch, strategy
):
    try:
        layer = RandomPatchMasking(
            mask_patch_size, model_patch_size, mask_ratio, seed=0,
            strategy=strategy,
        )
        mask = to_numpy(layer(np.zeros((batch, *size, 3), "float32")))
    except (ValueError, TypeError) as error:
        event(f"refused: {type(error).__name__}")
        message = str(error)
        assert any(
            name in message
            for name in ("mask_patch_size", "model_patch_size", "mask_ratio",
                         "height", "width", "size", "strategy")
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
    loss=mostly(st.sampled_from(["l1", "mse", "smooth_l1"]), odds=8),
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


def tiny_cnn():
    """A functional CNN that takes any image size (output stride 4)."""
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same")(inputs)
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same")(x)
    return keras.Model(inputs, x)


OVERRIDE_NAMES = ("image_shape", "model_patch_size", "encoder_stride")


@cases(50)
@given(
    family=st.sampled_from(["vit", "cnn"]),
    image_shape=mostly(
        st.sampled_from(
            [(32, 32, 3), (32, 32, 3), (16, 32, 3), None, (24, 24, 1),
             (20, 20, 3), (0, 8, 3)]
        )
    ),
    model_patch_size=mostly(
        st.sampled_from([None, None, 4, 8, 2, 3, 0]), odds=6
    ),
    encoder_stride=mostly(st.sampled_from([None, None, 4, 8]), odds=6),
    mask_patch_size=st.sampled_from([8, 16]),
)
def test_overrides_work_or_say_why(
    family, image_shape, model_patch_size, encoder_stride, mask_patch_size
):
    backbone = tiny_vit() if family == "vit" else tiny_cnn()
    overrides = dict(
        image_shape=image_shape, model_patch_size=model_patch_size,
        encoder_stride=encoder_stride,
    )
    try:
        model = SimMIMModel(
            backbone, mask_patch_size=mask_patch_size, seed=0, **overrides
        )
    except (ValueError, TypeError) as error:
        event(f"{family} refused: {type(error).__name__}")
        message = str(error)
        assert any(
            name in message
            for name in OVERRIDE_NAMES + ("mask_patch_size", "height", "width")
        ), message
        return
    event(f"{family} built")
    height, width, channels = model.image_shape
    if image_shape is not None:
        assert model.image_shape == tuple(image_shape)
    if model_patch_size is not None:
        assert model.patch_size == model_patch_size
    images = np.zeros((2, height, width, channels), "float32")
    out = model(images)
    assert tuple(out["reconstruction"].shape) == (2, height, width, channels)
    p = model.patch_size
    assert tuple(out["mask"].shape) == (2, height // p, width // p)
    # The overrides survive serialisation.
    clone = SimMIMModel.from_config(model.get_config())
    assert (clone.image_shape, clone.patch_size) == (model.image_shape, p)


@pytest.fixture(scope="module")
def preset_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("preset") / "tiny"
    SimMIMModel(tiny_vit(), mask_patch_size=8, seed=0).save_to_preset(path)
    return path


VALID_OVERRIDES = {
    "mask_patch_size": st.sampled_from([4, 8, 16]),
    "mask_ratio": st.floats(0.1, 0.9),
    "loss": st.sampled_from(["l1", "mse", "smooth_l1"]),
    "seed": st.one_of(st.none(), st.integers(0, 9)),
}


@cases(30)
@given(
    preset=mostly(
        st.just("preset"),
        st.sampled_from(["missing", "file", "empty", None, 3, b"x"]),
        odds=3,
    ),
    overrides=st.lists(
        st.sampled_from([*VALID_OVERRIDES, "colour"]), max_size=2, unique=True
    ).flatmap(
        lambda keys: st.fixed_dictionaries(
            {key: mostly(VALID_OVERRIDES.get(key, anything)) for key in keys}
        )
    ),
)
def test_from_preset_works_or_says_why(preset_dir, tmp_path_factory,
                                       preset, overrides):
    if preset == "preset":
        preset = preset_dir
    elif preset in ("missing", "file", "empty"):
        root = tmp_path_factory.mktemp("bad")
        preset = root / preset
        if preset.name == "file":
            preset.write_text("not a preset")
        elif preset.name == "empty":
            preset.mkdir()
    try:
        model = SimMIMModel.from_preset(preset, **overrides)
    except (ValueError, TypeError) as error:
        event(f"refused: {type(error).__name__}")
        message = str(error)
        assert any(
            name in message for name in ("preset", *overrides)
        ), message
        return
    event("loaded")
    for name, value in overrides.items():
        attribute = {"loss": "loss_type"}.get(name, name)
        assert getattr(model, attribute) == value
    out = model.predict(np.zeros((1, 32, 32, 3), "float32"), verbose=0)
    assert out["reconstruction"].shape == (1, 32, 32, 3)
