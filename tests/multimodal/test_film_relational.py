"""FiLM and relational fusion (issue 22): FiLM starts as the unmodulated
backbone and shares its weights, the question (not its padding) changes
the modulated features, the relational module ignores the order of the
cells, `fit` lowers the loss, `.keras` round trips, and the errors."""

import json

import keras
import keras_hub
import numpy as np
import pytest

from keras_simmim.backbones.convnet import stage_ends
from keras_simmim.multimodal import CLASSIFIER_FUSIONS
from keras_simmim.multimodal import FiLM
from keras_simmim.multimodal import FiLMFusion
from keras_simmim.multimodal import FusionClassifier
from keras_simmim.multimodal import RelationalFusion
from tests.conftest import tiny_vit
from tests.conftest import to_numpy

SIZE = 16
LENGTH = 8
VOCAB = 30
RNG = np.random.default_rng(0)
# Bright or dark images, and a question: the answer needs both.
BRIGHT = np.arange(16) % 2
IMAGES = (RNG.normal(size=(16, SIZE, SIZE, 3)) + BRIGHT[:, None, None, None]
          - 0.5).astype("float32")
LENGTHS = RNG.integers(2, LENGTH + 1, size=16)
MASK = np.arange(LENGTH)[None, :] < LENGTHS[:, None]
TOKENS = np.where(MASK, RNG.integers(1, VOCAB, size=(16, LENGTH)),
                  0).astype("int32")
INPUTS = {"images": IMAGES, "token_ids": TOKENS, "padding_mask": MASK}
LABELS = 2 * BRIGHT + (np.arange(16) // 2) % 2
TOKENS[:, 0] = 1 + LABELS % 2  # the question's first word


def residual_cnn():
    """A plain functional CNN: stem, then two residual stages."""
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu",
                            name="stem")(inputs)
    for i, filters in enumerate((8, 16)):
        y = keras.layers.Conv2D(filters, 3, strides=2, padding="same",
                                activation="relu", name=f"down_{i}")(x)
        z = keras.layers.Conv2D(filters, 3, padding="same",
                                name=f"inner_{i}")(y)
        x = keras.layers.ReLU(name=f"out_{i}")(keras.layers.Add()([y, z]))
    return keras.Model(inputs, x)


def image_backbone(family):
    if family == "cnn":
        return residual_cnn()
    if family == "applications":
        # keras.applications needs 32 px at least.
        return keras.applications.ResNet50(
            input_shape=(32, 32, 3), weights=None, include_top=False)
    if family == "resnet":
        # keras-hub's ResNet: its first stack must have 64 filters.
        return keras_hub.models.ResNetBackbone(
            input_conv_filters=[64], input_conv_kernel_sizes=[3],
            stackwise_num_filters=[64, 16], stackwise_num_blocks=[1, 1],
            stackwise_num_strides=[1, 2], block_type="basic_block",
            image_shape=(SIZE, SIZE, 3))
    if family == "vit":
        return tiny_vit(image_shape=(SIZE, SIZE, 3), patch_size=4, num_layers=2)
    if family == "swin":
        return keras_hub.models.SwinTransformerBackbone(
            image_shape=(SIZE, SIZE, 3), patch_size=4, embed_dim=8,
            depths=(1, 1), num_heads=(1, 2), window_size=2, drop_path=0.0)
    if family == "deit":
        return keras_hub.models.DeiTBackbone(
            image_shape=(SIZE, SIZE, 3), patch_size=4, num_layers=1,
            num_heads=2, hidden_dim=8, intermediate_dim=16)
    raise ValueError(family)


def tiny_bert():
    return keras_hub.models.BertBackbone(
        vocabulary_size=VOCAB, num_layers=1, num_heads=2, hidden_dim=16,
        intermediate_dim=32, max_sequence_length=LENGTH)


def classifier(image, fusion, **kwargs):
    keras.utils.set_random_seed(0)
    options = dict(fusion_dim=8, fusion_layers=1)
    options.update(kwargs)
    return FusionClassifier(image, tiny_bert(), num_classes=4, fusion=fusion,
                            **options)


