"""Adapter for `keras_hub.models.DINOV2Backbone`."""

import keras_hub
import numpy as np
from keras import ops

from keras_simmim.backbones.adapter import BackboneAdapter
from keras_simmim.backbones.adapter import grid_to_tokens
from keras_simmim.backbones.adapter import register_adapter
from keras_simmim.backbones.adapter import tokens_to_grid
from keras_simmim.backbones.vit import check_token_backbone


@register_adapter
class DINOV2Adapter(BackboneAdapter):
    """Runs a keras-hub DINOv2 with SimMIM's mask token.

    The mask token replaces patch embeddings after the patch convolution,
    before the class token, the (interpolated) position embeddings and the
    register tokens, where DINOv2 applies its own mask token. SimMIM's
    `MaskToken` is used (the backbone's own `mask_token` weight is left
    untouched), so every backbone family trains the same way. The class and
    register tokens are dropped from the output of the final LayerNorm,
    which is reshaped to the patch grid (output stride = patch size).
    """

    backbone_types = (keras_hub.models.DINOV2Backbone,)

    def __init__(self, backbone):
        super().__init__(backbone)
        self.embedding = backbone.embeddings
        self.patch_size = check_token_backbone(
            backbone, self.embedding.patch_size
        )
        self.image_shape = tuple(backbone.image_shape)
        self.stride = self.patch_size
        self.num_channels = int(self.image_shape[-1])

    def embed(self, images):
        return self.embedding.patch_embeddings.projection(images)

    def encode(self, embeddings):
        _, rows, cols, _ = embeddings.shape
        x = grid_to_tokens(embeddings)
        batch = ops.shape(x)[0]
        cls_token = ops.cast(self.embedding.cls_token, x.dtype)
        x = ops.concatenate([ops.tile(cls_token, (batch, 1, 1)), x], axis=1)
        positions = self.embedding.interpolated_position_embeddings
        x = x + ops.cast(positions, x.dtype)
        num_registers = self.embedding.num_register_tokens
        if num_registers:
            registers = ops.cast(self.embedding.register_tokens, x.dtype)
            x = ops.concatenate(
                [x[:, :1], ops.tile(registers, (batch, 1, 1)), x[:, 1:]],
                axis=1,
            )
        x = self.embedding.dropout(x)
        x, _ = self.backbone.encoder(x)
        x = self.backbone.layernorm(x)
        return tokens_to_grid(x[:, 1 + num_registers :, :], rows, cols)

    def prepare_to_save(self):
        """Writes trained position embeddings back to the saved weight.

        keras-hub's DINOv2 trains `interpolated_position_embeddings` and
        saves `position_embeddings`, syncing them only when the *signed* sum
        of their difference exceeds epsilon (keras-hub 0.32), so a trained
        model can silently save stale position embeddings. Sync whenever
        they differ at all.
        """
        emb = self.embedding
        source = emb.position_embedding_shape
        target = emb.image_shape
        current = emb._interpolate_position_embeddings(
            emb.position_embeddings,
            patch_size=emb.patch_size,
            source_shape=source,
            target_shape=target,
            antialias=emb.antialias_in_interpolation,
        )
        trained = emb.interpolated_position_embeddings
        if np.array_equal(ops.convert_to_numpy(current), ops.convert_to_numpy(trained)):
            return
        emb.position_embeddings.assign(
            emb._interpolate_position_embeddings(
                trained,
                patch_size=emb.patch_size,
                source_shape=target,
                target_shape=source,
                antialias=emb.antialias_in_interpolation,
            )
        )

    def no_weight_decay_variables(self):
        variables = [
            self.embedding.interpolated_position_embeddings,
            self.embedding.cls_token,
        ]
        if self.embedding.num_register_tokens:
            variables.append(self.embedding.register_tokens)
        if self.embedding.use_mask_token:
            variables.append(self.embedding.mask_token)
        return variables
