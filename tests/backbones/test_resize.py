"""Changing resolution (and Swin's window) between pretraining and
fine-tuning: the NumPy bicubic against torch's, weights of resized ViT /
DeiT / Swin backbones, presets loaded at a new size, and the errors."""

import os

import keras
import keras_hub
import numpy as np
import pytest
import torch

from keras_simmim import SimMIMModel
from keras_simmim.backbones import load_backbone
from keras_simmim.backbones import resize
from keras_simmim.backbones.resize import bicubic_resize
from tests.backbones.families import tiny_backbone
from tests.conftest import tiny_vit
from tests.conftest import to_numpy


def torch_bicubic(grid, size):
    """`(rows, cols, C)` through torch's F.interpolate, the reference."""
    x = torch.tensor(np.moveaxis(grid, -1, 0)[None])
    y = torch.nn.functional.interpolate(
        x, size=size, mode="bicubic", align_corners=False
    )
    return np.moveaxis(y[0].numpy(), 0, -1)


def tiny_swin(image_shape=(32, 32, 3), window_size=4):
    return keras_hub.models.SwinTransformerBackbone(
        image_shape=image_shape, embed_dim=16, depths=(2, 2),
        num_heads=(2, 4), window_size=window_size, drop_path=0.0,
    )


def bias_tables(swin):
    return [
        to_numpy(block.attn.relative_position_bias_table)
        for stage in swin.stages
        for block in stage.blocks
    ]


def assert_other_weights_equal(old, new, skip):
    """Every weight except those in `skip` (old variables) is copied."""
    skip = {id(v) for v in skip}
    assert len(old.weights) == len(new.weights)
    for a, b in zip(old.weights, new.weights):
        if id(a) not in skip:
            np.testing.assert_array_equal(to_numpy(a), to_numpy(b), a.path)


# --------------------------------------------------------------------- #
# The interpolation
# --------------------------------------------------------------------- #
@pytest.mark.parametrize(
    "size_in, size_out",
    [((8, 8), (12, 12)), ((12, 12), (8, 8)), ((7, 7), (11, 11)),
     ((5, 9), (3, 17)), ((1, 3), (4, 2)), ((6, 6), (6, 6))],
)
def test_bicubic_matches_torch(size_in, size_out):
    rng = np.random.default_rng(0)
    grid = rng.normal(size=size_in + (3,))
    np.testing.assert_allclose(
        bicubic_resize(grid, size_out), torch_bicubic(grid, size_out),
        atol=1e-12,
    )
    # In float32 torch computes the sample positions and weights in float32
    # too (errors of a few 1e-6 on unit-scale values); ours stays float64.
    grid32 = grid.astype("float32")
    np.testing.assert_allclose(
        bicubic_resize(grid32, size_out), torch_bicubic(grid32, size_out),
        atol=1e-5,
    )


def test_bicubic_hand_computed():
    # Doubling [0, 1, 2, 3]: row 3 samples 1.25 with taps 0..3 and Keys
    # weights for a = -0.75, t = 0.25.
    a, t = -0.75, 0.25
    near = lambda d: ((a + 2) * d - (a + 3)) * d * d + 1  # noqa: E731
    far = lambda d: ((a * d - 5 * a) * d + 8 * a) * d - 4 * a  # noqa: E731
    weights = [far(1 + t), near(t), near(1 - t), far(2 - t)]
    assert weights == [-0.10546875, 0.87890625, 0.26171875, -0.03515625]
    ramp = np.arange(4.0)[:, None, None] * np.ones((1, 4, 1))
    out = bicubic_resize(ramp, (8, 8))
    assert out[3, 0, 0] == np.dot(weights, [0, 1, 2, 3]) == 1.296875
    # Row 0 samples -0.25 (t = 0.75): taps -2, -1, 0 read the edge (0) and
    # tap 1 (value 1) has weight far(1.25).
    assert out[0, 0, 0] == far(1.25) == -0.10546875
    # Constants stay constant; the same size is the identity, bit for bit.
    np.testing.assert_allclose(
        bicubic_resize(np.full((3, 5, 2), 7.0), (8, 4)), 7.0, atol=1e-12)
    assert np.array_equal(bicubic_resize(ramp, (4, 4)), ramp)


