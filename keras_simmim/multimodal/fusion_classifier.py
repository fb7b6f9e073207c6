"""`FusionClassifier`: image + text -> label (VQA as classification)."""

import keras
import numpy as np
from keras import ops

from keras_simmim.backbones import get_adapter
from keras_simmim.multimodal.fusion import FUSIONS
from keras_simmim.multimodal.text import check_pair_inputs
from keras_simmim.multimodal.text import text_sequence
from keras_simmim.utils.serialization import serialize_towers
from keras_simmim.utils.serialization import with_deserialized_towers
from keras_simmim.utils.validation import check_choice
from keras_simmim.utils.validation import check_positive_int


def image_tokens(adapter, images):
    """Patch tokens `(batch, h * w, dim)` of the image backbone's final
    feature grid (any backbone with a SimMIM adapter: ViT, Swin, CNNs)."""
    grid = adapter.encode(adapter.embed(images))
    _, rows, cols, dim = grid.shape
    return ops.reshape(grid, (-1, rows * cols, dim))


@keras.saving.register_keras_serializable(package="keras_simmim")
class FusionClassifier(keras.Model):
    """Classifies an (image, text) pair: VQA as classification, entailment.

    The image backbone (e.g. SimMIM-pretrained) gives patch tokens, the
    keras-hub text backbone gives token features; a fusion layer
    (`keras_simmim.multimodal.FUSIONS`) combines them and a linear layer
    predicts the class logits. Both backbones train (fine-tune) unless you
    set `trainable=False` on them.

    Args:
        image_backbone: any backbone `SimMIMModel` accepts.
        text_backbone: a keras-hub text backbone (`BertBackbone`,
            `DistilBertBackbone`, ...; `keras_nlp.models.X` is the same).
        num_classes: int, answer classes.
        fusion: `"late"`, `"gated"`, `"cross_attention"` or `"merged"`.
        fusion_dim: int, fusion width (128).
        fusion_layers: int, blocks of the deep fusions (2).
        fusion_heads: int, attention heads of the deep fusions (4).
        dropout: float, dropout before the classifier.
        image_position_embedding: bool or None, whether the fusion adds a
            learned position embedding to the image tokens (None: the
            fusion's default, True for all but `"late"`). Needed for
            questions about position over a CNN's feature grid.
        **kwargs: standard `keras.Model` arguments.

    Inputs:
        A dict: `images` `(batch, H, W, C)` normalised; `token_ids` and
        `padding_mask` `(batch, T)` (and optionally `segment_ids`), as a
        keras-hub preprocessor returns them.

    Outputs:
        Logits `(batch, num_classes)`.

    Example:

    >>> import keras_hub, numpy as np
    >>> vit = keras_hub.models.ViTBackbone(image_shape=(32, 32, 3),
    ...     patch_size=8, num_layers=1, num_heads=2, hidden_dim=16,
    ...     mlp_dim=32)
    >>> bert = keras_hub.models.BertBackbone(vocabulary_size=30,
    ...     num_layers=1, num_heads=2, hidden_dim=16, intermediate_dim=32,
    ...     max_sequence_length=8)
    >>> model = FusionClassifier(vit, bert, num_classes=3,
    ...     fusion="cross_attention", fusion_dim=16, fusion_heads=2)
    >>> inputs = {"images": np.zeros((2, 32, 32, 3)),
    ...           "token_ids": np.ones((2, 8), "int32"),
    ...           "padding_mask": np.ones((2, 8), bool)}
    >>> tuple(model(inputs).shape)
    (2, 3)
    """

    def __init__(self, image_backbone, text_backbone, num_classes,
                 fusion="cross_attention", fusion_dim=128, fusion_layers=2,
                 fusion_heads=4, dropout=0.0, image_position_embedding=None,
                 **kwargs):
        super().__init__(**kwargs)
        check_choice("fusion", fusion, FUSIONS)
        check_positive_int("num_classes", num_classes)
        self.image_backbone = image_backbone
        self.text_backbone = text_backbone
        self.adapter = get_adapter(image_backbone)
        self.image_shape = tuple(self.adapter.image_shape)
        self.num_classes = int(num_classes)
        self.fusion_kind = fusion
        self.fusion_dim = fusion_dim
        self.fusion_layers = fusion_layers
        self.fusion_heads = fusion_heads
        self.dropout_rate = float(dropout)
        self.image_position_embedding = image_position_embedding
        options = {} if image_position_embedding is None else {
            "image_position_embedding": image_position_embedding}
        self.fusion = FUSIONS[fusion](
            dim=fusion_dim, num_layers=fusion_layers, num_heads=fusion_heads,
            dtype=self.dtype_policy, name="fusion", **options)
        self.dropout = keras.layers.Dropout(self.dropout_rate,
                                            dtype=self.dtype_policy)
        self.classifier = keras.layers.Dense(
            self.num_classes, dtype=self.dtype_policy, name="classifier")
        length = min(8, getattr(text_backbone, "max_sequence_length", 8))
        self({
            "images": np.zeros((1,) + self.image_shape, "float32"),
            "token_ids": np.zeros((1, length), "int32"),
            "padding_mask": np.ones((1, length), bool),
        })

    def call(self, inputs, training=None):
        check_pair_inputs(self, inputs)
        images = inputs["images"]
        image = image_tokens(self.adapter,
                             ops.cast(images, self.compute_dtype))
        text = text_sequence(self.text_backbone, inputs)
        fused = self.fusion(image, text, inputs["padding_mask"])
        return self.classifier(self.dropout(fused, training=training))

    def get_config(self):
        config = super().get_config()
        config.update({
            **serialize_towers(self),
            "num_classes": self.num_classes, "fusion": self.fusion_kind,
            "fusion_dim": self.fusion_dim,
            "fusion_layers": self.fusion_layers,
            "fusion_heads": self.fusion_heads, "dropout": self.dropout_rate,
            "image_position_embedding": self.image_position_embedding,
        })
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**with_deserialized_towers(config))
