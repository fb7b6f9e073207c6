# %% [markdown]
# # Scale
#
# **Author:** keras-simmim contributors<br>
# **Date created:** 2026/11/30<br>
# **Last modified:** 2026/11/30<br>
# **Description:** SimMIM on several devices (TensorFlow `MirroredStrategy`, JAX data and model parallelism) and in mixed precision, shown on a CPU.<br>
# **Accelerator:** None (runs on a CPU; a GPU makes the full setting faster)
#
# [**View in Colab**](https://colab.research.google.com/github/keras-team/keras-simmim/blob/main/guides/scale.ipynb)

# %% [markdown]
# ## Introduction
#
# The SimMIM code you write for one device runs on several: you build and
# fit the model under a distribution, and Keras splits each global batch
# between the devices. keras-simmim makes the result *the same* as one
# device with the same global batch. SimMIM's loss is a mean over the masked
# pixels of the whole batch, so each replica divides its masked-pixel loss by
# the masked-pixel count of the *global* batch, and draws its rows of the
# global batch's random mask.
#
# This guide shows it without a GPU: TensorFlow and JAX can split a CPU into
# several fake devices. Fake devices must be configured before the backend
# starts, so each distributed run below is a small script that the notebook
# writes to a temporary folder and runs in a fresh Python process. The last
# part, mixed precision, runs in the notebook itself.

# %% [markdown]
# ## Setup
#
# Choose the backend of this notebook before Keras is imported: it only
# matters for the mixed-precision part (each distributed script chooses its
# own). This guide uses JAX; `"tensorflow"` and `"torch"` work too.
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
os.environ.setdefault("KERAS_BACKEND", "jax")

# %%
QUICK = True  # False: the full run (minutes to an hour on a CPU; guides/README.md)

# %%
import tempfile
import textwrap

NUM_IMAGES, EPOCHS = (64, 2) if QUICK else (1024, 4)
folder = tempfile.mkdtemp()  # the scripts, and nothing else, go here

# %% [markdown]
# ## What every run shares
#
# One module that each script imports (its first line passes on the
# `QUICK` setting): 32x32 synthetic scenes, a small keras-hub ViT, SimMIM's
# AdamW, and a global batch of 16 images. The seeds are fixed, so within a
# script every run starts from the same weights and draws the same masks.

# %%
COMMON = f"NUM_IMAGES, EPOCHS = {NUM_IMAGES}, {EPOCHS}\n" + '''
import keras
import keras_hub
import numpy as np

import keras_simmim
from keras_simmim import data

pixels, _ = data.synthetic_scenes(NUM_IMAGES, image_size=32, seed=0)


def build():
    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.ViTBackbone(
        image_shape=(32, 32, 3), patch_size=4, num_layers=2, num_heads=4,
        hidden_dim=64, mlp_dim=128)
    model = keras_simmim.SimMIMModel(backbone, mask_patch_size=8, seed=0)
    model.compile(optimizer=model.default_optimizer(1e-3))
    return model


def train(model):
    batches = data.from_arrays(pixels, batch_size=16)  # the global batch
    return model.fit(batches, epochs=EPOCHS, verbose=0).history["loss"]


def weights(model):
    return [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]


def report(name, losses, model, reference):
    gap = max(np.abs(a - b).max() for a, b in zip(weights(model), reference))
    print(f"{name:>20}: loss by epoch {np.round(losses, 5)}, "
          f"weights differ from one device's by {gap:.1e}")
'''
with open(os.path.join(folder, "common.py"), "w") as f:
    f.write(COMMON)


def run(name, script, backend):
    """Writes `script` to the folder and runs it with `backend`."""
    path = os.path.join(folder, name)
    with open(path, "w") as f:
        f.write(textwrap.dedent(script))
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([sys.executable, path], env=env, cwd=folder,
                          capture_output=True, text=True)
    print(done.stdout)
    if done.returncode:
        raise RuntimeError(done.stderr[-3000:])


# %% [markdown]
# ## TensorFlow: `tf.distribute.MirroredStrategy`
#
# Two logical CPUs stand in for two GPUs. Build and compile the model inside
# the strategy's scope; `fit` then runs each step on both replicas, 8 images
# each, and sums their gradients. Under a `tf.distribute` strategy,
# `compile` also makes the optimizer sum the replicas' gradients *before*
# clipping them (Keras 3.15 clips each replica's part), as one device does.

# %%
run("mirrored.py", """
    import tensorflow as tf

    # Two fake devices; must happen before TensorFlow starts.
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

    from common import build, report, train, weights

    model = build()
    losses = train(model)
    reference = weights(model)
    report("one device", losses, model, reference)

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        model = build()
    report("MirroredStrategy x 2", train(model), model, reference)
""", backend="tensorflow")

# %% [markdown]
# Same losses, and the same weights up to float32 rounding: the replicas
# add up their gradients in another order than one device does. Adam's
# updates carry these differences forward, so they grow slowly with the
# steps (about 1e-6 after the quick setting's 8 steps, 1e-4 to 1e-3 after
# the full setting's 256), while the losses keep agreeing to 4-5 digits.
#
# ## JAX: `DataParallel` and `ModelParallel`
#
# On JAX, `keras.distribution` shards arrays over a mesh of devices; XLA
# then runs one program over all of them. `DataParallel` splits the batch
# and replicates the weights. `ModelParallel` also splits weights, following
# a layout map: `keras_simmim.distribute.transformer_layout_map(mesh)`
# splits each transformer block's attention by head and its MLP by hidden
# unit (Megatron-style), and replicates the rest. Here: four fake CPU
# devices, a 2 x 2 mesh (two-way data parallel, two-way model parallel).

