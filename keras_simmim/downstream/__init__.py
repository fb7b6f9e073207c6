"""Downstream use of pretrained backbones: fine-tuning, probes, k-NN,
object detection, super-resolution."""

from keras_simmim.downstream.classifier import SimMIMClassifier
from keras_simmim.downstream.classifier import SmoothedSparseCrossEntropy
from keras_simmim.downstream.detection import DETECTORS
from keras_simmim.backbones.pyramid import NamedPyramidBackbone
from keras_simmim.backbones.pyramid import PyramidImageEncoder
from keras_simmim.layers.feature_pyramid import SimpleFeaturePyramid
from keras_simmim.downstream.detection import build_object_detector
from keras_simmim.downstream.detection_metrics import coco_metrics
from keras_simmim.downstream.features import extract_features
from keras_simmim.downstream.inpainting import biharmonic_fill
from keras_simmim.downstream.inpainting import masked_psnr
from keras_simmim.downstream.inpainting import mean_fill
from keras_simmim.downstream.inpainting import pixel_mask_from_grid
from keras_simmim.downstream.knn import knn_accuracy
from keras_simmim.downstream.knn import knn_predict
from keras_simmim.downstream.layer_decay import LayerDecayAdamW
from keras_simmim.downstream.layer_decay import layer_decay_multipliers
from keras_simmim.training.schedules import warmup_cosine
from keras_simmim.downstream.probe import fit_linear_probe
from keras_simmim.downstream.segmentation import SemanticSegmenter
from keras_simmim.downstream.segmentation import build_segmenter
from keras_simmim.downstream.super_resolution import SuperResolutionModel
from keras_simmim.downstream.super_resolution import bicubic_upscale
from keras_simmim.downstream.super_resolution import degrade
from keras_simmim.downstream.super_resolution import image_quality

__all__ = [
    "DETECTORS",
    "LayerDecayAdamW",
    "NamedPyramidBackbone",
    "PyramidImageEncoder",
    "SimMIMClassifier",
    "SimpleFeaturePyramid",
    "SmoothedSparseCrossEntropy",
    "SemanticSegmenter",
    "SuperResolutionModel",
    "biharmonic_fill",
    "bicubic_upscale",
    "build_object_detector",
    "build_segmenter",
    "coco_metrics",
    "degrade",
    "extract_features",
    "fit_linear_probe",
    "image_quality",
    "knn_accuracy",
    "knn_predict",
    "layer_decay_multipliers",
    "masked_psnr",
    "mean_fill",
    "pixel_mask_from_grid",
    "warmup_cosine",
]
