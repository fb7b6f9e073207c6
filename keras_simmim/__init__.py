"""keras_simmim: SimMIM masked image modeling for Keras 3, on every backend."""

from keras_simmim._startup import quiet_framework_logs

quiet_framework_logs()  # the keras-simmim command only; before TensorFlow

from keras_simmim import backbones
from keras_simmim import data
from keras_simmim import distribute
from keras_simmim import downstream
from keras_simmim import layers
from keras_simmim import models
from keras_simmim import multimodal
from keras_simmim import presets
from keras_simmim import training
from keras_simmim import visualization
from keras_simmim.downstream import SimMIMClassifier
from keras_simmim.models import MAEModel
from keras_simmim.models import SimMIMModel
from keras_simmim.version import __version__

__all__ = [
    "MAEModel",
    "SimMIMClassifier",
    "SimMIMModel",
    "backbones",
    "data",
    "distribute",
    "downstream",
    "layers",
    "models",
    "multimodal",
    "presets",
    "training",
    "visualization",
    "__version__",
]
