"""SimMIM's design choices, small scale: the paper's ablations on the digits.

    KERAS_BACKEND=torch python benchmarks/ablations/run.py

(torch: no per-model compilation, which dominates 57 short runs on JAX/TF.)

Pretrains one small ViT per configuration and seed on the unlabeled
scikit-learn digits training split (32x32, patch 4), then measures:

- linear-probe test accuracy (all training labels, frozen average-pooled
  final features, `fit_linear_probe`);
- few-label fine-tuning test accuracy (10% of the training labels,
  stratified, the same subset per seed for every configuration, fixed
  learning rate and steps: the quality benchmark's SimMIM choice);
- AvgDist of the configuration's masks (the paper's mean distance of a
  masked pixel to the nearest visible one, on the 32x32 images).

Every configuration differs from the default (random 8x8 blocks, ratio 0.6,
L1 on masked pixels, linear head) in one named choice; a random-init
encoder is the floor. Mean and spread (std) over `--seeds` seeds; rows
whose difference from the default is inside the spread are ties.
Writes `results.md` / `results.json` next to this file (`--out`).

Each (configuration, seed) run is recorded as it finishes, and a rerun
skips the runs its `--out` already holds, so a long table can be made over
several sessions, or by two one-thread lanes at once:

    OMP_NUM_THREADS=1 KERAS_BACKEND=torch python benchmarks/ablations/run.py \
        --epochs 200 --depth 4 --out benchmarks/ablations/results_200ep \
        --part 0/2   # and --part 1/2 beside it

An `--out` made with another budget (epochs, depth, learning rates, ...)
is refused rather than mixed.
"""

import argparse
import json
import os
import shlex
import sys
import time

import keras
import keras_hub
import numpy as np

import keras_simmim
from keras_simmim.data import from_arrays
from keras_simmim.data import load_digits
from keras_simmim.data import normalize
from keras_simmim.data import stratified_subset
from keras_simmim.downstream import SimMIMClassifier
from keras_simmim.downstream import extract_features
from keras_simmim.downstream import fit_linear_probe
from keras_simmim.downstream import warmup_cosine
from keras_simmim.layers import average_distance

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # benchmarks/report.py
from report import write_markdown  # noqa: E402
DEFAULT = dict(mask_patch_size=8, mask_ratio=0.6, mask_strategy="random",
               loss="l1", loss_region="masked", head="linear")
# Normalised digits (ImageNet mean/std) lie in about [-2.1, 2.7].
COLOR = dict(num_color_bins=8, color_range=(-2.2, 2.7))


def configurations():
    """`(group, name, settings)`; settings override DEFAULT (or say MAE)."""
    rows = [("baseline", "random init (no pretraining)", None)]
    # 16x16 blocks would leave 4 blocks per 32x32 image: ratio 0.8 masks
    # them all. 4x4 blocks are single model patches (the "patch" strategy).
    for size in (4, 8):
        for ratio in (0.1, 0.3, 0.6, 0.8):
            rows.append(("ratio x masked patch", f"ratio {ratio}, "
                         f"{size}x{size} blocks",
                         dict(mask_ratio=ratio, mask_patch_size=size)))
    for strategy in ("grid", "central", "blockwise"):
        rows.append(("masking strategy (ratio 0.6, 8x8)", strategy,
                     dict(mask_strategy=strategy)))
    rows.append(("target", "MSE", dict(loss="mse")))
    rows.append(("target", "colour classification (8 bins)",
                 dict(loss="color_classification", **COLOR)))
    rows.append(("loss region", "all pixels", dict(loss_region="all")))
    rows.append(("head", "2-layer MLP", dict(head="mlp")))
    rows.append(("head", "2 transformer blocks",
                 dict(head="transformer",
                      head_options={"num_layers": 2})))
    rows.append(("method", "MAE (ratio 0.75, 2-block decoder)",
                 dict(mae=True)))
    return rows


