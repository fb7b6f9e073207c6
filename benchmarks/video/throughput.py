"""What a clip costs: SimMIM training steps per second on clips against
images of the same frame size, in one run on one backend.

    OMP_NUM_THREADS=1 KERAS_BACKEND=torch python benchmarks/video/throughput.py

(results in `throughput_torch.md` / `.json`; the same for jax and
tensorflow).

The video model is the video benchmark's VideoPrism (8 frames of 32x32
grey, patch 8, width 64, 2 spatial + 2 temporal blocks, tube masking at
0.75); the image model is a keras-hub ViT of the same width and four
blocks on one 32x32 frame (patch 8, random masking at 0.75). Both train
with `fit` on random inputs of batch 32 after a warm-up; the table gives
clips/s, frames/s and images/s, and frames/s over images/s (the share of a
frame's image speed that a clip's frame gets).
"""

import argparse
import json
import os
import sys
import time

import keras
import keras_hub
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

from report import describe_run  # noqa: E402
from report import out_prefix  # noqa: E402
from report import run_info  # noqa: E402
from report import save_results  # noqa: E402

import keras_simmim  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
FRAMES, SIZE, BATCH = 8, 32, 32


def video_model():
    backbone = keras_hub.models.VideoPrismBackbone(
        num_frames=FRAMES, patch_size=8, hidden_dim=64, intermediate_dim=128,
        num_heads=4, num_spatial_layers=2, num_temporal_layers=2,
        num_auxiliary_layers=0, image_shape=(SIZE, SIZE, 1))
    return keras_simmim.SimMIMModel(backbone, mask_patch_size=8,
                                    mask_ratio=0.75, mask_strategy="tube")


def image_model():
    backbone = keras_hub.models.ViTBackbone(
        image_shape=(SIZE, SIZE, 1), patch_size=8, num_layers=4, num_heads=4,
        hidden_dim=64, mlp_dim=128)
    return keras_simmim.SimMIMModel(backbone, mask_patch_size=8,
                                    mask_ratio=0.75)


def samples_per_second(model, shape, steps, warmup):
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(
        size=(BATCH * steps,) + shape).astype("float32")
    model.compile(optimizer=model.default_optimizer(1e-3))
    model.fit(x[:BATCH * warmup], batch_size=BATCH, epochs=1, verbose=0)
    start = time.perf_counter()
    model.fit(x, batch_size=BATCH, epochs=1, verbose=0)
    return BATCH * steps / (time.perf_counter() - start)


def markdown(results):
    rows = results["rows"]
    video, image = rows["video"], rows["image"]
    return "\n".join([
        "# What a clip costs: SimMIM on clips vs images", "",
        f"Command: `KERAS_BACKEND={results['run']['backend']} "
        f"OMP_NUM_THREADS={results['settings']['threads']} python "
        f"benchmarks/video/throughput.py` ({results['seconds']} s; "
        f"{describe_run(results['run'])}).", "",
        "| model | per second (median of rounds) | frames/s |",
        "|---|---|---|",
        f"| VideoPrism, {FRAMES} x {SIZE}x{SIZE} clips, tube 0.75 | "
        f"{video:.1f} clips | {video * FRAMES:.0f} |",
        f"| ViT, one {SIZE}x{SIZE} frame, random 0.75 | {image:.1f} images "
        f"| {image:.0f} |", "",
        f"Frames/s in clips over images/s: {video * FRAMES / image:.2f} "
        f"(batch {BATCH} clips or images, "
        f"{results['settings']['steps']} timed steps a round, "
        f"{results['settings']['rounds']} rounds).", ""])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=out_prefix, default=None,
                        help="default: benchmarks/video/throughput_BACKEND")
    args = parser.parse_args()
    if args.out is None:
        args.out = os.path.join(HERE, f"throughput_{keras.backend.backend()}")
    start, info = time.time(), run_info()
    video = video_model()
    image = image_model()
    measured = {"video": [], "image": []}
    for _ in range(args.rounds):  # interleaved, so drift hits both
        measured["video"].append(samples_per_second(
            video, (FRAMES, SIZE, SIZE, 1), args.steps, args.warmup))
        measured["image"].append(samples_per_second(
            image, (SIZE, SIZE, 1), args.steps, args.warmup))
    results = {
        "rows": {k: float(np.median(v)) for k, v in measured.items()},
        "rounds": measured, "run": info,
        "settings": {**vars(args), "batch": BATCH,
                     "threads": os.environ.get("OMP_NUM_THREADS", "all")},
        "seconds": round(time.time() - start),
    }
    results["settings"].pop("out")
    print(save_results(args.out, results, markdown))
    print(json.dumps(results["rows"]))


if __name__ == "__main__":
    main()
