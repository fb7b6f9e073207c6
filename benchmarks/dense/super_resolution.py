"""Super-resolution from a SimMIM-pretrained ViT, on held-out real photos.

Reproduces `super_resolution.md` / `super_resolution.json` on a CPU:

    KERAS_BACKEND=torch OMP_NUM_THREADS=1 python benchmarks/dense/super_resolution.py

Data: the sample photographs that ship with scikit-image (no download),
each shrunk to 128 px on its longer side and cut into non-overlapping
32x32 tiles. Whole photos are split, so no test tile shares a photo with a
training tile: test = coffee, motorcycle_right, chelsea, hubble_deep_field;
validation = astronaut, grass; train = the other twelve.

For each seed: a 4-layer, width-64 ViT (patch 4) is SimMIM-pretrained on
the unlabeled training tiles (random resized crops and flips), and a
random-init ViT of the same architecture is drawn with the same seed. Both
are fine-tuned as `keras_simmim.downstream.SuperResolutionModel` (the
residual over bicubic upsampling, L1 loss, AdamW, warm-up + cosine) to
restore x2 and x4 bicubically degraded training tiles, the same number of
steps. Each arm's learning rate and layer decay are chosen per scale on the
validation tiles with seed 0 (the learning-rate grid widened until the best
value is inside it); then every seed runs with that choice and reads the
test tiles once. PSNR (8-bit pixels, per tile, averaged) and SSIM
(scikit-image) are compared with bicubic upsampling, measured on the same
tiles in the same run; differences are paired by seed (paired t-test).
"""

import argparse
import os
import sys
import time

import keras
import keras_hub
import numpy as np
from PIL import Image

import keras_simmim
from keras_simmim.data import normalize
from keras_simmim.downstream import SuperResolutionModel
from keras_simmim.downstream import degrade
from keras_simmim.downstream import image_quality

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # benchmarks/report.py
from report import out_prefix  # noqa: E402
from report import paired_test  # noqa: E402
from report import pretrain_simmim  # noqa: E402
from report import provenance  # noqa: E402
from report import run_info  # noqa: E402
from report import save_results  # noqa: E402

PHOTOS = {
    "test": ["coffee", "motorcycle_right", "chelsea", "hubble_deep_field"],
    "validation": ["astronaut", "grass"],
    "train": ["rocket", "motorcycle_left", "horse", "retina", "coins",
              "camera", "moon", "brick", "gravel", "ihc", "cell", "page"],
}
TILE = 32
TARGET_GAIN_X2 = 1.0  # dB over bicubic


def tiles(split, longer_side=128):
    """uint8 `(n, 32, 32, 3)` tiles of the split's photos."""
    import skimage.data

    out = []
    for name in PHOTOS[split]:
        for extension in (".png", ".jpg"):
            path = os.path.join(skimage.data.data_dir, name + extension)
            if os.path.exists(path):
                break
        else:
            raise FileNotFoundError(f"scikit-image has no sample {name!r}")
        photo = Image.open(path).convert("RGB")
        photo.thumbnail((longer_side, longer_side), Image.BICUBIC)
        pixels = np.asarray(photo)
        rows, cols = pixels.shape[0] // TILE, pixels.shape[1] // TILE
        for r in range(rows):
            for c in range(cols):
                out.append(pixels[r * TILE:(r + 1) * TILE,
                                  c * TILE:(c + 1) * TILE])
    return np.stack(out)


def vit(seed):
    keras.utils.set_random_seed(seed)
    return keras_hub.models.ViTBackbone(
        image_shape=(TILE, TILE, 3), patch_size=4, num_layers=4,
        num_heads=4, hidden_dim=64, mlp_dim=128,
    )


def pretrain(seed, train_px, args):
    model = keras_simmim.SimMIMModel(
        vit(seed), mask_patch_size=8, mask_ratio=0.6, seed=seed)
    return pretrain_simmim(model, train_px, args.pretrain_steps,
                           args.pretrain_lr, args.pretrain_batch, seed,
                           f"seed {seed}")


def metrics(predicted, truth):
    """Mean PSNR (dB) and SSIM over tiles, on 8-bit pixels."""
    return image_quality(predicted, truth)