def vit(seed, args):
    keras.utils.set_random_seed(seed)
    return keras_hub.models.ViTBackbone(
        image_shape=(32, 32, 3), patch_size=4, num_layers=args.depth,
        num_heads=4, hidden_dim=args.width, mlp_dim=2 * args.width)


def build(settings, seed, args):
    backbone = vit(seed, args)
    if settings.get("mae"):
        return keras_simmim.MAEModel(
            backbone, mask_ratio=0.75, decoder_dim=args.width,
            decoder_depth=2, decoder_num_heads=4, seed=seed)
    return keras_simmim.SimMIMModel(
        backbone, seed=seed, **dict(DEFAULT, **settings))


def pretrain(settings, seed, pixels, args):
    model = build(settings, seed, args)
    steps = len(pixels) // args.batch * args.epochs
    model.compile(optimizer=keras.optimizers.AdamW(
        warmup_cosine(args.lr, steps, steps // 10), weight_decay=0.05,
        global_clipnorm=5.0))
    ds = from_arrays(pixels, augment=True, shuffle=True, seed=seed,
                     batch_size=args.batch, drop_remainder=True).repeat()
    model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0)
    return model


def avg_dist(model, count=64):
    """Mean AvgDist (pixels) of `count` masks the model draws."""
    mask = keras.ops.convert_to_numpy(
        model.masking(np.zeros((count, 32, 32, 3), "float32")))
    return float(np.mean([average_distance(m, model.patch_size)
                          for m in mask.astype(bool)]))


def downstream(weights, seed, data, args):
    (train_px, train_y), (test_px, test_y) = data
    backbone = vit(seed, args)
    backbone.set_weights(weights)
    train_f = extract_features(backbone, normalize(train_px))
    test_f = extract_features(backbone, normalize(test_px))
    head = fit_linear_probe(train_f, train_y, 10, epochs=100,
                            learning_rate=args.probe_lr, seed=seed)
    probe = float(head.evaluate(test_f, test_y, verbose=0)[1])
    subset = stratified_subset(train_y, args.fraction, seed)
    keras.utils.set_random_seed(seed)
    clf = SimMIMClassifier(backbone, num_classes=10)
    clf.compile_for_finetuning(
        learning_rate=args.finetune_lr, total_steps=args.finetune_steps,
        layer_decay=0.75, weight_decay=0.05, label_smoothing=0.1)
    ds = from_arrays(train_px[subset], train_y[subset], augment=True,
                     flip=False, shuffle=True, seed=seed,
                     batch_size=32).repeat()
    clf.fit(ds, steps_per_epoch=args.finetune_steps, epochs=1, verbose=0)
    finetune = float(clf.evaluate(normalize(test_px), test_y, verbose=0,
                                  batch_size=256)[1])
    return probe, finetune


BUDGET = ("epochs", "batch", "lr", "depth", "width", "fraction",
          "finetune_steps", "finetune_lr", "probe_lr")


