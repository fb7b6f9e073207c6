"""Adapter for `keras_hub.models.ViTBackbone`."""

import keras_hub
import keras
from keras import ops

from keras_simmim.backbones.adapter import BackboneAdapter
from keras_simmim.backbones.adapter import find_layer
from keras_simmim.backbones.adapter import grid_to_tokens
from keras_simmim.backbones.adapter import register_adapter
from keras_simmim.backbones.adapter import tokens_to_grid
from keras_simmim.backbones.pyramid import pyramid_patch_size
from keras_simmim.layers.feature_pyramid import SimpleFeaturePyramid


def check_token_backbone(backbone, patch_size):
    """Shared checks of the plain-ViT family; returns the square patch."""
    if getattr(backbone, "data_format", "channels_last") != "channels_last":
        raise ValueError(
            f"SimMIM supports channels_last {type(backbone).__name__}s only. "
            f"Received data_format={backbone.data_format!r}."
        )
    if not isinstance(patch_size, int):
        patch_h, patch_w = patch_size
        if patch_h != patch_w:
            raise ValueError(
                "SimMIM needs square patches. Received "
                f"patch_size={patch_size}."
            )
        patch_size = patch_h
    return int(patch_size)


class PatchTokenAdapter(BackboneAdapter):
    """Shared base of plain-ViT families (one patch convolution, then
    tokens): finds the embedding and encoder layers by type name, takes the
    square patch, and embeds with the patch convolution. Subclasses set the
    two type names and write `encode`.
    """

    embedding_type = None
    encoder_type = None

    def __init__(self, backbone):
        super().__init__(backbone)
        self.patch_size = check_token_backbone(backbone, backbone.patch_size)
        self.embedding = find_layer(backbone, self.embedding_type)
        self.encoder = find_layer(backbone, self.encoder_type)
        self.image_shape = tuple(backbone.image_shape)
        self.stride = self.patch_size
        self.num_channels = int(self.image_shape[-1])

    def embed(self, images):
        return self.embedding.patch_embedding(images)


@register_adapter
class ViTAdapter(PatchTokenAdapter):
    """Runs a keras-hub ViT with SimMIM's mask token.

    The mask token is blended into the patch embeddings right after the patch
    convolution, before the class token and the position embeddings, as in
    SimMIM and Hugging Face's `ViTForMaskedImageModeling`. The encoder output
    (after the final LayerNorm) loses its class token and is reshaped to the
    patch grid, so the output stride equals the patch size.
    """

    backbone_types = (keras_hub.models.ViTBackbone,)
    embedding_type = "ViTPatchingAndEmbedding"
    encoder_type = "ViTEncoder"

    @property
    def num_blocks(self):
        return self.encoder.num_layers

    def _tokens(self, embeddings):
        x = grid_to_tokens(embeddings)
        if self.embedding.use_class_token:
            token = ops.cast(self.embedding.class_token, x.dtype)
            batch = ops.shape(x)[0]
            x = ops.concatenate([ops.tile(token, (batch, 1, 1)), x], axis=1)
        positions = self.embedding.position_embedding(
            self.embedding.position_ids
        )
        return ops.add(x, ops.cast(positions, x.dtype))

    def _to_grid(self, x, rows, cols):
        if self.embedding.use_class_token:
            x = x[:, 1:, :]
        return tokens_to_grid(x, rows, cols)

    def encode(self, embeddings):
        _, rows, cols, _ = embeddings.shape
        x = self.encoder(self._tokens(embeddings))
        return self._to_grid(x, rows, cols)

    def tokens(self, embeddings):
        return self._tokens(embeddings), int(self.embedding.use_class_token)

    def encode_tokens(self, tokens):
        return self.encoder(tokens)

    def modulation_points(self):
        # After every block but the last (the residual stream, class token
        # included), then on the final grid (after the final LayerNorm).
        return [int(self.backbone.hidden_dim)] * self.encoder.num_layers

    def encode_modulated(self, embeddings, modulate):
        _, rows, cols, _ = embeddings.shape
        x = self.encoder.dropout(self._tokens(embeddings))
        blocks = self.encoder.encoder_layers
        for index, block in enumerate(blocks[:-1]):
            x = modulate(index, block(x))
        x = self.encoder.layer_norm(blocks[-1](x))
        return modulate(len(blocks) - 1, self._to_grid(x, rows, cols))

    def features_at(self, embeddings, depth):
        _, rows, cols, _ = embeddings.shape
        x = self.encoder.dropout(self._tokens(embeddings))
        for block in self.encoder.encoder_layers[:depth]:
            x = block(x)
        return self._to_grid(x, rows, cols)

    def layer_groups(self):
        return [list(self.embedding.weights)] + [
            list(block.weights) for block in self.encoder.encoder_layers
        ]

    def has_pyramid(self):
        return True

    def pyramid_top_stride(self, max_level):
        return max(self.patch_size, 2**max_level)

    def pyramid_max_level(self, image_shape, min_level, max_level):
        # Pool to 64 where the sides allow it (ViTDet), else let the head's
        # strided convolutions make the levels above 32.
        height, width = image_shape[:2]
        top = 6 if height % 64 == 0 and width % 64 == 0 else 5
        return max(min(top, max_level), min_level)

    def pyramid_levels(self, inputs, min_level, max_level):
        """The patch tokens without the class token as a `(H/p, W/p, D)`
        map, then a ViTDet `SimpleFeaturePyramid` for `min_level`..
        `max_level`."""
        backbone = self.backbone
        patch = pyramid_patch_size(backbone)
        height, width = backbone.image_shape[:2]
        prefix = int(getattr(backbone, "use_class_token", True))
        tokens = backbone(inputs)
        if prefix:
            tokens = keras.layers.Cropping1D(
                (prefix, 0), dtype=backbone.dtype_policy, name="drop_class_token"
            )(tokens)
        grid = keras.layers.Reshape(
            (height // patch, width // patch, backbone.hidden_dim),
            dtype=backbone.dtype_policy, name="token_grid",
        )(tokens)
        return SimpleFeaturePyramid(
            input_stride=patch, min_level=min_level, max_level=max_level,
            dtype=backbone.dtype_policy, name="simple_feature_pyramid",
        )(grid)

    def no_weight_decay_variables(self):
        variables = [self.embedding.position_embedding.embeddings]
        if self.embedding.use_class_token:
            variables.append(self.embedding.class_token)
        return variables
