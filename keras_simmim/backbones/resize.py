"""Changing a backbone's input resolution (and Swin's window) after training.

SimMIM pretrains Swin at 192 px with window 6 and fine-tunes at 224 px with
window 7; ViTs are often fine-tuned above their pretraining size. The weights
that depend on the resolution are converted as the reference code does:

* ViT / DeiT: the patch position embeddings, as a 2-D grid, are resized
  bicubically; the class (and distillation) token positions are kept
  (Hugging Face's `interpolate_pos_encoding`).
* Swin: each block's relative position bias table, a
  `(2W-1) x (2W-1)` grid per head, is resized bicubically to the new window
  (Swin's official `load_pretrained`); the relative position index and the
  attention masks are rebuilt by the new backbone.
* DINOv2: keras-hub keeps the position table at `position_embedding_shape`
  and resamples it to the image size itself; the table is first made to
  resample to the trained one (`DINOV2Adapter.prepare_to_save`), then
  resampled by keras-hub's own interpolation to the new size.

Every other weight is copied unchanged.
"""

import os

import keras
import keras_hub
import numpy as np

from keras_simmim.backbones.adapter import find_layer
from keras_simmim.backbones.dinov2 import DINOV2Adapter
from keras_simmim.utils.serialization import unreadable_file_named
from keras_simmim.utils.validation import check_positive_int

# torch's bicubic kernel ("cubic convolution", Keys 1981, with a = -0.75).
CUBIC_A = -0.75


def _cubic_weights(n_in, n_out):
    """`(n_out, n_in)` matrix of 1-D bicubic resizing, torch convention."""
    # Half-pixel centres (align_corners=False); not clamped at 0 for cubic.
    x = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    left = np.floor(x)
    t = x - left
    a = CUBIC_A

    def near(d):  # |d| <= 1
        return ((a + 2) * d - (a + 3)) * d * d + 1

    def far(d):  # 1 < |d| < 2
        return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a

    matrix = np.zeros((n_out, n_in))
    rows = np.arange(n_out)
    for k, weight in enumerate((far(t + 1), near(t), near(1 - t), far(2 - t))):
        # Taps past the border read the edge value (edge clamping).
        columns = np.clip(left - 1 + k, 0, n_in - 1).astype(int)
        np.add.at(matrix, (rows, columns), weight)
    return matrix


def bicubic_resize(array, size):
    """Resizes the first two axes of `array` to `size`, bicubically.

    Matches `torch.nn.functional.interpolate(x, size, mode="bicubic",
    align_corners=False)` on a channels-first `x` (the convention of
    Hugging Face's `interpolate_pos_encoding` and of Swin's and SimMIM's
    checkpoint loading): half-pixel sample positions, cubic convolution
    with `a = -0.75`, taps outside the grid clamped to the edge, no
    antialiasing. Done in NumPy, in float64, because weight conversion is not
    model code and `keras.ops.image.resize` uses `a = -0.5` on TensorFlow and
    JAX but `a = -0.75` on torch.

    Args:
        array: array of shape `(rows, cols, ...)`.
        size: `(new_rows, new_cols)`.

    Returns:
        A float64 array of shape `(new_rows, new_cols, ...)`.

    Example:

    Doubling `[0, 1, 2, 3]`: output row 3 samples position 1.25, i.e.
    taps 0..3 with weights `(-0.10546875, 0.87890625, 0.26171875,
    -0.03515625)` (they sum to 1, so constants stay constant; with
    `a = -0.75` a ramp does not stay exactly linear):

    >>> import numpy as np
    >>> ramp = np.arange(4.0)[:, None] * np.ones((1, 4))
    >>> float(bicubic_resize(ramp, (8, 8))[3, 0])
    1.296875
    >>> bool(np.allclose(bicubic_resize(np.full((3, 3), 2.0), (5, 7)), 2.0))
    True
    >>> bool((bicubic_resize(ramp, (4, 4)) == ramp).all())  # same size
    True
    """
    result = np.asarray(array, dtype="float64")
    for axis, n_out in enumerate(size):
        matrix = _cubic_weights(result.shape[axis], int(n_out))
        result = np.tensordot(matrix, result, axes=(1, axis))
        result = np.moveaxis(result, 0, axis)
    return result


def _resize_grid(variable, old_grid, new_grid):
    """`(rows * cols, C)` values on a row-major grid, resized to `new_grid`."""
    values = keras.ops.convert_to_numpy(keras.ops.cast(variable, "float32"))
    values = np.reshape(values, tuple(old_grid) + (-1,))
    resized = bicubic_resize(values, new_grid)
    return np.reshape(resized, (new_grid[0] * new_grid[1], -1))


def _pair(value):
    return (value, value) if isinstance(value, int) else tuple(value)


