"""FiLM fusion: the question scales and shifts the image backbone's channels.

Feature-wise linear modulation (Perez et al. 2018, "FiLM: Visual Reasoning
with a General Conditioning Layer"): a vector computed from the text
predicts, per channel, a scale `gamma` and a shift `beta`, and the image
features become `gamma * x + beta`. Unlike the token fusions
(`keras_simmim.multimodal.fusion`), which read a finished feature grid, it
changes what the image backbone computes: the question can turn channels
up or down before the next stage sees them. That multiplicative bias is
what lets a model pick out the named object (binding).

Three layers:

- `FiLM`: the modulation itself, `(1 + dgamma(c)) * x + beta(c)` per
  channel, its projection zero-initialised, so gamma = 1 and beta = 0 at
  step 0: a (SimMIM-)pretrained backbone starts exactly as it was.
- `FiLMBlock`: the FiLM paper's residual block (coordinates, 1x1 conv,
  ReLU, 3x3 conv, normalisation without learned affine, FiLM, ReLU, plus
  the block's input).
- `FiLMFusion`: the image backbone with a `FiLM` after each of its stages,
  then `num_layers` `FiLMBlock`s and the paper's read-out (coordinates,
  1x1 conv, global max pooling, MLP).

The text vector is the mean of the text backbone's real token features
(padding excluded), as the other fusions pool text: keras-hub's
`pooled_output` exists only for some text backbones (BERT, not
DistilBERT), and this way every keras-hub text backbone works.
"""

import math

import keras
from keras import ops

from keras_simmim.backbones import get_adapter
from keras_simmim.multimodal.coordinates import append_coordinates
from keras_simmim.multimodal.fusion import check_fusion_inputs
from keras_simmim.multimodal.fusion import pooled_text
from keras_simmim.utils.validation import check_bool
from keras_simmim.utils.validation import check_choice
from keras_simmim.utils.validation import check_count
from keras_simmim.utils.validation import check_positive_int

PLACEMENTS = ("stages", "output")
OUTPUTS = ("vector", "grid", "grid_and_vector")
READOUTS = ("max_pool", "flatten")


@keras.saving.register_keras_serializable(package="keras_simmim")
class FiLM(keras.layers.Layer):
    """Feature-wise linear modulation from a conditioning vector.

    `output = (1 + dgamma) * features + beta`, with `dgamma` and `beta`
    (one value per channel and example) a linear function of
    `conditioning`. The projection's kernel and bias start at zero, so at
    initialisation gamma = 1, beta = 0 and the layer returns `features`
    exactly.

    Args:
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        features: `(batch, ..., channels)`, channels last (a grid
            `(batch, h, w, channels)` or tokens `(batch, n, channels)`).
        conditioning: `(batch, dim)`.

    Output shape:
        The shape of `features`.

    Raises:
        ValueError: `conditioning` is not 2-D, or the batch sizes differ.

    Example:

    >>> import keras, numpy as np
    >>> film = FiLM()
    >>> x = np.random.default_rng(0).normal(size=(2, 4, 4, 3))
    >>> y = keras.ops.convert_to_numpy(film(x, np.ones((2, 5))))
    >>> y.shape, bool(np.allclose(y, x))  # gamma = 1, beta = 0 at first
    ((2, 4, 4, 3), True)
    """

    def build(self, features_shape, conditioning_shape):
        channels = features_shape[-1]
        if channels is None or len(conditioning_shape) != 2 or (
                conditioning_shape[-1] is None):
            raise ValueError(
                "FiLM needs features (batch, ..., channels) and a "
                "conditioning vector (batch, dim) with known channels and "
                f"dim. Received shapes: features={tuple(features_shape)}, "
                f"conditioning={tuple(conditioning_shape)}."
            )
        self.channels = int(channels)
        self.kernel = self.add_weight(
            shape=(int(conditioning_shape[-1]), 2 * self.channels),
            initializer="zeros", name="kernel")
        self.bias = self.add_weight(
            shape=(2 * self.channels,), initializer="zeros", name="bias")

    def call(self, features, conditioning):
        if len(conditioning.shape) != 2:
            raise ValueError(
                "`conditioning` must have shape (batch, dim). Received "
                f"shape: {tuple(conditioning.shape)}."
            )
        batch_x, batch_c = features.shape[0], conditioning.shape[0]
        if batch_x is not None and batch_c is not None and batch_x != batch_c:
            raise ValueError(
                "`features` and `conditioning` must have the same batch "
                f"size. Received: {batch_x} and {batch_c}."
            )
        conditioning = ops.cast(conditioning, features.dtype)
        params = ops.matmul(conditioning,
                            ops.cast(self.kernel, features.dtype))
        params = params + ops.cast(self.bias, features.dtype)
        dgamma = params[:, : self.channels]
        beta = params[:, self.channels:]
        for _ in range(len(features.shape) - 2):
            dgamma = ops.expand_dims(dgamma, 1)
            beta = ops.expand_dims(beta, 1)
        return features * (1.0 + dgamma) + beta

    def compute_output_shape(self, features_shape, conditioning_shape):
        return tuple(features_shape)


