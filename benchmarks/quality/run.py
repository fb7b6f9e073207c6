"""Does SimMIM pretraining help on real unlabeled images? (scikit-learn digits)

Reproduces `results.md` / `results.json` from scratch on a CPU:

    KERAS_BACKEND=torch python benchmarks/quality/run.py

Pretraining is most of the time (about 11 minutes a seed on one thread);
two one-thread lanes can fill a weights cache first, then one run does the
rest from it:

    OMP_NUM_THREADS=1 KERAS_BACKEND=torch python benchmarks/quality/run.py \
        --cache ~/bench-cache --pretrain-only --part 0/2  # and 1/2 beside it
    KERAS_BACKEND=torch python benchmarks/quality/run.py --cache ~/bench-cache

For each seed: SimMIM-pretrains a 4-layer, width-64 ViT (32x32, patch 4) on
the unlabeled digits training split, and takes a random-init ViT of the same
architecture (same seed). For 2%, 5% and 10% of the training labels
(stratified, the same subset for both arms of a seed), it reports test
accuracy after fine-tuning, of a linear probe and of k-NN on frozen
features. Each arm's fine-tuning learning rate is the one with the best
mean validation accuracy over the first `--tune-seeds` seeds (3), and the
probe's / k-NN's layer and learning rate are chosen on the validation split
with seed 0, separately per arm and label fraction; then every seed runs
with that choice. Both learning-rate grids grow by factors of 2 past a
winning edge (`report.tune`), and the test split is read once per seed,
arm, protocol and label fraction, with the chosen model. Gains are paired
over seeds (`report.paired_test`); the JSON records the settings and
`report.run_info()` (commit, CPU). Both arms get the same
augmentation (random resized crop, no flip: digits are not mirror
symmetric) and the same number of steps. Inpainting PSNR on held-out test
images compares the SimMIM reconstruction with a per-image mean fill and
scikit-image's biharmonic inpainting, on the same masks.
"""

import argparse
import json
import os
import sys
import time

import keras
import keras_hub
import numpy as np

import keras_simmim
from keras_simmim.data import denormalize
from keras_simmim.data import from_arrays
from keras_simmim.data import load_digits
from keras_simmim.data import normalize
from keras_simmim.data import stratified_subset
from keras_simmim.downstream import SimMIMClassifier
from keras_simmim.downstream import biharmonic_fill
from keras_simmim.downstream import extract_features
from keras_simmim.downstream import fit_linear_probe
from keras_simmim.downstream import knn_accuracy
from keras_simmim.downstream import masked_psnr
from keras_simmim.downstream import mean_fill
from keras_simmim.downstream import pixel_mask_from_grid
from keras_simmim.downstream import warmup_cosine

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # benchmarks/report.py
from report import out_prefix  # noqa: E402
from report import paired_test  # noqa: E402
from report import parse_part  # noqa: E402
from report import run_info  # noqa: E402
from report import tune  # noqa: E402
from report import write_markdown  # noqa: E402

TARGETS = {  # (protocol, fraction) -> minimum paired gain in points
    ("finetune", 0.02): 5.0,
    ("finetune", 0.1): 3.0,
    ("probe", 0.1): 20.0,
}


def vit(seed):
    keras.utils.set_random_seed(seed)
    return keras_hub.models.ViTBackbone(
        image_shape=(32, 32, 3), patch_size=4, num_layers=4, num_heads=4,
        hidden_dim=64, mlp_dim=128,
    )


