"""Data order that depends only on (seed, epoch).

Keras's own shuffling draws from a global random stream that restarts when
a killed run is resumed, and a `PyDataset` cannot know its epoch reliably
(Keras peeks at batches and the TensorFlow backend prefetches the next
epoch's batches before the epoch ends). Feeding `fit` one epoch at a time,
in the order `epoch_permutation(n, seed, epoch)`, with `shuffle=False`, makes
a resumed run see exactly the batches an uninterrupted run sees.
"""

import numpy as np

from keras_simmim.utils.validation import check_positive_int


def epoch_permutation(num_items, seed, epoch):
    """The order of `num_items` items in epoch `epoch` of a run seeded
    `seed`.

    Args:
        num_items: positive int.
        seed: int.
        epoch: int >= 0.

    Returns:
        int64 array, a permutation of `range(num_items)`.

    Example:

    >>> first = epoch_permutation(5, seed=0, epoch=0)
    >>> sorted(first.tolist())
    [0, 1, 2, 3, 4]
    >>> bool((first == epoch_permutation(5, seed=0, epoch=0)).all())
    True
    """
    check_positive_int("num_items", num_items)
    for name, value in (("seed", seed), ("epoch", epoch)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
            raise TypeError(f"`{name}` must be an int. Received: {value!r}.")
    if epoch < 0 or seed < 0:
        raise ValueError(
            f"`seed` and `epoch` must be >= 0. Received: seed={seed}, "
            f"epoch={epoch}."
        )
    return np.random.default_rng([int(seed), int(epoch)]).permutation(
        num_items
    )
