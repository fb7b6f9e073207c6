"""Where the Sort-of-CLEVR plateau comes from: seeing vs. binding.

    KERAS_BACKEND=torch python benchmarks/multimodal/binding.py

Three small models on the built-in 64x64 scenes, each with the Relation
Networks paper's image encoder (four 3x3 stride-2 convolutions, 24
channels, batch norm, ReLU), no text tower and no fusion layer:

- `image only`: the image -> every object's side, height and shape (18
  binary outputs, one per colour and property). No question, so nothing
  to bind: this measures whether the encoder can see what the questions
  ask about.
- `CNN+MLP`: the image features, flattened, concatenated with a perfect
  question code (one-hot template and one-hot colour) -> MLP -> answer
  (the RN paper's CNN+MLP baseline).
- `per-cell MLP`: every feature-map cell with its (x, y) coordinates and
  the question code through a shared MLP, summed, MLP -> answer (a Relation
  Network over single cells instead of pairs).

If the first learns quickly and the other two stall where the library's
fusions stall, the bottleneck is selecting the named object (binding), not
the image encoder, the text tower or the fusion layer. Writes
`binding.md` / `binding.json` next to this file.
"""

import argparse
import os
import sys
import time

import keras
import numpy as np

from keras_simmim.data import normalize
from keras_simmim.data.sort_of_clevr import COLORS
from keras_simmim.data.sort_of_clevr import _draw
from keras_simmim.data.sort_of_clevr import _scene
from keras_simmim.data.sort_of_clevr import load_sort_of_clevr

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import HERE  # noqa: E402
from run import TEMPLATE_NAMES  # noqa: E402
from run import template_ids  # noqa: E402
from report import out_prefix  # noqa: E402  (path set by run)
from report import save_results  # noqa: E402

SIZE = 64
PROPERTIES = ("left/right", "top/bottom", "shape")


