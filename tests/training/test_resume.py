"""Killed pretraining resumes with the same command and ends exactly where an
uninterrupted run ends; checkpoints are written atomically."""

import json
import os
import signal
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_simmim import cli
from keras_simmim.training import ResumableCheckpoint
from keras_simmim.training import epoch_permutation
from keras_simmim.training import latest_checkpoint
from keras_simmim.training.checkpoints import KILL_AT_BATCH_ENV
from keras_simmim.training.checkpoints import KILL_IN_SAVE_ENV
from tests.conftest import to_numpy

# 64 training images in batches of 32: 2 steps per epoch.
FLAGS = [
    "pretrain", "--epochs", "3", "--num-images", "64", "--batch-size", "32",
    "--seed", "5", "--depth", "1",
]


def run_cli(output, **env):
    """Runs the command in a fresh process, as a user would."""
    command = [sys.executable, "-m", "keras_simmim.cli", *FLAGS, "--output",
               str(output)]
    environment = dict(os.environ, KERAS_BACKEND=keras.backend.backend())
    environment.update(env)
    return subprocess.run(
        command, env=environment, capture_output=True, text=True,
        timeout=600,
    )


def weights(path):
    model = keras.saving.load_model(path)
    return [to_numpy(v) for v in model.variables], model


def test_killed_mid_epoch_and_mid_save_resumes_to_the_same_weights(
    tmp_path, capsys
):
    reference = run_cli(tmp_path / "reference")
    assert reference.returncode == 0, reference.stderr[-2000:]

    run = tmp_path / "run"
    # SIGKILL during epoch 2 (after its first batch).
    killed = run_cli(run, **{KILL_AT_BATCH_ENV: "3"})
    assert killed.returncode == -signal.SIGKILL
    _, state = latest_checkpoint(run / "checkpoints")
    assert state["epoch"] == 1
    assert not (run / "model.keras").exists()

    # The same command resumes; SIGKILL it while it writes epoch 2.
    killed = run_cli(run, **{KILL_IN_SAVE_ENV: "2"})
    assert killed.returncode == -signal.SIGKILL
    assert "resuming" in killed.stdout
    assert (run / "checkpoints" / "epoch-0002.partial").is_dir()
    _, state = latest_checkpoint(run / "checkpoints")
    assert state["epoch"] == 1  # the half-written save is not used

    resumed = run_cli(run)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "after epoch 1" in resumed.stdout
    assert sorted(os.listdir(run / "checkpoints")) == ["epoch-0003"]

    want, want_model = weights(tmp_path / "reference" / "model.keras")
    got, got_model = weights(run / "model.keras")
    for a, b in zip(want, got):
        np.testing.assert_array_equal(a, b)
    assert int(to_numpy(got_model.optimizer.iterations)) == 6
    history = json.load(open(run / "history.json"))
    reference_history = json.load(open(tmp_path / "reference" / "history.json"))
    assert history["history"] == reference_history["history"]
    assert history["resumed_from_epoch"] == 1

    # Finished: the same command does not train or rewrite anything again.
    before = os.path.getmtime(run / "model.keras")
    cli.main([*FLAGS, "--output", str(run)])
    assert "already complete" in capsys.readouterr().out
    assert os.path.getmtime(run / "model.keras") == before


def test_resume_refuses_other_settings(tmp_path):
    output = tmp_path / "run"
    checkpoints = output / "checkpoints"
    os.makedirs(checkpoints / "epoch-0001")
    (checkpoints / "epoch-0001" / "state.json").write_text(
        json.dumps({"epoch": 1, "history": {}, "fingerprint": dict(
            backbone="vit", epochs=3, image_size=32, batch_size=32,
            num_images=64, patch_size=4, mask_patch_size=8, mask_ratio=0.6,
            learning_rate=1e-3, seed=4, depth=1,
        )})
    )
    with pytest.raises(SystemExit, match="--seed 4 -> 5"):
        cli.main([*FLAGS, "--output", str(output)])
    (checkpoints / "epoch-0001" / "state.json").write_text("{not json")
    with pytest.raises(SystemExit, match="epoch-0001/state.json"):
        cli.main([*FLAGS, "--output", str(output)])


