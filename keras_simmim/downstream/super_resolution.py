"""Super-resolution on a (SimMIM-pretrained) encoder and pixel head.

The task follows the degradation the SimMIM paper's image-restoration
discussion and most super-resolution work use: an image is downsampled by
`scale` (bicubic, antialiased) and upsampled back to its size (bicubic); the
model maps that blurred image to the original. The encoder sees the blurred
image at full size, so any backbone that SimMIM pretrains (ViT, Swin, CNNs)
works unchanged, and its pixel head (the same head SimMIM trains) paints the
detail back.

Design choice: the head predicts the *residual* over the bicubic input and
starts at zero (`residual=True`), so at step 0 the model is exactly bicubic
upsampling and fine-tuning can only move away from it on evidence. SimMIM's
own head predicts whole pixels of masked regions, which is the wrong target
for a residual; the encoder is what carries over from pretraining.

Bicubic resizing is `keras.ops.image.resize(..., antialias=True)`, which
gives the same numbers on TensorFlow, JAX and torch (without `antialias`,
torch's bicubic kernel differs from the other two).
"""

import keras
import numpy as np
from keras import ops

from keras_simmim.backbones import get_adapter
from keras_simmim.downstream.finetuning import FineTunesBackbone
from keras_simmim.layers.reconstruction_head import HEADS
from keras_simmim.layers.reconstruction_head import make_head
from keras_simmim.models.masked_image_model import MaskedImageModel
from keras_simmim.utils.serialization import with_deserialized_backbone
from keras_simmim.utils.validation import check_choice
from keras_simmim.utils.validation import check_positive_int


def _check_scale(scale):
    check_positive_int("scale", scale)
    if scale < 2:
        raise ValueError(
            f"`scale` must be an int >= 2 (the upsampling factor). "
            f"Received: scale={scale}."
        )
    return int(scale)


def _check_batch(images, name):
    shape = tuple(images.shape)
    if len(shape) != 4:
        raise ValueError(
            f"`{name}` must be a batch of images (batch, height, width, "
            f"channels). Received: {name} of shape {shape}."
        )
    return shape


def bicubic_upscale(images, scale):
    """Bicubic upsampling by `scale` (antialiased, the same on every backend).

    Args:
        images: `(batch, h, w, channels)` float images (any value range).
        scale: int >= 2.

    Returns:
        `(batch, h * scale, w * scale, channels)` float32 tensor.

    Raises:
        ValueError: `images` is not 4-D or `scale` < 2.

    Example:

    >>> import numpy as np
    >>> tuple(bicubic_upscale(np.zeros((1, 8, 8, 3)), 4).shape)
    (1, 32, 32, 3)
    """
    scale = _check_scale(scale)
    images = ops.cast(ops.convert_to_tensor(images), "float32")
    _, height, width, _ = _check_batch(images, "images")
    return ops.image.resize(
        images, (height * scale, width * scale), interpolation="bicubic",
        antialias=True)


