"""Adapter for `keras_hub.models.VideoPrismBackbone` (video-only mode)."""

import keras_hub
from keras import ops

from keras_simmim.backbones.adapter import BackboneAdapter
from keras_simmim.backbones.adapter import register_adapter
from keras_simmim.backbones.vit import check_token_backbone


@register_adapter
class VideoPrismAdapter(BackboneAdapter):
    """Runs a keras-hub VideoPrism video encoder with SimMIM's mask token.

    VideoPrism is a factorised video ViT: every frame is cut into patches
    and embedded, a spatial transformer mixes the patches of each frame,
    then a temporal transformer mixes each patch position across frames.
    The mask token replaces patch embeddings right after the per-frame
    patch projection, before the spatial position embeddings (as SimMIM
    does for a ViT), so a masked patch carries only its position. The
    output is one token grid per frame, `(batch, frames, H / p, W / p,
    dim)`, so the output stride equals the patch size and SimMIM's head
    decodes every frame.

    Only the video encoder (`num_text_layers=0`) is supported: the text
    tower of a multimodal VideoPrism has no place in masked modeling.
    """

    backbone_types = (keras_hub.models.VideoPrismBackbone,)

    def __init__(self, backbone):
        super().__init__(backbone)
        if backbone.num_text_layers:
            raise ValueError(
                "SimMIM pretrains VideoPrism's video encoder: build the "
                "backbone with num_text_layers=0 (video-only). Received "
                f"num_text_layers={backbone.num_text_layers}."
            )
        self.patch_size = check_token_backbone(backbone, backbone.patch_size)
        self.image_shape = tuple(backbone.image_shape)
        self.stride = self.patch_size
        self.num_channels = int(self.image_shape[-1])
        self.num_frames = int(backbone.num_frames)
        self.embedding = backbone.spatial_embedding

    def embed(self, clips):
        """`(batch, frames, H, W, C)` -> per-frame patch embeddings
        `(batch, frames, H / p, W / p, dim)` (no position embedding)."""
        height, width, channels = self.image_shape
        p = self.patch_size
        rows, cols = height // p, width // p
        x = ops.reshape(clips, (-1, rows, p, cols, p, channels))
        # Patch pixels in (row, column, channel) order, VideoPrism's layout.
        x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
        x = ops.reshape(x, (-1, self.num_frames, rows, cols, p * p * channels))
        return self.embedding.patch_embedding(x)

    def encode(self, embeddings):
        _, frames, rows, cols, dim = embeddings.shape
        x = ops.reshape(embeddings, (-1, rows * cols, dim))
        positions = self.embedding.position_embedding(
            self.embedding.position_ids)
        x = ops.add(x, ops.cast(positions, x.dtype))
        backbone = self.backbone
        x = backbone.spatial_encoder(x)
        x = backbone.temporal_embedding(x)
        x = backbone.temporal_encoder(x)
        x = backbone.factorized_decoding(x)  # (batch, frames, patches, dim)
        return ops.reshape(x, (-1, frames, rows, cols, dim))

    @property
    def num_blocks(self):
        return (self.backbone.spatial_encoder.num_layers
                + self.backbone.temporal_encoder.num_layers)

    def layer_groups(self):
        """Input first: the patch embedding, the spatial blocks, then the
        temporal blocks (the first with the spatial encoder's final norm
        and the temporal position embedding, which feed it)."""
        backbone = self.backbone
        spatial = backbone.spatial_encoder
        temporal = backbone.temporal_encoder
        groups = [list(self.embedding.weights)]
        groups += [list(block.weights) for block in spatial.encoder_layers]
        entry = list(backbone.temporal_embedding.weights)
        if spatial.layer_norm is not None:
            entry = list(spatial.layer_norm.weights) + entry
        blocks = [list(block.weights) for block in temporal.encoder_layers]
        if blocks:
            blocks[0] = entry + blocks[0]
        else:
            blocks = [entry]
        return groups + blocks

    def no_weight_decay_variables(self):
        return [
            self.embedding.position_embedding.embeddings,
            self.backbone.temporal_embedding.embedding.embeddings,
        ]
