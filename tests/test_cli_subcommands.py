"""The keras-simmim subcommands end to end at tiny settings."""

import json
import os

import keras
import numpy as np
import pytest
from PIL import Image

from keras_simmim import SimMIMClassifier
from keras_simmim import cli


def report(folder):
    return json.load(open(os.path.join(folder, "report.json")))["metrics"]


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("runs") / "pre")
    cli.main(["pretrain", "--num-images", "64", "--epochs", "1",
              "--batch-size", "32", "--image-size", "16", "--depth", "1",
              "--mask-patch-size", "8", "--output", out])
    return out


def test_finetune_evaluate_probe_inpaint(pretrained, tmp_path):
    ft = str(tmp_path / "ft")
    flags = ["finetune", "--from", pretrained, "--labels-fraction", "0.05",
             "--epochs", "2", "--output", ft]
    cli.main(flags)
    metrics = report(ft)
    assert 0.0 <= metrics["test_accuracy"] <= 1.0
    assert set(metrics) >= {"validation_accuracy", "test_accuracy"}
    model = keras.saving.load_model(os.path.join(ft, "model.keras"))
    assert isinstance(model, SimMIMClassifier)
    assert model.backbone.num_layers == 1  # the pretrained --depth 1
    # Rerunning the finished command does not train again.
    before = os.path.getmtime(os.path.join(ft, "model.keras"))
    cli.main(flags)
    assert os.path.getmtime(os.path.join(ft, "model.keras")) == before

    ev = str(tmp_path / "ev")
    cli.main(["evaluate", ft, "--output", ev])
    assert report(ev)["accuracy"] == pytest.approx(metrics["test_accuracy"])

    pr = str(tmp_path / "pr")
    cli.main(["probe", "--from", pretrained, "--labels-fraction", "0.1",
              "--feature-layer", "1", "--probe-epochs", "5", "--output", pr])
    probed = report(pr)
    assert probed["feature_layer"] == 1
    # --batch-size is the linear classifier's (256 features by default).
    saved = json.load(open(os.path.join(pr, "report.json")))
    assert saved["settings"]["batch_size"] == 256
    # The same command again: already done, nothing rewritten.
    before = os.path.getmtime(os.path.join(pr, "report.json"))
    cli.main(["probe", "--from", pretrained, "--labels-fraction", "0.1",
              "--feature-layer", "1", "--probe-epochs", "5", "--output", pr])
    assert os.path.getmtime(os.path.join(pr, "report.json")) == before
    assert 0.0 <= probed["test_knn_accuracy"] <= 1.0

    inp = str(tmp_path / "inp")
    cli.main(["inpaint", "--from", pretrained, "--num-images", "4",
              "--output", inp])
    scores = report(inp)
    assert {"psnr_simmim", "psnr_mean_fill", "psnr_biharmonic"} <= set(scores)
    filled = np.load(os.path.join(inp, "inpainted.npy"))
    assert filled.shape == (4, 16, 16, 3) and filled.dtype == np.uint8
    assert os.path.isfile(os.path.join(inp, "inpainted.png"))


def test_finetune_from_scratch_guards_its_folder(tmp_path):
    # The scratch baseline (no --from), at 16 px.
    out = str(tmp_path / "ft")
    flags = ["finetune", "--labels-fraction", "0.02", "--image-size", "16",
             "--depth", "1", "--output", out]
    cli.main(flags + ["--epochs", "1"])
    assert report(out)["test_accuracy"] >= 0.0
    # A finished 1-epoch run is not silently replaced by a 2-epoch one.
    with pytest.raises(SystemExit, match="--epochs 1 -> 2"):
        cli.main(flags + ["--epochs", "2"])
    assert os.path.isfile(os.path.join(out, "model.keras"))


def test_pretrain_on_a_folder_of_images(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 255, (40, 36, 3)).astype("uint8")).save(
            folder / f"{i}.jpg")
    (folder / "bad.png").write_bytes(b"not a png")
    out = str(tmp_path / "run")
    with pytest.warns(UserWarning, match="bad.png"):
        cli.main(["pretrain", "--data", str(folder), "--epochs", "1",
                  "--batch-size", "4", "--image-size", "16", "--output", out,
                  "--depth", "1",
                  "--mask-strategy", "grid", "--loss", "mse", "--head",
                  "mlp"])
    history = json.load(open(os.path.join(out, "history.json")))
    assert len(history["history"]["loss"]) == 1
    saved = json.load(open(os.path.join(out, "preset", "simmim.json")))
    config = saved["config"]["config"]
    assert (config["mask_strategy"], config["loss"], config["head"]) == (
        "grid", "mse", "mlp")


def test_subcommand_errors(tmp_path):
    with pytest.raises(SystemExit, match="neither a built-in"):
        cli.main(["pretrain", "--data", str(tmp_path / "nope"),
                  "--output", str(tmp_path / "o")])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SystemExit, match="No image files"):
        cli.main(["pretrain", "--data", str(empty), "--output",
                  str(tmp_path / "o2")])
    with pytest.raises(SystemExit, match="could not be loaded|must be"):
        cli.main(["finetune", "--from", str(empty), "--output",
                  str(tmp_path / "o3")])
    with pytest.raises(SystemExit, match="labels-fraction"):
        cli.main(["finetune", "--data", str(empty), "--labels-fraction",
                  "0.5", "--output", str(tmp_path / "o4")])
    with pytest.raises(SystemExit):
        cli.main(["finetune", "--labels-fraction", "0"])


def test_upscale_from_pretrained_and_from_scratch(pretrained, tmp_path):
    from keras_simmim.downstream import SuperResolutionModel

    up = str(tmp_path / "up")
    flags = ["upscale", "--from", pretrained, "--epochs", "1",
             "--batch-size", "128", "--split", "validation",
             "--num-images", "2", "--output", up]
    cli.main(flags)
    metrics = report(up)
    assert metrics["scale"] == 2 and metrics["images"] == 179
    assert {"psnr_bicubic", "psnr_model", "ssim_bicubic", "ssim_model"} <= (
        set(metrics))
    assert metrics["psnr_gain_db"] == pytest.approx(
        metrics["psnr_model"] - metrics["psnr_bicubic"])
    model = keras.saving.load_model(os.path.join(up, "model.keras"))
    assert isinstance(model, SuperResolutionModel)
    assert model.image_shape == (16, 16, 3)
    assert os.path.isfile(os.path.join(up, "upscaled.png"))
    before = os.path.getmtime(os.path.join(up, "report.json"))
    cli.main(flags)  # finished: nothing is trained or rewritten
    assert os.path.getmtime(os.path.join(up, "report.json")) == before

    scratch = str(tmp_path / "scratch")
    cli.main(["upscale", "--image-size", "16", "--scale", "4", "--epochs",
              "1", "--batch-size", "256", "--depth", "1", "--split", "validation",
              "--output", scratch])
    assert report(scratch)["scale"] == 4
    with pytest.raises(SystemExit):
        cli.main(["upscale", "--scale", "3", "--output", str(tmp_path / "x")])
