"""Fusion designs on Sort-of-CLEVR question answering, with random-init and
SimMIM-pretrained image encoders.

    KERAS_BACKEND=torch python benchmarks/multimodal/run.py

(torch: no per-model compilation; the same script runs on every backend.)

Data: the built-in `load_sort_of_clevr` splits (train 9,800 images, 8
questions each; validation 200 images; test 1,000 images), 64x64 pixels.
Text: a WordPiece vocabulary computed from the training questions, a
2-layer width-64 `keras_hub.models.BertBackbone`. Image encoder: a 4-layer
width-64 `keras_hub.models.ViTBackbone` (patch 8, 64 tokens), either random
init or SimMIM-pretrained on the unlabeled training images (cached under
`--cache`). Every row trains a `FusionClassifier` for the same number of
steps (`--steps`, about 15 minutes per row on a 2-core CPU) with AdamW and
a warm-up + cosine schedule, evaluates the validation questions every
`--eval-every` steps (the learning curve; steps-to-threshold are read off
it) and reports test accuracy, relational and non-relational separately,
beside two exact baselines: the language prior (the best answer from the
question alone, `language_prior_accuracy`) and the image prior (the best
answer from the image and the question's template without the named
object: the majority answer over the scene's six objects,
`image_prior_accuracy`), the bar a model must pass to show that it reads
which object the question names.

Stages: `--stage baselines` (only the two priors, written into `--out`
without training), `--stage pretrain` (only the cached SimMIM encoder),
`--stage table` (every fusion x encoder at `--steps`), `--stage long` (the
`--long-fusion` for `--long-steps`, both encoders), `--stage retrieval`
(a `ContrastiveAligner` with `--retrieval-loss clip|siglip` on
image-caption pairs, recall@K). `--text bag` swaps the BERT text tower for
its token embeddings alone (an ablation: a bag of words, as a one-hot
question code would give).
Rows are written after each run and a rerun skips the rows its output
already has, so a long table can be filled in over several invocations.
"""

import argparse
import json
import os
import re
import sys
import time

import keras
import keras_hub
import numpy as np

import keras_simmim
from keras_simmim.data import from_arrays
from keras_simmim.data import normalize
from keras_simmim.data.sort_of_clevr import ANSWERS
from keras_simmim.data.sort_of_clevr import COLORS
from keras_simmim.data.sort_of_clevr import NON_RELATIONAL
from keras_simmim.data.sort_of_clevr import RELATIONAL
from keras_simmim.data.sort_of_clevr import _answers
from keras_simmim.data.sort_of_clevr import language_prior_accuracy
from keras_simmim.data.sort_of_clevr import load_sort_of_clevr
from keras_simmim.downstream import warmup_cosine
from keras_simmim.multimodal import ContrastiveAligner
from keras_simmim.multimodal import FusionClassifier
from keras_simmim.multimodal import build_text_preprocessor
from keras_simmim.multimodal import retrieval_recall
from keras_simmim.multimodal.film import READOUTS

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # benchmarks/report.py
from report import out_prefix  # noqa: E402
from report import paired_test  # noqa: E402
from report import run_info  # noqa: E402
from report import write_markdown  # noqa: E402
FUSION_ORDER = ("cross_attention", "merged", "gated", "late", "film",
                "relational", "film_relational")
ENCODERS = ("random", "simmim")
TEXT_LABELS = {"bert": "BERT", "bag": "bag-of-words"}
LENGTH = 16
TRAIN_SCENES = 9800  # the built-in training split
CAPTION_LENGTH = 64


class QuestionBatches(keras.utils.PyDataset):
    """Endless shuffled (image, question) -> answer batches; images are
    gathered and normalised per batch (the question table indexes the
    images). Pass `k` over the questions uses its own permutation, so the
    order is fixed by `seed` however `fit` splits the steps into epochs.

    Endless on purpose: with a finite `PyDataset`, `fit(steps_per_epoch=
    500)` cuts the epoch in which the data runs out short (keras resets
    the iterator instead of wrapping), so 2,000 requested steps over
    1,225 batches trained 1,725."""

    def __init__(self, split, batch_size, seed, **kwargs):
        super().__init__(**kwargs)
        self.split, self.batch_size, self.seed = split, batch_size, seed
        self.per_pass = len(split["answers"]) // batch_size
        self.order = (-1, None)

    @property
    def num_batches(self):
        return None  # endless

    def __getitem__(self, i):
        k, j = divmod(i, self.per_pass)
        if self.order[0] != k:
            rng = np.random.default_rng((self.seed, k))
            self.order = (k, rng.permutation(len(self.split["answers"])))
        rows = self.order[1][j * self.batch_size:(j + 1) * self.batch_size]
        return inputs_for(self.split, rows), self.split["answers"][rows]


def inputs_for(split, rows):
    images = split["images"][split["image_index"][rows]]
    return {"images": normalize(images),
            "token_ids": split["token_ids"][rows],
            "padding_mask": split["padding_mask"][rows]}


def load_data(args):
    splits = {name: load_sort_of_clevr(
        name, image_size=args.image_size,
        num_images=args.train_scenes if name == "train" else None)
        for name in ("train", "validation", "test")}
    train = splits["train"]
    # The vocabulary of the built-in split's questions, whatever
    # `--train-scenes` is (the same token ids as rows made before it).
    pre = build_text_preprocessor(
        train["questions"][train["image_index"] < TRAIN_SCENES], LENGTH, 200)
    for split in splits.values():
        # 36 distinct questions: tokenise each once, then index.
        unique, index = np.unique(split["questions"], return_inverse=True)
        text = pre(unique)
        for key in ("token_ids", "padding_mask"):
            split[key] = keras.ops.convert_to_numpy(text[key])[index]
    return splits, int(pre.tokenizer.vocabulary_size())


