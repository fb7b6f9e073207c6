"""Serialization helpers shared by the models that wrap a backbone."""

import contextlib
import os

import keras


def with_deserialized_backbone(config):
    """A copy of a model config whose `backbone` entry is rebuilt."""
    config = dict(config)
    config["backbone"] = keras.saving.deserialize_keras_object(
        config["backbone"]
    )
    return config


@contextlib.contextmanager
def unreadable_file_named(path):
    """Turns a weights file that h5py cannot read (truncated by a killed
    copy, not HDF5, missing) into a `ValueError` that names the file: h5py's
    own `OSError` does not."""
    try:
        yield
    except OSError as error:
        raise ValueError(
            f"Weights file {os.fspath(path)!r} cannot be read ({error}). "
            "It is missing, truncated or not a Keras weights file."
        ) from error
