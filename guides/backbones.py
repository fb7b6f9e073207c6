# %% [markdown]
# # Backbones
#
# **Author:** keras-simmim contributors<br>
# **Date created:** 2026/11/30<br>
# **Last modified:** 2026/11/30<br>
# **Description:** SimMIM on a Swin Transformer, a ResNet50, your own backbone and a Hugging Face checkpoint, and changing resolution for fine-tuning.<br>
# **Accelerator:** None (runs on a CPU; a GPU makes the full setting faster)
#
# [**View in Colab**](https://colab.research.google.com/github/keras-team/keras-simmim/blob/main/guides/backbones.ipynb)

# %% [markdown]
# ## Introduction
#
# SimMIM is not tied to one architecture: it masks random blocks of the
# input, runs the backbone, and regresses the masked pixels from the
# backbone's feature map with a 1x1 convolution and a pixel shuffle. What
# changes from one backbone to another is *where* the mask goes (after a
# transformer's patch embedding, or on the pixels of a CNN) and the output
# stride of the feature map.
#
# `keras_simmim.SimMIMModel(backbone)` works this out from the backbone
# itself, through a small *adapter* per backbone family. In this guide you
# will pretrain, on the same images:
#
# 1. a keras-hub **Swin Transformer** (the SimMIM paper's headline model),
# 2. a **ResNet50** from `keras.applications` (any functional CNN works),
# 3. **your own backbone**, through the adapter protocol,
#
# then move the Swin to a **new resolution** for fine-tuning, and load a
# **Hugging Face transformers** SimMIM checkpoint and check that it
# reconstructs as transformers does, to float32 rounding.

# %% [markdown]
# ## Setup
#
# Choose the backend before Keras is imported. This guide uses PyTorch (the
# Hugging Face part at the end needs torch installed anyway);
# `"tensorflow"` and `"jax"` work too.
#
# If keras-simmim is not installed (in Colab, say), the cell installs it
# with the extras the guides use, from `KERAS_SIMMIM`; where it already
# imports (your environment, this repository's CI) it installs nothing.

# %%
import importlib.util
import os
import subprocess
import sys

# Where pip gets keras-simmim when it is not installed: the repository (a
# placeholder address until the project is public), a path to a built wheel
# or a checkout, or "keras-simmim" once it is on PyPI.
KERAS_SIMMIM = "git+https://github.com/keras-team/keras-simmim"

if importlib.util.find_spec("keras_simmim") is None:
    if "://" in KERAS_SIMMIM:  # a URL: pip's "name[extras] @ URL" form
        requirement = f"keras-simmim[guides] @ {KERAS_SIMMIM}"
    else:  # a path, or the name on PyPI
        requirement = f"{KERAS_SIMMIM}[guides]"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", requirement],
                   check=True)
    importlib.invalidate_caches()
os.environ.setdefault("KERAS_BACKEND", "torch")

# %% [markdown]
# One switch sets how long everything trains. The quick setting takes a few
# steps per model: enough to see the API work, not enough for good
# reconstructions.

# %%
QUICK = True  # False: the full run (minutes to an hour on a CPU; guides/README.md)

# %%
import tempfile

import keras
import keras_hub
import matplotlib.pyplot as plt
import numpy as np

import keras_simmim
from keras_simmim import data
from keras_simmim.backbones import BackboneAdapter, register_adapter
from keras_simmim.visualization import COLUMNS, fixed_mask, reconstruction_grid

# Training images, and epochs of 16-image batches (the ResNet50 is the slow one).
NUM_IMAGES, EPOCHS, RESNET_EPOCHS, FINETUNE_EPOCHS = (
    (32, 2, 1, 1) if QUICK else (1024, 10, 3, 2))
keras.utils.set_random_seed(0)
losses = {}  # loss per epoch, by model

# %% [markdown]
# ## Data
#
# The built-in synthetic scenes (coloured shapes on smooth backgrounds,
# generated in code, nothing downloaded) at 64x64, normalised with ImageNet's
# mean and standard deviation. Four held-out images serve as previews.

# %%
pixels, _ = data.synthetic_scenes(NUM_IMAGES + 4, image_size=64, seed=0)
images = data.normalize(pixels)
train, preview = images[:-4], images[-4:]
print(train.shape, train.dtype)

plt.figure(figsize=(8, 2))
for i in range(4):
    plt.subplot(1, 4, i + 1)
    plt.imshow(pixels[-4 + i])
    plt.axis("off")
plt.show()

# %% [markdown]
# Two helpers: one pretrains a model with SimMIM's loss, the other draws the
# preview images' reconstructions with the same fixed mask for every model
# (`fixed_mask` draws it with NumPy, so the model's own mask stream is left
# alone). The columns are the original, the masked input, the raw
# reconstruction, and the visible pixels with the reconstruction pasted into
# the masked blocks. SimMIM's loss scores the masked blocks only, so the raw
# reconstruction of visible blocks may look like noise: the last column is
# what the model has learned.


