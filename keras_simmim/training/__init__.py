"""Training utilities: resumable checkpoints, deterministic data order and
the recipes' learning-rate schedules."""

from keras_simmim.training.checkpoints import ResumableCheckpoint
from keras_simmim.training.checkpoints import latest_checkpoint
from keras_simmim.training.checkpoints import save_model_atomically
from keras_simmim.training.epoch_data import epoch_permutation
from keras_simmim.training.input_check import NonFiniteInputCheck
from keras_simmim.training.schedules import PerUpdateSchedule
from keras_simmim.training.schedules import per_update_learning_rate
from keras_simmim.training.schedules import warmup_cosine

__all__ = [
    "NonFiniteInputCheck",
    "PerUpdateSchedule",
    "ResumableCheckpoint",
    "latest_checkpoint",
    "epoch_permutation",
    "per_update_learning_rate",
    "save_model_atomically",
    "warmup_cosine",
]
