"""Where a computation runs among synchronous replicas.

Keras's `fit()` under `tf.distribute` runs the training step once per replica
on that replica's slice of the global batch, and sums the gradients. Two
things in SimMIM then differ from one device unless the step knows its
replica:

* the loss is a mean over the *masked pixels of the whole batch*, so each
  replica must divide its sum by the masked-pixel count summed over all
  replicas (`sum_over_replicas`): then the replicas' losses, and their
  gradients, add up to the one-device loss exactly (a per-replica mean, or
  Keras's 1/replicas scaling, is only right when every replica masks the
  same number of pixels);
* every replica would draw the same random mask for its slice; drawing the
  global batch's mask and keeping the replica's rows
  (`replica_position`) gives the mask one device would draw.

JAX (`keras.distribution`) and single-device runs see the global batch in
one program, so both helpers are identities there. These are the only
places the library calls a backend API directly, as Keras does for the same
purpose in `keras.losses.loss.scale_loss_for_distribution`.
"""

import keras


def _tf_replica_context():
    if keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return None
    return context


def replica_position():
    """`(replica_id, num_replicas)` of the running step.

    `(0, 1)` outside a multi-replica `tf.distribute` step (JAX sharding and
    one device included). `replica_id` is a scalar tensor under
    `tf.distribute`.
    """
    context = _tf_replica_context()
    if context is None:
        return 0, 1
    return context.replica_id_in_sync_group, context.num_replicas_in_sync


def replica_rows(values, batch):
    """This replica's `batch` rows of `values`, a draw made for the global
    batch (`batch * num_replicas` rows); `values` itself elsewhere.

    Random draws inside a step (masks) use it so that N replicas together
    draw what one device draws for the same global batch.
    """
    replica, replicas = replica_position()
    if replicas == 1:
        return values
    shape = tuple(values.shape)
    return keras.ops.slice(
        values, (replica * batch,) + (0,) * (len(shape) - 1),
        (batch,) + shape[1:],
    )


def sum_over_replicas(value):
    """`value` summed over the replicas of a `tf.distribute` step (no
    gradient flows through the sum); `value` itself elsewhere."""
    context = _tf_replica_context()
    if context is None:
        return value
    import tensorflow as tf

    return context.all_reduce(
        tf.distribute.ReduceOp.SUM, keras.ops.stop_gradient(value)
    )


def in_multi_replica_strategy():
    """True inside the scope of a `tf.distribute` strategy with more than one
    replica (where `sum_gradients_before_clipping` matters)."""
    if keras.backend.backend() != "tensorflow":
        return False
    import tensorflow as tf

    return (
        tf.distribute.has_strategy()
        and tf.distribute.get_strategy().num_replicas_in_sync > 1
    )


def sum_gradients_before_clipping(optimizer):
    """Makes a Keras optimizer on TensorFlow update as one device with dense
    gradients would (as JAX and torch do). Returns the optimizer (changed in
    place).

    Two Keras 3.15 TensorFlow behaviours are changed:

    * a sparse gradient (`IndexedSlices`, from an `Embedding`: a text
      tower's token embedding, keras-hub's position embedding) is made dense
      before the update, so rows that occur several times in a batch are
      summed first. Keras's own path squares each occurrence for Adam's
      second moment (`ops.square` of the slices), so a token that appears
      three times gets another update than on JAX or torch; and under
      `tf.distribute` it sums replicas by concatenation and applies a
      scatter *update*, so one replica's rows overwrite the other's;
    * under `tf.distribute`, each replica's *partial* gradient is clipped
      (`clipnorm`, `global_clipnorm`, `clipvalue`) before the replicas are
      summed; here the replicas' gradients are summed first, then clipped,
      and the optimizer's own (now redundant) summation is skipped.

    On JAX and torch nothing changes. For a `LossScaleOptimizer` the inner
    optimizer is changed. (Private Keras API: pyproject bounds Keras below
    3.16.)
    """
    target = getattr(optimizer, "inner_optimizer", optimizer)
    if getattr(target, "_simmim_sums_before_clipping", False):
        return optimizer
    if keras.backend.backend() != "tensorflow":
        return optimizer
    import tensorflow as tf

    clip = target._clip_gradients
    reduce = target._all_reduce_sum_gradients

    def _clip_gradients(grads):
        grads = [None if g is None else tf.convert_to_tensor(g) for g in grads]
        context = _tf_replica_context()
        if context is not None:
            present = [g for g in grads if g is not None]
            summed = iter(context.all_reduce(tf.distribute.ReduceOp.SUM, present))
            grads = [None if g is None else next(summed) for g in grads]
        return clip(grads)

    def _all_reduce_sum_gradients(grads_and_vars):
        if _tf_replica_context() is not None:
            return list(grads_and_vars)  # summed in `_clip_gradients`
        return reduce(grads_and_vars)

    target._clip_gradients = _clip_gradients
    target._all_reduce_sum_gradients = _all_reduce_sum_gradients
    target._simmim_sums_before_clipping = True
    return optimizer
