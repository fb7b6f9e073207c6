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

    @property
    def num_blocks(self):
        return self.encoder.num_layers

    def _tokens(self, embeddings):
        """Class and distillation tokens, patch tokens, positions, dropout:
        the encoder's input sequence."""
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
        return self.embedding.dropout(x)

    def encode(self, embeddings):
        _, rows, cols, _ = embeddings.shape
        x, _, _ = self.encoder(self._tokens(embeddings))
        return tokens_to_grid(x[:, NUM_PREFIX_TOKENS:, :], rows, cols)

    def features_at(self, embeddings, depth):
        """Patch tokens after the first `depth` blocks (no final norm), as
        a grid; the class and distillation tokens are left out. Equals
        keras-hub's `hidden_states[depth]` without its first two tokens."""
        _, rows, cols, _ = embeddings.shape
        x = self._tokens(embeddings)
        for block in self.encoder.encoder_layers[:depth]:
            x, _ = block(x)
        return tokens_to_grid(x[:, NUM_PREFIX_TOKENS:, :], rows, cols)

    def layer_groups(self):
        return [list(self.embedding.weights)] + [
            list(block.weights) for block in self.encoder.encoder_layers
        ]

    def no_weight_decay_variables(self):
        return [
            self.embedding.position_embedding,
            self.embedding.class_token,
            self.embedding.distillation_token,
        ]
