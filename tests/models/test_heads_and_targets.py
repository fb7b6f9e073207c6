"""Heads (linear, MLP, transformer) and the colour-classification target."""

import keras
import numpy as np
import pytest

from keras_simmim import SimMIMModel
from keras_simmim.layers import HEADS
from keras_simmim.layers import MLPReconstructionHead
from keras_simmim.layers import TransformerReconstructionHead
from keras_simmim.models import color_classification_loss
from keras_simmim.models import decode_color_logits
from keras_simmim.models import masked_reconstruction_loss
from tests.conftest import tiny_vit
from tests.conftest import to_numpy


def fixed_mask(batch, seed=0):
    return np.random.default_rng(seed).random((batch, 8, 8)) < 0.6


def test_color_loss_and_decoding_by_hand():
    # One image, 2x2 pixels, 1 channel, 4 bins over [0, 1): centres
    # 0.125, 0.375, 0.625, 0.875; out-of-range values go to the end bins.
    target = np.array([0.1, 0.3, 0.99, 1.5], "float32").reshape(1, 2, 2, 1)
    bins = [0, 1, 3, 3]
    logits = np.zeros((1, 2, 2, 4), "float32")
    logits[0, 0, 0, 0] = 2.0  # confident and right
    logits[0, 0, 1, 2] = 2.0  # confident and wrong
    mask = np.array([[[True, True], [True, False]]])  # 1x1-pixel patches
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected = -np.mean([log_probs.reshape(4, 4)[i, bins[i]]
                         for i in range(3)])
    got = color_classification_loss(target, logits, mask, 4, (0.0, 1.0))
    np.testing.assert_allclose(float(to_numpy(got)), expected, rtol=1e-5)
    got_all = color_classification_loss(target, logits, mask, 4, (0.0, 1.0),
                                        region="all")
    expected_all = -np.mean([log_probs.reshape(4, 4)[i, bins[i]]
                             for i in range(4)])
    np.testing.assert_allclose(float(to_numpy(got_all)), expected_all,
                               rtol=1e-5)
    decoded = to_numpy(decode_color_logits(logits, 4, (0.0, 1.0)))
    centres = np.array([0.125, 0.375, 0.625, 0.875])
    probs = np.exp(log_probs)
    np.testing.assert_allclose(decoded[..., 0], (probs * centres).sum(-1),
                               rtol=1e-5)
    assert decoded[0, 1, 1, 0] == pytest.approx(0.5)  # uniform logits


def test_color_channels_are_grouped_per_channel():
    # Two channels, 3 bins: channel c's logits are at c*3 .. c*3+2.
    logits = np.full((1, 1, 1, 6), -20.0, "float32")
    logits[..., 2] = 20.0  # channel 0 -> last bin
    logits[..., 3] = 20.0  # channel 1 -> first bin
    decoded = to_numpy(decode_color_logits(logits, 3, (0.0, 3.0)))
    np.testing.assert_allclose(decoded.ravel(), [2.5, 0.5], atol=1e-5)


def test_color_settings_are_checked():
    with pytest.raises(ValueError, match="num_color_bins.*Received: "
                       "num_color_bins=1"):
        SimMIMModel(tiny_vit(), mask_patch_size=8, num_color_bins=1,
                    loss="color_classification")
    with pytest.raises(ValueError, match="num_color_bins"):
        SimMIMModel(tiny_vit(), mask_patch_size=8, num_color_bins=4.0)
    with pytest.raises(ValueError, match="color_range.*low < high"):
        SimMIMModel(tiny_vit(), mask_patch_size=8, color_range=(1, 0))
    with pytest.raises(ValueError, match="color_range.*pair"):
        SimMIMModel(tiny_vit(), mask_patch_size=8, color_range="ab")
    with pytest.raises(ValueError, match="loss.*color_classification"):
        masked_reconstruction_loss(np.zeros((1, 8, 8, 3)),
                                   np.zeros((1, 8, 8, 3)),
                                   np.ones((1, 2, 2)),
                                   loss="color_classification")