def parse_part(text):
    """`"K/N"` -> (K, N): this process runs every N-th job from the K-th."""
    try:
        k, n = (int(v) for v in text.split("/"))
    except ValueError:
        k, n = -1, 0
    if not 0 <= k < n:
        raise argparse.ArgumentTypeError(
            f"--part must be K/N with 0 <= K < N, e.g. 0/2; got {text!r}.")
    return k, n


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--fraction", type=float, default=0.1)
    parser.add_argument("--finetune-steps", type=int, default=150)
    parser.add_argument("--finetune-lr", type=float, default=2e-3)
    parser.add_argument("--probe-lr", type=float, default=1e-2)
    parser.add_argument("--only", nargs="*", default=None,
                        help="Run only configurations whose name contains "
                        "one of these strings (smoke runs).")
    parser.add_argument("--part", type=parse_part, default=(0, 1),
                        help="K/N: run every N-th (configuration, seed) "
                        "job from the K-th, e.g. two one-thread lanes "
                        "with 0/2 and 1/2 writing to the same --out.")
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    args = parser.parse_args(argv)

    train_px, train_y = load_digits("train")
    data = ((train_px, train_y), load_digits("test"))
    results = load(args, argv)
    jobs = [(group, name, settings, seed)
            for group, name, settings in configurations()
            if not args.only or any(s in name for s in args.only)
            for seed in range(args.seeds)]
    k, n = args.part
    for group, name, settings, seed in pending(jobs, results)[k::n]:
        if any(_key(r) == (name, seed) for r in results["runs"]):
            print(f"{name} / seed {seed}: in {args.out}.json, skipped")
            continue
        start = time.time()
        dist = None
        if settings is None:
            weights = vit(seed, args).get_weights()
        else:
            model = pretrain(settings, seed, train_px, args)
            weights = model.backbone.get_weights()
            dist = avg_dist(model)
        probe, finetune = downstream(weights, seed, data, args)
        run = {"group": group, "name": name, "settings": settings,
               "seed": seed, "probe": 100 * probe,
               "finetune": 100 * finetune, "avg_dist": dist,
               "seconds": round(time.time() - start)}
        results["runs"].append(run)
        print(f"{name} / seed {seed}: probe {run['probe']:.1f}, fine-tune "
              f"{run['finetune']:.1f}, AvgDist {dist} ({run['seconds']} s)",
              flush=True)
        # Written after every run: an interrupted run keeps what it did.
        results = write(results, args)
    print(markdown(results))


def _key(run):
    return run["name"], run["seed"]


def pending(jobs, results):
    """The jobs `results` lacks, fewest-seeds-first: every configuration's
    next seed before any configuration's one after, so an interrupted
    table is even (each row short by at most one seed) rather than whole
    rows missing.

    `--part K/N` splits this list, so lanes started together on the same
    `--out` share the work evenly whatever was done before; a lane started
    later (after the file changed) may repeat a job another lane runs, and
    one record of each (configuration, seed) is kept.
    """
    done = {_key(r) for r in results["runs"]}
    count = {}
    for _, name, _, seed in jobs:
        count.setdefault(name, 0)
        count[name] += (name, seed) in done
    order = []
    for index, (_, name, _, seed) in enumerate(jobs):
        if (name, seed) not in done:
            order.append((count[name], index))
            count[name] += 1
    return [jobs[index] for _, index in sorted(order)]


def load(args, argv):
    """The results so far at `--out` (or a new record); refuses a file
    made with another budget rather than mixing the two."""
    budget = {key: getattr(args, key) for key in BUDGET}
    given = list(argv if argv is not None else sys.argv[1:])
    # Without `--part`: the command that makes the whole table.
    kept = [a for i, a in enumerate(given)
            if not a.startswith("--part")
            and not (i and given[i - 1] == "--part")]
    command = "KERAS_BACKEND={} python benchmarks/ablations/run.py {}".format(
        keras.backend.backend(), shlex.join(kept)).strip()
    fresh = {"runs": [], "budget": budget, "seeds": args.seeds,
             "backend": keras.backend.backend(), "command": command}
    if not os.path.exists(args.out + ".json"):
        return fresh
    with open(args.out + ".json") as f:
        disk = upgrade(json.load(f))
    if disk["budget"] != budget:
        raise ValueError(
            f"{args.out}.json holds runs made with another budget "
            f"({disk['budget']}); this command's is {budget}. Pass another "
            "`--out` to start a new table.")
    disk["seeds"] = max(disk["seeds"], args.seeds)
    return disk


def upgrade(results):
    """Results written before per-run records (one row per configuration
    with a list per seed) -> per-run records."""
    if "runs" in results:
        return results
    s = results["settings"]
    runs = [{"group": r["group"], "name": r["name"],
             "settings": r["settings"], "seed": seed, "probe": probe,
             "finetune": finetune, "avg_dist": r["avg_dist"],
             "seconds": None}
            for r in results["rows"]
            for seed, (probe, finetune) in enumerate(
                zip(r["probe"], r["finetune"]))]
    return {"runs": runs, "budget": {key: s[key] for key in BUDGET},
            "seeds": s["seeds"], "backend": results["backend"],
            "command": results["command"],
            "wall_seconds": results["wall_seconds"]}