def pretrain(seed, data, args):
    backbone = vit(seed)
    model = keras_simmim.SimMIMModel(
        backbone, mask_patch_size=8, mask_ratio=0.6, seed=seed
    )
    steps_per_epoch = len(data) // args.pretrain_batch
    total = steps_per_epoch * args.pretrain_epochs
    model.compile(optimizer=keras.optimizers.AdamW(
        learning_rate=warmup_cosine(args.pretrain_lr, total, total // 10),
        weight_decay=0.05, global_clipnorm=5.0,
    ))
    ds = from_arrays(
        data, augment=True, shuffle=True, seed=seed,
        batch_size=args.pretrain_batch, drop_remainder=True,
    ).repeat()
    start = time.time()
    history = model.fit(ds, steps_per_epoch=total, epochs=1, verbose=0)
    loss = float(history.history["loss"][-1])
    print(f"  pretrain seed {seed}: {total} steps, {time.time() - start:.0f}s, "
          f"last loss {loss:.3f}", flush=True)
    return model, loss


def cached_pretrain(seed, data, args):
    """`pretrain`, reusing `--cache` weights saved by an earlier run with the
    same pretraining settings (pretraining is most of the run's time)."""
    keys = ("pretrain_epochs", "pretrain_batch", "pretrain_lr")
    tag = "-".join(f"{getattr(args, k):g}" for k in keys)
    path = args.cache and os.path.join(
        args.cache, f"simmim-seed{seed}-{tag}.weights.h5")
    if path and os.path.exists(path):
        model = keras_simmim.SimMIMModel(
            vit(seed), mask_patch_size=8, mask_ratio=0.6, seed=seed)
        model.load_weights(path)
        with open(path + ".loss") as f:
            loss = float(f.read())
        print(f"  pretrain seed {seed}: loaded {path}", flush=True)
        return model, loss
    model, loss = pretrain(seed, data, args)
    if path:
        os.makedirs(args.cache, exist_ok=True)
        model.save_weights(path)
        with open(path + ".loss", "w") as f:
            f.write(repr(loss))
    return model, loss


def finetune(weights, seed, images, labels, lr, pretrained, args):
    """The fine-tuned classifier (evaluate it with `evaluate`)."""
    backbone = vit(seed)
    backbone.set_weights(weights)
    keras.utils.set_random_seed(seed)
    clf = SimMIMClassifier(backbone, num_classes=10)
    clf.compile_for_finetuning(
        learning_rate=lr, total_steps=args.finetune_steps,
        layer_decay=args.layer_decay if pretrained else 1.0,
        weight_decay=0.05, label_smoothing=0.1,
    )
    ds = from_arrays(
        images, labels, augment=True, flip=False, shuffle=True, seed=seed,
        batch_size=min(args.finetune_batch, len(images)),
    ).repeat()
    clf.fit(ds, steps_per_epoch=args.finetune_steps, epochs=1, verbose=0)
    return clf


def evaluate(model, x, y):
    return float(model.evaluate(x, y, verbose=0, batch_size=256)[1])


def probe(features, labels, subset, lr, seed):
    """The linear probe's head (evaluate it with `evaluate`)."""
    return fit_linear_probe(
        features[subset], labels[subset], 10, epochs=100,
        learning_rate=lr, seed=seed,
    )


def inpainting(model, test_pixels, count):
    """PSNR on the masked pixels: SimMIM, mean fill and biharmonic
    inpainting on the same masks."""
    pixels = test_pixels[:count]
    images = normalize(pixels)
    mask = keras.ops.convert_to_numpy(model.masking(images)).astype(bool)
    filled = denormalize(model.inpaint(images, mask))
    pixel_mask = pixel_mask_from_grid(mask, pixels.shape[1:3])
    return {
        "simmim": masked_psnr(filled, pixels, pixel_mask),
        "mean_fill": masked_psnr(
            np.round(mean_fill(pixels, pixel_mask)), pixels, pixel_mask),
        "biharmonic": masked_psnr(
            np.clip(np.round(biharmonic_fill(pixels, pixel_mask)), 0, 255),
            pixels, pixel_mask),
        "images": int(count),
        "masked_fraction": float(pixel_mask.mean()),
    }


def summarize(values_a, values_b):
    a, b = np.asarray(values_a) * 100, np.asarray(values_b) * 100
    diff = b - a
    test = paired_test(a, b)
    return {
        "scratch": a.tolist(), "simmim": b.tolist(),
        "scratch_mean": float(a.mean()), "simmim_mean": float(b.mean()),
        "gain_mean": float(diff.mean()),
        "gain_std": float(diff.std(ddof=1)) if len(diff) > 1 else 0.0,
        "gain_min": float(diff.min()), "gain_max": float(diff.max()),
        "gain_std_err": test["std_err"], "gain_p": test["p"],
        "gain_significant": test["significant"],
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--fractions", type=float, nargs="+",
                        default=[0.02, 0.05, 0.1])
    parser.add_argument("--pretrain-epochs", type=int, default=200)
    parser.add_argument("--pretrain-batch", type=int, default=64)
    parser.add_argument("--pretrain-lr", type=float, default=2e-3)
    parser.add_argument("--finetune-steps", type=int, default=300)
    parser.add_argument("--finetune-batch", type=int, default=32)
    parser.add_argument("--finetune-lrs", type=float, nargs="+",
                        default=[1e-3, 2e-3, 4e-3])
    parser.add_argument("--probe-lrs", type=float, nargs="+",
                        default=[1e-2, 3e-2, 1e-1])
    parser.add_argument("--max-extend", type=int, default=3,
                        help="Widening steps (x2 past a winning edge) of "
                        "the fine-tuning and probe learning-rate grids.")
    parser.add_argument("--layer-decay", type=float, default=0.75)
    parser.add_argument("--tune-seeds", type=int, default=3,
                        help="Seeds whose mean validation accuracy picks "
                        "each arm's fine-tuning learning rate (the table "
                        "committed before this default used 1: seed 0).")
    parser.add_argument("--inpaint-images", type=int, default=200)
    parser.add_argument("--out", type=out_prefix,
                        default=os.path.join(HERE, "results"))
    parser.add_argument(
        "--cache", default=None,
        help="Folder for pretrained weights, reused by later runs with the "
        "same pretraining settings.")
    parser.add_argument(
        "--pretrain-only", action="store_true",
        help="Only pretrain the seeds of --part into --cache, then stop "
        "(lanes fill the cache; a run without it does the rest).")
    parser.add_argument("--part", type=parse_part, default=(0, 1),
                        help="K/N: with --pretrain-only, pretrain every "
                        "N-th seed from the K-th.")
    args = parser.parse_args(argv)
    if args.pretrain_only and not args.cache:
        parser.error("--pretrain-only needs --cache (where the weights go).")
    if args.part != (0, 1) and not args.pretrain_only:
        parser.error("--part splits only the pretraining (--pretrain-only); "
                     f"got --part {args.part[0]}/{args.part[1]} without it.")

    start, info = time.time(), run_info()  # the code as it was loaded
    train_px, train_y = load_digits("train")
    val_px, val_y = load_digits("validation")
    test_px, test_y = load_digits("test")
    val_x, test_x = normalize(val_px), normalize(test_px)
    seeds = list(range(args.seeds))
    arms = ("scratch", "simmim")
    if args.pretrain_only:
        k, n = args.part
        for seed in seeds[k::n]:
            cached_pretrain(seed, train_px, args)
        return

    weights, features, pretrain_loss, inpaint = {}, {}, {}, None
    for seed in seeds:
        model, pretrain_loss[seed] = cached_pretrain(seed, train_px, args)
        weights[(seed, "simmim")] = model.backbone.get_weights()
        weights[(seed, "scratch")] = vit(seed).get_weights()
        if seed == 0:
            inpaint = inpainting(model, test_px, args.inpaint_images)
            print(f"  inpainting PSNR: {inpaint}", flush=True)
        for arm in arms:
            backbone = vit(seed)
            backbone.set_weights(weights[(seed, arm)])
            for layer in range(1, 5):
                features[(seed, arm, layer)] = [
                    extract_features(backbone, normalize(p), layer)
                    for p in (train_px, val_px, test_px)
                ]

    results = {"settings": vars(args), "run_info": info,
               "finetune": {}, "probe": {}, "knn": {}, "choices": {}}
    for fraction in args.fractions:
        key = f"{fraction:g}"
        subsets = {s: stratified_subset(train_y, fraction, s) for s in seeds}
        n_labels = len(subsets[0])
        print(f"labels {fraction:.0%} ({n_labels} images)", flush=True)
        tables = {"finetune": {}, "probe": {}, "knn": {}}
        for arm in arms:
            # Fine-tuning: the lr with the best mean validation accuracy
            # over the tuning seeds (one seed's luck does not pick it).
            # The test split is read once per seed, with the chosen lr.
            tuning = seeds[: args.tune_seeds]
            models = {}

            def mean_val(lr):
                accs = []
                for seed in tuning:
                    sub = subsets[seed]
                    models[(seed, lr)] = finetune(
                        weights[(seed, arm)], seed, train_px[sub],
                        train_y[sub], lr, arm == "simmim", args)
                    accs.append(evaluate(models[(seed, lr)], val_x, val_y))
                return (float(np.mean(accs)), accs)

            best_lr, tried = tune(mean_val, args.finetune_lrs,
                                  args.max_extend)
            accs = [evaluate(models[(seed, best_lr)], test_x, test_y)
                    for seed in tuning]
            models.clear()
            for seed in seeds[len(tuning):]:
                sub = subsets[seed]
                accs.append(evaluate(finetune(
                    weights[(seed, arm)], seed, train_px[sub], train_y[sub],
                    best_lr, arm == "simmim", args), test_x, test_y))
            tables["finetune"][arm] = accs
            # Linear probe: layer and lr on validation with seed 0 (the
            # lr grid widened per layer, as the fine-tuning grid is).
            grid = {}
            for layer in range(1, 5):
                tr, va, te = features[(0, arm, layer)]

                def run_probe(lr, tr=tr, va=va):
                    head = probe(tr, train_y, subsets[0], lr, 0)
                    return evaluate(head, va, val_y), head

                _, tried_probe = tune(run_probe, args.probe_lrs,
                                      args.max_extend)
                for lr, value in tried_probe.items():
                    grid[(layer, lr)] = value
            best = max(grid, key=lambda c: grid[c][0])
            accs = [evaluate(grid[best][1], features[(0, arm, best[0])][2],
                             test_y)]
            for seed in seeds[1:]:
                tr, va, te = features[(seed, arm, best[0])]
                accs.append(evaluate(
                    probe(tr, train_y, subsets[seed], best[1], seed),
                    te, test_y))
            tables["probe"][arm] = accs
            # k-NN: layer and k on validation with seed 0.
            knn_val = {}
            for layer in range(1, 5):
                tr, va, _ = features[(0, arm, layer)]
                for k in sorted({min(k, n_labels) for k in (1, 3, 10, 20)}):
                    knn_val[(layer, k)] = knn_accuracy(
                        tr[subsets[0]], train_y[subsets[0]], va, val_y, k=k)
            knn_layer, k = max(knn_val, key=knn_val.get)
            tables["knn"][arm] = [
                knn_accuracy(
                    features[(s, arm, knn_layer)][0][subsets[s]],
                    train_y[subsets[s]], features[(s, arm, knn_layer)][2],
                    test_y, k=k)
                for s in seeds
            ]
            results["choices"][f"{arm}@{key}"] = {
                "finetune_lr": best_lr,
                "finetune_val": {str(lr): v[0] for lr, v in tried.items()},
                "finetune_val_by_seed": {str(lr): v[1]
                                         for lr, v in tried.items()},
                "probe_layer": best[0], "probe_lr": best[1],
                "probe_val": {f"{layer}/{lr:g}": v[0]
                              for (layer, lr), v in grid.items()},
                "knn_layer": knn_layer, "knn_k": k,
            }
            print(f"  {arm}: {results['choices'][f'{arm}@{key}']}",
                  flush=True)
        for protocol in tables:
            summary = summarize(tables[protocol]["scratch"],
                                tables[protocol]["simmim"])
            summary["labels"] = n_labels
            target = TARGETS.get((protocol, fraction))
            if target is not None:
                summary["target_gain"] = target
                summary["target_met"] = summary["gain_mean"] >= target
            results[protocol][key] = summary
            print(f"  {protocol}: scratch {summary['scratch_mean']:.1f} "
                  f"simmim {summary['simmim_mean']:.1f} gain "
                  f"{summary['gain_mean']:+.1f} +- {summary['gain_std']:.1f}",
                  flush=True)
    results["inpainting"] = inpaint
    results["pretrain_loss"] = pretrain_loss
    results["backend"] = keras.backend.backend()
    results["wall_seconds"] = round(time.time() - start)
    results["command"] = " ".join(
        ["KERAS_BACKEND=" + keras.backend.backend(), "python",
         "benchmarks/quality/run.py"] + list(argv if argv else sys.argv[1:]))
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out + ".json", "w") as f:
        json.dump(results, f, indent=1)
    write_markdown(args.out + ".md", markdown(results))
    print(f"wrote {args.out}.json and .md in {results['wall_seconds']}s")


