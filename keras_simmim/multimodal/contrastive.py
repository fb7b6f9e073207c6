"""`ContrastiveAligner`: two towers aligned with CLIP or SigLIP losses."""

import keras
import numpy as np
from keras import ops

from keras_simmim.backbones import get_adapter
from keras_simmim.models import Task
from keras_simmim.multimodal.fusion import masked_mean
from keras_simmim.multimodal.fusion_classifier import image_tokens
from keras_simmim.multimodal.text import check_pair_inputs
from keras_simmim.multimodal.text import check_text_inputs
from keras_simmim.multimodal.text import text_sequence
from keras_simmim.utils.serialization import serialize_towers
from keras_simmim.utils.serialization import with_deserialized_towers
from keras_simmim.utils.validation import check_choice
from keras_simmim.utils.validation import check_positive_int

LOSSES = ("clip", "siglip")


def retrieval_recall(image_embeddings, text_embeddings, ks=(1, 5, 10)):
    """Recall@K of paired retrieval in both directions.

    Image `i` and text `i` are a pair. Image-to-text recall@K is the
    fraction of images whose own text is among the K texts with the highest
    similarity (dot product); text-to-image the same the other way. Ties
    count against the pair (a competitor scoring equal ranks above it).

    Args:
        image_embeddings: `(N, D)` array.
        text_embeddings: `(N, D)` array.
        ks: the K values.

    Returns:
        `{"image_to_text@K": float, "text_to_image@K": float, ...}`.

    Example:

    >>> import numpy as np
    >>> images = np.eye(3)
    >>> texts = np.array([[1, 0, 0], [0, 0, 1], [0, 1, 0]], "float32")
    >>> recall = retrieval_recall(images, texts, ks=(1, 3))
    >>> round(recall["image_to_text@1"], 3), recall["image_to_text@3"]
    (0.333, 1.0)
    """
    images = np.asarray(ops.convert_to_numpy(image_embeddings), "float64")
    texts = np.asarray(ops.convert_to_numpy(text_embeddings), "float64")
    if images.shape != texts.shape or images.ndim != 2:
        raise ValueError(
            "`image_embeddings` and `text_embeddings` must both be (N, D) "
            f"with the same N. Received shapes {images.shape} and "
            f"{texts.shape}."
        )
    scores = images @ texts.T
    out = {}
    for name, s in (("image_to_text", scores), ("text_to_image", scores.T)):
        own = np.diag(s)[:, None]
        # Rank of the pair: competitors scoring at least as high.
        rank = (s >= own).sum(1) - 1
        for k in ks:
            out[f"{name}@{k}"] = float((rank < k).mean())
    return out


