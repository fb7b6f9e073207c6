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
        shape = tuple(images.shape)
        expected = (None,) + tuple(self.image_shape)
        if len(shape) != 4 or any(
            e is not None and s is not None and s != e
            for s, e in zip(shape[1:], expected[1:])
        ):
            raise ValueError(
                "`images` must have shape (batch, height, width, channels) = "
                f"{expected} to match the backbone. Received shape: {shape}."
            )

    def _standardize_mask(self, mask):
        rows, cols = self.mask_shape
        shape = tuple(mask.shape)
        if len(shape) == 2 and shape[1] == rows * cols:
            mask = ops.reshape(mask, (-1, rows, cols))
        elif len(shape) != 3 or tuple(shape[1:]) != (rows, cols):
            raise ValueError(
                f"`mask` must have shape (batch, {rows * cols}) or "
                f"(batch, {rows}, {cols}) for images of size "
                f"{self.image_shape[:2]} and patch size {self.patch_size}. "
                f"Received shape: {shape}."
            )
        if mask.dtype == "bool":
            return mask
        return ops.greater(ops.cast(mask, "float32"), 0.5)
