import json

import keras
import keras_hub
import numpy as np
import pytest

from keras_simmim.data import normalize
from keras_simmim.data.sort_of_clevr import ANSWERS
from keras_simmim.data.sort_of_clevr import sort_of_clevr
from keras_simmim.multimodal import FUSIONS
from keras_simmim.multimodal import FusionClassifier
from keras_simmim.multimodal import build_text_preprocessor
from tests.conftest import tiny_vit
from tests.conftest import to_numpy

LENGTH = 16


@pytest.fixture(scope="module")
def qa():
    data = sort_of_clevr(8, image_size=32, questions_per_image=2, seed=0)
    pre = build_text_preprocessor(data["questions"], LENGTH, 80)
    text = {k: to_numpy(v) for k, v in pre(data["questions"]).items()}
    inputs = dict(text, images=normalize(data["images"][data["image_index"]]))
    return inputs, data["answers"], int(pre.tokenizer.vocabulary_size())


def tiny_bert(vocabulary_size):
    return keras_hub.models.BertBackbone(
        vocabulary_size=vocabulary_size, num_layers=1, num_heads=2,
        hidden_dim=16, intermediate_dim=32, max_sequence_length=LENGTH)


def build(fusion, vocabulary_size):
    keras.utils.set_random_seed(0)
    return FusionClassifier(tiny_vit(), tiny_bert(vocabulary_size),
                            num_classes=len(ANSWERS), fusion=fusion,
                            fusion_dim=16, fusion_layers=1, fusion_heads=2)


@pytest.mark.parametrize("fusion", sorted(FUSIONS))
def test_fit_lowers_the_loss_and_round_trips(qa, fusion, tmp_path):
    inputs, answers, vocab = qa
    model = build(fusion, vocab)
    model.compile(optimizer=keras.optimizers.Adam(3e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(
                      from_logits=True))
    before = model.evaluate(inputs, answers, verbose=0)
    model.fit(inputs, answers, batch_size=8, epochs=8, verbose=0)
    after = model.evaluate(inputs, answers, verbose=0)
    assert after < 0.7 * before, (before, after)
    path = str(tmp_path / "fusion.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, FusionClassifier)
    assert json.dumps(loaded.get_config()) == json.dumps(model.get_config())
    np.testing.assert_allclose(loaded.predict(inputs, verbose=0),
                               model.predict(inputs, verbose=0), atol=1e-5)


def test_distilbert_text_backbone(qa):
    inputs, answers, vocab = qa
    distil = keras_hub.models.DistilBertBackbone(
        vocabulary_size=vocab, num_layers=1, num_heads=2, hidden_dim=16,
        intermediate_dim=32, max_sequence_length=LENGTH)
    model = FusionClassifier(tiny_vit(), distil, num_classes=4,
                             fusion="merged", fusion_dim=16, fusion_heads=2)
    text_only = {k: v for k, v in inputs.items() if k != "segment_ids"}
    assert model.predict(text_only, verbose=0).shape == (len(answers), 4)


def test_errors_name_the_problem(qa):
    inputs, _, vocab = qa
    model = build("gated", vocab)
    with pytest.raises(ValueError, match="padding_mask"):
        model({k: v for k, v in inputs.items() if k != "padding_mask"})
    with pytest.raises(ValueError, match="same batch size"):
        model(dict(inputs, images=inputs["images"][:3]))
    long = {k: np.concatenate([v, v], axis=1) if k != "images" else v
            for k, v in inputs.items()}
    with pytest.raises(ValueError, match="max_sequence_length=16"):
        model(long)
    with pytest.raises(ValueError, match="dict with keys"):
        model(inputs["images"])
    with pytest.raises(ValueError, match="fusion"):
        FusionClassifier(tiny_vit(), tiny_bert(vocab), 3, fusion="early")


def test_cnn_image_backbone_and_the_position_option(qa):
    """A plain Keras CNN works as the image tower; its feature-grid tokens
    get the fusion's position embedding unless it is turned off."""
    inputs, answers, vocab = qa
    x = cnn_in = keras.Input((32, 32, 3))
    for _ in range(3):
        x = keras.layers.Conv2D(8, 3, strides=2, padding="same",
                                activation="relu")(x)
    for option, expected in ((None, True), (False, False)):
        cnn = keras.Model(cnn_in, x)
        model = FusionClassifier(cnn, tiny_bert(vocab), num_classes=4,
                                 fusion="cross_attention", fusion_dim=16,
                                 fusion_heads=2,
                                 image_position_embedding=option)
        assert model.fusion.image_position_embedding is expected
        assert model.get_config()["image_position_embedding"] is option
        assert model.predict(inputs, verbose=0).shape == (len(answers), 4)
    assert tuple(FusionClassifier(
        keras.Model(cnn_in, x), tiny_bert(vocab), num_classes=4,
        fusion="gated", fusion_dim=16).fusion.image_positions.shape) == (
            16, 16)