# %%
run("jax_parallel.py", """
    import os

    # Four fake devices; must happen before JAX starts.
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"

    import keras

    from keras_simmim.distribute import transformer_layout_map
    from common import build, report, train, weights

    model = build()
    losses = train(model)
    reference = weights(model)
    report("one device", losses, model, reference)

    devices = keras.distribution.list_devices()
    print("devices:", devices)
    with keras.distribution.DataParallel(devices=devices).scope():
        model = build()
        report("DataParallel x 4", train(model), model, reference)

    mesh = keras.distribution.DeviceMesh((2, 2), ["batch", "model"], devices)
    model_parallel = keras.distribution.ModelParallel(
        layout_map=transformer_layout_map(mesh), batch_dim_name="batch")
    with model_parallel.scope():
        model = build()
        report("ModelParallel 2 x 2", train(model), model, reference)

    print("how the first block's weights are split:")
    for w in model.weights:
        if "transformer_block_1/" in w.path and w.path.endswith("kernel"):
            name = w.path.removeprefix("vit_encoder/")
            print(f"  {name:<42} {tuple(w.value.sharding.spec)}")
""", backend="jax")

# %% [markdown]
# `None` in a sharding spec means the axis is whole on every device;
# `"model"` means it is split over the mesh's model axis. The query, key
# and value kernels are `(hidden, heads, head_dim)`: split by head.
#
# PyTorch: Keras 3.15 has no distribution backend for torch; the torch
# backend trains on one device (a GPU if torch sees one).
#
# ## On real GPUs and TPUs
#
# Only the device set-up changes: drop the fake devices and let the
# strategy find the real ones. The model code stays as above.
#
# ```python
# # TensorFlow, one machine, all its GPUs:
# strategy = tf.distribute.MirroredStrategy()
# # TensorFlow, several machines: set TF_CONFIG on each, e.g.
# # {"cluster": {"worker": ["host1:12345", "host2:12345"]},
# #  "task": {"type": "worker", "index": 0}}
# strategy = tf.distribute.MultiWorkerMirroredStrategy()
# with strategy.scope():
#     model = build()
# model.fit(dataset)  # the global batch, as on one device
#
# # JAX: on several hosts, first, on every host (same program everywhere):
# jax.distributed.initialize()  # or keras.distribution.initialize()
# # then all devices (GPUs, TPU chips) of all hosts, data parallel:
# distribution = keras.distribution.DataParallel()
# # or weights sharded too, e.g. 8 devices as 2 x 4:
# mesh = keras.distribution.DeviceMesh((2, 4), ["batch", "model"],
#                                      keras.distribution.list_devices())
# distribution = keras.distribution.ModelParallel(
#     layout_map=keras_simmim.distribute.transformer_layout_map(mesh),
#     batch_dim_name="batch")
# with distribution.scope():
#     model = build()
#     model.fit(dataset)
# ```
#
# ## Mixed precision
#
# `dtype="mixed_bfloat16"` on the backbone and the model computes in
# bfloat16 and keeps the weights, and SimMIM's loss, in float32. On GPUs,
# `"mixed_float16"` works too (Keras adds dynamic loss scaling); XLA's CPU
# backend has no float16 matmul, so on a CPU use bfloat16. This runs in the
# notebook, on its backend.

# %%
import keras
import keras_hub
import matplotlib.pyplot as plt
import numpy as np

import keras_simmim
from keras_simmim import data

pixels, _ = data.synthetic_scenes(NUM_IMAGES, image_size=32, seed=0)
images = data.normalize(pixels)


def build(dtype=None):
    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.ViTBackbone(
        image_shape=(32, 32, 3), patch_size=4, num_layers=2, num_heads=4,
        hidden_dim=64, mlp_dim=128, dtype=dtype)
    model = keras_simmim.SimMIMModel(backbone, mask_patch_size=8, seed=0,
                                     dtype=dtype)
    model.compile(optimizer=model.default_optimizer(1e-3))
    return model


losses = {}
for dtype in ("float32", "mixed_bfloat16"):
    model = build(dtype)
    history = model.fit(images, batch_size=16, epochs=EPOCHS, shuffle=False,
                        verbose=0)
    losses[dtype] = history.history["loss"]
    outputs = model.predict(images[:2], verbose=0)
    print(f"{dtype:>15}: weights {model.backbone.weights[0].dtype}, computes "
          f"in {model.backbone.compute_dtype}, reconstruction "
          f"{outputs['reconstruction'].dtype}, loss by epoch "
          f"{np.round(losses[dtype], 4)}")

# %% [markdown]
# `keras.mixed_precision.set_global_policy("mixed_bfloat16")` does the same
# for every layer built afterwards, without `dtype=` arguments. Set it back
# when you are done.

# %%
keras.mixed_precision.set_global_policy("mixed_bfloat16")
model = build()
print("global policy:", model.dtype_policy.name, "| head computes in",
      model.compute_dtype)
keras.mixed_precision.set_global_policy("float32")

# %% [markdown]
# The two training curves, float32 and mixed bfloat16 (bfloat16 keeps 8
# bits of mantissa, so the curves agree to a few digits rather than
# exactly):

# %%
plt.figure(figsize=(5, 3))
for dtype, history in losses.items():
    plt.plot(range(1, len(history) + 1), history, "o-", label=dtype)
plt.xlabel("epoch")
plt.ylabel("SimMIM loss")
plt.legend()
plt.show()

# %% [markdown]
# ## Next steps
#
# - `tests/distribute/test_replicas.py` checks the same equalities for
#   `MAEModel`, the masked multimodal model and fine-tuning with layer-wise
#   learning-rate decay, and runs two JAX processes with
#   `jax.distributed` over loopback.
# - On a CPU, `compile(jit_compile=True)` speeds up long TensorFlow runs;
#   see `benchmarks/throughput_results.md`.
