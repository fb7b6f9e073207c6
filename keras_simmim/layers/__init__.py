"""Layers that SimMIM models are made of."""

from keras_simmim.layers.log_mel import LogMelSpectrogram
from keras_simmim.layers.mask_strategies import STRATEGIES
from keras_simmim.layers.mask_strategies import VIDEO_STRATEGIES
from keras_simmim.layers.mask_strategies import average_distance
from keras_simmim.layers.feature_pyramid import SimpleFeaturePyramid
from keras_simmim.layers.mask_token import MaskToken
from keras_simmim.layers.masking import RandomPatchMasking
from keras_simmim.layers.pixel_shuffle import PixelShuffle
from keras_simmim.layers.reconstruction_head import HEADS
from keras_simmim.layers.reconstruction_head import MLPReconstructionHead
from keras_simmim.layers.reconstruction_head import ReconstructionHead
from keras_simmim.layers.reconstruction_head import TransformerReconstructionHead
from keras_simmim.layers.transformer_block import TransformerBlock

__all__ = [
    "HEADS",
    "LogMelSpectrogram",
    "MLPReconstructionHead",
    "MaskToken",
    "PixelShuffle",
    "RandomPatchMasking",
    "ReconstructionHead",
    "SimpleFeaturePyramid",
    "STRATEGIES",
    "TransformerBlock",
    "TransformerReconstructionHead",
    "VIDEO_STRATEGIES",
    "average_distance",
]
