# %% [markdown]
# # Video and audio
#
# **Author:** keras-simmim contributors<br>
# **Date created:** 2026/12/08<br>
# **Last modified:** 2026/12/08<br>
# **Description:** SimMIM beyond images: tube masking on clips with keras-hub's VideoPrism, and masked spectrogram modeling on spoken keywords with a ViT.<br>
# **Accelerator:** None (runs on a CPU; a GPU makes the full setting faster)
#
# [**View in Colab**](https://colab.research.google.com/github/keras-team/keras-simmim/blob/main/guides/video_and_audio.ipynb)

# %% [markdown]
# ## Introduction
#
# Masked modeling is not only for images. VideoMAE hides 90% of a clip in
# *tubes* (the same patches in every frame, so a model cannot copy a hidden
# patch from the next frame) and learns from the rest; AudioMAE and SSAST
# hide patches of a log-mel spectrogram, which is an image of sound. In
# keras-simmim both are the same `SimMIMModel`, masking layer, head and
# loss as for images:
#
# * a **clip** `(batch, frames, H, W, C)` on keras-hub's `VideoPrismBackbone`
#   is masked on its `(frames, H / p, W / p)` token grid, and the head
#   decodes every frame;
# * a **spectrogram** is an image with frequency on the rows and time on the
#   columns, so a keras-hub `ViTBackbone` takes it as it is (its patch grid
#   need not be square), and the `"time"` / `"frequency"` strategies mask
#   whole columns / rows of patches.
#
# Both datasets are built on your machine: scanned digits that move and
# bounce (`data.moving_digits`) and keywords spoken by the eSpeak NG speech
# synthesiser (`data.spoken_words`).

# %% [markdown]
# ## Setup
#
# Choose the backend before Keras is imported; this guide uses JAX, and
# `"tensorflow"` and `"torch"` work too. If keras-simmim is not installed
# (in Colab, say), the cell installs it with the extras the guides use
# (eSpeak NG comes as the `espeakng-loader` wheel).

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
os.environ.setdefault("KERAS_BACKEND", "jax")

# %% [markdown]
# One switch sets how long everything trains. The quick setting takes a few
# steps per model: enough to see the API work, not enough for good
# reconstructions or a gain from pretraining.

# %%
QUICK = True  # False: the full run (longer; guides/README.md)

# %%
import keras
import keras_hub
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Audio, display

import keras_simmim
from keras_simmim import data, downstream
from keras_simmim.visualization import clip_strip, fixed_mask

CLIPS, EPOCHS = (64, 2) if QUICK else (1024, 40)
keras.utils.set_random_seed(0)

# %% [markdown]
# ## Video: moving digits
#
# Each clip is one of scikit-learn's scanned digits (the fixed training
# split of `data.load_digits`) moving across a 32x32 canvas for 8 frames and
# bouncing off the edges. Its label here is the direction it starts moving
# in, which no single frame shows.

# %%
clips, directions = data.moving_digits(
    CLIPS, frames=8, image_size=32, seed=0, labels="direction")
val_clips, val_directions = data.moving_digits(
    CLIPS // 2, frames=8, image_size=32, seed=1, split="validation",
    labels="direction")
videos, val_videos = data.normalize(clips), data.normalize(val_clips)
print(videos.shape, "directions:", data.DIRECTIONS)

plt.figure(figsize=(8, 1.2))
for t in range(8):
    plt.subplot(1, 8, t + 1)
    plt.imshow(clips[0, t, ..., 0], cmap="gray")
    plt.axis("off")
plt.suptitle(f"clip 0: moving {data.DIRECTIONS[directions[0]]}", fontsize=9)
plt.show()

# %% [markdown]
# A small VideoPrism: every frame is cut into 8x8-pixel patches (a 4x4
# grid), two spatial transformer blocks mix the patches of a frame, two
# temporal blocks mix each patch position across the frames. SimMIM puts
# its mask token on the patch embeddings of every frame; tube masking at
# 0.75 hides the same 12 of 16 patches in all 8 frames.

# %%
def videoprism():
    return keras_hub.models.VideoPrismBackbone(
        num_frames=8, patch_size=8, hidden_dim=64, intermediate_dim=128,
        num_heads=4, num_spatial_layers=2, num_temporal_layers=2,
        num_auxiliary_layers=0, image_shape=(32, 32, 1))


def pretrain(model, x):
    # SimMIM's AdamW; the loss is the model's own.
    model.compile(optimizer=model.default_optimizer(2e-3))
    losses = model.fit(x, batch_size=32, epochs=EPOCHS,
                       verbose=0).history["loss"]
    print(f"loss {losses[0]:.3f} -> {losses[-1]:.3f}")


video_model = keras_simmim.SimMIMModel(
    videoprism(), mask_patch_size=8, mask_ratio=0.75, mask_strategy="tube",
    seed=0)
print("mask grid (frames, rows, cols):", video_model.mask_shape)
pretrain(video_model, videos)

# %% [markdown]
# The strips show a held-out clip: the frames, the tube-masked input (the
# same patches grey in every frame), and the visible pixels with the
# model's reconstruction pasted into the masked patches.

# %%
mask = fixed_mask(video_model, 1, seed=0)
outputs = video_model({"images": val_videos[:1], "mask": mask},
                      training=False)
