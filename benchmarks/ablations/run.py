"""SimMIM's design choices, small scale: the paper's ablations on the digits.

    KERAS_BACKEND=torch python benchmarks/ablations/run.py

(torch: no per-model compilation, which dominates many short runs on
JAX/TF.) Smoke run (a few steps, three configurations, writes
`results_quick.*` beside `--out`; delete them after):

    OMP_NUM_THREADS=1 KERAS_BACKEND=torch python benchmarks/ablations/run.py \
        --quick

Pretrains one small ViT per configuration and seed on the unlabeled
scikit-learn digits training split (32x32, patch 4), then measures, with
the fixed train / validation / test splits of `load_digits`:

- linear-probe accuracy (all training labels, frozen average-pooled final
  features, `fit_linear_probe`), its learning rate chosen on validation;
- few-label fine-tuning accuracy (10% of the training labels, stratified,
  the same subset per seed for every configuration, a fixed number of
  steps), its learning rate and layer decay chosen on validation for every
  row, random init included: each arm gets its own;
- AvgDist of the configuration's masks (the paper's mean distance of a
  masked pixel to the nearest visible one, on the 32x32 images).

Every choice is made per (configuration, seed) on the validation split,
the learning-rate grids grow by factors of 2 past a winning edge
(`report.tune`), and the test split is read once per row and seed, with
the chosen model. Every configuration differs from the default (random 8x8
blocks, ratio 0.6, L1 on masked pixels, linear head) in one named choice;
a random-init encoder is the floor. Rows are compared over seeds with a
paired t-test (`report.paired_test`) against random init and against the
default; the markdown calls a difference significant only when p < 0.05.
Writes `results.md` / `results.json` next to this file (`--out`).

Each (configuration, seed) run is recorded as it finishes, with its
settings, its choices and `report.run_info()` (commit, CPU), and a rerun
skips the runs its `--out` already holds, so a long table can be made over
several sessions, or by two one-thread lanes at once:

    OMP_NUM_THREADS=1 KERAS_BACKEND=torch python benchmarks/ablations/run.py \
        --epochs 200 --depth 4 --finetune-steps 300 \
        --out benchmarks/ablations/results_200ep --cache ~/ablation-cache \
        --part 0/2   # and --part 1/2 beside it

`--cache DIR` keeps each pretrained encoder (not in git), so a second run
with other fine-tuning settings skips pretraining. An `--out` made with
another pretraining budget is refused rather than mixed; one made by the
code before validation-split tuning keeps its runs as `older_runs`, shown
(marked) until this code's run of the same row has every seed.
`--markdown-only` rewrites the `.md` from the `.json` without running.
"""

import argparse
import hashlib
import json
import os
import re
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
from report import out_prefix  # noqa: E402
from report import paired_test  # noqa: E402
from report import parse_part  # noqa: E402
from report import run_info  # noqa: E402
from report import tune  # noqa: E402
from report import write_markdown  # noqa: E402

DEFAULT = dict(mask_patch_size=8, mask_ratio=0.6, mask_strategy="random",
               loss="l1", loss_region="masked", head="linear")
DEFAULT_NAME = "ratio 0.6, 8x8 blocks"
RANDOM_NAME = "random init (no pretraining)"
# Normalised digits (ImageNet mean/std) lie in about [-2.1, 2.7].
COLOR = dict(num_color_bins=8, color_range=(-2.2, 2.7))
# Version of the downstream protocol a run was made with: 2 = validation
# split, per-row learning rates / layer decay, test read once. Runs
# without it were made before (fixed lr and layer decay 0.75 for every
# row, no validation split) and are kept as `older_runs`.
PROTOCOL = 2
# What pretrained weights depend on (with the configuration and seed) and
# the downstream settings a table's runs must share.
PRETRAIN_BUDGET = ("epochs", "batch", "lr", "depth", "width")
BUDGET = PRETRAIN_BUDGET + ("fraction", "finetune_steps", "finetune_lrs",
                            "layer_decays", "probe_lrs", "probe_epochs",
                            "max_extend")