@keras.saving.register_keras_serializable(package="keras_simmim")
class FiLMBlock(keras.layers.Layer):
    """The FiLM paper's residual block on a feature grid.

    `h = ReLU(Conv1x1([x, coords]))`, then
    `h + ReLU(FiLM(Norm(Conv3x3(h)), conditioning))`, where `Norm`
    normalises each cell over its channels without a learned scale or
    shift (FiLM supplies them; a layer norm, not batch norm, so there are
    no running statistics to lag behind the weights).

    Args:
        dim: int, output channels.
        coordinates: bool, append (x, y) coordinate channels to the input
            (True).
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        grid: `(batch, h, w, channels)`; conditioning: `(batch, cond_dim)`.

    Output shape:
        `(batch, h, w, dim)`.

    Raises:
        TypeError / ValueError: `dim` is not a positive int, `coordinates`
            not a bool.

    Example:

    >>> import numpy as np
    >>> block = FiLMBlock(dim=8)
    >>> tuple(block(np.zeros((2, 4, 4, 3)), np.ones((2, 5))).shape)
    (2, 4, 4, 8)
    """

    def __init__(self, dim, coordinates=True, **kwargs):
        super().__init__(**kwargs)
        check_positive_int("dim", dim)
        check_bool("coordinates", coordinates)
        self.dim = int(dim)
        self.coordinates = coordinates
        policy = self.dtype_policy
        self.conv_in = keras.layers.Conv2D(
            self.dim, 1, activation="relu", dtype=policy, name="conv_in")
        self.conv = keras.layers.Conv2D(
            self.dim, 3, padding="same", dtype=policy, name="conv")
        self.norm = keras.layers.LayerNormalization(
            epsilon=1e-5, center=False, scale=False, dtype=policy,
            name="norm")
        self.film = FiLM(dtype=policy, name="film")

    def build(self, grid_shape, conditioning_shape):
        if len(grid_shape) != 4 or grid_shape[-1] is None:
            raise ValueError(
                "FiLMBlock expects a grid (batch, h, w, channels). "
                f"Received shape: {tuple(grid_shape)}."
            )
        grid_shape = tuple(grid_shape)
        extra = 2 if self.coordinates else 0
        self.conv_in.build(grid_shape[:-1] + (grid_shape[-1] + extra,))
        inner = grid_shape[:-1] + (self.dim,)
        self.conv.build(inner)
        self.norm.build(inner)
        self.film.build(inner, conditioning_shape)

    def call(self, grid, conditioning):
        if self.coordinates:
            grid = append_coordinates(grid)
        h = self.conv_in(grid)
        y = self.film(self.norm(self.conv(h)), conditioning)
        return h + ops.relu(y)

    def compute_output_shape(self, grid_shape, conditioning_shape):
        return tuple(grid_shape[:-1]) + (self.dim,)

    def get_config(self):
        config = super().get_config()
        config.update({"dim": self.dim, "coordinates": self.coordinates})
        return config


