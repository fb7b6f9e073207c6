"""The package's layering, as docs/architecture.md states it, checked on
the source (an import-linter equivalent that needs no extra tool): which
part may import which (read from the page's rules table, so the page and
the code cannot drift apart), where TensorFlow / JAX / torch may be
imported, that `cli/` and `examples/` use the public API only, and no
import cycles."""

import ast
import importlib
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "keras_simmim")
ARCHITECTURE = os.path.join(ROOT, "docs", "architecture.md")


def documented_rules():
    """Part -> the keras_simmim parts it may import (None: public names
    only), from the table between the import-rules markers of
    docs/architecture.md."""
    text = open(ARCHITECTURE).read()
    table = text.split("<!-- import-rules:start -->")[1].split(
        "<!-- import-rules:end -->")[0]
    rules = {}
    for line in table.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        names = re.findall(r"`([A-Za-z_]+)`", cells[0]) if cells else []
        if len(cells) != 2 or len(names) != 1:
            continue
        allowed = cells[1]
        rules[names[0]] = (
            None if "public names only" in allowed
            else set(re.findall(r"`([A-Za-z_]+)`", allowed)))
    return rules


# Subpackage (or top-level module) -> the keras_simmim parts it may import.
ALLOWED = {**documented_rules(), "__init__": None, "__main__": None}


def test_the_documented_rules_are_read():
    assert ALLOWED["layers"] == {"distribute", "utils"}
    assert ALLOWED["cli"] is None
    assert len(ALLOWED) >= 15, ALLOWED


# The only places that may import a backend framework: `data/` builds the
# tf.data pipelines, `distribute/` holds the replica helpers, `_startup`
# imports TensorFlow quietly for the command.
BACKEND_IMPORTS = {"data", "distribute", "_startup"}
FRAMEWORKS = ("tensorflow", "jax", "torch")


def python_files(folder):
    for directory, _, files in os.walk(folder):
        for name in sorted(files):
            if name.endswith(".py"):
                yield os.path.join(directory, name)


def imports(path):
    """`(module, names, line)` of every import in the file, lazy ones
    included."""
    tree = ast.parse(open(path).read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, (), node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module and (
            node.level == 0
        ):
            yield node.module, tuple(a.name for a in node.names), node.lineno


def part_of(path):
    relative = os.path.relpath(path, PACKAGE).split(os.sep)
    return relative[0][:-3] if len(relative) == 1 else relative[0]


def package_edges():
    edges = {}
    for path in python_files(PACKAGE):
        part = part_of(path)
        for module, _, line in imports(path):
            pieces = module.split(".")
            if pieces[0] == "keras_simmim" and len(pieces) > 1:
                if pieces[1] != part:
                    edges.setdefault(part, {}).setdefault(
                        pieces[1], []).append(f"{path}:{line}")
    return edges


def test_every_part_has_a_rule():
    parts = {part_of(path) for path in python_files(PACKAGE)}
    assert parts <= set(ALLOWED), parts - set(ALLOWED)


def test_subpackages_import_only_what_the_layering_allows():
    wrong = [
        f"{part} imports {target} ({places[0]})"
        for part, targets in package_edges().items()
        if ALLOWED[part] is not None
        for target, places in targets.items()
        if target not in ALLOWED[part]
    ]
    assert not wrong, "\n".join(wrong)


def test_backend_frameworks_only_in_data_and_distribute():
    wrong = [
        f"{path}:{line} imports {module}"
        for path in python_files(PACKAGE)
        if part_of(path) not in BACKEND_IMPORTS
        for module, _, line in imports(path)
        if module.split(".")[0] in FRAMEWORKS
    ]
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles_between_subpackages():
    edges = {part: set(targets) for part, targets in package_edges().items()}
    state = {}

    def visit(node, trail):
        if state.get(node) == "done":
            return
        assert state.get(node) != "open", " -> ".join(trail + [node])
        state[node] = "open"
        for target in sorted(edges.get(node, ())):
            if target not in ("__init__", "version"):
                visit(target, trail + [node])
        state[node] = "done"

    for node in sorted(edges):
        if node != "__init__":
            visit(node, [])


def public_names(module):
    loaded = importlib.import_module(module)
    names = set(getattr(loaded, "__all__", ()))
    return names


@pytest.mark.parametrize("folder", ["keras_simmim/cli", "examples", "guides"])
def test_cli_examples_and_guides_use_the_public_api(folder):
    wrong = []
    for path in python_files(os.path.join(ROOT, folder)):
        for module, names, line in imports(path):
            pieces = module.split(".")
            if pieces[0] != "keras_simmim" or pieces[1:2] == ["cli"]:
                continue
            where = f"{os.path.relpath(path, ROOT)}:{line}"
            if len(pieces) > 2:
                wrong.append(f"{where} imports private module {module}")
                continue
            public = public_names(module)
            if len(pieces) == 1:
                public |= set(ALLOWED) - {"__init__", "__main__"}
            wrong += [f"{where} imports {module}.{name}, not in its __all__"
                      for name in names if name not in public]
    assert not wrong, "\n".join(wrong)


def test_the_models_import_and_train_without_tensorflow():
    """On JAX and torch, `import keras_simmim` and a SimMIM `fit()` work on
    a machine without TensorFlow (a GPU image, say); the tf.data loaders
    say what they need."""
    import subprocess
    import sys

    import keras

    if keras.backend.backend() == "tensorflow":
        pytest.skip("the TensorFlow backend needs TensorFlow")
    script = (
        "import sys; sys.modules['tensorflow'] = None\n"  # import fails
        "import keras_hub, numpy as np, keras_simmim\n"
        "vit = keras_hub.models.ViTBackbone(image_shape=(16, 16, 3), "
        "patch_size=4, num_layers=1, num_heads=1, hidden_dim=8, mlp_dim=8)\n"
        "model = keras_simmim.SimMIMModel(vit, mask_patch_size=8)\n"
        "model.compile(optimizer=model.default_optimizer())\n"
        "history = model.fit(np.ones((4, 16, 16, 3), 'float32'), "
        "batch_size=2, verbose=0)\n"
        "assert np.isfinite(history.history['loss'][0])\n"
        "try:\n"
        "    keras_simmim.data.from_arrays(np.zeros((2, 16, 16, 3), 'uint8'))\n"
        "except ImportError as error:\n"
        "    assert 'pip install tensorflow' in str(error)\n"
        "else:\n"
        "    raise AssertionError('from_arrays ran without TensorFlow')\n"
        "print('ok')\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), (
        done.stderr[-2000:])
