"""Semantic segmentation with few labels: SimMIM pretraining vs random init.

Reproduces `segmentation.md` / `segmentation.json` on a CPU:

    KERAS_BACKEND=jax OMP_NUM_THREADS=1 python benchmarks/dense/segmentation.py

Data: `keras_simmim.data.load_digit_segmentation` at 32x32 (scikit-learn's
digit scans scaled to 10-16 px, 1-3 per canvas; train / validation / test
canvases use disjoint scans): 1024 / 128 / 256 canvases, 11 pixel classes
(background and the ten digits, on the digit's own ink).

Model: a 4-layer, width-64 keras-hub `ViTBackbone` (patch 4) under
`keras_simmim.downstream.build_segmenter`: keras-hub's DeepLabV3+ over
ViTDet's simple pyramid (atrous pooling on P3 with rates 1, 2, 3; P2 as
the low-level feature).

Protocol, the same for every labelled fraction (`--fractions`):

- SimMIM pretrains the backbone on all 1024 training canvases, without
  their masks, once per seed; the random-init arm is the same architecture
  drawn with the same seed.
- Each seed labels its own random subset of the training canvases (the
  fraction of 1024); both arms of a seed fine-tune on that same subset, for
  the same number of steps (Adam, warm-up + cosine).
- Each arm's learning rate is chosen on the validation canvases with seed 0
  (`keras.metrics.MeanIoU`; the grid widens by a factor of 2 past an edge
  that wins); every seed then runs with that choice and reads the test
  canvases once. Differences are paired by seed (paired t-test, ddof 1).
- `--modes finetune frozen` also lets each arm choose, on validation, to
  keep its backbone frozen (only the pyramid and DeepLabV3+ head train):
  the choice is made the same way for both arms.

Pretrained weights can be kept across runs (`--cache DIR`: one file per
seed and pretraining setting), so a second run with other modes or
fractions does not pretrain again.
"""

import argparse
import os
import sys
import time

import keras
import keras_hub
import numpy as np
import tensorflow as tf

import keras_simmim
from keras_simmim.data import load_digit_segmentation
from keras_simmim.data import normalize
from keras_simmim.downstream import build_segmenter
from keras_simmim.downstream import warmup_cosine

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # benchmarks/report.py
from report import flags_line  # noqa: E402
from report import out_prefix  # noqa: E402
from report import paired_test  # noqa: E402
from report import pretrain_simmim  # noqa: E402
from report import provenance  # noqa: E402
from report import run_info  # noqa: E402
from report import save_results  # noqa: E402
from report import tune  # noqa: E402

SIZE = 32
CLASSES = 11
CANVAS = {"digits_per_image": (1, 3), "digit_size": (10, 16)}
TARGET_GAIN = 5.0  # mIoU points over random init, fewest labels


def backbone(seed):
    keras.utils.set_random_seed(seed)
    return keras_hub.models.ViTBackbone(
        image_shape=(SIZE, SIZE, 3), patch_size=4, num_layers=4,
        num_heads=4, hidden_dim=64, mlp_dim=128)


def labelled(fraction, seed, total):
    """The indices of the training canvases seed `seed` labels."""
    count = max(1, int(round(fraction * total)))
    return np.sort(np.random.default_rng(1000 + seed).choice(
        total, count, replace=False))


def compiled_segmenter(weights, seed, lr, total, mode="finetune"):
    """The benchmark's DeepLabV3+ on a backbone holding `weights`, compiled
    with Adam, warm-up (a tenth of `total`) + cosine, clipping at 10, and
    mean IoU (`mode="frozen"`: the backbone does not train)."""
    encoder = backbone(seed)
    encoder.set_weights(weights)
    keras.utils.set_random_seed(seed)
    segmenter = build_segmenter(
        encoder, num_classes=CLASSES, spatial_pyramid_pooling_key="P3",
        dilation_rates=(1, 2, 3))
    encoder.trainable = mode != "frozen"
    segmenter.compile(
        optimizer=keras.optimizers.Adam(
            warmup_cosine(lr, total, total // 10), global_clipnorm=10.0),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.MeanIoU(CLASSES, sparse_y_pred=False,
                                       name="mean_iou")])
    return segmenter


def labelled_batches(data, fraction, seed, batch):
    """Endless shuffled batches of seed `seed`'s labelled canvases."""
    images, masks = data["train"]
    keep = labelled(fraction, seed, len(images))
    return tf.data.Dataset.from_tensor_slices(
        (images[keep], masks[keep])).repeat().shuffle(
        4 * batch, seed=seed).batch(batch, drop_remainder=True)


def load_data():
    """`(data, train_px)`: normalised images and masks per split, and the
    training canvases as uint8 for SimMIM's augmentation."""
    data = {}
    for split in ("train", "validation", "test"):
        images, masks = load_digit_segmentation(split, image_size=SIZE,
                                                **CANVAS)
        data[split] = (normalize(images), masks)
        if split == "train":
            train_px = images
    return data, train_px


