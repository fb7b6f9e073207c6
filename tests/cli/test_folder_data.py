"""`--data FOLDER` without train/ and test/ subfolders: every subcommand
holds out validation and test images itself (checked before any training),
says how many images it found; pretrain previews held-out images and
prints the next commands; inpaint's picture has labelled, distinct
columns; the command prints no TensorFlow start-up lines."""

import contextlib
import io
import json
import os
import subprocess
import sys
import warnings

import keras
import numpy as np
import pytest
from PIL import Image

from keras_simmim import cli
from keras_simmim.cli import sources

SIZE = 16


def write_images(folder, count, seed, size=SIZE):
    """`count` random-noise RGB PNGs, each unlike the others."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        pixels = rng.integers(0, 256, (size, size, 3)).astype("uint8")
        Image.fromarray(pixels).save(folder / f"{i:02d}.png")


def run_cli(argv):
    """`cli.main(argv)`, returning what it printed. Keras's warning that
    `fit(shuffle=True)` is ignored for a tf.data dataset is an error."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), warnings.catch_warnings(
        record=True
    ) as caught:
        warnings.simplefilter("always")
        cli.main(argv)
    shuffle = [str(w.message) for w in caught if "shuffle" in str(w.message)]
    assert not shuffle, shuffle
    return printed.getvalue()


def report(folder):
    with open(os.path.join(folder, "report.json")) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data") / "photos"
    write_images(folder, 20, seed=1)
    return str(folder)


@pytest.fixture(scope="module")
def classes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data") / "classes"
    for c, name in enumerate(("cat", "dog", "owl")):
        write_images(folder / name, 6, seed=10 + c)
    return str(folder)


@pytest.fixture(scope="module")
def pretrained(photos, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("runs") / "pre")
    printed = run_cli([
        "pretrain", "--data", photos, "--epochs", "1", "--batch-size", "8",
        "--depth", "1",
        "--image-size", str(SIZE), "--mask-patch-size", "8", "--output", out,
    ])
    return out, printed


def test_a_folder_is_split_by_seed_and_stratified(classes, tmp_path):
    layout = sources.folder_layout(classes)
    assert layout.classes == 3 and layout.class_problem is None
    assert layout.counts == {"train": 12, "validation": 3, "test": 3}
    splits = {}
    for split, folder in layout.folders.items():
        found = sorted(os.path.relpath(os.path.join(d, f), folder)
                       for d, _, files in os.walk(folder) for f in files)
        splits[split] = found
        # Every class in every split: class indices agree across splits.
        assert sorted({p.split(os.sep)[0] for p in found}) == [
            "cat", "dog", "owl"]
    assert not set(splits["train"]) & set(splits["test"])
    assert not set(splits["validation"]) & set(splits["test"])
    # The same images for another copy of the folder (another path).
    copy = tmp_path / "copy"
    for c, name in enumerate(("cat", "dog", "owl")):
        write_images(copy / name, 6, seed=10 + c)
    again = sources.folder_layout(str(copy))
    for split, folder in again.folders.items():
        found = sorted(os.path.relpath(os.path.join(d, f), folder)
                       for d, _, files in os.walk(folder) for f in files)
        assert found == splits[split], split


def test_too_small_folders_are_refused_before_any_work(tmp_path):
    few = tmp_path / "few"
    write_images(few, 2, seed=0)
    lopsided = tmp_path / "lopsided"
    write_images(lopsided / "a", 6, seed=0)
    write_images(lopsided / "b", 2, seed=1)
    out = tmp_path / "out"
    commands = [
        ["pretrain", "--data", str(few)],
        ["upscale", "--data", str(few), "--image-size", "16"],
        ["inpaint", "--from", str(tmp_path / "no-model"), "--data",
         str(few)],
        ["evaluate", str(tmp_path), "--data", str(few)],
    ]
    for argv in commands:
        # A model file is needed first by evaluate: give it one.
        (tmp_path / "model.keras").write_text("not read")
        with pytest.raises(SystemExit) as raised:
            cli.main(argv + ["--output", str(out)])
        message = str(raised.value)
        assert f"--data {few} " in message, argv
        assert "holds 2 image(s)" in message and "at least 3" in message
        assert not out.exists(), argv  # nothing written, nothing trained
    for command in ("finetune", "probe"):
        with pytest.raises(SystemExit, match=(
                f"--data {lopsided}.*at least 3 images; class 'b' has 2")):
            cli.main([command, "--data", str(lopsided), "--output",
                      str(out)])
        assert not out.exists()


