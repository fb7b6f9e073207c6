"""Frozen-feature extraction for probes and k-NN."""

import keras
import numpy as np

from keras_simmim.downstream.classifier import SimMIMClassifier


def extract_features(backbone, images, feature_layer=None, batch_size=256,
                     image_shape=None):
    """Average-pooled features of `images`, as a numpy array `(n, dim)`.

    The same features `SimMIMClassifier` puts its head on: patch tokens (or
    the CNN feature map) averaged over positions, from the final layer or
    from block `feature_layer`.

    Args:
        backbone: the backbone.
        images: normalised images `(n, H, W, C)`, or a `tf.data.Dataset`
            of image batches.
        feature_layer: None or int, as in `SimMIMClassifier`.
        batch_size: int.
        image_shape: for backbones that accept any size.

    Returns:
        float32 array `(n, dim)`.
    """
    extractor = SimMIMClassifier(
        backbone, num_classes=1, feature_layer=feature_layer,
        head_norm=None, image_shape=image_shape,
    )
    features = []
    if hasattr(images, "element_spec"):
        batches = images
    else:
        images = np.asarray(images, "float32")
        batches = (images[i:i + batch_size]
                   for i in range(0, len(images), batch_size))
    for batch in batches:
        if isinstance(batch, tuple):
            batch = batch[0]
        features.append(np.asarray(keras.ops.convert_to_numpy(
            extractor.features(batch, training=False)), "float32"
        ))
    return np.concatenate(features)

