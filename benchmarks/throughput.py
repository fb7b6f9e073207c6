"""SimMIM training throughput: keras_simmim on each backend vs transformers.

    python benchmarks/throughput.py                      # CPU table
    python benchmarks/throughput.py --gpu --peak-tflops 989   # GPU mode

Every measurement runs in its own subprocess (a Keras backend is fixed per
process), one after the other on the same machine, in one run of this
script: the reference is Hugging Face transformers'
`ViTForMaskedImageModeling` (PyTorch eager, same config, same batch, AdamW,
SimMIM's masked L1 loss), and each keras_simmim row is a ratio against it.
A training step is forward + backward + AdamW update of a whole batch; the
first `--warmup` steps (compilation) are not timed. Peak memory is the
process's peak resident set size (CPU) or the accelerator's peak allocation
(GPU). The input pipeline (`keras_simmim.data.from_arrays` with SimMIM's
augmentation, and PNG decoding through `from_folder`) is timed separately:
it must deliver images faster than the fastest training step eats them.

The CPU mode writes `benchmarks/throughput_results.{md,json}`; the GPU mode
(ViT-B/16 at 224, mixed bfloat16) prints images/s and model FLOPs
utilisation against `--peak-tflops` and writes `--out`.
"""

import argparse
import json
import os
import subprocess
import sys
import time

from report import out_prefix  # benchmarks/report.py
from report import write_markdown

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

CONFIGS = {
    # name: image size, patch, width, depth, heads, mlp, batch
    "small": dict(image=32, patch=4, width=192, depth=6, heads=3, mlp=768,
                  batch=64),
    "vit-tiny-224": dict(image=224, patch=16, width=192, depth=12, heads=3,
                         mlp=768, batch=64),
    "vit-b16-224": dict(image=224, patch=16, width=768, depth=12, heads=12,
                        mlp=3072, batch=128),
}
MASK_PATCH = {"small": 8, "vit-tiny-224": 32, "vit-b16-224": 32}
TARGETS = {  # small config: minimum ratio vs the reference's float32
    "every backend's default, float32": 1.0,
    "mixed_bfloat16, fastest setting": 3.0,  # on a CPU with AMX
}


def train_flops(c):
    """Matmul/conv FLOPs of one training step per image (3x forward)."""
    n = (c["image"] // c["patch"]) ** 2
    d, m, p = c["width"], c["mlp"], c["patch"]
    embed = 2 * n * p * p * 3 * d
    block = 2 * n * d * 3 * d + 2 * 2 * n * n * d + 2 * n * d * d + 4 * n * d * m
    head = 2 * n * d * p * p * 3
    return 3 * (embed + c["depth"] * block + head)


def peak_memory_mb():
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def masks(c, steps, seed=0):
    """Fixed random masks on the patch grid, 60% of mask blocks."""
    import numpy as np

    rng = np.random.default_rng(seed)
    grid = c["image"] // c["patch"]
    blocks = c["image"] // MASK_PATCH[c["name"]]
    factor = grid // blocks
    noise = rng.random((steps, c["batch"], blocks * blocks))
    count = int(np.ceil(0.6 * blocks * blocks))
    ranks = noise.argsort(-1).argsort(-1) < count
    mask = ranks.reshape(steps, c["batch"], blocks, blocks)
    return mask.repeat(factor, 2).repeat(factor, 3)


def run_reference(c, steps, warmup, precision, device):
    """transformers' ViTForMaskedImageModeling, PyTorch eager."""
    import numpy as np
    import torch
    import transformers

    torch.manual_seed(0)
    config = transformers.ViTConfig(
        image_size=c["image"], patch_size=c["patch"], hidden_size=c["width"],
        num_hidden_layers=c["depth"], num_attention_heads=c["heads"],
        intermediate_size=c["mlp"], encoder_stride=c["patch"],
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
    )
    model = transformers.ViTForMaskedImageModeling(config).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4,
                                  weight_decay=0.05)
    rng = np.random.default_rng(0)
    images = torch.tensor(rng.normal(
        size=(c["batch"], 3, c["image"], c["image"])).astype("float32"),
        device=device)
    all_masks = torch.tensor(
        masks(c, steps + warmup).reshape(steps + warmup, c["batch"], -1),
        device=device)

    def step(i):
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type=device, dtype=torch.bfloat16,
                            enabled=precision == "mixed_bfloat16"):
            loss = model(images, bool_masked_pos=all_masks[i]).loss
        loss.backward()
        optimizer.step()
        return loss

    for i in range(warmup):
        step(i)
    sync(device)
    start = time.perf_counter()
    for i in range(steps):
        loss = step(warmup + i)
    float(loss)
    sync(device)
    return time.perf_counter() - start, float(loss)