def finetune(weights, seed, fraction, lr, data, args, mode="finetune"):
    """Fine-tunes a segmenter on `weights` with seed `seed`'s labelled
    subset (`mode="frozen"`: the backbone stays as it is); returns mean IoU
    on validation and test."""
    total = args.finetune_steps
    segmenter = compiled_segmenter(weights, seed, lr, total, mode)
    batches = labelled_batches(data, fraction, seed, args.batch)
    start = time.time()
    history = segmenter.fit(batches, steps_per_epoch=total, epochs=1,
                            verbose=0)
    scores = {}
    for split in ("validation", "test"):
        x, y = data[split]
        scores[split] = float(segmenter.evaluate(
            x, y, batch_size=64, verbose=0, return_dict=True)["mean_iou"])
    print(f"    {fraction:g} seed {seed} {mode} lr {lr:g}: "
          f"{time.time() - start:.0f}s, loss "
          f"{history.history['loss'][-1]:.3f}, validation mIoU "
          f"{100 * scores['validation']:.1f}", flush=True)
    return scores


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--fractions", type=float, nargs="+",
                        default=[0.05, 0.1, 1.0])
    parser.add_argument("--pretrain-steps", type=int, default=1500)
    parser.add_argument("--pretrain-lr", type=float, default=2e-3)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--finetune-steps", type=int, default=300)
    parser.add_argument("--finetune-lrs", type=float, nargs="+",
                        default=[1e-3, 2e-3])
    parser.add_argument("--modes", nargs="+", default=["finetune"],
                        choices=["finetune", "frozen"],
                        help="What each arm may choose on validation: "
                        "fine-tune the backbone, keep it frozen, or either.")
    parser.add_argument("--cache", help="A folder for pretrained weights, "
                        "reused by later runs with the same settings.")
    parser.add_argument("--quick", action="store_true",
                        help="A few steps of everything, 2 seeds: checks the "
                        "script, measures nothing.")
    parser.add_argument("--out", type=out_prefix,
                        default=os.path.join(HERE, "segmentation"))
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds = 2
        args.pretrain_steps, args.finetune_steps = 3, 3
        args.finetune_lrs = [1e-3]
        args.out = args.out + "_quick"

    start, info = time.time(), run_info()  # the code as it was loaded
    data, train_px = load_data()
    canvases = {k: len(v[0]) for k, v in data.items()}
    print(canvases, "canvases", flush=True)
    seeds = list(range(args.seeds))
    results = {"settings": vars(args), "run": info, "canvases": canvases,
               "ink_fraction": float((data["test"][1] > 0).mean()),
               "pretrain_loss": {}, "choices": {}, "rows": {}}
    weights = {}
    for seed in seeds:
        weights[(seed, "simmim")], loss = pretrained(seed, train_px, args)
        results["pretrain_loss"][str(seed)] = loss
        weights[(seed, "scratch")] = backbone(seed).get_weights()
    for fraction in sorted(args.fractions):
        for arm in ("scratch", "simmim"):
            # Each arm's own mode and learning rate, on validation, seed 0;
            # the seed-0 run of the choice is that seed's row (its test read
            # once).
            best, validation = None, {}
            for mode in args.modes:
                lr, tried = tune(
                    lambda lr: (lambda s: (s["validation"], s))(finetune(
                        weights[(0, arm)], 0, fraction, lr, data, args,
                        mode)),
                    args.finetune_lrs, max_extend=1)
                validation.update({f"{mode} {v:g}": s[1]["validation"]
                                   for v, s in sorted(tried.items())})
                if best is None or tried[lr][0] > best[2][0]:
                    best = (mode, lr, tried[lr])
            mode, lr, chosen = best
            key = f"{fraction:g}-{arm}"
            results["choices"][key] = {"mode": mode, "learning_rate": lr,
                                       "validation": validation}
            print(f"  {key}: {mode}, lr {lr:g}", flush=True)
            rows = [chosen[1]["test"]]
            rows += [finetune(weights[(seed, arm)], seed, fraction, lr, data,
                              args, mode)["test"] for seed in seeds[1:]]
            results["rows"][key] = rows
            results["summary"] = summary(results)
            results["seconds"] = round(time.time() - start)
            save_results(args.out, results, markdown)  # progress so far
    results["seconds"] = round(time.time() - start)
    print(save_results(args.out, results, markdown))