ALPHA = 0.05


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
    history = model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0)
    return model, float(history.history["loss"][-1])


def avg_dist(model, count=64):
    """Mean AvgDist (pixels) of `count` masks the model draws."""
    mask = keras.ops.convert_to_numpy(
        model.masking(np.zeros((count, 32, 32, 3), "float32")))
    return float(np.mean([average_distance(m, model.patch_size)
                          for m in mask.astype(bool)]))


def cache_path(name, settings, seed, args):
    """Where `--cache` keeps one run's pretrained backbone weights: the
    configuration's name and a hash of its settings, the seed and the
    pretraining budget."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    digest = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()
                          ).hexdigest()[:8]
    tag = "-".join(f"{k}{getattr(args, k):g}" for k in PRETRAIN_BUDGET)
    return os.path.join(args.cache,
                        f"{slug}-{digest}-seed{seed}-{tag}.weights.h5")


def pretrained(name, settings, seed, pixels, args):
    """The pretrained backbone weights of one run, with the run's AvgDist,
    final pretraining loss and pretraining seconds (None when loaded from
    `--cache`)."""
    path = args.cache and cache_path(name, settings, seed, args)
    if path and os.path.exists(path) and os.path.exists(path + ".json"):
        backbone = vit(seed, args)
        backbone.load_weights(path)
        with open(path + ".json") as f:
            info = json.load(f)
        print(f"  pretrained weights loaded from {path}", flush=True)
        return backbone.get_weights(), info["avg_dist"], info["loss"], None
    start = time.time()
    model, loss = pretrain(settings, seed, pixels, args)
    seconds = round(time.time() - start)
    dist = avg_dist(model)
    if path:
        os.makedirs(args.cache, exist_ok=True)
        model.backbone.save_weights(path)
        with open(path + ".json", "w") as f:
            json.dump({"name": name, "settings": settings, "seed": seed,
                       "budget": {k: getattr(args, k)
                                  for k in PRETRAIN_BUDGET},
                       "avg_dist": dist, "loss": loss,
                       "seconds": seconds}, f, indent=1)
    return model.backbone.get_weights(), dist, loss, seconds


def _accuracy(model, x, y):
    return float(model.evaluate(x, y, verbose=0, batch_size=256)[1])


def downstream(weights, seed, data, args):
    """Probe and fine-tuning test accuracy of one run, every choice made on
    the validation split and the test split read once for each."""
    (train_px, train_y), (val_px, val_y), (test_px, test_y) = data
    val_x, test_x = normalize(val_px), normalize(test_px)
    backbone = vit(seed, args)
    backbone.set_weights(weights)
    train_f, val_f, test_f = (extract_features(backbone, normalize(p))
                              for p in (train_px, val_px, test_px))

    def run_probe(lr):
        head = fit_linear_probe(train_f, train_y, 10,
                                epochs=args.probe_epochs,
                                learning_rate=lr, seed=seed)
        return _accuracy(head, val_f, val_y), head

    probe_lr, probes = tune(run_probe, args.probe_lrs, args.max_extend)
    probe = _accuracy(probes[probe_lr][1], test_f, test_y)

    subset = stratified_subset(train_y, args.fraction, seed)
    best = {"val": -1.0}
    finetune_val = {}
    for decay in args.layer_decays:
        def run_finetune(lr, decay=decay):
            clf_backbone = vit(seed, args)
            clf_backbone.set_weights(weights)
            keras.utils.set_random_seed(seed)
            clf = SimMIMClassifier(clf_backbone, num_classes=10)
            clf.compile_for_finetuning(
                learning_rate=lr, total_steps=args.finetune_steps,
                layer_decay=decay, weight_decay=0.05, label_smoothing=0.1)
            ds = from_arrays(train_px[subset], train_y[subset], augment=True,
                             flip=False, shuffle=True, seed=seed,
                             batch_size=32).repeat()
            clf.fit(ds, steps_per_epoch=args.finetune_steps, epochs=1,
                    verbose=0)
            val = _accuracy(clf, val_x, val_y)
            finetune_val[f"{decay:g}/{lr:g}"] = 100 * val
            if val > best["val"]:  # ties: the first tried
                best.update(val=val, clf=clf, lr=lr, decay=decay)
            return (val,)

        tune(run_finetune, args.finetune_lrs, args.max_extend)
    finetune = _accuracy(best["clf"], test_x, test_y)
    choices = {
        "probe_lr": probe_lr,
        "probe_val": {f"{lr:g}": 100 * v[0] for lr, v in probes.items()},
        "finetune_lr": best["lr"], "layer_decay": best["decay"],
        "finetune_val": finetune_val,
    }
    return 100 * probe, 100 * finetune, choices


QUICK = dict(seeds=2, epochs=1, finetune_steps=2, probe_epochs=2,
             max_extend=1)
QUICK_ONLY = (RANDOM_NAME, DEFAULT_NAME)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3,
                        help="Pretraining peak learning rate.")
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--fraction", type=float, default=0.1)
    parser.add_argument("--finetune-steps", type=int, default=150)
    parser.add_argument("--finetune-lrs", type=float, nargs="+",
                        default=[1e-3, 2e-3, 4e-3],
                        help="Fine-tuning learning rates tried on the "
                        "validation split (widened past a winning edge).")
    parser.add_argument("--layer-decays", type=float, nargs="+",
                        default=[0.75, 1.0],
                        help="Fine-tuning layer decays tried on validation "
                        "(each with the whole learning-rate search).")
    parser.add_argument("--probe-lrs", type=float, nargs="+",
                        default=[3e-3, 1e-2, 3e-2],
                        help="Linear-probe learning rates tried on the "
                        "validation split (widened past a winning edge).")
    parser.add_argument("--probe-epochs", type=int, default=100)
    parser.add_argument("--max-extend", type=int, default=3,
                        help="Widening steps (x2 past a winning edge) of "
                        "every learning-rate grid.")
    parser.add_argument("--only", nargs="*", default=None,
                        help="Run only configurations whose name contains "
                        "one of these strings (smoke runs).")
    parser.add_argument("--part", type=parse_part, default=(0, 1),
                        help="K/N: run every N-th (configuration, seed) "
                        "job from the K-th, e.g. two one-thread lanes "
                        "with 0/2 and 1/2 writing to the same --out.")
    parser.add_argument("--cache", default=None,
                        help="Folder keeping each run's pretrained weights "
                        "(not in git): fine-tuning can be re-run without "
                        "pretraining again.")
    parser.add_argument("--quick", action="store_true",
                        help="Smoke run: " + ", ".join(
                            f"--{k.replace('_', '-')} {v}"
                            for k, v in QUICK.items())
                        + ", random init and the default unless --only, "
                        "output "
                        "`<out>_quick`.")
    parser.add_argument("--markdown-only", action="store_true",
                        help="Rewrite `<out>.md` from `<out>.json` and exit.")
    parser.add_argument("--out", type=out_prefix,
                        default=os.path.join(HERE, "results"))
    args = parser.parse_args(argv)
    if args.markdown_only:
        with open(args.out + ".json") as f:
            results = upgrade(json.load(f))
        write_markdown(args.out + ".md", markdown(results))
        print(f"wrote {args.out}.md")
        return
    if args.quick:
        for key, value in QUICK.items():
            setattr(args, key, value)
        args.only = args.only or list(QUICK_ONLY)
        args.out += "_quick"

    info = run_info()  # the code as it was loaded
    train_px, train_y = load_digits("train")
    data = ((train_px, train_y), load_digits("validation"),
            load_digits("test"))
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
        dist = loss = pretrain_seconds = None
        if settings is None:
            weights = vit(seed, args).get_weights()
        else:
            weights, dist, loss, pretrain_seconds = pretrained(
                name, settings, seed, train_px, args)
        probe, finetune, choices = downstream(weights, seed, data, args)
        run = {"group": group, "name": name, "settings": settings,
               "seed": seed, "protocol": PROTOCOL, "probe": probe,
               "finetune": finetune, "avg_dist": dist,
               "pretrain_loss": loss, "choices": choices,
               "budget": results["budget"],
               "seconds": round(time.time() - start),
               "pretrain_seconds": pretrain_seconds,
               "run_info": info}
        results["runs"].append(run)
        print(f"{name} / seed {seed}: probe {probe:.1f} (lr "
              f"{choices['probe_lr']:g}), fine-tune {finetune:.1f} (lr "
              f"{choices['finetune_lr']:g}, layer decay "
              f"{choices['layer_decay']:g}), AvgDist {dist} "
              f"({run['seconds']} s)", flush=True)
        # Written after every run: an interrupted run keeps what it did.
        results = write(results, args)
    print(markdown(results))


def _key(run):
    return run["name"], run["seed"]


def pending(jobs, results):
    """The jobs `results` lacks, fewest-seeds-first: every configuration's
    next seed before any configuration's one after, so an interrupted
    table is even (each row short by at most one seed) rather than whole
    rows missing. Runs made by older code (`older_runs`) do not count.

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


