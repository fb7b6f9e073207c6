"""Adapter for `keras_hub.models.SwinTransformerBackbone`."""

import math

import keras
import keras_hub

from keras_simmim.backbones.adapter import BackboneAdapter
from keras_simmim.backbones.adapter import grid_to_tokens
from keras_simmim.backbones.adapter import register_adapter
from keras_simmim.backbones.adapter import tokens_to_grid
from keras_simmim.backbones.pyramid import pyramid_patch_size
from keras_simmim.backbones.vit import check_token_backbone


class _SwinStageFeatures(keras.layers.Layer):
    """A keras-hub Swin stage split at its patch merging: returns the
    blocks' output `(batch, rows * cols, dim)` and, when the stage merges,
    the merged tokens for the next stage (the blocks' output alone for a
    stage that does not merge). Its blocks are the stage's own
    (calling them one by one in a new graph would clash on their names);
    `PyramidImageEncoder` rebuilds it from the backbone, so it has no config
    of its own."""

    def __init__(self, stage, rows, cols, **kwargs):
        super().__init__(**kwargs)
        self.stage = stage
        self.rows, self.cols = rows, cols

    def call(self, tokens):
        for block in self.stage.blocks:
            tokens = block(tokens)
        if self.stage.downsample is None:
            return tokens
        return tokens, self.stage.downsample(tokens, H=self.rows, W=self.cols)


@register_adapter
class SwinAdapter(BackboneAdapter):
    """Runs a keras-hub Swin Transformer with SimMIM's mask token.

    The paper's headline backbone. As in SimMIM's `SwinTransformerForSimMIM`
    and Hugging Face's `SwinForMaskedImageModeling`, the mask token replaces
    patch embeddings after the patch convolution and its LayerNorm. The
    stages (each halving the grid) and the final LayerNorm follow; the last
    stage's tokens are reshaped to a feature map of output stride
    `patch_size * 2 ** (num_stages - 1)` (32 for the usual 4 stages).

    Image sides must be multiples of that stride: Swin pads odd grids before
    patch merging, which would leave a feature map the head cannot map back
    to the image.

    Args:
        backbone: a `keras_hub.models.SwinTransformerBackbone`.

    Example:

    >>> import keras_hub
    >>> from keras_simmim import SimMIMModel
    >>> swin = keras_hub.models.SwinTransformerBackbone(
    ...     image_shape=(32, 32, 3), embed_dim=16, depths=(2, 2),
    ...     num_heads=(2, 4), window_size=4)
    >>> model = SimMIMModel(swin, mask_patch_size=8)
    >>> model.patch_size, model.adapter.stride, model.mask_shape
    (4, 8, (8, 8))
    """

    backbone_types = (keras_hub.models.SwinTransformerBackbone,)

    def __init__(self, backbone):
        super().__init__(backbone)
        self.patch_size = check_token_backbone(backbone, backbone.patch_size)
        self.image_shape = tuple(backbone.image_shape)
        self.stride = self.patch_size * 2 ** (len(backbone.stages) - 1)
        self.num_channels = int(self.image_shape[-1])

    def embed(self, images):
        embedding = self.backbone.patch_embedding
        grid = embedding.proj(images)
        if embedding.norm is not None:
            grid = embedding.norm(grid)
        return grid

    def encode(self, embeddings):
        height, width = self.image_shape[:2]
        x = grid_to_tokens(embeddings)
        x = self.backbone.get_layer("pos_drop")(x)
        for stage in self.backbone.stages:
            x = stage(x)
        x = self.backbone.norm(x)
        return tokens_to_grid(x, height // self.stride, width // self.stride)

    def modulation_points(self):
        # After every stage but the last (its patch merging included), then
        # on the final grid (after the final LayerNorm).
        points = []
        for index, stage in enumerate(self.backbone.stages):
            dim = self.backbone.embed_dim * 2 ** index
            merged = stage.downsample is not None
            points.append(int(dim * 2 if merged else dim))
        return points

    def encode_modulated(self, embeddings, modulate):
        height, width = self.image_shape[:2]
        x = grid_to_tokens(embeddings)
        x = self.backbone.get_layer("pos_drop")(x)
        stages = self.backbone.stages
        for index, stage in enumerate(stages[:-1]):
            x = modulate(index, stage(x))
        x = self.backbone.norm(stages[-1](x))
        grid = tokens_to_grid(x, height // self.stride, width // self.stride)
        return modulate(len(stages) - 1, grid)

    def layer_groups(self):
        # As SimMIM's Swin fine-tuning: one depth per block; a stage's patch
        # merging shares the depth of the stage's last block.
        groups = [list(self.backbone.patch_embedding.weights)]
        for stage in self.backbone.stages:
            for block in stage.blocks:
                groups.append(list(block.weights))
            if stage.downsample is not None:
                groups[-1] += list(stage.downsample.weights)
        return groups

    def no_weight_decay_variables(self):
        # The recipe's "relative_position_bias_table" exclusion.
        return [
            block.attn.relative_position_bias_table
            for stage in self.backbone.stages
            for block in stage.blocks
        ]

    def has_pyramid(self):
        return True

    def pyramid_top_stride(self, max_level):
        return self.stride

    def pyramid_levels(self, inputs, min_level, max_level):
        """One level per stage: its blocks' output before patch merging
        (the last stage after the final LayerNorm), at level
        `log2(patch) + stage`; `min_level` / `max_level` are not used."""
        backbone = self.backbone
        patch = pyramid_patch_size(backbone)
        rows, cols = (side // patch for side in backbone.image_shape[:2])
        x = backbone.patch_embedding(inputs)
        x = backbone.get_layer("pos_drop")(x)
        outputs = {}
        level = int(round(math.log2(patch)))
        for index, stage in enumerate(backbone.stages):
            features = _SwinStageFeatures(
                stage, rows, cols, dtype=backbone.dtype_policy,
                name=f"stage_{index}_features",
            )(x)
            if stage.downsample is None:
                features = backbone.norm(features)
            else:
                features, x = features
            outputs[f"P{level + index}"] = keras.layers.Reshape(
                (rows, cols, stage.dim), dtype=backbone.dtype_policy,
                name=f"stage_{index}_grid",
            )(features)
            rows, cols = (rows + 1) // 2, (cols + 1) // 2
        return outputs
