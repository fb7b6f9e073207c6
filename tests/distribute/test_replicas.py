"""Several devices train exactly like one device with the same global batch.

Fake CPU devices must be configured before the backend starts, so each run
is a subprocess: TensorFlow with 2 logical CPUs (`MirroredStrategy`), JAX
with 4 host devices (`DataParallel`, `ModelParallel`). Each test runs under
the backend it exercises (keras 3.15 has no torch distribution backend).
"""

import contextlib
import json
import os
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_simmim.distribute import replica_position
from keras_simmim.distribute import sum_over_replicas
from keras_simmim.distribute import transformer_layout_map

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))

COMMON = """
import contextlib, json, sys
import keras, keras_hub, numpy as np
sys.path.insert(0, {root!r})
from keras_simmim import MAEModel, SimMIMModel
from keras_simmim.multimodal import MaskedMultimodalModel
from tests.conftest import tiny_vit

# Masks differ per image (so replicas mask different pixel and token
# counts), and the clip threshold is small enough to clip every step.
rng = np.random.default_rng(0)
images = rng.normal(size=(16, 32, 32, 3)).astype("float32")
token_ids = rng.integers(5, 30, size=(16, 8)).astype("int32")
padding_mask = np.arange(8)[None, :] < rng.integers(3, 9, size=(16, 1))

def build(kind):
    if kind == "simmim":
        return SimMIMModel(tiny_vit(), mask_patch_size=8, mask_ratio=0.45,
                           seed=0)
    if kind == "mae":
        return MAEModel(tiny_vit(), mask_ratio=0.5, decoder_dim=16,
                        decoder_depth=1, decoder_num_heads=2, seed=0)
    bert = keras_hub.models.BertBackbone(
        vocabulary_size=30, num_layers=1, num_heads=2, hidden_dim=16,
        intermediate_dim=32, max_sequence_length=8, dropout=0.0)
    # (Dropout draws differ per replica by design; the test compares the
    # masks and the loss scaling, which must not.)
    return MaskedMultimodalModel(
        tiny_vit(), bert, mask_token_id=4, mask_patch_size=8,
        mask_ratio=0.45, text_mask_rate=0.3, fusion_dim=16, fusion_heads=2,
        fusion_layers=1, seed=0)

def dataset(kind):
    import tensorflow as tf
    if kind == "multimodal":
        return tf.data.Dataset.from_tensor_slices(
            {{"images": images, "token_ids": token_ids,
              "padding_mask": padding_mask}}).batch(8)
    return tf.data.Dataset.from_tensor_slices(images).batch(8)

def train(scope, kind="simmim"):
    with scope:
        keras.utils.set_random_seed(0)
        model = build(kind)
        # A regularised kernel: its penalty must count once, not per replica.
        kernel = model.backbone.get_layer("vit_encoder").trainable_weights[6]
        kernel.regularizer = keras.regularizers.L2(0.05)
        model.compile(optimizer=keras.optimizers.AdamW(
            1e-3, weight_decay=0.05, global_clipnorm=0.05))
    history = model.fit(dataset(kind), epochs=2, verbose=0)
    return model, history.history["loss"]

def compare(runs):
    base_model, base_loss = runs[0]
    return {{"loss": [loss for _, loss in runs], "weight_diff": [
        max(float(np.abs(keras.ops.convert_to_numpy(a)
                         - keras.ops.convert_to_numpy(b)).max())
            for a, b in zip(base_model.trainable_weights, m.trainable_weights))
        for m, _ in runs[1:]]}}

def report(runs, extra=None):
    out = compare(runs)
    out.update(extra or {{}})
    print("RESULT", json.dumps(out))
"""

TF_SCRIPT = """
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
""" + COMMON + """
from keras_simmim import SimMIMClassifier

def finetune(scope):
    # Layer-wise lr decay, weight decay and clipping under replication.
    labels = np.arange(16) % 3
    with scope:
        keras.utils.set_random_seed(0)
        model = SimMIMClassifier(tiny_vit(), num_classes=3)
        model.compile_for_finetuning(1e-3, total_steps=4, warmup_steps=1,
                                     layer_decay=0.75, clipnorm=0.05)
    data = tf.data.Dataset.from_tensor_slices((images, labels)).batch(8)
    history = model.fit(data, epochs=2, verbose=0)
    return model, history.history["loss"]

one = tf.distribute.OneDeviceStrategy("/cpu:0")
two = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
runs = [train(one.scope()), train(two.scope())]
tuned = [finetune(one.scope()), finetune(two.scope())]
others = {{kind: compare([train(one.scope(), kind), train(two.scope(), kind)])
          for kind in ("mae", "multimodal")}}
report(runs, {{"others": others, "finetune_loss": [loss for _, loss in tuned],
              "finetune_weight_diff": max(
                  float(np.abs(keras.ops.convert_to_numpy(a)
                               - keras.ops.convert_to_numpy(b)).max())
                  for a, b in zip(tuned[0][0].trainable_weights,
                                  tuned[1][0].trainable_weights))}})
"""

