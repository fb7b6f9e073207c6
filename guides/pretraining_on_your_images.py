# %% [markdown]
# # Pretraining on your own images
#
# **Author:** keras-simmim contributors<br>
# **Date created:** 2026/11/30<br>
# **Last modified:** 2026/11/30<br>
# **Description:** SimMIM-pretrain a small ViT on a folder of unlabeled photos, resume it, save it as a preset and use it in keras-hub.<br>
# **Accelerator:** None (runs on a CPU; a GPU makes the full setting faster)
#
# [**View in Colab**](https://colab.research.google.com/github/keras-team/keras-simmim/blob/main/guides/pretraining_on_your_images.ipynb)

# %% [markdown]
# ## Introduction
#
# [SimMIM](https://arxiv.org/abs/2111.09886) learns visual features without
# labels: it hides random square blocks of an image and trains a vision
# backbone, plus a one-layer pixel decoder, to paint the hidden pixels back.
# All it needs is a pile of images, which makes it a natural first step when
# you have many photos of your own and few (or no) labels.
#
# This guide walks through the whole loop on a folder of real photographs:
#
# 1. load a folder of image files with `keras_simmim.data.from_folder`,
#    using random resized crops to get many training views out of few photos;
# 2. wrap a keras-hub `ViTBackbone` in `keras_simmim.SimMIMModel` and train
#    it with the ordinary `fit()`, watching reconstructions with the
#    `ReconstructionPreview` callback;
# 3. survive an interruption: checkpoint every epoch and resume where
#    training stopped;
# 4. save a preset and load the pretrained backbone into its keras-hub task,
#    `keras_hub.models.ViTImageClassifier`.
#
# Nothing here downloads anything: the photos are the sample images that
# ship inside scikit-image.

# %% [markdown]
# ## Setup
#
# Keras reads the backend when it is first imported, so we choose it before
# that. This guide uses JAX; `"tensorflow"` and `"torch"` work too.
# `setdefault` keeps a backend you already chose outside the notebook (for
# example `KERAS_BACKEND=torch jupyter lab`).
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
os.environ.setdefault("KERAS_BACKEND", "jax")

# %%
import tempfile

import keras
import keras_hub
import matplotlib.pyplot as plt
import numpy as np
import skimage.data
from PIL import Image

import keras_simmim
from keras_simmim import data
from keras_simmim import training
from keras_simmim import visualization

print("Keras", keras.__version__, "on", keras.backend.backend())

# %% [markdown]
# One switch sets the length of the run. `QUICK = True` trains for three
# short epochs, enough to run every step of the guide in about a minute; the
# reconstructions are then still noise. Set it to `False` for 3,000 training
# steps, enough to see the loss fall and the model learn to fill the holes.

# %%
QUICK = True  # False: the full run (minutes to an hour on a CPU; guides/README.md)

EPOCHS = 3 if QUICK else 120  # in all, over two fit() calls
STEPS_PER_EPOCH = 6 if QUICK else 25
PREVIEW_EVERY = 1 if QUICK else 20  # epochs between reconstruction previews
BATCH_SIZE = 16
IMAGE_SIZE = 64

keras.utils.set_random_seed(0)
workdir = tempfile.mkdtemp(prefix="simmim-guide-")
print("Writing everything under", workdir)

# %% [markdown]
# ## A folder of photos
#
# Your photos would live in a folder such as `~/Pictures/garden/`, maybe in
# subfolders. To stand in for it, we copy the sample photographs that are
# bundled with scikit-image into a temporary folder: an astronaut, a cat, a
# cup of coffee, coins, the Moon, a retina, textures of brick, grass and
# gravel, and so on. We only copy files that are present on disk (some
# scikit-image samples are fetched on demand, and this guide never
# downloads).
#
# On the way, each photo is shrunk to at most 256 pixels on its longer side
# and re-encoded with Pillow. Both are worth doing with your own photos too:
# the input pipeline decodes a file every time it draws a view of it, so a
# folder of 12-megapixel originals would keep the CPU busy decoding pixels
# that a 64x64 crop throws away; and re-encoding drops the colour profiles
# some files embed, for which TensorFlow's PNG decoder prints a (harmless)
# warning every time it reads them.
#
# Two photos are kept out of the training folder: we will use them to look
# at reconstructions of images the model has never seen.

# %%
SAMPLES = [
    "astronaut", "chelsea", "rocket", "motorcycle_left", "motorcycle_right",
    "horse", "hubble_deep_field", "retina", "coins", "camera", "moon",
    "brick", "grass", "gravel", "ihc", "cell", "page", "coffee",
]
HELD_OUT = {"coffee", "motorcycle_right"}

