import json

import keras
import keras_hub
import numpy as np
import pytest

from keras_simmim.data import normalize
from keras_simmim.data.sort_of_clevr import sort_of_clevr
from keras_simmim.multimodal import MaskedMultimodalModel
from keras_simmim.multimodal import build_text_preprocessor
from tests.conftest import tiny_vit
from tests.conftest import to_numpy

LENGTH = 24


@pytest.fixture(scope="module")
def pairs():
    data = sort_of_clevr(16, image_size=32, questions_per_image=1, seed=0)
    pre = build_text_preprocessor(data["captions"], LENGTH, 100)
    text = {k: to_numpy(v) for k, v in pre(data["captions"]).items()}
    mask_id = int(pre.tokenizer.token_to_id("[MASK]"))
    vocab = int(pre.tokenizer.vocabulary_size())
    return dict(text, images=normalize(data["images"])), mask_id, vocab


def build(vocab, mask_id, **kwargs):
    keras.utils.set_random_seed(0)
    bert = keras_hub.models.BertBackbone(
        vocabulary_size=vocab, num_layers=1, num_heads=2, hidden_dim=16,
        intermediate_dim=32, max_sequence_length=LENGTH)
    config = dict(mask_token_id=mask_id, mask_patch_size=8, fusion_dim=16,
                  fusion_layers=1, fusion_heads=2, seed=0)
    config.update(kwargs)
    return MaskedMultimodalModel(tiny_vit(), bert, **config)


def test_text_masking_skips_special_and_padding(pairs):
    inputs, mask_id, vocab = pairs
    model = build(vocab, mask_id, text_mask_rate=0.5)
    out = model.predict(inputs, verbose=0)
    chosen = out["text_mask"]
    ids, pad = inputs["token_ids"], inputs["padding_mask"]
    assert not chosen[~pad].any()
    assert not chosen[np.isin(ids, [0, 1, 2])].any()
    maskable = pad & ~np.isin(ids, [0, 1, 2])
    rate = chosen.sum() / maskable.sum()
    assert 0.35 < rate < 0.65, rate
    assert out["mask"].shape == (16, 8, 8)
    assert out["word_logits"].shape == (16, LENGTH, vocab)


def test_fit_lowers_both_losses_and_round_trips(pairs, tmp_path):
    inputs, mask_id, vocab = pairs
    model = build(vocab, mask_id, text_mask_rate=0.3)
    model.compile(optimizer=keras.optimizers.AdamW(3e-3))
    weights = to_numpy(model.image_backbone.weights[1])
    first = model.fit(inputs, batch_size=8, epochs=1, verbose=0)
    history = model.fit(inputs, batch_size=8, epochs=12, verbose=0)
    losses = history.history["loss"]
    assert np.mean(losses[-3:]) < 0.8 * first.history["loss"][0], losses
    assert not np.allclose(to_numpy(model.image_backbone.weights[1]),
                           weights)
    path = str(tmp_path / "mmm.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, MaskedMultimodalModel)
    assert json.dumps(loaded.get_config()) == json.dumps(model.get_config())
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    loaded.fit(inputs, batch_size=8, epochs=1, verbose=0)


def test_errors(pairs):
    inputs, mask_id, vocab = pairs
    with pytest.raises(ValueError, match="mask_token_id"):
        build(vocab, "[MASK]")
    with pytest.raises(ValueError, match="text_mask_rate"):
        build(vocab, mask_id, text_mask_rate=1.5)
    model = build(vocab, mask_id)
    with pytest.raises(ValueError, match="same batch size"):
        model(dict(inputs, images=inputs["images"][:3]))
    with pytest.raises(ValueError, match="token_ids"):
        model({"images": inputs["images"]})