def unmodulated(adapter, images):
    return to_numpy(adapter.encode(adapter.embed(images)))


def random_text(batch, dim=16):
    return np.random.default_rng(batch).normal(
        size=(batch, LENGTH, dim)).astype("float32")


# keras-hub's ResNet: stem (conv1 + pool), then one block per stack. The
# ResNet-50: stem, then the last block of each of its four stages.
POINTS = {
    "cnn": ["stem", "out_0", "out_1"],
    "applications": ["conv1_relu", "conv2_block3_out", "conv3_block4_out",
                     "conv4_block6_out", "conv5_block3_out"],
    "resnet": ["conv1_relu", "stack0_block0_out", "stack1_block0_out"],
    "vit": [32, 32],
    "swin": [16, 16],
}


@pytest.mark.parametrize("family", sorted(POINTS))
def test_film_starts_as_the_backbone_and_shares_its_weights(family):
    backbone = image_backbone(family)
    fusion = FiLMFusion(backbone, dim=8, num_layers=1)
    adapter = fusion.adapter
    expected = POINTS[family]
    if isinstance(expected[0], str):  # functional CNNs: the stage ends
        ends = stage_ends(adapter.features, adapter.image_shape)
        assert [op.name for op, _ in ends] == expected
    else:  # transformers: the channels after each block / stage
        assert list(fusion.point_channels) == expected
    assert fusion.num_points == len(expected)

    images = IMAGES[:2]
    if adapter.image_shape[0] != SIZE:
        images = np.repeat(np.repeat(images, 2, axis=1), 2, axis=2)
    text, mask = random_text(2), MASK[:2]
    reference = unmodulated(adapter, images)
    # At initialisation (gamma = 1, beta = 0) FiLM changes nothing.
    np.testing.assert_allclose(
        to_numpy(fusion.modulated_features(images, text, mask)), reference,
        atol=1e-6)
    # The fusion's weights are its own: none of the backbone's.
    assert len(fusion.weights) == 2 * len(expected)
    assert not {id(v) for v in backbone.weights} & {
        id(v) for v in fusion.weights}

    # Once trained, the question changes the modulated features and the
    # padded text does not.
    rng = np.random.default_rng(1)
    for film in fusion.films:
        film.kernel.assign(0.3 * rng.normal(size=film.kernel.shape))
    out = to_numpy(fusion.modulated_features(images, text, mask))
    assert np.abs(out - reference).max() > 1e-3
    padded = text.copy()
    padded[~mask] = 50.0
    np.testing.assert_allclose(
        to_numpy(fusion.modulated_features(images, padded, mask)), out,
        rtol=1e-5, atol=1e-5)
    other = text.copy()
    other[:, 0] += 1.0
    assert np.abs(to_numpy(fusion.modulated_features(images, other, mask))
                  - out).max() > 1e-3

    # Shared, not copied: a change to the backbone's own weights shows in
    # the modulated path (FiLM back at the identity).
    for film in fusion.films:
        film.kernel.assign(np.zeros(film.kernel.shape))
    kernel = next(v for v in backbone.trainable_weights
                  if len(v.shape) == 4)
    kernel.assign(to_numpy(kernel) + 0.2 * rng.normal(size=kernel.shape))
    changed = unmodulated(adapter, images)
    assert np.abs(changed - reference).max() > 1e-4
    np.testing.assert_allclose(
        to_numpy(fusion.modulated_features(images, text, mask)), changed,
        atol=1e-6)


def test_film_placement_output_is_the_fallback_for_unsplittable_backbones():
    deit = image_backbone("deit")
    with pytest.raises(ValueError, match=r"film_placement.*DeiTBackbone"
                       r"(.|\n)*ResNetBackbone, ViTBackbone"):
        FiLMFusion(deit)
    fusion = FiLMFusion(deit, dim=8, num_layers=1, placement="output")
    assert fusion.num_points == 1
    text = random_text(2)
    np.testing.assert_allclose(
        to_numpy(fusion.modulated_features(IMAGES[:2], text)),
        unmodulated(fusion.adapter, IMAGES[:2]), atol=1e-6)


