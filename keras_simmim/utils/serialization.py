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


def portable_optimizer_config(config):
    """A copy of a compile config (or of any serialised object) in which
    every optimizer saved under a backend's own class is named by its
    public Keras name.

    Keras serialises an optimizer by the module of its class, and on torch
    and JAX `keras.optimizers.AdamW` is a backend class
    (`keras.src.backend.torch.optimizers.torch_adamw`): a file saved under
    torch would load the torch optimizer under TensorFlow and fail on the
    first update. Renamed to `keras.optimizers.AdamW`, it loads as the
    loading backend's own AdamW, with the same variables in the same order.
    Files saved before this rename load through it too.
    """
    if isinstance(config, list):
        return [portable_optimizer_config(item) for item in config]
    if not isinstance(config, dict):
        return config
    config = {key: portable_optimizer_config(value)
              for key, value in config.items()}
    module = config.get("module")
    name = config.get("class_name")
    if (
        isinstance(module, str)
        and module.startswith("keras.src.backend.")
        and ".optimizers" in module
        and isinstance(name, str)
        and hasattr(keras.optimizers, name)
    ):
        config["module"] = "keras.optimizers"
    return config


def serialize_towers(model):
    """The `image_backbone` / `text_backbone` entries of a two-tower
    model's config."""
    return {
        key: keras.saving.serialize_keras_object(getattr(model, key))
        for key in ("image_backbone", "text_backbone")
    }


def with_deserialized_towers(config):
    """A copy of a two-tower model config with both backbones rebuilt."""
    config = dict(config)
    for key in ("image_backbone", "text_backbone"):
        config[key] = keras.saving.deserialize_keras_object(config[key])
    return config
