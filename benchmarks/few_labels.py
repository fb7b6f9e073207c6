"""The few-label protocol, shared by the video and audio benchmarks: SimMIM
pretraining on every training clip without labels, against a random-init
backbone of the same architecture (same seed), then linear probe, k-NN and
fine-tuning on a stratified fraction of the training labels.

Per arm (random / SimMIM) and label fraction, each protocol's setting (the
probe's and fine-tuning's learning rate, k-NN's k) is chosen on the
validation split with the first seed, from a grid that widens past a
winning edge (`report.tune`); every seed then runs with that choice and
reads the test split once. Gains are SimMIM minus random, paired over
seeds (`report.paired_test`, two-sided, ddof 1).

`main(task_class, ...)` is a benchmark script's whole command line;
`run(task, args)` drives the protocol; `task` supplies the data and the
models:

* `task.split(name, count, seed)` -> `(x, y)`: `count` normalised inputs
  and int labels of split `name` (`"train"`, `"validation"`, `"test"`);
* `task.backbone(seed)` -> a fresh backbone;
* `task.simmim(backbone, seed)` -> a `SimMIMModel` around it.
"""

import argparse
import json
import time

import keras
import numpy as np

from keras_simmim.data import stratified_subset
from keras_simmim.downstream import SimMIMClassifier
from keras_simmim.downstream import extract_features
from keras_simmim.downstream import fit_linear_probe
from keras_simmim.downstream import knn_accuracy
from keras_simmim.downstream import warmup_cosine
from report import flags_line
from report import out_prefix
from report import paired_test
from report import provenance
from report import run_info
from report import save_results
from report import tune

PROTOCOLS = ("probe", "knn", "finetune")
ARMS = ("random", "simmim")