# %%
def pretrain(name, model, epochs=EPOCHS, learning_rate=1e-3):
    # SimMIM's AdamW; biases, norms, position embeddings and the mask token
    # stay out of weight decay. (`model.compile()` alone uses lr 1e-4.)
    model.compile(optimizer=model.default_optimizer(learning_rate))
    history = model.fit(train, batch_size=16, epochs=epochs, verbose=0)
    losses[name] = history.history["loss"]
    return losses[name][-1]


def show(model, title):
    mask = fixed_mask(model, len(preview), seed=0)
    outputs = model({"images": preview, "mask": mask}, training=False)
    predicted = model.reconstruction_to_images(preview,
                                               outputs["reconstruction"])
    grid = reconstruction_grid(preview, predicted, outputs["mask"])
    plt.figure(figsize=(6, 6))
    plt.imshow(grid)
    plt.axis("off")
    plt.title(f"{title}\n" + " | ".join(COLUMNS), fontsize=9)
    plt.show()


# %% [markdown]
# ## A Swin Transformer
#
# keras-hub's `SwinTransformerBackbone`, tiny: patch 4, two stages of two
# blocks (token grids 16x16 and 8x8 at 64 px), window 4. The mask token
# replaces patch embeddings after the patch convolution and its norm, as in
# the SimMIM code. The feature map has output stride `4 * 2**(2 - 1) = 8`;
# the mask blocks are 16 pixels, as a multiple of the 4-pixel patch must be.
#
# keras-hub builds every block's attention with the configured window, even
# in a stage whose grid is smaller, so keep `window_size` at most the last
# stage's grid side (here 8).

# %%
import warnings

# keras-hub 0.32's Swin warns about a Keras mask its attention never uses.
warnings.filterwarnings("ignore", message="Layer 'attn'")
swin = keras_hub.models.SwinTransformerBackbone(
    image_shape=(64, 64, 3), patch_size=4, embed_dim=32, depths=(2, 2),
    num_heads=(2, 4), window_size=4,
)
swin_model = keras_simmim.SimMIMModel(swin, mask_patch_size=16, mask_ratio=0.6)
print("model patch", swin_model.patch_size, "| stride", swin_model.adapter.stride,
      "| mask grid", swin_model.mask_shape)
loss = pretrain("Swin", swin_model)
show(swin_model, f"Swin, loss {loss:.3f}")

# %% [markdown]
# `swin_model.backbone` *is* the `swin` object: the adapter calls the
# backbone's own layers, so no weights are copied and the pretrained backbone
# goes straight into keras-hub's `SwinTransformerImageClassifier` or into
# `keras_simmim.SimMIMClassifier`.

# %%
print(swin_model.backbone is swin)

# %% [markdown]
# ## A ResNet50 from `keras.applications`
#
# The SimMIM paper also pretrains a ResNet50. A CNN has no patch embedding,
# so the mask goes on the pixels: masked blocks are filled with a learned
# colour per channel (the model's mask token). Any functional Keras CNN
# works without an adapter of your own; its output stride is measured from a
# symbolic forward pass (32 here, a 2x2 feature map at 64 px).
#
# The mask grid defaults to the output stride; `mask_patch_size=16` makes it
# 16 pixels, finer than the feature map. (With `include_top=True` the
# classification head is left out of pretraining and stays yours.)

# %%
resnet = keras.applications.ResNet50(
    weights=None, include_top=False, input_shape=(64, 64, 3))
resnet_model = keras_simmim.SimMIMModel(resnet, mask_patch_size=16)
print(type(resnet_model.adapter).__name__, "| stride", resnet_model.adapter.stride,
      "| mask grid", resnet_model.mask_shape)
loss = pretrain("ResNet50", resnet_model, epochs=RESNET_EPOCHS)
show(resnet_model, f"ResNet50, loss {loss:.3f}")

# %% [markdown]
# ## Your own backbone
#
# A backbone that is not a functional model (a subclassed `keras.Model`), or
# one where you want the mask somewhere other than the pixels, needs an
# adapter: a subclass of `keras_simmim.backbones.BackboneAdapter` with two
# methods,
#
# - `embed(images)`: the backbone's first stage, up to where the mask token
#   goes, returning a channels-last grid `(batch, h, w, dim)`;
# - `encode(grid)`: the rest, returning the feature map
#   `(batch, H / stride, W / stride, features)`;
#
# and four numbers set in `__init__`: `image_shape`, `patch_size` (one cell
# of the token grid, in pixels), `stride` and `num_channels`.
# `register_adapter` adds it to the registry: `SimMIMModel` then picks it for
# every backbone of the listed types (the newest registration wins).
#
# Here is a small ConvMixer (patch embedding, then blocks of depthwise
# "spatial" and pointwise "channel" convolutions) and its adapter. The mask
# token replaces patch embeddings, as for a ViT.


