"""Pixel-space adapters for CNNs: keras-hub ResNet, `keras.applications`,
and any functional Keras CNN.

A CNN has no token stage to put a mask token in, so SimMIM masks it in pixel
space: `embed` returns the images themselves and `SimMIMModel`'s `MaskToken`
fills masked pixels with a learned value per channel (zero, the dataset mean
of normalised images, at initialisation). The head reconstructs from the last
feature map at its output stride, measured from the backbone.

The model patch (the mask grid cell) defaults to that stride, so each masked
block covers whole cells of the feature map, or, when `mask_patch_size` is
not a multiple of the stride, to the largest size dividing both (pixel-space
masking works on any grid that divides the image); pass `model_patch_size`
to `SimMIMModel` to choose another (any size that divides the image and
`mask_patch_size`).
"""

import math

import keras
import keras_hub

from keras_simmim.backbones.adapter import BackboneAdapter
from keras_simmim.backbones.adapter import register_adapter

# Layers allowed after the last feature map: a classification head, which the
# adapter leaves out (`keras.applications.ResNet50(include_top=True)`).
HEAD_LAYERS = (
    keras.layers.GlobalAveragePooling2D,
    keras.layers.GlobalMaxPooling2D,
    keras.layers.Flatten,
    keras.layers.Dense,
    keras.layers.Dropout,
    keras.layers.Activation,
    keras.layers.Softmax,
)


def _is_functional(model):
    return (
        isinstance(model, keras.Model)
        and hasattr(model, "_operations")
        and len(getattr(model, "inputs", None) or []) == 1
        and len(getattr(model, "outputs", None) or []) == 1
    )


def feature_map_tensor(model):
    """The symbolic output of `model`'s last feature map, or None.

    That is the model's output when it is 4-D; otherwise the output of the
    last 4-D layer when only classification-head layers (`HEAD_LAYERS`)
    follow it. None when the model is not a single-input, single-output
    functional model with a 4-D image input.
    """
    if not _is_functional(model) or len(model.inputs[0].shape) != 4:
        return None
    if len(model.outputs[0].shape) == 4:
        return model.outputs[0]
    layers = model.layers
    for index in range(len(layers) - 1, -1, -1):
        layer = layers[index]
        if isinstance(layer, keras.layers.InputLayer):
            return None
        try:
            output = layer.output
        except (AttributeError, ValueError):
            return None
        if not isinstance(output, keras.KerasTensor):
            return None
        if len(output.shape) == 4:
            tail = layers[index + 1 :]
            if all(isinstance(t, HEAD_LAYERS) for t in tail):
                return output
            return None
    return None


def _graph_nodes(model):
    """The call nodes of functional `model`, in an order that runs it.

    Uses Keras's private graph (`_nodes_by_depth`, as `_run_through_graph`
    does); pyproject bounds Keras below 3.16.
    """
    by_depth = model._nodes_by_depth
    return [
        node
        for depth in sorted(by_depth, reverse=True)
        for node in by_depth[depth]
        if node.operation is not None and not node.is_input
    ]


def stage_ends(model, image_shape):
    """Where a functional CNN can be modulated between its stages.

    A stage end is a 4-D tensor that every path from the input to the
    output passes through (no skip connection jumps over it: the end of a
    residual block, not its inside), the last such tensor at its
    resolution. Resolutions that do not divide the image (a stem's zero
    padding) and the input's own resolution and channels (preprocessing
    such as `Rescaling`) are skipped. The last stage end is the output.

    Args:
        model: a single-input, single-output functional Keras model.
        image_shape: `(H, W, C)`, the size the shapes are measured at.

    Returns:
        A list of `(operation, channels)`, input to output, one per stage
        end; the operation (called once in `model`) produces it.
    """
    nodes = _graph_nodes(model)
    calls = {}
    last_use = {}
    for index, node in enumerate(nodes):
        calls[id(node.operation)] = calls.get(id(node.operation), 0) + 1
        for tensor in node.input_tensors:
            last_use[id(tensor)] = index
    for tensor in model.outputs:
        last_use[id(tensor)] = len(nodes)
    live = {id(t) for t in model.inputs if id(t) in last_use}
    cuts = []
    for index, node in enumerate(nodes):
        live.update(id(t) for t in node.outputs)
        live = {t for t in live if last_use.get(t, -1) > index}
        outputs = node.outputs
        if (len(outputs) == 1 and live == {id(outputs[0])}
                and len(outputs[0].shape) == 4
                and calls[id(node.operation)] == 1):
            cuts.append(node)
    if not cuts:
        return []
    probe = keras.Model(model.inputs, [node.outputs[0] for node in cuts])
    specs = probe.compute_output_spec(
        keras.KerasTensor((1,) + tuple(image_shape)))
    height, width, channels = image_shape
    ends = []
    for node, spec in zip(cuts, specs):
        rows, cols, depth = spec.shape[1:]
        if ends and ends[-1][0] == (rows, cols):
            ends[-1] = ((rows, cols), node.operation, depth)
        else:
            ends.append(((rows, cols), node.operation, depth))
    return [
        (operation, int(depth))
        for (rows, cols), operation, depth in ends
        if rows and cols and height % rows == 0 and width % cols == 0
        and (rows, cols, depth) != (height, width, channels)
    ]