def write(results, args):
    """Writes the runs, merged with runs another process (a second lane
    on the same `--out`) wrote since this one last read the file."""
    if os.path.exists(args.out + ".json"):
        with open(args.out + ".json") as f:
            disk = upgrade(json.load(f))
        have = {_key(r) for r in results["runs"]}
        results["runs"] += [r for r in disk["runs"] if _key(r) not in have]
    with open(args.out + ".json", "w") as f:
        json.dump(results, f, indent=1)
    write_markdown(args.out + ".md", markdown(results))
    return results


def aggregate(results):
    """One row per configuration (in `configurations()` order) with the
    per-seed lists of its runs."""
    rows = []
    for group, name, settings in configurations():
        runs = sorted((r for r in results["runs"] if r["name"] == name),
                      key=lambda r: r["seed"])
        if not runs:
            continue
        dists = [r["avg_dist"] for r in runs if r["avg_dist"] is not None]
        rows.append({"group": group, "name": name,
                     "probe": [r["probe"] for r in runs],
                     "finetune": [r["finetune"] for r in runs],
                     "avg_dist": float(np.mean(dists)) if dists else None})
    return rows


def markdown(results):
    s = dict(results["budget"], seeds=results["seeds"])
    rows = aggregate(results)
    default = next((r for r in rows
                    if r["name"] == "ratio 0.6, 8x8 blocks"), None)
    expected = len(configurations()) * s["seeds"]
    done = "" if len(results["runs"]) >= expected else (
        f" **Partial: {len(results['runs'])} of {expected} runs "
        "(configuration x seed); a row's seed count is shown when it is "
        "short.**")
    seconds = results.get("wall_seconds") or sum(
        r["seconds"] or 0 for r in results["runs"])
    lines = [
        "# SimMIM ablations on the scikit-learn digits (small scale)",
        "",
        f"Made by `{results['command']}` ({seconds} s of runs) on "
        f"a 2-core CPU. ViT {s['depth']} layers, width {s['width']}, "
        f"32x32, patch 4; {s['epochs']} pretraining epochs (lr {s['lr']:g}, "
        f"batch {s['batch']}); test accuracy (%), mean +- std over "
        f"{s['seeds']} seeds. Probe: all training labels, frozen final "
        f"features. Fine-tune: {s['fraction']:.0%} of the labels, "
        f"{s['finetune_steps']} steps at lr {s['finetune_lr']:g} (not "
        "tuned per row). AvgDist in pixels. Vs default: the difference of "
        "the means from the default row (random 8x8 blocks, ratio 0.6, L1, "
        "masked pixels, linear head); `tie` when it is inside the larger "
        "of the two rows' std." + done,
        "",
        "| group | configuration | linear probe | vs default | fine-tune "
        f"{s['fraction']:.0%} | vs default | AvgDist |",
        "|---|---|---|---|---|---|---|",
    ]

    def versus(row, key):
        if default is None or row is default:
            return ""
        diff = np.mean(row[key]) - np.mean(default[key])
        spread = max(np.std(row[key]), np.std(default[key]))
        return f"{diff:+.1f}" + (" tie" if abs(diff) <= spread else "")

    for row in rows:
        dist = "" if row["avg_dist"] is None else f"{row['avg_dist']:.1f}"
        count = len(row["probe"])
        short = "" if count >= s["seeds"] else (
            f" ({count} seed{'s' if count > 1 else ''})")
        lines.append(
            f"| {row['group']} | {row['name']}{short} | "
            f"{np.mean(row['probe']):.1f} +- {np.std(row['probe']):.1f} | "
            f"{versus(row, 'probe')} | "
            f"{np.mean(row['finetune']):.1f} +- "
            f"{np.std(row['finetune']):.1f} | {versus(row, 'finetune')} | "
            f"{dist} |")
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
