"""Fine-tuning, layer decay, probes, k-NN and inpainting on real tiny models."""

import keras
import numpy as np
import pytest

from keras_simmim import SimMIMClassifier
from keras_simmim import SimMIMModel
from keras_simmim.downstream import LayerDecayAdamW
from keras_simmim.downstream import extract_features
from keras_simmim.downstream import fit_linear_probe
from keras_simmim.downstream import knn_accuracy
from keras_simmim.downstream import knn_predict
from keras_simmim.downstream import layer_decay_multipliers
from tests.conftest import tiny_vit
from tests.conftest import to_numpy


def test_layer_decay_multipliers_per_layer():
    vit = tiny_vit(num_layers=2)
    scales = layer_decay_multipliers(vit, 0.5)
    embedding = [v.path for v in vit.layers[1].weights]
    assert embedding and all(scales[p] == 0.125 for p in embedding)
    for block, want in (("transformer_block_1", 0.25),
                        ("transformer_block_2", 0.5)):
        paths = [p for p in scales if f"/{block}/" in p]
        assert len(paths) == 16 and all(scales[p] == want for p in paths)
    # The final LayerNorm trains at the full rate, like the head.
    assert not any(p.endswith(("ln/gamma", "ln/beta")) for p in scales)
    assert layer_decay_multipliers(vit, 1.0) == {
        p: 1.0 for p in scales}
    with pytest.raises(ValueError, match="layer_decay"):
        layer_decay_multipliers(vit, 1.5)


def test_layer_decay_groups_of_swin_follow_the_simmim_code():
    import keras_hub

    swin = keras_hub.models.SwinTransformerBackbone(
        image_shape=(32, 32, 3), embed_dim=16, depths=(2, 2),
        num_heads=(2, 4), window_size=4)
    scales = layer_decay_multipliers(swin, 0.5)
    values = sorted(set(scales.values()))
    # Patch embedding 0.5**5, four blocks 0.5**4 .. 0.5**1.
    assert values == [0.5**5, 0.5**4, 0.5**3, 0.5**2, 0.5]
    merging = [p for p in scales if "patch_merging" in p or "reduction" in p]
    assert merging and all(scales[p] == 0.5**3 for p in merging)
    assert len(scales) == len(swin.weights) - 2  # all but the final norm


def test_layer_decay_optimizer_steps_each_layer_at_its_rate(images):
    # Adam's first step moves every weight by lr (its update is
    # sign(g) * lr), so one step shows each variable's rate exactly.
    vit = tiny_vit()
    model = SimMIMClassifier(vit, num_classes=3, head_norm=None)
    model.compile_for_finetuning(
        learning_rate=1e-3, total_steps=100, warmup_steps=0,
        layer_decay=0.5, weight_decay=0.0, clipnorm=None,
    )
    before = {v.path: to_numpy(v).copy() for v in model.trainable_variables}
    model.fit(images[:8], np.arange(8) % 3, batch_size=8, epochs=1, verbose=0)
    scales = model.optimizer.multipliers
    checked = 0
    for v in model.trainable_variables:
        step = np.abs(to_numpy(v) - before[v.path])
        moved = step[step > 1e-7]
        if moved.size < 4:
            continue
        want = 1e-3 * scales.get(v.path, 1.0)
        np.testing.assert_allclose(np.median(moved), want, rtol=0.05,
                                   err_msg=v.path)
        checked += 1
    assert checked > 10


