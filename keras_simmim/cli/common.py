"""Shared pieces of the `keras-simmim` subcommands: run folders, resuming,
backends, reports."""

import argparse
import hashlib
import json
import os
import shutil
import sys

BACKENDS = ("tensorflow", "jax", "torch")


def positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an int >= 1, got {text}")
    return value


def open_fraction(text):
    value = float(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(
            f"expected a number in (0, 1), got {text}")
    return value


def fraction(text):
    value = float(text)
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {text}")
    return value


def add_backend_flag(parser):
    parser.add_argument(
        "--backend", choices=BACKENDS, default=None,
        help="Keras backend (default: $KERAS_BACKEND or tensorflow).",
    )


def add_output_flags(parser, what):
    parser.add_argument(
        "--output", default=None,
        help=f"Output folder (default: simmim_runs/{what}-<backbone>-<hash "
        "of the settings>, so the same command finds and resumes it). A "
        "non-empty folder of another run is refused unless --overwrite.",
    )
    parser.add_argument("--overwrite", action="store_true")


def finish_parser(parser, command, run):
    """Adds `--output`, `--overwrite`, `--backend`, `--verbose` and the run
    function."""
    add_output_flags(parser, command)
    add_backend_flag(parser)
    parser.add_argument(
        "--verbose", action="store_true",
        help="Show TensorFlow's start-up log lines (hidden by default).")
    parser.set_defaults(run=run)


def ensure_backend(backend, argv):
    """Re-executes the command under `backend` if Keras runs another one.

    Only when called as a command (`argv is None`); in-process callers get
    an error instead, since a process cannot switch backends.
    """
    if backend is None:
        return
    import keras

    if keras.backend.backend() == backend:
        return
    if argv is not None:
        raise SystemExit(
            f"keras-simmim: --backend {backend} needs a new process; run the "
            "keras-simmim command instead."
        )
    env = dict(os.environ, KERAS_BACKEND=backend)
    command = [sys.executable, "-m", "keras_simmim.cli"] + sys.argv[1:]
    os.execve(sys.executable, command, env)


def fingerprint(args, names):
    return {name: getattr(args, name) for name in names}


def default_output(command, settings):
    digest = hashlib.sha1(
        json.dumps(settings, sort_keys=True).encode()
    ).hexdigest()[:8]
    tag = settings.get("backbone") or "model"
    return os.path.join("simmim_runs", f"{command}-{tag}-{digest}")


def finished_report(output, settings, command):
    """The folder of a finished run of `command` with these settings (its
    `report.json` records them), or None. Rerunning a finished command
    prints where its results are instead of redoing it."""
    if output is None:
        output = default_output(command, settings)
    try:
        with open(os.path.join(output, "report.json")) as f:
            saved = json.load(f).get("settings")
    except (OSError, ValueError):
        return None
    if saved != json.loads(json.dumps(settings)):
        return None
    print(f"keras-simmim: the run in {output!r} is already complete: "
          f"{os.path.join(output, 'report.md')}")
    return output


def prepare_output(output, overwrite, settings, command, own_files=()):
    """Returns `(output, checkpoint_dir, resume)`.

    `resume` is `(model_path, state)` when `output` holds checkpoints of a
    run with the same settings. A non-empty folder that is not such a run is
    refused unless `overwrite`, which starts the run afresh. A folder
    holding only `own_files` (what an interrupted run of this command
    writes) is reused.
    """
    from keras_simmim.training import latest_checkpoint

    if output is None:
        output = default_output(command, settings)
    checkpoints = os.path.join(output, "checkpoints")
    if os.path.exists(output) and not os.path.isdir(output):
        raise SystemExit(f"keras-simmim: --output {output!r} is a file.")
    if overwrite and os.path.isdir(checkpoints):
        shutil.rmtree(checkpoints)
    try:
        resume = latest_checkpoint(checkpoints)
    except ValueError as error:
        raise SystemExit(f"keras-simmim: {error}") from None
    if resume is not None:
        saved = resume[1].get("fingerprint") or {}
        changed = sorted(n for n in settings if saved.get(n) != settings[n])
        if changed:
            details = ", ".join(
                f"--{n.replace('_', '-')} {saved.get(n)} -> {settings[n]}"
                for n in changed
            )
            raise SystemExit(
                f"keras-simmim: {output!r} holds a run with other settings "
                f"({details}). Rerun with its settings to resume it, pass "
                "--overwrite to start afresh, or choose another --output."
            )
        return output, checkpoints, resume
    existing = set(os.listdir(output)) if os.path.isdir(output) else set()
    if existing and not existing <= set(own_files) and not overwrite:
        raise SystemExit(
            f"keras-simmim: output folder {output!r} is not empty; pass "
            "--overwrite to replace its files or choose another --output."
        )
    os.makedirs(output, exist_ok=True)
    return output, checkpoints, None


def load_checkpoint_model(resume):
    import keras

    try:
        return keras.saving.load_model(resume[0])
    except Exception as error:  # any unreadable file: say which one
        raise SystemExit(
            f"keras-simmim: checkpoint {resume[0]!r} is unreadable "
            f"({type(error).__name__}: {error}). Delete its directory "
            "to resume from the one before, or pass --overwrite."
        ) from None


def write_text_atomically(path, text):
    """Writes `text` to `path` through a temporary file and a rename."""
    partial = f"{path}.{os.getpid()}.partial"
    with open(partial, "w") as f:
        f.write(text)
    os.replace(partial, path)


def write_json_atomically(path, payload):
    write_text_atomically(path, json.dumps(payload, indent=2))


def write_report(output, title, metrics, details):
    """Writes `report.md` (a metrics table), then `report.json`, each
    atomically; `report.json` comes last because it marks the run done."""
    lines = [f"# {title}", "", "| metric | value |", "|---|---|"]
    for name, value in metrics.items():
        shown = f"{value:.4f}" if isinstance(value, float) else str(value)
        lines.append(f"| {name} | {shown} |")
    lines += ["", "Settings:", ""]
    lines += [f"- {k}: {v}" for k, v in sorted(details.get("settings", {}).items())]
    write_text_atomically(
        os.path.join(output, "report.md"), "\n".join(lines) + "\n"
    )
    write_json_atomically(
        os.path.join(output, "report.json"), {"metrics": metrics, **details}
    )


def run_progress(epochs):
    """Keras's progress bar for a run fed to `fit()` one epoch at a time
    (how the commands resume exactly): it prints `Epoch 3/8` for the run's
    epochs instead of each `fit()`'s own `Epoch 3/3`, then the steps."""
    import keras

    class RunProgress(keras.callbacks.ProgbarLogger):
        def set_params(self, params):
            super().set_params(params)
            self.epochs = epochs

    return RunProgress()


def verbosity():
    return 1 if sys.stdout.isatty() else 2
