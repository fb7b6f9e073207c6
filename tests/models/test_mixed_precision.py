"""Mixed precision: half-precision compute, float32 weights and loss."""

import keras
import numpy as np
import pytest

from keras_simmim import SimMIMModel
from tests.conftest import tiny_vit
from tests.conftest import to_numpy

POLICIES = ("mixed_bfloat16", "mixed_float16")


@pytest.mark.parametrize("policy", POLICIES)
def test_mixed_precision_trains_with_a_float32_loss(images, policy):
    if policy == "mixed_float16" and keras.backend.backend() == "jax":
        pytest.skip(
            "XLA's CPU backend has no float16 matmul (runs on GPU); "
            "mixed_bfloat16 covers JAX here"
        )
    keras.utils.set_random_seed(0)
    model = SimMIMModel(
        tiny_vit(dtype=policy), mask_patch_size=8, seed=0, dtype=policy
    )
    model.compile(optimizer=keras.optimizers.AdamW(2e-3, weight_decay=0.05))
    if policy == "mixed_float16":
        # Keras adds dynamic loss scaling for float16.
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    half = policy.split("_")[1]
    assert {v.dtype for v in model.trainable_weights} == {"float32"}

    outputs = model(images[:4])
    assert keras.backend.standardize_dtype(
        outputs["reconstruction"].dtype
    ) == half
    loss = model.compute_loss(x=images[:4], y_pred=outputs)
    assert keras.backend.standardize_dtype(loss.dtype) == "float32"

    mask = np.random.default_rng(0).random((len(images), 8, 8)) < 0.6
    probe = {"images": images, "mask": mask}
    before = model.evaluate(probe, batch_size=32, verbose=0)
    history = model.fit(images, batch_size=8, epochs=6, verbose=0)
    after = model.evaluate(probe, batch_size=32, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    assert np.isfinite(to_numpy(model.backbone.weights[1])).all()
    assert after < 0.75 * before, (before, after)