def vit(seed, args):
    keras.utils.set_random_seed(seed)
    return keras_hub.models.ViTBackbone(
        image_shape=(args.image_size, args.image_size, 3), patch_size=8,
        num_layers=args.depth, num_heads=4, hidden_dim=args.width,
        mlp_dim=2 * args.width)


CNN_NORMS = {
    "batch": keras.layers.BatchNormalization,
    # Per position over the channels: no running statistics to lag behind.
    "layer": lambda: keras.layers.LayerNormalization(epsilon=1e-6),
    # Per image over all positions, in groups of channels (Wu & He 2018):
    # no running statistics, and unlike "layer" it keeps the contrast
    # between a cell that holds an object and an empty one.
    "group": lambda: keras.layers.GroupNormalization(groups=32),
    "none": None,
}


def cnn(seed, args):
    """The Relation Networks paper's image encoder: `--depth` 3x3 stride-2
    convolutions with a norm (`--cnn-norm`; the paper's is batch norm) and
    ReLU; a plain functional Keras CNN, which SimMIM masks in pixel
    space."""
    keras.utils.set_random_seed(seed)
    x = inputs = keras.Input((args.image_size, args.image_size, 3))
    for _ in range(args.depth):
        x = keras.layers.Conv2D(args.width, 3, strides=2, padding="same")(x)
        if CNN_NORMS[args.cnn_norm] is not None:
            x = CNN_NORMS[args.cnn_norm]()(x)
        x = keras.layers.ReLU()(x)
    return keras.Model(inputs, x, name="cnn")


def encoder_label(args):
    """The image encoder's name: `vit` or `cnn-<norm>`."""
    return "vit" if args.arch == "vit" else f"cnn-{args.cnn_norm}"


def positions(fusion, args):
    """Whether the fusion adds its image position embedding (never under
    late fusion's plain mean; `fusion` None: the aligner, no fusion)."""
    return args.image_positions == "on" and fusion not in (None, "late")


def arch_label(args, fusion):
    """The image side's name in rows: the encoder, `+pos` when the fusion
    adds its image position embedding (rows made before that option
    existed had none)."""
    return encoder_label(args) + ("+pos" if positions(fusion, args) else "")


def image_encoder(kind, seed, images, args):
    """The image encoder, random or SimMIM-pretrained (cached per
    settings) on the built-in split's images (the first `TRAIN_SCENES`)."""
    images = images[:TRAIN_SCENES]
    backbone = (vit if args.arch == "vit" else cnn)(seed, args)
    if kind == "random":
        return backbone, None
    tag = (f"simmim-clevr-{encoder_label(args)}-seed{seed}-{args.image_size}-"
           f"{args.depth}-{args.width}-{args.pretrain_epochs}.weights.h5")
    path = os.path.join(args.cache, tag)
    # 8x8 masked patches for both (the CNN's mask grid is finer than its
    # stride-16 feature map).
    model = keras_simmim.SimMIMModel(backbone, mask_patch_size=8,
                                     mask_ratio=0.6, seed=seed,
                                     model_patch_size=8)
    if os.path.exists(path):
        model.load_weights(path)
        print(f"  SimMIM encoder: loaded {path}", flush=True)
        with open(path + ".json") as f:
            return backbone, json.load(f)
    steps = len(images) // 64 * args.pretrain_epochs
    model.compile(optimizer=keras.optimizers.AdamW(
        warmup_cosine(2e-3, steps, steps // 10), weight_decay=0.05,
        global_clipnorm=5.0))
    ds = from_arrays(images, augment=True, shuffle=True, seed=seed,
                     batch_size=64, drop_remainder=True).repeat()
    start = time.time()
    history = model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0)
    info = {"epochs": args.pretrain_epochs, "steps": steps,
            "seconds": round(time.time() - start),
            "final_loss": float(history.history["loss"][-1])}
    os.makedirs(args.cache, exist_ok=True)
    model.save_weights(path)
    with open(path + ".json", "w") as f:
        json.dump(info, f)
    print(f"  SimMIM encoder: {info}", flush=True)
    return backbone, info


TEMPLATE_NAMES = ("shape", "left/right", "top/bottom", "closest's shape",
                  "furthest's shape", "count")


def template_ids(questions):
    """Index into `NON_RELATIONAL + RELATIONAL` of each question."""
    patterns = [re.compile(re.escape(t).replace(r"\{\}", r"\w+") + "$")
                for t in NON_RELATIONAL + RELATIONAL]
    return np.array([next(i for i, p in enumerate(patterns)
                          if p.match(str(q))) for q in questions])


def accuracy(model, split, batch_size=500, by_template=False):
    rows = np.arange(len(split["answers"]))
    guesses = np.concatenate([
        np.argmax(keras.ops.convert_to_numpy(
            model(inputs_for(split, rows[i:i + batch_size]))), axis=-1)
        for i in range(0, len(rows), batch_size)])
    right = guesses == split["answers"]
    rel = split["relational"]
    out = {"relational": float(right[rel].mean()),
           "non_relational": float(right[~rel].mean())}
    if by_template:
        ids = template_ids(split["questions"])
        out["by_template"] = {name: float(right[ids == i].mean())
                              for i, name in enumerate(TEMPLATE_NAMES)}
    return out


