"""Stops `fit` at the first batch whose input images hold NaN or inf."""

import keras

METRIC_NAME = "nonfinite_inputs"


class NonFiniteInputCheck(keras.callbacks.Callback):
    """Raises a `ValueError` naming the batch whose images are not finite.

    Needs a model that counts non-finite input values into the
    `nonfinite_inputs` metric: `SimMIMModel(..., check_inputs=True)` does,
    and adds this callback to its `fit` by itself. Reading a metric keeps the
    check inside the compiled step on every backend; the count is cumulative
    over the epoch, so the first batch where it turns positive is the bad
    one.

    Example:

    >>> import keras, keras_hub, numpy as np
    >>> from keras_simmim import SimMIMModel
    >>> backbone = keras_hub.models.ViTBackbone(
    ...     image_shape=(16, 16, 3), patch_size=4, num_layers=1, num_heads=1,
    ...     hidden_dim=8, mlp_dim=8)
    >>> model = SimMIMModel(backbone, mask_patch_size=8, check_inputs=True)
    >>> images = np.zeros((8, 16, 16, 3), "float32")
    >>> images[5, 0, 0, 0] = np.nan
    >>> model.fit(images, batch_size=2, shuffle=False, verbose=0)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: 1 non-finite input value(s) (NaN/inf) in batch 2 of epoch 0...
    """

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        count = (logs or {}).get(METRIC_NAME)
        if count is not None and float(count) > 0:
            self.model.stop_training = True
            raise ValueError(
                f"{int(float(count))} non-finite input value(s) (NaN/inf) in "
                f"batch {batch} of epoch {getattr(self, '_epoch', 0)} "
                "(0-based; with shuffle=False the batch holds images "
                f"[{batch} * batch_size, ({batch} + 1) * batch_size)). "
                "Clean or drop those images; training was stopped before "
                "they could corrupt a checkpoint."
            )