def test_film_layer_by_hand():
    film = FiLM()
    x = RNG.normal(size=(2, 3, 5, 4)).astype("float32")
    c = RNG.normal(size=(2, 6)).astype("float32")
    np.testing.assert_array_equal(to_numpy(film(x, c)), x)  # identity
    kernel = RNG.normal(size=(6, 8)).astype("float32")
    bias = RNG.normal(size=(8,)).astype("float32")
    film.set_weights([kernel, bias])
    params = c @ kernel + bias
    want = x * (1 + params[:, None, None, :4]) + params[:, None, None, 4:]
    np.testing.assert_allclose(to_numpy(film(x, c)), want, rtol=1e-5,
                               atol=1e-5)
    tokens = x.reshape(2, 15, 4)  # tokens modulate the same way
    np.testing.assert_allclose(to_numpy(film(tokens, c)),
                               want.reshape(2, 15, 4), rtol=1e-5, atol=1e-5)


def test_relational_ignores_the_order_of_the_cells():
    keras.utils.set_random_seed(0)
    fusion = RelationalFusion(dim=8, num_layers=2)
    grid = RNG.normal(size=(2, 3, 4, 5)).astype("float32")
    text = RNG.normal(size=(2, 6, 7)).astype("float32")
    mask = np.array([[1] * 6, [1] * 3 + [0] * 3], bool)
    out = to_numpy(fusion(grid, text, mask))
    assert out.shape == (2, 8)

    # The Relation Network by hand: every ordered pair with the question
    # through g, averaged, then f.
    objects = to_numpy(fusion.objects(grid))
    assert objects.shape == (2, 12, 7)
    # Row-major cells, (x, y) from -1 to 1: cell 5 is row 1, column 1.
    np.testing.assert_allclose(objects[0, 5, 5:], [-1 / 3, 0.0], atol=1e-6)
    np.testing.assert_allclose(objects[1, 11, 5:], [1.0, 1.0])
    np.testing.assert_allclose(objects[..., :5], grid.reshape(2, 12, 5))
    question = (text * mask[..., None]).sum(1) / mask.sum(1)[:, None]
    weights = fusion.get_weights()  # g_0, g_1, f_0, f_1 kernels and biases
    relu = lambda v: np.maximum(v, 0.0)  # noqa: E731
    want = []
    for b in range(2):
        pairs = np.array([np.concatenate([oi, oj, question[b]])
                          for oi in objects[b] for oj in objects[b]])
        h = relu(relu(pairs @ weights[0] + weights[1]) @ weights[2]
                 + weights[3])
        h = relu(relu(h.mean(0) @ weights[4] + weights[5]) @ weights[6]
                 + weights[7])
        want.append(h)
    np.testing.assert_allclose(out, np.array(want), rtol=1e-4, atol=1e-5)

    # Invariant to the order of the cells when their coordinates go with
    # them ...
    order = np.random.default_rng(3).permutation(12)
    shuffled = to_numpy(fusion.relate(objects[:, order], question))
    np.testing.assert_allclose(shuffled, out, rtol=1e-5, atol=1e-5)
    # ... but not when the cells move and the coordinates stay: where a
    # cell is comes from its coordinates.
    moved = grid.reshape(2, 12, 5)[:, order].reshape(2, 3, 4, 5)
    assert np.abs(to_numpy(fusion(moved, text, mask)) - out).max() > 1e-4
    # Padded text changes nothing.
    padded = text.copy()
    padded[~mask] = 9.0
    np.testing.assert_allclose(to_numpy(fusion(grid, padded, mask)), out,
                               rtol=1e-5, atol=1e-5)


def compiled(model):
    model.compile(optimizer=keras.optimizers.Adam(3e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(
                      from_logits=True))
    return model


def assert_round_trip(model, path):
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, FusionClassifier)
    assert json.dumps(loaded.get_config()) == json.dumps(model.get_config())
    np.testing.assert_allclose(to_numpy(loaded(INPUTS)),
                               to_numpy(model(INPUTS)), atol=1e-6)