def command_line(argv):
    """The command that makes the whole table (without `--part`)."""
    given = list(argv if argv is not None else sys.argv[1:])
    kept = [a for i, a in enumerate(given)
            if not a.startswith("--part")
            and not (i and given[i - 1] == "--part")]
    return "KERAS_BACKEND={} python benchmarks/ablations/run.py {}".format(
        keras.backend.backend(), shlex.join(kept)).strip()


def load(args, argv):
    """The results so far at `--out` (or a new record). Refuses a file
    made with another budget rather than mixing the two; a file made by
    the code before validation-split tuning must share the pretraining
    budget, and its runs become `older_runs`."""
    budget = {key: getattr(args, key) for key in BUDGET}
    fresh = {"protocol": PROTOCOL, "runs": [], "older_runs": [],
             "budget": budget, "seeds": args.seeds,
             "backend": keras.backend.backend(),
             "command": command_line(argv)}
    if not os.path.exists(args.out + ".json"):
        return fresh
    with open(args.out + ".json") as f:
        disk = upgrade(json.load(f))
    if disk.get("protocol") == PROTOCOL:
        if disk["budget"] != budget:
            raise ValueError(
                f"{args.out}.json holds runs made with another budget "
                f"({disk['budget']}); this command's is {budget}. Pass "
                "another `--out` to start a new table.")
        disk["seeds"] = max(disk["seeds"], args.seeds)
        return disk
    older = {k: disk["budget"][k] for k in PRETRAIN_BUDGET}
    if older != {k: budget[k] for k in PRETRAIN_BUDGET}:
        raise ValueError(
            f"{args.out}.json holds runs made by older code with another "
            f"pretraining budget ({older}). Pass another `--out`.")
    fresh["older_runs"] = disk["older_runs"]
    fresh["older_command"] = disk["older_command"]
    fresh["older_seconds"] = disk["older_seconds"]
    fresh["seeds"] = max(disk["seeds"], args.seeds)
    return fresh


