"""Fusion layers: combine image patch tokens with text tokens.

Four designs, from the shallowest to the deepest, all with one call
signature, `fusion(image_tokens, text_tokens, text_mask=None)` -> a fused
vector `(batch, output_dim)`:

- `LateConcatFusion`: pool each modality, project, concatenate (CLIP-style
  late fusion; FLAVA shows it loses to deep fusion on VQA).
- `GatedFusion`: attention pooling of each modality with a learned query,
  then a learned sigmoid gate mixes the two vectors.
- `CrossAttentionFusion`: in every block text tokens attend to each other,
  then to the image patch tokens, then pass an MLP (ALBEF's fusion
  encoder).
- `MergedFusion`: one stream: both token sequences, with modality
  embeddings, go through joint self-attention (M3AE / single-stream).

`text_mask` is keras-hub's `padding_mask` (True / 1 for real tokens):
padded text tokens are never attended to nor pooled.

The gated, cross-attention and merged fusions add a learned position
embedding to the projected image tokens (`image_position_embedding=True`,
their default; late fusion's mean would only see a constant). Attention and
pooling are blind to token order, so without it a fusion over a CNN's
feature grid (whose tokens carry no position of their own) cannot answer
"is the red object on the left?"; ViT tokens already carry one, and the
extra embedding costs `tokens * dim` weights. It needs a fixed number of
image tokens (a fixed image size).

`FUSIONS` holds these four token fusions. The fusions that work on the
image side itself, `FiLMFusion` (`film.py`: the text modulates the image
backbone between its stages) and `RelationalFusion` (`relational.py`: a
Relation Network over the feature grid's cells), take images or a grid
rather than tokens; `FusionClassifier` offers all of them
(`CLASSIFIER_FUSIONS`).
"""

import keras
from keras import ops

from keras_simmim.layers.transformer_block import TransformerBlock
from keras_simmim.utils.validation import check_bool
from keras_simmim.utils.validation import check_positive_int


def check_fusion_inputs(image_name, image, image_layout, text_tokens,
                        text_mask):
    """Checks a fusion's inputs: the image input's rank (`image_layout`
    names its axes, e.g. "batch, tokens, dim"), 3-D text tokens, equal
    batch sizes and a `text_mask` of shape `(batch, text_tokens)`."""
    rank = len(image_layout.split(","))
    for name, x, layout, want in (
            (image_name, image, image_layout, rank),
            ("text_tokens", text_tokens, "batch, tokens, dim", 3)):
        if len(x.shape) != want:
            raise ValueError(
                f"`{name}` must have shape ({layout}). Received "
                f"shape: {tuple(x.shape)}."
            )
    batch_i, batch_t = image.shape[0], text_tokens.shape[0]
    if batch_i is not None and batch_t is not None and batch_i != batch_t:
        raise ValueError(
            f"`{image_name}` and `text_tokens` must have the same batch "
            f"size. Received: {batch_i} and {batch_t}."
        )
    if text_mask is not None and tuple(text_mask.shape[1:]) != tuple(
            text_tokens.shape[1:2]):
        raise ValueError(
            "`text_mask` must have shape (batch, text_tokens) = "
            f"(batch, {text_tokens.shape[1]}). Received shape: "
            f"{tuple(text_mask.shape)}."
        )


def pooled_text(text_tokens, text_mask=None):
    """The text's vector: the mean of its real tokens, `(batch, dim)`."""
    return masked_mean(text_tokens, _valid(text_tokens, text_mask))


def _check_tokens(image_tokens, text_tokens, text_mask):
    check_fusion_inputs("image_tokens", image_tokens, "batch, tokens, dim",
                        text_tokens, text_mask)


def _valid(text_tokens, text_mask):
    """float32 `(batch, tokens)` with 1 for real text tokens."""
    if text_mask is None:
        return ops.ones(ops.shape(text_tokens)[:2], "float32")
    return ops.cast(text_mask, "float32")


def masked_mean(tokens, valid):
    """Mean of `tokens (B, N, D)` over the positions where `valid` is 1."""
    tokens = ops.convert_to_tensor(tokens)
    valid = ops.cast(valid, tokens.dtype)
    total = ops.sum(tokens * valid[..., None], axis=1)
    count = ops.maximum(ops.sum(valid, axis=1, keepdims=True), 1.0)
    return total / count


