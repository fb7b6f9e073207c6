"""`MaskedImageModel`: the one training contract of every masked image model.

`SimMIMModel`, `MAEModel` and `MaskedMultimodalModel` subclass it and keep
only what is theirs (their forward pass after the masked encode, their loss
and their config). The base class owns:

* the backbone and its adapter, and the attributes that input checks,
  previews, inpainting and presets read: `backbone`, `adapter`,
  `image_shape`, `patch_size`, `mask_shape`, `masking`, `mask_token`;
* the masked encode: draw (or check) the mask, embed, blend the mask token
  on the embedding grid, run the rest of the backbone; and `pixel_mask`,
  the one place that upsamples a mask-grid mask to pixels;
* the loss contract: `compute_loss` calls the subclass's `masked_loss`, adds
  the model's regularisation losses (each of N `tf.distribute` replicas adds
  1/N of them, so they count once) and counts non-finite inputs;
* the default optimizer (SimMIM's AdamW, `default_optimizer`, with
  gradient accumulation on a per-update schedule), and compile keeping
  the recipe's variables out of weight decay;
* saving: `get_config` / `from_config` of the backbones and the adapter's
  pre-save hook.

What every keras_simmim model shares (training mode on every backend, the
weight-decay rule, the compile path and its config, `load_weights`) is in
the base class, `keras_simmim.models.Task`.
"""

import math

import keras
import numpy as np
from keras import ops

from keras_simmim.backbones import get_adapter
from keras_simmim.distribute.replicas import replica_position
from keras_simmim.distribute.replicas import reported_as_global_loss
from keras_simmim.layers import MaskToken
from keras_simmim.layers import RandomPatchMasking
from keras_simmim.layers.masking import upsample_mask
from keras_simmim.models.inputs import MaskedImageInputs
from keras_simmim.models.task import NO_DECAY_NAME_PARTS  # noqa: F401
from keras_simmim.models.task import Task
from keras_simmim.models.task import keeps_out_of_weight_decay  # noqa: F401
from keras_simmim.training.input_check import METRIC_NAME
from keras_simmim.training.input_check import NonFiniteInputCheck
from keras_simmim.training.schedules import per_update_learning_rate
from keras_simmim.utils.validation import check_positive_int

