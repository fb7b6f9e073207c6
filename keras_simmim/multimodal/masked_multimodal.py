"""`MaskedMultimodalModel`: joint masked image and masked language modeling
over a fused encoder (M3AE / FLAVA-style), on unlabeled image-text pairs."""

import keras
import numpy as np
from keras import ops

from keras_simmim.backbones import grid_to_tokens
from keras_simmim.backbones import tokens_to_grid
from keras_simmim.distribute.replicas import draw_for_global_batch
from keras_simmim.distribute.replicas import sum_over_replicas
from keras_simmim.layers import ReconstructionHead
from keras_simmim.models import MaskedImageModel
from keras_simmim.models import masked_reconstruction_loss
from keras_simmim.multimodal.fusion import MergedFusion
from keras_simmim.multimodal.text import check_pair_inputs
from keras_simmim.multimodal.text import text_sequence
from keras_simmim.utils.validation import check_positive_int
from keras_simmim.utils.validation import check_ratio


@keras.saving.register_keras_serializable(package="keras_simmim")
class MaskedMultimodalModel(MaskedImageModel):
    """SimMIM on the image and masked language modeling on the text, fused.

    One step: the image is masked SimMIM-style (random blocks replaced by a
    learned mask token after the patch embedding) and encoded by the image
    backbone; a fraction `text_mask_rate` of the real text tokens (not
    `[CLS]`/`[SEP]`/padding, see `special_token_ids`) is replaced by
    `mask_token_id` and encoded by the text backbone; a `MergedFusion`
    encoder runs joint self-attention over both sequences. A linear pixel
    head (1x1 conv + pixel shuffle) reconstructs the image from the fused
    image tokens (L1 on masked pixels) and a linear word head predicts the
    masked words from the fused text tokens (cross-entropy). The loss is
    `image_loss + text_loss_weight * text_loss`. Both towers learn from both
    modalities; afterwards `model.image_backbone` transfers like a
    SimMIM-pretrained backbone.

    Args:
        image_backbone: any backbone `SimMIMModel` accepts.
        text_backbone: a keras-hub text backbone with `vocabulary_size`.
        mask_token_id: int, the tokenizer's `[MASK]` id.
        special_token_ids: ids never masked (default `(0, 1, 2)`: `[PAD]`,
            `[CLS]`, `[SEP]` of `build_text_preprocessor`).
        mask_patch_size: int, masked image block side in pixels.
        mask_ratio: float in (0, 1), fraction of image blocks masked.
        text_mask_rate: float in (0, 1), fraction of text tokens masked
            (0.15 as in BERT; M3AE masks 0.75).
        text_loss_weight: float (0.5 as in M3AE).
        fusion_dim, fusion_layers, fusion_heads: the fused encoder.
        seed: int or None, seed of both mask streams.
        **kwargs: standard `keras.Model` arguments.

    Inputs:
        A dict with `images` and the text tensors (`token_ids`,
        `padding_mask`, ...), and optionally `mask`, a given image mask on
        the patch grid as `SimMIMModel` takes it. Labels are not used.

    Outputs:
        `{"reconstruction", "mask", "word_logits", "text_mask"}`.

    Example:

    >>> import keras_hub, numpy as np
    >>> vit = keras_hub.models.ViTBackbone(image_shape=(32, 32, 3),
    ...     patch_size=4, num_layers=1, num_heads=2, hidden_dim=16,
    ...     mlp_dim=32)
    >>> bert = keras_hub.models.BertBackbone(vocabulary_size=30,
    ...     num_layers=1, num_heads=2, hidden_dim=16, intermediate_dim=32,
    ...     max_sequence_length=8)
    >>> model = MaskedMultimodalModel(vit, bert, mask_token_id=4,
    ...     mask_patch_size=8, fusion_dim=16, fusion_heads=2, seed=0)
    >>> batch = {"images": np.random.rand(4, 32, 32, 3),
    ...          "token_ids": np.arange(32).reshape(4, 8) % 25 + 5,
    ...          "padding_mask": np.ones((4, 8), bool)}
    >>> history = model.fit(batch, batch_size=4, epochs=1, verbose=0)
    >>> model.predict(batch, verbose=0)["word_logits"].shape
    (4, 8, 30)
    """

    backbone_config_keys = ("image_backbone", "text_backbone")

    def __init__(self, image_backbone, text_backbone, mask_token_id,
                 special_token_ids=(0, 1, 2), mask_patch_size=32,
                 mask_ratio=0.6, text_mask_rate=0.15, text_loss_weight=0.5,
                 fusion_dim=128, fusion_layers=2, fusion_heads=4, seed=None,
                 **kwargs):
        super().__init__(**kwargs)
        if isinstance(mask_token_id, bool) or not isinstance(
                mask_token_id, (int, np.integer)) or mask_token_id < 0:
            raise ValueError(
                "`mask_token_id` must be the tokenizer's [MASK] id, an int "
                f">= 0. Received: mask_token_id={mask_token_id!r}."
            )
        check_ratio("text_mask_rate", text_mask_rate)
        self.vocabulary_size = getattr(text_backbone, "vocabulary_size", None)
        if self.vocabulary_size is None:
            raise ValueError(
                f"{type(text_backbone).__name__} has no `vocabulary_size`; "
                "masked language modeling needs a token-id text backbone."
            )
        check_positive_int("fusion_dim", fusion_dim)
        self._init_backbone(image_backbone, mask_patch_size=mask_patch_size)
        self.text_backbone = text_backbone
        self.mask_token_id = int(mask_token_id)
        self.special_token_ids = tuple(int(i) for i in special_token_ids)
        self.text_mask_rate = float(text_mask_rate)
        self.text_loss_weight = float(text_loss_weight)
        self.fusion_config = {"dim": fusion_dim, "num_layers": fusion_layers,
                              "num_heads": fusion_heads}
        self._init_masking(mask_patch_size, mask_ratio, seed)
        self.text_seed = keras.random.SeedGenerator(
            None if seed is None else seed + 1)
        policy = self.dtype_policy
        self.fusion = MergedFusion(dtype=policy, name="fusion",
                                   **self.fusion_config)
        self.pixel_head = ReconstructionHead(
            stride=self.adapter.stride, channels=self.image_shape[-1],
            dtype=policy, name="pixel_head")
        self.word_head = keras.layers.Dense(
            self.vocabulary_size, dtype=policy, name="word_head")
        length = min(8, getattr(text_backbone, "max_sequence_length", 8))
        self._finish_init({
            "images": self.example_images(),
            "token_ids": np.full((1, length), 5, "int32"),
            "padding_mask": np.ones((1, length), bool),
            "mask": self.example_mask(),
        })

    @property
    def image_backbone(self):
        """The image backbone (`backbone`), under its two-tower name."""
        return self.backbone

    def _unpack(self, inputs):
        check_pair_inputs(self, inputs)
        return inputs["images"], inputs.get("mask")

    def _mask_text(self, token_ids, padding_mask):
        maskable = ops.cast(padding_mask, "bool")
        for special in self.special_token_ids:
            maskable = ops.logical_and(maskable,
                                       ops.not_equal(token_ids, special))
        # The global batch's draw, this replica's rows (as one device).
        batch, length = ops.shape(token_ids)[0], token_ids.shape[1]
        draw = draw_for_global_batch(
            lambda size: keras.random.uniform(
                (size, length), seed=self.text_seed), batch)
        chosen = ops.logical_and(maskable, draw < self.text_mask_rate)
        masked_ids = ops.where(
            chosen, ops.cast(self.mask_token_id, token_ids.dtype), token_ids)
        return masked_ids, chosen

    def call(self, inputs, training=None):
        images, mask = self._unpack(inputs)
        images = ops.cast(self._check_images(images), self.compute_dtype)
        token_ids = ops.cast(inputs["token_ids"], "int32")
        mask = self.draw_mask(images, mask)
        grid = self.masked_encode(images, mask)
        _, rows, cols, _ = grid.shape
        masked_ids, text_mask = self._mask_text(token_ids,
                                                inputs["padding_mask"])
        text = text_sequence(self.text_backbone,
                             dict(inputs, token_ids=masked_ids))
        fused_image, fused_text = self.fusion(
            grid_to_tokens(grid), text, inputs["padding_mask"],
            return_sequences=True)
        return {
            "reconstruction": self.pixel_head(
                tokens_to_grid(fused_image, rows, cols)),
            "mask": mask,
            "word_logits": self.word_head(fused_text),
            "text_mask": text_mask,
        }

    def masked_loss(self, x, y_pred):
        image_loss = masked_reconstruction_loss(
            ops.cast(self.input_images(x), "float32"),
            y_pred["reconstruction"], y_pred["mask"])
        logits = ops.cast(y_pred["word_logits"], "float32")
        targets = ops.one_hot(ops.cast(x["token_ids"], "int32"),
                              self.vocabulary_size, dtype="float32")
        per_token = -ops.sum(targets * ops.log_softmax(logits, axis=-1),
                             axis=-1)
        chosen = ops.cast(y_pred["text_mask"], "float32")
        # Under tf.distribute: this replica's share of the global mean.
        count = sum_over_replicas(ops.sum(chosen))
        text_loss = ops.sum(per_token * chosen) / (count + 1e-5)
        return image_loss + self.text_loss_weight * text_loss

    def get_config(self):
        config = super().get_config()
        config.update({
            "mask_token_id": self.mask_token_id,
            "special_token_ids": list(self.special_token_ids),
            "mask_patch_size": self.mask_patch_size,
            "mask_ratio": self.mask_ratio,
            "text_mask_rate": self.text_mask_rate,
            "text_loss_weight": self.text_loss_weight,
            "fusion_dim": self.fusion_config["dim"],
            "fusion_layers": self.fusion_config["num_layers"],
            "fusion_heads": self.fusion_config["num_heads"],
            "seed": self.seed,
        })
        return config
