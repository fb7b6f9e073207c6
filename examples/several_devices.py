"""Data-parallel SimMIM training on several devices, checked against one.

Trains the same small ViT on the handwritten digits twice from the same
seed: on one device, then data-parallel over `--devices` devices with the
same global batch, and prints both loss curves and the largest weight
difference. keras-simmim scales the loss by the masked-pixel count of the
global batch and gives each replica its rows of the global batch's mask,
so the two runs agree up to float rounding (summing in another order): the
losses to about 1e-5 after 95 steps. On a machine without several
accelerators the devices are simulated on the CPU:

- JAX: `keras.distribution.DataParallel` over N host devices
  (`XLA_FLAGS=--xla_force_host_platform_device_count=N`, set below before
  JAX starts);
- TensorFlow: `tf.distribute.MirroredStrategy` over N logical CPUs
  (configured before TensorFlow's runtime starts; build and compile inside
  `strategy.scope()`);
- torch: Keras 3.15 has no torch distribution backend, so the script says
  so and trains on one device.

    KERAS_BACKEND=jax python examples/several_devices.py [--devices 4]

The full run (two runs of 5 epochs of 19 batches of 64) takes 2 minutes
on a 2-core CPU (measured with JAX); `--quick` trains 2 epochs of 2
batches per run to check the script works.
"""

import argparse
import contextlib
import os

parser = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--devices", type=int, default=2,
                    help="Devices to simulate on the CPU; must divide the "
                    "batch size (default: %(default)s).")
parser.add_argument("--epochs", type=int, default=5)
parser.add_argument("--batch-size", type=int, default=64,
                    help="Global batch, split over the devices.")
parser.add_argument("--quick", action="store_true",
                    help="2 epochs of 2 batches per run, to check the script.")
args = parser.parse_args()

# Fake devices must be configured before the backend's runtime starts:
# JAX reads XLA_FLAGS when it first lists its devices (torch ignores it).
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_"
                           f"host_platform_device_count={args.devices}")
import keras  # noqa: E402  (starts neither JAX's nor TensorFlow's runtime)

if keras.backend.backend() == "tensorflow":
    import tensorflow as tf

    tf.config.set_logical_device_configuration(
        tf.config.list_physical_devices("CPU")[0],
        [tf.config.LogicalDeviceConfiguration()] * args.devices)

import keras_hub  # noqa: E402
import numpy as np  # noqa: E402

import keras_simmim  # noqa: E402
from keras_simmim import data  # noqa: E402

if args.batch_size % args.devices:
    parser.error("--devices must divide --batch-size")
images, _ = data.load_digits("train")
steps_per_epoch = 2 if args.quick else len(images) // args.batch_size
epochs = 2 if args.quick else args.epochs


def train(scope):
    """Builds, compiles and trains the model under `scope`, from seed 0."""
    with scope:
        keras.utils.set_random_seed(0)
        backbone = keras_hub.models.ViTBackbone(
            image_shape=(32, 32, 3), patch_size=4, num_layers=4, num_heads=4,
            hidden_dim=64, mlp_dim=128)
        model = keras_simmim.SimMIMModel(backbone, mask_patch_size=8, seed=0)
        model.compile(optimizer=model.default_optimizer(1e-3))
    # The same batches for both runs: no shuffling, fixed augmentation seed.
    batches = data.from_arrays(images, augment=True, seed=0,
                               batch_size=args.batch_size,
                               drop_remainder=True)
    history = model.fit(batches.repeat(), epochs=epochs, verbose=0,
                        steps_per_epoch=steps_per_epoch)
    return model, history.history["loss"]


backend = keras.backend.backend()
if backend == "jax":
    devices = keras.distribution.list_devices()

    @contextlib.contextmanager
    def data_parallel():
        keras.distribution.set_distribution(
            keras.distribution.DataParallel(devices=devices))
        yield

    one, many = contextlib.nullcontext(), data_parallel()
    how = f"keras.distribution.DataParallel over {len(devices)} devices"
elif backend == "tensorflow":
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    one = tf.distribute.OneDeviceStrategy(devices[0]).scope()
    many = tf.distribute.MirroredStrategy(devices).scope()
    how = f"tf.distribute.MirroredStrategy over {len(devices)} logical CPUs"
else:
    print(f"Keras {keras.__version__} has no distribution backend for "
          f"{backend}: training on one device only (a GPU if {backend} "
          "sees one). Run with KERAS_BACKEND=jax or tensorflow to compare.")
    one, many, how = contextlib.nullcontext(), None, None

model_one, loss_one = train(one)
print(f"one device:  loss per epoch {np.round(loss_one, 5).tolist()}")
if many is not None:
    model_many, loss_many = train(many)
    print(f"{how}: loss per epoch {np.round(loss_many, 5).tolist()}")
    difference = max(
        float(np.max(np.abs(keras.ops.convert_to_numpy(a)
                            - keras.ops.convert_to_numpy(b))))
        for a, b in zip(model_one.trainable_weights,
                        model_many.trainable_weights))
    print(f"largest loss difference "
          f"{np.max(np.abs(np.subtract(loss_one, loss_many))):.2e}, "
          f"largest weight difference {difference:.2e}")