class _Fusion(keras.layers.Layer):
    """Shared arguments and checks of the fusion layers."""

    def __init__(self, dim, num_layers=0, num_heads=4,
                 image_position_embedding=True, **kwargs):
        super().__init__(**kwargs)
        check_positive_int("dim", dim)
        check_bool("image_position_embedding", image_position_embedding)
        self.image_position_embedding = image_position_embedding
        if num_layers:
            check_positive_int("num_layers", num_layers)
            check_positive_int("num_heads", num_heads)
            if dim % num_heads:
                raise ValueError(
                    f"`num_heads` ({num_heads}) must divide `dim` ({dim})."
                )
        self.dim = int(dim)
        self.num_layers = int(num_layers)
        self.num_heads = int(num_heads)
        policy = self.dtype_policy
        self.image_projection = keras.layers.Dense(
            self.dim, dtype=policy, name="image_projection")
        self.text_projection = keras.layers.Dense(
            self.dim, dtype=policy, name="text_projection")

    def _project(self, image_tokens, text_tokens, text_mask):
        _check_tokens(image_tokens, text_tokens, text_mask)
        image = self.image_projection(image_tokens)
        if self.image_position_embedding:
            count = self.image_positions.shape[0]
            if image_tokens.shape[1] not in (None, count):
                raise ValueError(
                    f"This fusion was built for {count} image tokens (its "
                    "image position embedding); received `image_tokens` of "
                    f"shape {tuple(image_tokens.shape)}. Use images of the "
                    "size it was built for, or "
                    "`image_position_embedding=False`."
                )
            image = image + ops.cast(self.image_positions, image.dtype)
        return (image, self.text_projection(text_tokens),
                _valid(text_tokens, text_mask))

    def build(self, image_tokens_shape, text_tokens_shape,
              text_mask_shape=None):
        self.image_projection.build(image_tokens_shape)
        self.text_projection.build(text_tokens_shape)
        if self.image_position_embedding:
            count = image_tokens_shape[1]
            if count is None:
                raise ValueError(
                    "`image_position_embedding=True` needs a fixed number "
                    "of image tokens; received `image_tokens` of shape "
                    f"{tuple(image_tokens_shape)}. Pass a fixed image size "
                    "or `image_position_embedding=False`."
                )
            self.image_positions = self.add_weight(
                shape=(int(count), self.dim),
                initializer=keras.initializers.RandomNormal(stddev=0.02),
                name="image_positions")

    def get_config(self):
        config = super().get_config()
        config.update({"dim": self.dim, "num_layers": self.num_layers,
                       "num_heads": self.num_heads,
                       "image_position_embedding":
                           self.image_position_embedding})
        return config


@keras.saving.register_keras_serializable(package="keras_simmim")
class LateConcatFusion(_Fusion):
    """Mean-pools each modality, projects both to `dim`, concatenates.

    Args:
        dim: int, width of each projected vector (output `2 * dim`).
        image_position_embedding: bool (False: under a plain mean over the
            image tokens a position embedding is only a constant).
        **kwargs: standard `keras.layers.Layer` arguments.

    Example:

    >>> import numpy as np
    >>> fusion = LateConcatFusion(dim=8)
    >>> image, text = np.zeros((2, 16, 12)), np.zeros((2, 5, 6))
    >>> tuple(fusion(image, text, np.ones((2, 5), bool)).shape)
    (2, 16)
    """

    def __init__(self, dim, image_position_embedding=False, **kwargs):
        kwargs.pop("num_layers", None)
        kwargs.pop("num_heads", None)
        super().__init__(
            dim, image_position_embedding=image_position_embedding, **kwargs)

    def call(self, image_tokens, text_tokens, text_mask=None):
        image, text, valid = self._project(image_tokens, text_tokens,
                                           text_mask)
        return ops.concatenate(
            [ops.mean(image, axis=1), masked_mean(text, valid)], axis=-1)

    @property
    def output_dim(self):
        return 2 * self.dim


