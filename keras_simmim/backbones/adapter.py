"""The backbone adapter protocol and the registry that picks an adapter.

`SimMIMModel` never edits a backbone. It asks an adapter two things:

* `embed(images)`: the backbone's first stage, up to the point where SimMIM
  puts its mask token (the patch embedding of a ViT or Swin; the pixels
  themselves for a CNN). Returns a channels-last grid `(batch, h, w, dim)`
  whose cells each cover a whole number of pixels and which the mask grid
  divides.
* `encode(embeddings)`: the rest of the backbone, from the (masked)
  embeddings to a feature map `(batch, H // stride, W // stride, features)`.

and four numbers: `image_shape` `(H, W, C)`, `patch_size` (the mask grid:
the model patch), `stride` (the feature map's output stride) and
`num_channels`.

A video backbone also sets `num_frames`: its inputs are clips `(batch,
frames, H, W, C)`, `embed` returns `(batch, frames, h, w, dim)` and
`encode` `(batch, frames, H // stride, W // stride, features)` (one token
grid per frame: `image_shape` is then a frame's shape).

The adapter only calls the backbone's own layers, so the weights it trains are
the backbone's weights: after pretraining, `model.backbone` is the user's
object, ready for its downstream task.

Writing an adapter for your own backbone takes a few lines (see
`BackboneAdapter`). Functional CNNs need none: `ConvNetAdapter` handles any
functional Keras model whose output, or whose last feature map before a
classification head, is a 4-D feature map.
"""

import numpy as np
from keras import ops

_ADAPTERS = []


def find_layer(backbone, type_name):
    """The first layer of `backbone` whose class is named `type_name`."""
    for layer in backbone.layers:
        if type(layer).__name__ == type_name:
            return layer
    raise ValueError(
        f"{type(backbone).__name__} has no {type_name} layer; the SimMIM "
        "adapter expects the layer graph its keras-hub class builds."
    )


def grid_to_tokens(grid):
    """`(batch, h, w, dim)` -> `(batch, h * w, dim)`, row-major."""
    _, rows, cols, dim = grid.shape
    return ops.reshape(grid, (ops.shape(grid)[0], rows * cols, dim))


def tokens_to_grid(tokens, rows, cols):
    """`(batch, rows * cols, dim)` -> `(batch, rows, cols, dim)`."""
    dim = tokens.shape[-1]
    return ops.reshape(
        tokens, (ops.shape(tokens)[0], rows, cols, -1 if dim is None else dim)
    )


def _as_shape(value):
    """The `image_shape` override as a tuple of ints, or None."""
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise TypeError(
            "`image_shape` must be a tuple (height, width, channels). "
            f"Received: image_shape={value!r}."
        )
    shape = tuple(value)
    if any(
        isinstance(v, bool) or not isinstance(v, (int, np.integer))
        for v in shape
    ):
        raise TypeError(
            "`image_shape` must hold ints (height, width, channels). "
            f"Received: image_shape={value!r}."
        )
    return tuple(int(v) for v in shape)


