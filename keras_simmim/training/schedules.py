"""Learning-rate schedules of the SimMIM recipes.

* `warmup_cosine`: linear warm-up, then cosine decay (pretraining and
  fine-tuning).
* `PerUpdateSchedule`: a schedule advanced once per optimizer *update*
  when gradients are accumulated over several batches.

Why `PerUpdateSchedule` exists: SimMIM's recipe accumulates gradients to
reach its large batch. Keras 3 optimizers with
`gradient_accumulation_steps=k` apply one update every `k` batches, but
evaluate a `LearningRateSchedule` on the count of *batches* seen, so a
schedule written for the large batch runs `k` times too fast (a decay over
`n` updates ends after `n / k`). `PerUpdateSchedule(schedule, k)` calls
`schedule(batches // k)`: at every update the rate is what one optimizer
with the large batch would use at the same update. Every keras_simmim
model's `compile` wraps a schedule this way when the optimizer accumulates
(`per_update_learning_rate`), so the user's code stays the same as for
one large batch.
"""

import keras
from keras import ops

from keras_simmim.utils.validation import check_positive_int


@keras.saving.register_keras_serializable(package="keras_simmim")
class PerUpdateSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """`schedule` evaluated on optimizer updates instead of batches.

    Args:
        schedule: a `keras.optimizers.schedules.LearningRateSchedule`
            written in optimizer updates (the large-batch schedule).
        gradient_accumulation_steps: int >= 1, the batches accumulated per
            update (the optimizer's own `gradient_accumulation_steps`).

    Call: `step` (the optimizer's batch counter, an int scalar) -> the
    rate `schedule(step // gradient_accumulation_steps)`.

    Raises:
        TypeError: `schedule` is not a `LearningRateSchedule`.
        ValueError: `gradient_accumulation_steps` is not a positive int.

    Example:

    >>> import keras
    >>> from keras_simmim.training import PerUpdateSchedule
    >>> decay = keras.optimizers.schedules.PolynomialDecay(0.01, 4, 0.0)
    >>> per_update = PerUpdateSchedule(decay, 2)
    >>> [round(float(per_update(step)), 4) for step in range(4)]
    [0.01, 0.01, 0.0075, 0.0075]
    """

    def __init__(self, schedule, gradient_accumulation_steps):
        if not isinstance(
            schedule, keras.optimizers.schedules.LearningRateSchedule
        ):
            raise TypeError(
                "`schedule` must be a keras.optimizers.schedules."
                f"LearningRateSchedule. Received: schedule={schedule!r}."
            )
        check_positive_int(
            "gradient_accumulation_steps", gradient_accumulation_steps)
        self.schedule = schedule
        self.gradient_accumulation_steps = int(gradient_accumulation_steps)

    def __call__(self, step):
        return self.schedule(
            ops.floor_divide(step, self.gradient_accumulation_steps))

    def get_config(self):
        return {
            "schedule": keras.saving.serialize_keras_object(self.schedule),
            "gradient_accumulation_steps": self.gradient_accumulation_steps,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["schedule"] = keras.saving.deserialize_keras_object(
            config["schedule"])
        return cls(**config)


def per_update_learning_rate(optimizer):
    """Makes an optimizer that accumulates gradients advance its
    learning-rate schedule once per update (see the module doc). Returns the
    optimizer, changed in place through its public `learning_rate` setter.

    A no-op for optimizers that do not accumulate, for constant rates and
    for schedules already wrapped. The schedule is read back from the
    optimizer's config, so a custom schedule class must be registered
    (`keras.saving.register_keras_serializable`), as saving it needs anyway.

    Args:
        optimizer: a `keras.optimizers.Optimizer` (a `LossScaleOptimizer`'s
            inner optimizer is the one changed).

    Raises:
        ValueError: the optimizer accumulates gradients under a schedule
            that cannot be rebuilt from its config.
    """
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    steps = getattr(inner, "gradient_accumulation_steps", None)
    if not steps:
        return optimizer
    config = inner.get_config().get("learning_rate")
    if not isinstance(config, dict):
        return optimizer  # a constant rate, or a plain callable
    try:
        schedule = keras.saving.deserialize_keras_object(config)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"The optimizer accumulates gradients (gradient_accumulation_"
            f"steps={steps}) under a learning-rate schedule that cannot be "
            f"rebuilt from its config ({error}). Register the schedule class "
            "with keras.saving.register_keras_serializable, or wrap it "
            "yourself in keras_simmim.training.PerUpdateSchedule(schedule, "
            f"{steps})."
        ) from error
    if isinstance(schedule, PerUpdateSchedule) or not isinstance(
        schedule, keras.optimizers.schedules.LearningRateSchedule
    ):
        return optimizer
    inner.learning_rate = PerUpdateSchedule(schedule, steps)
    return optimizer


def warmup_cosine(learning_rate, total_steps, warmup_steps=0, final=0.0):
    """Linear warm-up from 0 to `learning_rate`, then cosine decay.

    Args:
        learning_rate: float, the peak learning rate.
        total_steps: int, length of the whole schedule in optimizer updates
            (warm-up included).
        warmup_steps: int, linear warm-up updates.
        final: float, the rate at the end, as a fraction of `learning_rate`.

    Returns:
        A `keras.optimizers.schedules.CosineDecay`.

    Raises:
        ValueError: `total_steps` does not exceed `warmup_steps`.

    Example:

    >>> from keras_simmim.training import warmup_cosine
    >>> schedule = warmup_cosine(1e-3, total_steps=10, warmup_steps=2)
    >>> [round(float(schedule(step)), 4) for step in (0, 1, 2, 10)]
    [0.0, 0.0005, 0.001, 0.0]
    """
    if total_steps <= warmup_steps:
        raise ValueError(
            "`total_steps` must exceed `warmup_steps`. Received: "
            f"total_steps={total_steps}, warmup_steps={warmup_steps}."
        )
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup_steps else learning_rate,
        decay_steps=int(total_steps - warmup_steps),
        alpha=final,
        warmup_target=learning_rate if warmup_steps else None,
        warmup_steps=int(warmup_steps),
    )