class MaskedImageModel(MaskedImageInputs, Task):
    """Base class of the masked image models (see module doc).

    A subclass calls `_init_backbone` (and `_init_masking` when it masks
    SimMIM-style) in its constructor, builds its own layers, then
    `_finish_init(example_inputs)`; it implements `call` (usually
    `masked_encode` plus a head) and `masked_loss`, and lists its
    constructor arguments in `get_config`.

    Args:
        check_inputs: bool. Count NaN/inf values in each training batch
            (the `nonfinite_inputs` metric) and stop `fit` with a
            `ValueError` naming the first batch that has any.
        **kwargs: standard `keras.Model` arguments (`name`, `dtype`).
    """

    # Config entries holding serialised backbones (rebuilt by from_config).
    backbone_config_keys = ("backbone",)

    def __init__(self, check_inputs=False, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(check_inputs, bool):
            raise TypeError(
                "`check_inputs` must be a bool. Received: "
                f"check_inputs={check_inputs!r}."
            )
        self.check_inputs = check_inputs
        if check_inputs:
            self.nonfinite_inputs = keras.metrics.Sum(name=METRIC_NAME)

    # ------------------------------------------------------------------ #
    # Set-up, called by subclasses
    # ------------------------------------------------------------------ #
    def _init_backbone(self, backbone, image_shape=None, model_patch_size=None,
                       encoder_stride=None, mask_patch_size=None):
        """Picks and configures the adapter; sets `backbone`, `adapter`,
        `image_shape`, `patch_size` and `mask_shape`."""
        self.adapter = get_adapter(
            backbone, image_shape=image_shape, patch_size=model_patch_size,
            stride=encoder_stride, mask_patch_size=mask_patch_size,
        )
        self.backbone = backbone
        self.image_shape = tuple(self.adapter.image_shape)
        self.patch_size = self.adapter.patch_size
        height, width, _ = self.image_shape
        self.mask_shape = (height // self.patch_size, width // self.patch_size)
        if self.adapter.num_frames is not None:  # a clip: one grid a frame
            self.mask_shape = (self.adapter.num_frames,) + self.mask_shape

    def _init_masking(self, mask_patch_size, mask_ratio, seed=None,
                      strategy="random", mask_token=True):
        """Creates `masking` (SimMIM's block mask on the model-patch grid)
        and, unless `mask_token=False`, the `mask_token` blended in by
        `masked_encode`."""
        self._check_mask_patch_size(mask_patch_size)
        self.mask_patch_size = mask_patch_size
        self.mask_ratio = mask_ratio
        self.seed = seed
        self.masking = RandomPatchMasking(
            mask_patch_size=mask_patch_size, model_patch_size=self.patch_size,
            mask_ratio=mask_ratio, seed=seed, strategy=strategy,
            name="masking",
        )
        # Checks now that the blocks divide the image (and clip) sides.
        self.masking.compute_output_shape((None,) + self.sample_shape)
        if mask_token:
            self.mask_token = MaskToken(
                dtype=self.dtype_policy, name="mask_token")

    def _check_mask_patch_size(self, mask_patch_size):
        if (
            isinstance(mask_patch_size, (int, np.integer))
            and not isinstance(mask_patch_size, bool)
            and mask_patch_size > 0
            and mask_patch_size % self.patch_size
        ):
            name = type(self.backbone).__name__
            if "patch_size" in self.adapter.overridable:
                hint = (
                    "pass `model_patch_size` (the mask grid cell) as a "
                    f"divisor of {mask_patch_size}, e.g. model_patch_size="
                    f"{math.gcd(mask_patch_size, self.patch_size)}"
                )
            else:
                hint = (
                    f"a {name} fixes its patch size, so choose a "
                    f"`mask_patch_size` that is a multiple of "
                    f"{self.patch_size}, e.g. {2 * self.patch_size}"
                )
            raise ValueError(
                f"`mask_patch_size`={mask_patch_size} is not a multiple of "
                f"the mask grid cell model_patch_size={self.patch_size}: "
                f"{hint}."
            )

    def _finish_init(self, example_inputs):
        """Builds every weight with one tiny concrete pass (a given mask,
        so the mask stream is not advanced) and compiles with defaults."""
        self(example_inputs)
        self.compile()

    def example_images(self, batch=1):
        """Zero images `(batch, H, W, C)` (clips `(batch, frames, H, W, C)`)
        for building."""
        return np.zeros((batch,) + self.sample_shape, "float32")

    def example_mask(self, batch=1):
        """An all-visible mask `(batch, *mask_shape)` for building."""
        return np.zeros((batch,) + self.mask_shape, "float32")

    # ------------------------------------------------------------------ #
    # The masked encode
    # ------------------------------------------------------------------ #
    def draw_mask(self, images, mask=None):
        """`mask` checked and made boolean on the mask grid, or a new
        random mask from `masking` when None."""
        if mask is None:
            return self.masking(images)
        return self._standardize_mask(mask, batch=ops.shape(images)[0])

    def masked_encode(self, images, mask):
        """Embeds `images`, blends the mask token where `mask` is True (the
        mask upsampled to the embedding grid: the patch grid of a ViT or
        Swin, the pixels of a CNN) and runs the rest of the backbone.

        Returns the feature map `(batch, H // stride, W // stride, dim)`
        (`(batch, frames, ...)` for clips).
        """
        embeddings = self.adapter.embed(images)
        factor = embeddings.shape[-2] // self.mask_shape[-1]
        embeddings = self.mask_token(embeddings, upsample_mask(mask, factor))
        return self.adapter.encode(embeddings)

    def pixel_mask(self, mask):
        """A mask-grid mask `(batch, h, w)` repeated to the pixels,
        `(batch, H, W)` (clips: `(batch, frames, H, W)`), boolean."""
        mask = ops.cast(self._standardize_mask(mask), "bool")
        return upsample_mask(mask, self.image_shape[1] // self.mask_shape[-1])

    # ------------------------------------------------------------------ #
    # Loss
    # ------------------------------------------------------------------ #
    def input_images(self, x):
        """The image batch of the model's inputs `x`, checked and with its
        static shape (see `_check_images`)."""
        return self._check_images(self._unpack(x)[0])

    def masked_loss(self, x, y_pred):
        """The model's own loss for one (replica's) batch: a float32
        scalar, already this replica's share under `tf.distribute`."""
        raise NotImplementedError

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        images = self._unpack(x)[0]
        if self.check_inputs:
            self.nonfinite_inputs.update_state(
                ops.sum(ops.cast(ops.logical_not(
                    ops.isfinite(ops.cast(images, "float32"))), "float32"))
            )
        loss = self.masked_loss(x, y_pred)
        # Regularisation losses are per model, not per replica: each of N
        # tf.distribute replicas adds 1/N of them.
        _, replicas = replica_position()
        for extra in self.losses:
            loss = loss + ops.cast(extra, "float32") / replicas
        return reported_as_global_loss(loss, images)

    def fit(self, *args, callbacks=None, **kwargs):
        """`keras.Model.fit`; with `check_inputs=True` it adds a
        `NonFiniteInputCheck` callback (unless one is given)."""
        if self.check_inputs:
            callbacks = list(callbacks or [])
            if not any(isinstance(c, NonFiniteInputCheck) for c in callbacks):
                callbacks.append(NonFiniteInputCheck())
        return super().fit(*args, callbacks=callbacks, **kwargs)

    # ------------------------------------------------------------------ #
    # Optimizer
    # ------------------------------------------------------------------ #
    def default_optimizer(self, learning_rate=1e-4,
                          gradient_accumulation_steps=None):
        """The pretraining recipe's optimizer: SimMIM's AdamW (betas
        0.9/0.999, weight decay 0.05, gradient clipping at global norm 5).

        Args:
            learning_rate: float or a `keras.optimizers.schedules` schedule,
                in optimizer updates.
            gradient_accumulation_steps: None, or an int >= 2: batches whose
                gradients are averaged into one update (SimMIM's recipe
                reaches its large batch this way). A schedule then advances
                once per update (`keras_simmim.training.PerUpdateSchedule`),
                so `k` batches of `b` images follow the schedule of one
                batch of `k * b`.

        Returns:
            A `keras.optimizers.AdamW`.

        Raises:
            ValueError: `gradient_accumulation_steps` is not None or an
                int >= 2.

        Example:

        >>> import keras_hub, keras_simmim
        >>> from keras_simmim.training import warmup_cosine
        >>> vit = keras_hub.models.ViTBackbone(
        ...     image_shape=(16, 16, 3), patch_size=4, num_layers=1,
        ...     num_heads=1, hidden_dim=8, mlp_dim=8)
        >>> model = keras_simmim.SimMIMModel(vit, mask_patch_size=8)
        >>> optimizer = model.default_optimizer(
        ...     warmup_cosine(1e-3, total_steps=100, warmup_steps=10),
        ...     gradient_accumulation_steps=4)
        >>> optimizer.get_config()["learning_rate"]["class_name"]
        'PerUpdateSchedule'
        """
        return self._recipe_adamw(
            learning_rate, gradient_accumulation_steps, beta_2=0.999,
            global_clipnorm=5.0)

    @staticmethod
    def _recipe_adamw(learning_rate, gradient_accumulation_steps, **recipe):
        """AdamW (weight decay 0.05, beta_1 0.9) with `recipe`'s other
        arguments, accumulating gradients with a per-update schedule."""
        if gradient_accumulation_steps is not None:
            check_positive_int(
                "gradient_accumulation_steps", gradient_accumulation_steps)
            if gradient_accumulation_steps < 2:
                raise ValueError(
                    "`gradient_accumulation_steps` must be None or an int "
                    ">= 2. Received: gradient_accumulation_steps="
                    f"{gradient_accumulation_steps}."
                )
        optimizer = keras.optimizers.AdamW(
            learning_rate=learning_rate, weight_decay=0.05, beta_1=0.9,
            gradient_accumulation_steps=gradient_accumulation_steps,
            **recipe)
        return per_update_learning_rate(optimizer)

    def compile(
        self, optimizer="auto", exclude_no_decay_variables=True, **kwargs
    ):
        """Configures training; the loss is the model's own.

        Args:
            optimizer: an optimizer, or `"auto"` for `default_optimizer()`.
            exclude_no_decay_variables: bool. Keep biases, norms, tokens and
                position embeddings out of the optimizer's weight decay
                (`no_weight_decay_variables`), as the SimMIM and MAE
                recipes do.
            **kwargs: other `keras.Model.compile` arguments (`metrics`,
                `jit_compile`, `steps_per_execution`, ...). `loss` is not
                accepted.

        The optimizer is built here (its slots created) for a built model.
        On TensorFlow it is made to sum sparse gradients' repeated rows and,
        under a multi-replica `tf.distribute` strategy, the replicas'
        gradients before clipping
        (`keras_simmim.distribute.sum_gradients_before_clipping`), so
        training matches JAX, torch and one device with the same global
        batch.
        """
        if kwargs.pop("loss", None) is not None:
            raise ValueError(
                f"{type(self).__name__} computes its own loss; do not pass "
                "`loss` to compile(). Choose it with the model's "
                "constructor arguments."
            )
        if isinstance(optimizer, str) and optimizer == "auto":
            optimizer = self.default_optimizer()
        super().compile(optimizer=optimizer, **kwargs)
        optimizer = self.optimizer
        inner = getattr(optimizer, "inner_optimizer", optimizer)
        if (
            exclude_no_decay_variables
            and getattr(inner, "weight_decay", None)
            and not getattr(inner, "built", False)
        ):
            inner.exclude_from_weight_decay(
                var_list=self.no_weight_decay_variables()
            )
        if self.built and not getattr(optimizer, "built", False):
            # Built here, in the caller's distribution scope, so that `fit`
            # has nothing left to build (see `_maybe_symbolic_build`).
            optimizer.build(self.trainable_variables)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Keras 3.15's TensorFlow trainer, under tf.distribute, reduces the
        # first batch across replicas to build the model symbolically, and
        # that reduction rejects bool inputs (a text `padding_mask`). These
        # models are built at construction and their optimizer at compile:
        # with no compiled metrics there is nothing to build, so skip it.
        # (Private Keras API: pyproject bounds Keras below 3.16.)
        if (
            self.built
            and getattr(self.optimizer, "built", False)
            and getattr(self, "_compile_metrics", None) is None
        ):
            return
        parent = getattr(super(), "_maybe_symbolic_build", None)
        if parent is not None:
            parent(iterator=iterator, data_batch=data_batch)

    # ------------------------------------------------------------------ #
    # Saving and loading
    # ------------------------------------------------------------------ #
    def get_config(self):
        config = super().get_config()
        for key in self.backbone_config_keys:
            config[key] = keras.saving.serialize_keras_object(
                getattr(self, key))
        config["check_inputs"] = self.check_inputs
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in cls.backbone_config_keys:
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)

    def save_own_variables(self, store):
        # Runs before Keras saves the sublayers (the backbone).
        self.adapter.prepare_to_save()
        super().save_own_variables(store)
