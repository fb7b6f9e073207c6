"""A SimMIM-pretrained DINOv2 whose position table keras-hub keeps at
another size than the images (its presets keep 518 px) saves and reloads
as the same model: the table is not resampled on save and again on load."""

import warnings

import keras
import keras_hub
import numpy as np
import pytest

from keras_simmim import SimMIMModel
from tests.conftest import to_numpy


def dinov2(position_side, image_side=32):
    return keras_hub.models.DINOV2Backbone(
        patch_size=4, num_layers=1, hidden_dim=16, num_heads=2,
        intermediate_dim=32, image_shape=(image_side, image_side, 3),
        position_embedding_shape=(position_side, position_side, 3))


def pretrain(backbone, images):
    model = SimMIMModel(backbone, mask_patch_size=8, seed=0)
    model.compile(optimizer=model.default_optimizer(1e-2))
    model.fit(images, batch_size=8, epochs=1, verbose=0)
    return model


def test_dinov2_with_a_larger_table_reloads_with_the_same_reconstruction(
        images, tmp_path):
    model = pretrain(dinov2(position_side=48), images[:8])
    table = model.backbone.embeddings.interpolated_position_embeddings
    before = to_numpy(table).copy()
    mask = to_numpy(model.masking(images[:4]))
    path = str(tmp_path / "dinov2.keras")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # exact: no warning
        model.save(path)
    # Saving changed the trained table by float rounding only.
    np.testing.assert_allclose(to_numpy(table), before, atol=1e-5)
    expected = to_numpy(model({"images": images[:4], "mask": mask})["reconstruction"])
    loaded = keras.saving.load_model(path)
    got = to_numpy(loaded({"images": images[:4], "mask": mask})["reconstruction"])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    np.testing.assert_array_equal(
        to_numpy(loaded.backbone.embeddings.interpolated_position_embeddings),
        to_numpy(table))


def test_dinov2_with_a_smaller_table_warns_how_far_the_saved_model_is(
        images, tmp_path):
    model = pretrain(dinov2(position_side=16), images[:8])
    with pytest.warns(UserWarning, match="position_embedding_shape"):
        model.save(str(tmp_path / "small.keras"))


def test_dinov2_resizes_and_loads_from_a_preset_at_another_size(
        images, tmp_path):
    """`resize` and `load_backbone` take DINOv2 too: resized up and back
    down, the trained model is unchanged; from a SimMIM preset it loads at
    another size with keras-hub's resampling of the saved table."""
    from keras_simmim.backbones import load_backbone
    from keras_simmim.backbones import resize

    model = pretrain(dinov2(position_side=48), images[:8])
    backbone = model.backbone
    expected = to_numpy(backbone(images[:2]))
    bigger = resize(backbone, (40, 40, 3))
    assert tuple(bigger.image_shape) == (40, 40, 3)
    assert bigger(np.zeros((1, 40, 40, 3), "float32")).shape[1] == 1 + 100
    back = resize(bigger, (32, 32, 3))
    np.testing.assert_allclose(to_numpy(back(images[:2])), expected,
                               atol=1e-5)
    model.save_to_preset(str(tmp_path / "preset"))
    loaded = load_backbone(str(tmp_path / "preset"), image_shape=(40, 40, 3))
    np.testing.assert_allclose(
        to_numpy(loaded.embeddings.interpolated_position_embeddings),
        to_numpy(bigger.embeddings.interpolated_position_embeddings),
        atol=1e-5)
