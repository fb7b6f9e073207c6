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

    Kept for callers of earlier releases: it assumes every replica holds
    `batch` rows. `draw_for_global_batch` also handles a last batch that
    does not split evenly.
    """
    replica, replicas = replica_position()
    if replicas == 1:
        return values
    shape = tuple(values.shape)
    return keras.ops.slice(
        values, (replica * batch,) + (0,) * (len(shape) - 1),
        (batch,) + shape[1:],
    )


def global_batch_rows(batch):
    """`(offset, global_batch)`: where this replica's `batch` rows sit in
    the global batch, and its size. `(0, batch)` outside a multi-replica
    `tf.distribute` step.

    Replicas may hold different numbers of rows (a last batch that does not
    split evenly gives some replicas fewer, or none), so the sizes are
    gathered from every replica; `tf.distribute` gives replica `i` the rows
    after those of replicas `0 .. i-1`.
    """
    context = _tf_replica_context()
    if context is None:
        return 0, batch
    import tensorflow as tf

    sizes = context.all_gather(
        tf.reshape(tf.cast(batch, "int32"), (1,)), axis=0)
    before = tf.range(context.num_replicas_in_sync) < (
        context.replica_id_in_sync_group)
    offset = tf.reduce_sum(tf.where(before, sizes, 0))
    return offset, tf.reduce_sum(sizes)


def draw_for_global_batch(draw, batch):
    """This replica's rows of `draw(global_batch)`: the one helper every
    random draw inside a step (masks) goes through, so that N replicas
    together draw exactly what one device draws for the same global batch,
    whether or not it splits evenly.

    Args:
        draw: a function of a batch size (an int or a scalar tensor)
            returning a tensor with that many rows.
        batch: this replica's batch size (`ops.shape(x)[0]`).

    Returns:
        `draw(batch)` on one device and under JAX sharding (which see the
        global batch in one program); under `tf.distribute`, rows
        `offset .. offset + batch` of `draw(global_batch)`.
    """
    if _tf_replica_context() is None:
        return draw(batch)
    offset, total = global_batch_rows(batch)
    values = draw(total)
    rank = len(values.shape)
    return keras.ops.slice(
        values, (offset,) + (0,) * (rank - 1),
        (batch,) + tuple(keras.ops.shape(values)[1:]),
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


def reported_as_global_loss(loss, inputs):
    """`loss`, this replica's share of the global loss (the shares sum to
    it), with the value Keras's loss tracker needs to report the global
    loss when replicas hold different numbers of rows; its gradient is
    unchanged.

    Keras's TensorFlow trainer tracks each replica's loss times the number
    of replicas `N`, weighted by the replica's row count `n_r`. That is the
    global loss only when every `n_r` is equal; for a last batch that splits
    unevenly the printed loss was off while the gradients were right. The
    value is scaled by `sum(n) / (N * n_r)` (1 for even splits) through a
    stop-gradient term. `loss` itself outside a multi-replica step.

    Args:
        loss: this replica's share, a float scalar tensor.
        inputs: this replica's input batch (any tensor whose first axis is
            the batch; its rank need not be known).
    """
    context = _tf_replica_context()
    if context is None:
        return loss
    import tensorflow as tf

    batch = tf.shape(inputs)[0]
    _, total = global_batch_rows(batch)
    rows = tf.maximum(tf.cast(batch, loss.dtype), 1.0)
    factor = tf.cast(total, loss.dtype) / (
        context.num_replicas_in_sync * rows)
    return loss + tf.stop_gradient(loss * (factor - 1.0))


def _batch_axis_size(distribution):
    mesh = distribution.device_mesh
    names = list(mesh.axis_names)
    name = distribution.batch_dim_name
    return mesh.shape[names.index(name)] if name in names else 1


def check_batches_split(x, batch_size, argument="batch_size"):
    """Raises before `fit`, `evaluate` or `predict` starts when a JAX
    `keras.distribution` could not split one of the batches of array
    inputs over its batch axis.

    Keras 3.15's JAX trainer places every batch with the layout it chose
    for the first one, so a last batch of, say, 1 image on 2 devices stops
    the run mid-way with JAX's `IndivisibleError`, and the model's later
    `fit` / `evaluate` / `predict` calls fail (`'NoneType' object is not
    callable`). Checked up front, the model stays usable. A no-op on
    TensorFlow (MirroredStrategy splits uneven batches) and torch, without
    a distribution, and for datasets (their batch sizes are not known in
    advance).

    Args:
        x: the model's inputs: an array, or a dict / list of arrays.
        batch_size: the `batch_size` given to `fit` / `evaluate` /
            `predict` (None: Keras's 32).
        argument: the argument named in the error.

    Raises:
        ValueError: the number of inputs leaves a last batch that the
            distribution's batch axis does not divide.
    """
    if keras.backend.backend() != "jax":
        return
    distribution = keras.distribution.distribution()
    if distribution is None:
        return
    first = x
    while isinstance(first, (dict, list, tuple)) and first:
        first = (next(iter(first.values())) if isinstance(first, dict)
                 else first[0])
    shape = getattr(first, "shape", None)
    if not shape or hasattr(first, "element_spec"):
        return
    rows = int(shape[0])
    batch = int(batch_size or 32)
    shards = _batch_axis_size(distribution)
    sizes = {min(batch, rows), rows % batch or batch}
    bad = sorted(size for size in sizes if size % shards)
    if bad:
        raise ValueError(
            f"{rows} inputs in batches of {argument}={batch} give a batch of "
            f"{bad[0]}, which the {shards} devices of the distribution's "
            f"batch axis cannot split (Keras places every batch as it placed "
            f"the first). Use a `{argument}` and a number of inputs that "
            f"are multiples of {shards}, or feed a tf.data.Dataset batched "
            "with drop_remainder=True."
        )

