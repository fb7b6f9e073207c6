"""Text as `tf.data`: the input keras-hub's vocabulary tools read."""


def text_dataset(texts):
    """A `tf.data.Dataset` of the strings in `texts` (a list or array),
    one element each, for `keras_hub.tokenizers.compute_word_piece_vocabulary`.

    Example:

    >>> [t.decode() for t in text_dataset(["a b", 3]).as_numpy_iterator()]
    ['a b', '3']
    """
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices([str(t) for t in texts])
