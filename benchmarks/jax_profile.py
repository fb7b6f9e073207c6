"""Where the JAX SimMIM step's time goes: keras-hub's ViT, our masking and
loss, the optimizer and `fit`, each against plain `jax.numpy`.

    cd benchmarks && KERAS_BACKEND=jax python jax_profile.py --out jax_profile

`throughput.py` times whole steps; this splits one (small config, float32,
every piece jitted and timed to `block_until_ready`, warm-up excluded,
median of `--rounds` interleaved rounds):

- `plain: loss + gradient` / `plain: whole step`: `plain_jax_vit.py`'s
  SimMIM ViT (the control), without and with its AdamW update;
- `keras-hub ViT: gradient`: the gradient of a scalar of
  `keras_hub.models.ViTBackbone`'s output (`stateless_call`): the
  backbone's layers alone;
- `SimMIMModel: loss + gradient`: the gradient of `SimMIMModel`'s loss
  (`compute_loss_and_updates`, what its `train_step` differentiates):
  the backbone plus our mask token, head and masked L1 loss;
- `SimMIMModel: train_step, jitted alone`: the step `fit` jits (loss,
  gradient, AdamW update, loss metric), called in a plain loop;
- `SimMIMModel: fit step`: `fit()` with AdamW, as `throughput.py` runs it
  (timed around a `fit` call of its own, after a warm-up `fit`);
- `SimMIMModel: fit step, timed from a batch-begin callback`: one `fit`
  of warm-up + timed steps, timed from the first timed batch's
  `on_train_batch_begin` to the end, as `throughput.py` timed it before
  this profile: JAX dispatches asynchronously, so the warm-up steps still
  computing at that moment are counted too.

Differences between consecutive rows are the cost of each piece; the
plain rows say what the same computation costs written directly.
"""

import argparse
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from report import out_prefix  # noqa: E402
from report import run_info  # noqa: E402
from report import write_markdown  # noqa: E402
from throughput import CONFIGS  # noqa: E402
from throughput import example_images  # noqa: E402
from throughput import keras_model  # noqa: E402
from throughput import masks  # noqa: E402
from throughput import run_keras  # noqa: E402


def timed(fn, args, steps, warmup):
    """Seconds per call of the jitted `fn(*args)`, after `warmup` calls."""
    import jax

    for _ in range(warmup):
        jax.block_until_ready(fn(*args))
    start = time.perf_counter()
    for _ in range(steps):
        out = fn(*args)
    jax.block_until_ready(out)
    return (time.perf_counter() - start) / steps


def plain_grad(c, steps, warmup):
    import jax
    import jax.numpy as jnp

    from plain_jax_vit import init_params
    from plain_jax_vit import loss_fn

    params = init_params(c, jax.random.PRNGKey(0))
    images = jnp.asarray(example_images(c))
    mask = jnp.asarray(masks(c, 1)[0].reshape(c["batch"], -1))
    grad = jax.jit(jax.value_and_grad(
        lambda p, x, m: loss_fn(p, x, m, c, jnp.float32)))
    return timed(grad, (params, images, mask), steps, warmup)


def plain_step(c, steps, warmup):
    from plain_jax_vit import run_plain_jax

    seconds, _ = run_plain_jax(c, masks(c, steps + warmup), steps, warmup,
                               "float32")
    return seconds / steps


def backbone_grad(c, steps, warmup):
    import jax
    import jax.numpy as jnp

    backbone = keras_model(c).backbone
    trainable = [v.value for v in backbone.trainable_variables]
    frozen = [v.value for v in backbone.non_trainable_variables]

    def scalar(trainable, x):
        y, _ = backbone.stateless_call(trainable, frozen, x, training=True)
        return jnp.mean(jnp.square(y))

    grad = jax.jit(jax.value_and_grad(scalar))
    return timed(grad, (trainable, jnp.asarray(example_images(c))), steps,
                 warmup)


def model_grad(c, steps, warmup):
    import jax
    import jax.numpy as jnp

    model = keras_model(c)
    trainable = [v.value for v in model.trainable_variables]
    frozen = [v.value for v in model.non_trainable_variables]
    metrics = [v.value for v in model.metrics_variables]
    model.optimizer.build(model.trainable_variables)
    slots = [v.value for v in model.optimizer.variables]

    def loss(trainable, x):
        value, _ = model.compute_loss_and_updates(
            trainable, frozen, metrics, x, None, None, training=True,
            optimizer_variables=slots)
        return value

    grad = jax.jit(jax.value_and_grad(loss))
    return timed(grad, (trainable, jnp.asarray(example_images(c))), steps,
                 warmup)


