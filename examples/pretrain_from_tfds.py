"""SimMIM pretraining on a TensorFlow Datasets dataset, by name.

Pretrains a small ViT with SimMIM on the images of a TFDS dataset
(`keras_simmim.data.from_tfds`; labels are not used), writes
reconstruction grids during training and saves a preset. This script never
downloads on its own: it uses a copy already prepared under `--tfds-dir`
(TFDS's default `~/tensorflow_datasets`), downloads only with `--download`,
and with `--mock` trains on random images in the dataset's format from
`tfds.testing.mock_data` (offline; to try the pipeline).

    KERAS_BACKEND=jax python examples/pretrain_from_tfds.py --dataset cifar10 --download
    KERAS_BACKEND=jax python examples/pretrain_from_tfds.py --mock

The full run on CIFAR-10 (5 epochs of its 50,000 training images, 1,950
steps of 128 images at 32x32) is estimated at about 50 minutes on a 2-core
CPU (from the per-step time with torch, ~1.5 s); the full run with
`--mock` (2,048 random images, 80 steps) takes 3 minutes (measured).
`--quick` runs one epoch of 2 steps on mock data.
"""

import argparse
import contextlib
import os
import sys

parser = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--dataset", default="cifar10",
                    help="TFDS name with an 'image' feature "
                    "(default: %(default)s).")
parser.add_argument("--split", default="train",
                    help="TFDS split, e.g. 'train' or 'train[:10%%]'.")
parser.add_argument("--tfds-dir", default=None,
                    help="TFDS data_dir holding the prepared dataset "
                    "(default: TFDS's, ~/tensorflow_datasets).")
parser.add_argument("--download", action="store_true",
                    help="Download and prepare the dataset if it is not "
                    "there yet (the only case this script goes online).")
parser.add_argument("--mock", action="store_true",
                    help="Random images in the dataset's format "
                    "(tfds.testing.mock_data); no data needed, offline.")
parser.add_argument("--mock-examples", type=int, default=2048,
                    help="Images per split with --mock (default: %(default)s).")
parser.add_argument("--output", default="pretrain_from_tfds",
                    help="Output folder (default: %(default)s, in the "
                    "current directory).")
parser.add_argument("--image-size", type=int, default=32,
                    help="Images are resized to this side, a multiple of 8.")
parser.add_argument("--epochs", type=int, default=5)
parser.add_argument("--batch-size", type=int, default=128)
parser.add_argument("--learning-rate", type=float, default=1e-3)
parser.add_argument("--quick", action="store_true",
                    help="--mock, one epoch of 2 steps, to check the script.")
args = parser.parse_args()
if args.quick:
    args.mock, args.mock_examples, args.epochs = True, 64, 1
    args.batch_size = 32

import keras  # noqa: E402
import keras_hub  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow_datasets as tfds  # noqa: E402

import keras_simmim  # noqa: E402
from keras_simmim import data  # noqa: E402
from keras_simmim import downstream  # noqa: E402
from keras_simmim.visualization import ReconstructionPreview  # noqa: E402

if args.mock:
    source = tfds.testing.mock_data(num_examples=args.mock_examples)
    print(f"--mock: {args.mock_examples} random images shaped like "
          f"{args.dataset}'s (nothing is read or downloaded)")
else:
    source = contextlib.nullcontext()
    if not args.download and not tfds.builder(
            args.dataset, data_dir=args.tfds_dir).is_prepared():
        sys.exit(f"{args.dataset} is not prepared under "
                 f"{args.tfds_dir or '~/tensorflow_datasets'}: rerun with "
                 "--download to fetch it, or --mock to try the script "
                 "offline on random images.")


def load(**options):
    return data.from_tfds(
        args.dataset, args.split, image_size=args.image_size, channels=3,
        data_dir=args.tfds_dir, download=args.download, **options)


with source:  # (mock_data patches TFDS while the pipelines are built)
    train = load(augment=True, shuffle=True, batch_size=args.batch_size,
                 drop_remainder=True)
    preview = np.asarray(next(iter(load(batch_size=8))))
# The learning-rate schedule needs the number of steps (batches are
# counted once when TFDS cannot tell, as for mock data).
steps_per_epoch = int(train.cardinality())
if steps_per_epoch < 0:
    steps_per_epoch = sum(1 for _ in train)

keras.utils.set_random_seed(0)
backbone = keras_hub.models.ViTBackbone(
    image_shape=(args.image_size, args.image_size, 3), patch_size=4,
    num_layers=4, num_heads=4, hidden_dim=128, mlp_dim=256)
model = keras_simmim.SimMIMModel(backbone, mask_patch_size=8, mask_ratio=0.6)
steps = args.epochs * steps_per_epoch
model.compile(optimizer=model.default_optimizer(downstream.warmup_cosine(
    args.learning_rate, steps, warmup_steps=steps // 10)))
history = model.fit(train, epochs=args.epochs, verbose=2, callbacks=[
    ReconstructionPreview(preview, os.path.join(args.output, "previews"),
                          every=max(1, args.epochs // 5))])
model.save_to_preset(os.path.join(args.output, "preset"), overwrite=True)
print(f"final loss {history.history['loss'][-1]:.4f}")
print(f"wrote {os.path.abspath(args.output)}/: previews/ and preset/")