@register_adapter
class ConvNetAdapter(BackboneAdapter):
    """Masks a functional CNN in pixel space (see module doc).

    Matches any single-input functional Keras model whose output is a 4-D
    channels-last feature map, or whose last feature map is followed only by
    a classification head (pooling, flatten, dense, dropout, activation).
    It is the fallback: adapters for specific families take precedence.

    Args:
        backbone: the functional model.

    Example: a CNN written in a few lines needs no adapter code.

    >>> import keras
    >>> from keras_simmim import SimMIMModel
    >>> inputs = keras.Input((32, 32, 3))
    >>> x = keras.layers.Conv2D(16, 3, strides=2, padding="same")(inputs)
    >>> x = keras.layers.Conv2D(32, 3, strides=2, padding="same")(x)
    >>> cnn = keras.Model(inputs, x)
    >>> model = SimMIMModel(cnn, mask_patch_size=8)
    >>> type(model.adapter).__name__, model.adapter.stride, model.mask_shape
    ('ConvNetAdapter', 4, (8, 8))

    `keras.applications.ResNet50(weights=None)` works the same way; its
    classification head is left out and stays the user's.
    """

    overridable = ("patch_size",)

    def __init__(self, backbone):
        super().__init__(backbone)
        if getattr(backbone, "data_format", "channels_last") != "channels_last":
            raise ValueError(
                f"SimMIM supports channels_last {type(backbone).__name__}s "
                f"only. Received data_format={backbone.data_format!r}."
            )
        features = feature_map_tensor(backbone)
        if features is None:
            raise ValueError(
                f"{type(backbone).__name__} has no 4-D feature map output."
            )
        if features is backbone.outputs[0]:
            self.features = backbone
        else:
            self.features = keras.Model(
                backbone.inputs, features, name=f"{backbone.name}_features"
            )
        input_shape = tuple(backbone.inputs[0].shape[1:])
        self.image_shape = input_shape
        self.num_channels = input_shape[-1]

    @classmethod
    def matches(cls, backbone):
        return feature_map_tensor(backbone) is not None

    def infer(self):
        if self.image_shape is None or None in self.image_shape:
            return  # validate() asks for image_shape.
        height, width = self.image_shape[:2]
        spec = self.features.compute_output_spec(
            keras.KerasTensor((1,) + tuple(self.image_shape))
        )
        rows, cols = spec.shape[1], spec.shape[2]
        stride = height // rows
        if rows * stride != height or cols * stride != width:
            raise ValueError(
                f"Image size {(height, width)} is incompatible with "
                f"{type(self.backbone).__name__}: its last feature map is "
                f"{(rows, cols)}, not a whole-number downsampling. Use image "
                "sides that are multiples of the network's output stride "
                "(32 for ResNet-50)."
            )
        if self.stride is not None and self.stride != stride:
            raise ValueError(
                f"`encoder_stride`={self.stride} contradicts the backbone: "
                f"its feature map has stride {stride} for images of size "
                f"{(height, width)}. Leave `encoder_stride` as None."
            )
        self.stride = int(stride)
        if self.patch_size is None:
            self.patch_size = self.stride
            hint = self.mask_patch_size
            if isinstance(hint, int) and not isinstance(hint, bool) and (
                hint > 0
            ):
                self.patch_size = math.gcd(self.stride, hint)
        self.patch_size = int(self.patch_size)

    def embed(self, images):
        return images

    def encode(self, embeddings):
        return self.features(embeddings)

    def _stage_ends(self):
        key = tuple(self.image_shape)
        if getattr(self, "_stage_ends_for", None) != key:
            self._stage_ends_cache = stage_ends(self.features, key)
            self._stage_ends_for = key
        return self._stage_ends_cache

    def modulation_points(self):
        # The ends of the CNN's stages (see `stage_ends`); the last is the
        # feature map `encode` returns.
        return [channels for _, channels in self._stage_ends()] or None

    def encode_modulated(self, embeddings, modulate):
        ends = self._stage_ends()
        if not ends:
            super().encode_modulated(embeddings, modulate)  # raises
        index = {id(operation): i for i, (operation, _) in enumerate(ends)}

        def call(operation, *args, **kwargs):
            outputs = operation(*args, **kwargs)
            point = index.get(id(operation))
            return outputs if point is None else modulate(point, outputs)

        # The functional model's own graph walk with the same layer
        # objects (Keras's private `_run_through_graph`, which
        # `keras.models.clone_model` uses): nothing is copied.
        outputs = self.features._run_through_graph(
            [embeddings], operation_fn=lambda operation: operation,
            call_fn=call)
        if isinstance(outputs, (list, tuple)):
            outputs = outputs[0]
        return outputs


@register_adapter
class ResNetAdapter(ConvNetAdapter):
    """`ConvNetAdapter` for `keras_hub.models.ResNetBackbone` (and its
    presets). Pass `image_shape` to `SimMIMModel` when the backbone accepts
    any size (the keras-hub default)."""

    backbone_types = (keras_hub.models.ResNetBackbone,)

    @classmethod
    def matches(cls, backbone):
        return isinstance(backbone, cls.backbone_types)
