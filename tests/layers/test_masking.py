import math

import keras
import numpy as np
import pytest

from keras_simmim.layers import RandomPatchMasking
from tests.conftest import to_numpy


def draw(layer, shape):
    return to_numpy(layer(np.zeros(shape, "float32")))


@pytest.mark.parametrize(
    "shape, mask_patch, model_patch, ratio",
    [
        ((4, 32, 32, 3), 8, 4, 0.6),
        ((3, 32, 48, 3), 16, 4, 0.3),  # non-square
        ((2, 224, 224, 3), 32, 16, 0.6),  # SimMIM ViT: 30 of 49 blocks
        ((2, 192, 192, 3), 32, 4, 0.6),  # SimMIM Swin: 22 of 36 blocks
        ((5, 24, 40, 1), 8, 8, 0.75),
    ],
)
def test_exact_block_count_and_structure(shape, mask_patch, model_patch, ratio):
    layer = RandomPatchMasking(mask_patch, model_patch, ratio, seed=1)
    mask = draw(layer, shape)
    batch, height, width = shape[:3]
    scale = mask_patch // model_patch
    assert mask.dtype == bool
    assert mask.shape == (batch, height // model_patch, width // model_patch)
    rows, cols = height // mask_patch, width // mask_patch
    expected = math.ceil(rows * cols * ratio)
    # Every scale x scale cell of the model grid is one block: constant.
    blocks = mask.reshape(batch, rows, scale, cols, scale)
    assert np.all(blocks == blocks[:, :, :1, :, :1])
    per_image = blocks[:, :, 0, :, 0].reshape(batch, -1).sum(axis=1)
    np.testing.assert_array_equal(per_image, expected)
    assert mask.reshape(batch, -1).sum(1).tolist() == [expected * scale**2] * batch


def test_paper_counts():
    vit = RandomPatchMasking(32, 16, 0.6)
    swin = RandomPatchMasking(32, 4, 0.6)
    assert vit.num_masked_blocks(224, 224) == 30
    assert swin.num_masked_blocks(192, 192) == 22
    assert draw(vit, (1, 224, 224, 3)).sum() == 120
    assert draw(swin, (1, 192, 192, 3)).sum() == 1408


def test_masks_differ_across_images_and_calls():
    layer = RandomPatchMasking(8, 4, 0.5, seed=0)
    first = draw(layer, (8, 32, 32, 3))
    second = draw(layer, (8, 32, 32, 3))
    assert len({m.tobytes() for m in first}) > 1
    assert not np.array_equal(first, second)


def test_blocks_are_chosen_uniformly():
    layer = RandomPatchMasking(8, 8, 0.6, seed=3)
    mask = draw(layer, (4000, 32, 32, 1)).reshape(4000, -1)
    frequency = mask.mean(axis=0)
    expected = math.ceil(16 * 0.6) / 16
    # Binomial std of a frequency over 4000 draws is about 0.008.
    np.testing.assert_allclose(frequency, expected, atol=0.04)


def test_seed_reproducibility():
    a = RandomPatchMasking(8, 4, 0.6, seed=42)
    b = RandomPatchMasking(8, 4, 0.6, seed=42)
    c = RandomPatchMasking(8, 4, 0.6, seed=43)
    seq_a = [draw(a, (4, 32, 32, 3)) for _ in range(3)]
    seq_b = [draw(b, (4, 32, 32, 3)) for _ in range(3)]
    seq_c = [draw(c, (4, 32, 32, 3)) for _ in range(3)]
    for x, y in zip(seq_a, seq_b):
        np.testing.assert_array_equal(x, y)
    assert any(not np.array_equal(x, z) for x, z in zip(seq_a, seq_c))


def test_symbolic_output_shape():
    layer = RandomPatchMasking(16, 4, 0.6)
    out = layer(keras.KerasTensor((None, 32, 48, 3)))
    assert out.shape == (None, 8, 12)
    assert out.dtype == "bool"


def test_config_round_trip():
    layer = RandomPatchMasking(16, 8, 0.4, seed=7, name="m")
    clone = RandomPatchMasking.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    np.testing.assert_array_equal(
        draw(layer, (2, 32, 32, 3)), draw(clone, (2, 32, 32, 3))
    )


def test_mask_patch_not_multiple_of_model_patch():
    with pytest.raises(ValueError, match="mask_patch_size=12.*model_patch_size=8"):
        RandomPatchMasking(12, 8, 0.6)


def test_image_not_divisible_by_mask_patch():
    layer = RandomPatchMasking(16, 4, 0.6)
    with pytest.raises(ValueError, match=r"\(40, 32\).*mask_patch_size`=16"):
        layer(np.zeros((1, 40, 32, 3), "float32"))


@pytest.mark.parametrize("ratio", [0.0, 1.0, -0.2, 1.5])
def test_ratio_outside_open_interval(ratio):
    with pytest.raises(ValueError, match="mask_ratio"):
        RandomPatchMasking(32, 16, ratio)


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"mask_ratio": "0.6"}, TypeError),
        ({"mask_patch_size": 0}, ValueError),
        ({"model_patch_size": 4.0}, TypeError),
        ({"seed": 1.5}, TypeError),
    ],
)
def test_bad_argument_types(kwargs, error):
    with pytest.raises(error, match=list(kwargs)[0]):
        RandomPatchMasking(**kwargs)


def test_rejects_non_image_input():
    with pytest.raises(ValueError, match="batch, height, width, channels"):
        RandomPatchMasking(8, 4, 0.5)(np.zeros((2, 32, 32), "float32"))