def upgrade(results):
    """Results of older code -> this code's record: one per-run list of
    this protocol (`runs`, empty) and the older runs, each carrying the
    budget it was made with (`older_runs`). Handles the per-configuration
    format (one row with a list per seed) and the per-run format without a
    protocol."""
    if results.get("protocol") == PROTOCOL:
        return results
    if "runs" not in results:  # one row per configuration
        s = results["settings"]
        results = {
            "runs": [{"group": r["group"], "name": r["name"],
                      "settings": r["settings"], "seed": seed,
                      "probe": probe, "finetune": finetune,
                      "avg_dist": r["avg_dist"], "seconds": None}
                     for r in results["rows"]
                     for seed, (probe, finetune) in enumerate(
                         zip(r["probe"], r["finetune"]))],
            "budget": {key: s[key] for key in (
                "epochs", "batch", "lr", "depth", "width", "fraction",
                "finetune_steps", "finetune_lr", "probe_lr")},
            "seeds": s["seeds"], "backend": results["backend"],
            "command": results["command"],
            "wall_seconds": results["wall_seconds"]}
    older = [dict(r, budget=r.get("budget", results["budget"]))
             for r in results["runs"]]
    seconds = results.get("wall_seconds") or sum(
        r.get("seconds") or 0 for r in older)
    return dict(results, runs=[], older_runs=older,
                older_command=results["command"], older_seconds=seconds)


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


