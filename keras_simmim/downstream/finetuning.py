"""What every model that fine-tunes a backbone shares: SimMIM's fine-tuning
optimizer and the weight-decay exclusions (`FineTunesBackbone`)."""

from keras_simmim.downstream.layer_decay import LayerDecayAdamW
from keras_simmim.downstream.layer_decay import layer_decay_multipliers
from keras_simmim.models import Task
from keras_simmim.training.schedules import warmup_cosine
from keras_simmim.utils.validation import check_positive_int


class FineTunesBackbone(Task):
    """Base class of the models that fine-tune a backbone, with
    `self.backbone`, `self.adapter` and `self._image_shape_arg`
    (`SimMIMClassifier`, `SuperResolutionModel`). Compile, the weight-decay
    rule and `load_weights` are `keras_simmim.models.Task`'s.

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
