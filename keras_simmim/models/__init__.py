"""Models: SimMIM pretraining and its losses, and MAE for comparison."""

from keras_simmim.models.mae_model import MAEModel
from keras_simmim.models.masked_image_model import MaskedImageModel
from keras_simmim.models.simmim_loss import color_classification_loss
from keras_simmim.models.simmim_loss import decode_color_logits
from keras_simmim.models.simmim_loss import local_normalized_target
from keras_simmim.models.simmim_loss import masked_reconstruction_loss
from keras_simmim.models.simmim_model import SimMIMModel
from keras_simmim.models.task import Task

__all__ = [
    "MAEModel",
    "MaskedImageModel",
    "SimMIMModel",
    "Task",
    "color_classification_loss",
    "decode_color_logits",
    "local_normalized_target",
    "masked_reconstruction_loss",
]
