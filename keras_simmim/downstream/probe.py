"""Linear probe on precomputed frozen features (fast path)."""

import keras
import numpy as np

from keras_simmim.utils.validation import check_positive_int


def fit_linear_probe(
    features, labels, num_classes, epochs=100, batch_size=256,
    learning_rate=1e-2, weight_decay=0.0, seed=0, verbose=0,
):
    """Trains a linear classifier on frozen features.

    The head is MAE's linear probe: the features standardised per
    dimension (here with the exact mean and variance of `features`, which a
    BatchNorm without scale or offset only approaches after many steps),
    then one dense layer, trained with AdamW on cross-entropy. Training on
    features extracted once (`extract_features`) is a frozen
    `SimMIMClassifier(..., freeze_backbone=True, head_norm="batch")`
    without running the backbone every step.

    Args:
        features: float array `(n, dim)`.
        labels: int array `(n,)`.
        num_classes: int.
        epochs, batch_size, learning_rate, weight_decay: training settings.
        seed: int, initialisation and shuffling seed.
        verbose: passed to `fit`.

    Returns:
        A compiled `keras.Sequential` mapping features to logits; its
        `evaluate` reports accuracy.

    Example:

    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    >>> y = (x[:, 0] > 0).astype("int32")
    >>> head = fit_linear_probe(x, y, num_classes=2, epochs=50,
    ...                         learning_rate=0.1)
    >>> head.evaluate(x, y, verbose=0)[1] > 0.9
    True
    """
    features = np.asarray(features, "float32")
    labels = np.asarray(labels)
    check_positive_int("num_classes", num_classes)
    check_positive_int("epochs", epochs)
    if features.ndim != 2:
        raise ValueError(
            f"`features` must be 2-D (n, dim). Received shape {features.shape}."
        )
    if labels.shape != (len(features),):
        raise ValueError(
            "`labels` needs one label per feature row: expected "
            f"({len(features)},), received {labels.shape}."
        )
    keras.utils.set_random_seed(seed)
    # Exact standardisation with the training features' statistics: a
    # BatchNorm's moving averages (momentum 0.99) are still far from them
    # after the few steps a small labelled set gives, and evaluation would
    # then see shifted features.
    standardize = keras.layers.Normalization(axis=-1)
    standardize.adapt(features)
    head = keras.Sequential(
        [
            keras.Input((features.shape[1],)),
            standardize,
            keras.layers.Dense(
                num_classes,
                kernel_initializer=keras.initializers.TruncatedNormal(
                    stddev=0.01
                ),
            ),
        ]
    )
    steps = epochs * -(-len(features) // batch_size)
    head.compile(
        optimizer=keras.optimizers.AdamW(
            learning_rate=keras.optimizers.schedules.CosineDecay(
                learning_rate, steps
            ),
            weight_decay=weight_decay,
        ),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    head.fit(features, labels, batch_size=batch_size, epochs=epochs,
             shuffle=True, verbose=verbose)
    return head
