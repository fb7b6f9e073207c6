"""The guides (`guides/*.py`, keras-io format, jupytext percent cells) and
the examples (`examples/*.py`) run as a user runs them.

Each committed `.ipynb` must be exactly what jupytext makes of its `.py`
source (regenerate with `jupytext --to ipynb guides/NAME.py`). Every guide's
notebook is executed with nbclient at its quick setting, and every example
with `--quick`, each on one backend (`RUNS_ON`), so that CI's three backend
runs share the work and each backend runs at least one guide.
"""

import glob
import json
import os
import subprocess
import sys

import keras
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GUIDES = sorted(glob.glob(os.path.join(ROOT, "guides", "*.py")))
EXAMPLES = sorted(glob.glob(os.path.join(ROOT, "examples", "*.py")))
BACKENDS = ("tensorflow", "jax", "torch")
# Where each guide and example runs in CI (default: spread in file order).
# Chosen from measured times so that the three backend runs share the work;
# JAX compiles every new shape, so the heavier notebooks run on torch or TF.
RUNS_ON = {
    "pretraining_on_your_images": "jax",
    "downstream_on_real_data": "tensorflow",
    "backbones": "torch",
    "image_and_text": "torch",
    "scale": "torch",
    "dense_tasks": "torch",
    "video_and_audio": "jax",
    "several_devices": "jax",
    "pretrain_from_tfds": "tensorflow",
    "pretrain_from_folder": "jax",
    "finetune": "torch",
    "probe": "tensorflow",
    "inpaint": "torch",
    "image_text_qa": "torch",
    "retrieval": "torch",
    "detect": "torch",
}


def backend_for(path, index):
    name = os.path.splitext(os.path.basename(path))[0]
    return RUNS_ON.get(name, BACKENDS[index % len(BACKENDS)])


def name_of(path):
    return os.path.splitext(os.path.basename(path))[0]


def without_cell_ids(notebook):
    """The notebook minus its cells' ids, which jupytext draws at random."""
    for cell in notebook["cells"]:
        cell.pop("id", None)
    return notebook


def test_guides_exist():
    assert GUIDES, "guides/ has no .py sources"


def test_every_backend_runs_a_guide():
    runs = {backend_for(source, i) for i, source in enumerate(GUIDES)}
    assert runs == set(BACKENDS), f"guides run only on {sorted(runs)}"


@pytest.mark.parametrize("source", GUIDES, ids=name_of)
def test_notebook_is_what_jupytext_makes_of_the_source(source):
    import jupytext

    notebook = os.path.splitext(source)[0] + ".ipynb"
    assert os.path.exists(notebook), f"run: jupytext --to ipynb {source}"
    expected = without_cell_ids(
        json.loads(jupytext.writes(jupytext.read(source), fmt="ipynb")))
    with open(notebook) as f:
        committed = without_cell_ids(json.load(f))
    assert committed == expected, (
        f"{notebook} differs from its source; regenerate it with "
        f"`jupytext --to ipynb {os.path.relpath(source, ROOT)}`"
    )


@pytest.mark.parametrize("source", GUIDES, ids=name_of)
def test_guide_runs_top_to_bottom(source, tmp_path):
    index = GUIDES.index(source)
    if keras.backend.backend() != backend_for(source, index):
        pytest.skip(f"runs on {backend_for(source, index)} in CI")
    import nbclient
    import nbformat

    notebook = nbformat.read(os.path.splitext(source)[0] + ".ipynb", 4)
    client = nbclient.NotebookClient(
        notebook, timeout=600, kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()


@pytest.mark.parametrize("script", EXAMPLES, ids=name_of)
def test_example_runs_quick(script, tmp_path):
    index = EXAMPLES.index(script)
    if keras.backend.backend() != backend_for(script, index + 1):
        pytest.skip(f"runs on {backend_for(script, index + 1)} in CI")
    env = dict(os.environ, PYTHONPATH=ROOT)
    for flags in (["--help"], ["--quick"]):  # --help: parsed before imports
        done = subprocess.run(
            [sys.executable, script, *flags], cwd=tmp_path, env=env,
            capture_output=True, text=True, timeout=900,
        )
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
