"""Training on several devices: replica-aware helpers (see `replicas`)."""

from keras_simmim.distribute.replicas import replica_position
from keras_simmim.distribute.replicas import replica_rows
from keras_simmim.distribute.replicas import sum_over_replicas
from keras_simmim.distribute.replicas import in_multi_replica_strategy
from keras_simmim.distribute.replicas import sum_gradients_before_clipping
from keras_simmim.distribute.layouts import transformer_layout_map

__all__ = [
    "in_multi_replica_strategy",
    "replica_position",
    "replica_rows",
    "sum_gradients_before_clipping",
    "sum_over_replicas",
    "transformer_layout_map",
]
