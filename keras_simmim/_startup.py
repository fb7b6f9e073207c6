"""Quiet start-up for the `keras-simmim` command.

TensorFlow (a core dependency: `data/` builds tf.data pipelines, and
keras-hub imports it) prints a screen of C++ log lines: oneDNN notices,
"Could not find cuda drivers" (`cudart_stub`), absl's "All log messages
before absl::InitializeLog() is called are written to STDERR" when it is
first imported, and "failed call to cuInit" when its runtime first looks
for GPUs, which on the JAX and torch backends happens when the first
tf.data pipeline runs. TensorFlow 2.21 writes the import-time lines before
its logging reads any setting (`TF_CPP_MIN_LOG_LEVEL` does not hide them),
so the command imports the frameworks, and has TensorFlow look for its
GPUs, with the process's standard error pointed at /dev/null, unless run
with `--verbose`; `TF_CPP_MIN_LOG_LEVEL=3` (unless set) hides later C++
log lines.

On the JAX and torch backends TensorFlow only runs the input pipelines,
on the CPU: the command hides the GPUs from TensorFlow alone
(`tf.config.set_visible_devices([], "GPU")`, not `CUDA_VISIBLE_DEVICES`),
so it neither starts CUDA nor reserves GPU memory, and JAX or torch keep
every GPU.

This runs from `keras_simmim/__init__.py` before anything imports
TensorFlow, because the command's entry point (`keras_simmim.cli:main`)
imports the package first. Python errors raised by the imports still reach
the user (they propagate after standard error is restored). In a Python
session or notebook nothing changes.
"""

import os
import sys

COMMAND = "keras-simmim"
MODULE = "keras_simmim.cli"


def running_the_command():
    """True when this process is the `keras-simmim` command (console
    script, `keras-simmim.exe` / `-script.py` on Windows, or `python -m
    keras_simmim.cli`)."""
    argv = getattr(sys, "orig_argv", None) or sys.argv
    program = os.path.basename(sys.argv[0]) if sys.argv else ""
    for suffix in (".exe", "-script.py", ".py"):
        if program.lower().endswith(suffix):
            program = program[:-len(suffix)]
    # `python -m keras_simmim.cli` without `sys.orig_argv` (Python 3.9):
    # runpy sets `argv[0]` to the module's file.
    main_file = os.path.join(*MODULE.split("."), "__main__.py")
    return program == COMMAND or (
        bool(sys.argv) and sys.argv[0].endswith(main_file)
    ) or any(
        flag == "-m" and module == MODULE
        for flag, module in zip(argv, argv[1:])
    )


def start_tensorflow(tensorflow, backend):
    """Has TensorFlow look for its GPUs now (CUDA's start-up log lines come
    out here). On another backend, hides the GPUs from TensorFlow only."""
    try:
        if backend == "tensorflow":
            tensorflow.config.list_physical_devices("GPU")
        else:
            tensorflow.config.set_visible_devices([], "GPU")
    except (RuntimeError, ValueError):  # already started: leave it be
        pass


def quiet_framework_logs():
    """For the command without `--verbose`: imports TensorFlow, Keras and
    keras-hub, and starts TensorFlow's device search, with the C++ start-up
    log lines hidden."""
    if not running_the_command() or "--verbose" in sys.argv:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import keras
        import keras_hub  # noqa: F401

        try:
            import tensorflow
        except ImportError:  # the data loaders say what to install
            tensorflow = None
        if tensorflow is not None:
            start_tensorflow(tensorflow, keras.backend.backend())
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
