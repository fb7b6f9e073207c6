"""Shared pieces of the `keras-simmim` subcommands: `--help`, run folders
(and removing those a failed run leaves empty), resuming, backends, reports
and printed results."""

import argparse
import contextlib
import hashlib
import json
import numbers
import os
import shutil
import sys

BACKENDS = ("tensorflow", "jax", "torch")


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """`--help` with each option's default after its help ("on" / "off"
    for switches). An option whose default is None says in its help what
    happens without it. Descriptions and epilogs keep their lines."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if (not action.option_strings or default is None
                or default is argparse.SUPPRESS or "%(default)" in text):
            return text
        if isinstance(default, bool):
            return f"{text} (default: {'on' if default else 'off'})"
        return f"{text} (default: %(default)s)"


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
    tag = "model" if what in ("evaluate", "inpaint") else "<backbone>"
    parser.add_argument(
        "--output", default=None,
        help=f"Output folder (default: simmim_runs/{what}-{tag}-<hash "
        "of the settings>, so the same command finds and resumes it). A "
        "non-empty folder of another run is refused unless --overwrite.",
    )
    parser.add_argument(
        "--overwrite", action="store_true",
        help="Replace the files of a non-empty --output folder; a run with "
        "other settings there starts afresh.")


def finish_parser(parser, command, run):
    """Adds `--output`, `--overwrite`, `--backend`, `--verbose` and the run
    function; `--help` shows every option's default."""
    add_output_flags(parser, command)
    add_backend_flag(parser)
    parser.add_argument(
        "--verbose", action="store_true",
        help="Show TensorFlow's start-up log lines.")
    parser.set_defaults(run=run)
    parser.formatter_class = HelpFormatter


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


# Settings added after runs were made without them: recorded only when
# given, so the folders and fingerprints of those runs are unchanged (they
# resume, and rerunning a finished command still finds its results).
ONLY_WHEN_GIVEN = ("channels", "depth")


def fingerprint(args, names):
    """`{name: value}` of the settings `names` that define a run."""
    return {name: getattr(args, name) for name in names
            if not (name in ONLY_WHEN_GIVEN and getattr(args, name) is None)}


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
    make_run_folder(output)
    return output, checkpoints, None


# Folders `make_run_folder` created, parents first, each with whether it is
# the run folder itself, for `removing_empty_folders_on_failure`.
_CREATED_FOLDERS = []


def make_run_folder(output):
    """Creates `output` and its missing parents, remembering which."""
    missing = []
    folder = os.path.abspath(output)
    while not os.path.exists(folder):
        missing.append((folder, not missing))
        folder = os.path.dirname(folder)
    os.makedirs(output, exist_ok=True)
    _CREATED_FOLDERS.extend(reversed(missing))


def _remove_if_no_files(folder, with_subfolders):
    """Removes `folder` if it is empty, or (`with_subfolders`) holds only
    empty folders; never a file."""
    try:
        if with_subfolders:
            for parent, _, _ in os.walk(folder, topdown=False):
                if parent != folder:
                    os.rmdir(parent)  # fails unless it is empty
        os.rmdir(folder)
    except OSError:
        pass


@contextlib.contextmanager
def removing_empty_folders_on_failure():
    """If the block fails, removes the folders `make_run_folder` created in
    it that hold no files: a failed run leaves no empty output folder. A
    folder that existed before, or holds any file, is left alone."""
    start = len(_CREATED_FOLDERS)
    try:
        yield
    except BaseException:
        for folder, is_run in reversed(_CREATED_FOLDERS[start:]):
            _remove_if_no_files(folder, with_subfolders=is_run)
        raise
    finally:
        del _CREATED_FOLDERS[start:]


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
        lines.append(f"| {name} | {format_value(name, value)} |")
    lines += ["", "Settings:", ""]
    lines += [f"- {k}: {v}" for k, v in sorted(details.get("settings", {}).items())]
    write_text_atomically(
        os.path.join(output, "report.md"), "\n".join(lines) + "\n"
    )
    write_json_atomically(
        os.path.join(output, "report.json"), {"metrics": metrics, **details}
    )


def format_value(name, value):
    """A result for people: an accuracy in percent, seconds to 0.1 s, a
    PSNR to 0.01 dB, other fractional numbers to 4 significant digits."""
    if not isinstance(value, numbers.Real) or isinstance(
            value, numbers.Integral):
        return str(value)
    if "accuracy" in name:
        return f"{100 * value:.2f}%"
    if "seconds" in name:
        return f"{value:.1f} s"
    if "psnr" in name:
        return f"{value:.2f} dB"
    return f"{value:.4g}"


def format_results(metrics):
    """`metrics` as aligned `name: value` lines (see `format_value`)."""
    width = max((len(name) for name in metrics), default=0) + 1
    return "\n".join(f"  {name + ':':<{width}} {format_value(name, value)}"
                     for name, value in metrics.items())


def report_results(output, title, metrics, details):
    """Writes the report (`write_report`: `report.json` keeps the metrics
    at full precision) and prints the metrics readably."""
    write_report(output, title, metrics, details)
    print(f"{title}:\n{format_results(metrics)}\nFull-precision results: "
          f"{os.path.abspath(os.path.join(output, 'report.json'))}\n"
          f"Output folder: {os.path.abspath(output)}")


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
