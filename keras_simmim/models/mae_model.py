"""`MAEModel`: masked autoencoding (MAE) around a ViT-type backbone, the
nearest alternative to SimMIM, trained the same way for comparison."""

import keras
from keras import ops

from keras_simmim.distribute.replicas import sum_over_replicas
from keras_simmim.layers.transformer_block import TransformerBlock
from keras_simmim.models.masked_image_model import MaskedImageModel
from keras_simmim.utils.validation import check_positive_int


def patchify(images, patch_size):
    """`(batch, H, W, C)` -> `(batch, H/p * W/p, p * p * C)`, patches in
    row-major order, each flattened as (row, column, channel)."""
    _, height, width, channels = images.shape
    rows, cols, p = height // patch_size, width // patch_size, patch_size
    x = ops.reshape(images, (-1, rows, p, cols, p, channels))
    x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
    return ops.reshape(x, (-1, rows * cols, p * p * channels))


def unpatchify(patches, patch_size, image_shape):
    """Inverse of `patchify` for images of `image_shape = (H, W, C)`."""
    height, width, channels = image_shape
    rows, cols, p = height // patch_size, width // patch_size, patch_size
    x = ops.reshape(patches, (-1, rows, cols, p, p, channels))
    x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
    return ops.reshape(x, (-1, height, width, channels))


def patch_statistics(patches):
    """Mean and `sqrt(var + 1e-6)` of each patch (MAE's `norm_pix_loss`)."""
    mean = ops.mean(patches, axis=-1, keepdims=True)
    var = ops.var(patches, axis=-1, keepdims=True)
    return mean, ops.sqrt(var + 1e-6)


def _gather_tokens(tokens, index):
    """`tokens[b, index[b, i], :]` for every batch row."""
    index = ops.expand_dims(ops.cast(index, "int32"), -1)
    index = ops.broadcast_to(
        index, tuple(ops.shape(index)[:2]) + (tokens.shape[-1],))
    return ops.take_along_axis(tokens, index, axis=1)


@keras.saving.register_keras_serializable(package="keras_simmim")
class MAEDecoder(keras.layers.Layer):
    """MAE's light decoder: re-inserts mask tokens where patches were
    dropped, adds learned position embeddings, runs transformer blocks and
    predicts each patch's pixels.

    Args:
        num_patches: int, patch tokens of the full image.
        num_prefix: int, leading non-patch tokens (class token) the encoder
            keeps; dropped before the prediction.
        patch_pixels: int, `p * p * C` values predicted per patch.
        dim: int, decoder width.
        depth: int, transformer blocks.
        num_heads: int, attention heads.
        mlp_dim: int or None, MLP width (None: 4x `dim`).
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        encoded: `(batch, num_prefix + visible, encoder_dim)`, the encoder's
            output for the prefix and the visible tokens in `order`.
        restore: `(batch, num_patches)` int, the position of each row-major
            patch in `[visible..., masked...]` order.

    Example:

    >>> import numpy as np
    >>> decoder = MAEDecoder(num_patches=4, num_prefix=1, patch_pixels=12,
    ...                      dim=16, depth=1, num_heads=2)
    >>> encoded = np.zeros((2, 1 + 1, 8), "float32")  # 1 visible patch
    >>> restore = np.array([[1, 0, 2, 3], [1, 2, 3, 0]])
    >>> tuple(decoder(encoded, restore).shape)
    (2, 4, 12)
    """

    def __init__(self, num_patches, num_prefix, patch_pixels, dim=128,
                 depth=2, num_heads=4, mlp_dim=None, **kwargs):
        super().__init__(**kwargs)
        for name, value in (("num_patches", num_patches), ("dim", dim),
                            ("depth", depth), ("num_heads", num_heads),
                            ("patch_pixels", patch_pixels)):
            check_positive_int(name, value)
        if dim % num_heads:
            raise ValueError(
                f"`decoder_num_heads` ({num_heads}) must divide "
                f"`decoder_dim` ({dim})."
            )
        self.num_patches = int(num_patches)
        self.num_prefix = int(num_prefix)
        self.patch_pixels = int(patch_pixels)
        self.dim = int(dim)
        self.depth = int(depth)
        self.num_heads = int(num_heads)
        self.mlp_dim = mlp_dim
        policy = self.dtype_policy
        self.embed = keras.layers.Dense(self.dim, dtype=policy, name="embed")
        self.blocks = [
            TransformerBlock(self.num_heads, mlp_dim, dtype=policy,
                             name=f"block_{i}")
            for i in range(self.depth)
        ]
        self.norm = keras.layers.LayerNormalization(
            epsilon=1e-6, dtype=policy, name="norm")
        self.predict_pixels = keras.layers.Dense(
            self.patch_pixels, dtype=policy, name="predict_pixels")

    def build(self, encoded_shape, restore_shape=None):
        self.embed.build(encoded_shape)
        self.mask_token = self.add_weight(
            shape=(1, 1, self.dim), initializer=keras.initializers.RandomNormal(
                stddev=0.02), name="mask_token")
        self.position_embedding = self.add_weight(
            shape=(1, self.num_prefix + self.num_patches, self.dim),
            initializer=keras.initializers.RandomNormal(stddev=0.02),
            name="position_embedding")
        tokens = (None, self.num_prefix + self.num_patches, self.dim)
        for block in self.blocks:
            block.build(tokens)
        self.norm.build(tokens)
        self.predict_pixels.build(tokens)

    def call(self, encoded, restore):
        x = self.embed(encoded)
        prefix, visible = x[:, : self.num_prefix], x[:, self.num_prefix:]
        batch = ops.shape(x)[0]
        hidden = self.num_patches - visible.shape[1]
        masked = ops.broadcast_to(
            ops.cast(self.mask_token, x.dtype), (batch, hidden, self.dim))
        patches = _gather_tokens(
            ops.concatenate([visible, masked], axis=1), restore)
        x = ops.concatenate([prefix, patches], axis=1)
        x = x + ops.cast(self.position_embedding, x.dtype)
        for block in self.blocks:
            x = block(x)
        return self.predict_pixels(self.norm(x)[:, self.num_prefix:])

    def get_config(self):
        config = super().get_config()
        config.update({
            "num_patches": self.num_patches, "num_prefix": self.num_prefix,
            "patch_pixels": self.patch_pixels, "dim": self.dim,
            "depth": self.depth, "num_heads": self.num_heads,
            "mlp_dim": self.mlp_dim,
        })
        return config


