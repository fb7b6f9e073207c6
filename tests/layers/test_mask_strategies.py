import keras
import numpy as np
import pytest

from keras_simmim import SimMIMModel
from keras_simmim.layers import RandomPatchMasking
from keras_simmim.layers.mask_strategies import STRATEGIES
from keras_simmim.layers.mask_strategies import average_distance
from tests.conftest import tiny_vit
from tests.conftest import to_numpy


def draw(strategy, ratio, size=(32, 32), batch=4, block=4, seed=0, steps=2):
    layer = RandomPatchMasking(block, block, ratio, seed=seed,
                               strategy=strategy)
    images = np.zeros((batch, *size, 3), "float32")
    return [to_numpy(layer(images)) for _ in range(steps)]


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("ratio", [0.1, 0.3, 0.45, 0.6, 0.8])
def test_every_strategy_masks_the_exact_count_and_varies(strategy, ratio):
    for size in ((32, 32), (24, 40)):
        first, second = draw(strategy, ratio, size)
        rows, cols = size[0] // 4, size[1] // 4
        assert first.shape == (4, rows, cols) and first.dtype == bool
        expected = int(np.ceil(rows * cols * ratio - 1e-9))
        for mask in (first, second):
            assert mask.reshape(4, -1).sum(1).tolist() == [expected] * 4
        # A new mask each step and each image (central is fixed by design
        # when its square fills whole rings).
        if strategy != "central":
            assert (first != second).any()
            assert len({image.tobytes() for image in first}) > 1


def test_grid_is_a_lattice_with_a_random_phase():
    masks = np.concatenate(draw("grid", 0.25, batch=8))
    phases = set()
    for mask in masks:
        rows, cols = np.nonzero(mask)
        assert len(set(rows % 2)) == 1 and len(set(cols % 2)) == 1
        phases.add((rows[0] % 2, cols[0] % 2))
    assert len(phases) > 1
    for mask in np.concatenate(draw("grid", 0.5, batch=8)):
        # A checkerboard: no two masked blocks side by side.
        assert not (mask[1:] & mask[:-1]).any()
        assert not (mask[:, 1:] & mask[:, :-1]).any()


def test_central_masks_the_innermost_blocks():
    (mask,) = draw("central", 0.25, batch=1, steps=1)  # 16 of 64: 4x4
    expected = np.zeros((8, 8), bool)
    expected[2:6, 2:6] = True
    np.testing.assert_array_equal(mask[0], expected)


def test_blockwise_is_more_clustered_than_random():
    blockwise = np.concatenate(draw("blockwise", 0.4, (56, 56), batch=8))
    random = np.concatenate(draw("random", 0.4, (56, 56), batch=8))
    assert average_distance(blockwise) > 1.5 * average_distance(random)


def test_average_distance_on_hand_computed_masks():
    centre = np.zeros((3, 3), bool)
    centre[1, 1] = True
    assert average_distance(centre) == 1.0
    # 6x6 pixels with the centre 2x2 masked: every masked pixel touches
    # a visible one.
    assert average_distance(centre, pixels_per_cell=2) == 1.0
    row = np.array([[0, 1, 1, 1, 0]], bool)  # distances 1, 2, 1
    assert average_distance(row) == pytest.approx(4 / 3)
    square = np.zeros((5, 5), bool)
    square[1:4, 1:4] = True  # 8 border pixels at 1, the centre at 2
    assert average_distance(square) == pytest.approx(10 / 9)
    # Batches average over all masked pixels.
    assert average_distance(np.stack([centre, centre])) == 1.0


def test_average_distance_errors():
    with pytest.raises(ValueError, match="masks nothing"):
        average_distance(np.zeros((2, 2), bool))
    with pytest.raises(ValueError, match="entirely"):
        average_distance(np.ones((1, 2, 2), bool))
    with pytest.raises(ValueError, match="pixels_per_cell"):
        average_distance(np.eye(3, dtype=bool), pixels_per_cell=0)
    with pytest.raises(ValueError, match="shape"):
        average_distance(np.zeros(4, bool))


def test_strategy_errors():
    with pytest.raises(ValueError, match="strategy.*'stripes'"):
        RandomPatchMasking(8, 4, 0.5, strategy="stripes")
    with pytest.raises(ValueError, match="mask_patch_size.*model_patch_size"):
        RandomPatchMasking(8, 4, 0.5, strategy="patch")
    with pytest.raises(ValueError, match="mask_strategy.*nope"):
        SimMIMModel(tiny_vit(), mask_patch_size=8, mask_strategy="nope")


def test_model_trains_with_a_strategy_and_round_trips(images, tmp_path):
    keras.utils.set_random_seed(0)
    model = SimMIMModel(tiny_vit(), mask_patch_size=4, mask_ratio=0.5,
                        mask_strategy="blockwise", seed=0)
    model.compile(optimizer=keras.optimizers.AdamW(2e-3))
    history = model.fit(images, batch_size=8, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert history.history["loss"][1] < history.history["loss"][0]
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert loaded.masking.strategy == "blockwise"
    assert loaded.get_config()["mask_strategy"] == "blockwise"