def test_epoch_order_depends_only_on_seed_and_epoch():
    orders = [epoch_permutation(10, seed=1, epoch=e) for e in range(3)]
    np.testing.assert_array_equal(orders[2], epoch_permutation(10, 1, 2))
    assert not np.array_equal(orders[0], orders[1])
    assert not np.array_equal(orders[0], epoch_permutation(10, 2, 0))
    assert all(sorted(o) == list(range(10)) for o in orders)
    with pytest.raises(ValueError, match="num_items"):
        epoch_permutation(0, 1, 0)
    with pytest.raises(TypeError, match="seed"):
        epoch_permutation(3, "1", 0)
    with pytest.raises(ValueError, match="epoch=-1"):
        epoch_permutation(3, 1, -1)


def test_checkpoint_keeps_the_newest_and_clears_partial_saves(tmp_path):
    (tmp_path / "epoch-0007.partial").mkdir()
    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    model.compile(optimizer="sgd", loss="mse")
    callback = ResumableCheckpoint(tmp_path, fingerprint={"a": 1}, keep=2)
    assert not (tmp_path / "epoch-0007.partial").exists()
    x, y = np.ones((4, 2)), np.ones((4, 1))
    model.fit(x, y, epochs=3, verbose=0, callbacks=[callback])
    assert sorted(os.listdir(tmp_path)) == ["epoch-0002", "epoch-0003"]
    path, state = latest_checkpoint(tmp_path)
    assert state["epoch"] == 3 and state["fingerprint"] == {"a": 1}
    assert len(state["history"]["loss"]) == 3
    loaded = keras.saving.load_model(path)
    for a, b in zip(model.variables, loaded.variables):
        np.testing.assert_array_equal(to_numpy(a), to_numpy(b))
    assert latest_checkpoint(tmp_path / "missing") is None
    with pytest.raises(ValueError, match="keep"):
        ResumableCheckpoint(tmp_path, keep=0)


def test_seeded_runs_are_identical(images):
    from keras_simmim import SimMIMModel
    from tests.conftest import tiny_vit

    def run():
        keras.utils.set_random_seed(7)
        model = SimMIMModel(tiny_vit(), mask_patch_size=8, seed=7)
        model.compile(optimizer=keras.optimizers.AdamW(1e-3))
        model.fit(images[:16], batch_size=8, epochs=2, verbose=0)
        return [to_numpy(v) for v in model.variables]

    for a, b in zip(run(), run()):
        np.testing.assert_array_equal(a, b)


def test_nan_loss_stops_training_and_keeps_the_last_good_checkpoint(
    images, tmp_path
):
    from keras_simmim import SimMIMModel
    from tests.conftest import tiny_vit

    model = SimMIMModel(tiny_vit(), mask_patch_size=8, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    callback = ResumableCheckpoint(tmp_path)
    model.fit(images[:8], batch_size=8, epochs=1, verbose=0,
              callbacks=[callback])
    poisoned = images[:8].copy()
    poisoned[3, 5, 5, 0] = np.nan
    history = model.fit(poisoned, batch_size=8, epochs=3, initial_epoch=1,
                        verbose=0, callbacks=[callback])
    assert callback.stopped_on_nan
    assert len(history.history["loss"]) == 1  # stopped after one batch
    assert sorted(os.listdir(tmp_path)) == ["epoch-0001"]
    path, state = latest_checkpoint(tmp_path)
    restored = keras.saving.load_model(path)
    assert all(
        np.isfinite(to_numpy(v)).all() for v in restored.trainable_variables
    )


def test_truncated_checkpoint_is_named(tmp_path):
    output = tmp_path / "run"
    flags = [*FLAGS[:2], "1", *FLAGS[3:]]  # one epoch
    cli.main([*flags, "--output", str(output)])
    model_file = output / "checkpoints" / "epoch-0001" / "model.keras"
    model_file.write_bytes(model_file.read_bytes()[:1000])
    (output / "history.json").unlink()  # not finished: it must resume
    with pytest.raises(SystemExit, match="epoch-0001/model.keras.*unreadable"):
        cli.main([*flags, "--output", str(output)])