def test_flatten_readout_keeps_which_cell_said_what():
    # A 1x1-conv backbone keeps the image's layout in its grid. Without
    # coordinate channels, max pooling cannot tell an image from its
    # mirror image; the flattened read-out can.
    inputs = keras.Input((4, 4, 3))
    cnn = keras.Model(inputs, keras.layers.Conv2D(6, 1)(inputs))
    images = RNG.normal(size=(2, 4, 4, 3)).astype("float32")
    mirrored = images[:, :, ::-1]
    text = random_text(2)
    outputs = {}
    for readout in ("max_pool", "flatten"):
        keras.utils.set_random_seed(0)
        fusion = FiLMFusion(cnn, dim=8, num_layers=0, coordinates=False,
                            readout=readout)
        outputs[readout] = [to_numpy(fusion(x, text))
                            for x in (images, mirrored)]
        assert outputs[readout][0].shape == (2, 8)
    np.testing.assert_allclose(*outputs["max_pool"], rtol=1e-5, atol=1e-6)
    assert np.abs(outputs["flatten"][0] - outputs["flatten"][1]).max() > 1e-3
    # Its Dense reads every cell: 4 x 4 cells x 8 channels.
    assert fusion.readout_dense.kernel.shape == (4 * 4 * 8, 8)


@pytest.mark.parametrize("fusion,options", [
    ("film", {}), ("film", {"film_readout": "flatten"}), ("relational", {})])
def test_fit_lowers_the_loss_and_round_trips(fusion, options, tmp_path):
    keras.utils.set_random_seed(0)
    cnn = residual_cnn()
    model = compiled(classifier(cnn, fusion, fusion_dim=16, **options))
    # Nothing copied: the model's variables are the backbones', the
    # fusion's and the classifier's, each once.
    ids = [id(v) for v in model.weights]
    assert {id(v) for v in cnn.weights} <= set(ids)
    assert len(ids) == len(set(ids)) == (
        len(cnn.weights) + len(model.text_backbone.weights)
        + len(model.fusion.weights) + len(model.classifier.weights))
    # (The first epoch's mean loss, not an evaluate() before: one XLA
    # compilation fewer on JAX.)
    losses = model.fit(INPUTS, LABELS, batch_size=8, epochs=16,
                       verbose=0).history["loss"]
    assert losses[-1] < 0.7 * losses[0], losses
    assert_round_trip(model, str(tmp_path / "fusion.keras"))


def test_film_relational_round_trips(tmp_path):
    """Without the shortcut, FiLM's grid into the relational module; the
    round trip compares trained-looking (non-initial) weights. A config
    saved before `relational_shortcut` existed loads without it."""
    model = classifier(residual_cnn(), "film_relational",
                       relational_shortcut=False)
    assert model.fusion.output_kind == "grid"
    assert isinstance(model.relational, RelationalFusion)
    rng = np.random.default_rng(2)
    for film in model.fusion.films:
        film.kernel.assign(0.3 * rng.normal(size=film.kernel.shape))
    assert_round_trip(model, str(tmp_path / "fusion.keras"))
    config = model.get_config()
    assert config["relational_shortcut"] is False
    del config["relational_shortcut"]
    old = FusionClassifier.from_config(config)
    assert old.relational_shortcut is False
    assert old.fusion.output_kind == "grid"


def test_relational_shortcut_reads_both_paths_and_round_trips(tmp_path):
    """`relational_shortcut`: the classifier reads the relational module's
    output and FiLM's read-out side by side; both change the logits, fit
    lowers the loss, and it round trips."""
    # On by default for film_relational (off, and refused, for the rest).
    model = compiled(classifier(residual_cnn(), "film_relational",
                                fusion_dim=16))
    assert model.relational_shortcut is True
    assert model.get_config()["relational_shortcut"] is True
    assert classifier(residual_cnn(), "film").relational_shortcut is False
    assert model.fusion.output_kind == "grid_and_vector"
    assert model.classifier.kernel.shape == (2 * 16, 4)
    grid, vector = model.fusion(IMAGES[:2], random_text(2))
    assert tuple(grid.shape) == (2, 4, 4, 16)
    assert tuple(vector.shape) == (2, 16)
    before = to_numpy(model(INPUTS))
    for layer in (model.relational.f_layers[-1], model.fusion.readout_dense):
        saved = to_numpy(layer.kernel)
        layer.kernel.assign(np.zeros_like(saved))
        assert np.abs(to_numpy(model(INPUTS)) - before).max() > 1e-4
        layer.kernel.assign(saved)
    losses = model.fit(INPUTS, LABELS, batch_size=8, epochs=16,
                       verbose=0).history["loss"]
    assert losses[-1] < 0.7 * losses[0], losses
    assert_round_trip(model, str(tmp_path / "fusion.keras"))