def train_step(c, steps, warmup):
    """`SimMIMModel.train_step` (loss, gradient, AdamW, the loss metric)
    jitted with its state donated, as `fit` runs it, without `fit`'s
    loop."""
    import jax
    import jax.numpy as jnp

    model = keras_model(c)
    state = tuple([v.value for v in variables] for variables in (
        model.trainable_variables, model.non_trainable_variables,
        model.optimizer.variables, model.metrics_variables))
    step = jax.jit(model.train_step, donate_argnums=0)
    data = (jnp.asarray(example_images(c)),)
    for _ in range(warmup):
        logs, state = step(state, data)
    jax.block_until_ready(state)
    start = time.perf_counter()
    for _ in range(steps):
        logs, state = step(state, data)
    jax.block_until_ready((logs, state))
    return (time.perf_counter() - start) / steps


def fit_step(c, steps, warmup):
    seconds, _ = run_keras(c, steps, warmup, "float32", "default")
    return seconds / steps


def fit_step_batch_callback(c, steps, warmup):
    """`fit` timed as `throughput.py` timed it before this profile: from
    the moment the first timed batch begins (a callback's
    `on_train_batch_begin`) to the end of training. JAX dispatches steps
    asynchronously, so the warm-up steps still computing at that moment
    count as timed."""
    import keras
    import numpy as np

    model = keras_model(c)
    times = []

    class Timer(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            times.append(time.perf_counter())

        def on_train_end(self, logs=None):
            times.append(time.perf_counter())

    data = np.repeat(example_images(c)[None], steps + warmup, 0).reshape(
        -1, c["image"], c["image"], 3)
    model.fit(data, batch_size=c["batch"], epochs=1, verbose=0,
              shuffle=False, callbacks=[Timer()])
    return (times[-1] - times[warmup]) / steps


PIECES = {
    "plain: loss + gradient": plain_grad,
    "plain: whole step (AdamW)": plain_step,
    "keras-hub ViT: gradient": backbone_grad,
    "SimMIMModel: loss + gradient": model_grad,
    "SimMIMModel: train_step (AdamW), jitted alone": train_step,
    "SimMIMModel: fit step (AdamW)": fit_step,
    "SimMIMModel: fit step, timed from a batch-begin callback":
    fit_step_batch_callback,
}


def markdown(results):
    lines = [
        "# Where the JAX training step's time goes (CPU)",
        "",
        f"Made by `{results['command']}` in {results['seconds']} s; "
        f"config `{results['config']}`, float32, batch "
        f"{CONFIGS[results['config']]['batch']}; milliseconds per step, "
        "median over rounds [range]. See `jax_profile.py` for what each "
        "row times.",
        "",
        f"Run: {results['run_line']}",
        "",
        *([results["note"], ""] if results.get("note") else []),
        "| piece | ms per step | vs plain, same work |",
        "|---|---|---|",
    ]
    rows = results["rows"]
    pairs = {"SimMIMModel: loss + gradient": "plain: loss + gradient",
             "SimMIMModel: train_step (AdamW), jitted alone":
             "plain: whole step (AdamW)",
             "SimMIMModel: fit step (AdamW)": "plain: whole step (AdamW)",
             "SimMIMModel: fit step, timed from a batch-begin callback":
             "plain: whole step (AdamW)"}
    for name, row in rows.items():
        ratio = ""
        if name in pairs:
            ratio = f"{row['ms'] / rows[pairs[name]]['ms']:.2f}x"
        lines.append(f"| {name} | {row['ms']:.0f} [{row['range'][0]:.0f}-"
                     f"{row['range'][1]:.0f}] | {ratio} |")
    lines.append("")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="small", choices=sorted(CONFIGS))
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=out_prefix,
                        default=os.path.join(HERE, "jax_profile"))
    args = parser.parse_args(argv)
    import keras

    if keras.backend.backend() != "jax":
        raise ValueError("Run with KERAS_BACKEND=jax. Received backend: "
                         f"{keras.backend.backend()!r}.")
    from report import describe_run

    c = dict(CONFIGS[args.config], name=args.config)
    start = time.time()
    times = {name: [] for name in PIECES}
    for _ in range(args.rounds):
        for name, piece in PIECES.items():
            times[name].append(1000 * piece(c, args.steps, args.warmup))
            print(name, f"{times[name][-1]:.1f} ms", flush=True)
    info = run_info()
    results = {
        "config": args.config, "seconds": round(time.time() - start),
        "command": "KERAS_BACKEND=jax " + "".join(
            f"{k}={os.environ[k]} " for k in ("OMP_NUM_THREADS",)
            if k in os.environ) + "python jax_profile.py " + " ".join(
            argv if argv is not None else sys.argv[1:]),
        "run": info, "run_line": describe_run(info),
        "rows": {name: {"ms": statistics.median(v), "range": [min(v),
                                                              max(v)]}
                 for name, v in times.items()},
    }
    with open(args.out + ".json", "w") as f:
        json.dump(results, f, indent=1)
    write_markdown(args.out + ".md", markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
