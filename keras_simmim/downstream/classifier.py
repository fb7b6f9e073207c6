"""Image classification on a (SimMIM-pretrained) backbone."""

import keras
import numpy as np
from keras import ops

from keras_simmim.backbones import get_adapter
from keras_simmim.downstream.finetuning import FineTunesBackbone
from keras_simmim.utils.serialization import with_deserialized_backbone
from keras_simmim.utils.validation import check_choice
from keras_simmim.utils.validation import check_positive_int

HEAD_NORMS = ("layer", "batch", None)


@keras.saving.register_keras_serializable(package="keras_simmim")
class SimMIMClassifier(FineTunesBackbone):
    """A classifier on average-pooled backbone features.

    The backbone runs through its SimMIM adapter, so every supported
    backbone (ViT, DeiT, DINOv2, Swin, ResNet, functional CNNs, VideoPrism)
    gives a feature grid; the head averages it over positions (patch tokens
    only, no class token; for a video backbone over frames and positions),
    normalises and applies one dense layer.

    * Fine-tuning: defaults (`freeze_backbone=False`, final features,
      LayerNorm head) and `compile_for_finetuning` (AdamW, layer-wise
      learning-rate decay, warm-up + cosine).
    * Linear probe: `freeze_backbone=True`, `head_norm="batch"` (a BatchNorm
      without scale and offset, as MAE's probe), `feature_layer=k` to probe
      the output of block `k` (the SimMIM authors probe an intermediate ViT
      layer; the final LayerNorm is then skipped).

    Args:
        backbone: the backbone (e.g. `simmim_model.backbone`).
        num_classes: int.
        feature_layer: None (final features) or int `k` in
            `[1, num_blocks]`: features after block `k` (ViT family).
        freeze_backbone: bool; sets `backbone.trainable = False`.
        head_norm: `"layer"`, `"batch"` (no scale/offset) or None.
        dropout: float, dropout before the dense layer.
        image_shape: for backbones that accept any size (e.g. ResNet).

    Example:

    >>> import keras_hub, numpy as np
    >>> vit = keras_hub.models.ViTBackbone(image_shape=(32, 32, 3),
    ...     patch_size=4, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64)
    >>> clf = SimMIMClassifier(vit, num_classes=10, feature_layer=1,
    ...                        freeze_backbone=True, head_norm="batch")
    >>> clf.predict(np.zeros((2, 32, 32, 3)), verbose=0).shape
    (2, 10)
    """

    def __init__(
        self,
        backbone,
        num_classes,
        feature_layer=None,
        freeze_backbone=False,
        head_norm="layer",
        dropout=0.0,
        image_shape=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_positive_int("num_classes", num_classes)
        check_choice("head_norm", head_norm, HEAD_NORMS)
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(
                f"`dropout` must be in [0, 1). Received: dropout={dropout}."
            )
        self.backbone = backbone
        self.adapter = get_adapter(backbone, image_shape=image_shape)
        if feature_layer is not None:
            blocks = self.adapter.num_blocks
            if blocks is None:
                self.adapter.features_at(None, feature_layer)  # raises
            if (
                isinstance(feature_layer, bool)
                or not isinstance(feature_layer, int)
                or not 1 <= feature_layer <= blocks
            ):
                raise ValueError(
                    f"`feature_layer` must be None or an int in [1, {blocks}] "
                    f"for this backbone. Received: {feature_layer!r}."
                )
        self.num_classes = int(num_classes)
        self.feature_layer = feature_layer
        self.freeze_backbone = bool(freeze_backbone)
        self.head_norm = head_norm
        self.dropout_rate = float(dropout)
        self.image_shape = tuple(self.adapter.image_shape)
        self._image_shape_arg = image_shape
        if self.freeze_backbone:
            backbone.trainable = False
        if head_norm == "layer":
            self.norm = keras.layers.LayerNormalization(
                epsilon=1e-6, name="head_norm"
            )
        elif head_norm == "batch":
            self.norm = keras.layers.BatchNormalization(
                center=False, scale=False, epsilon=1e-6, name="head_norm"
            )
        else:
            self.norm = None
        self.dropout = keras.layers.Dropout(self.dropout_rate)
        self.head = keras.layers.Dense(
            num_classes,
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            name="head",
        )
        # Build by running one tiny batch, as SimMIMModel does: the
        # adapters' reshapes need concrete batch sizes on every backend.
        self(np.zeros((1,) + self.adapter.sample_shape, "float32"))

    def features(self, images, training=False):
        """Average-pooled features `(batch, dim)` of `images` (of clips
        `(batch, frames, H, W, C)`: pooled over time and space)."""
        embeddings = self.adapter.embed(images)
        if self.feature_layer is None:
            grid = self.adapter.encode(embeddings)
        else:
            grid = self.adapter.features_at(embeddings, self.feature_layer)
        positions = tuple(range(1, len(grid.shape) - 1))
        return ops.mean(ops.cast(grid, "float32"), axis=positions)

    def call(self, images, training=None):
        x = self.features(images, training=training)
        if self.norm is not None:
            x = self.norm(x, training=training)
        return self.head(self.dropout(x, training=training))

    def compile_for_finetuning(
        self,
        learning_rate=1.25e-3,
        total_steps=1000,
        warmup_steps=None,
        layer_decay=0.65,
        weight_decay=0.05,
        label_smoothing=0.1,
        clipnorm=5.0,
        **kwargs,
    ):
        """Compiles with the SimMIM fine-tuning recipe.

        AdamW (betas 0.9 / 0.999, weight decay kept off biases, norms,
        position embeddings and class tokens), learning rate warmed up
        linearly for `warmup_steps` (default a fifth of `total_steps`, as
        the recipe's 20 of 100 epochs) then cosine-decayed, scaled per
        backbone layer by `layer_decay ** (depth from the top)`; sparse
        categorical cross-entropy with label smoothing, accuracy metric.
        Inside a multi-replica `tf.distribute` scope the optimizer sums the
        replicas' gradients before clipping
        (`keras_simmim.distribute.sum_gradients_before_clipping`, which
        every keras_simmim model's `compile` applies).

        Args:
            learning_rate: peak learning rate.
            total_steps: int, steps of the whole schedule.
            warmup_steps: int or None.
            layer_decay: float in (0, 1]; 1 disables it.
            weight_decay: float.
            label_smoothing: float in [0, 1).
            clipnorm: global gradient-norm clip, or None.
            **kwargs: other `compile` arguments.
        """
        optimizer = self.finetuning_optimizer(
            learning_rate, total_steps, warmup_steps, layer_decay,
            weight_decay, clipnorm)
        self.compile(
            optimizer=optimizer,
            loss=SmoothedSparseCrossEntropy(self.num_classes, label_smoothing),
            metrics=["accuracy"],
            **kwargs,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "backbone": keras.saving.serialize_keras_object(self.backbone),
                "num_classes": self.num_classes,
                "feature_layer": self.feature_layer,
                "freeze_backbone": self.freeze_backbone,
                "head_norm": self.head_norm,
                "dropout": self.dropout_rate,
                "image_shape": self._image_shape_arg,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**with_deserialized_backbone(config))


@keras.saving.register_keras_serializable(package="keras_simmim")
class SmoothedSparseCrossEntropy(keras.losses.Loss):
    """Sparse categorical cross-entropy from logits with label smoothing.

    Args:
        num_classes: int.
        label_smoothing: float in [0, 1).
    """

    def __init__(self, num_classes, label_smoothing=0.0, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = int(num_classes)
        self.label_smoothing = float(label_smoothing)
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(
                "`label_smoothing` must be in [0, 1). Received: "
                f"label_smoothing={label_smoothing}."
            )

    def call(self, y_true, y_pred):
        labels = ops.one_hot(
            ops.cast(ops.reshape(y_true, (-1,)), "int32"), self.num_classes
        )
        return keras.losses.categorical_crossentropy(
            labels, ops.cast(y_pred, "float32"), from_logits=True,
            label_smoothing=self.label_smoothing,
        )

    def get_config(self):
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "label_smoothing": self.label_smoothing,
        }
