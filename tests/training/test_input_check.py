"""`check_inputs=True` stops training at the first batch with NaN/inf."""

import keras
import numpy as np
import pytest

from keras_simmim import SimMIMModel
from keras_simmim.training import ResumableCheckpoint
from tests.conftest import tiny_vit


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite_inputs_name_the_batch(images, bad, tmp_path):
    model = SimMIMModel(tiny_vit(), mask_patch_size=8, seed=0,
                        check_inputs=True)
    data = images[:16].copy()
    data[9, 3, 4, 1] = bad  # batch 2 with batch_size 4
    checkpoint = ResumableCheckpoint(tmp_path)
    with pytest.raises(ValueError, match="1 non-finite .* batch 2 of epoch 0"):
        model.fit(data, batch_size=4, shuffle=False, verbose=0,
                  callbacks=[checkpoint])
    assert checkpoint.last_saved is None  # nothing bad was saved
    # Clean data trains, and the count is reported as a metric.
    history = model.fit(images[:16], batch_size=4, verbose=0)
    assert history.history["nonfinite_inputs"] == [0.0]


def test_check_inputs_is_off_by_default_and_serialised(images, tmp_path):
    plain = SimMIMModel(tiny_vit(), mask_patch_size=8)
    history = plain.fit(images[:8], batch_size=4, verbose=0)
    assert "nonfinite_inputs" not in history.history
    checked = SimMIMModel(tiny_vit(), mask_patch_size=8, check_inputs=True)
    path = str(tmp_path / "checked.keras")
    checked.save(path)
    assert keras.saving.load_model(path).check_inputs is True
    with pytest.raises(TypeError, match="check_inputs"):
        SimMIMModel(tiny_vit(), mask_patch_size=8, check_inputs="yes")