@keras.saving.register_keras_serializable(package="keras_simmim")
class ContrastiveAligner(Task):
    """Aligns an image tower and a text tower (CLIP or SigLIP).

    Each tower pools its tokens (image: mean of patch tokens; text: mean of
    the real tokens), projects to `embed_dim` and L2-normalises. The
    similarity logits of a batch are `scale * image @ text.T` (+ `bias` for
    SigLIP) with a learned log-scale (and bias). `loss="clip"`: symmetric
    softmax cross-entropy over the batch (InfoNCE, temperature 0.07 at
    start). `loss="siglip"`: the pairwise sigmoid loss (scale 10 and bias
    -10 at start), `-sum(log sigmoid(z_ij * logits_ij)) / batch` with
    `z = +1` on pairs, `-1` elsewhere. Negatives are the other pairs of the
    same batch (per replica under a distribution strategy).

    Args:
        image_backbone: any backbone `SimMIMModel` accepts.
        text_backbone: a keras-hub text backbone.
        embed_dim: int, shared embedding width (128).
        loss: `"clip"` or `"siglip"`.
        initial_scale: float or None, the logit scale at start (None: 1/0.07
            for CLIP, 10 for SigLIP).
        initial_bias: float or None, SigLIP's bias at start (None: -10, the
            paper's value). CLIP has no bias (0, not trained).
        **kwargs: standard `keras.Model` arguments.

    Inputs:
        A dict with `images` and the text tensors (`token_ids`,
        `padding_mask`, ...); labels are not used.

    Outputs:
        `{"image_embeddings": (batch, embed_dim), "text_embeddings": ...}`.

    Example:

    >>> import keras_hub, numpy as np
    >>> vit = keras_hub.models.ViTBackbone(image_shape=(32, 32, 3),
    ...     patch_size=8, num_layers=1, num_heads=2, hidden_dim=16,
    ...     mlp_dim=32)
    >>> bert = keras_hub.models.BertBackbone(vocabulary_size=30,
    ...     num_layers=1, num_heads=2, hidden_dim=16, intermediate_dim=32,
    ...     max_sequence_length=8)
    >>> model = ContrastiveAligner(vit, bert, embed_dim=8, loss="siglip")
    >>> batch = {"images": np.random.rand(4, 32, 32, 3),
    ...          "token_ids": np.arange(32).reshape(4, 8) % 30,
    ...          "padding_mask": np.ones((4, 8), bool)}
    >>> history = model.fit(batch, batch_size=4, epochs=1, verbose=0)
    >>> model.predict(batch, verbose=0)["image_embeddings"].shape
    (4, 8)
    """

    def __init__(self, image_backbone, text_backbone, embed_dim=128,
                 loss="clip", initial_scale=None, initial_bias=None,
                 **kwargs):
        super().__init__(**kwargs)
        check_choice("loss", loss, LOSSES)
        check_positive_int("embed_dim", embed_dim)
        self.image_backbone = image_backbone
        self.text_backbone = text_backbone
        self.adapter = get_adapter(image_backbone)
        self.image_shape = tuple(self.adapter.image_shape)
        self.embed_dim = int(embed_dim)
        self.loss_type = loss
        policy = self.dtype_policy
        self.image_projection = keras.layers.Dense(
            self.embed_dim, dtype=policy, name="image_projection")
        self.text_projection = keras.layers.Dense(
            self.embed_dim, dtype=policy, name="text_projection")
        default_scale, default_bias = ((1 / 0.07, 0.0) if loss == "clip"
                                       else (10.0, -10.0))
        self.initial_scale = float(
            default_scale if initial_scale is None else initial_scale)
        self.initial_bias = float(
            default_bias if initial_bias is None else initial_bias)
        if not self.initial_scale > 0:
            raise ValueError(
                "`initial_scale` must be > 0. Received: "
                f"initial_scale={initial_scale!r}."
            )
        start_scale, start_bias = np.log(self.initial_scale), self.initial_bias
        self.log_scale = self.add_weight(
            shape=(), name="log_scale",
            initializer=keras.initializers.Constant(start_scale))
        self.bias = self.add_weight(
            shape=(), name="bias", trainable=loss == "siglip",
            initializer=keras.initializers.Constant(start_bias))
        length = min(8, getattr(text_backbone, "max_sequence_length", 8))
        self({"images": np.zeros((1,) + self.image_shape, "float32"),
              "token_ids": np.zeros((1, length), "int32"),
              "padding_mask": np.ones((1, length), bool)})
        self.compile()

    def encode_images(self, images):
        """L2-normalised image embeddings `(batch, embed_dim)`."""
        tokens = image_tokens(self.adapter,
                              ops.cast(images, self.compute_dtype))
        x = self.image_projection(ops.mean(tokens, axis=1))
        return ops.normalize(ops.cast(x, "float32"), axis=-1)

    def encode_texts(self, inputs):
        """L2-normalised text embeddings `(batch, embed_dim)`."""
        check_text_inputs(self.text_backbone, inputs)
        sequence = text_sequence(self.text_backbone, inputs)
        x = self.text_projection(masked_mean(sequence,
                                             inputs["padding_mask"]))
        return ops.normalize(ops.cast(x, "float32"), axis=-1)

    def call(self, inputs, training=None):
        check_pair_inputs(self, inputs)
        return {"image_embeddings": self.encode_images(inputs["images"]),
                "text_embeddings": self.encode_texts(inputs)}

    def similarity_logits(self, image_embeddings, text_embeddings):
        """`(batch_images, batch_texts)` logits with the learned scale."""
        scale = ops.exp(ops.minimum(ops.cast(self.log_scale, "float32"),
                                    float(np.log(100.0))))
        logits = scale * ops.matmul(image_embeddings,
                                    ops.transpose(text_embeddings))
        return logits + ops.cast(self.bias, "float32")

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None,
                     training=True):
        logits = self.similarity_logits(y_pred["image_embeddings"],
                                        y_pred["text_embeddings"])
        n = ops.shape(logits)[0]
        eye = ops.eye(n, dtype="float32")
        if self.loss_type == "siglip":
            signs = 2.0 * eye - 1.0
            loss = -ops.sum(ops.log_sigmoid(signs * logits)) / ops.cast(
                n, "float32")
        else:
            rows = -ops.sum(eye * ops.log_softmax(logits, axis=1), axis=1)
            cols = -ops.sum(eye * ops.log_softmax(logits, axis=0), axis=0)
            loss = (ops.mean(rows) + ops.mean(cols)) / 2.0
        for extra in self.losses:
            loss = loss + ops.cast(extra, "float32")
        return loss

    def compile(self, optimizer="auto", **kwargs):
        """`keras.Model.compile` with the model's own loss; `"auto"` is
        AdamW (lr 1e-4, weight decay 0.05)."""
        if kwargs.pop("loss", None) is not None:
            raise ValueError("ContrastiveAligner computes its own loss; "
                             "choose it with ContrastiveAligner(loss=...).")
        if isinstance(optimizer, str) and optimizer == "auto":
            optimizer = keras.optimizers.AdamW(1e-4, weight_decay=0.05)
        super().compile(optimizer=optimizer, **kwargs)

    def get_config(self):
        config = super().get_config()
        config.update({
            **serialize_towers(self),
            "embed_dim": self.embed_dim, "loss": self.loss_type,
            "initial_scale": self.initial_scale,
            "initial_bias": self.initial_bias,
        })
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**with_deserialized_towers(config))