def degrade(images, scale):
    """The super-resolution input of `images`: bicubic down by `scale`, then
    bicubic up to the original size.

    Args:
        images: `(batch, H, W, channels)` float images; `H` and `W`
            divisible by `scale`.
        scale: int >= 2, the downsampling factor (x2, x4, ...).

    Returns:
        float32 tensor shaped like `images`: what a camera `scale` times
        coarser would have seen, upsampled bicubically.

    Raises:
        ValueError: `images` is not 4-D, `scale` < 2, or `H` / `W` not
            divisible by `scale`.

    Example:

    >>> import numpy as np
    >>> flat = np.full((1, 16, 16, 1), 0.5, "float32")
    >>> float(np.abs(degrade(flat, 2) - flat).max()) < 1e-5  # nothing to lose
    True
    """
    scale = _check_scale(scale)
    images = ops.cast(ops.convert_to_tensor(images), "float32")
    _, height, width, _ = _check_batch(images, "images")
    if height % scale or width % scale:
        raise ValueError(
            f"The images' height and width must be divisible by `scale`. "
            f"Received: images of {height}x{width} and scale={scale}."
        )
    small = ops.image.resize(
        images, (height // scale, width // scale), interpolation="bicubic",
        antialias=True)
    return bicubic_upscale(small, scale)


@keras.saving.register_keras_serializable(package="keras_simmim")
class SuperResolutionModel(FineTunesBackbone):
    """Restores detail to bicubically upsampled images.

    `restored = blurred + head(encoder(blurred))`: the backbone runs through
    its SimMIM adapter on the blurred full-size image and a pixel head of
    SimMIM's kinds (`"linear"`: 1x1 convolution + pixel shuffle) predicts
    the residual over it, zero at initialisation (`residual=True`), so an
    untrained model is exactly bicubic upsampling. Train it on pairs
    `(degrade(images, scale), images)` with `compile_for_super_resolution`
    (L1 loss, AdamW with layer-wise decay); `upscale` takes low-resolution
    images and returns them `scale` times larger.

    Args:
        backbone: the encoder: a backbone (e.g. `simmim_model.backbone`) or
            a `SimMIMModel` / `MAEModel`, whose backbone (shared, not
            copied) and head kind are used.
        scale: int >= 2, the upsampling factor the model is trained for.
        head: pixel head kind, one of `keras_simmim.layers.HEADS` (default
            `"linear"`, SimMIM's; with a SimMIM model: its own kind).
        head_options: dict of the head's own arguments.
        residual: bool. True: predict the residual over the blurred input,
            starting from zero. False: predict the pixels outright.
        image_shape: `(H, W, C)` for backbones that accept any size.

    Input shape:
        `(batch, H, W, C)`: blurred images, normalised like the
        pretraining data (e.g. `keras_simmim.data.normalize`).

    Output shape:
        `(batch, H, W, C)` float32: the restored images, same scale.

    Raises:
        ValueError / TypeError: a bad `scale`, `head`, `head_options`, or
            images whose shape is not the model's.

    Example:

    >>> import keras_hub, numpy as np
    >>> vit = keras_hub.models.ViTBackbone(image_shape=(32, 32, 3),
    ...     patch_size=4, num_layers=1, num_heads=2, hidden_dim=16, mlp_dim=32)
    >>> model = SuperResolutionModel(vit, scale=2)
    >>> images = np.random.default_rng(0).random((4, 32, 32, 3), "float32")
    >>> blurred = degrade(images, 2)
    >>> np.allclose(model.predict(blurred, verbose=0), blurred, atol=1e-6)
    True
    >>> model.compile_for_super_resolution(total_steps=2)
    >>> history = model.fit(blurred, images, epochs=1, verbose=0)
    >>> model.upscale(images[:, ::2, ::2]).shape
    (4, 32, 32, 3)
    """

    def __init__(
        self,
        backbone,
        scale=2,
        head=None,
        head_options=None,
        residual=True,
        image_shape=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(backbone, MaskedImageModel):
            if head is None and getattr(backbone, "head_kind", None) in HEADS:
                head = backbone.head_kind
                head_options = (dict(backbone.head_options)
                                if head_options is None else head_options)
            if image_shape is None:
                image_shape = tuple(backbone.image_shape)
            backbone = backbone.backbone
        head = "linear" if head is None else head
        check_choice("head", head, tuple(sorted(HEADS)))
        if not isinstance(residual, bool):
            raise TypeError(
                f"`residual` must be a bool. Received: residual={residual!r}."
            )
        self.scale = _check_scale(scale)
        self.backbone = backbone
        self.adapter = get_adapter(backbone, image_shape=image_shape)
        self.image_shape = tuple(self.adapter.image_shape)
        self._image_shape_arg = (
            None if image_shape is None else tuple(image_shape))
        height, width, channels = self.image_shape
        if height % self.scale or width % self.scale:
            raise ValueError(
                f"The model's image size must be divisible by `scale`. "
                f"Received: image_shape={self.image_shape}, "
                f"scale={self.scale}."
            )
        self.head_kind = head
        self.head_options = dict(head_options or {})
        self.residual = residual
        self.head = make_head(
            head, self.adapter.stride, channels, self.head_options,
            dtype=self.dtype_policy, name="super_resolution_head",
        )
        self(np.zeros((1,) + self.image_shape, "float32"))
        if residual:
            # Start at bicubic: the head's last layer (every head kind ends
            # in `projection`) outputs zeros.
            last = self.head.projection
            for variable in last.weights:
                variable.assign(ops.zeros(variable.shape, variable.dtype))

    def call(self, images, training=None):
        images = ops.cast(images, self.compute_dtype)
        features = self.adapter.encode(self.adapter.embed(images))
        prediction = ops.cast(self.head(features), "float32")
        if self.residual:
            prediction = prediction + ops.cast(images, "float32")
        return prediction

    def degrade(self, images):
        """`degrade(images, self.scale)`: the model's training input."""
        return degrade(images, self.scale)

    def upscale(self, images, batch_size=32):
        """Upsamples low-resolution images by `scale`.

        Args:
            images: `(batch, H / scale, W / scale, C)` normalised images
                (numpy or tensor), `(H, W, C)` the model's image shape.
            batch_size: int, images per forward pass.

        Returns:
            float32 numpy array `(batch, H, W, C)`.

        Raises:
            ValueError: `images` are not `scale` times smaller than the
                model's image shape.
        """
        check_positive_int("batch_size", batch_size)
        images = np.asarray(ops.convert_to_numpy(images), "float32")
        height, width, channels = self.image_shape
        expected = (height // self.scale, width // self.scale, channels)
        if images.ndim != 4 or tuple(images.shape[1:]) != expected:
            raise ValueError(
                f"`images` must be low-resolution images of shape "
                f"(batch, {', '.join(map(str, expected))}): the model's "
                f"{height}x{width} divided by scale={self.scale}. Received: "
                f"images of shape {images.shape}."
            )
        blurred = ops.convert_to_numpy(bicubic_upscale(images, self.scale))
        restored = self.predict(blurred, batch_size=batch_size, verbose=0)
        return np.asarray(restored, "float32")

    def compile_for_super_resolution(
        self,
        learning_rate=1e-3,
        total_steps=1000,
        warmup_steps=None,
        layer_decay=0.75,
        weight_decay=0.05,
        clipnorm=5.0,
        **kwargs,
    ):
        """Compiles with L1 loss and SimMIM's fine-tuning optimizer.

        AdamW (weight decay kept off biases, norms, position embeddings and
        tokens), warm-up (default a fifth of `total_steps`) then cosine,
        learning rate scaled per backbone layer by `layer_decay ** depth
        from the top` (the head gets the full rate). Inside a multi-replica
        `tf.distribute` scope the replicas' gradients are summed before
        clipping.

        Args:
            learning_rate: peak learning rate.
            total_steps: int, steps of the whole schedule.
            warmup_steps: int or None.
            layer_decay: float in (0, 1]; 1 disables it.
            weight_decay: float.
            clipnorm: global gradient-norm clip, or None.
            **kwargs: other `compile` arguments.
        """
        optimizer = self.finetuning_optimizer(
            learning_rate, total_steps, warmup_steps, layer_decay,
            weight_decay, clipnorm)
        self.compile(optimizer=optimizer, loss="mean_absolute_error", **kwargs)

    def get_config(self):
        config = super().get_config()
        config.update({
            "backbone": keras.saving.serialize_keras_object(self.backbone),
            "scale": self.scale,
            "head": self.head_kind,
            "head_options": self.head_options,
            "residual": self.residual,
            "image_shape": self._image_shape_arg,
        })
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**with_deserialized_backbone(config))


def image_quality(predicted, target):
    """Mean PSNR (dB) and SSIM of images on 8-bit pixels.

    Both are measured the way super-resolution papers report them: on
    pixels in [0, 255] (`predicted` rounded and clipped there first), PSNR
    per image then averaged, SSIM from scikit-image
    (`structural_similarity`, a 7-pixel window or the largest odd one the
    image allows, over all channels).

    Args:
        predicted: `(batch, H, W, C)` normalised images (as
            `keras_simmim.data.normalize` makes; numpy or tensor).
        target: `(batch, H, W, C)` normalised images, the originals.

    Returns:
        `(psnr, ssim)` floats; `ssim` is None without scikit-image.

    Raises:
        ValueError: the two differ in shape or are not batches of images.

    Example:

    >>> import numpy as np
    >>> images = np.random.default_rng(0).random((2, 16, 16, 3), "float32")
    >>> psnr, ssim = image_quality(degrade(images, 2), images)
    >>> bool(10 < psnr < 40), bool(0 < ssim < 1)
    (True, True)
    """
    from keras_simmim.data import denormalize

    predicted = np.asarray(ops.convert_to_numpy(predicted), "float64")
    target = np.asarray(ops.convert_to_numpy(target), "float64")
    if predicted.ndim != 4 or predicted.shape != target.shape:
        raise ValueError(
            "`predicted` and `target` must be batches of images of the same "
            f"shape (batch, H, W, C). Received: {predicted.shape} and "
            f"{target.shape}."
        )
    truth = denormalize(target)
    pixels = np.clip(np.round(denormalize(predicted)), 0, 255)
    error = ((pixels - truth) ** 2).mean(axis=(1, 2, 3))
    psnr = float(np.mean(10 * np.log10(255.0 ** 2 / np.maximum(error, 1e-10))))
    try:
        from skimage.metrics import structural_similarity
    except ImportError:
        return psnr, None
    side = min(truth.shape[1:3])
    window = min(7, side if side % 2 else side - 1)
    ssim = float(np.mean([
        structural_similarity(t, p, data_range=255, channel_axis=-1,
                              win_size=window)
        for t, p in zip(truth, pixels)]))
    return psnr, ssim

