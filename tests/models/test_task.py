"""`keras_simmim.models.Task`: what every model shares, and the training
faults it absorbs (gradient accumulation under a schedule, a model saved
under one backend and trained under another)."""

import inspect

import keras
import numpy as np
import pytest

import keras_simmim
from keras_simmim import SimMIMModel
from keras_simmim.models import Task
from keras_simmim.training import PerUpdateSchedule
from keras_simmim.training import per_update_learning_rate
from keras_simmim.utils.serialization import portable_optimizer_config
from tests.conftest import tiny_vit
from tests.conftest import to_numpy

BACKENDS = ("tensorflow", "jax", "torch")


def public_model_classes():
    found = set()
    for module in (keras_simmim, keras_simmim.models, keras_simmim.downstream,
                   keras_simmim.multimodal):
        for name in getattr(module, "__all__", ()):
            value = getattr(module, name)
            if inspect.isclass(value) and issubclass(value, keras.Model):
                found.add(value)
    # Feature extractors that keras-hub's detectors wrap as their image
    # encoder (`PyramidImageEncoder`, `NamedPyramidBackbone`): backbones,
    # not tasks; the detector is keras-hub's own task, and so is
    # `SemanticSegmenter` (keras-hub's DeepLabV3 segmenter that checks its
    # targets).
    import keras_hub

    return {cls for cls in found
            if not cls.__name__.endswith(("Backbone", "Encoder"))
            and not issubclass(cls, keras_hub.models.Task)}


def test_every_model_is_a_task_with_at_most_two_bases():
    classes = public_model_classes()
    assert len(classes) >= 8, classes
    for cls in classes:
        assert issubclass(cls, Task), cls
        for klass in cls.__mro__:
            if klass.__module__.startswith("keras_simmim"):
                assert len(klass.__bases__) <= 2, (klass, klass.__bases__)


def masked_batches(count, model):
    rng = np.random.RandomState(0)
    images = rng.rand(count, 32, 32, 3).astype("float32")
    masks = np.stack([
        to_numpy(model.masking(images[:1]))[0] for _ in range(count)])
    return {"images": images, "mask": masks.astype("float32")}


def train(gradient_accumulation_steps, batch_size, data):
    keras.utils.set_random_seed(0)
    model = SimMIMModel(tiny_vit(), mask_patch_size=8, seed=0)
    # A schedule written in updates: 2 updates, from 0.01 to 0.
    schedule = keras.optimizers.schedules.PolynomialDecay(0.01, 2, 0.0)
    model.compile(optimizer=model.default_optimizer(
        schedule, gradient_accumulation_steps=gradient_accumulation_steps))
    model.fit(data, epochs=1, batch_size=batch_size, shuffle=False, verbose=0)
    return model


def test_accumulated_batches_follow_the_large_batch_schedule():
    """2 accumulated batches of 4 give what one batch of 8 gives, under a
    learning-rate schedule (Keras alone evaluates it on batches, so its
    second update would use the rate of update 3, i.e. 0)."""
    probe = SimMIMModel(tiny_vit(), mask_patch_size=8, seed=0)
    data = masked_batches(16, probe)
    large = train(None, 8, data)
    accumulated = train(2, 4, data)
    assert int(accumulated.optimizer.iterations) == 2
    np.testing.assert_allclose(
        float(accumulated.optimizer.learning_rate),
        float(large.optimizer.learning_rate), rtol=1e-6)
    moved = 0.0
    for a, b in zip(large.trainable_variables,
                    accumulated.trainable_variables):
        np.testing.assert_allclose(to_numpy(a), to_numpy(b), atol=2e-5,
                                   err_msg=a.path)
        moved = max(moved, float(np.abs(to_numpy(a)).max()))
    assert moved > 0


def test_compile_makes_a_users_accumulating_optimizer_advance_per_update():
    model = SimMIMModel(tiny_vit(), mask_patch_size=8)
    schedule = keras.optimizers.schedules.PolynomialDecay(0.01, 4, 0.0)
    model.compile(optimizer=keras.optimizers.AdamW(
        schedule, gradient_accumulation_steps=2))
    wrapped = keras.saving.deserialize_keras_object(
        model.optimizer.get_config()["learning_rate"])
    assert isinstance(wrapped, PerUpdateSchedule)
    assert wrapped.gradient_accumulation_steps == 2
    # Wrapping twice is a no-op; constant rates are left alone.
    per_update_learning_rate(model.optimizer)
    again = model.optimizer.get_config()["learning_rate"]
    assert again["config"]["schedule"]["class_name"] == "PolynomialDecay"
    constant = keras.optimizers.AdamW(1e-3, gradient_accumulation_steps=2)
    assert per_update_learning_rate(constant) is constant
    assert constant.get_config()["learning_rate"] == pytest.approx(1e-3)


def test_per_update_schedule_values_and_errors():
    schedule = PerUpdateSchedule(
        keras.optimizers.schedules.PolynomialDecay(1.0, 2, 0.0), 3)
    rates = [float(schedule(step)) for step in range(7)]
    assert rates == pytest.approx([1, 1, 1, 0.5, 0.5, 0.5, 0])
    copy = PerUpdateSchedule.from_config(schedule.get_config())
    assert float(copy(4)) == pytest.approx(0.5)
    with pytest.raises(TypeError, match="schedule"):
        PerUpdateSchedule(0.1, 2)
    with pytest.raises(ValueError, match="gradient_accumulation_steps"):
        PerUpdateSchedule(schedule, 0)
    model = SimMIMModel(tiny_vit(), mask_patch_size=8)
    with pytest.raises(ValueError, match="gradient_accumulation_steps=1"):
        model.default_optimizer(gradient_accumulation_steps=1)


@pytest.mark.parametrize("saved_under", BACKENDS)
def test_backend_optimizer_classes_load_as_the_public_class(saved_under):
    """A compile config written under any backend names the public
    optimizer, and one written before this rename loads through it."""
    config = {
        "optimizer": {
            "module": f"keras.src.backend.{saved_under}.optimizers."
                      f"{saved_under}_adamw",
            "class_name": "AdamW",
            "config": {"learning_rate": 1e-3, "weight_decay": 0.05},
            "registered_name": None,
        },
        "jit_compile": "auto",
    }
    portable = portable_optimizer_config(config)
    assert portable["optimizer"]["module"] == "keras.optimizers"
    assert config["optimizer"]["module"].startswith("keras.src.backend")
    optimizer = keras.saving.deserialize_keras_object(portable["optimizer"])
    assert type(optimizer) is type(keras.optimizers.AdamW())
    # A user's own (registered) optimizer is left as it is.
    custom = {"module": "my_package", "class_name": "AdamW", "config": {}}
    assert portable_optimizer_config(custom) == custom


