"""Text side: run any keras-hub text backbone, build an offline tokenizer."""

from keras import ops

RESERVED_TOKENS = ("[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]")
TEXT_KEYS = ("token_ids", "padding_mask")


def check_text_inputs(backbone, inputs):
    """Checks a text batch against `backbone`'s inputs and maximum length."""
    for key in TEXT_KEYS:
        if key not in inputs:
            raise ValueError(
                f"The text inputs need key {key!r} (keras-hub preprocessor "
                f"output). Received keys: {sorted(inputs)}."
            )
    length = inputs["token_ids"].shape[1]
    limit = getattr(backbone, "max_sequence_length", None)
    if limit is not None and length is not None and length > limit:
        raise ValueError(
            f"The text has {length} tokens, more than the text backbone's "
            f"max_sequence_length={limit}. Preprocess with "
            f"sequence_length <= {limit}."
        )


def text_sequence(backbone, inputs):
    """Token features of a keras-hub text backbone, `(batch, T, dim)`.

    Feeds the backbone the inputs it declares (`token_ids`,
    `padding_mask`, and `segment_ids` as zeros when not given) and takes its
    `sequence_output` (BERT-style dict outputs) or its single output
    (DistilBERT-style).
    """
    names = list(backbone.input) if isinstance(backbone.input, dict) else [
        "token_ids", "padding_mask"]
    feed = {}
    for name in names:
        if name in inputs:
            feed[name] = inputs[name]
        elif name == "segment_ids":
            feed[name] = ops.zeros_like(inputs["token_ids"])
        else:
            raise ValueError(
                f"The text backbone {type(backbone).__name__} needs input "
                f"{name!r}. Received keys: {sorted(inputs)}."
            )
    out = backbone(feed)
    if isinstance(out, dict):
        out = out["sequence_output"]
    return out


def build_text_preprocessor(texts, sequence_length, vocabulary_size=1000,
                            lowercase=True):
    """A BERT preprocessor whose WordPiece vocabulary is computed from
    `texts` (no download).

    Args:
        texts: a list/array of strings (the user's own text).
        sequence_length: int, tokens per example (with [CLS] and [SEP]).
        vocabulary_size: int, maximum vocabulary size.
        lowercase: bool.

    Returns:
        `keras_hub.models.BertTextClassifierPreprocessor`: strings ->
        `{"token_ids", "segment_ids", "padding_mask"}`.

    Example:

    >>> pre = build_text_preprocessor(["is the red object left?"], 8, 40)
    >>> sorted(pre(["is the red object left?"]))
    ['padding_mask', 'segment_ids', 'token_ids']
    """
    import keras_hub

    from keras_simmim.data.text import text_dataset

    vocabulary = keras_hub.tokenizers.compute_word_piece_vocabulary(
        text_dataset(texts),
        vocabulary_size=vocabulary_size,
        reserved_tokens=list(RESERVED_TOKENS), lowercase=lowercase)
    tokenizer = keras_hub.models.BertTokenizer(
        vocabulary=vocabulary, lowercase=lowercase)
    return keras_hub.models.BertTextClassifierPreprocessor(
        tokenizer, sequence_length=sequence_length)


def check_pair_inputs(model, inputs):
    """Checks an image + text input dict of a two-tower `model`: the keys,
    the text length against `model.text_backbone`, equal batch sizes."""
    if not isinstance(inputs, dict) or "images" not in inputs:
        raise ValueError(
            f"{type(model).__name__} takes a dict with keys 'images', "
            "'token_ids' and 'padding_mask'. Received: "
            + (f"keys {sorted(inputs)}." if isinstance(inputs, dict)
               else f"{type(inputs).__name__}.")
        )
    check_text_inputs(model.text_backbone, inputs)
    batch_i = inputs["images"].shape[0]
    batch_t = inputs["token_ids"].shape[0]
    if batch_i is not None and batch_t is not None and batch_i != batch_t:
        raise ValueError(
            "`images` and `token_ids` must have the same batch size. "
            f"Received: {batch_i} images and {batch_t} texts."
        )
