import keras
import keras_hub
import numpy as np
import pytest

from keras_simmim.multimodal import ContrastiveAligner
from keras_simmim.multimodal import build_text_preprocessor
from keras_simmim.multimodal import retrieval_recall
from tests.conftest import tiny_vit
from tests.conftest import to_numpy


WORDS = ("red", "green", "blue", "orange", "gray", "yellow", "pink",
         "brown", "black", "white", "cyan", "purple")


@pytest.fixture(scope="module")
def pairs():
    """12 distinct pairs: a noisy flat-colour image and its own caption."""
    rng = np.random.default_rng(0)
    images = rng.normal(size=(12, 1, 1, 3)).repeat(32, 1).repeat(32, 2)
    images = images + 0.1 * rng.normal(size=(12, 32, 32, 3))
    captions = [f"a {w} picture" for w in WORDS]
    pre = build_text_preprocessor(captions, 8, 60)
    text = {k: to_numpy(v) for k, v in pre(captions).items()}
    return dict(text, images=images.astype("float32")), int(
        pre.tokenizer.vocabulary_size())


def tiny_bert(vocabulary_size):
    return keras_hub.models.BertBackbone(
        vocabulary_size=vocabulary_size, num_layers=1, num_heads=2,
        hidden_dim=16, intermediate_dim=32, max_sequence_length=8)


def log_sigmoid(x):
    return -np.logaddexp(0, -x)


@pytest.mark.parametrize("loss", ["clip", "siglip"])
def test_loss_matches_numpy_and_fit_lowers_it(pairs, loss, tmp_path):
    inputs, vocab = pairs
    keras.utils.set_random_seed(0)
    model = ContrastiveAligner(tiny_vit(), tiny_bert(vocab), embed_dim=16,
                               loss=loss)
    out = model(inputs)
    assert model.initial_bias == (0.0 if loss == "clip" else -10.0)
    img = to_numpy(out["image_embeddings"]).astype("float64")
    txt = to_numpy(out["text_embeddings"]).astype("float64")
    np.testing.assert_allclose(np.linalg.norm(img, axis=1), 1.0, rtol=1e-5)
    if loss == "clip":
        logits = img @ txt.T / 0.07
        rows = logits - np.log(np.exp(logits).sum(1, keepdims=True))
        cols = logits - np.log(np.exp(logits).sum(0, keepdims=True))
        expected = -(np.diag(rows).mean() + np.diag(cols).mean()) / 2
    else:
        logits = 10.0 * img @ txt.T - 10.0
        signs = 2 * np.eye(len(img)) - 1
        expected = -log_sigmoid(signs * logits).sum() / len(img)
    got = float(to_numpy(model.compute_loss(x=inputs, y_pred=out)))
    np.testing.assert_allclose(got, expected, rtol=1e-4)

    model.compile(optimizer=keras.optimizers.AdamW(3e-3))
    before = model.evaluate(inputs, batch_size=12, verbose=0)
    model.fit(inputs, batch_size=12, epochs=60, verbose=0)
    after = model.evaluate(inputs, batch_size=12, verbose=0)
    assert after < 0.7 * before, (before, after)
    trained = model.predict(inputs, batch_size=12, verbose=0)
    # Aligned, not collapsed: pairs are more similar than non-pairs and
    # retrieval beats chance (5 of 12 at K=5).
    sims = trained["image_embeddings"] @ trained["text_embeddings"].T
    gap = np.diag(sims).mean() - sims[~np.eye(12, dtype=bool)].mean()
    assert gap > 0.05, gap
    recall = retrieval_recall(trained["image_embeddings"],
                              trained["text_embeddings"], ks=(1, 5))
    assert recall["image_to_text@5"] > 5 / 12, recall

    path = str(tmp_path / "aligner.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(
        loaded.predict(inputs, verbose=0)["text_embeddings"],
        trained["text_embeddings"], atol=1e-5)
    assert float(to_numpy(loaded.log_scale)) == pytest.approx(
        float(to_numpy(model.log_scale)))


def test_recall_by_hand():
    images = np.array([[1, 0], [0, 1], [1, 1]], "float32")
    texts = np.array([[1, 0], [1, 0.1], [0, 1]], "float32")
    # Scores: image 0 -> texts (1, 1, 0): own text 0 ties with text 1 -> rank
    # 1; image 1 -> (0, .1, 1): own text 1 ranks 1 (text 2 higher); image 2
    # -> (1, 1.1, 1): own text 2 ties with text 0 and loses to 1 -> rank 2.
    got = retrieval_recall(images, texts, ks=(1, 2, 3))
    assert got["image_to_text@1"] == 0.0
    assert got["image_to_text@2"] == pytest.approx(2 / 3)
    assert got["image_to_text@3"] == 1.0
    # Texts -> images: text 0 (1, 0, 1): rank 1; text 1 (1, .1, 1.1): rank
    # 2; text 2 (0, 1, 1): rank 1.
    assert got["text_to_image@1"] == 0.0
    assert got["text_to_image@2"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="same N"):
        retrieval_recall(images, texts[:2])


def test_errors(pairs):
    inputs, vocab = pairs
    with pytest.raises(ValueError, match="loss"):
        ContrastiveAligner(tiny_vit(), tiny_bert(vocab), loss="infonce")
    model = ContrastiveAligner(tiny_vit(), tiny_bert(vocab), embed_dim=8)
    with pytest.raises(ValueError, match="same batch size"):
        model(dict(inputs, images=inputs["images"][:2]))
    with pytest.raises(ValueError, match="token_ids"):
        model({"images": inputs["images"]})
