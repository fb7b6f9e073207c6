"""Built-in audio: keyword clips spoken by eSpeak NG, and the log-mel
spectrogram images audio SimMIM models."""

import numpy as np

from keras_simmim.utils.validation import check_choice
from keras_simmim.utils.validation import check_pair
from keras_simmim.utils.validation import check_positive_int
from keras_simmim.utils.validation import check_seed

# Ten of Speech Commands' keywords.
SPEECH_COMMANDS_WORDS = (
    "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7",
             "f1", "f2", "f3", "f4", "f5")
VOICES = tuple(f"{base}+{v}" for base in ("en", "en-us") for v in _VARIANTS)
# Speakers never shared between splits, as Speech Commands splits them.
_SPLIT_VOICES = {
    "test": ("en-us+m3", "en+f2", "en-us+f4", "en+m6"),
    "validation": ("en+m2", "en-us+f1", "en-us+m7"),
}
_SPLIT_VOICES["train"] = tuple(
    v for v in VOICES
    if v not in _SPLIT_VOICES["test"] + _SPLIT_VOICES["validation"])
SPLITS = ("train", "validation", "test")


def spoken_words(
    num_clips,
    words=SPEECH_COMMANDS_WORDS,
    sample_rate=16000,
    seed=0,
    split="train",
    duration=1.0,
    snr_db=(5.0, 30.0),
):
    """Keyword clips in the style of Speech Commands, spoken by eSpeak NG.

    Every clip is one word of `words`, spoken by one of the split's voices
    (eSpeak NG's English and American voices in 12 variants; the train,
    validation and test splits share no voice) at a random speaking rate
    (120-220 words per minute) and pitch (20-80 of 100), placed at a random
    offset in a clip of `duration` seconds, scaled to a random loudness
    (peak 0.1-0.9) and mixed with background noise (white noise through a
    random low-pass, at a signal-to-noise ratio drawn from `snr_db`).
    Nothing is downloaded: the speech is synthesised on this machine, and
    the same seed gives the same clips.

    Args:
        num_clips: int >= 1.
        words: sequence of strings (the classes, in label order).
        sample_rate: int, Hz of the returned waveforms.
        seed: int.
        split: `"train"`, `"validation"` or `"test"` (which voices).
        duration: float, seconds per clip (longer words are cut).
        snr_db: `(low, high)` signal-to-noise ratio in dB.

    Returns:
        `(waveforms, labels)`: float32 `(num_clips, round(duration *
        sample_rate))` in [-1, 1], and int32 `(num_clips,)` indices into
        `words`.

    Raises:
        ImportError: eSpeak NG is not installed (the message says how).
        ValueError / TypeError: an argument out of range, naming it.

    Example:

    >>> waveforms, labels = spoken_words(4, seed=0)
    >>> waveforms.shape, waveforms.dtype, labels.tolist()
    ((4, 16000), dtype('float32'), [8, 6, 5, 2])
    """
    check_positive_int("num_clips", num_clips)
    check_positive_int("sample_rate", sample_rate)
    check_choice("split", split, SPLITS)
    check_seed("seed", seed)
    if isinstance(words, str) or not len(words) or not all(
            isinstance(w, str) and w.strip() for w in words):
        raise ValueError(
            "`words` must be a sequence of non-empty strings. Received: "
            f"words={words!r}.")
    if not isinstance(duration, (int, float)) or duration <= 0:
        raise ValueError(
            f"`duration` must be a positive number of seconds. Received: "
            f"duration={duration!r}.")
    low_snr, high_snr = check_pair("snr_db", snr_db, "(low, high) in dB")
    if low_snr > high_snr:
        raise ValueError(
            f"`snr_db` must have low <= high. Received: snr_db={snr_db!r}.")
    from scipy import signal

    from keras_simmim.data.espeak import synthesize

    rng = np.random.default_rng(seed)
    samples = int(round(duration * sample_rate))
    voices = _SPLIT_VOICES[split]
    labels = rng.integers(0, len(words), size=num_clips).astype("int32")
    jobs = [(words[label], voices[rng.integers(len(voices))],
             int(rng.integers(120, 221)), int(rng.integers(20, 81)))
            for label in labels]
    rate, speeches = synthesize(jobs)
    waveforms = np.zeros((num_clips, samples), "float32")
    for index, speech in enumerate(speeches):
        speech = signal.resample_poly(
            speech, sample_rate, rate).astype("float32")
        speech = speech[:samples]
        start = rng.integers(0, samples - len(speech) + 1)
        clip = np.zeros(samples, "float32")
        clip[start:start + len(speech)] = speech
        clip *= rng.uniform(0.1, 0.9) / max(float(np.abs(clip).max()), 1e-6)
        noise = rng.normal(size=samples)
        cutoff = rng.uniform(0.1, 0.9)  # of the Nyquist frequency
        noise = signal.lfilter(*signal.butter(2, cutoff), noise)
        power = np.mean(clip[start:start + len(speech)] ** 2)
        snr = 10 ** (rng.uniform(low_snr, high_snr) / 10)
        noise *= np.sqrt(power / snr / max(np.mean(noise ** 2), 1e-12))
        waveforms[index] = np.clip(clip + noise, -1.0, 1.0)
    return waveforms, labels


def spectrograms(waveforms, sample_rate=16000, num_mels=64, frames=None,
                 batch_size=256):
    """Normalised log-mel spectrogram images of waveforms.

    Runs `keras_simmim.layers.LogMelSpectrogram` (Keras's
    `keras.layers.MelSpectrogram`, 25 ms windows, 10 ms hop, in dB,
    standardised per clip) over `waveforms` in batches: frequency on the
    rows (highest band at the top), time on the columns.

    Args:
        waveforms: float array `(n, samples)`.
        sample_rate: int, their sample rate in Hz.
        num_mels: int, the images' height.
        frames: int or None, the images' width (None: every 10 ms frame).
        batch_size: int.

    Returns:
        float32 numpy array `(n, num_mels, frames, 1)`.

    Raises:
        ValueError: `waveforms` is not a 2-D batch, or an argument is out
            of range (naming it).

    Example:

    >>> waveforms = np.random.default_rng(0).normal(size=(2, 16000))
    >>> spectrograms(waveforms, num_mels=32, frames=96).shape
    (2, 32, 96, 1)
    """
    import keras

    from keras_simmim.layers import LogMelSpectrogram

    waveforms = np.asarray(waveforms, "float32")
    if waveforms.ndim != 2:
        raise ValueError(
            "`waveforms` must be a 2-D batch (n, samples). Received shape: "
            f"{waveforms.shape}.")
    check_positive_int("batch_size", batch_size)
    front_end = LogMelSpectrogram(
        sample_rate=sample_rate, num_mels=num_mels, frames=frames)
    return np.concatenate([
        np.asarray(keras.ops.convert_to_numpy(
            front_end(waveforms[i:i + batch_size])), "float32")
        for i in range(0, len(waveforms), batch_size)
    ])
