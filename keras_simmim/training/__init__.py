"""Training utilities: resumable checkpoints and deterministic data order."""

from keras_simmim.training.checkpoints import ResumableCheckpoint
from keras_simmim.training.checkpoints import latest_checkpoint
from keras_simmim.training.checkpoints import save_model_atomically
from keras_simmim.training.epoch_data import epoch_permutation
from keras_simmim.training.input_check import NonFiniteInputCheck

__all__ = [
    "NonFiniteInputCheck",
    "ResumableCheckpoint",
    "latest_checkpoint",
    "epoch_permutation",
    "save_model_atomically",
]
