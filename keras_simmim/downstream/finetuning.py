"""What every model that fine-tunes a backbone shares: SimMIM's fine-tuning
optimizer and the weight-decay exclusions (`FineTunesBackbone`)."""

from keras_simmim.distribute.replicas import sum_gradients_before_clipping
from keras_simmim.downstream.layer_decay import LayerDecayAdamW
from keras_simmim.downstream.layer_decay import layer_decay_multipliers
from keras_simmim.downstream.layer_decay import warmup_cosine
from keras_simmim.utils.serialization import RecompileOnLoad
from keras_simmim.utils.serialization import unreadable_file_named
from keras_simmim.utils.validation import check_positive_int
from keras_simmim.utils.training_mode import PropagatesTraining


class FineTunesBackbone(PropagatesTraining, RecompileOnLoad):
    """Mixin for `keras.Model`s with `self.backbone`, `self.adapter` and
    `self._image_shape_arg` (`SimMIMClassifier`, `SuperResolutionModel`).

    `finetuning_optimizer` is SimMIM's recipe: AdamW (weight decay kept off
    biases, norms, position embeddings and class tokens), linear warm-up
    (default a fifth of `total_steps`, as the recipe's 20 of 100 epochs)
    then cosine, the learning rate scaled per backbone layer by
    `layer_decay ** (depth from the top)`, the head at the full rate.
    """

    def finetuning_optimizer(self, learning_rate, total_steps, warmup_steps,
                             layer_decay, weight_decay, clipnorm):
        check_positive_int("total_steps", total_steps)
        if warmup_steps is None:
            warmup_steps = total_steps // 5
        optimizer = LayerDecayAdamW(
            multipliers=layer_decay_multipliers(
                self.backbone, layer_decay, image_shape=self._image_shape_arg),
            learning_rate=warmup_cosine(
                learning_rate, total_steps, warmup_steps),
            weight_decay=weight_decay,
            global_clipnorm=clipnorm,
        )
        optimizer.exclude_from_weight_decay(
            var_list=self.no_weight_decay_variables())
        return optimizer

    def compile_with(self, optimizer, **kwargs):
        """`compile`, then (TensorFlow) dense sums of sparse gradients and
        replicas summed before clipping (Keras clips per-replica gradients
        first). A method of its own rather than part of `compile`, so that
        a loaded model's `compile_from_config` (`RecompileOnLoad`) compiles
        exactly as saved."""
        self.compile(optimizer=optimizer, **kwargs)
        sum_gradients_before_clipping(self.optimizer)

    def no_weight_decay_variables(self):
        """Biases, norms, position embeddings and class tokens."""
        picked = [v for v in self.trainable_variables if len(v.shape) <= 1]
        picked += self.adapter.no_weight_decay_variables()
        return picked

    def load_weights(self, filepath, *args, **kwargs):
        """`keras.Model.load_weights`; a file that cannot be read (truncated,
        missing, not a weights file) raises a `ValueError` naming it."""
        with unreadable_file_named(filepath):
            super().load_weights(filepath, *args, **kwargs)
