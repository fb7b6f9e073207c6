"""Multimodal: fuse SimMIM-pretrained image encoders with text backbones."""

from keras_simmim.multimodal.fusion import FUSIONS
from keras_simmim.multimodal.fusion import CrossAttentionBlock
from keras_simmim.multimodal.fusion import CrossAttentionFusion
from keras_simmim.multimodal.fusion import GatedFusion
from keras_simmim.multimodal.fusion import LateConcatFusion
from keras_simmim.multimodal.fusion import MergedFusion
from keras_simmim.multimodal.fusion import masked_mean
from keras_simmim.multimodal.fusion_classifier import FusionClassifier
from keras_simmim.multimodal.text import build_text_preprocessor

__all__ = [
    "FUSIONS",
    "CrossAttentionBlock",
    "CrossAttentionFusion",
    "FusionClassifier",
    "GatedFusion",
    "LateConcatFusion",
    "MergedFusion",
    "build_text_preprocessor",
    "masked_mean",
]
