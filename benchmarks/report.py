"""Helpers every benchmark shares: writing its markdown without losing what
people wrote (`write_markdown`), what a row needs to be reproduced
(`run_info`), the paired test over seeds (`paired_test`) and the
validation search over a widening grid (`tune`).

Every benchmark regenerates its `.md` from its `.json` after each run; the
reading under the tables (what the numbers say) is written by hand. Text
from a `## Reading` heading to the end of the file is that hand-written
part: `write_markdown` keeps it under the freshly generated tables.

The scripts under `benchmarks/<name>/` import this with
`sys.path.insert(0, <benchmarks>)` (benchmarks are scripts, not a package).
"""

import argparse
import os

READING = "## Reading"  # the hand-written part of a results file starts here


def write_markdown(path, generated):
    """Writes `generated` to `path`, followed by the `## Reading` section
    the file at `path` already had (if any)."""
    reading = ""
    if os.path.exists(path):
        with open(path) as f:
            old = f.read()
        if READING in old:
            reading = "\n" + old[old.index(READING):]
    with open(path, "w") as f:
        f.write(generated.rstrip("\n") + "\n" + reading)


def save_results(out, results, markdown):
    """Writes `results` to `out.json` and `markdown(results)` to `out.md`
    (keeping its `## Reading`); returns the markdown."""
    import json

    with open(out + ".json", "w") as f:
        json.dump(results, f, indent=1)
    text = markdown(results)
    write_markdown(out + ".md", text)
    return text


def provenance(results, script):
    """The line under a table's title: the command that made it (with
    `--quick` when it was), its time, commit, CPU and Keras, from
    `results["run"]` (`run_info`), `results["seconds"]` and
    `results["settings"]["quick"]`."""
    run = results["run"]
    quick = " --quick" if results["settings"].get("quick") else ""
    return (
        f"Command: `KERAS_BACKEND={run['backend']} OMP_NUM_THREADS=1 python "
        f"{script}{quick}` ({results['seconds']} s; {describe_run(run)}).")


def flags_line(settings, leave_out=("quick", "out")):
    """`settings` (a script's parsed arguments) as the flags that rerun
    it: `--name value` for each one but `leave_out` and None, lists
    space-separated (`fractions` with `:g`)."""
    def value_text(name, value):
        if name == "fractions":
            return " ".join(f"{v:g}" for v in value)
        if isinstance(value, list):
            return " ".join(map(str, value))
        return str(value)

    return "Its flags: `" + " ".join(
        f"--{name.replace('_', '-')} {value_text(name, value)}"
        for name, value in settings.items()
        if name not in leave_out and value is not None) + "`."


def describe_run(run):
    """`run_info()` as text: commit (and uncommitted changes), CPU and its
    flags, Keras."""
    return (
        f"commit {str(run['commit'])[:10]}"
        f"{' + uncommitted changes' if run['uncommitted_changes'] else ''}; "
        f"{run['cpu']}, flags {', '.join(run['cpu_flags']) or 'none'}; "
        f"Keras {run['keras']}")


def run_info():
    """What a results row needs to be reproduced and compared: the commit
    (and whether the tree had uncommitted changes), the backend and Keras
    version, and the CPU model with the instruction-set flags that change
    bfloat16 / matmul speed (these machines differ: some have AMX)."""
    import platform
    import subprocess

    import keras

    def git(*args):
        try:
            return subprocess.run(
                ["git", *args], cwd=os.path.dirname(__file__),
                capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return None

    model, flags = platform.processor() or None, set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and model in (None, ""):
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    wanted = ("amx_bf16", "amx_tile", "avx512_bf16", "avx512f", "avx2")
    return {
        "commit": git("rev-parse", "HEAD"),
        "uncommitted_changes": bool(git("status", "--porcelain", "--",
                                        ".", ":!benchmarks")),
        "backend": keras.backend.backend(),
        "keras": keras.__version__,
        "cpu": model,
        "cpu_flags": [flag for flag in wanted if flag in flags],
        "cpu_count": os.cpu_count(),
    }


def paired_test(baseline, treatment, alpha=0.05):
    """Paired comparison over seeds: mean difference, its standard error
    (ddof 1), a two-sided paired t-test, and whether it clears `alpha`.

    With one seed there is no test: `p` is None and `significant` False.
    """
    import numpy as np

    a = np.asarray(baseline, "float64")
    b = np.asarray(treatment, "float64")
    diff = b - a
    result = {"mean_diff": float(diff.mean()), "n": int(len(diff)),
              "std_err": None, "t": None, "p": None, "significant": False,
              "test": f"paired t-test, two-sided, alpha {alpha}"}
    if len(diff) > 1:
        from scipy import stats

        result["std_err"] = float(diff.std(ddof=1) / np.sqrt(len(diff)))
        test = stats.ttest_rel(b, a)
        result["t"], result["p"] = float(test.statistic), float(test.pvalue)
        result["significant"] = bool(test.pvalue < alpha)
    return result


def pretrain_simmim(model, pixels, steps, learning_rate, batch_size, seed,
                    label):
    """SimMIM pretraining as the dense benchmarks run it: `steps` steps of
    random resized crops and flips of the uint8 `pixels`, SimMIM's AdamW
    with a warm-up (a tenth) + cosine schedule. Returns the backbone's
    weights and the last loss; prints `label`, the time and the loss."""
    import time

    from keras_simmim.data import from_arrays
    from keras_simmim.downstream import warmup_cosine

    model.compile(optimizer=model.default_optimizer(
        warmup_cosine(learning_rate, steps, steps // 10)))
    data = from_arrays(pixels, augment=True, shuffle=True, seed=seed,
                       batch_size=batch_size, drop_remainder=True).repeat()
    start = time.time()
    history = model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)
    loss = float(history.history["loss"][-1])
    print(f"  pretrain {label}: {steps} steps, {time.time() - start:.0f}s, "
          f"last loss {loss:.3f}", flush=True)
    return model.backbone.get_weights(), loss


def tune(run, grid, max_extend=3):
    """Best value of `grid` by `run(value)[0]` (validation accuracy); the
    grid grows by factors of 2 past an edge that wins, so the chosen value
    is never on the edge of what was tried (up to `max_extend` steps).

    Returns `(best, tried)`, `tried` mapping every value run to what `run`
    returned. Ties go to the value tried first.
    """
    tried = {value: run(value) for value in grid}
    for _ in range(max_extend):
        best = max(tried, key=lambda v: tried[v][0])
        values = sorted(tried)
        if best == values[-1]:
            value = best * 2
        elif best == values[0]:
            value = best / 2
        else:
            break
        tried[value] = run(value)
    return max(tried, key=lambda v: tried[v][0]), tried


def parse_part(text):
    """`"K/N"` -> (K, N), for `--part`: this process runs every N-th job
    from the K-th, so N one-thread lanes started together share a table."""
    try:
        k, n = (int(v) for v in text.split("/"))
    except ValueError:
        k, n = -1, 0
    if not 0 <= k < n:
        raise argparse.ArgumentTypeError(
            f"--part must be K/N with 0 <= K < N, e.g. 0/2; got {text!r}.")
    return k, n


def out_prefix(text):
    """`--out PREFIX` (argparse type): the results go to `PREFIX.json` and
    `PREFIX.md`; the folder is made when the arguments are parsed, so a
    missing one fails no run at its end (an hour's rows lost)."""
    folder = os.path.dirname(os.path.abspath(text))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as error:
        raise argparse.ArgumentTypeError(
            f"--out {text!r}: cannot make its folder {folder!r} ({error}).")
    return text
