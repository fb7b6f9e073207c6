"""Models: SimMIM pretraining and its losses."""

from keras_simmim.models.simmim_loss import local_normalized_target
from keras_simmim.models.simmim_loss import masked_reconstruction_loss
from keras_simmim.models.simmim_model import SimMIMModel

__all__ = [
    "SimMIMModel",
    "local_normalized_target",
    "masked_reconstruction_loss",
]