def aggregate(runs, seeds):
    """One row per configuration (in `configurations()` order) with its
    runs by seed."""
    rows = []
    for group, name, _ in configurations():
        mine = {r["seed"]: r for r in runs if r["name"] == name}
        if mine:
            rows.append({"group": group, "name": name, "runs": mine})
    return rows


def versus(row, reference, key):
    """A paired comparison cell: mean difference +- standard error (ddof
    1) over the seeds both rows have, and the paired t-test's p."""
    if reference is None or row is reference:
        return ""
    seeds = sorted(set(row["runs"]) & set(reference["runs"]))
    if not seeds:
        return "no common seed"
    test = paired_test([reference["runs"][s][key] for s in seeds],
                       [row["runs"][s][key] for s in seeds], ALPHA)
    if test["p"] is None:
        return f"{test['mean_diff']:+.1f} (1 seed, no test)"
    p = test["p"]
    text = (f"{test['mean_diff']:+.1f} +- {test['std_err']:.1f}, p "
            + ("n/a" if p != p else f"{p:.2g}"))
    return f"**{text}, significant**" if test["significant"] else text


def _spread(values):
    values = np.asarray(values, "float64")
    if len(values) < 2:
        return f"{values.mean():.1f}"
    return f"{values.mean():.1f} +- {values.std(ddof=1):.1f}"


def _choice(run):
    c = run.get("choices")
    if not c:
        budget = run["budget"]
        return f"{budget['finetune_lr']:g} / 0.75 (fixed)"
    return f"{c['finetune_lr']:g} / {c['layer_decay']:g}"


def _choices(runs):
    """Per-seed fine-tuning choices, or one when every seed made it."""
    choices = [_choice(r) for r in runs]
    return choices[0] if len(set(choices)) == 1 else ", ".join(choices)


def table_rows(rows, seeds, older):
    """`(configuration index, older, line)` of one code version's rows."""
    index = {name: i for i, (_, name, _) in enumerate(configurations())}
    by_name = {r["name"]: r for r in rows}
    random_init = by_name.get(RANDOM_NAME)
    default = by_name.get(DEFAULT_NAME)
    lines = []
    for row in rows:
        runs = [row["runs"][s] for s in sorted(row["runs"])]
        dists = [r["avg_dist"] for r in runs if r["avg_dist"] is not None]
        dist = f"{np.mean(dists):.1f}" if dists else ""
        short = "" if len(runs) >= seeds else (
            f" ({len(runs)} seed{'s' if len(runs) > 1 else ''})")
        mark = " (older code)" if older else ""
        probe_lrs = sorted({r["choices"]["probe_lr"] for r in runs
                            if r.get("choices")})
        probe_lr = ("/".join(f"{v:g}" for v in probe_lrs) if probe_lrs
                    else f"{runs[0]['budget']['probe_lr']:g} (fixed)")
        line = (f"| {row['group']} | {row['name']}{short}{mark} | "
                f"{_spread([r['probe'] for r in runs])} | "
                f"{versus(row, random_init, 'probe')} | "
                f"{versus(row, default, 'probe')} | "
                f"{_spread([r['finetune'] for r in runs])} | "
                f"{versus(row, random_init, 'finetune')} | "
                f"{versus(row, default, 'finetune')} | {probe_lr} | "
                f"{_choices(runs)} | {dist} |")
        lines.append((index[row["name"]], older, line))
    return lines


