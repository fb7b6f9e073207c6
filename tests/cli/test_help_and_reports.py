"""The command's `--help`, printed and saved results, `evaluate`'s data
and the folders a failed run leaves (none)."""

import argparse
import json
import os

import numpy as np
import pytest
from PIL import Image

from keras_simmim import SimMIMModel
from keras_simmim import cli
from keras_simmim.cli import common
from tests.conftest import tiny_vit


def subcommand_parsers():
    parser = cli.build_parser()
    commands = next(a for a in parser._actions
                    if isinstance(a, argparse._SubParsersAction))
    return parser, commands.choices


def squeezed(text):
    return "".join(text.split())  # `--help` wraps lines anywhere


def test_every_option_has_help_and_shows_its_default():
    parser, commands = subcommand_parsers()
    assert set(commands) == set(cli.SUBCOMMANDS)
    for name, sub in commands.items():
        shown = squeezed(sub.format_help())
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            where = f"{name} {action.option_strings or action.dest}"
            assert action.help and action.help.strip(), where
            text = sub._get_formatter()._expand_help(action)
            assert squeezed(text) in shown, where
            if not action.option_strings or action.required:
                continue
            if action.default is None:
                assert "default" in text.lower(), where  # said in words
            else:
                value = action.default
                if isinstance(value, bool):
                    value = "on" if value else "off"
                assert f"(default: {value})" in text, where
    top = parser.format_help()
    assert "Examples" in top
    examples = [line for line in top.splitlines()
                if line.startswith("  keras-simmim ")]
    assert 4 <= len(examples) <= 6
    for command in ("pretrain", "finetune --from", "probe", "inpaint",
                    "--data"):
        assert any(command in line for line in examples), command


def test_results_print_aligned_and_rounded_and_save_full_precision(
    tmp_path, capsys
):
    metrics = {"test_accuracy": 0.975312, "test_loss": 0.123456789,
               "train_seconds_this_process": 12.04, "psnr_model": 23.456789,
               "images": 179, "feature_layer": "final"}
    assert common.format_results(metrics).splitlines() == [
        "  test_accuracy:              97.53%",
        "  test_loss:                  0.1235",
        "  train_seconds_this_process: 12.0 s",
        "  psnr_model:                 23.46 dB",
        "  images:                     179",
        "  feature_layer:              final",
    ]
    assert common.format_value("psnr_gain_db", np.float32(1.23456)) == (
        "1.23 dB")
    common.report_results(str(tmp_path), "keras-simmim test", metrics,
                          {"settings": {"seed": 0}})
    out = capsys.readouterr().out
    assert "keras-simmim test:\n  test_accuracy:" in out
    assert "0.975312" not in out and "{" not in out
    assert f"Output folder: {tmp_path}" in out
    saved = json.load(open(tmp_path / "report.json"))
    assert saved["metrics"] == metrics  # full precision
    assert "| test_accuracy | 97.53% |" in (tmp_path / "report.md").read_text()


def write_class_folder(root, classes=3, per_class=2, size=16):
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for c in range(classes):
            folder = root / split / f"class{c}"
            folder.mkdir(parents=True)
            for i in range(per_class):
                pixels = rng.integers(0, 255, (size, size, 3)).astype("uint8")
                Image.fromarray(pixels).save(folder / f"{i}.png")


def test_evaluate_uses_the_runs_data_and_refuses_another_class_count(
    tmp_path, monkeypatch, capsys
):
    work = tmp_path / "work"
    write_class_folder(work / "photos")
    # A tiny pretrained backbone: fine-tuning it compiles quickly.
    SimMIMModel(tiny_vit((16, 16, 3)), mask_patch_size=8).save_to_preset(
        str(work / "pretrained"))
    monkeypatch.chdir(work)  # finetune is given a relative --data
    cli.main(["finetune", "--from", "pretrained", "--data", "photos",
              "--epochs", "1", "--batch-size", "8", "--output", "ft"])
    trained = json.load(open(work / "ft" / "report.json"))
    assert trained["data"] == str(work / "photos")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the run's data is found from anywhere
    capsys.readouterr()
    cli.main(["evaluate", str(work / "ft"), "--output", "ev"])
    assert "photos (what the run was trained on)" in capsys.readouterr().out
    scored = json.load(open(elsewhere / "ev" / "report.json"))
    assert scored["settings"]["data"] == str(work / "photos")
    assert scored["metrics"]["accuracy"] == pytest.approx(
        trained["metrics"]["test_accuracy"])
    # The digits have 10 classes, the model 3: refused before any work,
    # and the output folder it would have made is not left behind.
    with pytest.raises(SystemExit, match=(
            "--data digits has 10 classes but the model classifies 3")):
        cli.main(["evaluate", str(work / "ft"), "--data", "digits",
                  "--output", "ev-digits"])
    assert sorted(os.listdir(elsewhere)) == ["ev"]


def test_depth_with_from_is_refused_before_any_work(tmp_path):
    # --depth sizes a backbone the command builds; --from brings its own.
    for command in ("finetune", "probe", "upscale"):
        with pytest.raises(SystemExit, match=r"--depth 2 .*--from"):
            cli.main([command, "--from", str(tmp_path / "run"), "--depth",
                      "2", "--output", str(tmp_path / command)])
        assert not (tmp_path / command).exists()


def test_a_failed_run_leaves_no_empty_folder(tmp_path, monkeypatch):
    empty = tmp_path / "no-images"
    empty.mkdir()
    flags = ["pretrain", "--data", str(empty), "--epochs", "1"]
    with pytest.raises(SystemExit, match="No image files"):
        cli.main(flags + ["--output", str(tmp_path / "new" / "run")])
    assert not (tmp_path / "new").exists()  # parents it made go too
    # The default folder, simmim_runs/... in the working directory.
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match="No image files"):
        cli.main(flags)
    assert not (tmp_path / "simmim_runs").exists()
    # A folder the user made is kept, empty or not.
    mine = tmp_path / "mine"
    mine.mkdir()
    with pytest.raises(SystemExit, match="No image files"):
        cli.main(flags + ["--output", str(mine)])
    assert mine.is_dir()


def test_only_folders_without_files_are_removed(tmp_path):
    kept, emptied = tmp_path / "kept", tmp_path / "emptied" / "run"
    shared = tmp_path / "runs"
    with pytest.raises(KeyboardInterrupt):
        with common.removing_empty_folders_on_failure():
            common.make_run_folder(str(kept))
            (kept / "checkpoints").mkdir()
            (kept / "checkpoints" / "state.json").write_text("{}")
            common.make_run_folder(str(emptied))
            (emptied / "checkpoints").mkdir()  # folders only: no data
            common.make_run_folder(str(shared / "mine"))
            (shared / "another-process").mkdir()  # not this run's
            raise KeyboardInterrupt
    assert (kept / "checkpoints" / "state.json").is_file()
    assert not (tmp_path / "emptied").exists()
    assert os.listdir(shared) == ["another-process"]
    with common.removing_empty_folders_on_failure():
        common.make_run_folder(str(tmp_path / "done"))
    assert (tmp_path / "done").is_dir()  # success: nothing removed