def test_finetuning_learns_and_round_trips(tmp_path, images):
    from keras_simmim.data import synthetic_scenes

    _, labels = synthetic_scenes(32, image_size=32, seed=0)
    model = SimMIMClassifier(tiny_vit(), num_classes=3)
    model.compile_for_finetuning(learning_rate=3e-3, total_steps=60,
                                 layer_decay=0.9, label_smoothing=0.0)
    start = model.evaluate(images, labels, verbose=0)[0]
    model.fit(images, labels, batch_size=8, epochs=15, verbose=0)
    end = model.evaluate(images, labels, verbose=0)[0]
    assert end < 0.7 * start
    path = str(tmp_path / "clf.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.optimizer, LayerDecayAdamW)
    assert loaded.optimizer.multipliers == model.optimizer.multipliers
    np.testing.assert_allclose(
        loaded.predict(images[:4], verbose=0),
        model.predict(images[:4], verbose=0), atol=1e-5)
    # Training continues from the restored optimizer state.
    loaded.fit(images, labels, batch_size=8, epochs=1, verbose=0)


def test_frozen_probe_trains_only_the_head(images):
    vit = tiny_vit(num_layers=2)
    frozen = [to_numpy(v).copy() for v in vit.weights]
    probe = SimMIMClassifier(vit, num_classes=3, feature_layer=1,
                             freeze_backbone=True, head_norm="batch")
    assert len(probe.trainable_variables) == 2  # the dense head
    probe.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(
        from_logits=True))
    probe.fit(images[:8], np.arange(8) % 3, epochs=2, verbose=0)
    for a, v in zip(frozen, vit.weights):
        np.testing.assert_array_equal(a, to_numpy(v))
    with pytest.raises(ValueError, match=r"feature_layer.*\[1, 2\]"):
        SimMIMClassifier(vit, num_classes=3, feature_layer=3)


def test_intermediate_features_are_the_blocks_outputs(images):
    vit = tiny_vit(num_layers=2)
    final = extract_features(vit, images[:4])
    # Block 2's output, pooled, before the final LayerNorm.
    tokens = vit.layers[1](images[:4])  # patch + position embedding
    x = tokens
    for block in vit.get_layer("vit_encoder").encoder_layers:
        x = block(x)
    want_2 = to_numpy(x)[:, 1:].mean(axis=1)
    np.testing.assert_allclose(extract_features(vit, images[:4], 2), want_2,
                               atol=1e-5)
    want_final = to_numpy(vit(images[:4]))[:, 1:].mean(axis=1)
    np.testing.assert_allclose(final, want_final, atol=1e-5)


def test_knn_and_linear_probe_on_separable_features():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 8)) * 4
    labels = np.repeat(np.arange(3), 20)
    feats = centres[labels] + rng.normal(size=(60, 8))
    assert knn_accuracy(feats[::2], labels[::2], feats[1::2], labels[1::2],
                        k=5) == 1.0
    # k=1 returns the nearest neighbour's label (cosine similarity).
    np.testing.assert_array_equal(
        knn_predict(feats, labels, feats, k=1), labels)
    head = fit_linear_probe(feats[::2], labels[::2], 3, epochs=60,
                            learning_rate=3e-2)
    assert head.evaluate(feats[1::2], labels[1::2], verbose=0)[1] > 0.9
    with pytest.raises(ValueError, match="one label per"):
        knn_predict(feats, labels[:5], feats)


def test_inpaint_keeps_visible_pixels_and_fills_masked_ones(images):
    model = SimMIMModel(tiny_vit(), mask_patch_size=8, seed=0)
    mask = np.zeros((4, 4, 4), bool)
    mask[:, 1:3, 1:3] = True  # on the 8-px block grid... expanded below
    grid = mask.repeat(2, 1).repeat(2, 2)  # model-patch grid (8, 8)
    filled = model.inpaint(images[:4], grid)
    pixel = grid.repeat(4, 1).repeat(4, 2)
    np.testing.assert_array_equal(filled[~pixel], images[:4][~pixel])
    out = model.predict({"images": images[:4], "mask": grid}, verbose=0)
    np.testing.assert_allclose(filled[pixel], out["reconstruction"][pixel],
                               atol=1e-6)
    random_filled = model.inpaint(images[:4])
    assert random_filled.shape == images[:4].shape
    with pytest.raises(ValueError, match="mask"):
        model.inpaint(images[:4], mask)  # block grid, not the patch grid
