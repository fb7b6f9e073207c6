"""Backbone adapters: how SimMIM runs each backbone family with a mask.

`get_adapter` tries the most recently registered adapter first, so the
generic `ConvNetAdapter` is registered first (tried last) and user adapters
win over built-in ones.
"""

from keras_simmim.backbones.adapter import BackboneAdapter
from keras_simmim.backbones.adapter import get_adapter
from keras_simmim.backbones.adapter import grid_to_tokens
from keras_simmim.backbones.adapter import register_adapter
from keras_simmim.backbones.adapter import tokens_to_grid
from keras_simmim.backbones.convnet import ConvNetAdapter
from keras_simmim.backbones.convnet import ResNetAdapter
from keras_simmim.backbones.deit import DeiTAdapter
from keras_simmim.backbones.dinov2 import DINOV2Adapter
from keras_simmim.backbones.pyramid import NamedPyramidBackbone
from keras_simmim.backbones.pyramid import PyramidImageEncoder
from keras_simmim.backbones.pyramid import pyramid_encoder
from keras_simmim.backbones.resize import load_backbone
from keras_simmim.backbones.resize import resize
from keras_simmim.backbones.swin import SwinAdapter
from keras_simmim.backbones.videoprism import VideoPrismAdapter
from keras_simmim.backbones.vit import ViTAdapter

__all__ = [
    "BackboneAdapter",
    "ConvNetAdapter",
    "DINOV2Adapter",
    "DeiTAdapter",
    "NamedPyramidBackbone",
    "PyramidImageEncoder",
    "ResNetAdapter",
    "SwinAdapter",
    "VideoPrismAdapter",
    "ViTAdapter",
    "get_adapter",
    "grid_to_tokens",
    "load_backbone",
    "pyramid_encoder",
    "register_adapter",
    "resize",
    "tokens_to_grid",
]