def object_answers(split, image_size):
    """Every object's answer to every template, recovered from the images:
    int `(scenes, 6 objects, 6 templates)` indices into `ANSWERS`.

    Each colour's pixels are one whole object (objects never overlap), so
    their centroid is the object's centre and their count tells a square
    (`(2r + 1)^2` pixels) from a circle; `_answers` then gives the answers
    exactly as the generator does. Checked against every question of the
    split."""
    radius = max(2, image_size // 15)  # as `sort_of_clevr` draws them
    square = (2 * radius + 1) ** 2
    out = np.zeros((len(split["images"]), len(COLORS),
                    len(NON_RELATIONAL + RELATIONAL)), "int32")
    for i, image in enumerate(split["images"]):
        centres, shapes = [], []
        for rgb in COLORS.values():
            ys, xs = np.nonzero((image == np.array(rgb, "uint8")).all(-1))
            centres.append((ys.mean(), xs.mean()))
            shapes.append(0 if len(ys) == square else 1)
        centres = np.array(centres, "float32")
        shapes = np.array(shapes)
        for obj in range(len(COLORS)):
            out[i, obj] = [ANSWERS.index(a) for a in
                           _answers(centres, shapes, obj, image_size)]
    template = template_ids(split["questions"])
    colour = np.array([next(k for k, name in enumerate(COLORS)
                            if f" {name} " in str(q))
                       for q in split["questions"]])
    asked = out[split["image_index"], colour, template]
    if not np.array_equal(asked, split["answers"]):
        raise ValueError(
            "Scenes recovered from the images disagree with "
            f"{int((asked != split['answers']).sum())} answers: check "
            f"`image_size` ({image_size}).")
    return out


def image_prior_accuracy(split, image_size):
    """Accuracy of the best answer from the image and the question's
    template, without the named object: for each question, the answer most
    of the scene's six objects have for that template (ties: the lower
    answer index). What a model that sees the scene and the kind of
    question, but not which object it names, can reach: 61.6%
    non-relational on the 64x64 test split (six fair coins would give
    65.6%; objects that may not overlap split more evenly between sides).

    Returns `{"all", "relational", "non_relational", "by_template"}` and
    `"expected"`: the same averaged over the named object (the majority's
    share of the six objects), free of the tie-break's luck."""
    answers = object_answers(split, image_size)
    template = template_ids(split["questions"])
    votes = answers[split["image_index"], :, template]  # (questions, 6)
    counts = np.stack([(votes == a).sum(-1) for a in range(len(ANSWERS))],
                      -1)
    right = counts.argmax(-1) == split["answers"]
    share = counts.max(-1) / len(COLORS)
    rel = split["relational"]
    return {"all": float(right.mean()),
            "relational": float(right[rel].mean()),
            "non_relational": float(right[~rel].mean()),
            "by_template": {name: float(right[template == i].mean())
                            for i, name in enumerate(TEMPLATE_NAMES)},
            "expected": {"relational": float(share[rel].mean()),
                         "non_relational": float(share[~rel].mean())}}


class Curve(keras.callbacks.Callback):
    def __init__(self, split, every):
        super().__init__()
        self.split, self.every, self.points = split, every, []

    def on_epoch_end(self, epoch, logs=None):
        acc = accuracy(self.model, self.split)
        self.points.append({"step": (epoch + 1) * self.every,
                            "loss": float(logs["loss"]), **acc})
        print("    step {step}: loss {loss:.3f}, validation relational "
              "{relational:.3f} non-relational {non_relational:.3f}".format(
                  **self.points[-1]), flush=True)


def towers(encoder, data, vocab, length, args):
    """The image encoder (random or SimMIM), a fresh BERT text tower and
    the pretraining record."""
    backbone, pretraining = image_encoder(
        encoder, args.seed, data["train"]["images"], args)
    keras.utils.set_random_seed(args.seed)
    if args.text == "bag":
        return backbone, bag_of_words(vocab, args.width), pretraining
    text = keras_hub.models.BertBackbone(
        vocabulary_size=vocab, num_layers=2, num_heads=4,
        hidden_dim=args.width, intermediate_dim=2 * args.width,
        max_sequence_length=length)
    return backbone, text, pretraining


def bag_of_words(vocab, width):
    """The ablation's text tower: token embeddings only, no transformer.
    The fusions pool the text as the mean of its real tokens, so this
    tower hands them a learned bag of words (the question's colour word
    and template words, weighted equally) from step 0: what a one-hot
    question code gives, while BERT must first learn to carry the colour
    word into its pooled output."""
    token_ids = keras.Input((None,), dtype="int32", name="token_ids")
    padding_mask = keras.Input((None,), dtype="bool", name="padding_mask")
    tokens = keras.layers.Embedding(vocab, width, name="embedding")(
        token_ids)
    return keras.Model({"token_ids": token_ids,
                        "padding_mask": padding_mask}, tokens,
                       name="bag_of_words")


def optimizer(steps, args):
    """AdamW with warm-up + cosine, weight decay 0.05 and clipping (the
    table's), or `--optimizer adam`: Adam at a constant `--lr`, no decay,
    no clipping (the Relation Networks code's)."""
    if args.optimizer == "adam":
        return keras.optimizers.Adam(args.lr)
    return keras.optimizers.AdamW(
        warmup_cosine(args.lr, steps, steps // 20), weight_decay=0.05,
        global_clipnorm=1.0)


def run(fusion, encoder, steps, data, vocab, args):
    seed, info = args.seed, run_info()  # the code as it was loaded
    variant = variant_fields(fusion, args)
    backbone, text, pretraining = towers(encoder, data, vocab, LENGTH, args)
    model = FusionClassifier(backbone, text, num_classes=len(ANSWERS),
                             fusion=fusion,
                             fusion_dim=variant.get("fusion_dim",
                                                    args.width),
                             fusion_layers=variant.get("fusion_layers", 2),
                             fusion_heads=4,
                             image_position_embedding=positions(fusion,
                                                                args),
                             film_readout=variant.get("readout",
                                                      "max_pool"),
                             relational_shortcut=variant.get("shortcut",
                                                             False))
    model.compile(
        optimizer=optimizer(steps, args),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    curve = Curve(data["validation"], args.eval_every)
    batches = QuestionBatches(data["train"], args.batch, seed)
    start = time.time()
    model.fit(batches, steps_per_epoch=args.eval_every,
              epochs=steps // args.eval_every, callbacks=[curve], verbose=0)
    seconds = time.time() - start
    return {"fusion": fusion, "arch": arch_label(args, fusion),
            "encoder": encoder, "seed": seed, "text": args.text,
            "optimizer": args.optimizer,
            **variant, "train_scenes": args.train_scenes,
            "steps": steps, "endless_batches": True,
            "train_seconds": round(seconds), "pretraining": pretraining,
            "run": info, "curve": curve.points,
            "test": accuracy(model, data["test"], by_template=True)}


def variant_fields(fusion, args):
    """A row's settings beside the table's, as its row and its rerun key
    record them: a FiLM row's read-out (the other fusions have none), and
    the fusion's width and depth when given (`--fusion-dim`,
    `--fusion-layers`; rows without them used the image width and 2), and
    a `film_relational` row's FiLM shortcut when on
    (`--relational-shortcut`)."""
    fields = {"readout": args.film_readout} if fusion == "film" else {}
    if fusion == "film_relational" and args.relational_shortcut:
        fields["shortcut"] = True
    if args.fusion_dim is not None:
        fields["fusion_dim"] = args.fusion_dim
    if args.fusion_layers is not None:
        fields["fusion_layers"] = args.fusion_layers
    return fields


def caption_tokens(data):
    pre = build_text_preprocessor(data["train"]["captions"], CAPTION_LENGTH,
                                  200)
    out = {}
    for name, split in data.items():
        text = pre(split["captions"])
        out[name] = {k: keras.ops.convert_to_numpy(text[k])
                     for k in ("token_ids", "padding_mask")}
    return out, int(pre.tokenizer.vocabulary_size())


def retrieval(encoder, steps, data, args):
    """CLIP-style aligner on (image, caption) pairs; recall@K on the test
    scenes (1,000 candidates each way)."""
    info = run_info()  # the code as it was loaded
    captions, vocab = caption_tokens(data)
    backbone, text, pretraining = towers(encoder, data, vocab,
                                         CAPTION_LENGTH, args)
    model = ContrastiveAligner(backbone, text, embed_dim=args.width,
                               loss=args.retrieval_loss)
    model.compile(optimizer=optimizer(steps, args))

    def pairs(name):
        return dict(captions[name],
                    images=normalize(data[name]["images"]))

    train = pairs("train")
    epochs = steps // (len(data["train"]["images"]) // args.batch)
    start = time.time()
    model.fit(train, batch_size=args.batch, epochs=epochs, verbose=0,
              shuffle=True)
    seconds = time.time() - start
    out = model.predict(pairs("test"), batch_size=500, verbose=0)
    recall = retrieval_recall(out["image_embeddings"],
                              out["text_embeddings"])
    return {"arch": encoder_label(args), "encoder": encoder,
            "loss": args.retrieval_loss, "seed": args.seed,
            "train_scenes": args.train_scenes, "epochs": epochs,
            "steps": steps, "train_seconds": round(seconds),
            "pretraining": pretraining, "run": info,
            "candidates": len(data["test"]["images"]), "test": recall}


def steps_to(row, key, threshold, batch):
    """Steps taken (`trained`) at the first curve point at or above
    `threshold`, or None."""
    for point in row["curve"]:
        if point[key] >= threshold:
            return trained(row, point["step"], batch)
    return None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stage", choices=("baselines", "pretrain",
                                            "table", "long", "retrieval"),
                        default="table")
    parser.add_argument("--steps", type=int, default=6000,
                        help="Training steps per table row.")
    parser.add_argument("--long-steps", type=int, default=24000)
    parser.add_argument("--long-fusion", choices=FUSION_ORDER,
                        default="cross_attention")
    parser.add_argument("--retrieval-steps", type=int, default=1530,
                        help="Aligner training steps (rounded to epochs).")
    parser.add_argument("--retrieval-loss", choices=("clip", "siglip"),
                        default="clip",
                        help="The aligner's loss (`--stage retrieval`).")
    parser.add_argument("--fusions", nargs="+", choices=FUSION_ORDER,
                        default=list(FUSION_ORDER))
    parser.add_argument("--encoders", nargs="+", choices=ENCODERS,
                        default=list(ENCODERS))
    parser.add_argument("--eval-every", type=int, default=500)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--arch", choices=("vit", "cnn"), default="vit",
                        help="Image encoder: a keras-hub ViT (patch 8) or "
                        "a plain Keras CNN (the Relation Networks "
                        "paper's).")
    parser.add_argument("--cnn-norm", choices=tuple(CNN_NORMS),
                        default="layer",
                        help="The CNN's norm (batch: the paper's; its "
                        "running statistics lag a fast-changing network).")
    parser.add_argument("--image-positions", choices=("on", "off"),
                        default="on",
                        help="The fusion's learned image position "
                        "embedding (late fusion: always off).")
    parser.add_argument("--train-scenes", type=int, default=TRAIN_SCENES,
                        help="Training scenes: the built-in split's 9,800, "
                        "or more from the same generator stream (its first "
                        "9,800 are the split; the SimMIM encoder is always "
                        "pretrained on those).")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--pretrain-epochs", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--optimizer", choices=("adamw", "adam"),
                        default="adamw",
                        help="adamw: warm-up + cosine, weight decay 0.05, "
                        "global clipnorm 1 (the table's); adam: constant "
                        "--lr, no decay or clipping (the Relation Networks "
                        "code's).")
    parser.add_argument("--text", choices=tuple(TEXT_LABELS),
                        default="bert",
                        help="Text tower: a 2-layer BERT (keras-hub) or, "
                        "as an ablation, its token embeddings alone (a "
                        "bag of words: what a one-hot question code "
                        "gives).")
    parser.add_argument("--film-readout", choices=READOUTS,
                        default="max_pool",
                        help="FiLM's read-out: global max pooling (the "
                        "FiLM paper's) or the cells flattened (the "
                        "Relation Networks CNN+MLP's).")
    parser.add_argument("--fusion-dim", type=int, default=None,
                        help="The fusion's width (FusionClassifier's "
                        "fusion_dim; default: --width).")
    parser.add_argument("--fusion-layers", type=int, default=None,
                        help="The fusion's depth (fusion_layers: the "
                        "Relation Network's g layers, the FiLMBlocks after "
                        "the backbone; default 2).")
    parser.add_argument("--relational-shortcut", action="store_true",
                        help="film_relational: the classifier also reads "
                        "FiLM's max-pooled read-out beside the relational "
                        "module (FusionClassifier's relational_shortcut, "
                        "on there by default; without this flag the "
                        "benchmark passes False, as its first "
                        "film_relational rows did, so a row's key says "
                        "which it ran).")
    parser.add_argument("--cache", default="/tmp/keras_simmim_bench")
    parser.add_argument("--out", type=out_prefix,
                        default=os.path.join(HERE, "results"))
    args = parser.parse_args(argv)
    runs = stage_fusions(args)
    if args.relational_shortcut and "film_relational" not in runs:
        parser.error("--relational-shortcut applies to film_relational, "
                     f"which this --stage {args.stage} does not run "
                     f"(fusions: {runs}).")

    data, vocab = load_data(args)
    results = {"rows": [], "long": [], "retrieval": []}
    if os.path.exists(args.out + ".json"):
        with open(args.out + ".json") as f:
            results = json.load(f)
    results["prior"] = language_prior_accuracy(data["train"], data["test"])
    results["image_prior"] = image_prior_accuracy(data["test"],
                                                  args.image_size)
    if args.stage == "baselines":
        results.setdefault("settings", vars(args))
        results.setdefault("backend", keras.backend.backend())
        if results["settings"]["image_size"] != args.image_size:
            raise ValueError(
                f"{args.out}.json was made at image size "
                f"{results['settings']['image_size']}; pass --image-size "
                "to match.")
        write(results, args)
        print(f"language prior {results['prior']}, image prior "
              f"{results['image_prior']}: wrote {args.out}.json and .md")
        return
    if args.stage == "pretrain":
        image_encoder("simmim", args.seed, data["train"]["images"], args)
        return
    for where, fusion, encoder, steps in plan(args, data):
        label = arch_label(args, fusion)
        name = f"{fusion or 'retrieval'} / {label} {encoder}"
        planned = _key({"fusion": fusion, "arch": label, "encoder": encoder,
                        "steps": steps, "train_scenes": args.train_scenes,
                        "seed": args.seed, "text": args.text,
                        "optimizer": args.optimizer,
                        "loss": args.retrieval_loss,
                        **variant_fields(fusion, args)})
        if any(_key(r) == planned for r in results.setdefault(where, [])):
            print(f"{name}: in {args.out}.json, skipped")
            continue
        if where == "retrieval":
            row = retrieval(encoder, steps, data, args)
        else:
            row = run(fusion, encoder, steps, data, vocab, args)
        results[where].append(row)
        print(f"{name}: test {row['test']} ({row['train_seconds']} s)",
              flush=True)
        results.update(settings=vars(args),
                       backend=keras.backend.backend())
        write(results, args)
    print(markdown(results))