def sync(device):
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def keras_model(c, precision="float32", jit_compile="auto"):
    """`SimMIMModel` around keras-hub's `ViTBackbone` for config `c`,
    compiled as a newcomer writes it (AdamW 1e-4, weight decay 0.05)."""
    import keras
    import keras_hub

    import keras_simmim

    keras.utils.set_random_seed(0)
    dtype = None if precision == "float32" else precision
    backbone = keras_hub.models.ViTBackbone(
        image_shape=(c["image"], c["image"], 3), patch_size=c["patch"],
        num_layers=c["depth"], num_heads=c["heads"], hidden_dim=c["width"],
        mlp_dim=c["mlp"], dtype=dtype,
    )
    model = keras_simmim.SimMIMModel(
        backbone, mask_patch_size=MASK_PATCH[c["name"]], mask_ratio=0.6,
        seed=0, dtype=dtype,
    )
    model.compile(optimizer=keras.optimizers.AdamW(1e-4, weight_decay=0.05),
                  jit_compile=jit_compile)
    return model


def example_images(c):
    """One batch of float32 noise images `(batch, image, image, 3)`."""
    import numpy as np

    return np.random.default_rng(0).normal(
        size=(c["batch"], c["image"], c["image"], 3)).astype("float32")


def run_keras(c, steps, warmup, precision, variant, on_device=False):
    """keras_simmim.SimMIMModel around keras-hub's ViTBackbone, `fit()`.

    `variant`: "default" (what `compile()` gives), "xla" (TensorFlow with
    `jit_compile=True`; Keras's "auto" turns XLA off on CPU-only TF) or
    "math-attention" (torch: SDPA's math kernel instead of its CPU flash
    kernel, whose bfloat16 backward is slow). `on_device` (GPU mode): the
    batches are backend tensors already on the accelerator, as the
    reference's are, so the step time leaves out host-to-device copies.
    """
    import keras
    import numpy as np

    if variant == "math-attention":
        import torch

        torch.backends.cuda.enable_flash_sdp(False)  # also steers the CPU

    model = keras_model(c, precision,
                        jit_compile=True if variant == "xla" else "auto")
    images = example_images(c)

    def batches(count):
        data = np.repeat(images[None], count, 0).reshape(
            -1, c["image"], c["image"], 3)
        if on_device and keras.backend.backend() == "torch":
            import torch

            return torch.as_tensor(
                data, device="cuda" if torch.cuda.is_available() else "cpu")
        if on_device and keras.backend.backend() == "jax":
            import jax

            return jax.device_put(data)
        return data

    # Warm-up (compilation) in a fit of its own; the timed fit reuses the
    # compiled step, and is timed around the whole call. (Tables made
    # before timed from a batch-begin callback of one fit: JAX dispatches
    # steps asynchronously, so the warm-up steps still computing when the
    # first timed step was dispatched counted as timed, about 25% too
    # slow at 3 warm-up and 12 timed steps; benchmarks/jax_profile.md.)
    model.fit(batches(warmup), batch_size=c["batch"], epochs=1, verbose=0,
              shuffle=False)
    data = batches(steps)
    start = time.perf_counter()
    history = model.fit(data, batch_size=c["batch"], epochs=1, verbose=0,
                        shuffle=False)
    # `fit` reads the epoch's loss before it returns, which waits for the
    # last step.
    seconds = time.perf_counter() - start
    return seconds, float(history.history["loss"][-1])