def finetune(weights, seed, scale, lr, layer_decay, data, args):
    """Fine-tunes `weights` for x`scale`; returns (val, test) metrics."""
    backbone = vit(seed)
    backbone.set_weights(weights)
    keras.utils.set_random_seed(seed)
    model = SuperResolutionModel(backbone, scale=scale)
    model.compile_for_super_resolution(
        learning_rate=lr, total_steps=args.finetune_steps,
        layer_decay=layer_decay)
    train_x, train_y = data["train"][scale]
    rng = np.random.default_rng(seed)

    def batches():
        while True:
            order = rng.permutation(len(train_x))
            for start in range(0, len(order) - args.finetune_batch + 1,
                               args.finetune_batch):
                pick = order[start:start + args.finetune_batch]
                flip = rng.random() < 0.5  # the same flip for the pair
                x, y = train_x[pick], train_y[pick]
                yield (x[:, :, ::-1], y[:, :, ::-1]) if flip else (x, y)

    model.fit(batches(), steps_per_epoch=args.finetune_steps, epochs=1,
              verbose=0)
    scores = {}
    for split in ("validation", "test"):
        x, y = data[split][scale]
        scores[split] = metrics(model.predict(x, batch_size=64, verbose=0), y)
    return scores


def tune_lr(run, grid, max_extend=2):
    """Best learning rate by validation PSNR; the grid grows by factors of
    2 past an edge that wins."""
    tried = {lr: run(lr) for lr in grid}
    for _ in range(max_extend):
        best = max(tried, key=lambda v: tried[v]["validation"][0])
        values = sorted(tried)
        if best == values[-1]:
            tried[best * 2] = run(best * 2)
        elif best == values[0]:
            tried[best / 2] = run(best / 2)
        else:
            break
    best = max(tried, key=lambda v: tried[v]["validation"][0])
    return best, tried


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--scales", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--pretrain-steps", type=int, default=1500)
    parser.add_argument("--pretrain-batch", type=int, default=64)
    parser.add_argument("--pretrain-lr", type=float, default=2e-3)
    parser.add_argument("--finetune-steps", type=int, default=300)
    parser.add_argument("--finetune-batch", type=int, default=32)
    parser.add_argument("--finetune-lrs", type=float, nargs="+",
                        default=[5e-4, 1e-3, 2e-3])
    parser.add_argument("--layer-decays", type=float, nargs="+",
                        default=[0.75, 1.0])
    parser.add_argument("--quick", action="store_true",
                        help="A few steps of everything, 2 seeds: checks the "
                        "script, measures nothing.")
    parser.add_argument("--out", type=out_prefix,
                        default=os.path.join(HERE, "super_resolution"))
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.scales = 2, [2]
        args.pretrain_steps, args.finetune_steps = 4, 4
        args.finetune_lrs, args.layer_decays = [1e-3], [1.0]
        args.out = args.out + "_quick"

    start, info = time.time(), run_info()  # the code as it was loaded
    pixels = {split: tiles(split) for split in PHOTOS}
    print({split: len(p) for split, p in pixels.items()}, "tiles", flush=True)
    data = {}
    for split, px in pixels.items():
        y = normalize(px)
        data[split] = {s: (np.asarray(keras.ops.convert_to_numpy(
            degrade(y, s))), y) for s in args.scales}
    bicubic = {s: {split: metrics(*data[split][s]) for split in PHOTOS}
               for s in args.scales}
    seeds = list(range(args.seeds))
    weights, pretrain_loss = {}, {}
    for seed in seeds:
        weights[(seed, "simmim")], pretrain_loss[seed] = pretrain(
            seed, pixels["train"], args)
        weights[(seed, "scratch")] = vit(seed).get_weights()

    results = {"settings": vars(args), "run": info,
               "tiles": {k: len(v) for k, v in pixels.items()},
               "pretrain_loss": pretrain_loss, "bicubic": {}, "choices": {},
               "rows": {}}
    for scale in args.scales:
        results["bicubic"][str(scale)] = bicubic[scale]["test"]
        for arm in ("scratch", "simmim"):
            # Each arm's own learning rate and layer decay, on validation.
            best = None
            tried_all = {}
            for decay in args.layer_decays:
                lr, tried = tune_lr(
                    lambda lr: finetune(weights[(0, arm)], 0, scale, lr,
                                        decay, data, args),
                    args.finetune_lrs)
                for value, scores in tried.items():
                    tried_all[f"lr={value:g},decay={decay:g}"] = scores[
                        "validation"]
                    if best is None or scores["validation"][0] > best[2]:
                        best = (value, decay, scores["validation"][0])
            lr, decay, _ = best
            results["choices"][f"x{scale}-{arm}"] = {
                "learning_rate": lr, "layer_decay": decay,
                "validation_psnr_ssim": tried_all}
            print(f"  x{scale} {arm}: lr {lr:g}, layer decay {decay:g}",
                  flush=True)
            results["rows"][f"x{scale}-{arm}"] = [
                finetune(weights[(seed, arm)], seed, scale, lr, decay, data,
                         args)["test"]
                for seed in seeds]
    results["seconds"] = round(time.time() - start)
    print(save_results(args.out, results, markdown))


