"""`SimMIMModel`: SimMIM pretraining as a `keras.Model`."""

import keras
import numpy as np
from keras import ops

from keras_simmim.layers.mask_strategies import ALL_STRATEGIES
from keras_simmim.layers.reconstruction_head import HEADS
from keras_simmim.layers.reconstruction_head import make_head
from keras_simmim.models.masked_image_model import MaskedImageModel
from keras_simmim.models.simmim_loss import LOSSES
from keras_simmim.models.simmim_loss import REGIONS
from keras_simmim.models.simmim_loss import check_color_bins
from keras_simmim.models.simmim_loss import color_classification_loss
from keras_simmim.models.simmim_loss import decode_color_logits
from keras_simmim.models.simmim_loss import local_normalized_target
from keras_simmim.models.simmim_loss import local_statistics
from keras_simmim.models.simmim_loss import masked_reconstruction_loss
from keras_simmim.utils.validation import check_choice
from keras_simmim.utils.validation import check_positive_int


@keras.saving.register_keras_serializable(package="keras_simmim")
class SimMIMModel(MaskedImageModel):
    """SimMIM masked image modeling around an existing backbone.

    One training step: draw a random block mask (`RandomPatchMasking`), embed
    the images with the backbone's first stage, replace masked embeddings with
    a learned `MaskToken`, run the rest of the backbone, predict the pixels
    with a `ReconstructionHead` (1x1 conv + pixel shuffle), and score the
    prediction on the masked pixels only (L1 in the paper, or MSE). Training
    goes through Keras's own `fit()`/`evaluate()` on every backend: the
    shared contract (`MaskedImageModel`) overrides `compute_loss` and
    `compile`, not the training step.

    The backbone is not copied or rewritten: an adapter calls its own layers,
    so after pretraining `model.backbone` is the object you passed in, with
    trained weights, ready for its keras-hub task.

    Args:
        backbone: a keras-hub `ViTBackbone`, `DeiTBackbone`,
            `DINOV2Backbone`, `SwinTransformerBackbone`, `ResNetBackbone`
            or (for clips) a video-only `VideoPrismBackbone`,
            a functional CNN such as `keras.applications.ResNet50`, or any
            backbone with a registered adapter (see
            `keras_simmim.backbones.BackboneAdapter`). The adapter is picked
            by the backbone's type.
        mask_patch_size: int. Side of a masked block in pixels (32 in the
            paper); a multiple of the backbone's patch size that divides the
            image height and width. For clips also `(t, p, p)`: blocks `t`
            frames long (an int is one frame long).
        mask_ratio: float in (0, 1). Fraction of blocks masked per image.
        mask_strategy: where the masked blocks go: `"random"` (SimMIM),
            `"patch"`, `"grid"`, `"central"`, `"blockwise"` (BEiT),
            `"time"` / `"frequency"` (spectrogram bands); for clips
            `"random"` (space-time blocks, `mask_patch_size=(t, p, p)`) or
            `"tube"` (VideoMAE); see `RandomPatchMasking`.
        loss: `"l1"` (the paper), `"mse"`, `"smooth_l1"` or
            `"color_classification"` (each pixel channel's value quantised
            into `num_color_bins` bins over `color_range`, cross-entropy; the
            reconstruction is the expected bin centre).
        loss_region: `"masked"` (the paper: masked pixels only) or `"all"`
            (every pixel, the paper's ablation).
        norm_target: bool. Regress the locally normalised image (mean and
            variance over `norm_target_window` pixels) instead of the image.
        norm_target_window: odd int, the window of `norm_target` (47).
        seed: int or None, seed of the mask stream.
        image_shape: `(H, W, C)` or None. Needed for a backbone that takes
            any image size (a CNN built with `image_shape=(None, None, 3)`);
            otherwise taken from the backbone, and must agree with it.
        model_patch_size: int or None. The mask grid cell (the model patch).
            None takes it from the backbone: its patch size for ViT, DeiT,
            DINOv2 and Swin (where it cannot change), the output stride for
            CNNs (where any size dividing the image may be given).
        encoder_stride: int or None. Output stride of the backbone's feature
            map, which the head upsamples by. None takes it from the
            backbone (patch size for ViT/DeiT/DINOv2, `4 * 2**(stages-1)`
            for Swin, measured for CNNs); a different value is an error.
        head: the pixel decoder: `"linear"` (SimMIM's 1x1 conv + pixel
            shuffle), `"mlp"` (two 1x1 convs with GELU) or `"transformer"`
            (a few transformer blocks first); see
            `keras_simmim.layers.reconstruction_head`.
        head_options: dict or None, the head's own arguments, e.g.
            `{"num_layers": 4}` for `"transformer"` or `{"hidden_dim": 256}`.
        num_color_bins: int >= 2, bins per channel for
            `loss="color_classification"` (8).
        color_range: `(low, high)`, the value range those bins cover (the
            target's units: normalised pixels, or the locally normalised
            target with `norm_target=True`); values outside go to the end
            bins.
        check_inputs: bool. Count NaN/inf values in each training batch
            (the `nonfinite_inputs` metric) and stop `fit` with a
            `ValueError` naming the first batch that has any.
        **kwargs: standard `keras.Model` arguments (`name`, `dtype`).

    Inputs:
        images `(batch, H, W, C)`, already normalised, or a dict
        `{"images": ..., "mask": ...}` with a given mask, 1 (True) = masked,
        of shape `(batch, num_patches)` (row-major, as Hugging Face's
        `bool_masked_pos`) or `(batch, H // p, W // p)`; `p` is the backbone
        patch size. Labels, if any, are ignored.

    Outputs:
        `{"reconstruction": (batch, H, W, C), "mask": (batch, H // p, W // p)}`
        with a boolean mask. A video backbone takes clips `(batch, frames,
        H, W, C)` (masks `(batch, frames, H // p, W // p)` or flattened)
        and returns `(batch, frames, ...)` for both.

    Example:

    >>> import keras, keras_hub, numpy as np
    >>> backbone = keras_hub.models.ViTBackbone(
    ...     image_shape=(32, 32, 3), patch_size=4, num_layers=2, num_heads=2,
    ...     hidden_dim=32, mlp_dim=64)
    >>> model = SimMIMModel(backbone, mask_patch_size=8, mask_ratio=0.6)
    >>> images = np.random.rand(8, 32, 32, 3).astype("float32")
    >>> history = model.fit(images, batch_size=4, epochs=1, verbose=0)
    >>> outputs = model.predict(images, verbose=0)
    >>> outputs["reconstruction"].shape, outputs["mask"].shape
    ((8, 32, 32, 3), (8, 8, 8))
    """

    LOSSES = LOSSES
    HEADS = tuple(sorted(HEADS))
    MASK_STRATEGIES = ALL_STRATEGIES

    def __init__(
        self,
        backbone,
        mask_patch_size=32,
        mask_ratio=0.6,
        loss="l1",
        norm_target=False,
        norm_target_window=47,
        seed=None,
        image_shape=None,
        model_patch_size=None,
        encoder_stride=None,
        check_inputs=False,
        mask_strategy="random",
        loss_region="masked",
        head="linear",
        head_options=None,
        num_color_bins=8,
        color_range=(-2.5, 2.5),
        **kwargs,
    ):
        super().__init__(check_inputs=check_inputs, **kwargs)
        check_choice("loss", loss, LOSSES)
        check_choice("mask_strategy", mask_strategy, ALL_STRATEGIES)
        check_choice("loss_region", loss_region, REGIONS)
        if not isinstance(norm_target, bool):
            raise TypeError(
                "`norm_target` must be a bool. Received: "
                f"norm_target={norm_target!r}."
            )
        check_positive_int("norm_target_window", norm_target_window)
        num_color_bins, color_range = check_color_bins(
            num_color_bins, color_range)
        if norm_target_window % 2 != 1:
            raise ValueError(
                "`norm_target_window` must be odd. Received: "
                f"norm_target_window={norm_target_window}."
            )
        self._init_backbone(
            backbone, image_shape=image_shape,
            model_patch_size=model_patch_size, encoder_stride=encoder_stride,
            mask_patch_size=mask_patch_size,
        )
        self._overrides = {
            "image_shape": None if image_shape is None else tuple(image_shape),
            "model_patch_size": model_patch_size,
            "encoder_stride": encoder_stride,
        }
        self.loss_type = loss
        self.loss_region = loss_region
        self.norm_target = norm_target
        self.norm_target_window = norm_target_window
        self.num_color_bins = num_color_bins
        self.color_range = color_range
        self.head_kind = head
        self.head_options = dict(head_options or {})
        self._init_masking(mask_patch_size, mask_ratio, seed, mask_strategy)
        channels = self.image_shape[-1]
        self.head = make_head(
            head,
            self.adapter.stride,
            channels * (num_color_bins if self.classifies_colors else 1),
            self.head_options,
            dtype=self.dtype_policy,
            name="reconstruction_head",
        )
        self._finish_init(
            {"images": self.example_images(), "mask": self.example_mask()})

    # ------------------------------------------------------------------ #
    # Forward and loss
    # ------------------------------------------------------------------ #
    def call(self, inputs, training=None):
        images, mask = self._unpack(inputs)
        images = ops.cast(self._check_images(images), self.compute_dtype)
        mask = self.draw_mask(images, mask)
        # Clips: the head decodes frame by frame.
        prediction = self.unfold_frames(
            self.head(self.fold_frames(self.masked_encode(images, mask))))
        if not self.classifies_colors:
            return {"reconstruction": prediction, "mask": mask}
        return {
            "reconstruction": decode_color_logits(
                prediction, self.num_color_bins, self.color_range),
            "color_logits": prediction,
            "mask": mask,
        }

    @property
    def classifies_colors(self):
        """True for `loss="color_classification"`."""
        return self.loss_type == "color_classification"

    def reconstruction_target(self, images):
        """The pixels the head learns to predict (float32)."""
        if self.norm_target:
            return self.unfold_frames(local_normalized_target(
                self.fold_frames(images), self.norm_target_window))
        return ops.cast(images, "float32")

    def reconstruction_to_images(self, images, reconstruction):
        """Maps the head's output back to the images' pixel space.

        Identity unless `norm_target=True`, where the prediction is
        un-normalised with the local statistics of `images`.
        """
        if not self.norm_target:
            return ops.cast(reconstruction, "float32")
        mean, std = local_statistics(
            self.fold_frames(images), self.norm_target_window)
        mean, std = self.unfold_frames(mean), self.unfold_frames(std)
        return ops.cast(reconstruction, "float32") * std + mean

    def inpaint(self, images, mask=None, batch_size=32):
        """Fills the masked regions of `images` with the reconstruction.

        Visible pixels are returned unchanged, bit for bit; masked pixels
        get the model's prediction (un-normalised when `norm_target=True`).

        Args:
            images: normalised images `(batch, H, W, C)` (numpy or tensor).
            mask: `(batch, h, w)` or `(batch, h * w)` on the mask grid
                (`model.mask_shape`), True / 1 where to fill; None draws
                SimMIM's random mask.
            batch_size: int, images per forward pass.

        Returns:
            float32 numpy array shaped like `images`.

        Example:

        >>> import keras_hub, numpy as np
        >>> vit = keras_hub.models.ViTBackbone(image_shape=(32, 32, 3),
        ...     patch_size=4, num_layers=2, num_heads=2, hidden_dim=32,
        ...     mlp_dim=64)
        >>> model = SimMIMModel(vit, mask_patch_size=8)
        >>> images = np.random.default_rng(0).normal(size=(2, 32, 32, 3))
        >>> model.mask_shape  # the model-patch grid
        (8, 8)
        >>> mask = np.zeros((2, 8, 8), bool); mask[:, :4] = True  # top half
        >>> filled = model.inpaint(images, mask)
        >>> bool(np.all(filled[:, 16:] == images[:, 16:].astype("float32")))
        True
        """
        images = np.asarray(ops.convert_to_numpy(images), "float32")
        self._check_images(images)
        if mask is not None:
            mask = np.asarray(ops.convert_to_numpy(mask), "float32")
            self._standardize_mask(mask)  # names a wrong shape, eagerly
        inputs = images if mask is None else {"images": images, "mask": mask}
        outputs = self.predict(inputs, batch_size=batch_size, verbose=0)
        pixels = self.reconstruction_to_images(
            images, outputs["reconstruction"]
        )
        pixel_mask = self.pixel_mask(ops.convert_to_tensor(outputs["mask"]))
        filled = ops.where(pixel_mask[..., None], pixels, images)
        return np.asarray(ops.convert_to_numpy(filled), "float32")

    def masked_loss(self, x, y_pred):
        images = self.input_images(x)
        target = self.reconstruction_target(images)
        # Both losses sum over the whole batch, so clips are scored as the
        # batch of their frames.
        fold = self.fold_frames
        if self.classifies_colors:
            return color_classification_loss(
                fold(target), fold(y_pred["color_logits"]),
                fold(y_pred["mask"]), self.num_color_bins, self.color_range,
                region=self.loss_region,
            )
        return masked_reconstruction_loss(
            fold(target), fold(y_pred["reconstruction"]),
            fold(y_pred["mask"]), loss=self.loss_type,
            region=self.loss_region,
        )

    # ------------------------------------------------------------------ #
    # Serialization and presets
    # ------------------------------------------------------------------ #
    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "mask_patch_size": self.mask_patch_size,
                "mask_ratio": self.mask_ratio,
                "loss": self.loss_type,
                "norm_target": self.norm_target,
                "norm_target_window": self.norm_target_window,
                "seed": self.seed,
                **self._overrides,
                "mask_strategy": self.masking.strategy,
                "loss_region": self.loss_region,
                "head": self.head_kind,
                "head_options": self.head_options,
                "num_color_bins": self.num_color_bins,
                "color_range": list(self.color_range),
            }
        )
        return config

    @classmethod
    def from_preset(cls, preset, **kwargs):
        """Loads a model from a local preset directory.

        Accepts a directory written by `save_to_preset`; a keras-hub
        backbone preset (a fresh SimMIM head is built around it); or one
        written by Hugging Face transformers' `save_pretrained` for
        `ViTForMaskedImageModeling`, `DeiTForMaskedImageModeling` or
        `SwinForMaskedImageModeling` (the layout of the released SimMIM Swin
        checkpoints): the backbone goes through keras-hub's converter, the
        mask token and decoder are converted here.

        Args:
            preset: path of the directory.
            **kwargs: constructor arguments to override (`mask_patch_size`,
                `mask_ratio`, `loss`, ...).
        """
        from keras_simmim.presets import load_preset

        return load_preset(cls, preset, **kwargs)

    def save_to_preset(self, preset_dir, overwrite=False):
        """Writes the model to a directory that `from_preset` loads.

        For a keras-hub backbone the directory also holds a keras-hub preset
        of the backbone alone (`config.json`, `model.weights.h5`), so
        `keras_hub.models.Backbone.from_preset(preset_dir)` loads the
        pretrained backbone. An existing, non-empty directory is refused
        unless `overwrite=True`.
        """
        from keras_simmim.presets import save_preset

        save_preset(self, preset_dir, overwrite=overwrite)
