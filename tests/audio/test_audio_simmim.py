"""Audio SimMIM: eSpeak NG keyword clips, the log-mel front end (equal on
every backend), and SimMIM on spectrogram images with band masking."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_simmim import SimMIMModel
from keras_simmim.data import SPEECH_COMMANDS_WORDS
from keras_simmim.data import spectrograms
from keras_simmim.data import spoken_words
from keras_simmim.layers import LogMelSpectrogram
from keras_simmim.layers import RandomPatchMasking
from tests.conftest import tiny_vit
from tests.conftest import to_numpy

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
MELS, FRAMES = 32, 48

FRONT_END = """
import sys, numpy as np, keras
from keras_simmim.data import spectrograms
waveforms = np.load(sys.argv[1])
np.save(sys.argv[2], spectrograms(waveforms, num_mels=32, frames=48))
"""


def test_spoken_words_are_reproducible_split_by_voice_and_noisy():
    waveforms, labels = spoken_words(12, seed=1)
    assert waveforms.shape == (12, 16000) and waveforms.dtype == np.float32
    assert labels.dtype == np.int32
    assert set(labels.tolist()) <= set(range(len(SPEECH_COMMANDS_WORDS)))
    assert np.abs(waveforms).max() <= 1.0
    np.testing.assert_array_equal(waveforms, spoken_words(12, seed=1)[0])
    assert not np.allclose(spoken_words(12, seed=1, split="test")[0],
                           waveforms)
    # Background noise everywhere, speech louder somewhere in every clip.
    frames = waveforms.reshape(12, 40, 400)
    energy = (frames ** 2).mean(-1)
    assert (energy.min(1) > 0).all()
    assert (energy.max(1) > 3 * np.median(energy, 1)).all()
    short, _ = spoken_words(2, words=("go",), sample_rate=8000,
                            duration=0.5)
    assert short.shape == (2, 4000)


@pytest.mark.parametrize("kwargs, name", [
    (dict(num_clips=0), "num_clips"),
    (dict(num_clips=2, words="yes"), "words"),
    (dict(num_clips=2, split="dev"), "split"),
    (dict(num_clips=2, duration=0), "duration"),
    (dict(num_clips=2, snr_db=(30, 5)), "snr_db"),
])
def test_spoken_words_errors_name_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        spoken_words(**kwargs)


def test_front_end_finds_a_tone_and_equals_the_next_backend(tmp_path):
    t = np.arange(16000) / 16000
    tones = np.stack([np.sin(2 * np.pi * f * t) for f in (300, 2000)])
    waveforms, _ = spoken_words(2, seed=3)
    waveforms = np.concatenate([tones, waveforms]).astype("float32")
    images = spectrograms(waveforms, num_mels=MELS, frames=FRAMES)
    assert images.shape == (4, MELS, FRAMES, 1)
    np.testing.assert_allclose(images.mean((1, 2, 3)), 0, atol=1e-4)
    # Rows are frequency, highest at the top: 2 kHz peaks above 300 Hz.
    low, high = images[:2, :, 10, 0].argmax(1)
    assert high < low
    # Compared with the next backend in a cycle, so that CI's three runs
    # compare every pair (one subprocess each: about 20 s).
    source = tmp_path / "waveforms.npy"
    np.save(source, waveforms)
    cycle = ["tensorflow", "jax", "torch"]
    current = keras.backend.backend()
    for backend in [cycle[(cycle.index(current) + 1) % 3]]:
        out = tmp_path / f"{backend}.npy"
        subprocess.run(
            [sys.executable, "-c", FRONT_END, str(source), str(out)],
            check=True, cwd=ROOT, timeout=300,
            env={**os.environ, "KERAS_BACKEND": backend,
                 "TF_CPP_MIN_LOG_LEVEL": "3"})
        np.testing.assert_allclose(np.load(out), images, atol=2e-4,
                                   err_msg=backend)


def test_front_end_errors_name_the_argument(tmp_path):
    front_end = LogMelSpectrogram(sample_rate=16000, num_mels=MELS,
                                  frames=FRAMES)
    with pytest.raises(ValueError, match="2-D"):
        front_end(np.zeros((2, 1, 16000), "float32"))
    with pytest.raises(ValueError, match="sample_rate=8000"):
        front_end(np.zeros((2, 16000), "float32"), sample_rate=8000)
    with pytest.raises(ValueError, match="2-D"):
        spectrograms(np.zeros(16000))
    with pytest.raises(ValueError, match="max_freq"):
        LogMelSpectrogram(sample_rate=8000, max_freq=6000)
    path = str(tmp_path / "front_end.keras")
    keras.Sequential([keras.Input((16000,)), front_end]).save(path)
    restored = keras.saving.load_model(path).layers[-1]
    assert restored.get_config() == front_end.get_config()


@pytest.mark.parametrize("strategy", ["time", "frequency"])
def test_band_strategies_mask_whole_columns_or_rows(strategy):
    layer = RandomPatchMasking(4, 4, 0.5, seed=0, strategy=strategy)
    mask = to_numpy(layer(np.zeros((4, 32, 48, 1), "float32")))  # 8 x 12
    assert (mask.reshape(4, -1).sum(1) == 48).all()
    bands = mask.all(axis=1) if strategy == "time" else mask.all(axis=2)
    assert (bands.sum(1) == (6 if strategy == "time" else 4)).all()
    assert len({m.tobytes() for m in mask}) > 1


def test_simmim_on_spectrograms_with_a_non_square_grid():
    keras.utils.set_random_seed(0)
    waveforms, _ = spoken_words(16, seed=0)
    images = spectrograms(waveforms, num_mels=MELS, frames=FRAMES)
    model = SimMIMModel(tiny_vit(image_shape=(MELS, FRAMES, 1)),
                        mask_patch_size=8, mask_ratio=0.8,
                        mask_strategy="time", seed=0)
    assert model.mask_shape == (8, 12)
    outputs = model.predict(images[:2], verbose=0)
    assert outputs["reconstruction"].shape == (2, MELS, FRAMES, 1)
    masked_columns = outputs["mask"].all(axis=1).sum(1)
    assert (masked_columns >= 9).all()  # 0.8 of 12 columns, rounded up
    model.compile(optimizer=keras.optimizers.AdamW(3e-3))
    losses = model.fit(images, batch_size=8, epochs=10,
                       verbose=0).history["loss"]
    assert np.mean(losses[-3:]) < 0.85 * losses[0], losses
