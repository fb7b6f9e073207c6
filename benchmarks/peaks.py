"""Measured matmul peaks: what each library's matmul reaches on a model's
own matmul shapes, timed the same way in every library.

The throughput table compares whole training steps against a reference.
A step's speed is bounded above by nothing simple (fusion, layout copies,
attention kernels, the optimizer), so this is not a bound: it is the rate
the fastest library reaches on exactly the matmuls the model does, i.e.
how fast the step would run if all its FLOPs ran at that rate. A row of
the table above it means the implementation beats a plain per-shape
matmul (e.g. oneDNN's fused attention); far below it, time goes elsewhere.

Measured the same way in every library:

- the same shapes (`model_matmuls`: every matmul of a ViT forward pass,
  with how often it occurs; the backward pass does the same FLOPs again
  twice with transposed operands, not timed separately);
- each library's matmul as its model rows run it: torch eager, JAX under
  `jax.jit`, TensorFlow eager (its default row runs without XLA);
- warm-up calls excluded, then `repeats` timed calls, and the clock stops
  only after the last product is read back to the host (`_host_value`):
  JAX dispatches asynchronously, and a timer that stopped at dispatch
  would count work that has not happened;
- the rate of the mix: the shapes' FLOPs (weighted by occurrence) over
  their time (weighted the same way).
"""

import time

import numpy as np

LIBRARIES = ("torch", "jax", "tensorflow")


def model_matmuls(c):
    """Every matmul of one forward pass of a SimMIM ViT over a batch:
    `[(name, count, batch, m, k, n)]`, a `(batch, m, k) @ (batch, k, n)`
    product occurring `count` times. `c`: a throughput config (image,
    patch, width, depth, heads, mlp, batch). Three times their FLOPs is
    `throughput.train_flops(c) * c["batch"]`."""
    tokens = (c["image"] // c["patch"]) ** 2
    rows = c["batch"] * tokens
    d, pixels = c["width"], c["patch"] ** 2 * 3
    head_dim = d // c["heads"]
    depth = c["depth"]
    return [
        ("patch embedding", 1, 1, rows, pixels, d),
        ("q, k, v, output projections", 4 * depth, 1, rows, d, d),
        ("attention scores", depth, c["batch"] * c["heads"], tokens,
         head_dim, tokens),
        ("attention values", depth, c["batch"] * c["heads"], tokens,
         tokens, head_dim),
        ("MLP in", depth, 1, rows, d, c["mlp"]),
        ("MLP out", depth, 1, rows, c["mlp"], d),
        ("pixel head", 1, 1, rows, d, pixels),
    ]


def _operands(batch, m, k, n):
    rng = np.random.default_rng(0)
    a = rng.normal(size=(batch, m, k)).astype("float32")
    b = rng.normal(size=(batch, k, n)).astype("float32")
    return a, b


def _host_value(library, product):
    """One element of `product` as a Python float: reading it back waits
    for the product to be computed (the synchronisation point)."""
    if library == "jax":
        product.block_until_ready()
        return float(product[0, 0, 0])
    if library == "torch":
        return float(product[0, 0, 0].float().item())
    return float(product[0, 0, 0].numpy())


def _matmul_fn(library, a, b, bfloat16):
    """`(run, a, b)`: the library's matmul and its operands, on the host
    (CPU) in float32 or bfloat16."""
    if library == "torch":
        import torch

        a, b = torch.tensor(a), torch.tensor(b)
        if bfloat16:
            a, b = a.bfloat16(), b.bfloat16()
        return torch.matmul, a, b
    if library == "jax":
        import jax
        import jax.numpy as jnp

        dtype = jnp.bfloat16 if bfloat16 else jnp.float32
        return jax.jit(jnp.matmul), jnp.asarray(a, dtype), jnp.asarray(
            b, dtype)
    if library == "tensorflow":
        import tensorflow as tf

        dtype = tf.bfloat16 if bfloat16 else tf.float32
        return tf.linalg.matmul, tf.cast(a, dtype), tf.cast(b, dtype)
    raise ValueError(
        f"`library` must be one of {LIBRARIES}. Received: "
        f"library={library!r}.")


def time_matmul(library, batch, m, k, n, bfloat16=False, repeats=10,
                warmup=3):
    """Seconds per `(batch, m, k) @ (batch, k, n)` in `library`, and the
    product's `[0, 0, 0]` element as read back at the end of the timing
    (it must equal numpy's: the timed calls did the work).

    Returns:
        `(seconds_per_call, value)`.
    """
    run, a, b = _matmul_fn(library, *_operands(batch, m, k, n), bfloat16)
    for _ in range(warmup):
        _host_value(library, run(a, b))
    start = time.perf_counter()
    for _ in range(repeats):
        product = run(a, b)
    value = _host_value(library, product)
    return (time.perf_counter() - start) / repeats, value


def matmul_peak(library, c, bfloat16=False, repeats=10):
    """GFLOP/s of `library`'s matmul on the forward matmuls of config `c`
    (`model_matmuls`), weighted by how often each occurs, and each shape's
    own rate.

    Returns:
        `{"gflops": rate of the mix, "shapes": {name: GFLOP/s}}`.
    """
    flops = seconds = 0.0
    shapes = {}
    for name, count, batch, m, k, n in model_matmuls(c):
        per_call, _ = time_matmul(library, batch, m, k, n, bfloat16,
                                  repeats)
        shape_flops = 2.0 * batch * m * k * n
        shapes[name] = shape_flops / per_call / 1e9
        flops += count * shape_flops
        seconds += count * per_call
    return {"gflops": flops / seconds / 1e9, "shapes": shapes}