# %%
@keras.saving.register_keras_serializable(package="guide")
class ConvMixer(keras.Model):
    def __init__(self, image_size=64, patch=4, dim=64, depth=3, **kwargs):
        super().__init__(**kwargs)
        self.image_size, self.patch = image_size, patch
        self.dim, self.depth = dim, depth
        self.stem = keras.layers.Conv2D(dim, patch, strides=patch)
        self.spatial = [keras.layers.DepthwiseConv2D(5, padding="same")
                        for _ in range(depth)]
        self.channel = [keras.layers.Conv2D(dim, 1) for _ in range(depth)]
        self.norms = [keras.layers.LayerNormalization() for _ in range(depth)]

    def body(self, grid):
        for spatial, channel, norm in zip(self.spatial, self.channel,
                                          self.norms):
            grid = grid + keras.activations.gelu(spatial(grid))
            grid = norm(keras.activations.gelu(channel(grid)))
        return grid

    def call(self, images):
        return self.body(self.stem(images))

    def get_config(self):
        return {**super().get_config(), "image_size": self.image_size,
                "patch": self.patch, "dim": self.dim, "depth": self.depth}


@register_adapter
class ConvMixerAdapter(BackboneAdapter):
    backbone_types = (ConvMixer,)

    def __init__(self, backbone):
        super().__init__(backbone)
        size = backbone.image_size
        self.image_shape = (size, size, 3)
        self.patch_size = self.stride = backbone.patch
        self.num_channels = 3

    def embed(self, images):
        return self.backbone.stem(images)

    def encode(self, embeddings):
        return self.backbone.body(embeddings)


mixer = ConvMixer()
mixer(np.zeros((1, 64, 64, 3)))  # a subclassed model builds when first called
mixer_model = keras_simmim.SimMIMModel(mixer, mask_patch_size=16)
print(type(mixer_model.adapter).__name__, "| mask grid", mixer_model.mask_shape)
loss = pretrain("ConvMixer", mixer_model)
show(mixer_model, f"ConvMixer, loss {loss:.3f}")

# %% [markdown]
# Register the adapter (and the backbone class, as for any custom Keras
# object) before loading a saved model that uses it.
#
# ## A new resolution for fine-tuning
#
# SimMIM pretrains its Swin at 192 px with window 6 and fine-tunes at 224 px
# with window 7. `keras_simmim.backbones.resize` does this for keras-hub ViT,
# DeiT and Swin backbones: it builds a new backbone of the same class at the
# new size and copies every weight, interpolating bicubically those that
# depend on the size (ViT position embeddings; Swin's relative position bias
# tables, one `(2W - 1) x (2W - 1)` grid per head), as SimMIM's and Hugging
# Face's code do. The pretrained backbone is left as it was.
#
# Here: the pretrained Swin from 64 px with window 4 to 96 px with window 6
# (stage grids 24 and 12).

# %%
swin_96 = keras_simmim.backbones.resize(swin, (96, 96, 3), window_size=6)
print(swin_96.image_shape, "window", swin_96.window_size)


def bias_table(backbone):
    # First block's relative position bias table, first head, as a grid.
    table = [w for w in backbone.weights
             if "relative_position_bias_table" in w.path][0]
    values = keras.ops.convert_to_numpy(table)[:, 0]
    side = int(np.sqrt(len(values)))
    return values.reshape(side, side)


plt.figure(figsize=(6, 3))
for i, (backbone, name) in enumerate([(swin, "window 4"),
                                      (swin_96, "window 6")]):
    plt.subplot(1, 2, i + 1)
    plt.imshow(bias_table(backbone), cmap="coolwarm")
    plt.title(f"{name}: relative position bias", fontsize=9)
    plt.axis("off")
plt.show()

# %% [markdown]
# The resized backbone fine-tunes like any other: `SimMIMClassifier`
# average-pools its final feature map and adds a linear head, and
# `compile_for_finetuning` is SimMIM's recipe (layer-wise learning-rate
# decay, warm-up then cosine). The synthetic scenes are labelled with the
# kind of their largest shape, a task these few steps only start on: this
# shows the API, not a gain. What pretraining buys downstream is measured on
# real handwritten digits in `benchmarks/quality` (the README's table).
#
# `SimMIMModel.from_preset(dir, image_shape=...)` and
# `keras_simmim.backbones.load_backbone(dir, image_shape=...)` resize the
# same way when loading a saved preset.

