"""Training on several devices: replica-aware helpers (see `replicas`)."""

from keras_simmim.distribute.replicas import draw_for_global_batch
from keras_simmim.distribute.replicas import global_batch_rows
from keras_simmim.distribute.replicas import check_batches_split
from keras_simmim.distribute.replicas import replica_position
from keras_simmim.distribute.replicas import reported_as_global_loss
from keras_simmim.distribute.replicas import replica_rows
from keras_simmim.distribute.replicas import sum_over_replicas
from keras_simmim.distribute.replicas import in_multi_replica_strategy
from keras_simmim.distribute.replicas import sum_gradients_before_clipping
from keras_simmim.distribute.layouts import transformer_layout_map

__all__ = [
    "check_batches_split",
    "draw_for_global_batch",
    "global_batch_rows",
    "in_multi_replica_strategy",
    "replica_position",
    "replica_rows",
    "reported_as_global_loss",
    "sum_gradients_before_clipping",
    "sum_over_replicas",
    "transformer_layout_map",
]
