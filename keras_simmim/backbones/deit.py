"""Adapter for `keras_hub.models.DeiTBackbone`."""

import keras_hub
from keras import ops

from keras_simmim.backbones.adapter import grid_to_tokens
from keras_simmim.backbones.adapter import register_adapter
from keras_simmim.backbones.adapter import tokens_to_grid
from keras_simmim.backbones.vit import PatchTokenAdapter

# DeiT prepends a class token and a distillation token.
NUM_PREFIX_TOKENS = 2


@register_adapter
class DeiTAdapter(PatchTokenAdapter):
    """Runs a keras-hub DeiT with SimMIM's mask token.

    As Hugging Face's `DeiTForMaskedImageModeling`: the mask token replaces
    patch embeddings after the patch convolution, before the class and
    distillation tokens and the position embeddings. Both prefix tokens are
    dropped from the encoder output (after its final LayerNorm), which is
    reshaped to the patch grid (output stride = patch size).
    """

    backbone_types = (keras_hub.models.DeiTBackbone,)
    embedding_type = "DeiTEmbeddings"
    encoder_type = "DeiTEncoder"

    def encode(self, embeddings):
        _, rows, cols, _ = embeddings.shape
        x = grid_to_tokens(embeddings)
        batch = ops.shape(x)[0]
        prefix = ops.concatenate(
            [
                ops.cast(self.embedding.class_token, x.dtype),
                ops.cast(self.embedding.distillation_token, x.dtype),
            ],
            axis=1,
        )
        x = ops.concatenate([ops.tile(prefix, (batch, 1, 1)), x], axis=1)
        x = x + ops.cast(self.embedding.position_embedding, x.dtype)
        x = self.embedding.dropout(x)
        x, _, _ = self.encoder(x)
        return tokens_to_grid(x[:, NUM_PREFIX_TOKENS:, :], rows, cols)

    def no_weight_decay_variables(self):
        return [
            self.embedding.position_embedding,
            self.embedding.class_token,
            self.embedding.distillation_token,
        ]