def test_pretrain_on_a_plain_folder(pretrained, photos):
    out, printed = pretrained
    assert ("20 images found, 16 for training, 2 held out for validation, "
            "2 for testing") in printed
    assert "data=" + photos + " (16 images for training" in printed
    # The next commands, with the run's absolute folder.
    run = os.path.abspath(out)
    for line in (f"keras-simmim finetune --from {run} --data "
                 "LABELLED_FOLDER",
                 f"keras-simmim probe --from {run}",
                 f"keras-simmim inpaint --from {run} --data {photos}"):
        assert f"  {line}" in printed, line
    with open(os.path.join(out, "history.json")) as f:
        history = json.load(f)
    assert history["preview_splits"] == ["validation", "test"]
    assert history["train_images"] == 16
    # The previews show the held-out images, validation then test.
    layout = sources.folder_layout(photos)
    names = {split: sorted(os.listdir(folder))
             for split, folder in layout.folders.items()}
    files = {name: np.asarray(Image.open(os.path.join(photos, name)),
                              "int32")
             for name in os.listdir(photos)}
    with Image.open(os.path.join(out, "reconstructions.png")) as picture:
        grid = np.asarray(picture.convert("RGB"), "int32")
    held_out = names["validation"] + names["test"]
    scale, rows = 4, len(held_out)
    header = grid.shape[0] - rows * (SIZE + 2) * scale
    shown = []
    for row in range(rows):
        top = header + (row * (SIZE + 2) + 1) * scale
        panel = grid[top:top + SIZE * scale:scale,
                     scale:(SIZE + 1) * scale:scale]
        match = [name for name, pixels in files.items()
                 if np.abs(panel - pixels).max() <= 2]
        assert len(match) == 1, row
        shown += match
    assert shown == held_out
    assert not set(shown) & set(names["train"])


def test_upscale_and_inpaint_on_a_plain_folder(pretrained, photos,
                                               tmp_path):
    out, _ = pretrained
    up = str(tmp_path / "up")
    printed = run_cli(["upscale", "--from", out, "--data", photos,
                       "--epochs", "1", "--batch-size", "8",
                       "--num-images", "2", "--output", up])
    assert "16 images for training" in printed
    assert report(up)["metrics"]["images"] == 2  # the held-out test part

    inp = str(tmp_path / "inp")
    printed = run_cli(["inpaint", "--from", out, "--data", photos,
                       "--num-images", "2", "--output", inp])
    assert "2 images in its 'test' split" in printed
    saved = report(inp)
    columns = saved["picture_columns"]
    assert columns[:3] == ["original", "masked", "SimMIM"]
    assert "mean fill" in columns and len(set(columns)) == len(columns)
    assert {"psnr_simmim", "psnr_mean_fill"} <= set(saved["metrics"])
    with Image.open(os.path.join(inp, "inpainted.png")) as picture:
        framed = np.asarray(picture.convert("RGB"))
    width = framed.shape[1] // len(columns)
    scale = width // (SIZE + 2)
    assert width == (SIZE + 2) * scale and scale >= 4
    header = framed.shape[0] - 2 * (SIZE + 2) * scale
    assert 10 <= header <= 60
    panels = []
    for k in range(len(columns)):
        strip = framed[:header, k * width:(k + 1) * width]
        assert (strip < 100).any() and (strip == 255).mean() > 0.5, k
        panels.append(framed[header:, k * width:(k + 1) * width])
    for a in range(len(panels)):
        for b in range(a + 1, len(panels)):
            assert not np.array_equal(panels[a], panels[b]), (
                columns[a], columns[b])


def test_class_folders_without_a_split(classes, pretrained, tmp_path):
    ft = str(tmp_path / "ft")
    printed = run_cli(["finetune", "--data", classes, "--image-size",
                       str(SIZE), "--epochs", "1", "--batch-size", "8",
                       "--depth", "1", "--output", ft])
    assert "18 images found" in printed and "3 classes" in printed
    assert "(12 images in 3 classes for training" in printed
    metrics = report(ft)["metrics"]
    for split in ("validation", "test"):
        assert 0.0 <= metrics[f"{split}_accuracy"] <= 1.0
        assert metrics[f"{split}_images"] == 3

    ev = str(tmp_path / "ev")
    printed = run_cli(["evaluate", ft, "--output", ev])
    assert "3 images in 3 classes in its 'test' split" in printed
    assert report(ev)["metrics"]["accuracy"] == pytest.approx(
        metrics["test_accuracy"])

    pr = str(tmp_path / "pr")
    printed = run_cli(["probe", "--from", pretrained[0], "--data", classes,
                       "--feature-layer", "1", "--probe-epochs", "2",
                       "--output", pr])
    assert "12 training images in 3 classes" in printed
    assert {"validation_probe_accuracy", "test_probe_accuracy"} <= set(
        report(pr)["metrics"])


# What TensorFlow and CUDA print at start-up, and Keras's warning about
# `shuffle=True` with a tf.data dataset.
NOISE = ("oneDNN", "cudart_stub", "cuInit", "absl::InitializeLog",
         "cpu_feature_guard", "E0000", "W0000", "I0000", "shuffle=True")


def test_the_command_prints_no_framework_start_up_lines(pretrained, photos,
                                                        tmp_path):
    # TF_CPP_MIN_LOG_LEVEL=2, a common setting that hides TensorFlow's
    # info and warnings but not its errors: the "failed call to cuInit"
    # error of a machine without a GPU must not come out either.
    env = dict(os.environ, KERAS_BACKEND=keras.backend.backend(),
               TF_CPP_MIN_LOG_LEVEL="2")
    out = str(tmp_path / "inp")
    done = subprocess.run(
        [sys.executable, "-m", "keras_simmim.cli", "inpaint", "--from",
         pretrained[0], "--data", photos, "--num-images", "2", "--output",
         out], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "keras-simmim inpaint:" in done.stdout
    leaked = [line for line in done.stderr.splitlines()
              if any(noise in line for noise in NOISE)]
    assert not leaked, done.stderr[-3000:]
