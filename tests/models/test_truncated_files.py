"""A file cut short (a killed copy, a full disk) gives an error naming it,
whichever way it is loaded."""

import os
import shutil

import keras
import pytest

from keras_simmim import SimMIMClassifier
from keras_simmim import SimMIMModel
from tests.conftest import tiny_vit


def truncate(path):
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[: len(data) // 2])


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp("saved")
    model = SimMIMModel(tiny_vit(), mask_patch_size=8, seed=0)
    model.save(root / "m.keras")
    model.save_weights(root / "m.weights.h5")
    model.save_to_preset(root / "preset")
    model.backbone.save_to_preset(root / "backbone")
    SimMIMClassifier(tiny_vit(), num_classes=3).save_weights(
        root / "c.weights.h5"
    )
    return root


def test_truncated_keras_file(saved, tmp_path):
    path = tmp_path / "m.keras"
    shutil.copy(saved / "m.keras", path)
    truncate(path)
    # Keras's own loader: a ValueError naming the file.
    with pytest.raises(ValueError, match=str(path)):
        keras.saving.load_model(path)


@pytest.mark.parametrize("kind", ["simmim", "classifier"])
def test_truncated_weights_file(saved, tmp_path, kind):
    source = {"simmim": "m.weights.h5", "classifier": "c.weights.h5"}[kind]
    path = tmp_path / source
    shutil.copy(saved / source, path)
    truncate(path)
    model = (
        SimMIMModel(tiny_vit(), mask_patch_size=8)
        if kind == "simmim"
        else SimMIMClassifier(tiny_vit(), num_classes=3)
    )
    with pytest.raises(ValueError, match=f"{path}.*truncated"):
        model.load_weights(path)
    with pytest.raises(ValueError, match="missing.weights.h5.*cannot be read"):
        model.load_weights(tmp_path / "missing.weights.h5")


@pytest.mark.parametrize(
    "preset, name",
    [("preset", "simmim.weights.h5"), ("preset", "simmim.json"),
     ("backbone", "model.weights.h5")],
)
def test_truncated_preset_file(saved, tmp_path, preset, name):
    path = tmp_path / preset
    shutil.copytree(saved / preset, path)
    truncate(path / name)
    with pytest.raises(ValueError, match=os.path.join(str(path), name)):
        SimMIMModel.from_preset(path, mask_patch_size=8)
