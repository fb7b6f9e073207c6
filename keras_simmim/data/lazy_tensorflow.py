"""TensorFlow, imported on first use.

The input pipelines (`keras_simmim.data`) are `tf.data` code and TensorFlow
is a dependency, but the models run on any backend: importing TensorFlow
when the package is imported would make `import keras_simmim` fail, and
cost seconds, on a JAX or PyTorch machine that trains from arrays or its
own loader (a GPU image without TensorFlow, say). `tf` here is a stand-in
that imports TensorFlow the first time one of its attributes is read.
"""


class _LazyTensorFlow:
    _module = None

    def __getattr__(self, name):
        if _LazyTensorFlow._module is None:
            try:
                import tensorflow
            except ImportError as error:
                raise ImportError(
                    "keras_simmim's input pipelines (`keras_simmim.data` "
                    "loaders and augmentation) are tf.data code and need "
                    "TensorFlow: `pip install tensorflow` (the models "
                    "themselves run without it on JAX and PyTorch)."
                ) from error
            _LazyTensorFlow._module = tensorflow
        return getattr(_LazyTensorFlow._module, name)

    def __repr__(self):
        return "<TensorFlow, imported on first use>"


tf = _LazyTensorFlow()
