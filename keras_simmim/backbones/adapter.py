"""The backbone adapter protocol and the registry that picks an adapter.

`SimMIMModel` never edits a backbone. It asks an adapter two things:

* `embed(images)`: the backbone's first stage, up to the point where SimMIM
  puts its mask token (the patch embedding of a ViT; the pixels themselves
  for a CNN). Returns a channels-last grid `(batch, h, w, dim)` whose cells
  each cover a whole number of pixels and which the mask grid divides.
* `encode(embeddings)`: the rest of the backbone, from the (masked)
  embeddings to a feature map `(batch, H // stride, W // stride, features)`.

and four numbers: `image_shape`, `patch_size` (the mask grid: the model
patch), `stride` (the feature map's output stride) and `num_channels`.

The adapter only calls the backbone's own layers, so the weights it trains are
the backbone's weights: after pretraining, `model.backbone` is the user's
object, ready for its downstream task.
"""

_ADAPTERS = []


class BackboneAdapter:
    """Base class of backbone adapters.

    Subclass it, set `backbone_types` (or override `matches`), implement
    `embed` and `encode`, set the four numbers in `__init__`, and register the
    class with `register_adapter`.

    Args:
        backbone: the backbone object to adapt.

    Example:

    ```python
    class MyAdapter(keras_simmim.backbones.BackboneAdapter):
        backbone_types = (MyBackbone,)

        def __init__(self, backbone):
            super().__init__(backbone)
            self.image_shape = backbone.image_shape
            self.patch_size = self.stride = 4
            self.num_channels = 3

        def embed(self, images):
            return self.backbone.stem(images)

        def encode(self, embeddings):
            return self.backbone.body(embeddings)

    keras_simmim.backbones.register_adapter(MyAdapter)
    ```
    """

    backbone_types = ()

    def __init__(self, backbone):
        self.backbone = backbone
        self.image_shape = None
        self.patch_size = None
        self.stride = None
        self.num_channels = None

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

    def no_weight_decay_variables(self):
        """Backbone variables the SimMIM recipe keeps out of weight decay
        besides biases and norms (position embeddings, class tokens)."""
        return []


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


def get_adapter(backbone):
    """Returns an adapter instance for `backbone`.

    Raises:
        TypeError: no registered adapter handles the backbone's type.
    """
    for adapter_cls in reversed(_ADAPTERS):
        if adapter_cls.matches(backbone):
            return adapter_cls(backbone)
    supported = ", ".join(
        t.__name__ for a in _ADAPTERS for t in a.backbone_types
    )
    raise TypeError(
        f"No SimMIM adapter for a backbone of type {type(backbone).__name__}. "
        f"Supported backbone types: {supported}. For your own backbone, "
        "subclass keras_simmim.backbones.BackboneAdapter and register it "
        "with keras_simmim.backbones.register_adapter."
    )
