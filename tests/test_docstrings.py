"""Runs the Example blocks of the public docstrings."""

import doctest
import importlib

import pytest

MODULES = [
    "keras_simmim.layers.masking",
    "keras_simmim.layers.mask_strategies",
    "keras_simmim.layers.mask_token",
    "keras_simmim.layers.pixel_shuffle",
    "keras_simmim.layers.reconstruction_head",
    "keras_simmim.models.simmim_model",
    "keras_simmim.models.mae_model",
    "keras_simmim.layers.transformer_block",
    "keras_simmim.backbones.adapter",
    "keras_simmim.backbones.convnet",
    "keras_simmim.backbones.swin",
    "keras_simmim.backbones.resize",
    "keras_simmim.training.checkpoints",
    "keras_simmim.training.epoch_data",
    "keras_simmim.training.input_check",
    "keras_simmim.data.synthetic",
    "keras_simmim.data.normalization",
    "keras_simmim.data.digits",
    "keras_simmim.data.detection",
    "keras_simmim.data.segmentation",
    "keras_simmim.data.sort_of_clevr",
    "keras_simmim.data.builtin",
    "keras_simmim.data.subsets",
    "keras_simmim.data.augmentation",
    "keras_simmim.data.loaders",
    "keras_simmim.downstream.classifier",
    "keras_simmim.downstream.layer_decay",
    "keras_simmim.downstream.knn",
    "keras_simmim.downstream.probe",
    "keras_simmim.downstream.inpainting",
    "keras_simmim.downstream.detection",
    "keras_simmim.downstream.segmentation",
    "keras_simmim.downstream.super_resolution",
    "keras_simmim.visualization",
    "keras_simmim.distribute.layouts",
    "keras_simmim.multimodal.fusion",
    "keras_simmim.multimodal.fusion_classifier",
    "keras_simmim.multimodal.film",
    "keras_simmim.multimodal.relational",
    "keras_simmim.multimodal.coordinates",
    "keras_simmim.multimodal.text",
    "keras_simmim.multimodal.contrastive",
    "keras_simmim.multimodal.masked_multimodal",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no runnable example"
    assert result.failed == 0
