"""Reconstruction previews: original / masked / reconstruction grids, and
labelled pictures comparing images column by column."""

import os

import keras
import numpy as np

from keras_simmim.data.normalization import channel_statistics
from keras_simmim.data.normalization import denormalize
from keras_simmim.layers.masking import upsample_mask

COLUMNS = ("original", "masked", "reconstruction", "visible + reconstruction")


__all__ = [
    "COLUMNS",
    "clip_strip",
    "comparison_picture",
    "label_columns",
    "masked_pixels",
    "ReconstructionPreview",
    "fixed_mask",
    "reconstruction_grid",
    "save_reconstruction_grid",
]


def grid_to_pixels(mask, factor):
    """`upsample_mask` for numpy masks: `(batch, h, w)` -> bool
    `(batch, h * factor, w * factor)`."""
    mask = np.asarray(mask).astype(bool)
    return np.asarray(keras.ops.convert_to_numpy(upsample_mask(mask, factor)))

def _displayable(pixels):
    """uint8 `(..., C)` -> RGB `(..., 3)`: the first three channels when
    C >= 3, else the first channel as grey (R == G == B)."""
    if pixels.shape[-1] >= 3:
        return pixels[..., :3]
    return np.repeat(pixels[..., :1], 3, axis=-1)


def reconstruction_grid(images, reconstruction, mask, mean=None, std=None):
    """Builds a uint8 picture with one row per image and four columns.

    Columns: the original, the masked input (masked patches grey), the raw
    reconstruction, and the visible pixels with the reconstruction pasted
    into the masked patches.

    Grey images (C = 1) give a grey picture (R == G == B); images with
    three or more channels show their first three as RGB (a 4-band image's
    fourth band is not shown); two channels show the first, grey.

    Args:
        images: `(batch, H, W, C)` normalised images, any channel count C.
        reconstruction: `(batch, H, W, C)` predictions in the same space.
        mask: `(batch, H // p, W // p)`, True where masked.
        mean, std: the normalisation to undo, per channel in the 0-1
            scale; None is `keras_simmim.data.normalize`'s default for C
            channels (ImageNet's for RGB, 0.449 / 0.226 for grey).

    Returns:
        uint8 array `(batch * (H + 2), 4 * (W + 2), 3)`.

    Raises:
        ValueError: mismatched shapes, or `mean` / `std` that do not match
            C.

    Example:

    >>> import numpy as np
    >>> grey = np.zeros((2, 8, 8, 1), "float32")
    >>> grid = reconstruction_grid(grey, grey, np.zeros((2, 2, 2), bool))
    >>> grid.shape, bool(np.all(grid[..., 0] == grid[..., 2]))
    ((20, 40, 3), True)
    """
    images = np.asarray(keras.ops.convert_to_numpy(images), "float32")
    reconstruction = np.asarray(
        keras.ops.convert_to_numpy(reconstruction), "float32"
    )
    mask = np.asarray(keras.ops.convert_to_numpy(mask)).astype(bool)
    if images.shape != reconstruction.shape or images.ndim != 4:
        raise ValueError(
            "`images` and `reconstruction` must have the same shape "
            f"(batch, H, W, C). Received: {images.shape} and "
            f"{reconstruction.shape}."
        )
    pixel_mask = grid_to_pixels(mask, images.shape[1] // mask.shape[1])
    pixel_mask = pixel_mask[..., None]
    original = denormalize(images, mean, std)
    predicted = denormalize(reconstruction, mean, std)
    masked = np.where(pixel_mask, np.uint8(127), original)
    pasted = np.where(pixel_mask, predicted, original)
    panels = [_displayable(p) for p in (original, masked, predicted, pasted)]
    panels = [np.pad(p, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=255)
              for p in panels]
    rows = [np.concatenate([p[i] for p in panels], axis=1)
            for i in range(images.shape[0])]
    return np.concatenate(rows, axis=0)


def clip_strip(clip, reconstruction, mask, mean=None, std=None):
    """A clip's frames side by side in three rows: the original, the masked
    input (masked patches grey) and the visible pixels with the
    reconstruction pasted into the masked patches.

    Args:
        clip: `(frames, H, W, C)` normalised frames.
        reconstruction: `(frames, H, W, C)` predictions in the same space.
        mask: `(frames, H // p, W // p)`, True where masked (a video
            `SimMIMModel`'s `outputs["mask"][i]`).
        mean, std: the normalisation to undo, as in `reconstruction_grid`.

    Returns:
        uint8 array `(3 * (H + 2), frames * (W + 2), 3)`.

    Raises:
        ValueError: mismatched shapes.

    Example:

    >>> import numpy as np
    >>> clip = np.zeros((4, 8, 8, 1), "float32")
    >>> clip_strip(clip, clip, np.zeros((4, 2, 2), bool)).shape
    (30, 40, 3)
    """
    grid = reconstruction_grid(clip, reconstruction, mask, mean, std)
    frames = np.asarray(clip).shape[0]
    height, width = grid.shape[0] // frames, grid.shape[1] // 4
    panels = grid.reshape(frames, height, 4, width, 3)
    rows = [np.concatenate(list(panels[:, :, column]), axis=1)
            for column in (0, 1, 3)]
    return np.concatenate(rows, axis=0)


def label_columns(picture, labels=COLUMNS):
    """A copy of a PIL `picture` whose columns (equal widths, one per label)
    get a white header strip with their label, word-wrapped; `picture`
    itself when a word is wider than a column (e.g. an unscaled 32 px
    grid)."""
    from PIL import Image
    from PIL import ImageDraw
    from PIL import ImageFont

    font = ImageFont.load_default()
    width = picture.width // len(labels)
    measure = ImageDraw.Draw(picture)
    wrapped = []
    for label in labels:
        lines = [""]
        for word in label.split():
            if measure.textlength(word, font=font) > width - 4:
                return picture
            joined = f"{lines[-1]} {word}".strip()
            if measure.textlength(joined, font=font) <= width - 4:
                lines[-1] = joined
            else:
                lines.append(word)
        wrapped.append(lines)
    line_height = font.getbbox("Ag")[3] + 3
    height = max(len(lines) for lines in wrapped) * line_height + 4
    out = Image.new("RGB", (picture.width, picture.height + height), "white")
    out.paste(picture.convert("RGB"), (0, height))
    draw = ImageDraw.Draw(out)
    for column, lines in enumerate(wrapped):
        for row, line in enumerate(lines):
            x = column * width + (width - draw.textlength(line, font=font)) / 2
            draw.text((x, 2 + row * line_height), line, fill="black",
                      font=font)
    return out


def masked_pixels(pixels, pixel_mask, fill=127):
    """uint8 `pixels` `(n, H, W, C)` with the pixels where `pixel_mask`
    `(n, H, W)` is True set to `fill` (grey): what a model is shown."""
    pixels = np.asarray(pixels)
    return np.where(np.asarray(pixel_mask, bool)[..., None],
                    np.asarray(fill, pixels.dtype), pixels)


def comparison_picture(columns, scale=None, labels=True):
    """A PIL picture with one row per image and one labelled column per
    entry of `columns`, e.g. original / masked / each method's fill.

    Args:
        columns: dict (or sequence of pairs) label -> uint8 pixels
            `(n, H, W, C)`, the same shape for every column. Grey images
            (C = 1) show grey, 3 or more channels their first three.
        scale: int, nearest-neighbour upscaling; None picks one that makes
            each column at least 128 px wide (room for its label).
        labels: bool, a header naming the columns (`label_columns`).

    Returns:
        A PIL RGB image.

    Raises:
        ValueError: no columns, columns of different shapes, or a label
            given twice.

    Example:

    >>> import numpy as np
    >>> pixels = np.zeros((2, 16, 16, 3), "uint8")
    >>> picture = comparison_picture({"original": pixels,
    ...                               "masked": pixels + 127})
    >>> picture.width, picture.height > 2 * 18 * 8
    (288, True)
    """
    from PIL import Image

    columns = list(columns.items() if hasattr(columns, "items")
                   else columns)
    if not columns:
        raise ValueError("`columns` is empty.")
    names = [name for name, _ in columns]
    if len(set(names)) != len(names):
        raise ValueError(f"`columns` repeats a label: {names}.")
    panels = [np.asarray(pixels) for _, pixels in columns]
    shapes = {p.shape for p in panels}
    if len(shapes) != 1 or panels[0].ndim != 4:
        raise ValueError(
            "Every column must hold uint8 pixels of one shape (n, H, W, C). "
            f"Received shapes: {[p.shape for p in panels]}."
        )
    panels = [np.pad(_displayable(p.astype("uint8")),
                     ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=255)
              for p in panels]
    rows = [np.concatenate([p[i] for p in panels], axis=1)
            for i in range(len(panels[0]))]
    grid = np.concatenate(rows, axis=0)
    if scale is None:
        scale = max(1, -(-128 // panels[0].shape[2]))
    picture = Image.fromarray(grid)
    if scale != 1:
        picture = picture.resize(
            (grid.shape[1] * scale, grid.shape[0] * scale), Image.NEAREST)
    return label_columns(picture, names) if labels else picture


def save_reconstruction_grid(
    path, model, images, mask=None, mean=None, std=None, scale=4,
    labels=True,
):
    """Runs `model` on `images` and writes the grid as a PNG at `path`.

    The picture is `reconstruction_grid`'s: grey for 1-channel images, the
    first three channels for 4-channel ones.

    Args:
        path: output file (`.png`); its folder is created if needed.
        model: a `keras_simmim.SimMIMModel`.
        images: normalised images `(batch, H, W, C)`.
        mask: optional mask `(batch, *model.mask_shape)`; drawn by the
            model when None.
        mean, std: the normalisation of `images` (None: `normalize`'s
            default for C channels).
        scale: int, nearest-neighbour upscaling of the picture.
        labels: bool, a header naming the four columns (original, masked,
            reconstruction, visible + reconstruction); left out when the
            columns are too narrow for the words (`scale=1` at 32 px).

    Returns:
        The path written.

    Raises:
        ValueError: `images` do not match the model, or `mean` / `std` do
            not match C.
    """
    from PIL import Image

    images = np.asarray(keras.ops.convert_to_numpy(images), "float32")
    if mask is None:
        outputs = model.predict(images, verbose=0)
    else:
        # A direct call, not `predict`: Keras's data adapters may draw from
        # the backend's global RNG (torch), which would change the shuffling
        # of a `fit()` this preview runs inside.
        outputs = model(
            {"images": images, "mask": np.asarray(mask, "float32")},
            training=False,
        )
    pixels = model.reconstruction_to_images(images, outputs["reconstruction"])
    grid = reconstruction_grid(images, pixels, outputs["mask"], mean, std)
    picture = Image.fromarray(grid)
    if scale != 1:
        picture = picture.resize(
            (grid.shape[1] * scale, grid.shape[0] * scale), Image.NEAREST
        )
    if labels:
        picture = label_columns(picture)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    picture.save(path)
    return path


def fixed_mask(model, num_images, seed=0):
    """A reproducible SimMIM mask `(num_images, *model.mask_shape)` drawn
    with numpy (the same on every backend), so previews never advance the
    model's own mask stream. Uniformly random blocks; for a video model,
    its space-time blocks, or one spatial mask for every frame with
    `mask_strategy="tube"`."""
    masking = model.masking
    side = masking.mask_patch_size
    rows, cols = model.image_shape[0] // side, model.image_shape[1] // side
    frames = model.adapter.num_frames
    depth = 1
    if frames is not None and masking.strategy != "tube":
        depth = frames // masking.temporal_mask_patch_size
    size = depth * rows * cols
    count = int(np.ceil(size * model.mask_ratio))
    rng = np.random.default_rng(seed)
    blocks = np.zeros((num_images, size), bool)
    for row in blocks:
        row[rng.choice(size, count, replace=False)] = True
    blocks = blocks.reshape(num_images, depth, rows, cols)
    if frames is None:
        blocks = blocks[:, 0]
    else:
        blocks = blocks.repeat(frames // depth, axis=1)
    return grid_to_pixels(blocks, side // model.patch_size)


class ReconstructionPreview(keras.callbacks.Callback):
    """Writes original / masked / reconstruction grids during `fit()`.

    Every `every` epochs it runs the model on the same images with the same
    mask (drawn once with numpy, so the model's random mask stream and
    training are untouched) and saves `epoch-NNNN.png` in `directory`: a
    picture of how reconstructions sharpen as training goes.

    Args:
        images: normalised images `(n, H, W, C)`, e.g. 8 held-out ones.
        directory: output folder (created if needed).
        every: int, write every this many epochs (and after the last).
        seed: int, seed of the fixed mask.
        mean, std: the normalisation of `images` (None: `normalize`'s
            default for their channel count).
        scale: int, nearest-neighbour upscaling of the picture.

    Grids of grey images are grey; 4-channel images show their first three
    channels (see `reconstruction_grid`).

    Raises:
        ValueError: `images` is not a batch, `every` < 1, or `mean` / `std`
            do not match the images' channel count.

    Example:

    >>> import keras_hub, numpy as np, tempfile, os
    >>> import keras_simmim
    >>> vit = keras_hub.models.ViTBackbone(image_shape=(32, 32, 3),
    ...     patch_size=4, num_layers=2, num_heads=2, hidden_dim=32,
    ...     mlp_dim=64)
    >>> model = keras_simmim.SimMIMModel(vit, mask_patch_size=8)
    >>> images = np.random.default_rng(0).normal(size=(4, 32, 32, 3))
    >>> folder = tempfile.mkdtemp()
    >>> _ = model.fit(images, epochs=2, verbose=0,
    ...     callbacks=[ReconstructionPreview(images[:2], folder)])
    >>> sorted(os.listdir(folder))
    ['epoch-0001.png', 'epoch-0002.png']
    """

    def __init__(self, images, directory, every=1, seed=0,
                 mean=None, std=None, scale=4):
        super().__init__()
        self.images = np.asarray(keras.ops.convert_to_numpy(images), "float32")
        if self.images.ndim != 4:
            raise ValueError(
                "`images` must be a batch (n, H, W, C). Received shape "
                f"{self.images.shape}."
            )
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"`every` must be an int >= 1. Received: {every!r}.")
        channel_statistics(mean, std, self.images.shape[-1])  # fail early
        self.directory = os.fspath(directory)
        self.every = every
        self.seed = seed
        self.mean, self.std, self.scale = mean, std, scale
        self._mask = None
        self.written = []

    def on_epoch_end(self, epoch, logs=None):
        last = self.params.get("epochs") if self.params else None
        if (epoch + 1) % self.every and epoch + 1 != last:
            return
        if self._mask is None:
            self._mask = fixed_mask(self.model, len(self.images), self.seed)
        path = os.path.join(self.directory, f"epoch-{epoch + 1:04d}.png")
        save_reconstruction_grid(
            path, self.model, self.images, mask=self._mask, mean=self.mean,
            std=self.std, scale=self.scale,
        )
        self.written.append(path)