def test_head_layers_shapes_and_configs():
    features = np.random.default_rng(0).normal(size=(2, 4, 4, 32))
    for head in (MLPReconstructionHead(4, 3, hidden_dim=16),
                 TransformerReconstructionHead(4, 3, num_layers=1,
                                               hidden_dim=16, num_heads=2)):
        out = to_numpy(head(features.astype("float32")))
        assert out.shape == (2, 16, 16, 3)
        clone = type(head).from_config(head.get_config())
        clone(features.astype("float32"))
        clone.set_weights(head.get_weights())
        np.testing.assert_allclose(
            to_numpy(clone(features.astype("float32"))), out, atol=1e-6)
    # The transformer head mixes information across positions; the MLP
    # head does not.
    changed = features.copy()
    changed[:, 0, 0] += 1.0
    for head, mixes in ((MLPReconstructionHead(4, 3), False),
                        (TransformerReconstructionHead(4, 3, num_layers=1),
                         True)):
        a = to_numpy(head(features.astype("float32")))
        b = to_numpy(head(changed.astype("float32")))
        far = np.abs(a[:, 8:, 8:] - b[:, 8:, 8:]).max()
        assert (far > 1e-4) == mixes, (type(head).__name__, far)
    with pytest.raises(ValueError, match="feature map"):
        MLPReconstructionHead(4, 3)(np.zeros((2, 16, 32), "float32"))


@pytest.mark.parametrize("head,loss", [
    ("mlp", "l1"), ("transformer", "l1"), ("linear", "color_classification"),
])
def test_heads_and_color_target_train_and_round_trip(images, head, loss,
                                                     tmp_path):
    keras.utils.set_random_seed(0)
    model = SimMIMModel(tiny_vit(), mask_patch_size=8, seed=0, head=head,
                        head_options={"num_layers": 1}
                        if head == "transformer" else None,
                        loss=loss, num_color_bins=8, color_range=(-2, 2))
    model.compile(optimizer=keras.optimizers.AdamW(2e-3, weight_decay=0.05))
    probe = {"images": images, "mask": fixed_mask(len(images))}
    before = model.evaluate(probe, batch_size=32, verbose=0)
    model.fit(images, batch_size=8, epochs=6, verbose=0)
    after = model.evaluate(probe, batch_size=32, verbose=0)
    # Colour bins start near log(8) and fall more slowly than pixel losses.
    factor = 0.9 if loss == "color_classification" else 0.85
    assert after < factor * before, (before, after)
    out = model.predict(probe, verbose=0)
    assert out["reconstruction"].shape == images.shape
    if loss == "color_classification":
        assert out["color_logits"].shape == images.shape[:3] + (24,)
        # The decoded reconstruction lies inside the binned range and
        # follows the image better than the range's middle does.
        assert np.all(np.abs(out["reconstruction"]) <= 2.0)
        error = np.abs(out["reconstruction"] - np.clip(images, -2, 2)).mean()
        assert error < np.abs(np.clip(images, -2, 2)).mean()
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.head_kind == head and loaded.loss_type == loss
    np.testing.assert_allclose(
        loaded.predict(probe, verbose=0)["reconstruction"],
        out["reconstruction"], atol=1e-5)


def test_head_choice_errors():
    assert sorted(HEADS) == ["linear", "mlp", "transformer"]
    with pytest.raises(ValueError, match="head.*Received: head='conv'"):
        SimMIMModel(tiny_vit(), mask_patch_size=8, head="conv")
    with pytest.raises(TypeError, match="head_options.*'depth'"):
        SimMIMModel(tiny_vit(), mask_patch_size=8, head="mlp",
                    head_options={"depth": 2})
    with pytest.raises(ValueError, match="num_layers"):
        SimMIMModel(tiny_vit(), mask_patch_size=8, head="transformer",
                    head_options={"num_layers": 0})
