"""Visual question answering on Sort-of-CLEVR: image + text fusion.

The built-in Sort-of-CLEVR (`data.load_sort_of_clevr`, generated in code:
six coloured squares and circles per image, questions such as "is the red
object on the left or on the right?" with one-word answers) trains a
`multimodal.FusionClassifier`: a small CNN image encoder (the Relation
Networks paper's: four stride-2 convolutions with batch norm), a tiny
keras-hub BERT over a WordPiece vocabulary computed from the questions
(`multimodal.build_text_preprocessor`, offline), fused by FiLM (the
question scales and shifts the CNN's feature maps; `--fusion` picks
another). Prints accuracy on the
held-out test questions, relational and non-relational, beside the
language prior (`data.language_prior_accuracy`: the best any model that
ignores the image can do). `--pretrain-epochs N` SimMIM-pretrains the CNN
on the training images first (benchmarks/multimodal found no gain on this
task at this budget). Nothing is downloaded.

    KERAS_BACKEND=torch python examples/image_text_qa.py [--epochs 5] [--fusion film_relational]

The full run is 5 epochs over the 78,400 training questions (6,125 steps
of 64 at 64x64). It is the configuration of the `film | cnn-batch+pos
random` rows of `benchmarks/multimodal/results.md`, which measured, at
6,000 steps, non-relational 100.0% in 3 of 3 seeds (language prior 50.4%)
and relational 68.0-72.1% (prior 44.2%), about 20 minutes per run on one
core with torch; FiLM leaves the prior after 2,000-2,500 steps, so fewer
epochs can stop before it does. The token fusions (`cross_attention`,
`gated`, `late`, `merged`) stay near the prior on non-relational questions
there. `--quick` trains a few steps on 16 scenes to check the script
works.
"""

import argparse

parser = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
# multimodal.CLASSIFIER_FUSIONS, spelled out: --help runs before imports.
parser.add_argument("--fusion", default="film",
                    choices=("film", "film_relational", "relational",
                             "cross_attention", "gated", "late", "merged"),
                    help="Fusion (default: %(default)s, the one that binds "
                    "the question to its object here).")
parser.add_argument("--epochs", type=int, default=5,
                    help="Passes over the training questions "
                    "(default: %(default)s).")
parser.add_argument("--train-scenes", type=int, default=9800,
                    help="Training images, 8 questions each (default: all "
                    "%(default)s).")
parser.add_argument("--pretrain-epochs", type=int, default=0,
                    help="SimMIM epochs on the training images before "
                    "question answering (default: %(default)s, random init).")
parser.add_argument("--batch-size", type=int, default=64,
                    help="Questions per step (default: %(default)s).")
parser.add_argument("--learning-rate", type=float, default=1e-3,
                    help="AdamW's peak, warm-up + cosine (default: "
                    "%(default)s).")
parser.add_argument("--quick", action="store_true",
                    help="A few steps of each stage (SimMIM included), to "
                    "check the script.")
args = parser.parse_args()
if args.quick:
    args.train_scenes, args.epochs, args.pretrain_epochs = 16, 1, 1
    args.batch_size = 32

import keras  # noqa: E402
import keras_hub  # noqa: E402
import numpy as np  # noqa: E402

import keras_simmim  # noqa: E402
from keras_simmim import data  # noqa: E402
from keras_simmim import downstream  # noqa: E402
from keras_simmim import multimodal  # noqa: E402

SIZE, LENGTH = 64, 16  # image side; tokens per question with [CLS], [SEP]
keras.utils.set_random_seed(0)
train = data.load_sort_of_clevr("train", args.train_scenes, image_size=SIZE)
test = data.load_sort_of_clevr("test", 16 if args.quick else None,
                               image_size=SIZE)
preprocessor = multimodal.build_text_preprocessor(
    train["questions"], sequence_length=LENGTH, vocabulary_size=200)
