"""Adapter for `keras_hub.models.ViTBackbone`."""

import keras_hub
from keras import ops

from keras_simmim.backbones.adapter import BackboneAdapter
from keras_simmim.backbones.adapter import register_adapter


def _find_layer(backbone, type_name):
    for layer in backbone.layers:
        if type(layer).__name__ == type_name:
            return layer
    raise ValueError(
        f"{type(backbone).__name__} has no {type_name} layer; the ViT "
        "adapter expects the layer graph keras_hub.models.ViTBackbone builds."
    )


@register_adapter
class ViTAdapter(BackboneAdapter):
    """Runs a keras-hub ViT with SimMIM's mask token.

    The mask token is blended into the patch embeddings right after the patch
    convolution, before the class token and the position embeddings, as in
    SimMIM and Hugging Face's `ViTForMaskedImageModeling`. The encoder output
    (after the final LayerNorm) loses its class token and is reshaped to the
    patch grid, so the output stride equals the patch size.
    """

    backbone_types = (keras_hub.models.ViTBackbone,)

    def __init__(self, backbone):
        super().__init__(backbone)
        if backbone.data_format != "channels_last":
            raise ValueError(
                "SimMIM supports channels_last ViT backbones only. Received "
                f"a backbone with data_format={backbone.data_format!r}."
            )
        patch_h, patch_w = backbone.patch_size
        if patch_h != patch_w:
            raise ValueError(
                "SimMIM needs square ViT patches. Received "
                f"patch_size={backbone.patch_size}."
            )
        self.embedding = _find_layer(backbone, "ViTPatchingAndEmbedding")
        self.encoder = _find_layer(backbone, "ViTEncoder")
        self.image_shape = tuple(backbone.image_shape)
        self.patch_size = int(patch_h)
        self.stride = int(patch_h)
        self.num_channels = int(self.image_shape[-1])

    def embed(self, images):
        return self.embedding.patch_embedding(images)

    def encode(self, embeddings):
        batch = ops.shape(embeddings)[0]
        _, rows, cols, dim = embeddings.shape
        x = ops.reshape(embeddings, (batch, rows * cols, dim))
        if self.embedding.use_class_token:
            token = ops.cast(self.embedding.class_token, x.dtype)
            x = ops.concatenate([ops.tile(token, (batch, 1, 1)), x], axis=1)
        positions = self.embedding.position_embedding(
            self.embedding.position_ids
        )
        x = self.encoder(ops.add(x, ops.cast(positions, x.dtype)))
        if self.embedding.use_class_token:
            x = x[:, 1:, :]
        return ops.reshape(x, (batch, rows, cols, dim))

    def no_weight_decay_variables(self):
        variables = [self.embedding.position_embedding.embeddings]
        if self.embedding.use_class_token:
            variables.append(self.embedding.class_token)
        return variables
