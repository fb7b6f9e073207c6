"""Input handling shared by the masked image models."""

import numpy as np
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

    @property
    def sample_shape(self):
        """The shape of one input: `image_shape`, or `(frames, *image_shape)`
        for a video backbone."""
        return self.adapter.sample_shape

    def _check_images(self, images):
        """Checks `images` against `sample_shape`; returns them with that
        static shape (TensorFlow may trace inputs whose shape or rank is
        unknown, e.g. after `tf.py_function` in a `tf.data` pipeline)."""
        shape = static_shape(images)
        expected = (None,) + tuple(self.sample_shape)
        if shape is not None and (len(shape) != len(expected) or any(
            e is not None and s is not None and s != e
            for s, e in zip(shape[1:], expected[1:])
        )):
            layout = ("(batch, frames, height, width, channels)"
                      if len(expected) == 5
                      else "(batch, height, width, channels)")
            raise ValueError(
                f"`images` must have shape {layout} = {expected} to match "
                f"the backbone. Received shape: {shape}."
            )
        if shape is None or None in shape[1:]:
            images = ops.reshape(images, (-1,) + tuple(self.sample_shape))
        return images

    def fold_frames(self, x):
        """A clip batch `(batch, frames, ...)` as a batch of frames
        `(batch * frames, ...)`; images pass through unchanged. The
        reconstruction head and the pixel loss work frame by frame."""
        if self.adapter.num_frames is None:
            return x
        return ops.reshape(x, (-1,) + tuple(x.shape[2:]))

    def unfold_frames(self, x):
        """The inverse of `fold_frames`."""
        frames = self.adapter.num_frames
        if frames is None:
            return x
        return ops.reshape(x, (-1, frames) + tuple(x.shape[1:]))

    def _standardize_mask(self, mask, batch=None):
        """`mask` as a boolean `(batch, *mask_shape)` on the mask grid
        (`(batch, rows, cols)`; `(batch, frames, rows, cols)` for clips),
        from that shape or its row-major flattening `(batch, size)`, in any
        dtype (1 / True = masked). `batch` (the images' batch size) makes a
        mask whose static shape is unknown fail at run time when its size
        is wrong, instead of being reshaped into another batch."""
        grid = tuple(self.mask_shape)
        size = int(np.prod(grid))
        shape = static_shape(mask)
        fits = shape is None or (
            len(shape) == 2 and shape[1] in (None, size)
        ) or (
            len(shape) == len(grid) + 1
            and all(s in (None, g) for s, g in zip(shape[1:], grid))
        )
        if not fits:
            what = "clips" if len(grid) == 3 else "images"
            raise ValueError(
                f"`mask` must have shape (batch, {size}) or "
                f"(batch, {', '.join(map(str, grid))}) for {what} of size "
                f"{tuple(self.sample_shape[:-1])} and patch size "
                f"{self.patch_size}. Received shape: {shape}."
            )
        if shape is None or len(shape) == 2 or None in shape[1:]:
            mask = ops.reshape(mask, (-1 if batch is None else batch,)
                               + grid)
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