# %%
pixels_96, labels_96 = data.synthetic_scenes(NUM_IMAGES, image_size=96, seed=1)
classifier = keras_simmim.SimMIMClassifier(swin_96, num_classes=3)
classifier.compile_for_finetuning(
    learning_rate=1e-3, total_steps=FINETUNE_EPOCHS * NUM_IMAGES // 16)
history = classifier.fit(data.normalize(pixels_96), labels_96, batch_size=16,
                         epochs=FINETUNE_EPOCHS, verbose=0)
print("fine-tuning loss per epoch:", np.round(history.history["loss"], 3))

# %% [markdown]
# ## A Hugging Face transformers checkpoint
#
# `SimMIMModel.from_preset(directory)` also reads a local directory written
# by transformers' `save_pretrained` for `ViTForMaskedImageModeling`,
# `DeiTForMaskedImageModeling` or `SwinForMaskedImageModeling` (the layout of
# the released SimMIM Swin checkpoints): the backbone goes through keras-hub's
# converter, the mask token and the decoder are converted by keras-simmim.
#
# To stay offline, we make a checkpoint: a tiny transformers ViT with random
# weights (SimMIM needs `encoder_stride == patch_size` for a ViT), saved to a
# temporary folder. transformers starts the mask token and the decoder bias
# at zero; we randomise them so that the comparison below tests them too.

# %%
import torch
import transformers

torch.manual_seed(0)
hf = transformers.ViTForMaskedImageModeling(transformers.ViTConfig(
    image_size=64, patch_size=8, encoder_stride=8, hidden_size=64,
    num_hidden_layers=2, num_attention_heads=2, intermediate_size=128,
)).eval()
with torch.no_grad():
    hf.vit.embeddings.mask_token.normal_()
    hf.decoder[0].bias.normal_()
checkpoint = tempfile.mkdtemp()
hf.save_pretrained(checkpoint)
print(sorted(os.listdir(checkpoint)))

vit_model = keras_simmim.SimMIMModel.from_preset(checkpoint, mask_patch_size=16)
print(type(vit_model.backbone).__name__, "| mask grid", vit_model.mask_shape,
      "| mask_patch_size", vit_model.mask_patch_size)

# %% [markdown]
# Same images, same mask. transformers takes channels-first pixels and the
# mask as `bool_masked_pos`, one flag per patch, row-major; keras-simmim
# takes channels-last images and accepts the same flat mask.

# %%
mask = fixed_mask(vit_model, len(preview), seed=0)
flat_mask = mask.reshape(len(preview), -1)
with torch.no_grad():
    want = hf(torch.tensor(preview.transpose(0, 3, 1, 2)),
              bool_masked_pos=torch.tensor(flat_mask))
batch = {"images": preview, "mask": flat_mask}
got = vit_model(batch)
ours = keras.ops.convert_to_numpy(got["reconstruction"])
theirs = want.reconstruction.numpy().transpose(0, 2, 3, 1)
print("largest reconstruction difference:", np.abs(ours - theirs).max())
print("loss: transformers", float(want.loss), "| keras-simmim",
      float(keras.ops.convert_to_numpy(vit_model.compute_loss(x=batch, y_pred=got))))

plt.figure(figsize=(6, 3))
for i, (picture, name) in enumerate([(theirs, "transformers"),
                                     (ours, "keras-simmim")]):
    plt.subplot(1, 2, i + 1)
    plt.imshow(data.denormalize(picture[0]))
    plt.title(name, fontsize=9)
    plt.axis("off")
plt.show()

# %% [markdown]
# The converted model keeps training with SimMIM's loss under Keras, on any
# backend, and its `backbone` is a keras-hub `ViTBackbone`.

# %%
loss = pretrain("ViT (transformers)", vit_model)
show(vit_model, f"ViT from a transformers checkpoint, loss {loss:.3f}")

# %% [markdown]
# The four models' training losses side by side (L1 on the masked pixels of
# normalised images; one point per epoch):

# %%
plt.figure(figsize=(5, 3))
for name, history in losses.items():
    plt.plot(range(1, len(history) + 1), history, "o-", label=name)
plt.xlabel("epoch")
plt.ylabel("SimMIM loss")
plt.legend()
plt.show()

# %% [markdown]
# ## Next steps
#
# - `keras_simmim.SimMIMModel(backbone, ...)` also takes keras-hub's
#   `ViTBackbone`, `DeiTBackbone`, `DINOV2Backbone` and `ResNetBackbone`.
# - `model.save_to_preset(folder)` writes a folder that
#   `SimMIMModel.from_preset` and `keras_hub.models.Backbone.from_preset` load.
# - With `QUICK = False` each model trains on 1,024 images for 10 epochs
#   (the ResNet50 for 3); reconstructions of the masked blocks then follow
#   the background gradients and the larger shapes.