def _p(p):
    if p is None or p != p:
        return ""
    return f"**{p:.2g}**" if p < 0.05 else f"{p:.2g}"


def _grid(values):
    return "{" + ", ".join(f"{v:g}" for v in values) + "}"


def markdown(results):
    names = {"finetune": "Fine-tuning", "probe": "Linear probe",
             "knn": "k-NN (frozen)"}
    lines = [
        "# SimMIM on the scikit-learn digits: pretrained vs random init",
        "",
        f"Made by `{results['command']}` in {results['wall_seconds']} s on "
        "a 2-core CPU. Test accuracy (%), mean over "
        f"{results['settings']['seeds']} paired seeds; gain = SimMIM - "
        "scratch per seed, mean +- std (min .. max); p: two-sided paired "
        "t-test over the seeds (significant when p < 0.05).",
        "",
        "| protocol | labels | scratch | SimMIM | gain | p | target |",
        "|---|---|---|---|---|---|---|",
    ]
    for protocol, title in names.items():
        for key, s in results[protocol].items():
            target = ""
            if "target_gain" in s:
                verdict = "met" if s["target_met"] else "**missed**"
                target = f">= +{s['target_gain']:g}: {verdict}"
            lines.append(
                f"| {title} | {float(key):.0%} ({s['labels']}) | "
                f"{s['scratch_mean']:.1f} | {s['simmim_mean']:.1f} | "
                f"{s['gain_mean']:+.1f} +- {s['gain_std']:.1f} "
                f"({s['gain_min']:+.1f} .. {s['gain_max']:+.1f}) | "
                f"{_p(s.get('gain_p'))} | {target} |"
            )
    inp = results["inpainting"]
    lines += [
        "",
        f"Inpainting PSNR (dB) on the masked pixels of {inp['images']} test "
        f"images ({inp['masked_fraction']:.0%} of pixels masked, seed-0 "
        "model): "
        f"SimMIM {inp['simmim']:.2f}, per-image mean fill "
        f"{inp['mean_fill']:.2f}, biharmonic {inp['biharmonic']:.2f}.",
        "",
        "Choices made on the validation split (fine-tuning lr: best mean "
        f"over {results['settings'].get('tune_seeds', 1)} seeds; probe and "
        "k-NN: seed 0; learning-rate grids widened by 2x past a winning "
        "edge: fine-tuning from "
        f"{_grid(results['settings']['finetune_lrs'])}, probe from "
        f"{_grid(results['settings']['probe_lrs'])}"
        + ("" if "max_extend" in results["settings"] else
           " (the probe grid was not widened then)") + "): "
        + "; ".join(f"{k}: {v['finetune_lr']:g} lr, probe layer "
                    f"{v['probe_layer']} lr {v['probe_lr']:g}, k-NN layer "
                    f"{v['knn_layer']}"
                    for k, v in results["choices"].items()),
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
