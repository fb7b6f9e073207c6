"""Loads Hugging Face `*ForMaskedImageModeling` checkpoints.

Supported: `ViTForMaskedImageModeling` (model_type "vit"),
`DeiTForMaskedImageModeling` ("deit") and `SwinForMaskedImageModeling`
("swin", the layout of the released SimMIM Swin checkpoints).

The backbone goes through keras-hub's own transformers converter. What is
SimMIM's own is converted here: the mask token
(`<prefix>.embeddings.mask_token`) and the decoder (`decoder.0.weight` of
shape `(s*s*C, D, 1, 1)` and its bias). PyTorch's pixel shuffle reads output
channel `c*s*s + i*s + j`; our channels-last `PixelShuffle` reads
`(i*s + j)*C + c`, so the decoder's output channels are permuted.
"""

import json
import os

import keras_hub
import numpy as np

from keras_simmim.presets.preset_io import at_size

DECODER_KERNEL_KEY = "decoder.0.weight"
DECODER_BIAS_KEY = "decoder.0.bias"


def _plain_stride(config):
    return config["patch_size"]


def _swin_stride(config):
    return config["patch_size"] * 2 ** (len(config["depths"]) - 1)


def _swin_checks(config):
    if config.get("use_absolute_embeddings", False):
        return "use_absolute_embeddings=True (keras-hub's Swin has none)"
    eps = config.get("layer_norm_eps", 1e-5)
    if eps != 1e-5:
        return f"layer_norm_eps={eps} (keras-hub's Swin uses 1e-5)"
    return None


# model_type -> (backbone class, weight prefix, expected encoder stride,
# backbone overrides, extra check returning a problem or None).
FAMILIES = {
    "vit": (
        keras_hub.models.ViTBackbone,
        "vit",
        _plain_stride,
        lambda c: {"layer_norm_epsilon": c.get("layer_norm_eps", 1e-12)},
        lambda c: None,
    ),
    "deit": (
        keras_hub.models.DeiTBackbone,
        "deit",
        _plain_stride,
        lambda c: {},
        lambda c: None,
    ),
    "swin": (
        keras_hub.models.SwinTransformerBackbone,
        "swin",
        _swin_stride,
        lambda c: {},
        _swin_checks,
    ),
}


def read_safetensors(preset, keys):
    """Reads `keys` from the (possibly sharded) safetensors of `preset`."""
    from safetensors import safe_open

    index_path = os.path.join(preset, "model.safetensors.index.json")
    if os.path.exists(index_path):
        with open(index_path) as f:
            weight_map = json.load(f)["weight_map"]
    else:
        weight_map = {key: "model.safetensors" for key in keys}
    tensors = {}
    for key in keys:
        if key not in weight_map:
            raise ValueError(f"Checkpoint in {preset!r} has no tensor {key!r}.")
        path = os.path.join(preset, weight_map[key])
        if not os.path.exists(path):
            raise ValueError(f"Checkpoint file {path!r} does not exist.")
        with safe_open(path, framework="numpy") as f:
            if key not in f.keys():
                raise ValueError(
                    f"Checkpoint file {path!r} has no tensor {key!r}; is it a "
                    "*ForMaskedImageModeling checkpoint?"
                )
            tensors[key] = f.get_tensor(key)
    return tensors


def pytorch_to_channels_last_order(stride, channels):
    """Index array: our output channel k reads PyTorch channel order[k]."""
    order = np.empty(stride * stride * channels, dtype="int64")
    for i in range(stride):
        for j in range(stride):
            for c in range(channels):
                order[(i * stride + j) * channels + c] = (
                    c * stride * stride + i * stride + j
                )
    return order


def default_mask_patch_size(image_size, patch_size, preferred=32):
    """A mask patch size for a checkpoint that does not record one.

    The largest multiple of `patch_size`, at most `preferred` (SimMIM's 32),
    that divides both image sides and leaves at least two blocks along each
    side (one block would mask the whole image); the patch size itself if
    none does.
    """
    height, width = image_size
    best = patch_size
    for size in range(patch_size, max(preferred, patch_size) + 1, patch_size):
        fits = height % size == 0 and width % size == 0
        if fits and height // size >= 2 and width // size >= 2:
            best = size
    return best


def load_transformers(model_cls, preset, config, **kwargs):
    """Builds `model_cls` from a transformers directory with `config`."""
    model_type = config.get("model_type")
    if model_type not in FAMILIES:
        raise ValueError(
            f"Transformers checkpoints of model_type={model_type!r} are not "
            f"supported; supported: {sorted(FAMILIES)} "
            "(ViT/DeiT/SwinForMaskedImageModeling)."
        )
    backbone_cls, prefix, expected_stride, overrides, check = FAMILIES[
        model_type
    ]
    patch_size = config["patch_size"]
    stride = config.get("encoder_stride", 32)
    if stride != expected_stride(config):
        raise ValueError(
            f"A {model_type} checkpoint needs encoder_stride="
            f"{expected_stride(config)} (its feature map's stride) for the "
            f"decoder to rebuild the image. Received encoder_stride={stride}, "
            f"patch_size={patch_size} in {preset!r}."
        )
    problems = [check(config)]
    channels = config.get("num_channels", 3)
    if channels != 3:
        problems.append(f"num_channels={channels} (keras-hub converts 3)")
    if config.get("hidden_act", "gelu") != "gelu":
        problems.append(f"hidden_act={config['hidden_act']!r} (needs 'gelu')")
    problems = [p for p in problems if p]
    if problems:
        raise ValueError(
            f"Cannot convert the {model_type} checkpoint in {preset!r}: "
            + "; ".join(problems)
            + "."
        )
    backbone = backbone_cls.from_preset(preset, **overrides(config))
    backbone = at_size(
        backbone, kwargs.get("image_shape"), kwargs.pop("window_size", None)
    )
    image_size = tuple(backbone.image_shape[:2])
    kwargs.setdefault(
        "mask_patch_size", default_mask_patch_size(image_size, patch_size)
    )
    model = model_cls(backbone, **kwargs)
    mask_token_key = f"{prefix}.embeddings.mask_token"
    tensors = read_safetensors(
        preset, [mask_token_key, DECODER_KERNEL_KEY, DECODER_BIAS_KEY]
    )
    model.mask_token.token.assign(tensors[mask_token_key].reshape(-1))
    order = pytorch_to_channels_last_order(stride, channels)
    kernel = tensors[DECODER_KERNEL_KEY][:, :, 0, 0][order]  # (out, D)
    projection = model.head.projection
    projection.kernel.assign(kernel.T[None, None])
    projection.bias.assign(tensors[DECODER_BIAS_KEY][order])
    return model
