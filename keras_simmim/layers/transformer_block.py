"""`TransformerBlock`: a pre-norm transformer block for light decoders."""

import keras

from keras_simmim.utils.validation import check_positive_int


@keras.saving.register_keras_serializable(package="keras_simmim")
class TransformerBlock(keras.layers.Layer):
    """Pre-norm transformer block: `x + MHA(LN(x))`, then `x + MLP(LN(x))`.

    The block of MAE's decoder and of the heavier SimMIM heads. Attention
    runs over all tokens (no mask); the MLP is `Dense(mlp_dim)`, GELU,
    `Dense(dim)`.

    Args:
        num_heads: int, attention heads; must divide the token width.
        mlp_dim: int or None, the MLP's hidden width (None: 4x the width).
        layer_norm_epsilon: float, epsilon of both LayerNorms.
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        x: `(batch, tokens, dim)`; the output has the same shape.
        attention_mask: optional `(batch, tokens, tokens)` bool, True where
            query `i` may attend to key `j`.

    Example:

    >>> import numpy as np
    >>> block = TransformerBlock(num_heads=2)
    >>> tuple(block(np.zeros((2, 5, 16), "float32")).shape)
    (2, 5, 16)
    """

    def __init__(self, num_heads, mlp_dim=None, layer_norm_epsilon=1e-6,
                 **kwargs):
        super().__init__(**kwargs)
        check_positive_int("num_heads", num_heads)
        if mlp_dim is not None:
            check_positive_int("mlp_dim", mlp_dim)
        self.num_heads = int(num_heads)
        self.mlp_dim = None if mlp_dim is None else int(mlp_dim)
        self.layer_norm_epsilon = float(layer_norm_epsilon)

    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise ValueError(
                f"{type(self).__name__} expects tokens of shape (batch, "
                "tokens, dim) with a known dim. Received shape: "
                f"{tuple(input_shape)}."
            )
        dim = int(input_shape[-1])
        if dim % self.num_heads:
            raise ValueError(
                f"`num_heads` ({self.num_heads}) must divide the token width "
                f"({dim})."
            )
        mlp_dim = self.mlp_dim or 4 * dim
        policy = self.dtype_policy
        self.norm_1 = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=policy, name="norm_1")
        self.attention = keras.layers.MultiHeadAttention(
            self.num_heads, dim // self.num_heads, dtype=policy,
            name="attention")
        self.norm_2 = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=policy, name="norm_2")
        self.mlp_in = keras.layers.Dense(mlp_dim, activation="gelu",
                                         dtype=policy, name="mlp_in")
        self.mlp_out = keras.layers.Dense(dim, dtype=policy, name="mlp_out")
        self.norm_1.build(input_shape)
        self.attention.build(input_shape, input_shape)
        self.norm_2.build(input_shape)
        self.mlp_in.build(input_shape)
        self.mlp_out.build(tuple(input_shape[:-1]) + (mlp_dim,))

    def call(self, x, attention_mask=None):
        return self._feed_forward(self._self_attend(x, attention_mask))

    # The two residual steps, shared with subclasses that put a step of
    # their own between them (`keras_simmim.multimodal.CrossAttentionBlock`).
    def _self_attend(self, x, attention_mask=None):
        y = self.norm_1(x)
        return x + self.attention(y, y, attention_mask=attention_mask)

    def _feed_forward(self, x):
        return x + self.mlp_out(self.mlp_in(self.norm_2(x)))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "mlp_dim": self.mlp_dim,
                "layer_norm_epsilon": self.layer_norm_epsilon,
            }
        )
        return config