def run_pipeline(c, batches, decode):
    """Images/s delivered by the tf.data input pipeline (with augmentation;
    `decode`: from PNG files through `from_folder`)."""
    import shutil
    import tempfile

    import numpy as np

    from keras_simmim.data import from_arrays
    from keras_simmim.data import from_folder

    rng = np.random.default_rng(0)
    count = c["batch"] * 8
    pixels = rng.integers(0, 256, (count, c["image"], c["image"], 3),
                          dtype="uint8")
    if decode:
        from PIL import Image

        folder = tempfile.mkdtemp(prefix="simmim-bench-")
        for i, p in enumerate(pixels):
            Image.fromarray(p).save(os.path.join(folder, f"{i:05d}.png"))
        ds = from_folder(folder, image_size=c["image"], batch_size=c["batch"],
                         augment=True, shuffle=True, seed=0)
    else:
        folder = None
        ds = from_arrays(pixels, batch_size=c["batch"], augment=True,
                         shuffle=True, seed=0)
    ds = ds.repeat()
    iterator = iter(ds)
    for _ in range(2):
        next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    seconds = time.perf_counter() - start
    if folder:
        shutil.rmtree(folder)
    return seconds


def worker(args):
    c = dict(CONFIGS[args.config], name=args.config)
    steps, warmup = args.steps, args.warmup
    if args.worker == "matmul":
        from peaks import matmul_peak

        print("RESULT " + json.dumps(matmul_peak(
            os.environ["KERAS_BACKEND"], c,
            bfloat16=args.precision == "mixed_bfloat16")), flush=True)
        return
    if args.worker == "pipeline":
        seconds = run_pipeline(c, steps, args.decode)
        loss = None
    elif args.worker == "plain-jax":
        from plain_jax_vit import run_plain_jax

        seconds, loss = run_plain_jax(c, masks(c, steps + warmup), steps,
                                      warmup, args.precision)
    elif args.worker == "reference":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
        seconds, loss = run_reference(c, steps, warmup, args.precision, device)
    else:
        seconds, loss = run_keras(c, steps, warmup, args.precision,
                                  args.variant, on_device=args.gpu)
    out = {
        "images_per_s": steps * c["batch"] / seconds,
        "seconds": seconds, "steps": steps, "loss": loss,
        "peak_memory_mb": peak_memory_mb(),
    }
    if args.worker != "pipeline" and args.gpu:
        out["peak_memory_mb"] = gpu_peak_memory_mb(args.worker)
    print("RESULT " + json.dumps(out), flush=True)


def gpu_peak_memory_mb(kind):
    backend = os.environ.get("KERAS_BACKEND")
    if kind == "reference" or backend == "torch":
        import torch

        return torch.cuda.max_memory_allocated() / 2**20
    if backend == "jax":
        import jax

        stats = jax.devices()[0].memory_stats() or {}
        return stats.get("peak_bytes_in_use", 0) / 2**20
    import tensorflow as tf

    return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20