# --------------------------------------------------------------------- #
# Backbones
# --------------------------------------------------------------------- #
@pytest.mark.parametrize("use_class_token", [True, False])
@pytest.mark.parametrize("image_shape", [(48, 48, 3), (24, 40, 3)])
def test_vit_position_embeddings_interpolated(image_shape, use_class_token):
    old = tiny_vit(use_class_token=use_class_token)
    new = resize(old, image_shape)
    assert type(new) is keras_hub.models.ViTBackbone
    assert new.image_shape == image_shape and old.image_shape == (32, 32, 3)
    old_table = old.get_layer("vit_patching_and_embedding").position_embedding
    new_table = new.get_layer("vit_patching_and_embedding").position_embedding
    old_pos = to_numpy(old_table.embeddings)
    new_pos = to_numpy(new_table.embeddings)
    prefix = int(use_class_token)
    np.testing.assert_array_equal(new_pos[:prefix], old_pos[:prefix])
    grid = (image_shape[0] // 4, image_shape[1] // 4)
    want = torch_bicubic(old_pos[prefix:].reshape(8, 8, 32), grid)
    np.testing.assert_allclose(
        new_pos[prefix:].reshape(grid + (32,)), want, atol=1e-6)
    assert_other_weights_equal(old, new, [old_table.embeddings])
    out = new.predict(np.zeros((2,) + image_shape, "float32"), verbose=0)
    assert out.shape == (2, grid[0] * grid[1] + prefix, 32)


def test_resize_to_the_same_shape_is_an_identity(images):
    old = tiny_vit()
    new = resize(old, (32, 32, 3))
    assert new is not old
    assert_other_weights_equal(old, new, [])
    np.testing.assert_array_equal(
        new.predict(images[:2], verbose=0), old.predict(images[:2], verbose=0)
    )


def test_deit_keeps_both_prefix_tokens():
    old, _ = tiny_backbone("deit")
    new = resize(old, (48, 48, 3))
    layer = old.get_layer("deit_patching_and_embedding")
    old_pos = to_numpy(layer.position_embedding)[0]
    new_pos = to_numpy(
        new.get_layer("deit_patching_and_embedding").position_embedding)[0]
    assert new_pos.shape == (2 + 144, 32)
    np.testing.assert_array_equal(new_pos[:2], old_pos[:2])
    want = torch_bicubic(old_pos[2:].reshape(8, 8, 32), (12, 12))
    np.testing.assert_allclose(new_pos[2:].reshape(12, 12, 32), want, atol=1e-6)
    assert_other_weights_equal(old, new, [layer.position_embedding])


@pytest.mark.parametrize("image_size, window_size", [(48, 6), (48, 3), (32, 2)])
def test_swin_bias_tables_follow_the_window(image_size, window_size):
    old = tiny_swin()
    new = resize(old, (image_size, image_size, 3), window_size=window_size)
    assert new.window_size == window_size
    side = 2 * window_size - 1
    for before, after in zip(bias_tables(old), bias_tables(new)):
        heads = before.shape[-1]
        assert after.shape == (side * side, heads)
        want = torch_bicubic(before.reshape(7, 7, heads), (side, side))
        np.testing.assert_allclose(after.reshape(side, side, heads), want,
                                   atol=1e-6)
    tables = [
        block.attn.relative_position_bias_table
        for stage in old.stages for block in stage.blocks
    ]
    assert_other_weights_equal(old, new, tables)
    # (test_swin_simmim_preset_loads_with_a_new_window runs one at 48 / 6.)


def test_swin_new_size_same_window_copies_the_tables():
    old = tiny_swin()
    new = resize(old, (48, 48, 3))
    assert new.window_size == 4
    assert_other_weights_equal(old, new, [])


# --------------------------------------------------------------------- #
# Presets at a new size
# --------------------------------------------------------------------- #
def test_simmim_preset_loads_at_a_new_size(images, tmp_path):
    model = SimMIMModel(tiny_vit(), mask_patch_size=16, seed=1)
    model.mask_token.token.assign(np.linspace(-1, 1, 32).astype("float32"))
    model.head.projection.bias.assign(np.linspace(-1, 1, 48).astype("float32"))
    preset = str(tmp_path / "preset")
    model.save_to_preset(preset)
    loaded = SimMIMModel.from_preset(preset, image_shape=(48, 48, 3),
                                     mask_ratio=0.5)
    assert loaded.image_shape == (48, 48, 3) and loaded.mask_ratio == 0.5
    assert loaded.backbone.image_shape == (48, 48, 3)
    np.testing.assert_array_equal(
        to_numpy(loaded.mask_token.token), to_numpy(model.mask_token.token))
    for a, b in zip(model.head.weights, loaded.head.weights):
        np.testing.assert_array_equal(to_numpy(a), to_numpy(b))
    want = resize(model.backbone, (48, 48, 3))
    for a, b in zip(want.weights, loaded.backbone.weights):
        np.testing.assert_array_equal(to_numpy(a), to_numpy(b))
    big = np.asarray(keras.ops.image.resize(images[:2], (48, 48)))
    out = loaded.predict(big, verbose=0)
    assert out["reconstruction"].shape == (2, 48, 48, 3)
    assert np.isfinite(out["reconstruction"]).all()
    # A keras-hub backbone preset alone loads at a new size too.
    os.remove(os.path.join(preset, "simmim.json"))
    fresh = SimMIMModel.from_preset(preset, image_shape=(48, 48, 3),
                                    mask_patch_size=16)
    assert fresh.image_shape == (48, 48, 3)
    for a, b in zip(want.weights, fresh.backbone.weights):
        np.testing.assert_array_equal(to_numpy(a), to_numpy(b))


def test_swin_simmim_preset_loads_with_a_new_window(tmp_path):
    model = SimMIMModel(tiny_swin(), mask_patch_size=8)
    model.mask_token.token.assign(np.linspace(-1, 1, 16).astype("float32"))
    model.save_to_preset(tmp_path)
    loaded = SimMIMModel.from_preset(
        tmp_path, image_shape=(48, 48, 3), window_size=6)
    assert loaded.backbone.window_size == 6
    assert loaded.image_shape == (48, 48, 3)
    np.testing.assert_array_equal(
        to_numpy(loaded.mask_token.token), to_numpy(model.mask_token.token))
    # (The constructor ran the model once at 48 px with the new window.)
    out = loaded({"images": np.zeros((1, 48, 48, 3), "float32"),
                  "mask": np.ones((1, 12, 12), "float32")})
    assert tuple(out["reconstruction"].shape) == (1, 48, 48, 3)
    # The window alone changes too.
    windowed = load_backbone(tmp_path, window_size=2)
    assert windowed.window_size == 2
    assert tuple(windowed.image_shape) == (32, 32, 3)


def test_load_backbone_fine_tunes_at_a_new_size(images, tmp_path):
    SimMIMModel(tiny_vit(), mask_patch_size=16).save_to_preset(tmp_path)
    saved = keras_hub.models.Backbone.from_preset(str(tmp_path))
    backbone = load_backbone(tmp_path, image_shape=(48, 48, 3))
    assert backbone.image_shape == (48, 48, 3)
    assert tuple(load_backbone(tmp_path).image_shape) == (32, 32, 3)
    classifier = keras_hub.models.ViTImageClassifier(
        backbone=backbone, num_classes=3)
    classifier.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    big = np.asarray(keras.ops.image.resize(images[:8], (48, 48)))
    labels = np.arange(8) % 3
    history = classifier.fit(big, labels, batch_size=4, epochs=1, verbose=0,
                             shuffle=False)
    assert np.isfinite(history.history["loss"]).all()
    # The class-token position came from the preset, untouched.
    np.testing.assert_array_equal(
        to_numpy(saved.get_layer("vit_patching_and_embedding")
                 .position_embedding.embeddings)[0],
        to_numpy(resize(saved, (48, 48, 3))
                 .get_layer("vit_patching_and_embedding")
                 .position_embedding.embeddings)[0],
    )


def test_transformers_vit_at_a_new_size_matches_interpolate_pos_encoding(
    tmp_path,
):
    """Hugging Face's own position interpolation is the reference."""
    from tests.presets.test_transformers_checkpoints import save_random_hf

    hf = save_random_hf(tmp_path, "vit")
    model = SimMIMModel.from_preset(str(tmp_path), image_shape=(48, 48, 3))
    rng = np.random.default_rng(0)
    pixels = rng.normal(size=(2, 3, 48, 48)).astype("float32")
    mask = rng.random((2, 144)) < 0.6
    with torch.no_grad():
        # The forward of ViTForMaskedImageModeling without its loss (which
        # assumes the configured size): encoder, patch tokens, decoder.
        tokens = hf.vit(
            torch.tensor(pixels), bool_masked_pos=torch.tensor(mask),
            interpolate_pos_encoding=True,
        ).last_hidden_state[:, 1:]
        grid = tokens.permute(0, 2, 1).reshape(2, 32, 12, 12)
        want = hf.decoder(grid).numpy().transpose(0, 2, 3, 1)
    got = model({"images": pixels.transpose(0, 2, 3, 1), "mask": mask})
    np.testing.assert_allclose(to_numpy(got["reconstruction"]), want,
                               atol=1e-4)


# --------------------------------------------------------------------- #
# Errors
# --------------------------------------------------------------------- #
@pytest.mark.parametrize(
    "image_shape, match",
    [
        ((48, 48), r"3 positive ints.*image_shape=\(48, 48\)"),
        ((48, 0, 3), "3 positive ints"),
        ("48", "3 positive ints"),
        ((48.0, 48, 3), "3 positive ints"),
        ((48, 48, 1), r"channels.*takes 3.*image_shape=\(48, 48, 1\)"),
        ((50, 48, 3), r"multiples of the patch size \(4, 4\).*\(50, 48, 3\)"),
    ],
)
def test_vit_bad_image_shape(image_shape, match):
    with pytest.raises(ValueError, match=match):
        resize(tiny_vit(), image_shape)


def test_swin_errors():
    swin = tiny_swin()
    with pytest.raises(ValueError, match=r"output stride \(8, 8\).*44, 44"):
        resize(swin, (44, 44, 3))
    with pytest.raises(ValueError, match=r"last stage's is 4.*window_size=5"):
        resize(swin, (32, 32, 3), window_size=5)
    with pytest.raises(TypeError, match="window_size=6.0"):
        resize(swin, (48, 48, 3), window_size=6.0)
    with pytest.raises(ValueError, match="window_size=0"):
        resize(swin, (48, 48, 3), window_size=0)


def test_unsupported_backbones_and_arguments(tmp_path):
    with pytest.raises(ValueError, match="Swin backbones only.*window_size=7"):
        resize(tiny_vit(), (48, 48, 3), window_size=7)
    with pytest.raises(
        ValueError,
        match=r"ViTBackbone.*SwinTransformerBackbone.*DINOV2Backbone.*"
        "type Sequential",
    ):
        resize(keras.Sequential([keras.layers.Dense(2)]), (48, 48, 3))
    with pytest.raises(ValueError, match="preset_dir=.*nowhere"):
        load_backbone(str(tmp_path / "nowhere"), image_shape=(48, 48, 3))
    SimMIMModel(tiny_vit(), mask_patch_size=16).save_to_preset(tmp_path)
    with pytest.raises(ValueError, match="Swin backbones only.*window_size=6"):
        SimMIMModel.from_preset(tmp_path, window_size=6)
    with pytest.raises(ValueError, match=r"patch size.*\(50, 50, 3\)"):
        SimMIMModel.from_preset(tmp_path, image_shape=(50, 50, 3))
