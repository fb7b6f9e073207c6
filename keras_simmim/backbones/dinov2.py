"""Adapter for `keras_hub.models.DINOV2Backbone`."""

import warnings

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

    @property
    def num_blocks(self):
        return self.backbone.encoder.num_layers

    @property
    def num_prefix_tokens(self):
        """The class token and the register tokens."""
        return 1 + self.embedding.num_register_tokens

    def _tokens(self, embeddings):
        """Class token, register tokens, patch tokens with their
        positions, dropout: the encoder's input sequence."""
        x = grid_to_tokens(embeddings)
        batch = ops.shape(x)[0]
        cls_token = ops.cast(self.embedding.cls_token, x.dtype)
        x = ops.concatenate([ops.tile(cls_token, (batch, 1, 1)), x], axis=1)
        positions = self.embedding.interpolated_position_embeddings
        x = x + ops.cast(positions, x.dtype)
        if self.embedding.num_register_tokens:
            registers = ops.cast(self.embedding.register_tokens, x.dtype)
            x = ops.concatenate(
                [x[:, :1], ops.tile(registers, (batch, 1, 1)), x[:, 1:]],
                axis=1,
            )
        return self.embedding.dropout(x)

    def encode(self, embeddings):
        _, rows, cols, _ = embeddings.shape
        x, _ = self.backbone.encoder(self._tokens(embeddings))
        x = self.backbone.layernorm(x)
        return tokens_to_grid(x[:, self.num_prefix_tokens:, :], rows, cols)

    def features_at(self, embeddings, depth):
        """Patch tokens after the first `depth` blocks (no final norm), as
        a grid; the class and register tokens are left out. Equals the
        encoder's own `stage{depth}` output without those tokens."""
        _, rows, cols, _ = embeddings.shape
        x = self._tokens(embeddings)
        for block in self.backbone.encoder.layers[:depth]:
            x = block(x)
        return tokens_to_grid(x[:, self.num_prefix_tokens:, :], rows, cols)

    def layer_groups(self):
        return [list(self.embedding.weights)] + [
            list(block.weights) for block in self.backbone.encoder.layers
        ]

    def _resample(self, table, source_shape, target_shape):
        """keras-hub's own resampling of a position table between image
        shapes (bicubic, the backbone's antialias setting)."""
        emb = self.embedding
        return emb._interpolate_position_embeddings(
            table, patch_size=emb.patch_size, source_shape=source_shape,
            target_shape=target_shape,
            antialias=emb.antialias_in_interpolation,
        )

    def prepare_to_save(self):
        """Makes the saved position table load back as the trained one.

        keras-hub's DINOv2 trains `interpolated_position_embeddings` (the
        table at the training image size) but saves `position_embeddings`
        (at `position_embedding_shape`, 518 px in its presets) and, on load,
        resamples that to the image size. Resampling the trained table up
        for saving and down again on load changes it (reconstructions
        differed by 1e-2 after a `.keras` round trip). Instead, the saved
        table is the old one plus the smallest change whose resampling is
        the trained table (a least-squares solve of keras-hub's own
        resampling, as a matrix), and the trained table is set to exactly
        that resampling (a change of float rounding), so the model that
        loads is the model that was saved. keras-hub's own save hook then
        finds nothing to sync.

        When the saved table has fewer positions than the training grid,
        no saved table resamples to every trained one: the nearest is
        saved, and a `UserWarning` gives the largest difference.
        """
        emb = self.embedding
        source = tuple(emb.position_embedding_shape)[:2]
        target = tuple(emb.image_shape)[:2]
        trained = ops.convert_to_numpy(
            emb.interpolated_position_embeddings).astype("float64")
        if source == target:
            emb.position_embeddings.assign(trained)
            return
        saved = ops.convert_to_numpy(emb.position_embeddings)
        loads_as = ops.convert_to_numpy(
            self._resample(saved, source, target)).astype("float64")
        if np.array_equal(loads_as, trained):
            return
        # keras-hub's resampling as a matrix (target patches x source
        # patches): the resampling of each source position's unit table.
        patches = saved.shape[1] - 1
        basis = np.concatenate(
            [np.zeros((1, 1, patches)), np.eye(patches)[None]], axis=1)
        matrix = ops.convert_to_numpy(self._resample(
            basis.astype("float32"), source, target))[0, 1:].astype("float64")
        residual = trained[0] - loads_as[0]
        change = np.linalg.lstsq(matrix, residual[1:], rcond=None)[0]
        table = saved.astype("float64")
        table[0, 0] += residual[0]  # the class position is not resampled
        table[0, 1:] += change
        emb.position_embeddings.assign(table.astype(saved.dtype))
        reloaded = ops.convert_to_numpy(
            self._resample(emb.position_embeddings, source, target))
        error = float(np.abs(reloaded - trained).max())
        if matrix.shape[0] > matrix.shape[1]:
            warnings.warn(
                f"The DINOv2 position table is saved at "
                f"position_embedding_shape={source} ({patches} patches), "
                f"fewer than the {matrix.shape[0]} patches of the image "
                f"size {target}: the saved model's position embeddings "
                f"differ from the trained ones by up to {error:.3g}. Build "
                "the backbone with position_embedding_shape >= image_shape "
                "to save them exactly.",
                stacklevel=2,
            )
            return
        emb.interpolated_position_embeddings.assign(reloaded)

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
