"""Layer-wise learning-rate decay (the SimMIM / BEiT fine-tuning recipe)."""

import keras
from keras import ops

from keras_simmim.backbones import get_adapter


def layer_decay_multipliers(backbone, decay, image_shape=None):
    """Learning-rate multiplier per backbone variable path.

    With `G` depth groups from the adapter (`[embedding, block 1, ...,
    block G-1]`), group `g` gets `decay ** (G - g)`: the embedding
    `decay ** G`, the last block `decay`, everything after it (final norm,
    head) the full rate, as in SimMIM's fine-tuning code.

    Args:
        backbone: a backbone with an adapter that defines `layer_groups`.
        decay: float in (0, 1]; 1 gives every variable the full rate.
        image_shape: for backbones that accept any image size.

    Returns:
        dict `{variable.path: multiplier}`.

    Example:

    >>> import keras_hub
    >>> vit = keras_hub.models.ViTBackbone(image_shape=(32, 32, 3),
    ...     patch_size=4, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64)
    >>> scales = layer_decay_multipliers(vit, 0.5)
    >>> sorted(set(round(v, 3) for v in scales.values()))
    [0.125, 0.25, 0.5]
    """
    if isinstance(decay, bool) or not isinstance(decay, (int, float)):
        raise TypeError(
            f"`layer_decay` must be a float in (0, 1]. Received: {decay!r}."
        )
    if not 0.0 < float(decay) <= 1.0:
        raise ValueError(
            f"`layer_decay` must be in (0, 1]. Received: layer_decay={decay}."
        )
    adapter = get_adapter(backbone, image_shape=image_shape)
    groups = adapter.layer_groups()
    if groups is None:
        if float(decay) == 1.0:
            return {}
        raise ValueError(
            f"layer_decay={decay} needs depth groups, which "
            f"{type(adapter).__name__} does not define; use layer_decay=1.0 "
            "or implement `layer_groups()` in the adapter."
        )
    total = len(groups)
    return {
        variable.path: float(decay) ** (total - g)
        for g, group in enumerate(groups)
        for variable in group
    }


@keras.saving.register_keras_serializable(package="keras_simmim")
class LayerDecayAdamW(keras.optimizers.AdamW):
    """AdamW whose learning rate (and decoupled weight decay) is scaled per
    variable.

    The step of variable `v` uses `learning_rate * multipliers[v.path]`
    (default 1), for both the Adam update and the weight decay, like a
    PyTorch parameter group with its own `lr`. It runs Keras's own update
    code on every backend.

    Args:
        multipliers: dict `{variable path: float}`, e.g. from
            `layer_decay_multipliers`.
        **kwargs: `keras.optimizers.AdamW` arguments.

    Example:

    >>> import keras, numpy as np
    >>> v = keras.Variable(np.ones(2, "float32"), name="w")
    >>> opt = LayerDecayAdamW({v.path: 0.5}, learning_rate=0.1,
    ...                       weight_decay=0.0)
    >>> opt.apply([np.ones(2, "float32")], [v])
    >>> [round(float(x), 4) for x in keras.ops.convert_to_numpy(v)]
    [0.95, 0.95]
    """

    def __init__(self, multipliers=None, **kwargs):
        super().__init__(**kwargs)
        self.multipliers = {str(k): float(v) for k, v in (multipliers or {}).items()}
        self._scale_by_key = {}

    def build(self, var_list):
        super().build(var_list)
        self._scale_by_key = {
            self._var_key(v): self.multipliers.get(v.path, 1.0)
            for v in var_list
        }

    def _scale(self, variable):
        return self._scale_by_key.get(self._var_key(variable), 1.0)

    def update_step(self, gradient, variable, learning_rate):
        scale = self._scale(variable)
        if scale != 1.0:
            learning_rate = ops.multiply(learning_rate, scale)
        super().update_step(gradient, variable, learning_rate)

    def _apply_weight_decay(self, variables):
        if self.weight_decay is None:
            return
        for variable in variables:
            if self._use_weight_decay(variable):
                lr = ops.cast(self.learning_rate, variable.dtype)
                wd = ops.cast(self.weight_decay, variable.dtype)
                scale = ops.cast(self._scale(variable), variable.dtype)
                variable.assign(variable - variable * wd * lr * scale)

    def get_config(self):
        return {**super().get_config(), "multipliers": dict(self.multipliers)}