@keras.saving.register_keras_serializable(package="keras_simmim")
class GatedFusion(_Fusion):
    """Attention pooling per modality, then a learned gate mixes them.

    Each projected sequence is pooled by softmax attention against a
    learned query (padded text excluded); a sigmoid gate computed from both
    pooled vectors weighs them per channel:
    `g * image + (1 - g) * text`.

    Args:
        dim: int, output width.
        image_position_embedding: bool, add a learned position embedding
            to the image tokens before pooling (True), so the pooling
            weights can depend on where a token is.
        **kwargs: standard `keras.layers.Layer` arguments.

    Example:

    >>> import numpy as np
    >>> fusion = GatedFusion(dim=8)
    >>> tuple(fusion(np.zeros((2, 16, 12)), np.zeros((2, 5, 6))).shape)
    (2, 8)
    """

    def __init__(self, dim, **kwargs):
        kwargs.pop("num_layers", None)
        kwargs.pop("num_heads", None)
        super().__init__(dim, **kwargs)
        self.gate = keras.layers.Dense(self.dim, activation="sigmoid",
                                       dtype=self.dtype_policy, name="gate")

    def build(self, image_tokens_shape, text_tokens_shape,
              text_mask_shape=None):
        image_shape, text_shape = image_tokens_shape, text_tokens_shape
        super().build(image_shape, text_shape)
        init = keras.initializers.RandomNormal(stddev=0.02)
        self.image_query = self.add_weight(
            shape=(self.dim,), initializer=init, name="image_query")
        self.text_query = self.add_weight(
            shape=(self.dim,), initializer=init, name="text_query")
        self.gate.build((None, 2 * self.dim))

    def _pool(self, tokens, query, valid):
        scores = ops.einsum("bnd,d->bn", tokens,
                            ops.cast(query, tokens.dtype))
        scores = scores / (self.dim ** 0.5)
        scores = ops.where(valid > 0, scores, -1e9 * ops.ones_like(scores))
        weights = ops.softmax(ops.cast(scores, "float32"), axis=-1)
        return ops.einsum("bn,bnd->bd", ops.cast(weights, tokens.dtype),
                          tokens)

    def call(self, image_tokens, text_tokens, text_mask=None):
        image, text, valid = self._project(image_tokens, text_tokens,
                                           text_mask)
        image = self._pool(image, self.image_query,
                           ops.ones(ops.shape(image)[:2]))
        text = self._pool(text, self.text_query, valid)
        g = self.gate(ops.concatenate([image, text], axis=-1))
        return g * image + (1.0 - g) * text

    @property
    def output_dim(self):
        return self.dim


@keras.saving.register_keras_serializable(package="keras_simmim")
class CrossAttentionBlock(TransformerBlock):
    """Text self-attention, text-to-image cross-attention, MLP (pre-norm).

    A `keras_simmim.layers.TransformerBlock` over the text with a
    cross-attention step between its self-attention and its MLP:
    `t + SelfAttn(LN(t))`, then `t + CrossAttn(LN(t), LN(image))`, then
    `t + MLP(LN(t))`. This is ALBEF's order: the image evidence a text
    token gathered goes through the MLP before the next block (or the
    read-out) sees it.

    Args:
        num_heads: int, attention heads; must divide the width.
        mlp_dim: int or None (4x the width).
        layer_norm_epsilon: float, epsilon of the LayerNorms (1e-6).
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        text: `(batch, T, dim)`; image: `(batch, S, dim)`;
        self_mask: optional `(batch, T, T)` bool;
        return_attention: also return the cross-attention weights
        `(batch, heads, T, S)`.

    Example:

    >>> import numpy as np
    >>> block = CrossAttentionBlock(num_heads=2)
    >>> tuple(block(np.zeros((2, 5, 8)), np.zeros((2, 9, 8))).shape)
    (2, 5, 8)
    """

    def build(self, text_shape, image_shape, self_mask_shape=None):
        super().build(text_shape)
        if len(image_shape) != 3 or image_shape[-1] != text_shape[-1]:
            raise ValueError(
                "CrossAttentionBlock expects image tokens (batch, S, dim) "
                f"with the text's width {text_shape[-1]}. Received "
                f"image shape: {tuple(image_shape)}.")
        dim = int(text_shape[-1])
        policy = self.dtype_policy
        self.norm_query = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=policy, name="norm_query")
        self.norm_image = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=policy, name="norm_image")
        self.cross_attention = keras.layers.MultiHeadAttention(
            self.num_heads, dim // self.num_heads, dtype=policy,
            name="cross_attention")
        self.norm_query.build(text_shape)
        self.norm_image.build(image_shape)
        self.cross_attention.build(text_shape, image_shape)

    def call(self, text, image, self_mask=None, return_attention=False):
        text = self._self_attend(text, self_mask)
        out, scores = self.cross_attention(
            self.norm_query(text), self.norm_image(image),
            return_attention_scores=True)
        text = self._feed_forward(text + out)
        return (text, scores) if return_attention else text


def _pair_mask(valid):
    """`(batch, N, N)` bool: key j is a real token."""
    keys = ops.expand_dims(valid > 0, 1)
    n = ops.shape(valid)[1]
    return ops.broadcast_to(keys, (ops.shape(valid)[0], n, n))


