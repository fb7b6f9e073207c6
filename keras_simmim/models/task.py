"""`Task`: the base class of every keras_simmim model.

Pretraining models (`SimMIMModel`, `MAEModel`, `MaskedMultimodalModel`,
through `MaskedImageModel`) and downstream models (`SimMIMClassifier`,
`SuperResolutionModel`, `FusionClassifier`, `ContrastiveAligner`) all
subclass it, as keras-hub's models subclass its `Task`. It owns what they
share, once:

* `training` reaching every layer the model calls on every backend
  (`stateless_call`, see `keras_simmim.utils.training_mode`);
* compile: `jit_compile` kept as the caller asked for it; a learning-rate
  schedule advanced once per optimizer update when gradients are
  accumulated (`keras_simmim.training.per_update_learning_rate`); on
  TensorFlow, sparse gradients summed densely and replicas' gradients summed
  before clipping (`keras_simmim.distribute.sum_gradients_before_clipping`);
* the one weight-decay rule (`no_weight_decay_variables`);
* the compile config: saved so that it loads on any backend (the optimizer
  under its public Keras name, not the saving backend's class), restored
  on load with the optimizer built so its saved state loads;
* `load_weights` naming a file it cannot read;
* `fit`, `evaluate` and `predict` refusing, before they start, array
  inputs whose last batch a JAX distribution's devices cannot split.

Why a base class and not mixins: one place to read for each of these
jobs, and no class with more than two bases (the design rule).
"""

import keras

from keras_simmim.distribute.replicas import check_batches_split
from keras_simmim.distribute.replicas import sum_gradients_before_clipping
from keras_simmim.training.schedules import per_update_learning_rate
from keras_simmim.utils.serialization import portable_optimizer_config
from keras_simmim.utils.serialization import unreadable_file_named
from keras_simmim.utils.training_mode import stateless_call_in_training_context

# Own names of variables that the SimMIM and MAE recipes keep out of weight
# decay besides every rank <= 1 variable (norm scales and offsets, 1-D
# biases): biases of any rank (keras-hub's attention biases are
# `(heads, head_dim)`), and tokens and position tables of the models' own
# layers (`mask_token`, `position_embedding`, `image_positions`,
# `relative_position_bias_table`). Backbone variables whose own name says
# nothing (keras-hub's position `Embedding` is called `embeddings`) come from
# the adapter's `no_weight_decay_variables`.
NO_DECAY_NAME_PARTS = ("bias", "token", "position")


def keeps_out_of_weight_decay(variable):
    """Whether the SimMIM/MAE recipe exempts `variable` from weight decay
    by its shape or own name (see `NO_DECAY_NAME_PARTS`)."""
    name = variable.name.lower()
    return len(variable.shape) <= 1 or any(
        part in name for part in NO_DECAY_NAME_PARTS
    )


class Task(keras.Model):
    """Base class of every keras_simmim model (see the module doc).

    A subclass builds its layers, implements `call` (and its loss where it
    has its own), and lists its constructor arguments in `get_config`, each
    under its own name. Backbone adapters, when the model has them, are
    found in the attributes named by `adapter_attributes`.
    """

    # Attributes holding backbone adapters whose variables the weight-decay
    # rule asks about (`no_weight_decay_variables`).
    adapter_attributes = ("adapter",)

    def stateless_call(self, *args, **kwargs):
        return stateless_call_in_training_context(
            self, super().stateless_call, *args, **kwargs)

    # ------------------------------------------------------------------ #
    # Running on several devices
    # ------------------------------------------------------------------ #
    def fit(self, x=None, y=None, batch_size=None, *args, **kwargs):
        """`keras.Model.fit`; under a JAX `keras.distribution`, array
        inputs whose last batch the devices cannot split are refused before
        training starts (`keras_simmim.distribute.check_batches_split`)."""
        check_batches_split(x, batch_size)
        return super().fit(x, y, batch_size, *args, **kwargs)

    def evaluate(self, x=None, y=None, batch_size=None, *args, **kwargs):
        """`keras.Model.evaluate`, with `fit`'s check of array inputs."""
        check_batches_split(x, batch_size)
        return super().evaluate(x, y, batch_size, *args, **kwargs)

    def predict(self, x, batch_size=None, *args, **kwargs):
        """`keras.Model.predict`, with `fit`'s check of array inputs."""
        check_batches_split(x, batch_size)
        return super().predict(x, batch_size, *args, **kwargs)

    # ------------------------------------------------------------------ #
    # Compile
    # ------------------------------------------------------------------ #
    def compile(self, *args, jit_compile="auto", **kwargs):
        """`keras.Model.compile`, then the optimizer made to train as one
        device with the large batch would (see the module doc)."""
        super().compile(*args, jit_compile=jit_compile, **kwargs)
        self._requested_jit_compile = jit_compile
        if self.optimizer is not None:
            per_update_learning_rate(self.optimizer)
            sum_gradients_before_clipping(self.optimizer)

    def no_weight_decay_variables(self):
        """Variables the SimMIM recipes keep out of weight decay: biases,
        norm scales and offsets, mask tokens, position embeddings, class
        tokens and relative-position tables (`keeps_out_of_weight_decay`),
        plus what the model's adapters name."""
        picked = [
            v for v in self.trainable_variables if keeps_out_of_weight_decay(v)
        ]
        known = {id(v) for v in picked}
        for attribute in self.adapter_attributes:
            adapter = getattr(self, attribute, None)
            if adapter is None:
                continue
            for variable in adapter.no_weight_decay_variables():
                if id(variable) not in known:
                    known.add(id(variable))
                    picked.append(variable)
        return picked

    # ------------------------------------------------------------------ #
    # Saving and loading
    # ------------------------------------------------------------------ #
    def get_compile_config(self):
        # `jit_compile` as the caller passed it: Keras saves what "auto"
        # resolved to on the saving backend (True on JAX), which would run
        # a model saved on JAX under torch.compile when loaded on torch.
        config = super().get_compile_config()
        if config is None:
            return None
        if hasattr(self, "_requested_jit_compile"):
            config["jit_compile"] = self._requested_jit_compile
        return portable_optimizer_config(config)

    def compile_from_config(self, config):
        # Keras skips `compile_from_config` for models whose `compile` is
        # overridden; these models restore it themselves, and build the
        # optimizer so that its saved state loads.
        config = keras.saving.deserialize_keras_object(
            portable_optimizer_config(config))
        self.compile(**config)
        if self.optimizer is not None and self.built:
            self.optimizer.build(self.trainable_variables)

    def load_weights(self, filepath, *args, **kwargs):
        """`keras.Model.load_weights`; a file that cannot be read (truncated,
        missing, not a weights file) raises a `ValueError` naming it."""
        with unreadable_file_named(filepath):
            super().load_weights(filepath, *args, **kwargs)
