"""Input handling shared by the masked image models."""

from keras import ops

INPUT_KEYS = ("images", "mask")


class MaskedImageInputs:
    """Mixin: unpacks `images` or `{"images", "mask"}` inputs and checks
    them against `self.image_shape`, `self.mask_shape` and
    `self.patch_size`."""

    def _unpack(self, inputs):
        if isinstance(inputs, dict):
            unknown = sorted(set(inputs) - set(INPUT_KEYS))
            if unknown or "images" not in inputs:
                raise ValueError(
                    f"{type(self).__name__} takes an image batch or a dict with key "
                    "'images' and optional key 'mask'. Received keys: "
                    f"{sorted(inputs)}."
                )
            return inputs["images"], inputs.get("mask")
        return inputs, None

    def _check_images(self, images):
        """Checks `images` against `image_shape`; returns them with that
        static shape (TensorFlow may trace inputs whose shape or rank is
        unknown, e.g. after `tf.py_function` in a `tf.data` pipeline)."""
        shape = static_shape(images)
        expected = (None,) + tuple(self.image_shape)
        if shape is not None and (len(shape) != 4 or any(
            e is not None and s is not None and s != e
            for s, e in zip(shape[1:], expected[1:])
        )):
            raise ValueError(
                "`images` must have shape (batch, height, width, channels) = "
                f"{expected} to match the backbone. Received shape: {shape}."
            )
        if shape is None or None in shape[1:]:
            images = ops.reshape(images, (-1,) + tuple(self.image_shape))
        return images

    def _standardize_mask(self, mask, batch=None):
        """`mask` as a boolean `(batch, rows, cols)` on the mask grid, from
        `(batch, rows, cols)` or row-major `(batch, rows * cols)`, in any
        dtype (1 / True = masked). `batch` (the images' batch size) makes a
        mask whose static shape is unknown fail at run time when its size
        is wrong, instead of being reshaped into another batch."""
        rows, cols = self.mask_shape
        shape = static_shape(mask)
        fits = shape is None or (
            len(shape) == 2 and shape[1] in (None, rows * cols)
        ) or (
            len(shape) == 3
            and shape[1] in (None, rows) and shape[2] in (None, cols)
        )
        if not fits:
            raise ValueError(
                f"`mask` must have shape (batch, {rows * cols}) or "
                f"(batch, {rows}, {cols}) for images of size "
                f"{self.image_shape[:2]} and patch size {self.patch_size}. "
                f"Received shape: {shape}."
            )
        if shape is None or len(shape) == 2 or None in shape[1:]:
            mask = ops.reshape(mask, (-1 if batch is None else batch,
                                      rows, cols))
        if mask.dtype == "bool":
            return mask
        return ops.greater(ops.cast(mask, "float32"), 0.5)


def static_shape(x):
    """`x.shape` as a tuple (None for unknown sides), or None when even the
    rank is unknown (a TensorFlow tensor traced without a shape)."""
    try:
        return tuple(x.shape)
    except (TypeError, ValueError):
        return None
