"""`MaskToken`: the learned vector that stands in for masked patches."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_simmim")
class MaskToken(keras.layers.Layer):
    """Replaces masked positions of a feature map with a learned token.

    Computes `x * (1 - w) + token * w`, where `w` is the mask cast to the
    feature dtype, exactly as SimMIM does right after patch embedding. For a
    token backbone (ViT, Swin) the features are patch embeddings and the token
    has the embedding width; for a CNN masked in pixel space the "features"
    are the pixels and the token is a learned fill colour.

    Args:
        initializer: initializer of the token. Defaults to a truncated normal
            with standard deviation 0.02, as in the official SimMIM code
            (Hugging Face starts from zeros; its checkpoints overwrite it).
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        inputs: features of shape `(batch, ..., dim)`.
        mask: shape `(batch, ...)` matching `inputs` without its last axis;
            boolean or numeric, 1 (True) where masked.

    Output shape:
        same as `inputs`.

    Example:

    >>> import keras
    >>> import numpy as np
    >>> layer = MaskToken(initializer="ones")
    >>> x = np.zeros((1, 2, 2, 3), "float32")
    >>> mask = np.array([[[True, False], [False, False]]])
    >>> keras.ops.convert_to_numpy(layer(x, mask))[0, :, :, 0].tolist()
    [[1.0, 0.0], [0.0, 0.0]]
    """

    def __init__(self, initializer=None, **kwargs):
        super().__init__(**kwargs)
        if initializer is None:
            initializer = keras.initializers.TruncatedNormal(stddev=0.02)
        self.initializer = keras.initializers.get(initializer)

    def build(self, inputs_shape, mask_shape=None):
        dim = inputs_shape[-1]
        if dim is None:
            raise ValueError(
                "MaskToken needs a known last (feature) axis. "
                f"Received input shape: {inputs_shape}."
            )
        self.token = self.add_weight(
            shape=(dim,), initializer=self.initializer, name="mask_token"
        )

    def call(self, inputs, mask):
        expected = tuple(inputs.shape[:-1])
        got = tuple(mask.shape)
        compatible = len(expected) == len(got) and all(
            a is None or b is None or a == b for a, b in zip(expected, got)
        )
        if not compatible:
            raise ValueError(
                "`mask` must have the shape of `inputs` without its last axis. "
                f"Received: inputs.shape={tuple(inputs.shape)}, "
                f"mask.shape={got}; expected mask shape {expected}."
            )
        weight = ops.expand_dims(ops.cast(mask, inputs.dtype), -1)
        token = ops.cast(self.token, inputs.dtype)
        return inputs * (1.0 - weight) + token * weight

    def compute_output_shape(self, inputs_shape, mask_shape=None):
        return inputs_shape

    def get_config(self):
        config = super().get_config()
        config["initializer"] = keras.initializers.serialize(self.initializer)
        return config