JAX_SCRIPT = """
import os
# Added to the caller's XLA_FLAGS (CI compiles at optimisation level 0).
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                           + " --xla_force_host_platform_device_count=4")
import contextlib
""" + COMMON + """
from keras_simmim.distribute import transformer_layout_map

def distributed(distribution):
    @contextlib.contextmanager
    def scope():
        keras.distribution.set_distribution(distribution)
        yield
    return scope()

devices = keras.distribution.list_devices()
mesh = keras.distribution.DeviceMesh((2, 2), ["batch", "model"], devices)
runs = [train(contextlib.nullcontext())]
runs.append(train(distributed(keras.distribution.DataParallel(devices=devices))))
runs.append(train(distributed(keras.distribution.ModelParallel(
    layout_map=transformer_layout_map(mesh), batch_dim_name="batch"))))
specs = {{v.path: list(v.value.sharding.spec) for v in runs[-1][0].weights
          if v.path.startswith("vit_encoder/transformer_block_1/")}}
others = {{kind: compare([
    train(contextlib.nullcontext(), kind),
    train(distributed(keras.distribution.DataParallel(devices=devices)), kind),
]) for kind in ("mae", "multimodal")}}
report(runs, {{"devices": len(devices), "specs": specs, "others": others}})
"""


MULTI_PROCESS_SCRIPT = """
import os, sys
process, port, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
import jax
jax.config.update("jax_cpu_collectives_implementation", "gloo")
jax.distributed.initialize(f"localhost:{{port}}", num_processes=2,
                           process_id=process)
from jax.experimental import multihost_utils
""" + COMMON + """
keras.distribution.set_distribution(keras.distribution.DataParallel(
    devices=keras.distribution.list_devices()))
model, loss = train(contextlib.nullcontext())
weights = [np.asarray(multihost_utils.process_allgather(v.value, tiled=True))
           for v in model.trainable_weights]
np.savez(out, *weights)
print("RESULT", json.dumps({{"loss": loss,
                            "devices": len(jax.devices())}}))
"""


