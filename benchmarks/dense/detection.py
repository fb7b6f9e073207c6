"""Object detection from a SimMIM-pretrained backbone, on scattered digits.

Reproduces `detection.md` / `detection.json` on a CPU:

    KERAS_BACKEND=jax OMP_NUM_THREADS=1 python benchmarks/dense/detection.py

Data: `keras_simmim.data.load_digit_detection` (scikit-learn's digit scans,
14-24 px, 2-5 per 64x64 canvas, some touching; train / validation / test
canvases use disjoint scans): 1024 / 128 / 256 canvases.

Two detectors, both keras-hub's `RetinaNetObjectDetector` (FPN P3-P5,
anchors of 2 strides, focal + Huber losses) built by
`keras_simmim.downstream.build_object_detector`:

- `resnet`: a small keras-hub `ResNetBackbone` (basic blocks, one per
  stage), its own pyramid outputs;
- `vit`: a 4-layer, width-64 keras-hub `ViTBackbone` (patch 8) under
  ViTDet's simple feature pyramid.

For each seed and backbone, SimMIM pretrains the backbone on the training
canvases without their boxes (random resized crops and flips), and a
random-init backbone of the same architecture is drawn with the same seed.
Both arms fine-tune the whole detector for the same number of steps (Adam,
warm-up + cosine). Each arm's learning rate is chosen on the validation
canvases with seed 0 (COCO mAP@[.5:.95]; the grid widens by factors of 2
once past an edge that wins); then every seed runs with that choice
and reads the test canvases once. mAP comes from pycocotools' `COCOeval`
(`keras_simmim.downstream.coco_metrics`); differences are paired by seed
(paired t-test, ddof 1).
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
from keras_simmim.data import load_digit_detection
from keras_simmim.data import normalize
from keras_simmim.downstream import build_object_detector
from keras_simmim.downstream import coco_metrics
from keras_simmim.downstream import warmup_cosine

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # benchmarks/report.py
from report import out_prefix  # noqa: E402
from report import paired_test  # noqa: E402
from report import pretrain_simmim  # noqa: E402
from report import provenance  # noqa: E402
from report import run_info  # noqa: E402
from report import save_results  # noqa: E402
from report import tune  # noqa: E402

SIZE = 64
TARGET_GAIN = 5.0  # points of mAP@0.5 over random init


def backbone(name, seed):
    keras.utils.set_random_seed(seed)
    if name == "resnet":
        # keras-hub's ResNet needs 64 filters in its stem and first stage.
        return keras_hub.models.ResNetBackbone(
            input_conv_filters=[64], input_conv_kernel_sizes=[3],
            stackwise_num_filters=[64, 64, 96, 128],
            stackwise_num_blocks=[1, 1, 1, 1],
            stackwise_num_strides=[1, 2, 2, 2], block_type="basic_block",
            image_shape=(SIZE, SIZE, 3))
    return keras_hub.models.ViTBackbone(
        image_shape=(SIZE, SIZE, 3), patch_size=8, num_layers=4,
        num_heads=4, hidden_dim=64, mlp_dim=128)


def pretrain(name, seed, train_px, args):
    model = keras_simmim.SimMIMModel(
        backbone(name, seed), mask_patch_size=16, mask_ratio=0.6, seed=seed)
    return pretrain_simmim(model, train_px, args.pretrain_steps,
                           args.pretrain_lr, args.batch, seed,
                           f"{name} seed {seed}")


def compiled_detector(encoder, lr, steps):
    """The benchmark's RetinaNet (P3-P5, anchors of 2 strides, two
    pre-logit convs, NMS at confidence 0.05) on `encoder`, compiled with
    Adam, warm-up (a tenth of `steps`) + cosine, gradients clipped at 10."""
    nms = keras_hub.layers.NonMaxSuppression(
        bounding_box_format="xyxy", from_logits=True,
        confidence_threshold=0.05, max_detections=20)
    detector = build_object_detector(
        encoder, num_classes=10, image_shape=(SIZE, SIZE, 3), min_level=3,
        max_level=5, anchor_size=2, pre_logits_num_conv_layers=2,
        prediction_decoder=nms)
    detector.compile(optimizer=keras.optimizers.Adam(
        warmup_cosine(lr, steps, steps // 10), global_clipnorm=10.0))
    return detector


def finetune(name, weights, seed, lr, data, args):
    """Fine-tunes a detector on `weights`; COCO metrics on val and test."""
    encoder = backbone(name, seed)
    encoder.set_weights(weights)
    keras.utils.set_random_seed(seed)
    total = args.finetune_steps
    detector = compiled_detector(encoder, lr, total)
    images, targets = data["train"]
    # tf.data: keras-hub's `Task.fit` takes datasets or arrays, not generators.
    batches = tf.data.Dataset.from_tensor_slices((images, targets)).shuffle(
        len(images), seed=seed).repeat().batch(args.batch, drop_remainder=True)

    start = time.time()
    history = detector.fit(batches, steps_per_epoch=total, epochs=1,
                           verbose=0)
    scores = {}
    for split in ("validation", "test"):
        x, y = data[split]
        scores[split] = coco_metrics(
            detector.predict(x, batch_size=64, verbose=0), y, (SIZE, SIZE),
            num_classes=10)
    print(f"    {name} seed {seed} lr {lr:g}: {time.time() - start:.0f}s, "
          f"loss {history.history['loss'][-1]:.3f}, validation mAP@0.5 "
          f"{scores['validation']['mAP@0.5']:.3f}", flush=True)
    return scores


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--backbones", nargs="+", default=["resnet", "vit"],
                        choices=["resnet", "vit"])
    parser.add_argument("--pretrain-steps", type=int, default=800)
    parser.add_argument("--pretrain-lr", type=float, default=2e-3)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--finetune-steps", type=int, default=300)
    parser.add_argument("--finetune-lrs", type=float, nargs="+",
                        default=[1e-3, 2e-3])
    parser.add_argument("--quick", action="store_true",
                        help="A few steps of everything, 2 seeds: checks the "
                        "script, measures nothing.")
    parser.add_argument("--out", type=out_prefix,
                        default=os.path.join(HERE, "detection"))
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds = 2
        args.pretrain_steps, args.finetune_steps = 3, 3
        args.finetune_lrs = [1e-3]
        args.out = args.out + "_quick"

    start, info = time.time(), run_info()  # the code as it was loaded
    data, train_px = {}, None
    for split in ("train", "validation", "test"):
        images, targets = load_digit_detection(split, image_size=SIZE)
        data[split] = (normalize(images), targets)
        if split == "train":
            train_px = images  # uint8, for SimMIM's augmentation
    print({k: len(v[0]) for k, v in data.items()}, "canvases", flush=True)
    seeds = list(range(args.seeds))
    results = {"settings": vars(args), "run": info,
               "canvases": {k: len(v[0]) for k, v in data.items()},
               "pretrain_loss": {}, "choices": {}, "rows": {}}
    for name in args.backbones:
        weights = {}
        for seed in seeds:
            weights[(seed, "simmim")], loss = pretrain(
                name, seed, train_px, args)
            results["pretrain_loss"][f"{name}-{seed}"] = loss
            weights[(seed, "scratch")] = backbone(name, seed).get_weights()
        for arm in ("scratch", "simmim"):
            # Each arm's own learning rate, on validation, seed 0; the seed-0
            # run of the chosen rate is that seed's row (its test read once).
            lr, tried = tune(
                lambda lr: (lambda s: (s["validation"]["mAP@[.5:.95]"], s))(
                    finetune(name, weights[(0, arm)], 0, lr, data, args)),
                args.finetune_lrs, max_extend=1)
            results["choices"][f"{name}-{arm}"] = {
                "learning_rate": lr,
                "validation": {f"{v:g}": s[1]["validation"]
                               for v, s in sorted(tried.items())}}
            print(f"  {name} {arm}: lr {lr:g}", flush=True)
            rows = [tried[lr][1]["test"]]
            rows += [finetune(name, weights[(seed, arm)], seed, lr, data,
                              args)["test"] for seed in seeds[1:]]
            results["rows"][f"{name}-{arm}"] = rows
            results["seconds"] = round(time.time() - start)
            save_results(args.out, results, markdown)  # progress so far
    results["seconds"] = round(time.time() - start)
    print(save_results(args.out, results, markdown))


def markdown(results):
    s = results["settings"]
    c = results["canvases"]
    lines = [
        "# Detection on held-out scattered digits: SimMIM vs random init",
        "",
        provenance(results, "benchmarks/dense/detection.py"),
        "",
        f"64x64 canvases (train / validation / test): {c['train']} / "
        f"{c['validation']} / {c['test']}; keras-hub RetinaNet (P3-P5, "
        f"anchor 2 strides); SimMIM {s['pretrain_steps']} steps of "
        f"{s['batch']} on the training canvases (no boxes); fine-tuning "
        f"{s['finetune_steps']} steps of {s['batch']} per arm; "
        f"{s['seeds']} paired seeds; mAP by pycocotools `COCOeval`.",
        "",
        "Test mAP (points, 0-100), mean over seeds; the gain is the paired "
        "difference per seed, mean +- standard error (ddof 1), paired "
        "t-test p:",
        "",
        "| backbone | metric | random init | SimMIM | SimMIM - random init |",
        "|---|---|---|---|---|",
    ]
    gains = {}
    for name in s["backbones"]:
        if f"{name}-simmim" not in results["rows"]:
            for metric in ("mAP@0.5", "mAP@[.5:.95]"):
                scratch = [100 * r[metric] for r in
                           results["rows"].get(f"{name}-scratch", [])]
                lines.append(
                    f"| {name} | {metric} | "
                    f"{np.mean(scratch):.1f} | not run | |" if scratch else
                    f"| {name} | {metric} | not run | not run | |")
            continue
        for metric in ("mAP@0.5", "mAP@[.5:.95]"):
            scratch = 100 * np.array(
                [r[metric] for r in results["rows"][f"{name}-scratch"]])
            simmim = 100 * np.array(
                [r[metric] for r in results["rows"][f"{name}-simmim"]])
            test = paired_test(scratch, simmim)
            se = "" if test["std_err"] is None else f" +- {test['std_err']:.1f}"
            p = "" if test["p"] is None else f" (p {test['p']:.3f})"
            lines.append(
                f"| {name} | {metric} | {scratch.mean():.1f} | "
                f"{simmim.mean():.1f} | {test['mean_diff']:+.1f}{se}{p} |")
            if metric == "mAP@0.5":
                gains[name] = test["mean_diff"]
    lines += ["", "Learning rates chosen on the validation canvases "
              "(seed 0, mAP@[.5:.95]):", ""]
    for key, choice in results["choices"].items():
        tried = ", ".join(
            f"{lr}: {100 * v['mAP@[.5:.95]']:.1f}"
            for lr, v in choice["validation"].items())
        lines.append(f"- {key}: {choice['learning_rate']:g} (tried {tried})")
    lines += ["", f"Target: SimMIM beats random init by at least "
              f"{TARGET_GAIN:g} points mAP@0.5 at the same budget:"]
    for name, gain in gains.items():
        lines.append(f"- {name}: {gain:+.1f} points, "
                     f"{'met' if gain >= TARGET_GAIN else '**missed**'}.")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
