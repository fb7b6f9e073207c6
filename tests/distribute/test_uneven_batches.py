"""A last batch that does not split evenly over the devices.

TensorFlow's MirroredStrategy gives replicas different row counts (or
none): `predict`, `evaluate` and `fit` must give what one device gives
(the masks drawn for the global batch, the loss reported as the global
loss, the same weights). Keras 3.15's JAX trainer cannot place such a
batch at all: the models refuse the inputs before starting, naming the
argument, and stay usable. Fake devices need a subprocess per backend, as
in `test_replicas.py`; the one-device identities run on every backend."""

import numpy as np

from keras_simmim.distribute import check_batches_split
from keras_simmim.distribute import draw_for_global_batch
from keras_simmim.distribute import reported_as_global_loss
from tests.distribute.test_replicas import only_on
from tests.distribute.test_replicas import run_script

# TensorFlow's oneDNN graph rewrites (on by default on Intel CPUs, off on
# AMD) break a replica's empty last batch: "Incompatible shapes:
# [0,8,8,1] vs. [0,32,32,3]" at the mask token's multiply, on this
# library's code and on the code that passed CI on an AMD EPYC alike. The
# script turns them off; CONTRIBUTING.md's known limits say so for users.
TF_SCRIPT = """
import json, os, sys
os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras, numpy as np
sys.path.insert(0, {root!r})
from keras_simmim import SimMIMModel
from tests.conftest import tiny_vit

def run(strategy, count, batch_size):
    images = np.random.default_rng(0).normal(
        size=(count, 32, 32, 3)).astype("float32")
    with strategy.scope():
        keras.utils.set_random_seed(0)
        model = SimMIMModel(tiny_vit(), mask_patch_size=8, seed=0)
        model.compile(optimizer=keras.optimizers.AdamW(1e-3))
    out = model.predict(images, batch_size=batch_size, verbose=0)
    loss = model.evaluate(images, batch_size=batch_size, verbose=0)
    history = model.fit(images, batch_size=batch_size, shuffle=False,
                        verbose=0)
    return out, loss, history.history["loss"][0], [
        keras.ops.convert_to_numpy(v) for v in model.trainable_weights]

result = {{}}
# One strategy object of each kind for the whole process (a second
# MirroredStrategy in the same process mixes up its collectives).
one_device = tf.distribute.OneDeviceStrategy("/cpu:0")
mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
# 11 in batches of 4: a last batch of 3 (2 + 1 rows); 9 in batches of 8: a
# last batch of 1 (one replica gets none).
for count, batch_size in ((11, 4), (9, 8)):
    one = run(one_device, count, batch_size)
    two = run(mirrored, count, batch_size)
    result[f"{{count}}/{{batch_size}}"] = {{
        "masks_equal": bool(np.array_equal(one[0]["mask"], two[0]["mask"])),
        "reconstruction": float(np.abs(one[0]["reconstruction"]
                                       - two[0]["reconstruction"]).max()),
        "evaluate": [one[1], two[1]],
        "fit": [one[2], two[2]],
        "weights": max(float(np.abs(a - b).max())
                       for a, b in zip(one[3], two[3])),
    }}
print("RESULT", json.dumps(result))
"""

JAX_SCRIPT = """
import json, os, sys
# Added to the caller's XLA_FLAGS (CI compiles at optimisation level 0).
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                           + " --xla_force_host_platform_device_count=2")
import keras, numpy as np
sys.path.insert(0, {root!r})
from keras_simmim import SimMIMModel
from tests.conftest import tiny_vit

images = np.random.default_rng(0).normal(size=(9, 32, 32, 3)).astype("float32")

def build():
    keras.utils.set_random_seed(0)
    return SimMIMModel(tiny_vit(), mask_patch_size=8, seed=0)

model = build()
masks = np.stack([keras.ops.convert_to_numpy(model.masking(images[:1]))[0]
                  for _ in range(8)]).astype("float32")
given = {{"images": images[:8], "mask": masks}}
one = keras.ops.convert_to_numpy(model.predict(given, batch_size=4,
                                               verbose=0)["reconstruction"])
keras.distribution.set_distribution(keras.distribution.DataParallel(
    devices=keras.distribution.list_devices()))
model = build()
errors = []
for call in (lambda: model.predict(images, batch_size=8, verbose=0),
             lambda: model.evaluate(images, batch_size=4, verbose=0),
             lambda: model.fit(images, batch_size=3, verbose=0)):
    try:
        call()
        errors.append(None)
    except ValueError as error:
        errors.append(str(error))
# Still usable: divisible batches run, and predict on the two devices gives
# what one device gave.
two = keras.ops.convert_to_numpy(model.predict(given, batch_size=4,
                                               verbose=0)["reconstruction"])
history = model.fit(images[:8], batch_size=4, verbose=0)
print("RESULT", json.dumps({{
    "errors": errors, "predict_diff": float(np.abs(one - two).max()),
    "loss": history.history["loss"][0]}}))
"""


@only_on("tensorflow")
def test_mirrored_strategy_uneven_last_batch_matches_one_device():
    result = run_script(TF_SCRIPT, "tensorflow")
    for case, got in result.items():
        assert got["masks_equal"], case
        assert got["reconstruction"] < 1e-5, (case, got)
        np.testing.assert_allclose(*got["evaluate"], rtol=1e-5,
                                   err_msg=case)
        np.testing.assert_allclose(*got["fit"], rtol=1e-5, err_msg=case)
        assert got["weights"] < 1e-5, (case, got)


@only_on("jax")
def test_jax_refuses_batches_it_cannot_split_and_stays_usable():
    result = run_script(JAX_SCRIPT, "jax")
    assert all(result["errors"]), result
    assert "batch_size=8" in result["errors"][0]
    assert "a batch of 1" in result["errors"][0]
    assert "a batch of 3" in result["errors"][2]
    assert result["predict_diff"] < 1e-5
    assert np.isfinite(result["loss"])


def test_helpers_are_identities_on_one_device():
    draws = []
    values = draw_for_global_batch(
        lambda size: draws.append(size) or np.ones((size, 2)), 5)
    assert draws == [5] and values.shape == (5, 2)
    assert reported_as_global_loss(0.25, np.zeros((5, 2))) == 0.25
    # Without a distribution nothing is refused.
    check_batches_split(np.zeros((9, 4)), 8)
