"""k-nearest-neighbour evaluation of frozen features."""

import numpy as np

from keras_simmim.utils.validation import check_positive_int


def knn_predict(
    train_features, train_labels, features, k=20, temperature=0.07,
    num_classes=None, batch_size=1024, center=True,
):
    """Weighted k-NN class prediction on cosine similarity.

    Each query's `k` most similar training features vote with weight
    `exp(similarity / temperature)` (the protocol of InstDisc / DINO).
    With `center=True` (default) every feature is first centred on the
    training features' mean: average-pooled patch features share a large
    common component that otherwise makes all cosine similarities close to
    1 and the vote close to a class count.

    Args:
        train_features: `(n, d)` array.
        train_labels: int `(n,)`.
        features: `(m, d)` queries.
        k: int, neighbours (capped at `n`).
        temperature: float > 0.
        num_classes: default `max(train_labels) + 1`.
        batch_size: queries per similarity block.
        center: bool, subtract the training features' mean first.

    Returns:
        int `(m,)` predicted labels.

    Example:

    >>> import numpy as np
    >>> bank = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> knn_predict(bank, np.array([0, 1]), np.array([[0.9, 0.1]]), k=1)
    array([0])
    """
    train_features = np.asarray(train_features, "float32")
    features = np.asarray(features, "float32")
    train_labels = np.asarray(train_labels)
    check_positive_int("k", k)
    if train_features.ndim != 2 or features.ndim != 2 or (
        train_features.shape[1] != features.shape[1]
    ):
        raise ValueError(
            "`train_features` and `features` must be 2-D with the same "
            f"feature size. Received: {train_features.shape} and "
            f"{features.shape}."
        )
    if train_labels.shape != (len(train_features),):
        raise ValueError(
            "`train_labels` needs one label per training feature: expected "
            f"({len(train_features)},), received {train_labels.shape}."
        )
    if temperature <= 0:
        raise ValueError(f"`temperature` must be > 0. Received: {temperature}.")
    num_classes = num_classes or int(train_labels.max()) + 1
    k = min(int(k), len(train_features))

    def unit(x):
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)

    if center:
        mean = train_features.mean(axis=0, keepdims=True)
        train_features, features = train_features - mean, features - mean
    bank = unit(train_features)
    queries = unit(features)
    predictions = []
    for start in range(0, len(queries), batch_size):
        sim = queries[start:start + batch_size] @ bank.T
        top = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        top_sim = np.take_along_axis(sim, top, axis=1)
        weights = np.exp((top_sim - 1.0) / temperature)
        votes = np.zeros((len(sim), num_classes), "float64")
        np.add.at(
            votes, (np.arange(len(sim))[:, None], train_labels[top]), weights
        )
        predictions.append(votes.argmax(axis=1))
    return np.concatenate(predictions)


def knn_accuracy(train_features, train_labels, features, labels, **kwargs):
    """Accuracy of `knn_predict` on labelled queries (a float in [0, 1])."""
    labels = np.asarray(labels)
    predicted = knn_predict(train_features, train_labels, features, **kwargs)
    if labels.shape != predicted.shape:
        raise ValueError(
            f"`labels` must have shape {predicted.shape}. Received "
            f"{labels.shape}."
        )
    return float(np.mean(predicted == labels))