@keras.saving.register_keras_serializable(package="keras_simmim")
class FiLMFusion(keras.layers.Layer):
    """The question modulates the image backbone between its stages (FiLM).

    The text vector (mean of the real text tokens) drives a `FiLM` at each
    point where the backbone's adapter can split it
    (`BackboneAdapter.modulation_points`):

    - functional Keras CNNs (`keras.applications`, a functional conv
      stack, keras-hub's `ResNetBackbone`): after each stage, i.e. the last
      tensor at each resolution that no skip connection jumps over (for
      ResNet-50: the stem, then `conv2_block3_out` ... `conv5_block3_out`).
      The functional graph is run again with the same layer objects and a
      FiLM inserted after those layers: nothing is copied.
    - keras-hub `ViTBackbone`: the residual stream after every block but
      the last (all tokens, class token included), then the final grid.
    - keras-hub `SwinTransformerBackbone`: the tokens after every stage but
      the last (after its patch merging), then the final grid.

    With `placement="output"` (any backbone with an adapter: DeiT, DINOv2,
    your own), only the final feature grid is modulated, and the
    `FiLMBlock`s after it do the conditioned computation: the fallback for
    backbones that cannot be split. `placement="stages"` on such a
    backbone raises rather than silently falling back, because the two are
    different models.

    Then `num_layers` `FiLMBlock`s (width `dim`) and, for
    `output="vector"`, a read-out: coordinates, 1x1 conv to `dim`, ReLU,
    then either global max pooling (`readout="max_pool"`, the FiLM
    paper's) or every cell's features side by side (`readout="flatten"`,
    the Relation Networks paper's CNN+MLP baseline), then Dense(`dim`) +
    ReLU. Max pooling is size-agnostic but keeps only each channel's
    strongest cell; flattening keeps which cell said what, so the Dense
    layer reads an object's position directly. (x, y)
    coordinate channels go into every block and the read-out
    (`coordinates=True`): CNN and Swin grids carry no absolute position,
    and adding channels inside the backbone would change its weights; a
    ViT's tokens have position embeddings already, the coordinates cost
    two channels.

    The backbone's norm matters: layer norm over each cell's channels gives
    every cell, empty or not, the same mean and spread, which slows FiLM's
    learning of which object a question names compared with batch norm
    (measurements: `benchmarks/multimodal/results.md`).

    Every FiLM starts at gamma = 1, beta = 0: at step 0 the modulated
    backbone computes exactly what the backbone alone computes
    (`modulated_features`), so SimMIM pretraining is not undone.

    The image backbone is used, not owned: its weights are not this
    layer's weights (`fusion.weights` holds the FiLM and head weights
    only) and its config leaves the backbone out, so the model that owns
    both (`FusionClassifier`) saves the backbone once. Track the backbone
    in your model when you use this layer on its own.

    Args:
        image_backbone: the image backbone (any backbone with a SimMIM
            adapter; see `placement`).
        dim: int, width of the `FiLMBlock`s and the read-out (128).
        num_layers: int >= 0, `FiLMBlock`s after the backbone (2).
        placement: `"stages"` (between the backbone's stages) or
            `"output"` (the final feature grid only).
        coordinates: bool, (x, y) coordinate channels in the blocks and
            the read-out (True).
        output: `"vector"` (the read-out, `(batch, dim)`), `"grid"` (the
            conditioned grid after the blocks, for a relational module)
            or `"grid_and_vector"` (both, as a tuple: the grid for a
            relational module and the read-out as its shortcut).
        readout: `"max_pool"` (global max pooling over the cells) or
            `"flatten"` (the cells concatenated; needs a fixed image
            size) before the read-out's Dense; not for `output="grid"`.
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        images: `(batch, H, W, C)`, normalised as the backbone expects.
        text_tokens: `(batch, T, text_dim)`.
        text_mask: optional `(batch, T)`, True / 1 for real tokens.

    Output shape:
        `(batch, dim)` for `output="vector"`; for `output="grid"`,
        `(batch, h, w, dim)` (`(batch, h, w, backbone channels)` when
        `num_layers=0`); for `output="grid_and_vector"`, the tuple
        `(grid, vector)`.

    Raises:
        ValueError: `placement="stages"` for a backbone that cannot be split
            (the message names those that can), a bad `placement` or
            `output`, images and text of different batch sizes.
        TypeError: no adapter for the backbone; `dim` / `num_layers` /
            `coordinates` of the wrong type.

    Example:

    >>> import keras, numpy as np
    >>> inputs = keras.Input((16, 16, 3))
    >>> x = keras.layers.Conv2D(8, 3, strides=2, padding="same",
    ...                         activation="relu")(inputs)
    >>> x = keras.layers.Conv2D(16, 3, strides=2, padding="same",
    ...                         activation="relu")(x)
    >>> cnn = keras.Model(inputs, x)
    >>> fusion = FiLMFusion(cnn, dim=8, num_layers=1)
    >>> fusion.num_points
    2
    >>> images = np.random.default_rng(0).normal(size=(2, 16, 16, 3))
    >>> text = np.ones((2, 5, 6))
    >>> tuple(fusion(images, text).shape)
    (2, 8)
    >>> features = fusion.modulated_features(images, text)  # at step 0:
    >>> np.allclose(keras.ops.convert_to_numpy(features),   # the CNN's own
    ...             keras.ops.convert_to_numpy(cnn(images)))
    True
    """

    def __init__(self, image_backbone, dim=128, num_layers=2,
                 placement="stages", coordinates=True, output="vector",
                 readout="max_pool", **kwargs):
        super().__init__(**kwargs)
        check_positive_int("dim", dim)
        check_count("num_layers", num_layers)
        check_choice("placement", placement, PLACEMENTS)
        check_choice("output", output, OUTPUTS)
        check_choice("readout", readout, READOUTS)
        check_bool("coordinates", coordinates)
        self.dim = int(dim)
        self.num_layers = int(num_layers)
        self.placement = placement
        self.coordinates = coordinates
        self.output_kind = output  # `output` is a Layer property.
        if output == "grid" and readout != "max_pool":
            raise ValueError(
                f"`readout={readout!r}` shapes the vector output; with "
                "`output='grid'` there is no read-out. Leave `readout` at "
                "its default or use `output='vector'`.")
        self.readout = readout
        # A plain object, so Keras does not track the backbone here.
        self.adapter = get_adapter(image_backbone)
        if placement == "stages":
            points = self.adapter.modulation_points()
            if not points:
                raise ValueError(
                    "`placement='stages'` (FusionClassifier: "
                    "`film_placement`) cannot modulate a "
                    f"{type(image_backbone).__name__}: its adapter "
                    f"{type(self.adapter).__name__} cannot run it stage by "
                    "stage. Backbones that can be modulated between "
                    "stages: functional Keras CNNs (keras.applications, a "
                    "functional conv stack), keras_hub.models."
                    "ResNetBackbone, ViTBackbone and "
                    "SwinTransformerBackbone. Use placement='output' to "
                    "modulate the final feature grid only."
                )
            self.point_channels = tuple(points)
        else:
            self.point_channels = (None,)
        policy = self.dtype_policy
        self.films = [FiLM(dtype=policy, name=f"film_{i}")
                      for i in range(len(self.point_channels))]
        self.blocks = [
            FiLMBlock(self.dim, coordinates, dtype=policy, name=f"block_{i}")
            for i in range(self.num_layers)
        ]
        if output != "grid":
            self.readout_conv = keras.layers.Conv2D(
                self.dim, 1, activation="relu", dtype=policy,
                name="readout_conv")
            self.readout_dense = keras.layers.Dense(
                self.dim, activation="relu", dtype=policy,
                name="readout_dense")

    @property
    def num_points(self):
        """How many `FiLM`s modulate the backbone."""
        return len(self.films)

    @property
    def output_dim(self):
        """Width of the output vector (`output="vector"`)."""
        return self.dim

    def build(self, images_shape, text_tokens_shape, text_mask_shape=None):
        # The FiLMs at the stage ends know their channels now; the rest
        # (the grid's size and channels come from running the backbone)
        # builds on the first call, as Keras sub-layers do.
        conditioning = (None, text_tokens_shape[-1])
        for film, channels in zip(self.films, self.point_channels):
            if channels is not None:
                film.build((None, channels), conditioning)

    def _check(self, images, text_tokens, text_mask):
        check_fusion_inputs("images", images, "batch, height, width, "
                            "channels", text_tokens, text_mask)

    def _modulated(self, images, conditioning):
        embeddings = self.adapter.embed(images)
        if self.placement == "stages":
            return self.adapter.encode_modulated(
                embeddings,
                lambda index, x: self.films[index](x, conditioning))
        return self.films[0](self.adapter.encode(embeddings), conditioning)

    def modulated_features(self, images, text_tokens, text_mask=None):
        """The backbone's final feature grid `(batch, h, w, channels)` with
        the FiLMs applied (before the `FiLMBlock`s). At initialisation it
        equals `adapter.encode(adapter.embed(images))`."""
        self._check(images, text_tokens, text_mask)
        return self._modulated(images, pooled_text(text_tokens, text_mask))

    def call(self, images, text_tokens, text_mask=None):
        self._check(images, text_tokens, text_mask)
        conditioning = pooled_text(text_tokens, text_mask)
        grid = self._modulated(images, conditioning)
        for block in self.blocks:
            grid = block(grid, conditioning)
        if self.output_kind == "grid":
            return grid
        vector = self._read_out(grid)
        if self.output_kind == "grid_and_vector":
            return grid, vector
        return vector

    def _read_out(self, grid):
        if self.coordinates:
            grid = append_coordinates(grid)
        cells = self.readout_conv(grid)
        if self.readout == "max_pool":
            pooled = ops.max(cells, axis=(1, 2))
        else:
            if None in cells.shape[1:]:
                raise ValueError(
                    "`readout='flatten'` needs a fixed feature grid; the "
                    f"grid here has shape {tuple(cells.shape)}. Give the "
                    "image backbone a fixed `image_shape`, or use "
                    "`readout='max_pool'`.")
            pooled = ops.reshape(cells, (-1, math.prod(cells.shape[1:])))
        return self.readout_dense(pooled)

    def get_config(self):
        config = super().get_config()
        config.update({
            "dim": self.dim, "num_layers": self.num_layers,
            "placement": self.placement, "coordinates": self.coordinates,
            "output": self.output_kind, "readout": self.readout,
        })
        return config

    @classmethod
    def from_config(cls, config):
        if "image_backbone" not in config:
            raise ValueError(
                "A FiLMFusion config leaves its image backbone out (the "
                "model that owns both saves it once). Pass it back: "
                "`FiLMFusion.from_config({**config, 'image_backbone': "
                "backbone})`; FusionClassifier does this itself."
            )
        config = dict(config)
        if isinstance(config["image_backbone"], dict):
            config["image_backbone"] = keras.saving.deserialize_keras_object(
                config["image_backbone"])
        return cls(**config)