@keras.saving.register_keras_serializable(package="keras_simmim")
class MAEModel(MaskedImageModel):
    """Masked autoencoder (He et al., 2022) around a ViT-type backbone.

    SimMIM's nearest alternative, built so both train with the same code:
    random patches are masked (`mask_ratio` of them, exactly, per image);
    the backbone's encoder sees the visible patch tokens only (with their
    position embeddings and the class token); a light `MAEDecoder` fills the
    dropped positions with a mask token and predicts every patch's pixels;
    the loss is the mean squared error on the masked patches (optionally of
    each patch normalised by its own mean and variance, `norm_pix_loss`).
    After pretraining `model.backbone` is the encoder, ready for fine-tuning
    or probing exactly like a SimMIM-pretrained one.

    Args:
        backbone: a backbone whose adapter runs on token sequences
            (`keras_hub.models.ViTBackbone`); others raise a `ValueError`.
        mask_ratio: float in (0, 1), fraction of patches dropped (0.75).
        decoder_dim: int, decoder width (128).
        decoder_depth: int, decoder transformer blocks (2).
        decoder_num_heads: int, decoder attention heads (4).
        decoder_mlp_dim: int or None, decoder MLP width (4x `decoder_dim`).
        norm_pix_loss: bool, regress per-patch normalised pixels.
        seed: int or None, seed of the mask stream.
        **kwargs: `check_inputs` (see `MaskedImageModel`) and the standard
            `keras.Model` arguments (`name`, `dtype`).

    Inputs:
        images `(batch, H, W, C)`, or `{"images": ..., "mask": ...}` with a
        given mask on the patch grid (`(batch, h, w)` or `(batch, h * w)`,
        True = dropped) that masks exactly `model.num_masked` patches per
        image.

    Outputs:
        `{"reconstruction": (batch, H, W, C), "mask": (batch, h, w)}`; the
        reconstruction is in the target's units (see
        `reconstruction_to_images`).

    Example:

    >>> import keras_hub, numpy as np
    >>> vit = keras_hub.models.ViTBackbone(image_shape=(32, 32, 3),
    ...     patch_size=4, num_layers=2, num_heads=2, hidden_dim=32,
    ...     mlp_dim=64)
    >>> model = MAEModel(vit, mask_ratio=0.75, decoder_dim=32,
    ...                  decoder_depth=1, decoder_num_heads=2)
    >>> images = np.random.rand(8, 32, 32, 3).astype("float32")
    >>> history = model.fit(images, batch_size=4, epochs=1, verbose=0)
    >>> model.num_masked, model.predict(images, verbose=0)["mask"].shape
    (48, (8, 8, 8))
    """

    def __init__(self, backbone, mask_ratio=0.75, decoder_dim=128,
                 decoder_depth=2, decoder_num_heads=4, decoder_mlp_dim=None,
                 norm_pix_loss=False, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(norm_pix_loss, bool):
            raise TypeError(
                "`norm_pix_loss` must be a bool. Received: "
                f"norm_pix_loss={norm_pix_loss!r}."
            )
        self._init_backbone(backbone)
        height, width, channels = self.image_shape
        # Raises for backbones without a token sequence, naming the type.
        _, self.num_prefix = self.adapter.tokens(
            self.adapter.embed(self.example_images()))
        # MAE drops single patches: blocks of one patch, no mask token in
        # the encoder (the decoder has its own).
        self._init_masking(self.patch_size, mask_ratio, seed,
                           mask_token=False)
        self.num_patches = self.mask_shape[0] * self.mask_shape[1]
        self.num_masked = self.masking.num_masked_blocks(height, width)
        if self.num_masked >= self.num_patches:
            raise ValueError(
                f"`mask_ratio`={mask_ratio} masks all {self.num_patches} "
                "patches; MAE's encoder needs at least one visible patch."
            )
        self.norm_pix_loss = norm_pix_loss
        self.decoder_config = {
            "dim": decoder_dim, "depth": decoder_depth,
            "num_heads": decoder_num_heads, "mlp_dim": decoder_mlp_dim,
        }
        self.decoder = MAEDecoder(
            self.num_patches, self.num_prefix,
            self.patch_size ** 2 * channels, dtype=self.dtype_policy,
            name="decoder", **self.decoder_config)
        self._finish_init(self.example_images())

    def call(self, inputs, training=None):
        images, mask = self._unpack(inputs)
        images = ops.cast(self._check_images(images), self.compute_dtype)
        mask = self.draw_mask(images, mask)
        flat = ops.reshape(ops.cast(mask, "int32"), (-1, self.num_patches))
        # Visible patches first, then masked, each in row-major order.
        key = flat * self.num_patches + ops.arange(self.num_patches)
        order = ops.argsort(key, axis=-1)
        restore = ops.argsort(order, axis=-1)
        tokens, prefix = self.adapter.tokens(self.adapter.embed(images))
        visible = _gather_tokens(
            tokens[:, prefix:], order[:, : self.num_patches - self.num_masked])
        encoded = self.adapter.encode_tokens(
            ops.concatenate([tokens[:, :prefix], visible], axis=1))
        patches = self.decoder(encoded, restore)
        reconstruction = unpatchify(patches, self.patch_size, self.image_shape)
        return {"reconstruction": reconstruction, "mask": mask}

    def reconstruction_target(self, images):
        """Per-patch pixels the decoder learns, `(batch, patches, p*p*C)`."""
        patches = patchify(ops.cast(images, "float32"), self.patch_size)
        if self.norm_pix_loss:
            mean, std = patch_statistics(patches)
            patches = (patches - mean) / std
        return patches

    def reconstruction_to_images(self, images, reconstruction):
        """The reconstruction in the images' pixel space (un-normalised with
        each patch's own statistics when `norm_pix_loss=True`)."""
        reconstruction = ops.cast(reconstruction, "float32")
        if not self.norm_pix_loss:
            return reconstruction
        mean, std = patch_statistics(
            patchify(ops.cast(images, "float32"), self.patch_size))
        patches = patchify(reconstruction, self.patch_size) * std + mean
        return unpatchify(patches, self.patch_size, self.image_shape)

    def masked_loss(self, x, y_pred):
        target = self.reconstruction_target(self.input_images(x))
        prediction = patchify(
            ops.cast(y_pred["reconstruction"], "float32"), self.patch_size)
        per_patch = ops.mean(ops.square(prediction - target), axis=-1)
        weights = ops.reshape(
            ops.cast(y_pred["mask"], "float32"), (-1, self.num_patches))
        # Under tf.distribute: this replica's share of the global mean.
        count = sum_over_replicas(ops.sum(weights))
        return ops.sum(per_patch * weights) / (count + 1e-5)

    def default_optimizer(self, learning_rate=1.5e-4,
                          gradient_accumulation_steps=None):
        """MAE's pretraining AdamW (betas 0.9/0.95, weight decay 0.05, no
        clipping).

        Args:
            learning_rate: float or a `keras.optimizers.schedules` schedule,
                in optimizer updates.
            gradient_accumulation_steps: None or an int >= 2, as in
                `SimMIMModel.default_optimizer`.
        """
        return self._recipe_adamw(
            learning_rate, gradient_accumulation_steps, beta_2=0.95)

    def get_config(self):
        config = super().get_config()
        config.update({
            "mask_ratio": self.mask_ratio,
            "decoder_dim": self.decoder_config["dim"],
            "decoder_depth": self.decoder_config["depth"],
            "decoder_num_heads": self.decoder_config["num_heads"],
            "decoder_mlp_dim": self.decoder_config["mlp_dim"],
            "norm_pix_loss": self.norm_pix_loss,
            "seed": self.seed,
        })
        return config