class BackboneAdapter:
    """Base class of backbone adapters: the protocol SimMIM runs a backbone by.

    A subclass sets `backbone_types` (or overrides `matches`), implements
    `embed` and `encode`, and sets what it knows of `image_shape`,
    `patch_size`, `stride` and `num_channels` in `__init__` (`None` for what
    the backbone does not fix). `SimMIMModel` then calls `configure` with the
    user's overrides, which fills the gaps, rejects contradictions and checks
    that the numbers fit together.

    Register the class with `register_adapter` (usable as a decorator):
    `SimMIMModel(backbone)` then picks it for every backbone it `matches`.
    Register it before loading a saved model that uses it, as with any
    custom Keras object.

    Args:
        backbone: the backbone object to adapt.

    Example: a hand-written token backbone and its adapter.

    >>> import keras, numpy as np
    >>> from keras import ops
    >>> import keras_simmim
    >>> from keras_simmim.backbones import BackboneAdapter, register_adapter
    >>> @keras.saving.register_keras_serializable(package="docs")
    ... class TinyTokenBackbone(keras.Model):
    ...     def __init__(self, image_size=16, patch=4, dim=8, **kwargs):
    ...         super().__init__(**kwargs)
    ...         self.image_size, self.patch, self.dim = image_size, patch, dim
    ...         self.stem = keras.layers.Conv2D(dim, patch, strides=patch)
    ...         self.mixer = keras.layers.Dense(dim, activation="gelu")
    ...     def body(self, grid):
    ...         return grid + self.mixer(grid)
    ...     def call(self, images):
    ...         return self.body(self.stem(images))
    ...     def get_config(self):
    ...         return {**super().get_config(), "image_size": self.image_size,
    ...                 "patch": self.patch, "dim": self.dim}
    >>> @register_adapter
    ... class TinyTokenAdapter(BackboneAdapter):
    ...     backbone_types = (TinyTokenBackbone,)
    ...     def __init__(self, backbone):
    ...         super().__init__(backbone)
    ...         size = backbone.image_size
    ...         self.image_shape = (size, size, 3)
    ...         self.patch_size = self.stride = backbone.patch
    ...         self.num_channels = 3
    ...     def embed(self, images):
    ...         return self.backbone.stem(images)
    ...     def encode(self, embeddings):
    ...         return self.backbone.body(embeddings)
    >>> model = keras_simmim.SimMIMModel(TinyTokenBackbone(), mask_patch_size=8)
    >>> model.adapter.__class__.__name__, model.mask_shape
    ('TinyTokenAdapter', (4, 4))
    """

    backbone_types = ()
    # Numbers the user may set to a value other than the backbone's own.
    overridable = ()

    def __init__(self, backbone):
        self.backbone = backbone
        self.image_shape = None
        self.patch_size = None
        self.stride = None
        self.num_channels = None
        # Frames per clip for video backbones (None: the inputs are images).
        self.num_frames = None

    @property
    def sample_shape(self):
        """The shape of one input: `image_shape`, or `(num_frames,
        *image_shape)` for a video backbone."""
        if self.num_frames is None:
            return tuple(self.image_shape)
        return (self.num_frames,) + tuple(self.image_shape)

    @classmethod
    def matches(cls, backbone):
        """Whether this adapter handles `backbone`."""
        return bool(cls.backbone_types) and isinstance(
            backbone, cls.backbone_types
        )

    def embed(self, images):
        raise NotImplementedError

    def encode(self, embeddings):
        raise NotImplementedError

    # Optional hooks for downstream use (`keras_simmim.downstream`).
    num_blocks = None

    def features_at(self, embeddings, depth):
        """Feature grid after the first `depth` blocks (no final norm).

        Used by linear probes of intermediate layers. Adapters that cannot
        stop early leave it unimplemented: only the final features
        (`encode`) are then available.
        """
        raise ValueError(
            f"{type(self).__name__} exposes only the backbone's final "
            "features; intermediate layers (feature_layer) are supported "
            "for the ViT family."
        )

    # Optional hooks for feature pyramids (detection, segmentation:
    # `keras_simmim.backbones.pyramid`).
    def has_pyramid(self):
        """Whether `pyramid_levels` builds levels for this backbone."""
        return False

    def pyramid_levels(self, inputs, min_level, max_level):
        """The backbone's pyramid on a symbolic `keras.Input` of images:
        `{"P{l}": (batch, H / 2**l, W / 2**l, channels)}`, built from its
        stages with its own layers. `min_level` / `max_level` bound the
        levels where the adapter makes levels itself (a ViT's simple
        pyramid); a staged backbone gives one level per stage."""
        raise ValueError(
            f"{type(self).__name__} builds no feature pyramid for "
            f"{type(self.backbone).__name__}. Feature pyramids come from "
            "keras-hub FeaturePyramidBackbones (ResNet), ViTBackbone and "
            "SwinTransformerBackbone."
        )

    def pyramid_top_stride(self, max_level):
        """The stride of the coarsest level `pyramid_levels` builds, which
        the image sides must be multiples of."""
        raise ValueError(f"{type(self).__name__} builds no feature pyramid.")

    def pyramid_max_level(self, image_shape, min_level, max_level):
        """The coarsest level to build for heads that read `min_level`..
        `max_level` on images of `image_shape` (default: `max_level`)."""
        return max_level

    # Optional hooks for conditioning the backbone between its stages
    # (`keras_simmim.multimodal.FiLMFusion`).
    def modulation_points(self):
        """Channel counts of the features at the points where
        `encode_modulated` lets a caller change them, in order: one per
        stage (CNNs) or block (ViT), the last on the final feature grid.
        None when the adapter cannot split its backbone."""
        return None

    def encode_modulated(self, embeddings, modulate):
        """`encode(embeddings)` with `modulate(index, features)` applied to
        the features after each point of `modulation_points()`.

        `features` is channels-last: a grid `(batch, h, w, channels)`
        between CNN stages and at the last point, a token sequence
        `(batch, tokens, channels)` between transformer blocks. `modulate`
        returns a tensor of the same shape, which the rest of the backbone
        then runs on. Only the backbone's own layers are called (its
        weights are shared, not copied), so with `modulate` returning its
        input the result equals `encode(embeddings)`.
        """
        raise ValueError(
            f"{type(self).__name__} cannot run {type(self.backbone).__name__}"
            " stage by stage. Backbones that can be modulated between "
            "stages: functional Keras CNNs (keras.applications, a "
            "functional conv stack), keras_hub.models.ResNetBackbone, "
            "ViTBackbone and SwinTransformerBackbone."
        )

    def tokens(self, embeddings):
        """The encoder's input sequence for an embedding grid.

        For backbones that work on token sequences (MAE drops masked tokens
        from it): returns `(tokens, num_prefix)`, tokens `(batch,
        num_prefix + rows * cols, dim)` with position embeddings added and
        `num_prefix` leading tokens (class token) before the patch tokens in
        row-major order.
        """
        raise ValueError(
            f"{type(self.backbone).__name__} does not run on a sequence of "
            "patch tokens that may be shortened, which MAE needs (the "
            "encoder sees the visible tokens only); use a ViT-type backbone "
            "(keras_hub.models.ViTBackbone), or SimMIMModel, which works "
            "with any backbone."
        )

    def encode_tokens(self, tokens):
        """Runs the encoder (with its final norm) on a token sequence from
        `tokens()`, possibly shortened; returns `(batch, length, dim)`."""
        self.tokens(None)  # raises

    def layer_groups(self):
        """Variables grouped by depth, input first, for layer-wise
        learning-rate decay: `[embedding variables, block 1, block 2, ...]`.
        Variables in no group (final norm, heads) get the full rate.
        None when the adapter does not define depth."""
        return None

    def prepare_to_save(self):
        """Hook run before the model's weights are written (`.keras`,
        `save_weights`, presets): bring any derived backbone state up to
        date. No-op by default."""

    def no_weight_decay_variables(self):
        """Backbone variables the SimMIM recipe keeps out of weight decay
        besides biases and norms (position embeddings, class tokens)."""
        return []

    # ------------------------------------------------------------------ #
    # Configuration
    # ------------------------------------------------------------------ #
    def configure(self, image_shape=None, patch_size=None, stride=None,
                  mask_patch_size=None):
        """Applies user overrides, infers the rest and validates.

        Args:
            image_shape: `(H, W, C)` or None. Needed when the backbone
                accepts any image size; must agree with it otherwise.
            patch_size: int or None, the model patch (mask grid cell).
            stride: int or None, the output stride of the feature map.
            mask_patch_size: int or None, the masked block side the model
                will use: a hint for adapters whose mask grid is free
                (`ConvNetAdapter` picks a grid cell that divides it).

        Raises:
            ValueError: an override contradicts what the backbone fixes, or
                the numbers do not fit together.
        """
        name = type(self.backbone).__name__
        self.mask_patch_size = mask_patch_size
        for attr, arg, value in (
            ("image_shape", "image_shape", _as_shape(image_shape)),
            ("patch_size", "model_patch_size", patch_size),
            ("stride", "encoder_stride", stride),
        ):
            if value is None:
                continue
            current = getattr(self, attr)
            if attr == "image_shape":
                value = self._merge_image_shape(current, value)
            elif current is not None and current != value and (
                attr not in self.overridable
            ):
                raise ValueError(
                    f"`{arg}`={value} contradicts the backbone: a {name} "
                    f"fixes {arg}={current}. Leave `{arg}` as None to use "
                    "the backbone's value."
                )
            setattr(self, attr, value)
        if self.image_shape is not None and self.num_channels is None:
            self.num_channels = self.image_shape[-1]
        self.infer()
        self.validate()

    def _merge_image_shape(self, current, value):
        if len(value) != 3 or any(
            not isinstance(v, int) or v <= 0 for v in value
        ):
            raise ValueError(
                "`image_shape` must be (height, width, channels) with "
                f"positive ints. Received: image_shape={value}."
            )
        if current is not None:
            for got, fixed in zip(value, current):
                if fixed is not None and got != fixed:
                    raise ValueError(
                        f"`image_shape`={value} does not match the "
                        f"backbone's input shape {current} (None = any). "
                        "Images must have the backbone's channel count and, "
                        "where it fixes them, its height and width."
                    )
        return value

    def infer(self):
        """Hook: compute what depends on the final image shape (e.g. a
        CNN's stride). Called by `configure` before `validate`."""

    def validate(self):
        name = type(self.backbone).__name__
        shape = self.image_shape
        if shape is None or len(shape) != 3 or None in shape:
            raise ValueError(
                f"SimMIM needs a fixed image size, and this {name} accepts "
                f"any (input shape {shape}). Pass image_shape=(height, "
                "width, channels) to SimMIMModel."
            )
        for attr in ("patch_size", "stride", "num_channels"):
            value = getattr(self, attr)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(
                    f"The {type(self).__name__} for {name} must set a "
                    f"positive int `{attr}`. Got {attr}={value!r}."
                )
        if shape[-1] != self.num_channels:
            raise ValueError(
                f"`image_shape`={shape} has {shape[-1]} channels; the "
                f"backbone takes {self.num_channels}."
            )
        for size, arg in ((self.patch_size, "patch"), (self.stride, "stride")):
            if shape[0] % size or shape[1] % size:
                raise ValueError(
                    f"Image size {shape[:2]} is not divisible by the "
                    f"backbone's {arg} {size}: SimMIM needs whole patches "
                    "and a feature map of exactly (H/stride, W/stride). "
                    f"Use image sides that are multiples of {size}."
                )