def _token_positions(embedding_type, prefix_tokens, position):
    """Resizer of a plain ViT family: `position(layer)` is its (.., N, D)
    position embedding, whose first tokens are `prefix_tokens(layer)`."""

    def resized(old, new):
        old_layer = find_layer(old, embedding_type)
        new_layer = find_layer(new, embedding_type)
        variable = position(old_layer)
        shape = tuple(variable.shape)
        prefix = prefix_tokens(old_layer)
        table = keras.ops.reshape(variable, (-1, shape[-1]))
        patch = _pair(old.patch_size)
        grids = [
            (b.image_shape[0] // patch[0], b.image_shape[1] // patch[1])
            for b in (old, new)
        ]
        grid = _resize_grid(table[prefix:], *grids)
        kept = keras.ops.convert_to_numpy(
            keras.ops.cast(table[:prefix], "float32"))
        values = np.concatenate([kept, grid], axis=0)
        new_shape = tuple(position(new_layer).shape)
        return {id(variable): np.reshape(values, new_shape)}

    return resized


def _swin_tables(old, new):
    """Each block's relative position bias table, resized to the new window."""
    resized = {}
    for old_stage, new_stage in zip(old.stages, new.stages):
        for old_block, new_block in zip(old_stage.blocks, new_stage.blocks):
            old_attn, new_attn = old_block.attn, new_block.attn
            grids = [
                (2 * attn.win_h - 1, 2 * attn.win_w - 1)
                for attn in (old_attn, new_attn)
            ]
            table = old_attn.relative_position_bias_table
            resized[id(table)] = _resize_grid(table, *grids)
    return resized


def _dinov2_positions(old, new):
    """DINOv2's table at the new image size, resampled (by keras-hub's own
    interpolation) from a saved table that resamples to the trained one."""
    adapter = DINOV2Adapter(old)
    adapter.prepare_to_save()
    source = tuple(old.embeddings.position_embedding_shape)[:2]
    table = adapter._resample(
        old.embeddings.position_embeddings, source,
        tuple(new.embeddings.image_shape)[:2])
    variable = old.embeddings.interpolated_position_embeddings
    return {id(variable): np.asarray(keras.ops.convert_to_numpy(table))}


# (keras-hub class, resizer of its resolution-dependent weights)
RESIZERS = (
    (
        keras_hub.models.ViTBackbone,
        _token_positions(
            "ViTPatchingAndEmbedding",
            lambda layer: int(layer.use_class_token),
            lambda layer: layer.position_embedding.embeddings,
        ),
    ),
    (
        keras_hub.models.DeiTBackbone,
        _token_positions(
            "DeiTEmbeddings",
            lambda layer: 2,  # class and distillation tokens
            lambda layer: layer.position_embedding,
        ),
    ),
    (keras_hub.models.SwinTransformerBackbone, _swin_tables),
    (keras_hub.models.DINOV2Backbone, _dinov2_positions),
)


def is_resizable(backbone):
    """True when `resize` supports `backbone`'s family."""
    return any(isinstance(backbone, cls) for cls, _ in RESIZERS)


def _check_image_shape(backbone, image_shape, stride, what):
    """The validated `(H, W, C)` tuple."""
    if (
        not isinstance(image_shape, (tuple, list))
        or len(image_shape) != 3
        or any(
            isinstance(side, bool) or not isinstance(side, (int, np.integer))
            or side < 1
            for side in image_shape
        )
    ):
        raise ValueError(
            "`image_shape` must be a tuple of 3 positive ints (height, width, "
            f"channels). Received: image_shape={image_shape!r}."
        )
    image_shape = tuple(int(side) for side in image_shape)
    channels = int(backbone.image_shape[-1])
    if image_shape[-1] != channels:
        raise ValueError(
            "`image_shape` cannot change the number of channels: the "
            f"backbone takes {channels}. Received: image_shape={image_shape}."
        )
    stride_h, stride_w = _pair(stride)
    if image_shape[0] % stride_h or image_shape[1] % stride_w:
        raise ValueError(
            f"`image_shape` sides must be multiples of the {what} "
            f"({stride_h}, {stride_w}) of this {type(backbone).__name__}. "
            f"Received: image_shape={image_shape}."
        )
    return image_shape


def resize(backbone, image_shape, window_size=None):
    """Returns a copy of a keras-hub backbone for a new image size.

    The new backbone is the same keras-hub class, built from
    `backbone.get_config()` with the new `image_shape` (and `window_size`),
    with every weight copied: ViT and DeiT position embeddings are
    interpolated bicubically over the patch grid (class and distillation
    token positions kept), Swin's relative position bias tables are
    interpolated to the new window (see `bicubic_resize` for the exact
    convention). `backbone` itself is not changed.

    Args:
        backbone: a `keras_hub.models.ViTBackbone`, `DeiTBackbone`,
            `DINOV2Backbone` or `SwinTransformerBackbone` (channels-last).
        image_shape: `(height, width, channels)` of the new backbone. The
            channel count must stay; the sides must be multiples of the patch
            size (ViT, DeiT) or of the output stride (Swin: patch size times
            `2 ** (stages - 1)`).
        window_size: Swin only: the new attention window (int). `None` keeps
            the backbone's. It must not exceed the last stage's grid side
            (keras-hub builds every block's attention with this window).

    Returns:
        A new backbone of `backbone`'s class.

    Raises:
        ValueError: for another backbone family (DINOv2 interpolates its
            position embeddings itself: build it with `image_shape`), a
            channels-first backbone, an `image_shape` that is not 3 positive
            ints, changes the channel count or does not divide into patches /
            strides, a `window_size` for a non-Swin backbone, or a window
            larger than a stage's grid.
        TypeError: for a `window_size` that is not an int.

    Example:

    >>> import keras_hub
    >>> vit = keras_hub.models.ViTBackbone(
    ...     image_shape=(32, 32, 3), patch_size=4, num_layers=2, num_heads=2,
    ...     hidden_dim=32, mlp_dim=64)
    >>> larger = resize(vit, (48, 48, 3))
    >>> larger.image_shape, larger.output_shape
    ((48, 48, 3), (None, 145, 32))
    >>> swin = keras_hub.models.SwinTransformerBackbone(
    ...     image_shape=(32, 32, 3), embed_dim=16, depths=(2, 2),
    ...     num_heads=(2, 4), window_size=4)
    >>> resize(swin, (48, 48, 3), window_size=6).window_size
    6
    """
    for cls, resizer in RESIZERS:
        if isinstance(backbone, cls):
            break
    else:
        supported = ", ".join(
            f"keras_hub.models.{cls.__name__}" for cls, _ in RESIZERS)
        raise ValueError(
            f"`resize` supports {supported}. Received a backbone of type "
            f"{type(backbone).__name__}."
        )
    if getattr(backbone, "data_format", None) not in (None, "channels_last"):
        raise ValueError(
            "`resize` supports channels_last backbones only. Received a "
            f"backbone with data_format={backbone.data_format!r}."
        )
    config = backbone.get_config()
    is_swin = isinstance(backbone, keras_hub.models.SwinTransformerBackbone)
    if is_swin:
        stride = backbone.patch_size * 2 ** (len(backbone.depths) - 1)
        image_shape = _check_image_shape(
            backbone, image_shape, stride, "output stride")
        if window_size is None:
            window_size = backbone.window_size
        check_positive_int("window_size", window_size)
        last_grid = min(image_shape[:2]) // stride
        if window_size > last_grid:
            raise ValueError(
                "`window_size` must not exceed the grid side of any Swin "
                f"stage (the last stage's is {last_grid} at image_shape="
                f"{image_shape}). Received: window_size={window_size}."
            )
        config["window_size"] = int(window_size)
    else:
        if window_size is not None:
            raise ValueError(
                "`window_size` applies to Swin backbones only. Received: "
                f"window_size={window_size!r} for a "
                f"{type(backbone).__name__}."
            )
        image_shape = _check_image_shape(
            backbone, image_shape, backbone.patch_size, "patch size")
    config["image_shape"] = image_shape
    new = type(backbone).from_config(config)
    resized = resizer(backbone, new)
    for old_variable, new_variable in zip(backbone.weights, new.weights):
        value = resized.get(id(old_variable))
        if value is None:
            # A copy: on JAX an assigned array would be shared, and deleted
            # with the other model's state when one of them donates it.
            value = np.array(keras.ops.convert_to_numpy(old_variable.value))
        if tuple(value.shape) != tuple(new_variable.shape):
            raise ValueError(  # a keras-hub layout this code does not know
                f"Cannot copy weight {old_variable.path} of shape "
                f"{tuple(value.shape)} into {new_variable.path} of shape "
                f"{tuple(new_variable.shape)}."
            )
        new_variable.assign(value)
    return new


def load_backbone(preset_dir, image_shape=None, window_size=None):
    """Loads the keras-hub backbone of a preset directory at a new size.

    What `keras_hub.models.Backbone.from_preset(preset_dir, image_shape=...)`
    cannot do for ViT, DeiT and Swin (and does for DINOv2 from its saved
    table, which is also what this gives): the backbone is loaded at its saved
    size, then `resize`d. Works on a keras-hub backbone preset and on a
    `SimMIMModel.save_to_preset` directory (which holds one). Nothing is
    downloaded.

    Args:
        preset_dir: path of a local preset directory.
        image_shape: the new `(height, width, channels)`, or `None` to keep
            the saved one.
        window_size: Swin only: the new attention window, or `None`.

    Returns:
        The backbone, with its pretrained weights.

    Raises:
        ValueError: if `preset_dir` is not a local directory or its weights
            cannot be read, and as `resize` does.
    """
    if not isinstance(preset_dir, (str, os.PathLike)) or not os.path.isdir(
        preset_dir
    ):
        raise ValueError(
            "`preset_dir` must be an existing local directory. Received: "
            f"preset_dir={preset_dir!r}."
        )
    preset_dir = os.fspath(preset_dir)
    with unreadable_file_named(os.path.join(preset_dir, "model.weights.h5")):
        backbone = keras_hub.models.Backbone.from_preset(preset_dir)
    if image_shape is None and window_size is None:
        return backbone
    if image_shape is None:
        image_shape = backbone.image_shape
    return resize(backbone, image_shape, window_size=window_size)