def markdown(results):
    s = dict(results["budget"], seeds=results["seeds"])
    seeds = s["seeds"]
    current = aggregate(results["runs"], seeds)
    complete = {r["name"] for r in current if len(r["runs"]) >= seeds}
    older = aggregate(results.get("older_runs", []), seeds)
    # Older rows are compared only with older rows: their baselines stay in
    # the table (marked) as long as any other older row is shown.
    baselines = (RANDOM_NAME, DEFAULT_NAME)
    keep_baselines = any(r["name"] not in complete.union(baselines)
                         for r in older)
    older = [r for r in older if r["name"] not in complete
             or (keep_baselines and r["name"] in baselines)]
    seconds = sum(r.get("seconds") or 0 for r in results["runs"])
    pretrain = " ".join(
        [f"ViT {s['depth']} layers, width {s['width']}, 32x32, patch 4;",
         f"{s['epochs']} pretraining epochs (lr {s['lr']:g},",
         f"batch {s['batch']})."])
    lines = ["# SimMIM ablations on the scikit-learn digits (small scale)",
             ""]
    if results.get("protocol") == PROTOCOL:
        expected = len(configurations()) * seeds
        done = "" if len(results["runs"]) >= expected else (
            f" **Partial: {len(results['runs'])} of {expected} runs "
            "(configuration x seed) made by this code; a row's seed count "
            "is shown when it is short.**")
        lines += [
            f"Made by `{results['command']}` ({seconds} s of runs) on a "
            f"2-core CPU. {pretrain} Test accuracy (%) on the 359 test "
            f"images, mean +- std (ddof 1) over {seeds} seeds. Per row and "
            "seed, every choice is made on the 179-image validation split "
            "and the test split is read once: probe (all training labels, "
            "frozen final features) learning rate from "
            f"{_grid(s['probe_lrs'])} ({s['probe_epochs']} epochs); "
            "fine-tuning "
            f"({s['fraction']:.0%} of the labels, {s['finetune_steps']} "
            "steps) learning rate from "
            f"{_grid(s['finetune_lrs'])} and layer decay from "
            f"{{{', '.join(f'{v:g}' for v in s['layer_decays'])}}}, for "
            "random init too (grids widened by 2x past a winning edge, "
            f"up to {s['max_extend']} times). "
            "AvgDist in pixels." + done, ""]
    else:
        lines += [f"{pretrain} Test accuracy (%) on the 359 test images, "
                  f"mean +- std (ddof 1) over {seeds} seeds; 2-core CPU.",
                  ""]
    if older:
        b = older[0]["runs"][min(older[0]["runs"])]["budget"]
        lines += [
            "Rows marked *(older code)* were made by "
            f"`{results['older_command']}` "
            f"({results.get('older_seconds', 0)} s of runs) before this "
            "protocol: no validation split (nothing chosen, nothing "
            f"tuned): probe lr {b['probe_lr']:g}, fine-tuning "
            f"({b['fraction']:.0%} of the labels, {b['finetune_steps']} "
            f"steps) at lr {b['finetune_lr']:g} with layer decay 0.75 for "
            "every row. Random init got the pretrained rows' lr and layer "
            "decay, which handicaps it (the quality benchmark tunes it: "
            "`benchmarks/quality/results.md`); re-run these rows with this "
            "script before reading them. Older rows are compared only with "
            "older rows.", ""]
    lines += [
        "Comparisons (vs random init, vs the default: random 8x8 blocks, "
        "ratio 0.6, L1, masked pixels, linear head) are paired over seeds "
        "(same seed: same initialisation, label subset and data order): "
        "mean difference +- its standard error (ddof 1) and the two-sided "
        f"paired t-test's p; **significant** only when p < {ALPHA:g}. A "
        "difference without that mark is not shown to exist (nor to be "
        "absent): with few seeds only large, consistent differences clear "
        "the test.", "",
        "| group | configuration | linear probe | vs random init | "
        "vs default | fine-tune | vs random init | vs default | probe lr | "
        "fine-tune lr / layer decay (per seed) | AvgDist |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [line for _, _, line in sorted(
        table_rows(current, seeds, older=False)
        + table_rows(older, seeds, older=True))]
    lines.append("")
    return "\n".join(lines)


def _grid(values):
    return "{" + ", ".join(f"{v:g}" for v in values) + "}"


if __name__ == "__main__":
    main()
