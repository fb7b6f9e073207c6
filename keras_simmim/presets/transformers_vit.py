"""Loads Hugging Face `ViTForMaskedImageModeling` checkpoints.

The backbone goes through keras-hub's own transformers converter. What is
SimMIM's own is converted here: the mask token (`vit.embeddings.mask_token`)
and the decoder (`decoder.0.weight` of shape `(s*s*C, D, 1, 1)` and its bias).
PyTorch's pixel shuffle reads output channel `c*s*s + i*s + j`; our
channels-last `PixelShuffle` reads `(i*s + j)*C + c`, so the decoder's
output channels are permuted.
"""

import json
import os

import keras_hub
import numpy as np

MASK_TOKEN_KEY = "vit.embeddings.mask_token"
DECODER_KERNEL_KEY = "decoder.0.weight"
DECODER_BIAS_KEY = "decoder.0.bias"


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
                    "ViTForMaskedImageModeling checkpoint?"
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
    if model_type != "vit":
        raise ValueError(
            f"Transformers checkpoints of model_type={model_type!r} are not "
            "supported yet; supported: 'vit' (ViTForMaskedImageModeling)."
        )
    patch_size = config["patch_size"]
    stride = config.get("encoder_stride", patch_size)
    if stride != patch_size:
        raise ValueError(
            "SimMIM on ViT needs encoder_stride == patch_size (as transformers "
            f"requires with a mask). Received encoder_stride={stride}, "
            f"patch_size={patch_size} in {preset!r}."
        )
    channels = config.get("num_channels", 3)
    if channels != 3:
        raise ValueError(
            "keras-hub's ViT converter supports 3-channel checkpoints only. "
            f"Received num_channels={channels} in {preset!r}."
        )
    backbone = keras_hub.models.ViTBackbone.from_preset(
        preset, layer_norm_epsilon=config.get("layer_norm_eps", 1e-12)
    )
    image_size = backbone.image_shape[:2]
    kwargs.setdefault(
        "mask_patch_size", default_mask_patch_size(image_size, patch_size)
    )
    model = model_cls(backbone, **kwargs)
    tensors = read_safetensors(
        preset, [MASK_TOKEN_KEY, DECODER_KERNEL_KEY, DECODER_BIAS_KEY]
    )
    model.mask_token.token.assign(tensors[MASK_TOKEN_KEY].reshape(-1))
    order = pytorch_to_channels_last_order(stride, channels)
    kernel = tensors[DECODER_KERNEL_KEY][:, :, 0, 0][order]  # (out, D)
    projection = model.head.projection
    projection.kernel.assign(kernel.T[None, None])
    projection.bias.assign(tensors[DECODER_BIAS_KEY][order])
    return model
