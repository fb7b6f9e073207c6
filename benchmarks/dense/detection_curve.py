"""How fast the detector of `detection.py` learns: one random-init run with
validation (and training-set) COCO mAP every `--every` steps.

    KERAS_BACKEND=torch OMP_NUM_THREADS=1 python benchmarks/dense/detection_curve.py

The same RetinaNet (P3-P5, anchors of 2 strides, two pre-logit convs) over
the same 4-layer ViT simple pyramid or small ResNet as `detection.py`, on
the 1,024 training canvases of `load_digit_detection`, Adam with warm-up +
cosine over `--steps`, batch 32, seed 0. Each evaluation appends a row to
`detection_curve.json` / `.md` (a stopped run keeps its rows). The curve
shows where fine-tuning budgets sit: a detector in its first few hundred
steps scores near zero whatever its initialisation.
"""

import argparse
import os
import sys
import time

import tensorflow as tf

from keras_simmim.data import load_digit_detection
from keras_simmim.data import normalize
from keras_simmim.downstream import coco_metrics

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
from detection import backbone  # noqa: E402
from detection import compiled_detector  # noqa: E402
from report import out_prefix  # noqa: E402
from report import run_info  # noqa: E402
from report import save_results  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backbone", choices=("vit", "resnet"),
                        default="vit")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--every", type=int, default=300)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--out", type=out_prefix,
                        default=os.path.join(HERE, "detection_curve"))
    args = parser.parse_args(argv)
    start = time.time()
    results = {"settings": vars(args), "run": run_info(), "rows": []}
    detector = compiled_detector(backbone(args.backbone, 0), args.lr,
                                 args.steps)
    train_x, train_y = load_digit_detection("train")
    val_x, val_y = load_digit_detection("validation")
    train_x, val_x = normalize(train_x), normalize(val_x)
    batches = tf.data.Dataset.from_tensor_slices((train_x, train_y)).shuffle(
        len(train_x), seed=0).repeat().batch(32, drop_remainder=True)
    seen = {k: v[:128] for k, v in train_y.items()}
    for k in range(args.steps // args.every):
        history = detector.fit(batches, steps_per_epoch=args.every, epochs=1,
                               verbose=0)
        val = coco_metrics(detector.predict(val_x, batch_size=64, verbose=0),
                           val_y, (64, 64), num_classes=10)
        train = coco_metrics(
            detector.predict(train_x[:128], batch_size=64, verbose=0), seen,
            (64, 64), num_classes=10)
        results["rows"].append({
            "step": (k + 1) * args.every, "seconds": round(time.time() - start),
            "loss": float(history.history["loss"][-1]), "validation": val,
            "train_first_128": train})
        results["seconds"] = round(time.time() - start)
        print(save_results(args.out, results, markdown), flush=True)


def markdown(results):
    s = results["settings"]
    lines = [
        "# How fast the detector learns (one random-init run)", "",
        f"Command: `KERAS_BACKEND={results['run']['backend']} OMP_NUM_THREADS=1 "
        f"python benchmarks/dense/detection_curve.py --backbone {s['backbone']}"
        f" --steps {s['steps']} --lr {s['lr']:g}` (commit "
        f"{str(results['run']['commit'])[:10]}; {results['run']['cpu']}).", "",
        "| step | seconds | loss | validation mAP@0.5 | validation "
        "mAP@[.5:.95] | training mAP@0.5 (128 canvases) |",
        "|---|---|---|---|---|---|"]
    for r in results["rows"]:
        lines.append(
            f"| {r['step']} | {r['seconds']} | {r['loss']:.3f} | "
            f"{100 * r['validation']['mAP@0.5']:.1f} | "
            f"{100 * r['validation']['mAP@[.5:.95]']:.1f} | "
            f"{100 * r['train_first_128']['mAP@0.5']:.1f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
