"""Quiet start-up for the `keras-simmim` command.

TensorFlow (a core dependency: `data/` builds tf.data pipelines, and
keras-hub imports it) prints a screen of C++ log lines when it is first
imported: oneDNN notices, "Could not find cuda drivers", absl warnings.
TensorFlow 2.21 writes them before its logging reads any setting
(`TF_CPP_MIN_LOG_LEVEL` does not hide them), so the command imports the
frameworks with the process's standard error pointed at /dev/null, unless
run with `--verbose`. This runs from `keras_simmim/__init__.py` before
anything imports TensorFlow, because the command's entry point
(`keras_simmim.cli:main`) imports the package first. Python errors raised by
the imports still reach the user (they propagate after standard error is
restored). In a Python session or notebook nothing changes.
"""

import os
import sys

COMMAND = "keras-simmim"
MODULE = "keras_simmim.cli"


def running_the_command():
    """True when this process is the `keras-simmim` command (console
    script or `python -m keras_simmim.cli`)."""
    argv = getattr(sys, "orig_argv", None) or sys.argv
    program = os.path.basename(sys.argv[0]) if sys.argv else ""
    return program == COMMAND or any(
        flag == "-m" and module == MODULE
        for flag, module in zip(argv, argv[1:])
    )


def quiet_framework_logs():
    """For the command without `--verbose`: imports TensorFlow, Keras and
    keras-hub with the C++ start-up log lines hidden."""
    if not running_the_command() or "--verbose" in sys.argv:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import keras  # noqa: F401
        import keras_hub  # noqa: F401
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
