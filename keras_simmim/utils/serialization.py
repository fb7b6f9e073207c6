"""Serialization helpers shared by the models that wrap a backbone."""

import keras


def with_deserialized_backbone(config):
    """A copy of a model config whose `backbone` entry is rebuilt."""
    config = dict(config)
    config["backbone"] = keras.saving.deserialize_keras_object(
        config["backbone"]
    )
    return config
