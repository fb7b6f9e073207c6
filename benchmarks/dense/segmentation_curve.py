"""How fast the segmenter of `segmentation.py` learns from few labels: one
run per arm (random init, SimMIM), validation mean IoU every `--every`
steps.

    KERAS_BACKEND=jax OMP_NUM_THREADS=1 python benchmarks/dense/segmentation_curve.py --cache DIR

The same DeepLabV3+ over the same 4-layer ViT, data and labelled subset
(seed 0's `--fraction` of the training canvases) as `segmentation.py`, Adam
with warm-up + cosine over `--steps`, batch 16, seed 0; each arm at its
own learning rate (`--lrs SCRATCH SIMMIM`, e.g. the ones `segmentation.md`
chose). Pretrained weights come from `--cache` when `segmentation.py`
left them there. Each evaluation appends a row to
`segmentation_curve.json` / `.md` (a stopped run keeps its rows): mean IoU
on the validation canvases and on the labelled training canvases, so the
curve shows whether a budget is still in its slow phase and whether the
model fits the few labels it has.
"""

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
from report import out_prefix  # noqa: E402
from report import run_info  # noqa: E402
from report import save_results  # noqa: E402
from segmentation import backbone  # noqa: E402
from segmentation import compiled_segmenter  # noqa: E402
from segmentation import labelled  # noqa: E402
from segmentation import labelled_batches  # noqa: E402
from segmentation import load_data  # noqa: E402
from segmentation import pretrained  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fraction", type=float, default=0.05)
    parser.add_argument("--steps", type=int, default=2400)
    parser.add_argument("--every", type=int, default=300)
    parser.add_argument("--lrs", type=float, nargs=2, default=[4e-3, 4e-3],
                        metavar=("SCRATCH", "SIMMIM"))
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--pretrain-steps", type=int, default=1500)
    parser.add_argument("--pretrain-lr", type=float, default=2e-3)
    parser.add_argument("--cache", help="segmentation.py's --cache folder.")
    parser.add_argument("--out", type=out_prefix,
                        default=os.path.join(HERE, "segmentation_curve"))
    args = parser.parse_args(argv)
    start = time.time()
    results = {"settings": vars(args), "run": run_info(), "rows": []}
    data, train_px = load_data()
    keep = labelled(args.fraction, 0, len(train_px))
    seen = data["train"][0][keep], data["train"][1][keep]
    simmim_weights, _ = pretrained(0, train_px, args)
    arms = {"scratch": backbone(0).get_weights(), "simmim": simmim_weights}
    for (arm, weights), lr in zip(arms.items(), args.lrs):
        segmenter = compiled_segmenter(weights, 0, lr, args.steps)
        batches = labelled_batches(data, args.fraction, 0, args.batch)
        for k in range(args.steps // args.every):
            history = segmenter.fit(batches, steps_per_epoch=args.every,
                                    epochs=1, verbose=0)
            scores = {
                name: float(segmenter.evaluate(
                    x, y, batch_size=64, verbose=0,
                    return_dict=True)["mean_iou"])
                for name, (x, y) in (("validation", data["validation"]),
                                     ("labelled", seen))}
            results["rows"].append({
                "arm": arm, "learning_rate": lr,
                "step": (k + 1) * args.every,
                "seconds": round(time.time() - start),
                "loss": float(history.history["loss"][-1]), **scores})
            results["seconds"] = round(time.time() - start)
            print(save_results(args.out, results, markdown).splitlines()[-1],
                  flush=True)


def markdown(results):
    s = results["settings"]
    run = results["run"]
    lines = [
        "# How fast the segmenter learns from few labels (seed 0)", "",
        f"Command: `KERAS_BACKEND={run['backend']} OMP_NUM_THREADS=1 python "
        f"benchmarks/dense/segmentation_curve.py --fraction {s['fraction']:g}"
        f" --steps {s['steps']} --lrs {s['lrs'][0]:g} {s['lrs'][1]:g} "
        f"--cache DIR` ({results.get('seconds', 0)} s; commit "
        f"{str(run['commit'])[:10]}; {run['cpu']}).", "",
        f"{100 * s['fraction']:g}% of the training canvases labelled; the "
        "whole schedule (warm-up + cosine) spans the last step; mean IoU in "
        "points over the 11 classes (background alone scores about 8).", "",
        "| arm | lr | step | loss | validation mIoU | labelled-canvases mIoU |",
        "|---|---|---|---|---|---|"]
    for r in results["rows"]:
        lines.append(
            f"| {r['arm']} | {r['learning_rate']:g} | {r['step']} | "
            f"{r['loss']:.3f} | {100 * r['validation']:.1f} | "
            f"{100 * r['labelled']:.1f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