def pretrained(seed, train_px, args):
    """SimMIM-pretrained backbone weights and last loss for `seed`, from
    `args.cache` when a run with the same settings left them there."""
    name = (f"vit-seed{seed}-steps{args.pretrain_steps}-lr"
            f"{args.pretrain_lr:g}.npz")
    path = args.cache and os.path.join(args.cache, name)
    if path and os.path.exists(path):
        stored = np.load(path)
        print(f"  pretrain seed {seed}: from {path}", flush=True)
        count = len(stored.files) - 1
        return ([stored[f"w{i}"] for i in range(count)],
                float(stored["loss"]))
    model = keras_simmim.SimMIMModel(
        backbone(seed), mask_patch_size=8, mask_ratio=0.6, seed=seed)
    weights, loss = pretrain_simmim(
        model, train_px, args.pretrain_steps, args.pretrain_lr, 32, seed,
        f"seed {seed}")
    if path:
        os.makedirs(args.cache, exist_ok=True)
        np.savez(path, loss=loss, **{f"w{i}": w for i, w in
                                     enumerate(weights)})
    return weights, loss


def gain(results, fraction):
    """The paired test of SimMIM minus random init at `fraction`, in mIoU
    points, or None while either arm is missing."""
    rows = results["rows"]
    key = f"{fraction:g}"
    if f"{key}-scratch" not in rows or f"{key}-simmim" not in rows:
        return None
    return paired_test(100 * np.array(rows[f"{key}-scratch"]),
                       100 * np.array(rows[f"{key}-simmim"]))


def summary(results):
    """`miou_gain` at the fewest labels, its seeds and paired p."""
    fewest = min(results["settings"]["fractions"])
    test = gain(results, fewest)
    if test is None:
        return {"miou_gain": None, "fraction": fewest}
    return {"miou_gain": test["mean_diff"], "std_err": test["std_err"],
            "p": test["p"], "seeds": test["n"], "fraction": fewest,
            "target": TARGET_GAIN, "met": test["mean_diff"] >= TARGET_GAIN}


def markdown(results):
    s = results["settings"]
    c = results["canvases"]
    lines = [
        "# Segmentation with few labels: SimMIM vs random init",
        "",
        provenance(results, "benchmarks/dense/segmentation.py"),
        "",
        flags_line(s),
        "",
        f"{SIZE}x{SIZE} digit canvases (train / validation / test): "
        f"{c['train']} / {c['validation']} / {c['test']}, 11 pixel classes "
        f"(ink is {100 * results['ink_fraction']:.0f}% of the test pixels); "
        "keras-hub DeepLabV3+ over a ViT (4 layers, width 64, patch 4) with "
        f"ViTDet's simple pyramid; SimMIM {s['pretrain_steps']} steps of 32 "
        "on all training canvases (no masks); fine-tuning "
        f"{s['finetune_steps']} steps of {s['batch']} on each seed's "
        f"labelled subset; {s['seeds']} paired seeds; mIoU by "
        "`keras.metrics.MeanIoU` over the 11 classes.",
        "",
        "Test mIoU (points, 0-100), mean over seeds; the gain is the paired "
        "difference per seed, mean +- standard error (ddof 1), paired "
        "t-test p:",
        "",
        "| labelled | canvases | random init | SimMIM | SimMIM - random init |",
        "|---|---|---|---|---|",
    ]
    for fraction in sorted(s["fractions"]):
        key = f"{fraction:g}"
        count = len(labelled(fraction, 0, c["train"]))
        arms = [100 * np.mean(results["rows"][f"{key}-{arm}"])
                if f"{key}-{arm}" in results["rows"] else None
                for arm in ("scratch", "simmim")]
        cells = ["not run" if v is None else f"{v:.1f}" for v in arms]
        test = gain(results, fraction)
        diff = ""
        if test is not None:
            se = "" if test["std_err"] is None else f" +- {test['std_err']:.1f}"
            p = "" if test["p"] is None else f" (p {test['p']:.3f})"
            diff = f"{test['mean_diff']:+.1f}{se}{p}"
        lines.append(f"| {100 * fraction:g}% | {count} | {cells[0]} | "
                     f"{cells[1]} | {diff} |")
    modes = s.get("modes", ["finetune"])
    lines += ["", f"Modes each arm could choose: {', '.join(modes)} "
              "(frozen: the backbone does not train). Choices on the "
              "validation canvases (seed 0, mIoU):", ""]
    for key, choice in results["choices"].items():
        tried = ", ".join(f"{lr}: {100 * v:.1f}"
                          for lr, v in choice["validation"].items())
        lines.append(f"- {key}: {choice.get('mode', 'finetune')}, lr "
                     f"{choice['learning_rate']:g} (tried {tried})")
    summ = results.get("summary", {})
    if summ.get("miou_gain") is not None:
        lines += ["", f"Target: SimMIM beats random init by at least "
                  f"{TARGET_GAIN:g} mIoU points at "
                  f"{100 * summ['fraction']:g}% of the labels: "
                  f"{summ['miou_gain']:+.1f} points, "
                  f"{'met' if summ['met'] else '**missed**'}."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