def measure(kind, config, precision, steps, warmup, backend="torch",
            decode=False, gpu=False, variant="default"):
    command = [sys.executable, os.path.abspath(__file__), "--worker", kind,
               "--config", config, "--precision", precision,
               "--steps", str(steps), "--warmup", str(warmup),
               "--variant", variant]
    if decode:
        command.append("--decode")
    if gpu:
        command.append("--gpu")
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True,
                          text=True)
    lines = [line for line in done.stdout.splitlines()
             if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        return {"error": done.stderr.strip().splitlines()[-1:]}
    return json.loads(lines[-1][len("RESULT "):])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worker",
                        choices=["reference", "keras", "plain-jax",
                                 "pipeline", "matmul"],
                        help=argparse.SUPPRESS)
    parser.add_argument("--variant", default="default",
                        help=argparse.SUPPRESS)
    parser.add_argument("--config", default="small", choices=sorted(CONFIGS))
    parser.add_argument("--precision", default="float32",
                        choices=["float32", "mixed_bfloat16"])
    parser.add_argument("--decode", action="store_true",
                        help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3,
                        help="Interleaved repeats of every measurement; the "
                        "table reports medians (this machine's speed drifts "
                        "by up to 2x between minutes).")
    parser.add_argument("--configs", nargs="+",
                        default=["small", "vit-tiny-224"])
    parser.add_argument("--backends", nargs="+",
                        default=["tensorflow", "jax", "torch"])
    parser.add_argument("--gpu", action="store_true",
                        help="GPU mode: ViT-B/16 at 224, mixed bfloat16.")
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="The accelerator's bf16 peak, for MFU.")
    parser.add_argument("--out", type=out_prefix, default=os.path.join(
        HERE, "throughput_results"))
    parser.add_argument("--merge", action="store_true",
                        help="Keep the rows of configs not measured now "
                        "from the existing --out table.")
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args)
    if args.gpu:
        return gpu_mode(args)

    start = time.time()
    jobs = plan(args)
    runs = {i: [] for i in range(len(jobs))}
    for round_ in range(args.rounds):
        for i, job in enumerate(jobs):
            result = measure(**job["measure"])
            runs[i].append(result)
            print(round_, job["row"], result, flush=True)
    rows = [dict(job["row"], **summarize(runs[i]))
            for i, job in enumerate(jobs)]
    command = "python benchmarks/throughput.py " + " ".join(
        argv if argv is not None else sys.argv[1:])
    from report import run_info

    results = {"rows": rows, "seconds": round(time.time() - start),
               "command": command, "run": run_info(),
               "commands": {c: command for c in args.configs},
               "flops_per_image": {c: train_flops(CONFIGS[c])
                                   for c in args.configs}}
    if args.merge and os.path.exists(args.out + ".json"):
        # Keep the other configs' rows of the earlier run (their command
        # is recorded with them).
        with open(args.out + ".json") as f:
            earlier = json.load(f)
        kept = [r for r in earlier["rows"] if r["config"] not in args.configs]
        for r in kept:
            results["commands"].setdefault(
                r["config"], earlier.get("commands", {}).get(
                    r["config"], earlier["command"]))
            results["flops_per_image"].setdefault(
                r["config"], earlier["flops_per_image"][r["config"]])
        results["rows"] = rows + kept
    results["verdicts"] = verdicts(results["rows"], results["run"])
    with open(args.out + ".json", "w") as f:
        json.dump(results, f, indent=1)
    write_markdown(args.out + ".md", markdown(results))
    print(markdown(results))