def test_errors_name_the_argument():
    cnn = residual_cnn()
    with pytest.raises(ValueError, match="fusion.*'film_relational'"):
        classifier(cnn, "films")
    with pytest.raises(ValueError, match="film_placement.*'middle'"):
        classifier(cnn, "film", film_placement="middle")
    with pytest.raises(ValueError, match="max_pairs.*0"):
        classifier(cnn, "relational", max_pairs=0)
    with pytest.raises(ValueError, match="film_readout.*'mean'"):
        classifier(cnn, "film", film_readout="mean")
    with pytest.raises(ValueError, match="film_readout='flatten'.*'film'"
                       ".*'relational'"):
        classifier(cnn, "relational", film_readout="flatten")
    with pytest.raises(ValueError, match="relational_shortcut=True.*'film'"):
        classifier(cnn, "film", relational_shortcut=True)
    with pytest.raises(TypeError, match="relational_shortcut.*None, True "
                       "or False.*'yes'"):
        classifier(cnn, "film_relational", relational_shortcut="yes")
    with pytest.raises(ValueError, match="readout='flatten'.*output='grid'"):
        FiLMFusion(cnn, output="grid", readout="flatten")
    # A 4x4 grid has 256 pairs.
    with pytest.raises(ValueError, match="256 pairs.*max_pairs`=255"):
        classifier(cnn, "relational", max_pairs=255)
    with pytest.raises(TypeError, match="image_position_embedding.*'yes'"):
        classifier(cnn, "film", image_position_embedding="yes")
    with pytest.raises(ValueError, match="placement.*'middle'"):
        FiLMFusion(cnn, placement="middle")
    with pytest.raises(ValueError, match="output.*'tokens'"):
        FiLMFusion(cnn, output="tokens")
    with pytest.raises(ValueError, match="num_layers.*-1"):
        FiLMFusion(cnn, num_layers=-1)
    with pytest.raises(TypeError, match="coordinates.*'yes'"):
        RelationalFusion(coordinates="yes")
    with pytest.raises(TypeError, match="No SimMIM adapter"):
        FiLMFusion(keras.layers.Dense(3))
    fusion = FiLMFusion(cnn, dim=8, num_layers=1)
    text = RNG.normal(size=(3, LENGTH, 16)).astype("float32")
    with pytest.raises(ValueError, match="same batch size.*2 and 3"):
        fusion(IMAGES[:2], text)
    with pytest.raises(ValueError, match="text_mask.*shape"):
        fusion(IMAGES[:3], text, MASK[:3, :4])
    with pytest.raises(ValueError, match="images.*shape"):
        fusion(IMAGES[0], text)
    with pytest.raises(ValueError, match="image backbone out"):
        FiLMFusion.from_config(fusion.get_config())
    clone = FiLMFusion.from_config({**fusion.get_config(),
                                    "image_backbone": cnn})
    assert clone.get_config() == fusion.get_config()
    relational = RelationalFusion(dim=8, max_pairs=16)
    with pytest.raises(ValueError, match="image_grid.*shape"):
        relational(np.zeros((2, 16, 5)), text[:2])
    with pytest.raises(ValueError, match="25 pairs.*max_pairs`=16"):
        relational(np.zeros((2, 5, 5, 3)), text[:2])
    with pytest.raises(ValueError, match="conditioning.*shape"):
        FiLM()(np.zeros((2, 4, 3)), np.zeros((2, 1, 5)))
    assert set(CLASSIFIER_FUSIONS) >= {"film", "relational",
                                       "film_relational"}
