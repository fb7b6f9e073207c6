"""A SimMIM ViT training step in plain `jax.numpy`: the profile's control.

`benchmarks/throughput.py` times keras_simmim on JAX (keras-hub's
`ViTBackbone` inside `SimMIMModel`, `fit()`). This is the same computation
written directly against `jax.numpy` and jitted as one function: patch
embedding, a class token, learned position embeddings, pre-norm blocks
(einsum attention, GELU MLP), the mask token replacing masked patch
embeddings, a linear head to the patch's pixels and the masked L1 loss,
then AdamW (weight decay 0.05) written out by hand. Whatever separates
its speed from keras_simmim's is Keras's and keras-hub's layer structure
or our masking and loss; whatever separates it from the PyTorch reference
is XLA's CPU backend.

Mixed bfloat16: parameters stay float32, the forward and backward run in
bfloat16 (weights cast per step, as Keras's `mixed_bfloat16` does), the
loss in float32.
"""

import time


def init_params(c, key):
    import jax
    import jax.numpy as jnp

    d, m, p = c["width"], c["mlp"], c["patch"]
    n = (c["image"] // p) ** 2
    keys = iter(jax.random.split(key, 4 + 4 * c["depth"]))

    def dense(fan_in, fan_out):
        scale = (2.0 / (fan_in + fan_out)) ** 0.5
        return {"w": scale * jax.random.normal(next(keys), (fan_in, fan_out)),
                "b": jnp.zeros((fan_out,))}

    def norm():
        return {"g": jnp.ones((d,)), "b": jnp.zeros((d,))}

    return {
        "patch": dense(p * p * 3, d),
        "cls": jnp.zeros((1, 1, d)),
        "pos": 0.02 * jax.random.normal(next(keys), (1, n + 1, d)),
        "mask_token": jnp.zeros((d,)),
        "blocks": [{"ln1": norm(), "qkv": dense(d, 3 * d),
                    "proj": dense(d, d), "ln2": norm(),
                    "fc1": dense(d, m), "fc2": dense(m, d)}
                   for _ in range(c["depth"])],
        "ln": norm(),
        "head": dense(d, p * p * 3),
    }


def loss_fn(params, images, mask, c, dtype):
    import jax
    import jax.numpy as jnp

    p, h = c["patch"], c["heads"]
    g = c["image"] // p
    b = images.shape[0]
    cast = lambda tree: jax.tree_util.tree_map(  # noqa: E731
        lambda v: v.astype(dtype), tree)
    w = cast(params)
    patches = images.reshape(b, g, p, g, p, 3).transpose(0, 1, 3, 2, 4, 5)
    patches = patches.reshape(b, g * g, p * p * 3)
    x = patches.astype(dtype) @ w["patch"]["w"] + w["patch"]["b"]
    x = jnp.where(mask[..., None], w["mask_token"], x)
    x = jnp.concatenate([jnp.broadcast_to(w["cls"], (b, 1, x.shape[-1])),
                         x], axis=1) + w["pos"]

    def layer_norm(x, n):
        x32 = x.astype(jnp.float32)
        mean = x32.mean(-1, keepdims=True)
        var = ((x32 - mean) ** 2).mean(-1, keepdims=True)
        y = (x32 - mean) * jax.lax.rsqrt(var + 1e-6)
        return (y * n["g"] + n["b"]).astype(dtype)

    for blk in w["blocks"]:
        y = layer_norm(x, blk["ln1"])
        qkv = (y @ blk["qkv"]["w"] + blk["qkv"]["b"]).reshape(
            b, -1, 3, h, y.shape[-1] // h)
        q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
        scores = jnp.einsum("bqhd,bkhd->bhqk", q, k) / jnp.sqrt(
            jnp.asarray(q.shape[-1], dtype))
        attn = jax.nn.softmax(scores.astype(jnp.float32), -1).astype(dtype)
        y = jnp.einsum("bhqk,bkhd->bqhd", attn, v).reshape(b, -1, x.shape[-1])
        x = x + y @ blk["proj"]["w"] + blk["proj"]["b"]
        y = layer_norm(x, blk["ln2"])
        y = jax.nn.gelu(y @ blk["fc1"]["w"] + blk["fc1"]["b"],
                        approximate=False)
        x = x + y @ blk["fc2"]["w"] + blk["fc2"]["b"]
    x = layer_norm(x, w["ln"])[:, 1:]
    reconstruction = (x @ w["head"]["w"] + w["head"]["b"]).astype(
        jnp.float32)
    error = jnp.abs(reconstruction - patches) * mask[..., None]
    return error.sum() / (mask.sum() * p * p * 3 + 1e-5)


def run_plain_jax(c, masks, steps, warmup, precision, learning_rate=1e-4,
                  weight_decay=0.05):
    """Seconds for `steps` jitted training steps after `warmup` (which
    include compilation) and the last loss. `masks`: bool
    `(steps + warmup, batch, h, w)` on the patch grid."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    dtype = jnp.bfloat16 if precision == "mixed_bfloat16" else jnp.float32
    params = init_params(c, jax.random.PRNGKey(0))
    mu, nu = (jax.tree_util.tree_map(jnp.zeros_like, params)
              for _ in range(2))
    state = (params, mu, nu, jnp.zeros((), jnp.int32))
    rng = np.random.default_rng(0)
    images = jnp.asarray(rng.normal(
        size=(c["batch"], c["image"], c["image"], 3)).astype("float32"))
    masks = jnp.asarray(masks.reshape(masks.shape[0], c["batch"], -1))

    def step(state, mask):
        params, mu, nu, t = state
        loss, grads = jax.value_and_grad(loss_fn)(params, images, mask, c,
                                                  dtype)
        t = t + 1
        b1, b2, eps = 0.9, 0.999, 1e-7
        mu = jax.tree_util.tree_map(lambda m, g: b1 * m + (1 - b1) * g,
                                    mu, grads)
        nu = jax.tree_util.tree_map(lambda v, g: b2 * v + (1 - b2) * g * g,
                                    nu, grads)
        lr = learning_rate * jnp.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        params = jax.tree_util.tree_map(
            lambda w, m, v: w - lr * m / (jnp.sqrt(v) + eps)
            - learning_rate * weight_decay * w, params, mu, nu)
        return (params, mu, nu, t), loss

    step = jax.jit(step, donate_argnums=0)
    for i in range(warmup):
        state, loss = step(state, masks[i])
    loss.block_until_ready()
    start = time.perf_counter()
    for i in range(steps):
        state, loss = step(state, masks[warmup + i])
    loss = float(loss)
    return time.perf_counter() - start, loss
