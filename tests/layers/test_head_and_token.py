import keras
import numpy as np
import pytest

from keras_simmim.layers import MaskToken
from keras_simmim.layers import PixelShuffle
from keras_simmim.layers import ReconstructionHead
from keras_simmim.presets.transformers_checkpoints import pytorch_to_channels_last_order
from tests.conftest import to_numpy


def test_mask_token_blends_exactly():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 3, 4, 5)).astype("float32")
    mask = rng.random((2, 3, 4)) < 0.5
    layer = MaskToken()
    out = to_numpy(layer(x, mask))
    token = to_numpy(layer.token)
    w = mask[..., None].astype("float32")
    np.testing.assert_allclose(out, x * (1 - w) + token * w, rtol=1e-6)
    assert np.array_equal(out[~mask], x[~mask])
    np.testing.assert_allclose(out[mask], np.broadcast_to(token, out[mask].shape))


def test_mask_token_rejects_mismatched_mask():
    layer = MaskToken()
    with pytest.raises(ValueError, match="mask.shape"):
        layer(np.zeros((2, 4, 4, 8), "float32"), np.zeros((2, 2, 2), bool))


def test_mask_token_config_round_trip():
    layer = MaskToken(initializer="zeros", name="tok")
    clone = MaskToken.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


def torch_pixel_shuffle(x_nchw, s):
    """numpy version of torch.nn.PixelShuffle: channel c*s*s + i*s + j."""
    b, cs2, h, w = x_nchw.shape
    c = cs2 // (s * s)
    out = np.empty((b, c, h * s, w * s), x_nchw.dtype)
    for ch in range(c):
        for i in range(s):
            for j in range(s):
                out[:, ch, i::s, j::s] = x_nchw[:, ch * s * s + i * s + j]
    return out


def test_pixel_shuffle_order_matches_torch_after_permutation():
    s, c = 3, 2
    rng = np.random.default_rng(1)
    x_torch = rng.normal(size=(2, s * s * c, 4, 5)).astype("float32")
    expected = torch_pixel_shuffle(x_torch, s).transpose(0, 2, 3, 1)
    order = pytorch_to_channels_last_order(s, c)
    x_keras = x_torch.transpose(0, 2, 3, 1)[..., order]
    out = to_numpy(PixelShuffle(s)(x_keras))
    np.testing.assert_array_equal(out, expected)


def test_pixel_shuffle_is_depth_to_space():
    x = np.arange(2 * 2 * 2 * 12, dtype="float32").reshape(2, 2, 2, 12)
    out = to_numpy(PixelShuffle(2)(x))
    assert out.shape == (2, 4, 4, 3)
    # Pixel (y*2 + i, x*2 + j), channel c reads input channel (i*2 + j)*3 + c.
    for i in range(2):
        for j in range(2):
            np.testing.assert_array_equal(
                out[:, i::2, j::2, :], x[..., (i * 2 + j) * 3:(i * 2 + j + 1) * 3]
            )


def test_pixel_shuffle_rejects_bad_depth():
    with pytest.raises(ValueError, match="divisible by 4"):
        PixelShuffle(2)(np.zeros((1, 2, 2, 6), "float32"))


def test_reconstruction_head_is_linear_per_patch():
    head = ReconstructionHead(stride=4, channels=3)
    rng = np.random.default_rng(2)
    feats = rng.normal(size=(2, 3, 5, 16)).astype("float32")
    out = to_numpy(head(feats))
    assert out.shape == (2, 12, 20, 3)
    kernel = to_numpy(head.projection.kernel)[0, 0]
    bias = to_numpy(head.projection.bias)
    proj = feats @ kernel + bias  # (2, 3, 5, 48)
    expected = to_numpy(PixelShuffle(4)(proj))
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    symbolic = head.compute_output_shape((None, 3, 5, 16))
    assert symbolic == (None, 12, 20, 3)


def test_reconstruction_head_config_and_errors():
    head = ReconstructionHead(stride=2, channels=1, name="h")
    clone = ReconstructionHead.from_config(head.get_config())
    assert clone.get_config() == head.get_config()
    with pytest.raises(ValueError, match="stride"):
        ReconstructionHead(stride=0, channels=3)
    with pytest.raises(TypeError, match="channels"):
        ReconstructionHead(stride=2, channels="3")
    with pytest.raises(ValueError, match="feature map"):
        ReconstructionHead(stride=2, channels=3)(np.zeros((2, 4, 8), "float32"))


def test_layers_are_registered_for_saving():
    for cls in (MaskToken, PixelShuffle, ReconstructionHead):
        name = keras.saving.get_registered_name(cls)
        assert name == f"keras_simmim>{cls.__name__}"
        assert keras.saving.get_registered_object(name) is cls
