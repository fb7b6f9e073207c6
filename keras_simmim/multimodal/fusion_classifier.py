"""`FusionClassifier`: image + text -> label (VQA as classification)."""

import keras
import numpy as np
from keras import ops

from keras_simmim.backbones import get_adapter
from keras_simmim.models import Task
from keras_simmim.multimodal.film import PLACEMENTS
from keras_simmim.multimodal.film import READOUTS
from keras_simmim.multimodal.film import FiLMFusion
from keras_simmim.multimodal.fusion import FUSIONS
from keras_simmim.multimodal.relational import RelationalFusion
from keras_simmim.multimodal.text import check_pair_inputs
from keras_simmim.multimodal.text import text_sequence
from keras_simmim.utils.serialization import serialize_towers
from keras_simmim.utils.serialization import with_deserialized_towers
from keras_simmim.utils.validation import check_bool
from keras_simmim.utils.validation import check_choice
from keras_simmim.utils.validation import check_positive_int


# The fusions that modulate the image backbone or read its grid, beside
# the token fusions of `FUSIONS` (which share one call signature).
GRID_FUSIONS = ("film", "relational", "film_relational")
CLASSIFIER_FUSIONS = tuple(FUSIONS) + GRID_FUSIONS


def image_tokens(adapter, images):
    """Patch tokens `(batch, h * w, dim)` of the image backbone's final
    feature grid (any backbone with a SimMIM adapter: ViT, Swin, CNNs)."""
    grid = adapter.encode(adapter.embed(images))
    _, rows, cols, dim = grid.shape
    return ops.reshape(grid, (-1, rows * cols, dim))


