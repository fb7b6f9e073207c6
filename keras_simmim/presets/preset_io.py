"""Preset directories: our own format, keras-hub backbones, transformers.

A directory written by `save_preset` holds:

* `config.json`, `metadata.json`, `model.weights.h5`: a keras-hub preset of
  the backbone alone (written by keras-hub), so keras-hub loads the
  pretrained backbone from the same directory; only for keras-hub backbones
  (a `keras.applications` or custom backbone lives in `simmim.json` and
  `simmim.weights.h5` only);
* `simmim.json`: the `SimMIMModel` config and the library version;
* `simmim.weights.h5`: the weights of the whole model (no optimizer
  state: use `model.save("x.keras")` to resume training).

`load_preset` also accepts a plain keras-hub backbone preset (a fresh SimMIM
model is built around the backbone) and a Hugging Face transformers
directory (see `keras_simmim.presets.transformers_checkpoints`).

With `image_shape` (and, for Swin, `window_size`) a ViT, DeiT or Swin
backbone is loaded at its saved size and `keras_simmim.backbones.resize`d;
the mask token and the decoder do not depend on the resolution and are
loaded as saved.
"""

import json
import os
import shutil
import tempfile

import keras
import keras_hub

from keras_simmim.backbones.resize import is_resizable
from keras_simmim.backbones.resize import resize
from keras_simmim.utils.serialization import unreadable_file_named
from keras_simmim.version import __version__

# A preset holds the model, not a training run: `model.save_weights` would
# also write the optimizer's slots (twice the model's size for AdamW) and
# loading them into a fresh model's unbuilt optimizer warns. Keras's weights
# writer takes objects to skip; `model.save("x.keras")` keeps the optimizer
# for resuming.
from keras.src.saving import saving_lib  # noqa: E402

SIMMIM_CONFIG_FILE = "simmim.json"
SIMMIM_WEIGHTS_FILE = "simmim.weights.h5"
CONFIG_FILE = "config.json"


def _read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"Preset file {path} is not valid JSON: {e}") from e


def at_size(backbone, image_shape=None, window_size=None):
    """`backbone` resized to `image_shape` / `window_size`; unchanged when
    both are None, or for an `image_shape` and a family `resize` does not
    know (a CNN that takes any size gets `image_shape` as a model argument;
    other backbones refuse it there)."""
    if window_size is None and (
        image_shape is None or not is_resizable(backbone)
    ):
        return backbone
    if image_shape is None:
        image_shape = backbone.image_shape
    return resize(backbone, image_shape, window_size=window_size)


def _hub_backbone(preset):
    with unreadable_file_named(os.path.join(preset, "model.weights.h5")):
        return keras_hub.models.Backbone.from_preset(preset)


def load_preset(model_cls, preset, **kwargs):
    """Loads `model_cls` from a local preset directory (see module doc).

    `image_shape` and `window_size` in `kwargs` load a ViT, DeiT or Swin
    backbone at a new resolution / window (see `at_size`).
    """
    if not isinstance(preset, (str, os.PathLike)):
        raise TypeError(
            "`preset` must be a path to a local directory. Received: "
            f"preset={preset!r}."
        )
    preset = os.fspath(preset)
    if not os.path.isdir(preset):
        raise ValueError(
            f"`preset` must be an existing local directory. Received: "
            f"preset={preset!r}. keras_simmim loads presets from local "
            "directories only; download checkpoints first."
        )
    simmim_config = os.path.join(preset, SIMMIM_CONFIG_FILE)
    if os.path.exists(simmim_config):
        saved = _read_json(simmim_config)
        config = dict(saved["config"]["config"])
        config.update(kwargs)
        window_size = config.pop("window_size", None)
        skip = []
        if window_size is not None or kwargs.get("image_shape") is not None:
            if os.path.exists(os.path.join(preset, CONFIG_FILE)):
                # A keras-hub backbone: load it from its own preset files
                # at the saved size, resize it, and skip it below.
                backbone = _hub_backbone(preset)
                resized = at_size(backbone, kwargs.get("image_shape"),
                                  window_size)
                if resized is not backbone:
                    config["backbone"] = resized
            elif window_size is not None:
                raise ValueError(
                    "`window_size` applies to Swin backbones only; the "
                    f"backbone of {preset!r} is not a keras-hub backbone. "
                    f"Received: window_size={window_size!r}."
                )
        if isinstance(config["backbone"], dict):
            model = model_cls.from_config(config)
        else:
            model = model_cls(**config)
            skip.append(model.backbone)
        if model.optimizer:
            skip.append(model.optimizer)
        weights = os.path.join(preset, SIMMIM_WEIGHTS_FILE)
        with unreadable_file_named(weights):
            saving_lib.load_weights_only(
                model, weights, objects_to_skip=skip or None
            )
        return model
    config_path = os.path.join(preset, CONFIG_FILE)
    if not os.path.exists(config_path):
        raise ValueError(
            f"No {SIMMIM_CONFIG_FILE} or {CONFIG_FILE} in preset directory "
            f"{preset!r}: it is neither a keras_simmim, keras-hub nor "
            "transformers preset."
        )
    config = _read_json(config_path)
    if "model_type" in config:
        from keras_simmim.presets.transformers_checkpoints import load_transformers

        return load_transformers(model_cls, preset, config, **kwargs)
    backbone = _hub_backbone(preset)
    window_size = kwargs.pop("window_size", None)
    backbone = at_size(backbone, kwargs.get("image_shape"), window_size)
    return model_cls(backbone, **kwargs)


def save_preset(model, preset_dir, overwrite=False):
    """Writes `model` to `preset_dir` (see module doc).

    Files are written to a temporary directory first and then moved in one
    by one, so an interrupted save never leaves a half-written file under its
    final name. Files in the directory that are not part of a preset are left
    alone.
    """
    preset_dir = os.fspath(preset_dir)
    if os.path.exists(preset_dir):
        if not os.path.isdir(preset_dir):
            raise ValueError(
                f"`preset_dir` {preset_dir!r} exists and is not a directory."
            )
        if os.listdir(preset_dir) and not overwrite:
            raise ValueError(
                f"`preset_dir` {preset_dir!r} is not empty. Pass "
                "overwrite=True to replace the preset files in it, or choose "
                "a new directory."
            )
    parent = os.path.dirname(os.path.abspath(preset_dir))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".simmim-preset-", dir=parent)
    try:
        model.adapter.prepare_to_save()
        if isinstance(model.backbone, keras_hub.models.Backbone):
            model.backbone.save_to_preset(staging)
        with open(os.path.join(staging, SIMMIM_CONFIG_FILE), "w") as f:
            json.dump(
                {
                    "keras_simmim_version": __version__,
                    "keras_version": keras.__version__,
                    "config": keras.saving.serialize_keras_object(model),
                },
                f,
                indent=2,
            )
        saving_lib.save_weights_only(
            model,
            os.path.join(staging, SIMMIM_WEIGHTS_FILE),
            objects_to_skip=[model.optimizer] if model.optimizer else None,
        )
        os.makedirs(preset_dir, exist_ok=True)
        for name in os.listdir(staging):
            os.replace(
                os.path.join(staging, name), os.path.join(preset_dir, name)
            )
    finally:
        shutil.rmtree(staging, ignore_errors=True)
