"""Multimodal: fuse SimMIM-pretrained image encoders with text backbones."""

from keras_simmim.multimodal.contrastive import ContrastiveAligner
from keras_simmim.multimodal.contrastive import retrieval_recall
from keras_simmim.multimodal.film import FiLM
from keras_simmim.multimodal.film import FiLMBlock
from keras_simmim.multimodal.film import FiLMFusion
from keras_simmim.multimodal.fusion import FUSIONS
from keras_simmim.multimodal.fusion import CrossAttentionBlock
from keras_simmim.multimodal.fusion import CrossAttentionFusion
from keras_simmim.multimodal.fusion import GatedFusion
from keras_simmim.multimodal.fusion import LateConcatFusion
from keras_simmim.multimodal.fusion import MergedFusion
from keras_simmim.multimodal.fusion import masked_mean
from keras_simmim.multimodal.fusion_classifier import CLASSIFIER_FUSIONS
from keras_simmim.multimodal.fusion_classifier import FusionClassifier
from keras_simmim.multimodal.masked_multimodal import MaskedMultimodalModel
from keras_simmim.multimodal.relational import RelationalFusion
from keras_simmim.multimodal.text import build_text_preprocessor

__all__ = [
    "CLASSIFIER_FUSIONS",
    "ContrastiveAligner",
    "retrieval_recall",
    "FUSIONS",
    "CrossAttentionBlock",
    "CrossAttentionFusion",
    "FiLM",
    "FiLMBlock",
    "FiLMFusion",
    "FusionClassifier",
    "GatedFusion",
    "LateConcatFusion",
    "MaskedMultimodalModel",
    "MergedFusion",
    "RelationalFusion",
    "build_text_preprocessor",
    "masked_mean",
]
