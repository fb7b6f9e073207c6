"""Data: built-in datasets and pixel normalisation."""

from keras_simmim.data.normalization import IMAGENET_MEAN
from keras_simmim.data.normalization import IMAGENET_STD
from keras_simmim.data.normalization import denormalize
from keras_simmim.data.normalization import normalize
from keras_simmim.data.synthetic import SHAPE_NAMES
from keras_simmim.data.synthetic import synthetic_scenes

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "SHAPE_NAMES",
    "denormalize",
    "normalize",
    "synthetic_scenes",
]
