"""Backbone adapters: how SimMIM runs each backbone family with a mask."""

from keras_simmim.backbones.adapter import BackboneAdapter
from keras_simmim.backbones.adapter import get_adapter
from keras_simmim.backbones.adapter import register_adapter
from keras_simmim.backbones.vit import ViTAdapter

__all__ = ["BackboneAdapter", "ViTAdapter", "get_adapter", "register_adapter"]
