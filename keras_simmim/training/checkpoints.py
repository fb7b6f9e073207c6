"""Checkpoints that survive being killed at any moment.

`ResumableCheckpoint` writes, after every epoch, a directory
`epoch-NNNN/` holding `model.keras` (weights, optimizer state, the
learning-rate schedule's position through `optimizer.iterations`, and the
masking layer's random state, which is a model variable) and `state.json`
(epochs done, the history so far, and a fingerprint of the run's settings).
The directory is written under a temporary name and renamed into place, so a
kill during a save leaves at worst a `*.partial` directory that is ignored
and removed; the last complete checkpoint stays intact. Older checkpoints are
removed only after the new one is in place.
"""

import json
import math
import os
import shutil
import signal

import keras

CHECKPOINT_PREFIX = "epoch-"
PARTIAL_SUFFIX = ".partial"
MODEL_FILE = "model.keras"
STATE_FILE = "state.json"
# Fault injection for the kill-and-resume tests, so a real SIGKILL lands at
# a known point: after writing epoch N's files but before renaming them into
# place (KILL_IN_SAVE), or after this process's Nth training batch
# (KILL_AT_BATCH).
KILL_IN_SAVE_ENV = "KERAS_SIMMIM_TEST_KILL_IN_SAVE"
KILL_AT_BATCH_ENV = "KERAS_SIMMIM_TEST_KILL_AT_BATCH"


def save_model_atomically(model, path):
    """`model.save(path)` through a temporary file and a rename."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    temporary = os.path.join(
        directory, f".{os.path.basename(path)}.{os.getpid()}.partial.keras"
    )
    try:
        model.save(temporary)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def _checkpoint_dirs(directory):
    found = []
    for name in os.listdir(directory):
        path = os.path.join(directory, name)
        if not name.startswith(CHECKPOINT_PREFIX) or not os.path.isdir(path):
            continue
        if name.endswith(PARTIAL_SUFFIX):
            continue
        try:
            epoch = int(name[len(CHECKPOINT_PREFIX) :])
        except ValueError:
            continue
        found.append((epoch, path))
    return sorted(found)


def latest_checkpoint(directory):
    """The newest complete checkpoint in `directory`.

    Returns:
        `(model_path, state)` with `state` the dict of `state.json`
        (`"epoch"`, `"history"`, `"fingerprint"`), or None if there is none.

    Raises:
        ValueError: the newest checkpoint's `state.json` is unreadable
            (names the file).
    """
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        return None
    checkpoints = _checkpoint_dirs(directory)
    if not checkpoints:
        return None
    _, path = checkpoints[-1]
    state_path = os.path.join(path, STATE_FILE)
    try:
        with open(state_path) as f:
            state = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(
            f"Checkpoint state {state_path!r} is unreadable ({e}); delete "
            "that checkpoint directory to fall back to the previous one."
        ) from e
    return os.path.join(path, MODEL_FILE), state


class ResumableCheckpoint(keras.callbacks.Callback):
    """Saves a complete, atomically written checkpoint after every epoch.

    A non-finite loss stops training (like `keras.callbacks.TerminateOnNaN`)
    and the diverged model is not saved, so the newest checkpoint is the last
    good one; `stopped_on_nan` tells what happened.

    Resume by loading `latest_checkpoint(directory)`'s model and calling
    `fit(..., initial_epoch=state["epoch"])` with this callback built with
    `history=state["history"]`; the saved history is then continued.

    Args:
        directory: where the `epoch-NNNN/` checkpoints go.
        fingerprint: JSON-serialisable description of the run's settings,
            stored with each checkpoint so a resume can refuse a checkpoint
            of different settings.
        history: dict of lists, the history of the epochs before this run's
            first (when resuming).
        keep: int >= 1, how many newest checkpoints to keep.

    Example:

    >>> import keras, numpy as np, tempfile
    >>> from keras_simmim.training import latest_checkpoint
    >>> inputs = keras.Input((2,))
    >>> model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    >>> model.compile(optimizer="sgd", loss="mse")
    >>> folder = tempfile.mkdtemp()
    >>> x, y = np.ones((4, 2)), np.ones((4, 1))
    >>> _ = model.fit(x, y, epochs=2, verbose=0,
    ...               callbacks=[ResumableCheckpoint(folder)])
    >>> path, state = latest_checkpoint(folder)
    >>> state["epoch"], len(state["history"]["loss"])
    (2, 2)
    """

    def __init__(self, directory, fingerprint=None, history=None, keep=1):
        super().__init__()
        if not isinstance(keep, int) or keep < 1:
            raise ValueError(f"`keep` must be an int >= 1. Received: {keep!r}.")
        self.directory = os.fspath(directory)
        self.fingerprint = fingerprint
        self.history = {k: list(v) for k, v in (history or {}).items()}
        self.keep = keep
        self._batches = 0
        self.stopped_on_nan = False
        self.last_saved = None
        self._kill_at_batch = int(os.environ.get(KILL_AT_BATCH_ENV, "0"))
        os.makedirs(self.directory, exist_ok=True)
        for name in os.listdir(self.directory):
            if name.endswith(PARTIAL_SUFFIX):  # left by a killed save
                shutil.rmtree(os.path.join(self.directory, name))

    def on_train_batch_end(self, batch, logs=None):
        self._batches += 1
        if self._batches == self._kill_at_batch:
            os.kill(os.getpid(), signal.SIGKILL)
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.stopped_on_nan = True
            self.model.stop_training = True
            print(
                f"ResumableCheckpoint: loss is {float(loss)} at batch {batch}; "
                "training stopped, the last checkpoint "
                f"({self.last_saved or 'none yet'}) is kept."
            )

    def on_epoch_end(self, epoch, logs=None):
        if self.stopped_on_nan or any(
            not math.isfinite(float(v)) for v in (logs or {}).values()
        ):
            # Never replace a good checkpoint with a diverged model.
            self.stopped_on_nan = True
            self.model.stop_training = True
            return
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        done = epoch + 1
        name = f"{CHECKPOINT_PREFIX}{done:04d}"
        final = os.path.join(self.directory, name)
        partial = final + PARTIAL_SUFFIX
        if os.path.exists(partial):
            shutil.rmtree(partial)
        os.makedirs(partial)
        self.model.save(os.path.join(partial, MODEL_FILE))
        with open(os.path.join(partial, STATE_FILE), "w") as f:
            json.dump(
                {
                    "epoch": done,
                    "history": self.history,
                    "fingerprint": self.fingerprint,
                },
                f,
                indent=2,
            )
        if os.environ.get(KILL_IN_SAVE_ENV) == str(done):
            os.kill(os.getpid(), signal.SIGKILL)
        if os.path.exists(final):
            shutil.rmtree(final)
        os.rename(partial, final)
        self.last_saved = final
        for _, path in _checkpoint_dirs(self.directory)[: -self.keep]:
            shutil.rmtree(path)