strip = clip_strip(val_videos[0], outputs["reconstruction"][0],
                   outputs["mask"][0])
plt.figure(figsize=(10, 4))
plt.imshow(strip)
plt.axis("off")
plt.title("original | tube-masked | visible + reconstruction (rows)",
          fontsize=9)
plt.show()

# %% [markdown]
# Is the pretrained encoder's view of motion better than a random one? A
# linear probe on frozen features, pooled over frames and patches, with the
# same random-init VideoPrism as the baseline. (`benchmarks/video/` runs
# this with tuned settings, few labels and several seeds.)

# %%
def probe_accuracy(backbone, x, y, val_x, val_y, num_classes):
    features = downstream.extract_features(backbone, x, batch_size=64)
    val_features = downstream.extract_features(backbone, val_x, batch_size=64)
    head = downstream.fit_linear_probe(features, y, num_classes=num_classes,
                                       learning_rate=1e-2)
    return head.evaluate(val_features, val_y, verbose=0)[1]


keras.utils.set_random_seed(0)
for name, backbone in (("random init", videoprism()),
                       ("SimMIM", video_model.backbone)):
    accuracy = probe_accuracy(backbone, videos, directions, val_videos,
                              val_directions, num_classes=4)
    print(f"{name}: direction probe accuracy {accuracy:.1%}")

# %% [markdown]
# For fine-tuning, `keras_simmim.SimMIMClassifier(video_model.backbone,
# num_classes=4)` pools the features over time and space and trains with
# `compile_for_finetuning`, as for images.
#
# ## Audio: spoken keywords
#
# `data.spoken_words` speaks Speech Commands' ten keywords with eSpeak NG:
# 24 voices (the train, validation and test splits share none), random
# rate, pitch and loudness, background noise, 1-second clips at 16 kHz.
# Listen to one:

# %%
WORDS = data.SPEECH_COMMANDS_WORDS
waveforms, words = data.spoken_words(CLIPS, seed=0)
val_waveforms, val_words = data.spoken_words(CLIPS // 2, seed=1,
                                             split="validation")
print(waveforms.shape, "first word:", WORDS[words[0]])
display(Audio(waveforms[0], rate=16000))

# %% [markdown]
# The model sees a log-mel spectrogram: Keras's own
# `keras.layers.MelSpectrogram` (25 ms windows every 10 ms), 64 mel bands
# on the rows (highest at the top) and 96 frames on the columns,
# standardised per clip.

# %%
mels = data.spectrograms(waveforms, num_mels=64, frames=96)
val_mels = data.spectrograms(val_waveforms, num_mels=64, frames=96)
plt.figure(figsize=(10, 2))
for i in range(4):
    plt.subplot(1, 4, i + 1)
    plt.imshow(mels[i, ..., 0], cmap="magma", aspect="auto")
    plt.title(WORDS[words[i]], fontsize=9)
    plt.axis("off")
plt.show()

# %% [markdown]
# A ViT with 8x8 patches sees an 8x12 grid. AudioMAE masks 80% of the
# patches at random; `mask_strategy="time"` would hide whole time steps
# instead, `"frequency"` whole bands.

# %%
def audio_vit():
    return keras_hub.models.ViTBackbone(
        image_shape=(64, 96, 1), patch_size=8, num_layers=4, num_heads=4,
        hidden_dim=64, mlp_dim=128)


audio_model = keras_simmim.SimMIMModel(
    audio_vit(), mask_patch_size=8, mask_ratio=0.8, seed=0)
print("mask grid:", audio_model.mask_shape)
pretrain(audio_model, mels)

mask = fixed_mask(audio_model, 1, seed=0)
outputs = audio_model({"images": val_mels[:1], "mask": mask}, training=False)
pixel_mask = keras.ops.convert_to_numpy(audio_model.pixel_mask(mask))[0]
masked = np.where(pixel_mask, np.nan, val_mels[0, ..., 0])
pasted = np.where(pixel_mask, keras.ops.convert_to_numpy(
    outputs["reconstruction"])[0, ..., 0], val_mels[0, ..., 0])
plt.figure(figsize=(10, 2))
for i, (title, image) in enumerate((("spectrogram", val_mels[0, ..., 0]),
                                    ("80% masked", masked),
                                    ("visible + reconstruction", pasted))):
    plt.subplot(1, 3, i + 1)
    plt.imshow(image, cmap="magma", aspect="auto")
    plt.title(title, fontsize=9)
    plt.axis("off")
plt.show()

# %% [markdown]
# The same probe, on the keywords:

# %%
keras.utils.set_random_seed(0)
for name, backbone in (("random init", audio_vit()),
                       ("SimMIM", audio_model.backbone)):
    accuracy = probe_accuracy(backbone, mels, words, val_mels, val_words,
                              num_classes=10)
    print(f"{name}: keyword probe accuracy {accuracy:.1%}")

# %% [markdown]
# ## Next steps
#
# * `benchmarks/video/run.py` and `benchmarks/audio/run.py` measure probe,
#   k-NN and fine-tuning with 5% and 10% of the labels over paired seeds.
# * `docs/api.md` ("Video and audio") lists the masking options:
#   space-time blocks with `mask_patch_size=(t, p, p)`, tube masking up to
#   0.95, time and frequency bands.
