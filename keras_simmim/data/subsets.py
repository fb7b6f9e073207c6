"""Labelled subsets for low-label experiments."""

import numpy as np


def stratified_subset(labels, fraction, seed=0):
    """Indices of a stratified subset: `fraction` of every class (at least
    one image each), drawn with `seed`.

    Args:
        labels: int array `(n,)`.
        fraction: float in (0, 1].
        seed: int.

    Returns:
        Sorted int array of indices.

    Example:

    >>> import numpy as np
    >>> stratified_subset(np.array([0] * 10 + [1] * 10), 0.2, seed=0).size
    4
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            "`labels` must be a 1-D int array. Received shape "
            f"{labels.shape}, dtype {labels.dtype}."
        )
    if not 0.0 < float(fraction) <= 1.0:
        raise ValueError(
            f"`fraction` must be in (0, 1]. Received: fraction={fraction}."
        )
    rng = np.random.default_rng(10_000 + int(seed))
    picked = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        count = max(1, int(round(float(fraction) * len(members))))
        picked.append(rng.choice(members, count, replace=False))
    return np.sort(np.concatenate(picked))
