"""The training contract every masked image model shares
(`MaskedImageModel`): weight-decay exclusions, the default optimizer,
regularisation losses, inputs whose static shape is unknown, and the mask
grid of a CNN."""

import keras
import keras_hub
import numpy as np
import pytest

from keras_simmim import MAEModel
from keras_simmim import SimMIMModel
from keras_simmim.models import MaskedImageModel
from keras_simmim.multimodal import MaskedMultimodalModel
from tests.conftest import tiny_vit
from tests.conftest import to_numpy


def tiny_bert():
    return keras_hub.models.BertBackbone(
        vocabulary_size=30, num_layers=1, num_heads=2, hidden_dim=16,
        intermediate_dim=32, max_sequence_length=8)


def build(kind, **kwargs):
    vit = tiny_vit(num_layers=1)
    if kind == "simmim":
        return SimMIMModel(vit, mask_patch_size=8, seed=0, **kwargs)
    if kind == "mae":
        return MAEModel(vit, decoder_dim=16, decoder_depth=1,
                        decoder_num_heads=2, seed=0, **kwargs)
    return MaskedMultimodalModel(
        vit, tiny_bert(), mask_token_id=4, mask_patch_size=8, fusion_dim=16,
        fusion_heads=2, fusion_layers=1, seed=0, **kwargs)


def batch_of(kind, images):
    if kind != "multimodal":
        return images
    n = len(images)
    return {"images": images,
            "token_ids": (np.arange(n * 8).reshape(n, 8) % 25 + 5),
            "padding_mask": np.ones((n, 8), "int32")}


KINDS = ("simmim", "mae", "multimodal")

# The SimMIM / MAE recipe's exclusions, by variable path: every bias, norm
# scale and offset, class and mask tokens, the image position embeddings.
EXEMPT_PATH_PARTS = ("class_token", "mask_token",
                     "vit_patching_and_embedding/position_embedding",
                     "decoder/position_embedding", "image_positions")


def recipe_exempts(variable):
    return (variable.path.endswith("bias")
            or variable.name in ("gamma", "beta")
            or any(part in variable.path for part in EXEMPT_PATH_PARTS))


@pytest.mark.parametrize("kind", KINDS)
def test_every_model_keeps_the_recipe_out_of_weight_decay(kind):
    model = build(kind)
    assert isinstance(model, MaskedImageModel)
    optimizer = model.optimizer
    assert isinstance(optimizer, keras.optimizers.AdamW)
    decayed, exempt = [], []
    for variable in model.trainable_variables:
        uses = optimizer._use_weight_decay(variable)
        assert uses != recipe_exempts(variable), variable.path
        (decayed if uses else exempt).append(variable)
    # keras-hub's 2-D attention biases, whatever their rank.
    two_d_biases = [v for v in exempt
                    if v.name == "bias" and len(v.shape) == 2]
    assert len(two_d_biases) >= 3
    assert all(v.name in ("kernel", "embeddings", "modality_embedding")
               for v in decayed)
    # A user's optimizer gets the same exclusions.
    model.compile(optimizer=keras.optimizers.AdamW(1e-3, weight_decay=0.1))
    assert not model.optimizer._use_weight_decay(exempt[0])
    assert model.optimizer._use_weight_decay(decayed[0])
    model.compile(optimizer=keras.optimizers.AdamW(1e-3, weight_decay=0.1),
                  exclude_no_decay_variables=False)
    assert model.optimizer._use_weight_decay(exempt[0])


@pytest.mark.parametrize("kind", KINDS)
def test_default_optimizer_and_loss_contract(kind, images):
    model = build(kind)
    default = model.default_optimizer()
    if kind == "mae":
        assert (default.beta_2, default.global_clipnorm) == (0.95, None)
    else:
        assert (default.beta_2, default.global_clipnorm) == (0.999, 5.0)
    assert default.weight_decay == 0.05
    schedule = keras.optimizers.schedules.CosineDecay(1e-3, 10)
    assert model.default_optimizer(schedule).learning_rate is not None
    with pytest.raises(ValueError, match="own loss"):
        model.compile(loss="mse")
    # A regularised weight adds its penalty once to the model's own loss.
    x = batch_of(kind, images[:4])
    if kind != "multimodal":
        x = {"images": x, "mask": np.ones((4,) + model.mask_shape) * (
            np.arange(np.prod(model.mask_shape)).reshape(model.mask_shape)
            < model.masking.num_masked_blocks(32, 32) * (
                model.masking.mask_patch_size // model.patch_size) ** 2)}
    y_pred = model(x)
    plain = float(to_numpy(model.compute_loss(x=x, y_pred=y_pred)))
    kernel = model.backbone.get_layer("vit_encoder").weights[2]
    kernel.regularizer = keras.regularizers.L2(0.5)
    penalty = 0.5 * float(np.sum(to_numpy(kernel) ** 2))
    total = float(to_numpy(model.compute_loss(x=x, y_pred=y_pred)))
    np.testing.assert_allclose(total, plain + penalty, rtol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_config_round_trip_keeps_the_contract(kind, tmp_path, images):
    model = build(kind, check_inputs=True)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is type(model)
    assert loaded.check_inputs is True
    assert loaded.image_shape == model.image_shape
    assert loaded.mask_shape == model.mask_shape
    for a, b in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(to_numpy(a), to_numpy(b))
    exempt = [v for v in loaded.trainable_variables if recipe_exempts(v)]
    assert not any(loaded.optimizer._use_weight_decay(v) for v in exempt)
    bad = tmp_path / "truncated.weights.h5"
    bad.write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="truncated.weights.h5"):
        loaded.load_weights(str(bad))
