import json

import keras
import numpy as np
import pytest

from keras_simmim.multimodal import FUSIONS
from keras_simmim.multimodal import CrossAttentionBlock
from keras_simmim.multimodal import CrossAttentionFusion
from keras_simmim.multimodal import masked_mean
from tests.conftest import to_numpy

RNG = np.random.default_rng(0)
IMAGE = RNG.normal(size=(3, 16, 12)).astype("float32")
TEXT = RNG.normal(size=(3, 6, 10)).astype("float32")
MASK = np.array([[1] * 6, [1] * 4 + [0] * 2, [1] * 2 + [0] * 4], bool)


def make(kind):
    if kind in ("late", "gated"):
        return FUSIONS[kind](dim=8)
    return FUSIONS[kind](dim=8, num_layers=2, num_heads=2)


@pytest.mark.parametrize("kind", sorted(FUSIONS))
def test_shapes_padding_and_both_inputs_matter(kind):
    fusion = make(kind)
    out = to_numpy(fusion(IMAGE, TEXT, MASK))
    assert out.shape == (3, fusion.output_dim)
    assert np.all(np.isfinite(out))
    # Padded text positions change nothing...
    noisy = TEXT.copy()
    noisy[~MASK] = 100.0
    np.testing.assert_allclose(to_numpy(fusion(IMAGE, noisy, MASK)), out,
                               atol=1e-5)
    # ... real text tokens and image tokens do.
    changed = TEXT.copy()
    changed[:, 0] += 1.0
    assert np.abs(to_numpy(fusion(IMAGE, changed, MASK)) - out).max() > 1e-4
    assert np.abs(to_numpy(fusion(IMAGE + 1.0, TEXT, MASK)) - out).max() > 1e-4
    # No mask = all tokens real.
    full = to_numpy(fusion(IMAGE, TEXT))
    np.testing.assert_allclose(full[0], out[0], atol=1e-5)


@pytest.mark.parametrize("kind", sorted(FUSIONS))
def test_config_round_trip(kind):
    fusion = make(kind)
    out = to_numpy(fusion(IMAGE, TEXT, MASK))
    config = json.loads(json.dumps(keras.saving.serialize_keras_object(
        fusion)))
    clone = keras.saving.deserialize_keras_object(config)
    clone(IMAGE, TEXT, MASK)
    clone.set_weights(fusion.get_weights())
    np.testing.assert_allclose(to_numpy(clone(IMAGE, TEXT, MASK)), out,
                               atol=1e-6)


def test_cross_attention_attends_to_image_tokens():
    fusion = CrossAttentionFusion(dim=8, num_layers=1, num_heads=2)
    _, (scores,) = fusion(IMAGE, TEXT, MASK, return_attention=True)
    scores = to_numpy(scores)
    assert scores.shape == (3, 2, 6, 16)  # batch, heads, text, image
    np.testing.assert_allclose(scores.sum(-1), 1.0, rtol=1e-5)
    # Replacing one image token changes how much attention it gets (and
    # so the others), and the fused output: the text reads the image.
    # (Scaling a token would not: the image tokens are layer-normalised.)
    other = IMAGE.copy()
    other[:, 5] = np.random.default_rng(1).normal(size=12) * 3.0
    out, (after,) = fusion(other, TEXT, MASK, return_attention=True)
    after = to_numpy(after)
    assert np.abs(after[..., 5] - scores[..., 5]).max() > 1e-3
    assert np.abs(to_numpy(out) - to_numpy(fusion(IMAGE, TEXT, MASK))).max() > 1e-4


@pytest.mark.parametrize("kind", sorted(FUSIONS))
def test_image_position_embedding_makes_token_order_matter(kind):
    """Attention and pooling are blind to the order of the image tokens
    (a CNN grid carries no position); the position embedding is what lets
    the fusion tell where a token is. Late fusion's mean has none."""
    order = np.random.default_rng(2).permutation(IMAGE.shape[1])
    for positions in (False, True):
        keras.utils.set_random_seed(0)
        options = {} if kind == "late" and positions else {
            "image_position_embedding": positions}
        if kind in ("late", "gated"):
            fusion = FUSIONS[kind](dim=8, **options)
        else:
            fusion = FUSIONS[kind](dim=8, num_layers=1, num_heads=2,
                                   **options)
        out = to_numpy(fusion(IMAGE, TEXT, MASK))
        shuffled = to_numpy(fusion(IMAGE[:, order], TEXT, MASK))
        if positions and kind != "late":
            assert fusion.image_positions.shape == (16, 8)
            assert np.abs(shuffled - out).max() > 1e-4
        else:
            assert not fusion.image_position_embedding
            np.testing.assert_allclose(shuffled, out, atol=1e-5)


def test_masked_mean_by_hand():
    x = np.arange(12, dtype="float32").reshape(1, 4, 3)
    got = to_numpy(masked_mean(x, np.array([[1, 0, 1, 0]], "float32")))
    np.testing.assert_allclose(got, [[3.0, 4.0, 5.0]])


def test_cross_attention_block_runs_its_mlp_on_the_image_evidence():
    # ALBEF's order: self-attention, cross-attention, then the MLP, so
    # what a text token read from the image goes through the MLP.
    block = CrossAttentionBlock(num_heads=2)
    text = keras.ops.convert_to_tensor(
        RNG.normal(size=(2, 5, 8)).astype("float32"))
    images = RNG.normal(size=(2, 2, 9, 8)).astype("float32")
    mlps = []
    for image in images:
        image = keras.ops.convert_to_tensor(image)
        out = block(text, image)
        y = block.norm_1(text)
        h = text + block.attention(y, y)
        h = h + block.cross_attention(block.norm_query(h),
                                      block.norm_image(image))
        mlp = block.mlp_out(block.mlp_in(block.norm_2(h)))
        np.testing.assert_allclose(to_numpy(out), to_numpy(h + mlp),
                                   atol=1e-5)
        mlps.append(to_numpy(mlp))
    assert np.abs(mlps[0] - mlps[1]).max() > 1e-3


def test_errors():
    with pytest.raises(ValueError, match="same batch size"):
        make("late")(IMAGE, TEXT[:2])
    with pytest.raises(ValueError, match="text_mask.*shape"):
        make("merged")(IMAGE, TEXT, MASK[:, :4])
    with pytest.raises(ValueError, match="image_tokens.*shape"):
        make("gated")(IMAGE[0], TEXT)
    with pytest.raises(ValueError, match="num_heads.*divide"):
        CrossAttentionFusion(dim=10, num_heads=4)
    with pytest.raises(ValueError, match="mlp_dim.*0"):
        CrossAttentionBlock(num_heads=2, mlp_dim=0)
    with pytest.raises(ValueError, match="text's width 8"):
        CrossAttentionBlock(num_heads=2)(np.zeros((2, 5, 8), "float32"),
                                         np.zeros((2, 9, 6), "float32"))
    with pytest.raises(TypeError, match="image_position_embedding.*'yes'"):
        CrossAttentionFusion(dim=8, image_position_embedding="yes")
    built = make("cross_attention")
    built(IMAGE, TEXT, MASK)
    with pytest.raises(ValueError, match="built for 16 image tokens"):
        built(IMAGE[:, :9], TEXT, MASK)
