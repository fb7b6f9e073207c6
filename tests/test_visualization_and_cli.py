import json
import os

import keras
import numpy as np
import pytest
from PIL import Image

from keras_simmim import SimMIMModel
from keras_simmim import cli
from keras_simmim.data import denormalize
from keras_simmim.visualization import reconstruction_grid
from keras_simmim.visualization import save_reconstruction_grid
from tests.conftest import tiny_vit


def test_grid_columns(images):
    mask = np.zeros((2, 8, 8), bool)
    mask[:, :4] = True  # top half masked
    recon = np.zeros_like(images[:2])
    grid = reconstruction_grid(images[:2], recon, mask)
    assert grid.shape == (2 * 34, 4 * 34, 3) and grid.dtype == np.uint8
    original = denormalize(images[0])
    predicted = denormalize(recon[0])
    first_row = grid[1:33]
    column = lambda k: first_row[:, 34 * k + 1:34 * k + 33]  # noqa: E731
    np.testing.assert_array_equal(column(0), original)
    assert np.all(column(1)[:16] == 127)
    np.testing.assert_array_equal(column(1)[16:], original[16:])
    np.testing.assert_array_equal(column(2), predicted)
    np.testing.assert_array_equal(column(3)[:16], predicted[:16])
    np.testing.assert_array_equal(column(3)[16:], original[16:])


def test_save_grid_writes_png_with_labelled_columns(images, tmp_path):
    model = SimMIMModel(tiny_vit(), mask_patch_size=8, seed=0)
    mask = np.zeros((3,) + model.mask_shape, bool)
    mask[:, :4] = True
    plain = save_reconstruction_grid(
        str(tmp_path / "g" / "plain.png"), model, images[:3], mask,
        labels=False)
    labelled = save_reconstruction_grid(
        str(tmp_path / "g" / "r.png"), model, images[:3], mask)
    with Image.open(plain) as picture:
        assert picture.size == (4 * 34 * 4, 3 * 34 * 4)
        grid = np.asarray(picture.convert("RGB"))
    with Image.open(labelled) as picture:
        framed = np.asarray(picture.convert("RGB"))
    header = framed.shape[0] - grid.shape[0]
    assert 10 <= header <= 40
    np.testing.assert_array_equal(framed[header:], grid)
    # Every column's header holds dark text on white.
    for column in range(4):
        strip = framed[:header, column * 136:(column + 1) * 136]
        assert (strip < 100).any() and (strip == 255).mean() > 0.5


def test_preview_callback_uses_a_fixed_mask_and_leaves_training_alone(
    images, tmp_path
):
    from keras_simmim.visualization import ReconstructionPreview
    from keras_simmim.visualization import fixed_mask

    def train(callbacks):
        keras.utils.set_random_seed(0)
        model = SimMIMModel(tiny_vit(), mask_patch_size=8, seed=0)
        model.fit(images[:8], epochs=3, batch_size=4, verbose=0,
                  callbacks=callbacks)
        return model

    preview = ReconstructionPreview(images[:2], tmp_path / "p", every=2)
    with_preview = train([preview])
    # Epoch 2 (every=2) and epoch 3 (the last).
    assert sorted(os.listdir(tmp_path / "p")) == [
        "epoch-0002.png", "epoch-0003.png"]
    without = train([])
    for a, b in zip(with_preview.weights, without.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a),
                                      keras.ops.convert_to_numpy(b))
    mask = fixed_mask(with_preview, 2, seed=0)
    assert mask.shape == (2, 8, 8)
    np.testing.assert_array_equal(mask, fixed_mask(with_preview, 2, seed=0))
    # 60% of the 16 blocks of 8 px, each 2x2 patches of 4 px.
    assert mask.reshape(2, -1).sum(axis=1).tolist() == [40, 40]
    with pytest.raises(ValueError, match="every"):
        ReconstructionPreview(images[:2], tmp_path, every=0)


def test_pretrain_command_writes_outputs(tmp_path):
    out = str(tmp_path / "run")
    cli.main([
        "pretrain", "--epochs", "2", "--num-images", "64",
        "--batch-size", "32", "--depth", "1", "--output", out,
        "--backend", keras.backend.backend(),
    ])
    assert sorted(os.listdir(out)) == [
        "checkpoints", "history.json", "model.keras", "preset", "previews",
        "reconstructions.png",
    ]
    assert sorted(os.listdir(os.path.join(out, "previews"))) == [
        "epoch-0001.png", "epoch-0002.png"]
    assert os.listdir(os.path.join(out, "checkpoints")) == ["epoch-0002"]
    history = json.load(open(os.path.join(out, "history.json")))
    assert len(history["history"]["loss"]) == 2
    assert history["backend"] == keras.backend.backend()
    assert history["settings"]["depth"] == 1
    model = keras.saving.load_model(os.path.join(out, "model.keras"))
    assert isinstance(model, SimMIMModel)
    assert model.backbone.num_layers == 1
    SimMIMModel.from_preset(os.path.join(out, "preset"))
    # An existing output folder is never silently overwritten: another
    # run's settings are refused, and so is a folder of other files.
    with pytest.raises(SystemExit, match="--epochs 2 -> 1"):
        cli.main(["pretrain", "--epochs", "1", "--depth", "1", "--output",
                  out])
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(SystemExit, match="not empty"):
        cli.main(["pretrain", "--epochs", "1", "--output", str(other)])
    assert (other / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize(
    "backbone, backbone_cls",
    [("swin", "SwinTransformerBackbone"), ("resnet", "ResNetBackbone")],
)
def test_pretrain_command_with_other_backbones(tmp_path, backbone, backbone_cls):
    out = str(tmp_path / backbone)
    cli.main([
        "pretrain", "--backbone", backbone, "--epochs", "1", "--depth", "1",
        "--num-images", "32", "--batch-size", "32", "--output", out,
        "--backend", keras.backend.backend(),
    ])
    history = json.load(open(os.path.join(out, "history.json")))
    assert history["backbone"] == backbone
    assert np.isfinite(history["history"]["loss"][0])
    model = SimMIMModel.from_preset(os.path.join(out, "preset"))
    assert type(model.backbone).__name__ == backbone_cls
    assert model.adapter.stride == 8


def test_pretrain_command_rejects_bad_flags(tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli.main(["pretrain", "--epochs", "0"])
    with pytest.raises(SystemExit):
        cli.main(["pretrain", "--mask-ratio", "1.5", "--output", str(tmp_path)])
    assert "--mask-ratio: expected a number in (0, 1), got 1.5" in (
        capsys.readouterr().err)
    assert not os.listdir(tmp_path)  # nothing written
