"""`training` reaches every layer a model calls, on every backend.

Keras's JAX trainer runs a model's forward pass through `stateless_call`,
which calls `model.call(x, training=True)` directly instead of through
`Layer.__call__`. `__call__` is what opens the call context from which
nested layers inherit `training`, so on JAX a layer that a subclassed model
calls without passing `training` explicitly (a backbone's BatchNorm, a text
tower's dropout) ran in inference mode during `fit()`: BatchNorm's moving
statistics never moved on JAX while they did on TensorFlow and torch.

`stateless_call_in_training_context` opens that context in `stateless_call` when none is
open, so the model's own layers inherit `training` as they do under
`__call__`. It uses Keras's private call-context API (`global_state`,
`CallContext`); pyproject bounds Keras below 3.16 for that reason.
"""

from keras.src.backend.common import global_state
from keras.src.layers.layer import CallContext

_CONTEXT = "current_call_ctx"


def stateless_call_in_training_context(model, stateless_call, *args,
                                       **kwargs):
    """Runs `stateless_call(*args, **kwargs)` (the model's inherited
    `keras.Model.stateless_call`) inside a call context that carries
    `training`, when none is open, so the model's own layers inherit it as
    they do under `__call__`. Used by `keras_simmim.models.Task`."""
    if global_state.get_global_attribute(_CONTEXT) is not None:
        return stateless_call(*args, **kwargs)
    context = CallContext(entry_layer=model)
    context.set_value("training", kwargs.get("training"))
    global_state.set_global_attribute(_CONTEXT, context)
    try:
        return stateless_call(*args, **kwargs)
    finally:
        global_state.set_global_attribute(_CONTEXT, None)
