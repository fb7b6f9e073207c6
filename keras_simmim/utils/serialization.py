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


class RecompileOnLoad:
    """Mixin for every keras_simmim model: its compile config loads on any
    backend as it was asked for.

    - `jit_compile` is saved as the caller passed it (`"auto"` by
      default). Keras saves the value `"auto"` resolved to on the saving
      backend (True on JAX and TPU), so a model trained on JAX and loaded
      on torch would run every `predict` and `fit` under `torch.compile`
      (a tiny ViT's first predict: 18 s instead of 0.1 s on CPU), and on
      TensorFlow under XLA, which Keras's own `"auto"` leaves off on CPU.
    - Models whose `compile` is overridden (their own loss and default
      optimizer; this mixin's `compile` counts): Keras skips
      `compile_from_config` for them, so a loaded `.keras` file would lose
      its optimizer. This restores it and builds the optimizer so its
      saved state loads.
    """

    def compile(self, *args, jit_compile="auto", **kwargs):
        super().compile(*args, jit_compile=jit_compile, **kwargs)
        self._requested_jit_compile = jit_compile

    def get_compile_config(self):
        config = super().get_compile_config()
        if config is not None and hasattr(self, "_requested_jit_compile"):
            config["jit_compile"] = self._requested_jit_compile
        return config

    def compile_from_config(self, config):
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)
        if self.optimizer is not None and self.built:
            self.optimizer.build(self.trainable_variables)


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