photos_dir = os.path.join(workdir, "photos")
held_out_dir = os.path.join(workdir, "held_out")
for folder in (photos_dir, held_out_dir):
    os.makedirs(folder)
for name in SAMPLES:
    for extension in (".png", ".jpg"):
        source = os.path.join(skimage.data.data_dir, name + extension)
        if os.path.exists(source):
            target = held_out_dir if name in HELD_OUT else photos_dir
            photo = Image.open(source)
            photo.thumbnail((256, 256))
            photo.save(os.path.join(target, name + extension), icc_profile=None)
print(len(os.listdir(photos_dir)), "training photos:", sorted(os.listdir(photos_dir)))
print("held out:", sorted(os.listdir(held_out_dir)))

# %% [markdown]
# The photos come in every size and in colour or grey, as a real folder does.

# %%
paths = data.list_image_files(photos_dir)
columns = 6
rows = -(-len(paths) // columns)
fig, axes = plt.subplots(rows, columns, figsize=(2 * columns, 2 * rows))
for ax in axes.flat:
    ax.axis("off")
for ax, path in zip(axes.flat, paths):
    ax.imshow(plt.imread(path), cmap="gray")
    ax.set_title(os.path.basename(path), fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Loading the folder with `from_folder`
#
# `keras_simmim.data.from_folder` lists the folder recursively, decodes every
# file once to skip unreadable ones (with a warning naming the file), and
# returns a batched `tf.data.Dataset` of normalised images that `fit()`
# accepts on every backend. It needs no labels. Mixed grey and colour files
# become RGB (`channels=3`), and the pixels are normalised with ImageNet's
# mean and standard deviation.
#
# With `augment=True` each image is a new random resized crop every time it
# is drawn, then flipped half of the time. SimMIM's default crop keeps 67% to
# 100% of the image's area; with a handful of photos we widen it to 20%-100%
# (`scale=(0.2, 1.0)`), so each photo yields many different views: close-ups
# of the cat's fur, the astronaut's badge, a corner of the coins.
#
# `from_folder` goes through the folder once per pass, so `.repeat()` turns it
# into an endless stream of views, and `steps_per_epoch` in `fit()` then says
# how many batches an "epoch" has. A batch is cut from one pass, so it never
# holds more images than the folder has files: with 16 photos we use batches
# of 16, one view of each photo.

# %%
train_ds = data.from_folder(
    photos_dir,
    image_size=IMAGE_SIZE,
    augment=True,
    scale=(0.2, 1.0),
    shuffle=True,
    seed=0,
    batch_size=BATCH_SIZE,
).repeat()

views = next(iter(train_ds))
print("one batch:", tuple(views.shape), views.dtype)

fig, axes = plt.subplots(2, 8, figsize=(12, 3.2))
for ax, view in zip(axes.flat, data.denormalize(np.asarray(views))):
    ax.imshow(view)
    ax.axis("off")
fig.suptitle("Random resized crops: the training views of one batch")
plt.show()

# %% [markdown]
# For the held-out photos we want the plain image, once: without
# `augment=True`, `from_folder` only resizes and normalises. They are in
# colour, and `channels=3` says so explicitly.

# %%
held_out = data.from_folder(held_out_dir, image_size=IMAGE_SIZE, channels=3)
preview_images = np.concatenate([np.asarray(batch) for batch in held_out])
preview_names = [os.path.basename(path) for path in held_out.file_paths]
print("held-out images:", preview_images.shape, preview_names)

# %% [markdown]
# ## The model
#
# The backbone is an ordinary keras-hub `ViTBackbone`: 64x64 images cut into
# 8x8-pixel patches (an 8x8 grid of tokens), 4 transformer layers of width
# 64. That is tiny, so that a CPU trains it in minutes; with more photos and
# a GPU, raise the image size, `num_layers` and `hidden_dim`.
#
# `SimMIMModel` wraps it. Each training step hides 60% of every image in
# 8x8-pixel blocks (the paper's 32-pixel blocks on 224-pixel images are a
# 7x7 grid; ours is 8x8), puts a learned mask token in place of the hidden
# patches, runs the backbone, and reconstructs the pixels with a 1x1
# convolution and a pixel shuffle. The loss is the L1 error on the hidden
# pixels only. The backbone object you pass in is the one that gets trained:
# nothing is copied.
#
# We compile with SimMIM's AdamW (`model.default_optimizer`: weight decay
# 0.05, gradient clipping at norm 5, biases, norms and embeddings kept out
# of weight decay), on a learning-rate schedule with a linear warm-up and a
# cosine decay.

# %%
backbone = keras_hub.models.ViTBackbone(
    image_shape=(IMAGE_SIZE, IMAGE_SIZE, 3),
    patch_size=8,
    num_layers=4,
    num_heads=4,
    hidden_dim=64,
    mlp_dim=128,
)
model = keras_simmim.SimMIMModel(backbone, mask_patch_size=8, mask_ratio=0.6, seed=0)

total_steps = EPOCHS * STEPS_PER_EPOCH
schedule = keras_simmim.downstream.warmup_cosine(
    2e-3, total_steps, warmup_steps=total_steps // 10
)
model.compile(optimizer=model.default_optimizer(schedule))
model.summary()

# %% [markdown]
# ## Training with `fit()`
#
# Two callbacks come along:
#
# * `visualization.ReconstructionPreview` runs the model on the held-out
#   photos every `every` epochs, always with the same mask, and writes a
#   picture `epoch-NNNN.png` into a folder. It draws its mask with NumPy, so
#   it leaves training exactly as it would be without it.
# * `training.ResumableCheckpoint` saves a complete checkpoint after every
#   epoch: the model with its optimizer state (and so the position in the
#   learning-rate schedule), the random state of the masking, and the loss
#   history. It writes under a temporary name and renames it into place, so
#   a crash in the middle of a save never leaves a broken checkpoint.
#
# To show resuming, we stop the first `fit()` halfway, as if the notebook's
# kernel had died there. (Keras warns that `shuffle=True` is ignored for a
# `tf.data.Dataset`: that is expected, `from_folder(shuffle=True)` already
# shuffles.)

# %%
previews_dir = os.path.join(workdir, "previews")
checkpoints_dir = os.path.join(workdir, "checkpoints")
first_epochs = max(1, EPOCHS // 2)

model.fit(
    train_ds,
    epochs=first_epochs,
    steps_per_epoch=STEPS_PER_EPOCH,
    callbacks=[
        visualization.ReconstructionPreview(preview_images, previews_dir, every=PREVIEW_EVERY),
        training.ResumableCheckpoint(checkpoints_dir),
    ],
    verbose=2,
)
print("checkpoints:", os.listdir(checkpoints_dir))

# %% [markdown]
# ## Resuming after an interruption
#
# Say the kernel died here: a new session has nothing but the checkpoint
# folder. `training.latest_checkpoint` finds the newest complete checkpoint
# and returns the path of its `model.keras` and its state (the epochs done and
# the loss history so far). `keras.saving.load_model` restores the model
# *and* its compiled optimizer, so the learning-rate schedule continues where
# it stopped, and `fit(initial_epoch=...)` counts on from there. Handing the
# saved history to the new `ResumableCheckpoint` keeps one loss history
# across both runs.
#
# The weights, optimizer, schedule and masks continue exactly; the random
# crops do not, because the `tf.data` pipeline starts its random stream
# afresh. That does not matter for training, but if you need a resumed run to
# be bit-for-bit the uninterrupted one, use the command line:
# `keras-simmim pretrain` rebuilds the pipeline every epoch with a seed of its
# own and resumes by itself when you run it again in the same output folder.

# %%
del model  # the "crash"

model_path, state = training.latest_checkpoint(checkpoints_dir)
print("resuming from", model_path, "after epoch", state["epoch"])
model = keras.saving.load_model(model_path)

checkpoint = training.ResumableCheckpoint(checkpoints_dir, history=state["history"])
model.fit(
    train_ds,
    initial_epoch=state["epoch"],
    epochs=EPOCHS,
    steps_per_epoch=STEPS_PER_EPOCH,
    callbacks=[
        visualization.ReconstructionPreview(preview_images, previews_dir, every=PREVIEW_EVERY),
        checkpoint,
    ],
    verbose=2,
)
print("checkpoints:", os.listdir(checkpoints_dir))  # only the newest is kept

# %% [markdown]
# The loss curve of the whole run, both `fit()` calls together:

# %%
losses = checkpoint.history["loss"]
epochs = range(1, len(losses) + 1)
plt.figure(figsize=(6, 3.5))
plt.plot(epochs, losses, marker=".")
plt.axvline(first_epochs + 0.5, color="gray", linestyle="--", label="resumed here")
plt.xlabel("epoch")
plt.ylabel("L1 loss on the masked pixels")
plt.title("SimMIM pretraining loss")
plt.legend()
plt.show()

# %% [markdown]
# ## Looking at reconstructions
#
# Each preview has one row per held-out photo and four columns: the
# original, the masked input (grey where the model sees nothing), the raw
# reconstruction, and the visible pixels with the reconstruction pasted into
# the holes. Here are the first and the last preview.
#
# At `QUICK = True` both are noise: three short epochs teach the model
# nothing yet. In the full run the holes are filled with the colours of the
# photo rather than noise, and by the last preview the fills follow the
# coarse layout of light and dark around them: red where the saucer is,
# lighter floor under the motorcycle, darker patches next to dark areas.
# That is as far as 3,000 steps of a tiny ViT on 16 photos get; sharp edges
# and textures take far longer training on far more images, which is what a
# GPU is for.

# %%
previews = sorted(os.listdir(previews_dir))
fig, axes = plt.subplots(2, 1, figsize=(8, 9))
for ax, name in zip(axes, (previews[0], previews[-1])):
    ax.imshow(plt.imread(os.path.join(previews_dir, name)))
    ax.set_title(name)
    ax.axis("off")
plt.tight_layout()
plt.show()

# %% [markdown]
# The same picture, for any images and any mask, is two calls away: run the
# model on `{"images": ..., "mask": ...}` and hand the output to
# `visualization.reconstruction_grid`, which returns the grid as an array.
# Here with another mask, drawn the way SimMIM draws them
# (`visualization.fixed_mask`):

# %%
mask = visualization.fixed_mask(model, len(preview_images), seed=1)
outputs = model({"images": preview_images, "mask": mask}, training=False)
grid = visualization.reconstruction_grid(
    preview_images, outputs["reconstruction"], outputs["mask"]
)
height, width = grid.shape[:2]
plt.figure(figsize=(8, 4.5))
plt.imshow(grid)
plt.xticks([(i + 0.5) * width / 4 for i in range(4)], visualization.COLUMNS)
plt.yticks([(i + 0.5) * height / len(preview_names) for i in range(len(preview_names))],
           preview_names)
plt.gca().xaxis.tick_top()
plt.show()

# %% [markdown]
# ## Saving a preset
#
# `save_to_preset` writes a directory that `SimMIMModel.from_preset` loads
# back, to pretrain further for example. The same directory is also a
# keras-hub *backbone* preset: keras-hub can load the pretrained ViT from it
# without knowing anything about SimMIM.

# %%
preset_dir = os.path.join(workdir, "my_simmim_vit")
model.save_to_preset(preset_dir)
print(sorted(os.listdir(preset_dir)))

# %% [markdown]
# ## The pretrained backbone in its keras-hub task
#
# `keras_hub.models.Backbone.from_preset` returns a `ViTBackbone` with the
# pretrained weights. Put it into `keras_hub.models.ViTImageClassifier` with
# the number of classes of your task; only the classification head is new.
# Here we run it on a held-out photo. The head is untrained, so its class
# probabilities mean nothing yet: the next step is `classifier.fit()` on
# your labelled images. The guide "Downstream on real data" does that, and
# compares fine-tuning, linear probes and k-NN against a backbone without
# pretraining.

# %%
pretrained_vit = keras_hub.models.Backbone.from_preset(preset_dir)
same = all(
    np.array_equal(a, b)
    for a, b in zip(pretrained_vit.get_weights(), model.backbone.get_weights())
)
print(type(pretrained_vit).__name__, "- same weights as model.backbone:", same)

classifier = keras_hub.models.ViTImageClassifier(
    backbone=pretrained_vit, num_classes=3, activation="softmax"
)
probabilities = classifier.predict(preview_images[:1], verbose=0)
print(f"class probabilities for {preview_names[0]}:", probabilities[0].round(3))

# %% [markdown]
# In the session that pretrained it, the backbone is also right there:
# `keras_hub.models.ViTImageClassifier(backbone=model.backbone, num_classes=3)`
# builds the same classifier without a preset.
#
# ## Where to go from here
#
# * More photos and a bigger model: `from_folder` reads any folder tree of
#   PNG, JPEG, BMP and GIF files. With a GPU, raise `IMAGE_SIZE`,
#   `num_layers` and `hidden_dim` together and train far longer: the SimMIM
#   paper pretrains for 100 to 800 epochs of ImageNet.
# * The command line runs this loop with bit-exact resuming:
#   `keras-simmim pretrain --help`.
# * Remove the temporary folder when you are done:
#   `import shutil; shutil.rmtree(workdir)`.
