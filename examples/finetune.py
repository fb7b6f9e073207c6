"""Fine-tune a SimMIM-pretrained ViT on the handwritten digits.

Loads the backbone of a preset written by `SimMIMModel.save_to_preset`
(`--preset`, e.g. `pretrain_from_folder/preset`; resized to the digits'
32x32 if it was pretrained at another size), or, without one, pretrains a
small ViT with SimMIM on the unlabeled digits training images first. Then
fine-tunes it with a fraction of the labels using SimMIM's recipe
(`SimMIMClassifier.compile_for_finetuning`: AdamW with layer-wise
learning-rate decay, warm-up + cosine, label smoothing) and reports
validation and test accuracy. Built-in data only: nothing is downloaded.

    KERAS_BACKEND=torch python examples/finetune.py [--preset DIR] [--labels-fraction 0.1]

The full run without `--preset` (60 pretraining epochs, then 300
fine-tuning steps on 10% of the labels) takes 6 minutes on a 2-core CPU
(measured with torch: 92.8% test accuracy; 83.0% after 20 pretraining
epochs); `--quick` runs 3 pretraining and 5 fine-tuning steps to check the
script works.
"""

import argparse
import os

parser = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--preset", help="A SimMIM preset directory "
                    "(save_to_preset). Default: pretrain on the digits first.")
parser.add_argument("--pretrain-epochs", type=int, default=60,
                    help="SimMIM epochs on the digits when no --preset "
                    "(default: %(default)s).")
parser.add_argument("--labels-fraction", type=float, default=0.1,
                    help="Fraction of the 1,259 training labels used, "
                    "stratified (default: %(default)s).")
parser.add_argument("--steps", type=int, default=300,
                    help="Fine-tuning steps (default: %(default)s).")
parser.add_argument("--learning-rate", type=float, default=2e-3)
parser.add_argument("--layer-decay", type=float, default=0.75,
                    help="Block k of L learns at lr * decay ** (L + 1 - k); "
                    "1 turns it off (default: %(default)s).")
parser.add_argument("--output", default="finetune",
                    help="Output folder (default: %(default)s, in the "
                    "current directory).")
parser.add_argument("--quick", action="store_true",
                    help="A few steps of each stage, to check the script.")
args = parser.parse_args()

import keras  # noqa: E402
import keras_hub  # noqa: E402

import keras_simmim  # noqa: E402
from keras_simmim import data  # noqa: E402
from keras_simmim import downstream  # noqa: E402

keras.utils.set_random_seed(0)
train_px, train_y = data.load_digits("train")  # uint8 (n, 32, 32, 3)

if args.preset:
    backbone = keras_simmim.backbones.load_backbone(
        args.preset, image_shape=train_px.shape[1:])
    print(f"Loaded {type(backbone).__name__} from {args.preset}")
else:
    backbone = keras_hub.models.ViTBackbone(
        image_shape=(32, 32, 3), patch_size=4, num_layers=4, num_heads=4,
        hidden_dim=64, mlp_dim=128)
    model = keras_simmim.SimMIMModel(backbone, mask_patch_size=8)
    steps_per_epoch = 3 if args.quick else len(train_px) // 64
    epochs = 1 if args.quick else args.pretrain_epochs
    model.compile(optimizer=model.default_optimizer(downstream.warmup_cosine(
        2e-3, epochs * steps_per_epoch, epochs * steps_per_epoch // 10)))
    print(f"No --preset: SimMIM pretraining on the unlabeled digits, "
          f"{epochs} epoch(s)")
    model.fit(data.from_arrays(train_px, augment=True, shuffle=True,
                               batch_size=64, drop_remainder=True).repeat(),
              epochs=epochs, steps_per_epoch=steps_per_epoch, verbose=2)

subset = data.stratified_subset(train_y, args.labels_fraction, seed=0)
labelled = data.from_arrays(
    train_px[subset], train_y[subset], augment=True, flip=False,  # digits
    shuffle=True, batch_size=32).repeat()
steps = 5 if args.quick else args.steps
classifier = keras_simmim.SimMIMClassifier(backbone, num_classes=10)
classifier.compile_for_finetuning(
    learning_rate=args.learning_rate, total_steps=steps,
    layer_decay=args.layer_decay)
print(f"Fine-tuning on {len(subset)} labelled digits, {steps} steps")
classifier.fit(labelled, steps_per_epoch=steps, epochs=1, verbose=2)

for split in ("validation", "test"):
    images, labels = data.load_digits(split)
    accuracy = classifier.evaluate(data.normalize(images), labels,
                                   verbose=0)[1]
    print(f"{split} accuracy: {accuracy:.3f} ({len(labels)} digits)")
os.makedirs(args.output, exist_ok=True)
path = os.path.join(args.output, "classifier.keras")
classifier.save(path)
print(f"wrote {os.path.abspath(path)}")