for split in (train, test):
    # 36 distinct questions: tokenise each once, then index.
    unique, index = np.unique(split["questions"], return_inverse=True)
    tokens = preprocessor(unique)
    for key in ("token_ids", "padding_mask"):
        split[key] = keras.ops.convert_to_numpy(tokens[key])[index]


class Questions(keras.utils.PyDataset):
    """(image + question, answer) batches; each question's image is
    looked up and normalised per batch, so the images stay uint8 in
    memory."""

    def __init__(self, split, batch_size, shuffle):
        super().__init__()
        self.split, self.batch_size, self.shuffle = split, batch_size, shuffle
        self.rng = np.random.default_rng(0)
        self.order = np.arange(len(split["answers"]))
        self.on_epoch_end()

    def __len__(self):
        return -(-len(self.order) // self.batch_size)

    def __getitem__(self, i):
        rows = self.order[i * self.batch_size:(i + 1) * self.batch_size]
        s = self.split
        return ({"images": data.normalize(s["images"][s["image_index"][rows]]),
                 "token_ids": s["token_ids"][rows],
                 "padding_mask": s["padding_mask"][rows]}, s["answers"][rows])

    def on_epoch_end(self):
        if self.shuffle:
            self.rng.shuffle(self.order)


# The image encoder: 4 stride-2 convolutions with batch norm (a plain
# Keras CNN; the feature grid is 4x4 at 64x64). Batch norm matters for
# FiLM: with layer norm over each cell's channels FiLM sat at the prior for
# 2,500 to more than 6,000 steps (benchmarks/multimodal, CONTRIBUTING.md).
x = inputs = keras.Input((SIZE, SIZE, 3))
for _ in range(4):
    x = keras.layers.Conv2D(64, 3, strides=2, padding="same")(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
cnn = keras.Model(inputs, x, name="cnn")

if args.pretrain_epochs:
    simmim = keras_simmim.SimMIMModel(cnn, mask_patch_size=8,
                                      model_patch_size=8)  # 8x8 pixel blocks
    simmim.compile(optimizer=simmim.default_optimizer(1e-3))
    print(f"SimMIM pretraining of the CNN, {args.pretrain_epochs} epoch(s)")
    simmim.fit(data.from_arrays(train["images"], augment=True, shuffle=True,
                                batch_size=64).repeat(),
               epochs=args.pretrain_epochs, verbose=2,
               steps_per_epoch=2 if args.quick else len(train["images"]) // 64)

bert = keras_hub.models.BertBackbone(
    vocabulary_size=preprocessor.tokenizer.vocabulary_size(), num_layers=2,
    num_heads=4, hidden_dim=64, intermediate_dim=128,
    max_sequence_length=LENGTH)
# The fusion reads BERT's token features; its pooled [CLS] output is unused.
bert.get_layer("pooled_dense").trainable = False
model = multimodal.FusionClassifier(
    cnn, bert, num_classes=12,  # square, circle, left, right, ..., 1-6
    fusion=args.fusion, fusion_dim=64, fusion_layers=2, fusion_heads=4)
batches = Questions(train, args.batch_size, shuffle=True)
steps = args.epochs * len(batches)
model.compile(
    optimizer=keras.optimizers.AdamW(
        downstream.warmup_cosine(args.learning_rate, steps, steps // 20),
        weight_decay=0.05, global_clipnorm=1.0),
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    metrics=["accuracy"])
print(f"Training {args.fusion} fusion on {len(train['answers'])} questions "
      f"about {args.train_scenes} images, {steps} steps")
model.fit(batches, epochs=args.epochs, verbose=2)

logits = model.predict(Questions(test, 500, shuffle=False), verbose=0)
right = np.argmax(logits, axis=-1) == test["answers"]
prior = data.language_prior_accuracy(train, test)
print(f"Test accuracy on {len(right)} held-out questions "
      "(language prior: the best answer from the question alone):")
for name, rows in (("relational", test["relational"]),
                   ("non-relational", ~test["relational"])):
    print(f"  {name:15s} {right[rows].mean():.3f}  (prior "
          f"{prior[name.replace('-', '_')]:.3f})")
