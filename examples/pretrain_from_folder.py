"""SimMIM pretraining on a folder of your own images.

Reads every image file under `--data-dir` (any depth; PNG, JPEG, BMP, GIF;
no labels) with `keras_simmim.data.from_folder`, pretrains a small ViT on
random resized crops of them, writes a reconstruction grid of the first
images after each of a few epochs (`visualization.ReconstructionPreview`)
and saves a preset that `SimMIMModel.from_preset` and
`keras_hub.models.Backbone.from_preset` load. Without `--data-dir` it
copies the sample photographs bundled with scikit-image (those on disk;
nothing is downloaded) into a temporary folder and trains on them. The
preset feeds the other examples: `finetune.py`, `probe.py`, `inpaint.py`
and `retrieval.py` take `--preset pretrain_from_folder/preset`.

    KERAS_BACKEND=torch python examples/pretrain_from_folder.py \
        [--data-dir ~/Pictures] [--output pretrain_from_folder]

The full run (30 epochs of 20 batches of 32 crops at 64x64, on the 26
sample photos) takes 4 minutes on a 2-core CPU (measured with torch);
`--quick` runs 2 epochs of 2 batches to check that everything works.
"""

import argparse
import os
import tempfile

parser = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--data-dir", help="Folder of images (default: "
                    "scikit-image's sample photographs, copied to a "
                    "temporary folder).")
parser.add_argument("--output", default="pretrain_from_folder",
                    help="Output folder for previews/ and preset/ "
                    "(default: %(default)s, in the current directory).")
parser.add_argument("--image-size", type=int, default=64,
                    help="Crop side in pixels, a multiple of 16 "
                    "(default: %(default)s).")
parser.add_argument("--epochs", type=int, default=30)
parser.add_argument("--steps-per-epoch", type=int, default=20,
                    help="Batches per epoch; the folder is repeated, so "
                    "every batch holds new random crops.")
parser.add_argument("--batch-size", type=int, default=32)
parser.add_argument("--learning-rate", type=float, default=1e-3)
parser.add_argument("--quick", action="store_true",
                    help="2 epochs of 2 batches, to check the script works.")
args = parser.parse_args()
if args.quick:
    args.epochs, args.steps_per_epoch = 2, 2

import keras  # noqa: E402
import keras_hub  # noqa: E402
import numpy as np  # noqa: E402

import keras_simmim  # noqa: E402
from keras_simmim import data  # noqa: E402
from keras_simmim import downstream  # noqa: E402
from keras_simmim.visualization import ReconstructionPreview  # noqa: E402


def sample_photos(folder):
    """Copies scikit-image's bundled sample photographs into `folder`."""
    import skimage.data
    from PIL import Image

    for name in sorted(os.listdir(skimage.data.data_dir)):
        if name.endswith((".png", ".jpg")):
            image = Image.open(os.path.join(skimage.data.data_dir, name))
            if min(image.size) >= args.image_size:  # skip icons and logos
                # Re-encoded without colour profiles (TensorFlow's decoder
                # warns about some of them).
                image.save(os.path.join(folder, name), icc_profile=None)
    return folder


folder = args.data_dir or sample_photos(tempfile.mkdtemp(prefix="photos-"))
keras.utils.set_random_seed(0)
train = data.from_folder(
    folder, image_size=args.image_size, channels=3, augment=True,
    scale=(0.2, 1.0),  # wider than SimMIM's 0.67-1: few photos, many views
    shuffle=True, batch_size=args.batch_size,
)
print(f"Training on {len(train.file_paths)} images under {folder}")
# The first 8 images, resized but not augmented, for the preview grids.
preview = next(iter(data.from_folder(
    folder, image_size=args.image_size, channels=3, batch_size=8)))

backbone = keras_hub.models.ViTBackbone(
    image_shape=(args.image_size, args.image_size, 3), patch_size=8,
    num_layers=4, num_heads=4, hidden_dim=128, mlp_dim=256)
model = keras_simmim.SimMIMModel(backbone, mask_patch_size=16, mask_ratio=0.6)
steps = args.epochs * args.steps_per_epoch
model.compile(optimizer=model.default_optimizer(downstream.warmup_cosine(
    args.learning_rate, steps, warmup_steps=steps // 10)))
history = model.fit(
    train.repeat(), epochs=args.epochs, steps_per_epoch=args.steps_per_epoch,
    verbose=2, callbacks=[ReconstructionPreview(
        np.asarray(preview), os.path.join(args.output, "previews"),
        every=max(1, args.epochs // 6))])

preset = os.path.join(args.output, "preset")
model.save_to_preset(preset, overwrite=True)
# The preset is also a keras-hub backbone preset.
reloaded = keras_hub.models.Backbone.from_preset(preset)
print(f"final loss {history.history['loss'][-1]:.4f}")
print(f"wrote {os.path.abspath(args.output)}/: previews/ (original, masked, "
      f"reconstruction, visible + reconstruction) and preset/ "
      f"({type(reloaded).__name__}, {reloaded.count_params():,} parameters)")