def markdown(results):
    s = results["settings"]
    lines = [
        "# Super-resolution on held-out photos: SimMIM vs random init vs "
        "bicubic",
        "",
        provenance(results, "benchmarks/dense/super_resolution.py"),
        "",
        f"Tiles 32x32 (train / validation / test): "
        f"{results['tiles']['train']} / {results['tiles']['validation']} / "
        f"{results['tiles']['test']}; ViT 4 layers, width 64, patch 4; "
        f"SimMIM {s['pretrain_steps']} steps of {s['pretrain_batch']}; "
        f"fine-tuning {s['finetune_steps']} steps of {s['finetune_batch']} "
        f"per arm and scale; {s['seeds']} paired seeds.",
        "",
        "Test PSNR (dB) and SSIM, mean over seeds; gains are paired "
        "differences per seed, mean +- standard error (ddof 1), paired "
        "t-test p:",
        "",
        "| scale | bicubic | random init | SimMIM | SimMIM - bicubic (dB) "
        "| SimMIM - random init (dB) | SSIM bicubic / random / SimMIM |",
        "|---|---|---|---|---|---|---|",
    ]
    for scale in s["scales"]:
        bic_psnr, bic_ssim = results["bicubic"][str(scale)]
        scratch = np.asarray(results["rows"][f"x{scale}-scratch"])
        simmim = np.asarray(results["rows"][f"x{scale}-simmim"])
        over_bicubic = paired_test([bic_psnr] * len(simmim), simmim[:, 0])
        over_scratch = paired_test(scratch[:, 0], simmim[:, 0])

        def gain(test):
            se = "" if test["std_err"] is None else f" +- {test['std_err']:.2f}"
            p = "" if test["p"] is None else f" (p {test['p']:.3f})"
            return f"{test['mean_diff']:+.2f}{se}{p}"

        lines.append(
            f"| x{scale} | {bic_psnr:.2f} | {scratch[:, 0].mean():.2f} | "
            f"{simmim[:, 0].mean():.2f} | {gain(over_bicubic)} | "
            f"{gain(over_scratch)} | {bic_ssim:.3f} / "
            f"{scratch[:, 1].mean():.3f} / {simmim[:, 1].mean():.3f} |")
    lines += ["", "Choices on the validation tiles (seed 0):", ""]
    for key, choice in results["choices"].items():
        lines.append(f"- {key}: learning rate {choice['learning_rate']:g}, "
                     f"layer decay {choice['layer_decay']:g}")
    if 2 in s["scales"]:
        simmim = np.asarray(results["rows"]["x2-simmim"])[:, 0].mean()
        gain = simmim - results["bicubic"]["2"][0]
        lines += ["", f"Target: SimMIM beats bicubic by at least "
                  f"{TARGET_GAIN_X2:g} dB PSNR at x2: {gain:+.2f} dB, "
                  f"{'met' if gain >= TARGET_GAIN_X2 else '**missed**'}."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