@keras.saving.register_keras_serializable(package="keras_simmim")
class FusionClassifier(Task):
    """Classifies an (image, text) pair: VQA as classification, entailment.

    The image backbone (e.g. SimMIM-pretrained) gives patch tokens, the
    keras-hub text backbone gives token features; a fusion layer
    (`keras_simmim.multimodal.FUSIONS`) combines them and a linear layer
    predicts the class logits. Both backbones train (fine-tune) unless you
    set `trainable=False` on them.

    Three fusions work on the image side itself rather than on its tokens:
    `"film"` (`FiLMFusion`: the text scales and shifts the backbone's
    channels between its stages, starting as the identity, then FiLM
    blocks and a read-out), `"relational"` (`RelationalFusion`: a Relation
    Network over every pair of the final grid's cells, with coordinates)
    and `"film_relational"` (the FiLM-modulated grid, after the FiLM
    blocks, into the relational module; by default the classifier reads
    FiLM's own read-out beside it, `relational_shortcut`). One string, not
    a flag on `"film"`: it is one more architecture, and a flag would have
    to be rejected for the four token fusions.

    Args:
        image_backbone: any backbone `SimMIMModel` accepts.
        text_backbone: a keras-hub text backbone (`BertBackbone`,
            `DistilBertBackbone`, ...; `keras_nlp.models.X` is the same).
        num_classes: int, answer classes.
        fusion: `"late"`, `"gated"`, `"cross_attention"`, `"merged"`,
            `"film"`, `"relational"` or `"film_relational"`
            (`CLASSIFIER_FUSIONS`).
        fusion_dim: int, fusion width (128).
        fusion_layers: int, blocks of the deep fusions (2); for `"film"`
            the `FiLMBlock`s after the backbone, for `"relational"` the
            layers of the pair MLP `g` (both for `"film_relational"`).
        fusion_heads: int, attention heads of the deep fusions (4).
        dropout: float, dropout before the classifier.
        image_position_embedding: bool or None, whether the fusion adds
            position information to the image cells (None: the fusion's
            default, True for all but `"late"`): a learned position
            embedding for the token fusions, (x, y) coordinate channels
            for the FiLM and relational ones. Needed for questions about
            position over a CNN's feature grid.
        film_placement: `"stages"` (FiLM between the image backbone's
            stages; functional CNNs, keras-hub ResNet, ViT and Swin) or
            `"output"` (the final feature grid only; any backbone). Used
            by `"film"` and `"film_relational"`.
        film_readout: `"max_pool"` (the FiLM paper's global max pooling)
            or `"flatten"` (every cell's features side by side, so the
            classifier reads positions directly): how `"film"` turns its
            grid into a vector (`FiLMFusion`'s `readout`).
        max_pairs: int, the most cell pairs the relational module accepts
            (4096: an 8x8 grid; see `RelationalFusion`).
        relational_shortcut: bool or None, for `"film_relational"` only
            (None: on for `"film_relational"`, off for the others): the
            classifier also reads FiLM's own max-pooled read-out beside
            the relational module's output (concatenated, so
            `2 * fusion_dim` features). The read-out is the path with
            which `"film"` alone learns which object a question names; the
            relational module's mean over all pairs is for comparisons.
            `False` gives the two papers' modules composed (FiLM's grid
            into the Relation Network; how each trains:
            `benchmarks/multimodal/results.md`). Files saved before the
            option existed load with False, the model they were.
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

    FiLM between the ViT's blocks instead (the same backbone objects):

    >>> film = FusionClassifier(vit, bert, num_classes=3, fusion="film",
    ...     fusion_dim=16, fusion_layers=1)
    >>> film.fusion.num_points, tuple(film(inputs).shape)
    (1, (2, 3))
    """

    def __init__(self, image_backbone, text_backbone, num_classes,
                 fusion="cross_attention", fusion_dim=128, fusion_layers=2,
                 fusion_heads=4, dropout=0.0, image_position_embedding=None,
                 film_placement="stages", max_pairs=4096,
                 film_readout="max_pool", relational_shortcut=None,
                 **kwargs):
        super().__init__(**kwargs)
        check_choice("fusion", fusion, CLASSIFIER_FUSIONS)
        check_choice("film_placement", film_placement, PLACEMENTS)
        check_choice("film_readout", film_readout, READOUTS)
        if film_readout != "max_pool" and fusion != "film":
            raise ValueError(
                f"`film_readout={film_readout!r}` applies to "
                f"`fusion='film'` only. Received: fusion={fusion!r}.")
        check_bool("relational_shortcut", relational_shortcut,
                   allow_none=True)
        if relational_shortcut is None:
            relational_shortcut = fusion == "film_relational"
        if relational_shortcut and fusion != "film_relational":
            raise ValueError(
                "`relational_shortcut=True` applies to "
                f"`fusion='film_relational'` only. Received: fusion="
                f"{fusion!r}.")
        check_positive_int("max_pairs", max_pairs)
        check_positive_int("num_classes", num_classes)
        check_bool("image_position_embedding", image_position_embedding,
                   allow_none=True)
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
        self.film_placement = film_placement
        self.film_readout = film_readout
        self.max_pairs = max_pairs
        self.relational_shortcut = relational_shortcut
        if fusion in GRID_FUSIONS:
            self._build_grid_fusion()
        else:
            options = {} if image_position_embedding is None else {
                "image_position_embedding": image_position_embedding}
            self.fusion = FUSIONS[fusion](
                dim=fusion_dim, num_layers=fusion_layers,
                num_heads=fusion_heads, dtype=self.dtype_policy,
                name="fusion", **options)
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

    def _build_grid_fusion(self):
        # "film": `fusion` is the FiLMFusion; "relational": the
        # RelationalFusion; "film_relational": the FiLMFusion (its grid)
        # and `relational` after it (with `relational_shortcut`, the
        # FiLMFusion gives its read-out vector too).
        coordinates = self.image_position_embedding is not False
        policy = self.dtype_policy
        relational = RelationalFusion(
            dim=self.fusion_dim, num_layers=self.fusion_layers,
            coordinates=coordinates, max_pairs=self.max_pairs,
            dtype=policy, name="relational") if (
                self.fusion_kind != "film") else None
        if self.fusion_kind == "relational":
            self.fusion = relational
            return
        self.fusion = FiLMFusion(
            self.image_backbone, dim=self.fusion_dim,
            num_layers=self.fusion_layers, placement=self.film_placement,
            coordinates=coordinates,
            output=("vector" if self.fusion_kind == "film"
                    else "grid_and_vector" if self.relational_shortcut
                    else "grid"),
            readout=(self.film_readout if self.fusion_kind == "film"
                     else "max_pool"),
            dtype=policy, name="fusion")
        if relational is not None:
            self.relational = relational

    def call(self, inputs, training=None):
        check_pair_inputs(self, inputs)
        images = ops.cast(inputs["images"], self.compute_dtype)
        text = text_sequence(self.text_backbone, inputs)
        mask = inputs["padding_mask"]
        if self.fusion_kind == "film":
            fused = self.fusion(images, text, mask)
        elif self.fusion_kind == "relational":
            grid = self.adapter.encode(self.adapter.embed(images))
            fused = self.fusion(grid, text, mask)
        elif self.relational_shortcut:
            grid, vector = self.fusion(images, text, mask)
            fused = ops.concatenate(
                [self.relational(grid, text, mask), vector], axis=-1)
        elif self.fusion_kind == "film_relational":
            fused = self.relational(self.fusion(images, text, mask), text,
                                    mask)
        else:
            fused = self.fusion(image_tokens(self.adapter, images), text,
                                mask)
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
            "film_placement": self.film_placement,
            "film_readout": self.film_readout,
            "max_pairs": self.max_pairs,
            "relational_shortcut": self.relational_shortcut,
        })
        return config

    @classmethod
    def from_config(cls, config):
        # Saved before `relational_shortcut` existed: built without it
        # (its default, None, would now add it to a "film_relational").
        config = {"relational_shortcut": False, **config}
        return cls(**with_deserialized_towers(config))
