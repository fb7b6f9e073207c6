# %% [markdown]
# # Downstream on real data
#
# **Author:** keras-simmim contributors<br>
# **Date created:** 2026/11/30<br>
# **Last modified:** 2026/11/30<br>
# **Description:** Pretrain a ViT with SimMIM on real handwritten digits, then compare it with random init by fine-tuning, linear probe, k-NN and inpainting.<br>
# **Accelerator:** None (runs on a CPU; a GPU makes the full setting faster)
#
# [**View in Colab**](https://colab.research.google.com/github/keras-team/keras-simmim/blob/main/guides/downstream_on_real_data.ipynb)

# %% [markdown]
# ## Introduction
#
# Does masked image modeling pay off when the labels are few? This guide
# answers it the way papers do, on a real dataset small enough for a laptop:
# the scikit-learn handwritten digits (1,797 real 8x8 scans, shipped inside
# scikit-learn, so nothing is downloaded).
#
# We SimMIM-pretrain a small ViT on the training images *without their
# labels*, then keep only 10% of the labels and compare the pretrained
# backbone with the same architecture from random initialisation ("scratch")
# in four ways:
#
# * **Fine-tuning**: train the whole network on the labelled images, with
#   SimMIM's recipe (`SimMIMClassifier.compile_for_finetuning`, layer-wise
#   learning-rate decay).
# * **Linear probe**: freeze the backbone and train one linear layer on its
#   features (`downstream.extract_features` + `downstream.fit_linear_probe`).
# * **k-NN**: classify each test image by its nearest labelled neighbours in
#   feature space (`downstream.knn_accuracy`), no training at all.
# * **Inpainting**: fill in hidden parts of test digits (`model.inpaint`) and
#   score the filled pixels (`downstream.masked_psnr`).

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
import keras
import keras_hub
import matplotlib.pyplot as plt
import numpy as np

import keras_simmim
from keras_simmim import data
from keras_simmim import downstream

print("Keras", keras.__version__, "on", keras.backend.backend())

# %% [markdown]
# One switch sets the length of the run. `QUICK = True` runs every step in
# a couple of minutes, but pretrains for one epoch and fine-tunes for ten
# steps: far too short for the comparison to mean anything. Set it to
# `False` for a run that shows the effect of pretraining.

# %%
QUICK = True  # False: the full run (minutes to an hour on a CPU; guides/README.md)

PRETRAIN_EPOCHS = 1 if QUICK else 60
FINETUNE_STEPS = 10 if QUICK else 300
PROBE_EPOCHS = 10 if QUICK else 100
BLOCKS = (2,) if QUICK else (1, 2, 3, 4)  # blocks to take frozen features from
LABEL_FRACTION = 0.1

# %% [markdown]
# ## The data
#
# `data.load_digits` returns the digits resized to 32x32 and replicated to
# three channels, as uint8 arrays, in fixed stratified splits: 1,259
# training, 179 validation and 359 test images. `data.stratified_subset`
# picks the labelled 10% of the training split: 126 images, 12 or 13 of each
# digit. Pretraining sees all 1,259 training images, without labels.

# %%
train_px, train_y = data.load_digits("train")
val_px, val_y = data.load_digits("validation")
test_px, test_y = data.load_digits("test")
train_x, val_x, test_x = (data.normalize(p) for p in (train_px, val_px, test_px))

labelled = data.stratified_subset(train_y, LABEL_FRACTION, seed=0)
print("train", train_px.shape, "labelled", len(labelled), "test", test_px.shape)

fig, axes = plt.subplots(2, 10, figsize=(10, 2.3))
for digit in range(10):
    for row, i in enumerate(labelled[train_y[labelled] == digit][:2]):
        axes[row, digit].imshow(train_px[i])
        axes[row, digit].axis("off")
fig.suptitle("Two of the labelled training images of each digit")
plt.show()

# %% [markdown]
# ## SimMIM pretraining
#
# The backbone is a keras-hub `ViTBackbone`: 32x32 images in 4x4 patches
# (an 8x8 token grid), 4 layers of width 64. `make_vit` seeds Keras before
# building it, so the scratch backbone we build later starts from exactly
# the weights pretraining started from.
#
# SimMIM hides 60% of each image in 8x8-pixel blocks and learns to paint them
# back. `data.from_arrays(..., augment=True, shuffle=True)` adds SimMIM's
# random resized crops and shuffles (so Keras's warning that its own
# `shuffle=True` is ignored for a `tf.data.Dataset` is expected). The
# optimizer is the SimMIM recipe's AdamW (`model.default_optimizer`) on a
# warm-up + cosine schedule.

