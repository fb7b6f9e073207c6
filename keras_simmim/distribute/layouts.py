"""Layout maps that shard a backbone's weights for `keras.distribution`."""

import keras

# Variable paths of keras-hub's ViT encoder blocks (`ViTBackbone`,
# `DeiTBackbone` use the same layer names) and how each kernel is split:
# attention projections by head, the MLP by its hidden units (Megatron
# style: the first matmul splits its output, the second its input).
VIT_RULES = {
    r".*(query|key|value)/kernel": (None, "{model}", None),
    r".*(query|key|value)/bias": ("{model}", None),
    r".*attention_output/kernel": ("{model}", None, None),
    r".*mlp/dense_1/kernel": (None, "{model}"),
    r".*mlp/dense_1/bias": ("{model}",),
    r".*mlp/dense_2/kernel": ("{model}", None),
}


def transformer_layout_map(device_mesh, model_axis="model"):
    """A `keras.distribution.LayoutMap` that shards ViT transformer blocks.

    Attention query/key/value kernels are split by head and the output
    projection by its input heads; the MLP's first kernel by its hidden
    units and the second by its input. Everything else (patch embedding,
    norms, the SimMIM head) is replicated. Use it with
    `keras.distribution.ModelParallel` (JAX backend); the number of heads
    and the MLP width must be divisible by the mesh's `model_axis` size.

    Args:
        device_mesh: a `keras.distribution.DeviceMesh` with an axis named
            `model_axis`.
        model_axis: str, the mesh axis the weights are split over.

    Returns:
        A `keras.distribution.LayoutMap`.

    Example:

    >>> import keras
    >>> devices = ["cpu:0"]  # on JAX: keras.distribution.list_devices()
    >>> mesh = keras.distribution.DeviceMesh((1, 1), ["batch", "model"],
    ...                                      devices)
    >>> layout_map = transformer_layout_map(mesh)
    >>> layout_map["vit_encoder/transformer_block_1/mha/query/kernel"].axes
    (None, 'model', None)
    >>> distribution = keras.distribution.ModelParallel(
    ...     layout_map=layout_map, batch_dim_name="batch")
    """
    if not isinstance(device_mesh, keras.distribution.DeviceMesh):
        raise TypeError(
            "`device_mesh` must be a keras.distribution.DeviceMesh. "
            f"Received: device_mesh={device_mesh!r}."
        )
    if model_axis not in device_mesh.axis_names:
        raise ValueError(
            f"`model_axis`={model_axis!r} is not an axis of the device mesh "
            f"(axes {list(device_mesh.axis_names)})."
        )
    layout_map = keras.distribution.LayoutMap(device_mesh)
    for pattern, axes in VIT_RULES.items():
        layout_map[pattern] = tuple(
            None if a is None else a.format(model=model_axis) for a in axes
        )
    return layout_map