def stage_fusions(args):
    """The fusions the stage trains (`--fusions` for the table, the one
    `--long-fusion` for the long stage, none for the others): what `plan`
    runs and what `main` checks fusion-only options against."""
    return {"table": list(args.fusions),
            "long": [args.long_fusion]}.get(args.stage, [])


def plan(args, data):
    """`(where, fusion, encoder, steps)` of every run of the stage (the
    aligner's steps rounded to whole epochs; `fusion` None)."""
    if args.stage in ("table", "long"):
        where = "rows" if args.stage == "table" else "long"
        steps = args.steps if args.stage == "table" else args.long_steps
        return [(where, f, e, steps) for f in stage_fusions(args)
                for e in args.encoders]
    per_epoch = len(data["train"]["images"]) // args.batch
    steps = max(1, args.retrieval_steps // per_epoch) * per_epoch
    return [("retrieval", None, e, steps) for e in args.encoders]


def _arch(row):
    """A row's image encoder (rows before `--cnn-norm` say `cnn`: batch
    norm)."""
    arch = row.get("arch", "vit")
    return "cnn-batch" if arch == "cnn" else arch


def _key(row):
    """Rows with the same key are the same run (rerun: skipped); a
    question-answering row made before the batches were endless
    (`trained`) is not the same run as one made after."""
    lost_steps = "curve" in row and not row.get("endless_batches")
    return (row.get("fusion"), _arch(row), row["encoder"],
            row["steps"], row.get("train_scenes", TRAIN_SCENES), lost_steps,
            row.get("seed", 0), row.get("text", "bert"),
            row.get("loss", "clip") if row.get("fusion") is None else None,
            row.get("optimizer", "adamw"), row.get("readout", "max_pool"),
            row.get("fusion_dim"), row.get("fusion_layers"),
            row.get("shortcut", False))


def write(results, args):
    """Writes the results, merged with rows another process (e.g. a
    second one-thread run beside this one) wrote to the same file."""
    if os.path.exists(args.out + ".json"):
        with open(args.out + ".json") as f:
            disk = json.load(f)
        for where in ("rows", "long", "retrieval"):
            have = {_key(r) for r in results.get(where, [])}
            results.setdefault(where, []).extend(
                r for r in disk.get(where, []) if _key(r) not in have)
    with open(args.out + ".json", "w") as f:
        json.dump(results, f, indent=1)
    write_markdown(args.out + ".md", markdown(results))


def trained(row, step, batch):
    """The optimizer steps a row had really taken at its curve point
    `step`. Rows made before `QuestionBatches` was endless lost the tail
    of every pass over the questions (keras ends the epoch in which a
    finite dataset runs out: with 1,225 batches a pass and 500-step
    epochs, 500 + 500 + 225 per pass), so their nominal steps overstate
    the training (2,000 -> 1,725)."""
    if row.get("endless_batches"):
        return step
    # 8 questions a scene: `load_sort_of_clevr`'s 4 of each kind.
    per_pass = row.get("train_scenes", TRAIN_SCENES) * 8 // batch
    every = row["curve"][0]["step"]
    done, left = 0, per_pass
    for _ in range(step // every):
        taken = min(every, left)
        done, left = done + taken, left - taken
        left = left or per_pass
    return done


def _steps(row, batch):
    """A row's training steps (the steps it really took when fewer), with
    its scene count when it is not the built-in split's."""
    scenes = row.get("train_scenes", TRAIN_SCENES)
    real = trained(row, row["steps"], batch)
    return (str(row["steps"])
            + ("" if real == row["steps"] else f" ({real} taken)")
            + ("" if scenes == TRAIN_SCENES else f" ({scenes:,} scenes)"))


def _encoder(row):
    """A row's encoder, with its SimMIM pretraining epochs, its seed when
    it is not 0 and its text tower when it is not BERT."""
    seed = row.get("seed", 0)
    epochs = (row.get("pretraining") or {}).get("epochs")
    return (row["encoder"] + (f" ({epochs} ep)" if epochs else "")
            + ("" if seed == 0 else f" (seed {seed})")
            + _variant(row))


def _variant(row):
    """The label of a row's text tower, optimizer, FiLM read-out and fusion
    size where they are not the table's (BERT, AdamW, max pooling, the
    image width and 2 layers)."""
    text = row.get("text", "bert")
    return (("" if text == "bert" else f" ({TEXT_LABELS[text]} text)")
            + ("" if row.get("optimizer", "adamw") == "adamw"
               else " (Adam, constant lr)")
            + ("" if row.get("readout", "max_pool") == "max_pool"
               else f" ({row['readout']} read-out)")
            + "".join(f" ({label} {row[key]})" for key, label in (
                ("fusion_dim", "fusion width"),
                ("fusion_layers", "fusion layers")) if key in row)
            + (" (FiLM shortcut)" if row.get("shortcut") else ""))


def seed_summary(rows, batch):
    """Markdown lines: configurations run with several seeds, their test
    accuracy as mean +- standard deviation (ddof 1) and steps to the
    thresholds per seed; SimMIM vs random init paired by seed (paired
    t-test) where both encoders ran the same seeds."""
    groups = {}
    for row in rows:
        if "curve" not in row or not row.get("endless_batches"):
            continue
        key = (row["fusion"], _arch(row), row["steps"], _variant(row))
        groups.setdefault(key, {}).setdefault(row["encoder"], {})[
            row.get("seed", 0)] = row
    lines = []
    for (fusion, arch, steps, variant), by_encoder in sorted(
            groups.items()):
        if max(len(seeds) for seeds in by_encoder.values()) < 2:
            continue
        if not lines:
            lines = ["", "Over seeds (test accuracy %, mean +- standard "
                     "deviation, ddof 1; steps to 90% non-relational / 80% "
                     "relational on validation, per seed, never: not "
                     "within the row's steps):", ""]
        for encoder, seeds in sorted(by_encoder.items()):
            # In seed order, as the line lists the seeds (not run order).
            ordered = [seeds[seed] for seed in sorted(seeds)]
            rel = [100 * r["test"]["relational"] for r in ordered]
            non = [100 * r["test"]["non_relational"] for r in ordered]
            reach = ["/".join(str(steps_to(r, key, threshold, batch)
                                  or "never")
                              for key, threshold in (("non_relational", 0.9),
                                                     ("relational", 0.8)))
                     for r in ordered]
            sd = (lambda v: f" +- {np.std(v, ddof=1):.1f}" if len(v) > 1
                  else "")
            lines.append(
                f"- {fusion} / {arch} {encoder}{variant}"
                f", {steps} steps, seeds "
                f"{sorted(seeds)}: relational {np.mean(rel):.1f}{sd(rel)}, "
                f"non-relational {np.mean(non):.1f}{sd(non)}; steps to "
                f"{', '.join(reach)}")
        shared = sorted(set(by_encoder.get("random", {}))
                        & set(by_encoder.get("simmim", {})))
        if len(shared) >= 2:
            for key in ("relational", "non_relational"):
                test = paired_test(
                    [100 * by_encoder["random"][i]["test"][key]
                     for i in shared],
                    [100 * by_encoder["simmim"][i]["test"][key]
                     for i in shared])
                lines.append(
                    f"  - SimMIM - random init, {key.replace('_', '-')}: "
                    f"{test['mean_diff']:+.1f} +- {test['std_err']:.1f} "
                    f"(paired t-test p {test['p']:.3f}, {len(shared)} "
                    "seeds)")
            lines += slow_phase_lines(by_encoder, shared, batch)
    return lines


def slow_phase_lines(by_encoder, shared, batch):
    """Does SimMIM shorten the slow phase? Steps to 90% non-relational on
    validation, SimMIM - random init paired by seed, where every shared
    seed of both encoders got there (the curve's resolution is its
    evaluation interval)."""
    reach = {encoder: [steps_to(by_encoder[encoder][i], "non_relational",
                                0.9, batch) for i in shared]
             for encoder in ("random", "simmim")}
    if None in reach["random"] + reach["simmim"]:
        return []
    diffs = [b - a for a, b in zip(reach["random"], reach["simmim"])]
    every = by_encoder["random"][shared[0]]["curve"][0]["step"]
    head = "  - SimMIM - random init, steps to 90% non-relational: "
    counts = (f"SimMIM later in {sum(d > 0 for d in diffs)}, earlier in "
              f"{sum(d < 0 for d in diffs)} of {len(shared)} seeds; "
              f"evaluations every {every} steps")
    if len(set(diffs)) == 1:
        # No spread: the t statistic is undefined, not significant.
        return [head + f"{diffs[0]:+.0f} in every seed ({counts}; no "
                "spread, so no t-test)"]
    test = paired_test(reach["random"], reach["simmim"])
    return [head + f"{test['mean_diff']:+.0f} +- {test['std_err']:.0f} "
            f"(paired t-test p {test['p']:.3f}; {counts})"]


BUDGET_TARGETS = (  # minutes of training on one core: non-rel, rel (%)
    (15, 0.95, None),
    (60, 0.98, 0.90),
)


def at_budget(row, minutes, batch):
    """Validation accuracy at the last evaluation within `minutes` of
    training (the row's seconds per step, evaluations included), and its
    step; None when the row has no curve or no point that early."""
    if "curve" not in row:
        return None
    per_step = row["train_seconds"] / trained(row, row["steps"], batch)
    inside = [p for p in row["curve"]
              if trained(row, p["step"], batch) * per_step <= 60 * minutes]
    return inside[-1] if inside else None


def _rank(runs):
    """A configuration's `(met, row, point)` runs: the share of seeds that
    meet the target, then the seed count, then the best accuracy."""
    return (sum(m for m, _, _ in runs) / len(runs), len(runs),
            max(p["non_relational"] + p["relational"] for _, _, p in runs))


def target_lines(rows, batch):
    """Markdown lines: the issue's budget targets, read off the validation
    curves at the budget, for every configuration that meets one in some
    seed, or the closest when none does (a configuration: every row
    setting but the seed)."""
    lines = ["", "Budget targets (validation accuracy at the last "
             "evaluation within the budget of one core's training time, "
             "evaluations included; a row shorter than the budget counts "
             "its end; per configuration, the seeds that meet it, with "
             "the CPU where the row records it: the minutes depend on "
             "it):", ""]
    for minutes, non_target, rel_target in BUDGET_TARGETS:
        configs = {}
        for row in rows:
            point = at_budget(row, minutes, batch)
            if point is None:
                continue
            key = _key(dict(row, seed=None))
            met = point["non_relational"] >= non_target and (
                rel_target is None or point["relational"] >= rel_target)
            configs.setdefault(key, []).append((met, row, point))
        if not configs:
            continue
        ranked = sorted(configs.values(), key=_rank, reverse=True)
        # Every configuration that meets it in a seed; else the closest.
        shown = [runs for runs in ranked if any(m for m, _, _ in runs)]
        want = f"{100 * non_target:.0f}% non-relational" + (
            "" if rel_target is None
            else f" and {100 * rel_target:.0f}% relational")
        for runs in shown or ranked[:1]:
            hits = sum(m for m, _, _ in runs)
            row = runs[0][1]
            verdict = ("met" if hits == len(runs) and len(runs) >= 3
                       else f"met in {hits} of {len(runs)} seeds" if hits
                       else "**missed**")
            scores = "; ".join(
                f"seed {r.get('seed', 0)}{_cpu(r)}: "
                f"{_pct(p['non_relational'])} / "
                f"{_pct(p['relational'])} at step "
                f"{trained(r, p['step'], batch)}" for _, r, p in runs)
            lines.append(
                f"- {minutes} min, {want}: {verdict}: {row['fusion']} / "
                f"{_arch(row)} {_encoder(dict(row, seed=0))} ({scores}; "
                "non-relational / relational)")
    return lines


def _cpu(row):
    """` (AVX2 CPU)`-style: the vector instructions of the CPU a row ran
    on, which change its minutes per step (these machines differ, and a
    budget in minutes is read on the row's own); empty for rows made
    before rows recorded their run."""
    flags = (row.get("run") or {}).get("cpu_flags")
    if flags is None:
        return ""
    kind = ("AMX" if "amx_bf16" in flags else "AVX-512" if "avx512f" in flags
            else "AVX2" if "avx2" in flags else "no-AVX2")
    return f" ({kind} CPU)"


def _pct(x):
    return "" if x is None else f"{100 * x:.1f}"


def markdown(results):
    s = results["settings"]
    prior = results["prior"]
    rel_bar = prior["relational"] + 0.05
    non_bar = prior["non_relational"] + 0.05
    lines = [
        "# Fusion designs on Sort-of-CLEVR question answering",
        "",
        f"Made by `KERAS_BACKEND={results['backend']} python "
        "benchmarks/multimodal/run.py --arch vit|cnn` (table rows, "
        "`--stage long` for the long runs, `--stage retrieval` for "
        "retrieval) on a 2-core CPU, as two one-thread lanes "
        "(`OMP_NUM_THREADS=1`, `--encoders random` / `--encoders simmim`; "
        "see CONTRIBUTING.md). Test accuracy (%) on 8,000 held-out "
        f"questions (1,000 scenes), {s['image_size']}x{s['image_size']}; "
        f"image encoders: `vit` a keras-hub ViT, {s['depth']} layers, width "
        f"{s['width']}, patch 8; `cnn-<norm>` {s['depth']} 3x3 stride-2 "
        f"convolutions with batch / layer / no norm and ReLU, {s['width']} "
        "channels; `+pos`: the fusion adds its learned image position "
        "embedding (`image_position_embedding=True`, the library default; "
        "rows without it ran before it existed or with "
        "`--image-positions off`); "
        f"text BERT 2 layers width {s['width']}, fusion width {s['width']}, "
        f"batch {s['batch']}, AdamW lr {s['lr']:g} warm-up + cosine, seed 0 "
        "unless a row says otherwise. SimMIM encoder: pretrained on the "
        "9,800 unlabeled training images (`simmim (20 ep)`: 20 epochs; "
        "masked 8x8 patches, ratio 0.6). Steps-to: first validation "
        "evaluation "
        f"(every {s['eval_every']} steps) at or above the threshold. "
        "Steps are optimizer steps taken: rows made before the question "
        "batches were endless lost the tail of each pass over the data "
        "(\"2000 (1725 taken)\"; their learning rate schedule was set for "
        "the nominal count); curve points and steps-to count steps taken.",
        "",
        f"Language prior (best answer from the question alone, exact): "
        f"relational {_pct(prior['relational'])}, non-relational "
        f"{_pct(prior['non_relational'])}. Target at the table budget: "
        f"every deep fusion >= prior + 5 on both ({_pct(rel_bar)} / "
        f"{_pct(non_bar)}).",
        "",
    ]
    image = results.get("image_prior")
    if image:
        lines += [
            "Image prior (best answer from the image and the question's "
            "template without the named object: the majority answer over "
            "the scene's six objects, exact on the test scenes): "
            f"relational {_pct(image['relational'])}, non-relational "
            f"{_pct(image['non_relational'])} (averaged over the named "
            f"object: {_pct(image['expected']['relational'])} / "
            f"{_pct(image['expected']['non_relational'])}). A model reads "
            "which object "
            "a question names only where it beats this; `> image prior` "
            "compares non-relational accuracy with it.", ""]
    lines += [
        "| fusion | image encoder | steps | train min | relational | "
        "non-relational | beats prior + 5 | "
        + ("> image prior (non-rel) | " if image else "")
        + "steps to 90% non-rel | steps to 80% rel |",
        "|---|---|---|---|---|---|---|---|---|" + ("---|" if image else ""),
    ]
    order = {name: i for i, name in enumerate(FUSION_ORDER)}
    results["rows"].sort(key=lambda r: (
        _arch(r), r["steps"], order[r["fusion"]], r["encoder"]))
    for row in results["rows"] + results.get("long", []):
        test = row["test"]
        deep = row["fusion"] != "late"
        met = (test["relational"] >= rel_bar
               and test["non_relational"] >= non_bar)
        verdict = ("yes" if met else "**no**") if deep else (
            "yes" if met else "no (shallow)")
        reach = [steps_to(row, key, bar, s["batch"]) for key, bar in
                 (("non_relational", 0.9), ("relational", 0.8))]
        lines.append(
            f"| {row['fusion']} | {_arch(row)} "
            f"{_encoder(row)} | {_steps(row, s['batch'])} | "
            f"{row['train_seconds'] / 60:.1f} | "
            f"{_pct(test['relational'])} | "
            f"{_pct(test['non_relational'])} | {verdict} | "
            + ("" if not image else "yes | " if test["non_relational"]
               > image["non_relational"] else "**no** | ")
            + " | ".join("not reached" if r is None else str(r)
                         for r in reach) + " |")
    detailed = [r for r in results["rows"] + results.get("long", [])
                if "by_template" in r["test"]]
    if detailed:
        lines += ["", "Test accuracy (%) by question template (each about "
                  "1,333 questions; chance 50% for the first five, the "
                  "count answer has six values):", "",
                  "| fusion | image encoder | steps | "
                  + " | ".join(TEMPLATE_NAMES) + " |",
                  "|---|---|---|" + "---|" * len(TEMPLATE_NAMES)]
        if image:
            lines.append(
                "| image prior (no named object) | | | " + " | ".join(
                    _pct(image["by_template"][name])
                    for name in TEMPLATE_NAMES) + " |")
        for row in detailed:
            lines.append(
                f"| {row['fusion']} | {_arch(row)} "
                f"{_encoder(row)} | {_steps(row, s['batch'])} | "
                + " | ".join(
                    _pct(row["test"]["by_template"][name])
                    for name in TEMPLATE_NAMES) + " |")
    lines += ["", "Learning curves (validation relational / non-relational "
              "%, by step):", ""]
    for row in results["rows"] + results.get("long", []):
        points = ", ".join(
            f"{trained(row, p['step'], s['batch'])}: "
            f"{_pct(p['relational'])}/"
            f"{_pct(p['non_relational'])}" for p in row["curve"])
        lines.append(f"- {row['fusion']} / {_arch(row)} "
                     f"{_encoder(row)} "
                     f"({_steps(row, s['batch'])} steps): {points}")
    lines += seed_summary(results["rows"] + results.get("long", []),
                          s["batch"])
    lines += target_lines(results["rows"] + results.get("long", []),
                          s["batch"])
    if results.get("retrieval"):
        n = results["retrieval"][0]["candidates"]
        lines += [
            "", "Image-caption retrieval (`ContrastiveAligner`, CLIP's "
            "softmax loss or SigLIP's sigmoid loss, embed width 64, "
            "captions of up to 64 tokens; recall (%) among "
            f"the {n} test scenes, chance @K = K/{n}):", "",
            "| loss | image encoder | epochs | train min | image->text @1 | "
            "@5 | @10 | text->image @1 | @5 | @10 |",
            "|---|---|---|---|---|---|---|---|---|---|"]
        for row in results["retrieval"]:
            r = row["test"]
            lines.append(
                f"| {row.get('loss', 'clip')} | {_arch(row)} "
                f"{_encoder(row)} | {row['epochs']} | "
                f"{row['train_seconds'] / 60:.1f} | "
                + " | ".join(_pct(r[f"{d}@{k}"])
                             for d in ("image_to_text", "text_to_image")
                             for k in (1, 5, 10)) + " |")
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