# %%
def make_vit():
    keras.utils.set_random_seed(0)
    return keras_hub.models.ViTBackbone(
        image_shape=(32, 32, 3),
        patch_size=4,
        num_layers=4,
        num_heads=4,
        hidden_dim=64,
        mlp_dim=128,
    )


model = keras_simmim.SimMIMModel(make_vit(), mask_patch_size=8, mask_ratio=0.6, seed=0)
unlabeled = data.from_arrays(
    train_px, augment=True, shuffle=True, batch_size=64, drop_remainder=True
)
steps = PRETRAIN_EPOCHS * (len(train_px) // 64)
model.compile(
    optimizer=model.default_optimizer(
        downstream.warmup_cosine(2e-3, steps, warmup_steps=steps // 10)
    )
)
model.fit(unlabeled, epochs=PRETRAIN_EPOCHS, verbose=2)

pretrained = model.backbone
scratch = make_vit()

# %% [markdown]
# ## Inpainting
#
# The most direct test of a SimMIM model is its own task: hide part of an
# image it has never seen and ask for the rest. `model.inpaint(images, mask)`
# returns the images with the masked blocks filled by the reconstruction and
# every visible pixel unchanged.
#
# A randomly initialised network has no trained decoder to paint with, so the
# fair "no pretraining" comparison here is classical inpainting, which needs
# no training: the mean colour of the visible pixels, and scikit-image's
# biharmonic inpainting, which continues smooth surfaces into the holes.
# `downstream.masked_psnr` scores only the masked pixels (higher is better).

# %%
images, pixels = test_x[:100], test_px[:100]
mask = keras.ops.convert_to_numpy(model.masking(images))  # SimMIM's random blocks
pixel_mask = downstream.pixel_mask_from_grid(mask, (32, 32))

fills = {
    "SimMIM": data.denormalize(model.inpaint(images, mask)),
    "biharmonic": np.clip(np.round(downstream.biharmonic_fill(pixels, pixel_mask)), 0, 255),
    "mean fill": np.round(downstream.mean_fill(pixels, pixel_mask)),
}
for name, filled in fills.items():
    print(f"{name:>10}: {downstream.masked_psnr(filled, pixels, pixel_mask):.1f} dB")

# %%
rows = {"original": pixels, "masked": np.where(pixel_mask[..., None], 127, pixels)}
rows.update(fills)
fig, axes = plt.subplots(len(rows), 8, figsize=(8, 1.1 * len(rows)))
for r, (name, row) in enumerate(rows.items()):
    axes[r, 0].set_ylabel(name, rotation=0, ha="right", va="center")
    for c in range(8):
        axes[r, c].imshow(row[c].astype("uint8"))
        axes[r, c].set_xticks([])
        axes[r, c].set_yticks([])
plt.show()

# %% [markdown]
# ## Frozen features: linear probe and k-NN
#
# Both protocols read the backbone's features without changing it:
# `downstream.extract_features` averages the patch tokens after a chosen
# transformer block. The best block differs between a pretrained and a random
# network, so we let each arm pick its own block on the validation split
# (with k-NN, which needs no training), and then use it for both protocols.
# (At `QUICK = True` there is only block 2 to pick, to save time.)

# %%
def frozen_protocols(backbone):
    def features(images, block):
        return downstream.extract_features(backbone, images, feature_layer=block)

    # The block whose features k-NN classifies best on the validation split.
    train = {block: features(train_x[labelled], block) for block in BLOCKS}
    on_validation = {
        block: downstream.knn_accuracy(
            train[block], train_y[labelled], features(val_x, block), val_y, k=10
        )
        for block in train
    }
    block = max(on_validation, key=on_validation.get)
    test = features(test_x, block)
    probe = downstream.fit_linear_probe(
        train[block], train_y[labelled], num_classes=10, epochs=PROBE_EPOCHS,
        learning_rate=0.03,
    )
    return {
        "block": block,
        "linear probe": probe.evaluate(test, test_y, verbose=0)[1],
        "k-NN": downstream.knn_accuracy(train[block], train_y[labelled], test, test_y, k=10),
    }


results = {"scratch": frozen_protocols(scratch), "SimMIM": frozen_protocols(pretrained)}
for arm, r in results.items():
    print(f"{arm:>7}: block {r['block']}, linear probe {r['linear probe']:.1%}, "
          f"k-NN {r['k-NN']:.1%}")

# %% [markdown]
# ## Fine-tuning with layer-wise learning-rate decay
#
# `SimMIMClassifier` puts a LayerNorm and a linear head on the average of the
# backbone's patch tokens. `compile_for_finetuning` is SimMIM's fine-tuning
# recipe: AdamW with a linear warm-up and a cosine decay, label smoothing,
# and *layer-wise learning-rate decay*: the head trains at the full rate and
# each block below it at `layer_decay` times the rate of the block above, so
# the early, general layers of a pretrained backbone move least. A random
# backbone has nothing to preserve, so scratch trains every layer at the full
# rate (`layer_decay=1.0`). Both arms use the same peak learning rate here;
# the benchmark quoted at the end tunes it for each arm.
#
# The training images get random resized crops but no flips (a mirrored 3 is
# not a 3). Every batch has the same shape (`drop_remainder=True`, and the
# test set in one batch), so JAX compiles each step once rather than again
# for a smaller last batch. Fine-tuning changes the backbone in place, which
# is why it comes last.

# %%
train_ds = data.from_arrays(
    train_px[labelled], train_y[labelled], augment=True, flip=False,
    shuffle=True, batch_size=32, drop_remainder=True,
).repeat()


def fine_tune(backbone, layer_decay):
    classifier = keras_simmim.SimMIMClassifier(backbone, num_classes=10)
    classifier.compile_for_finetuning(
        learning_rate=2e-3, total_steps=FINETUNE_STEPS, layer_decay=layer_decay
    )
    classifier.fit(train_ds, steps_per_epoch=FINETUNE_STEPS, epochs=1, verbose=0)
    return classifier.evaluate(test_x, test_y, batch_size=len(test_x), verbose=0)[1]


results["scratch"]["fine-tuning"] = fine_tune(scratch, layer_decay=1.0)
results["SimMIM"]["fine-tuning"] = fine_tune(pretrained, layer_decay=0.75)
for arm, r in results.items():
    print(f"{arm:>7}: fine-tuning {r['fine-tuning']:.1%}")

# %% [markdown]
# ## Scratch vs SimMIM, side by side

# %%
protocols = ["fine-tuning", "linear probe", "k-NN"]
x = np.arange(len(protocols))
plt.figure(figsize=(7, 4))
for offset, arm in ((-0.2, "scratch"), (0.2, "SimMIM")):
    accuracy = [100 * results[arm][p] for p in protocols]
    bars = plt.bar(x + offset, accuracy, width=0.4, label=arm)
    plt.bar_label(bars, fmt="%.1f")
plt.xticks(x, protocols)
plt.ylabel("test accuracy (%)")
plt.ylim(0, 105)
plt.title(f"Digits, {len(labelled)} labels" + (" (QUICK: too short to mean anything)" if QUICK else ""))
plt.legend(loc="upper right")
plt.show()

# %% [markdown]
# ## Reading the result
#
# **At `QUICK = True` these bars measure nothing**: one epoch of pretraining
# and ten fine-tuning steps leave both arms close to where they started, and
# with one seed and 359 test images a result moves by several points from
# run to run. Scratch may even come out ahead: one epoch of SimMIM moves the
# weights away from their random start before it has taught them much. The
# quick setting only shows that every step works.
#
# When we ran it at `QUICK = False` (60 pretraining epochs, one seed), the
# SimMIM backbone came out ahead in all three protocols: far ahead in the
# frozen ones, a few points ahead in fine-tuning. One seed cannot say how
# large the gaps really are.
#
# For that, `benchmarks/quality/run.py` runs the same comparison carefully:
# longer pretraining, each arm's fine-tuning learning rate (by its mean
# validation accuracy over 3 seeds), probe block and k chosen on the
# validation split, 5 paired seeds. Its table,
# `benchmarks/quality/results.md`, reads at 10% of the labels (126 images),
# test accuracy in %:
#
# | protocol | scratch | SimMIM | gain (mean +- std over 5 seeds) |
# |---|---|---|---|
# | Fine-tuning | 91.8 | 94.7 | +2.9 +- 2.3 |
# | Linear probe | 61.9 | 83.8 | +21.9 +- 4.8 |
# | k-NN (frozen) | 39.5 | 66.2 | +26.7 +- 4.4 |
#
# With 2% of the labels (26 images), fine-tuning goes from 65.4% to 76.0%
# (+10.6 +- 2.2). Inpainting 200 test digits with 62% of their pixels masked
# scores 20.89 dB for SimMIM, 13.54 dB for biharmonic inpainting and 9.08 dB
# for the mean fill.
#
# That is the usual pattern of masked image modeling: pretraining helps most
# when the backbone stays frozen (probe, k-NN) and when labels are fewest;
# with full fine-tuning on more labels, the random backbone catches up.
#
# ## Where to go from here
#
# * Your own images: the guide "Pretraining on your own images" pretrains
#   from a folder of photos, resumes after interruptions and saves a preset.
# * The same comparison from the command line: `keras-simmim finetune`,
#   `keras-simmim probe` and `keras-simmim inpaint` (`--help` for each).
