"""keras_simmim: SimMIM masked image modeling for Keras 3, on every backend."""

from keras_simmim import backbones
from keras_simmim import layers
from keras_simmim import models
from keras_simmim.models import SimMIMModel
from keras_simmim.version import __version__

__all__ = ["SimMIMModel", "backbones", "layers", "models", "__version__"]
