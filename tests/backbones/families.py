"""Tiny backbones of every supported family (2 layers/stages, width 32 or
less, 32x32 images) and how each runs inside its downstream task."""

import keras
import keras_hub
from keras import ops


def tiny_backbone(family, image_shape=(32, 32, 3)):
    """Returns `(backbone, SimMIMModel overrides)` for `family`."""
    if family == "vit":
        return keras_hub.models.ViTBackbone(
            image_shape=image_shape, patch_size=4, num_layers=2, num_heads=2,
            hidden_dim=32, mlp_dim=64,
        ), {}
    if family == "deit":
        return keras_hub.models.DeiTBackbone(
            image_shape=image_shape, patch_size=4, num_layers=2, num_heads=2,
            hidden_dim=32, intermediate_dim=64,
        ), {}
    if family == "dinov2":
        return keras_hub.models.DINOV2Backbone(
            patch_size=4, num_layers=2, hidden_dim=32, num_heads=2,
            intermediate_dim=64, num_register_tokens=2,
            image_shape=image_shape, position_embedding_shape=image_shape,
        ), {}
    if family == "swin":
        return keras_hub.models.SwinTransformerBackbone(
            image_shape=image_shape, embed_dim=16, depths=(2, 2),
            num_heads=(2, 4), window_size=4, drop_path=0.0,
        ), {}
    if family == "resnet":
        # keras-hub's default: any image size, so SimMIM is told the size.
        return keras_hub.models.ResNetBackbone(
            input_conv_filters=[64], input_conv_kernel_sizes=[3],
            stackwise_num_filters=[64, 64], stackwise_num_blocks=[1, 1],
            stackwise_num_strides=[1, 2], block_type="basic_block",
        ), {"image_shape": image_shape}
    raise ValueError(family)


def downstream_task(family, backbone, num_classes=3):
    """The backbone inside the keras-hub task users fine-tune it in."""
    if family == "vit":
        return keras_hub.models.ViTImageClassifier(backbone, num_classes)
    if family == "deit":
        return keras_hub.models.DeiTImageClassifier(backbone, num_classes)
    if family == "swin":
        return keras_hub.models.SwinTransformerImageClassifier(
            backbone, num_classes
        )
    if family == "resnet":
        return keras_hub.models.ResNetImageClassifier(backbone, num_classes)
    if family == "dinov2":
        # keras-hub has no DINOv2 task: the usual class-token linear head.
        inputs = keras.Input(backbone.image_shape)
        tokens = backbone(inputs)
        outputs = keras.layers.Dense(num_classes)(tokens[:, 0])
        return keras.Model(inputs, outputs)
    raise ValueError(family)


def token_grid(model, images):
    """The adapter's embedding grid (for checks on where the mask goes)."""
    return ops.convert_to_numpy(model.adapter.embed(images))