def load_splits(task, train):
    """The three splits from `task.split`: `train` clips, a fifth of that
    for validation and half for test, each with its own data seed."""
    sizes = {"train": train, "validation": train // 5, "test": train // 2}
    return {name: task.split(name, count, seed=100 + index)
            for index, (name, count) in enumerate(sizes.items())}


def main(task_class, description, title, script, out, add_arguments):
    """A benchmark's command line: the protocol's flags plus the task's own
    (`add_arguments(parser)`), `--quick` (tiny settings that only check
    the script runs), then `run` and the results written to `--out`
    (`.json` + `.md`), with the commit and CPU they ran on."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--fractions", type=float, nargs="+",
                        default=[0.05, 0.1])
    parser.add_argument("--pretrain-steps", type=int, default=1500)
    parser.add_argument("--pretrain-lr", type=float, default=2e-3)
    parser.add_argument("--finetune-steps", type=int, default=150)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--quick", action="store_true",
                        help="tiny settings to check the script runs")
    parser.add_argument("--out", type=out_prefix, default=out)
    add_arguments(parser)
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.train_clips = 2, 200
        args.pretrain_steps, args.finetune_steps = 20, 10
        args.fractions = [0.1]
    start, info = time.time(), run_info()  # the code that runs, not after
    settings = {key: value for key, value in vars(args).items()
                if key != "out"}
    results = run(task_class(args), args, settings)
    results["run"] = info
    results["seconds"] = round(time.time() - start)
    print(save_results(args.out, results,
                       lambda r: markdown(r, title, script)))
    print(json.dumps(results["summary"]))


def pretrain(task, train_x, seed, args):
    """SimMIM on the unlabelled training inputs; returns the backbone's
    weights and the loss curve (first and last epoch)."""
    keras.utils.set_random_seed(seed)
    model = task.simmim(task.backbone(seed), seed)
    steps_per_epoch = max(len(train_x) // args.batch_size, 1)
    epochs = max(args.pretrain_steps // steps_per_epoch, 1)
    model.compile(optimizer=model.default_optimizer(warmup_cosine(
        args.pretrain_lr, epochs * steps_per_epoch,
        epochs * steps_per_epoch // 10)))
    start = time.time()
    history = model.fit(train_x, batch_size=args.batch_size, epochs=epochs,
                        shuffle=True, verbose=0)
    losses = [float(v) for v in history.history["loss"]]
    print(f"  seed {seed}: pretrained {epochs * steps_per_epoch} steps in "
          f"{time.time() - start:.0f}s, loss {losses[0]:.3f} -> "
          f"{losses[-1]:.3f}", flush=True)
    return model.backbone.get_weights(), losses


def backbone_for(task, arm, seed, weights):
    keras.utils.set_random_seed(seed)
    backbone = task.backbone(seed)
    if arm == "simmim":
        backbone.set_weights(weights[seed])
    return backbone


def finetune(task, arm, seed, weights, x, y, eval_x, eval_y, lr, args,
             num_classes):
    """Accuracy on `(eval_x, eval_y)` after fine-tuning on `(x, y)`."""
    classifier = SimMIMClassifier(backbone_for(task, arm, seed, weights),
                                  num_classes=num_classes)
    batch = min(args.batch_size, len(x))
    classifier.compile_for_finetuning(
        learning_rate=lr, total_steps=args.finetune_steps, layer_decay=0.75)
    steps_per_epoch = max(len(x) // batch, 1)
    classifier.fit(x, y, batch_size=batch, verbose=0, shuffle=True,
                   epochs=max(args.finetune_steps // steps_per_epoch, 1))
    return float(classifier.evaluate(eval_x, eval_y, verbose=0)[1])


def run(task, args, settings):
    """Runs the protocol; returns the results dict (rows and summary)."""
    data = load_splits(task, args.train_clips)
    (train_x, train_y), (val_x, val_y), (test_x, test_y) = (
        data["train"], data["validation"], data["test"])
    num_classes = int(max(train_y.max(), val_y.max(), test_y.max()) + 1)
    seeds = list(range(args.seeds))
    weights, curves = {}, {}
    for seed in seeds:
        weights[seed], curves[seed] = pretrain(task, train_x, seed, args)
    # Frozen features of every split, once per arm and seed; each label
    # fraction's probe and k-NN read its rows of the training features.
    frozen = {}
    for arm in ARMS:
        for seed in seeds:
            backbone = backbone_for(task, arm, seed, weights)
            frozen[arm, seed] = {
                name: extract_features(backbone, v, batch_size=64)
                for name, v in (("train", train_x), ("validation", val_x),
                                ("test", test_x))}
    rows, chosen = [], {}
    for fraction in args.fractions:
        for arm in ARMS:
            for seed in seeds:
                subset = stratified_subset(train_y, fraction, seed=seed)
                x, y = train_x[subset], train_y[subset]
                feats = {**frozen[arm, seed],
                         "train": frozen[arm, seed]["train"][subset]}
                key = (fraction, arm)
                if seed == seeds[0]:  # choose every setting on validation
                    chosen[key] = choose(task, arm, seed, weights, x, y,
                                         feats, val_x, val_y, args,
                                         num_classes)
                choice = chosen[key]
                probe = fit_linear_probe(
                    feats["train"], y, num_classes, epochs=100,
                    learning_rate=choice["probe"], seed=seed)
                row = {
                    "fraction": fraction, "arm": arm, "seed": seed,
                    "labels": int(len(y)),
                    "probe": float(probe.evaluate(
                        feats["test"], test_y, verbose=0)[1]),
                    "knn": knn_accuracy(feats["train"], y, feats["test"],
                                        test_y, k=choice["knn"]),
                    "finetune": finetune(
                        task, arm, seed, weights, x, y, test_x, test_y,
                        choice["finetune"], args, num_classes),
                }
                print(f"  {fraction:.0%} {arm} seed {seed}: " + ", ".join(
                    f"{p} {100 * row[p]:.1f}" for p in PROTOCOLS),
                    flush=True)
                rows.append(row)
    tests = {}
    for fraction in args.fractions:
        for protocol in PROTOCOLS:
            per_arm = {arm: [r[protocol] for r in rows
                             if r["fraction"] == fraction and r["arm"] == arm]
                       for arm in ARMS}
            tests[f"{fraction}:{protocol}"] = paired_test(
                [100 * v for v in per_arm["random"]],
                [100 * v for v in per_arm["simmim"]])
    fewest = min(args.fractions)
    summary = {
        "fraction": fewest,
        "probe_gain": tests[f"{fewest}:probe"]["mean_diff"],
        "knn_gain": tests[f"{fewest}:knn"]["mean_diff"],
        "finetune_gain": tests[f"{fewest}:finetune"]["mean_diff"],
        "seeds": len(seeds),
        "p_probe": tests[f"{fewest}:probe"]["p"],
        "p_knn": tests[f"{fewest}:knn"]["p"],
        "p_finetune": tests[f"{fewest}:finetune"]["p"],
    }
    return {
        "summary": summary, "settings": settings, "rows": rows,
        "tests": tests, "pretrain_loss": {str(s): [c[0], c[-1]]
                                          for s, c in curves.items()},
        "chosen": {f"{f}:{a}": c for (f, a), c in chosen.items()},
    }


def choose(task, arm, seed, weights, x, y, feats, val_x, val_y, args,
           num_classes):
    """Each protocol's setting, by validation accuracy (first seed)."""

    def probe(lr):
        head = fit_linear_probe(feats["train"], y, num_classes, epochs=100,
                                learning_rate=lr, seed=seed)
        return head.evaluate(feats["validation"], val_y, verbose=0)[1], lr

    def knn(k):
        return knn_accuracy(feats["train"], y, feats["validation"], val_y,
                            k=k), k

    def fine(lr):
        return finetune(task, arm, seed, weights, x, y, val_x, val_y, lr,
                        args, num_classes), lr

    probe_lr, _ = tune(probe, [3e-3, 1e-2, 3e-2])
    ks = sorted({k for k in (1, 5, 10, 20) if k <= len(y)})
    k = max(ks, key=lambda value: knn(value)[0])
    grid = [1e-3, 3e-3] if args.quick else [5e-4, 1e-3, 2e-3]
    finetune_lr, _ = tune(fine, grid, max_extend=1)
    return {"probe": probe_lr, "knn": k, "finetune": finetune_lr}


def markdown(results, title, script):
    """The results as tables: per fraction and protocol, the two arms'
    mean accuracy, the paired gain and its p."""
    lines = [f"# {title}", "", provenance(results, script), "",
             flags_line(results["settings"]), "",
             "Test accuracy (%), mean over seeds; gain = SimMIM - random, "
             "paired t-test over seeds (two-sided, ddof 1). Settings chosen "
             "on the validation split per arm and fraction (first seed).",
             "", "| labels | protocol | random | SimMIM | gain | p |",
             "|---|---|---|---|---|---|"]
    rows = results["rows"]
    for fraction in results["settings"]["fractions"]:
        for protocol in PROTOCOLS:
            means = {arm: 100 * np.mean([
                r[protocol] for r in rows
                if r["fraction"] == fraction and r["arm"] == arm])
                for arm in ARMS}
            test = results["tests"][f"{fraction}:{protocol}"]
            p = "n/a" if test["p"] is None else f"{test['p']:.3f}"
            lines.append(
                f"| {fraction:.0%} | {protocol} | {means['random']:.1f} | "
                f"{means['simmim']:.1f} | {test['mean_diff']:+.1f} | {p} |")
    summary = results["summary"]
    lines += ["", f"Summary at {summary['fraction']:.0%} of the labels, "
              f"{summary['seeds']} seeds: probe {summary['probe_gain']:+.1f}"
              f", k-NN {summary['knn_gain']:+.1f}, fine-tuning "
              f"{summary['finetune_gain']:+.1f} points.", ""]
    return "\n".join(lines)
