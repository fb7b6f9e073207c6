"""Layers that SimMIM models are made of."""

from keras_simmim.layers.mask_token import MaskToken
from keras_simmim.layers.mask_strategies import STRATEGIES
from keras_simmim.layers.mask_strategies import average_distance
from keras_simmim.layers.masking import RandomPatchMasking
from keras_simmim.layers.pixel_shuffle import PixelShuffle
from keras_simmim.layers.reconstruction_head import ReconstructionHead

__all__ = ["MaskToken", "PixelShuffle", "RandomPatchMasking", "ReconstructionHead"]