def encoder(x):
    for _ in range(4):
        x = keras.layers.Conv2D(24, 3, strides=2, padding="same")(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.ReLU()(x)
    return x


def question_code(split):
    """One-hot template (6) and one-hot colour (6) of every question."""
    template = template_ids(split["questions"])
    names = list(COLORS)
    colour = np.array([next(i for i, n in enumerate(names)
                            if f" {n} " in str(q))
                       for q in split["questions"]])
    code = np.zeros((len(template), 12), "float32")
    code[np.arange(len(template)), template] = 1
    code[np.arange(len(template)), 6 + colour] = 1
    return code, template


def scene_properties(count, seed):
    """Images and, per colour, (right, bottom, circle) as 18 bits."""
    rng = np.random.default_rng(seed)
    radius = max(2, SIZE // 15)
    images, bits = [], []
    for _ in range(count):
        centres, shapes = _scene(rng, SIZE, radius)
        images.append(_draw(centres, shapes, SIZE, radius))
        bits.append(np.concatenate([centres[:, 1] >= SIZE / 2,
                                    centres[:, 0] >= SIZE / 2, shapes == 1]))
    return normalize(np.stack(images)), np.stack(bits).astype("float32")


def image_only(args):
    x_train, y_train = scene_properties(9800, 0)
    x_test, y_test = scene_properties(1000, 1)
    images = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Flatten()(encoder(images))
    x = keras.layers.Dense(256, activation="relu")(x)
    model = keras.Model(images, keras.layers.Dense(18)(x))
    model.compile(keras.optimizers.Adam(1e-3),
                  keras.losses.BinaryCrossentropy(from_logits=True))

    def evaluate():
        right = (model.predict(x_test, batch_size=500, verbose=0) > 0) == (
            y_test > 0.5)
        return {name: float(right[:, 6 * i:6 * i + 6].mean())
                for i, name in enumerate(PROPERTIES)}

    return train(model, lambda rows: (x_train[rows], y_train[rows]),
                 len(x_train), evaluate, args.probe_steps, args)


def question_model(kind):
    images, code = keras.Input((SIZE, SIZE, 3)), keras.Input((12,))
    cells = encoder(images)
    if kind == "cnn_mlp":
        x = keras.layers.Concatenate()([keras.layers.Flatten()(cells), code])
        for _ in range(2):
            x = keras.layers.Dense(256, activation="relu")(x)
    else:
        grid = SIZE // 16
        xy = np.stack(np.meshgrid(np.linspace(-1, 1, grid),
                                  np.linspace(-1, 1, grid), indexing="ij"),
                      -1).reshape(1, grid * grid, 2).astype("float32")
        cells = keras.layers.Reshape((grid * grid, 24))(cells)
        x = keras.layers.Lambda(lambda t: keras.ops.concatenate([
            t[0], keras.ops.broadcast_to(xy, (keras.ops.shape(t[0])[0],
                                              grid * grid, 2)),
            keras.ops.repeat(keras.ops.expand_dims(t[1], 1), grid * grid,
                             axis=1)], axis=-1))([cells, code])
        for _ in range(3):
            x = keras.layers.Dense(256, activation="relu")(x)
        x = keras.layers.Lambda(lambda t: keras.ops.sum(t, axis=1))(x)
        x = keras.layers.Dense(256, activation="relu")(x)
    return keras.Model([images, code], keras.layers.Dense(12)(x))


def question_answering(kind, lr, train_split, test_split, args):
    model = question_model(kind)
    model.compile(keras.optimizers.Adam(lr),
                  keras.losses.SparseCategoricalCrossentropy(
                      from_logits=True))
    code, _ = question_code(train_split)
    test_code, template = question_code(test_split)
    test_images = normalize(test_split["images"][test_split["image_index"]])

    def batch(rows):
        images = train_split["images"][train_split["image_index"][rows]]
        return (normalize(images), code[rows]), train_split["answers"][rows]

    def evaluate():
        guess = np.argmax(model.predict([test_images, test_code],
                                        batch_size=500, verbose=0), -1)
        right = guess == test_split["answers"]
        rel = test_split["relational"]
        return {"relational": float(right[rel].mean()),
                "non_relational": float(right[~rel].mean()),
                **{name: float(right[template == i].mean())
                   for i, name in enumerate(TEMPLATE_NAMES)}}

    return train(model, batch, len(code), evaluate, args.steps, args)


def train(model, batch, count, evaluate, steps, args):
    keras.utils.set_random_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    curve, start = [], time.time()
    for step in range(1, steps + 1):
        model.train_on_batch(*batch(rng.integers(0, count, args.batch)))
        if step % args.eval_every == 0:
            curve.append({"step": step, **evaluate()})
            print(f"  {curve[-1]}", flush=True)
    return {"seconds": round(time.time() - start), "curve": curve}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--probe-steps", type=int, default=1500)
    parser.add_argument("--eval-every", type=int, default=500)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=out_prefix,
                        default=os.path.join(HERE, "binding"))
    args = parser.parse_args(argv)
    train_split = load_sort_of_clevr("train", image_size=SIZE)
    test_split = load_sort_of_clevr("test", image_size=SIZE)
    results = {"command": " ".join(["binding.py"] + sys.argv[1:]),
               "backend": keras.backend.backend(), "settings": vars(args)}
    for name, run_it in (
            ("image only", lambda: image_only(args)),
            ("CNN+MLP (lr 1e-3)", lambda: question_answering(
                "cnn_mlp", 1e-3, train_split, test_split, args)),
            ("per-cell MLP (lr 2.5e-4)", lambda: question_answering(
                "per_cell", 2.5e-4, train_split, test_split, args))):
        print(name, flush=True)
        keras.utils.set_random_seed(args.seed)
        results[name] = run_it()
    print(save_results(args.out, results, markdown))


def markdown(results):
    s = results["settings"]
    lines = [
        "# Seeing vs. binding on the built-in scenes",
        "",
        f"Made by `KERAS_BACKEND={results['backend']} python "
        f"benchmarks/multimodal/{results['command']}` on one CPU thread. "
        "Test accuracy (%), 1,000 held-out scenes, 64x64; batch "
        f"{s['batch']}, Adam, seed {s['seed']}. See the script's docstring "
        "for the models.",
        "",
        "Image only (no question; per colour):",
        "",
        "| step | " + " | ".join(PROPERTIES) + " |",
        "|---|" + "---|" * len(PROPERTIES),
    ]
    for p in results["image only"]["curve"]:
        lines.append(f"| {p['step']} | " + " | ".join(
            f"{100 * p[k]:.1f}" for k in PROPERTIES) + " |")
    keys = ("relational", "non_relational") + TEMPLATE_NAMES
    lines += ["", "Question answering with a perfect (one-hot) question "
              "code:", "", "| model | step | " + " | ".join(keys) + " |",
              "|---|---|" + "---|" * len(keys)]
    for name in ("CNN+MLP (lr 1e-3)", "per-cell MLP (lr 2.5e-4)"):
        for p in results[name]["curve"]:
            lines.append(f"| {name} | {p['step']} | " + " | ".join(
                f"{100 * p[k]:.1f}" for k in keys) + " |")
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