def plan(args):
    """Every measurement of one round, in the order they run."""
    steps = {"small": args.steps, "vit-tiny-224": max(3, args.steps // 5)}
    jobs = []

    def add(row, **measure_args):
        jobs.append({"row": row, "measure": measure_args})

    for config in args.configs:
        n = steps.get(config, args.steps)
        keras_job = dict(kind="keras", config=config, steps=n,
                         warmup=args.warmup)
        # The rows a newcomer gets (`compile()` with its defaults, then
        # `fit`) first, beside the reference; then the settings a user
        # may choose, then the controls.
        for precision in ("float32", "mixed_bfloat16"):
            add(dict(config=config, impl="transformers (torch)",
                     precision=precision),
                kind="reference", config=config, precision=precision,
                steps=n, warmup=args.warmup)
            for backend in args.backends:
                add(dict(config=config, impl=f"keras_simmim {backend}",
                         precision=precision),
                    precision=precision, backend=backend, variant="default",
                    **keras_job)
        for precision in ("float32", "mixed_bfloat16"):
            for backend, variant in (("tensorflow", "xla"),
                                     ("torch", "math-attention")):
                if backend not in args.backends or (
                        variant == "math-attention"
                        and precision == "float32"):
                    continue
                add(dict(config=config, precision=precision,
                         impl=f"keras_simmim {backend} ({variant})"),
                    precision=precision, backend=backend, variant=variant,
                    **keras_job)
            if "jax" in args.backends:
                # The profile's control: the same step in plain
                # jax.numpy (benchmarks/plain_jax_vit.py).
                add(dict(config=config, impl="plain jax.numpy (xla)",
                         precision=precision),
                    kind="plain-jax", config=config, precision=precision,
                    steps=n, warmup=args.warmup, backend="jax")
        for precision in ("float32", "mixed_bfloat16"):
            for backend in ["torch"] + [b for b in args.backends
                                        if b != "torch"]:
                add(dict(config=config, impl=f"matmul peak {backend}",
                         precision=precision),
                    kind="matmul", config=config, precision=precision,
                    steps=1, warmup=0, backend=backend)
        for decode in (False, True):
            add(dict(config=config, precision="-", impl=(
                "input pipeline " + ("PNG decode + " if decode else "")
                + "augment")),
                kind="pipeline", config=config, precision="float32",
                steps=20, warmup=0, backend="tensorflow", decode=decode)
    return jobs


def summarize(results):
    """Median over rounds (and the range) of every number measured."""
    import statistics

    good = [r for r in results if "error" not in r]
    if not good:
        return {"error": results[-1]["error"]}
    out = {}
    for key in good[0]:
        values = [r[key] for r in good if r.get(key) is not None]
        if values and all(isinstance(v, (int, float)) for v in values):
            out[key] = statistics.median(values)
        elif values and all(isinstance(v, dict) for v in values):
            # e.g. the matmul peak's per-shape rates
            out[key] = {k: statistics.median([v[k] for v in values])
                        for k in values[0]}
    for key in ("images_per_s", "gflops"):
        if key in out:
            values = [r[key] for r in good]
            out[key + "_range"] = [min(values), max(values)]
    out["rounds"] = len(good)
    return out


def reference_speed(rows, config):
    for row in rows:
        if (row["config"], row["impl"], row["precision"]) == (
                config, "transformers (torch)", "float32"):
            return row.get("images_per_s")
    return None


def backend_of(impl):
    return impl.split()[1] if impl.startswith("keras_simmim") else None


def peak_ratio(rows, config, precision, flops, ref):
    """The measured peak (the fastest library's matmul rate on the
    model's shapes, `peaks.py`) as images/s over the reference's: how fast
    a step whose every FLOP ran at that rate would be."""
    peak = max((r["gflops"] for r in rows if r["config"] == config
                and r["impl"].startswith("matmul peak")
                and r["precision"] == precision and "gflops" in r),
               default=None)
    return peak * 1e9 / flops / ref if peak else None


def verdicts(rows, run=None):
    """Issue 24's targets on the small config, each met or missed, beside
    the measured peak: every backend's default (`compile()` as a newcomer
    writes it) at least the reference's float32 speed; `mixed_bfloat16`
    (each backend at its fastest setting) at least 3x the reference's
    float32 on a CPU with AMX."""
    ref = reference_speed(rows, "small")
    if not ref:
        return {}
    flops = train_flops(CONFIGS["small"])
    amx = "amx_bf16" in ((run or {}).get("cpu_flags") or [])
    out = {}
    for precision in ("float32", "mixed_bfloat16"):
        best, default = {}, {}  # backend -> (impl, ratio)
        for r in rows:
            backend = backend_of(r["impl"])
            if (r["config"] != "small" or r["precision"] != precision
                    or not backend or "images_per_s" not in r):
                continue
            ratio = r["images_per_s"] / ref
            if ratio > best.get(backend, ("", 0))[1]:
                best[backend] = (r["impl"], ratio)
            if r["impl"] == f"keras_simmim {backend}":
                default[backend] = (r["impl"], ratio)
        peak = peak_ratio(rows, "small", precision, flops, ref)
        if precision == "float32" and default:
            impl, ratio = min(default.values(), key=lambda v: v[1])
            name = "every backend's default, float32"
            out[name] = dict(impl=impl, ratio=ratio, peak=peak,
                             met=ratio >= TARGETS[name])
        elif precision == "mixed_bfloat16" and best:
            impl, ratio = max(best.values(), key=lambda v: v[1])
            name = "mixed_bfloat16, fastest setting"
            out[name] = dict(impl=impl, ratio=ratio, peak=peak,
                             met=ratio >= TARGETS[name], applies=amx)
    return out


def machine_line(run):
    """The CPU the table was measured on (these machines differ)."""
    if not run:
        return "CPU: not recorded (made before the table recorded it)."
    from report import describe_run

    return f"Run: {describe_run(run)} ({run['cpu_count']} cores)."


def markdown(results):
    rows = results["rows"]
    lines = [
        "# SimMIM training throughput (CPU)",
        "",
        "Made by " + "; ".join(
            f"`{cmd}` ({', '.join(c for c, v in results['commands'].items() if v == cmd)})"
            for cmd in dict.fromkeys(results["commands"].values()))
        + f" (the last in {results['seconds']} s). "
        "Images/s of a whole training step (forward, backward, AdamW), "
        "median of the interleaved rounds (range in brackets); ratio = "
        "images/s / transformers' ViTForMaskedImageModeling in float32 on "
        "the same config, measured in the same run. Peak memory is the "
        "process's peak RSS. The newcomer's rows (`compile()` with its "
        "defaults) come first. `matmul peak` rows (`benchmarks/peaks.py`): "
        "that library's GFLOP/s on every matmul shape of the model's "
        "forward pass, weighted as the model does them, timed the same way "
        "in each library (warm-up excluded, the last product read back "
        "before the clock stops), and the images/s a step would reach if "
        "*all* its training FLOPs "
        f"({', '.join(f'{c}: {v / 1e9:.2f}' for c, v in results['flops_per_image'].items())}"
        " GFLOP per image) ran at that rate: a measured peak, not a bound "
        "(fused kernels can beat a plain per-shape matmul). "
        "`plain jax.numpy (xla)`: the "
        "same training step written in jax.numpy and jitted whole "
        "(`benchmarks/plain_jax_vit.py`), the control that splits XLA's "
        "CPU backend from Keras's and keras-hub's layers.",
        "",
        *(["A config with `matmul ceiling` rows comes from an older run: "
           "those rows are the largest matmul's rate alone (TensorFlow's "
           "under XLA), before `peaks.py`, and its keras_simmim rows were "
           "timed from the first timed batch's begin within one `fit`, "
           "which counts the warm-up steps JAX was still computing "
           "(asynchronous dispatch): its JAX rows are too slow by up to "
           "(timed + warm-up) / timed steps, 2x at 3 + 3.", ""]
          if any(r["impl"].startswith("matmul ceiling") for r in rows)
          else []),
        machine_line(results.get("run")),
        "",
        "| config | implementation | precision | images/s | ratio | "
        "peak MB |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        ref = reference_speed(rows, row["config"])
        head = f"| {row['config']} | {row['impl']} | {row['precision']} | "
        if "error" in row:
            lines.append(head + f"failed: {row['error']} | | |")
            continue
        if "gflops" in row:
            at_peak = row["gflops"] * 1e9 / results["flops_per_image"][
                row["config"]]
            lo, hi = row["gflops_range"]
            lines.append(head + f"{at_peak:.0f} at {row['gflops']:.0f} GFLOP/s "
                         f"[{lo:.0f}-{hi:.0f}] | "
                         + (f"{at_peak / ref:.2f}x" if ref else "") + " | |")
            continue
        lo, hi = row["images_per_s_range"]
        ratio = (f"{row['images_per_s'] / ref:.2f}x"
                 if ref and not row["impl"].startswith("input") else "")
        lines.append(head + f"{row['images_per_s']:.0f} [{lo:.0f}-{hi:.0f}] "
                     f"| {ratio} | {row['peak_memory_mb']:.0f} |")
    lines += ["", "Targets (small config):", ""]
    for name, v in results["verdicts"].items():
        if isinstance(v, list):  # tables made before issue 24's targets
            continue
        verdict = "met" if v["met"] else "**missed**"
        if v.get("applies") is False:
            verdict += " (the target is for CPUs with AMX; this one has none)"
        lines.append(
            f"- {name} >= {TARGETS[name]:g}x: {v['impl']} "
            f"{v['ratio']:.2f}x, {verdict}"
            + (f"; the measured peak would give {v['peak']:.2f}x"
               if v["peak"] else ""))
    lines.append("")
    return "\n".join(lines)


def gpu_mode(args):
    config = "vit-b16-224"
    c = CONFIGS[config]
    flops = train_flops(c)
    rows = []
    for kind, backend in [("reference", "torch")] + [
            ("keras", b) for b in args.backends]:
        result = measure(kind, config, "mixed_bfloat16", args.steps,
                         args.warmup, backend, gpu=True)
        if "images_per_s" in result and args.peak_tflops:
            result["mfu"] = (result["images_per_s"] * flops
                             / (args.peak_tflops * 1e12))
        rows.append(dict(impl=backend if kind == "keras" else "transformers",
                         **result))
        print(rows[-1], flush=True)
    import torch

    from report import run_info

    with open(args.out + "-gpu.json", "w") as f:
        json.dump({"config": c, "flops_per_image": flops, "rows": rows,
                   "steps": args.steps, "warmup": args.warmup,
                   "peak_tflops": args.peak_tflops,
                   "gpu": torch.cuda.get_device_name(0)
                   if torch.cuda.is_available() else None,
                   "run": run_info()}, f, indent=1)


if __name__ == "__main__":
    main()