def register_adapter(adapter_cls):
    """Registers an adapter class; later registrations take precedence.

    Usable as a class decorator. Returns `adapter_cls`.
    """
    if not (
        isinstance(adapter_cls, type) and issubclass(adapter_cls, BackboneAdapter)
    ):
        raise TypeError(
            "`adapter_cls` must be a subclass of BackboneAdapter. "
            f"Received: adapter_cls={adapter_cls!r}."
        )
    if adapter_cls not in _ADAPTERS:
        _ADAPTERS.append(adapter_cls)
    return adapter_cls


def get_adapter(backbone, image_shape=None, patch_size=None, stride=None,
                mask_patch_size=None):
    """Returns a configured adapter instance for `backbone`.

    Args:
        backbone: the backbone.
        image_shape, patch_size, stride: optional overrides, see
            `BackboneAdapter.configure`.
        mask_patch_size: optional hint, see `BackboneAdapter.configure`.

    Raises:
        TypeError: no registered adapter handles the backbone.
        ValueError: the overrides do not fit the backbone.
    """
    for adapter_cls in reversed(_ADAPTERS):
        if adapter_cls.matches(backbone):
            adapter = adapter_cls(backbone)
            adapter.configure(image_shape, patch_size, stride,
                              mask_patch_size=mask_patch_size)
            return adapter
    supported = ", ".join(
        t.__name__ for a in _ADAPTERS for t in a.backbone_types
    )
    raise TypeError(
        f"No SimMIM adapter for a backbone of type {type(backbone).__name__}. "
        f"Supported: {supported}, and any functional Keras CNN whose output "
        "(or last feature map before a classification head) is a 4-D "
        "feature map (batch, h, w, channels). For another backbone, "
        "subclass keras_simmim.backbones.BackboneAdapter (embed: images to "
        "the token grid; encode: tokens to the feature map) and register it "
        "with keras_simmim.backbones.register_adapter."
    )