@keras.saving.register_keras_serializable(package="keras_simmim")
class CrossAttentionFusion(_Fusion):
    """ALBEF-style fusion: text queries attend to image patch tokens.

    Both sequences are projected to `dim`; `num_layers`
    `CrossAttentionBlock`s run text self-attention (padding masked),
    cross-attention from every text token to every image token and an
    MLP; the output is the masked mean of the final text tokens.

    Args:
        dim: int, fusion width.
        num_layers: int, blocks (2).
        num_heads: int, attention heads (4); must divide `dim`.
        image_position_embedding: bool, add a learned position embedding
            to the image tokens (True; see the module docstring).
        **kwargs: standard `keras.layers.Layer` arguments.

    Example:

    >>> import numpy as np
    >>> fusion = CrossAttentionFusion(dim=8, num_layers=1, num_heads=2)
    >>> tuple(fusion(np.zeros((2, 16, 12)), np.zeros((2, 5, 6))).shape)
    (2, 8)
    """

    def __init__(self, dim, num_layers=2, num_heads=4, **kwargs):
        super().__init__(dim, num_layers, num_heads, **kwargs)
        self.blocks = [
            CrossAttentionBlock(self.num_heads, dtype=self.dtype_policy,
                                name=f"block_{i}")
            for i in range(self.num_layers)
        ]
        self.norm = keras.layers.LayerNormalization(
            epsilon=1e-6, dtype=self.dtype_policy, name="norm")

    def build(self, image_tokens_shape, text_tokens_shape,
              text_mask_shape=None):
        image_shape, text_shape = image_tokens_shape, text_tokens_shape
        super().build(image_shape, text_shape)
        text = tuple(text_shape[:-1]) + (self.dim,)
        image = tuple(image_shape[:-1]) + (self.dim,)
        for block in self.blocks:
            block.build(text, image)
        self.norm.build(text)

    def call(self, image_tokens, text_tokens, text_mask=None,
             return_attention=False):
        image, text, valid = self._project(image_tokens, text_tokens,
                                           text_mask)
        mask = _pair_mask(valid)
        attention = []
        for block in self.blocks:
            text, scores = block(text, image, mask, return_attention=True)
            attention.append(scores)
        pooled = masked_mean(self.norm(text), valid)
        return (pooled, attention) if return_attention else pooled

    @property
    def output_dim(self):
        return self.dim


@keras.saving.register_keras_serializable(package="keras_simmim")
class MergedFusion(_Fusion):
    """Single-stream fusion: joint self-attention over both sequences.

    Image and text tokens are projected to `dim`, tagged with a learned
    modality embedding each, concatenated and passed through `num_layers`
    `TransformerBlock`s whose attention never reads padded text; the output
    is the mean over the real tokens of both modalities, or, with
    `return_sequences=True`, the fused `(image_tokens, text_tokens)`
    sequences (for per-token heads such as masked modelling).

    Args:
        dim: int, fusion width.
        num_layers: int, blocks (2).
        num_heads: int, attention heads (4); must divide `dim`.
        image_position_embedding: bool, add a learned position embedding
            to the image tokens (True; see the module docstring).
        **kwargs: standard `keras.layers.Layer` arguments.

    Example:

    >>> import numpy as np
    >>> fusion = MergedFusion(dim=8, num_layers=1, num_heads=2)
    >>> tuple(fusion(np.zeros((2, 16, 12)), np.zeros((2, 5, 6))).shape)
    (2, 8)
    """

    def __init__(self, dim, num_layers=2, num_heads=4, **kwargs):
        super().__init__(dim, num_layers, num_heads, **kwargs)
        self.blocks = [
            TransformerBlock(self.num_heads, dtype=self.dtype_policy,
                             name=f"block_{i}")
            for i in range(self.num_layers)
        ]
        self.norm = keras.layers.LayerNormalization(
            epsilon=1e-6, dtype=self.dtype_policy, name="norm")

    def build(self, image_tokens_shape, text_tokens_shape,
              text_mask_shape=None):
        image_shape, text_shape = image_tokens_shape, text_tokens_shape
        super().build(image_shape, text_shape)
        self.modality_embedding = self.add_weight(
            shape=(2, self.dim),
            initializer=keras.initializers.RandomNormal(stddev=0.02),
            name="modality_embedding")
        tokens = (None, None, self.dim)
        for block in self.blocks:
            block.build(tokens)
        self.norm.build(tokens)

    def call(self, image_tokens, text_tokens, text_mask=None,
             return_sequences=False):
        image, text, valid = self._project(image_tokens, text_tokens,
                                           text_mask)
        embedding = ops.cast(self.modality_embedding, image.dtype)
        x = ops.concatenate([image + embedding[0], text + embedding[1]],
                            axis=1)
        valid = ops.concatenate(
            [ops.ones(ops.shape(image)[:2], "float32"), valid], axis=1)
        mask = _pair_mask(valid)
        for block in self.blocks:
            x = block(x, attention_mask=mask)
        x = self.norm(x)
        if return_sequences:
            count = image.shape[1]
            return x[:, :count], x[:, count:]
        return masked_mean(x, valid)

    @property
    def output_dim(self):
        return self.dim


FUSIONS = {
    "late": LateConcatFusion,
    "gated": GatedFusion,
    "cross_attention": CrossAttentionFusion,
    "merged": MergedFusion,
}