def run_script(script, backend):
    env = dict(os.environ, KERAS_BACKEND=backend)
    done = subprocess.run(
        [sys.executable, "-c", script.format(root=ROOT)],
        env=env, cwd=ROOT, capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    line = [s for s in done.stdout.splitlines() if s.startswith("RESULT ")]
    return json.loads(line[-1][len("RESULT "):])


def only_on(backend):
    return pytest.mark.skipif(
        keras.backend.backend() != backend,
        reason=f"exercises the {backend} backend's distribution",
    )


@only_on("tensorflow")
def test_mirrored_strategy_matches_one_device():
    result = run_script(TF_SCRIPT, "tensorflow")
    one, two = result["loss"]
    np.testing.assert_allclose(two, one, rtol=1e-5)
    assert result["weight_diff"][0] < 1e-5
    assert one[1] < one[0]
    one, two = result["finetune_loss"]
    np.testing.assert_allclose(two, one, rtol=1e-5)
    assert result["finetune_weight_diff"] < 1e-5
    assert_others_match(result["others"])


def assert_others_match(others):
    """MAE and the masked multimodal model: replicas train like one
    device too (loss and weights to 1e-5)."""
    assert sorted(others) == ["mae", "multimodal"]
    for kind, compared in others.items():
        one, replicated = compared["loss"]
        np.testing.assert_allclose(replicated, one, rtol=1e-5, err_msg=kind)
        assert compared["weight_diff"][0] < 1e-5, kind


@only_on("jax")
def test_jax_data_and_model_parallel_match_one_device():
    result = run_script(JAX_SCRIPT, "jax")
    assert result["devices"] == 4
    one, data_parallel, model_parallel = result["loss"]
    np.testing.assert_allclose(data_parallel, one, rtol=1e-5)
    np.testing.assert_allclose(model_parallel, one, rtol=1e-5)
    assert max(result["weight_diff"]) < 1e-5
    specs = result["specs"]
    prefix = "vit_encoder/transformer_block_1/"
    assert specs[prefix + "mha/query/kernel"] == [None, "model", None]
    assert specs[prefix + "mha/attention_output/kernel"] == ["model", None, None]
    assert specs[prefix + "mlp/dense_1/kernel"] == [None, "model"]
    assert specs[prefix + "mlp/dense_2/kernel"] == ["model", None]
    assert not any(specs[prefix + "ln_1/gamma"])  # replicated
    assert_others_match(result["others"])


@only_on("jax")
def test_two_jax_processes_train_like_one(tmp_path):
    """`jax.distributed` over loopback: two processes, one CPU device each,
    `DataParallel` over both, agree with this (single) process."""
    with socket.socket() as free:
        free.bind(("localhost", 0))
        port = free.getsockname()[1]
    script = MULTI_PROCESS_SCRIPT.format(root=ROOT)
    env = dict(os.environ, KERAS_BACKEND="jax")
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(i), str(port),
             str(tmp_path / f"weights{i}.npz")],
            env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    outputs = [worker.communicate(timeout=600) for worker in workers]
    for worker, (_, stderr) in zip(workers, outputs):
        assert worker.returncode == 0, stderr[-3000:]
    results = [
        json.loads([line for line in out.splitlines()
                    if line.startswith("RESULT ")][-1][len("RESULT "):])
        for out, _ in outputs
    ]
    # The same training in this process, on its single device.
    namespace = {}
    exec(COMMON.format(root=ROOT), namespace)
    model, loss = namespace["train"](contextlib.nullcontext())
    for i, result in enumerate(results):
        assert result["devices"] == 2
        np.testing.assert_allclose(result["loss"], loss, rtol=1e-5)
        saved = np.load(tmp_path / f"weights{i}.npz")
        for j, variable in enumerate(model.trainable_weights):
            np.testing.assert_allclose(
                saved[f"arr_{j}"], keras.ops.convert_to_numpy(variable),
                atol=1e-5,
            )


def test_helpers_are_identities_on_one_device():
    assert replica_position() == (0, 1)
    value = keras.ops.convert_to_tensor(np.float32(3.5))
    assert float(keras.ops.convert_to_numpy(sum_over_replicas(value))) == 3.5


def test_layout_map_checks_its_mesh():
    with pytest.raises(TypeError, match="device_mesh"):
        transformer_layout_map("mesh")
    mesh = keras.distribution.DeviceMesh((1,), ["batch"], ["cpu:0"])
    with pytest.raises(ValueError, match="model_axis"):
        transformer_layout_map(mesh)


def test_repeated_embedding_rows_update_as_on_every_backend():
    """An `Embedding` row used three times in a batch: after our optimizer
    fix, Adam's update is the dense one on TensorFlow too (Keras 3.15's
    TensorFlow path squares each occurrence for the second moment)."""
    from keras_simmim.distribute import sum_gradients_before_clipping

    embedding = keras.layers.Embedding(5, 3, embeddings_initializer="zeros")
    inputs = keras.Input((4,), dtype="int32")
    model = keras.Model(inputs, embedding(inputs))
    optimizer = keras.optimizers.Adam(0.1)
    model.compile(optimizer=optimizer, loss="mse")
    sum_gradients_before_clipping(optimizer)
    ids = np.array([[0, 0, 0, 1]])
    target = np.arange(12, dtype="float32").reshape(1, 4, 3) ** 0.5
    model.fit(ids, target, epochs=2, verbose=0)
    # Adam by hand on the dense gradient of the mean squared error.
    weights, m, v = np.zeros((5, 3)), np.zeros((5, 3)), np.zeros((5, 3))
    for step in (1, 2):
        grad = np.zeros((5, 3))
        error = 2.0 * (weights[ids[0]] - target[0]) / target.size
        np.add.at(grad, ids[0], error)
        m = 0.9 * m + 0.1 * grad
        v = 0.999 * v + 0.001 * grad ** 2
        m_hat, v_hat = m / (1 - 0.9 ** step), v / (1 - 0.999 ** step)
        weights = weights - 0.1 * m_hat / (np.sqrt(v_hat) + 1e-7)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(embedding.embeddings), weights, atol=1e-5)
