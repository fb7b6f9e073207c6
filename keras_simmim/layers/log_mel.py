"""`LogMelSpectrogram`: waveforms to the normalised log-mel images that
audio SimMIM (AudioMAE / SSAST style) models."""

import math

import keras
from keras import ops

from keras_simmim.utils.validation import check_positive_int


@keras.saving.register_keras_serializable(package="keras_simmim")
class LogMelSpectrogram(keras.layers.Layer):
    """Waveforms -> normalised log-mel spectrogram images.

    The spectrogram is Keras's own `keras.layers.MelSpectrogram` (Hann
    window of `window_ms`, hop of `hop_ms`, power in dB; AudioMAE's 25 ms /
    10 ms framing by default). It is laid out as an image, frequency on the
    rows (the highest mel band at the top, as spectrograms are drawn) and
    time on the columns, cropped or zero-padded (at the end) to `frames`
    columns, then standardised per clip to zero mean and unit variance, so
    clips recorded at any loudness land on the same scale. A ViT then cuts
    it into (non-square grids of) patches, and the `"time"` / `"frequency"`
    masking strategies mask whole columns / rows.

    Args:
        sample_rate: int, samples per second the layer is built for (Hz).
        num_mels: int >= 2, mel bands: the image's height.
        frames: int or None, time columns: the image's width (None: as
            many as the waveform gives, `1 + (samples - window) // hop`).
        window_ms: float, STFT window length in milliseconds (25).
        hop_ms: float, STFT hop in milliseconds (10).
        min_freq: float, lowest mel band edge in Hz (20).
        max_freq: float or None, highest in Hz (None: `sample_rate / 2`).
        **kwargs: standard `keras.layers.Layer` arguments.

    Input shape:
        `(batch, samples)` float waveforms, any amplitude.

    Output shape:
        `(batch, num_mels, frames, 1)`, float32.

    Raises:
        ValueError: a waveform batch that is not 2-D, or
            `call(..., sample_rate=r)` with `r` other than `sample_rate`.

    Example:

    >>> import numpy as np
    >>> t = np.arange(16000) / 16000
    >>> tone = np.sin(2 * np.pi * 1000 * t)[None].astype("float32")
    >>> front_end = LogMelSpectrogram(sample_rate=16000, num_mels=32,
    ...                               frames=96)
    >>> image = keras.ops.convert_to_numpy(front_end(tone))
    >>> image.shape
    (1, 32, 96, 1)
    >>> round(float(image.mean()), 4), round(float(image.std()), 2)
    (0.0, 1.0)
    """

    def __init__(
        self,
        sample_rate=16000,
        num_mels=64,
        frames=None,
        window_ms=25.0,
        hop_ms=10.0,
        min_freq=20.0,
        max_freq=None,
        **kwargs,
    ):
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        check_positive_int("sample_rate", sample_rate)
        check_positive_int("num_mels", num_mels)
        if frames is not None:
            check_positive_int("frames", frames)
        for name, value in (("window_ms", window_ms), ("hop_ms", hop_ms)):
            if not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(
                    f"`{name}` must be a positive number of milliseconds. "
                    f"Received: {name}={value!r}."
                )
        nyquist = sample_rate / 2
        top = nyquist if max_freq is None else float(max_freq)
        if not 0 <= float(min_freq) < top <= nyquist:
            raise ValueError(
                "Mel bands need 0 <= min_freq < max_freq <= sample_rate / 2 "
                f"= {nyquist}. Received: min_freq={min_freq}, "
                f"max_freq={max_freq}."
            )
        self.sample_rate = int(sample_rate)
        self.num_mels = int(num_mels)
        self.frames = None if frames is None else int(frames)
        self.window_ms = float(window_ms)
        self.hop_ms = float(hop_ms)
        self.min_freq = float(min_freq)
        self.max_freq = None if max_freq is None else float(max_freq)
        self.window = int(round(sample_rate * window_ms / 1000))
        self.hop = int(round(sample_rate * hop_ms / 1000))
        self.mel = keras.layers.MelSpectrogram(
            fft_length=2 ** math.ceil(math.log2(self.window)),
            sequence_stride=self.hop,
            sequence_length=self.window,
            sampling_rate=self.sample_rate,
            num_mel_bins=self.num_mels,
            min_freq=self.min_freq,
            max_freq=top,
            power_to_db=True,
            dtype="float32",
            name="mel_spectrogram",
        )
        self.built = True

    def num_frames(self, samples):
        """Columns of the output for waveforms of `samples` samples."""
        if self.frames is not None:
            return self.frames
        return 1 + (int(samples) - self.window) // self.hop

    def _check(self, shape):
        if len(shape) != 2:
            raise ValueError(
                "`waveforms` must be a 2-D batch (batch, samples). Received "
                f"shape: {tuple(shape)}."
            )
        if shape[1] is not None and shape[1] < self.window:
            raise ValueError(
                f"Waveforms of {shape[1]} samples are shorter than one "
                f"window ({self.window} samples = {self.window_ms} ms at "
                f"{self.sample_rate} Hz)."
            )

    def call(self, waveforms, sample_rate=None):
        if sample_rate is not None and int(sample_rate) != self.sample_rate:
            raise ValueError(
                f"This front end is built for sample_rate={self.sample_rate}"
                f" Hz. Received: sample_rate={sample_rate}. Resample the "
                "waveforms, or build a LogMelSpectrogram for that rate."
            )
        self._check(tuple(waveforms.shape))
        waveforms = ops.cast(waveforms, "float32")
        power_db = self.mel(waveforms)  # (batch, num_mels, time), low first
        image = ops.flip(power_db, axis=1)
        if self.frames is not None:
            time = image.shape[2]
            if time >= self.frames:
                image = image[:, :, :self.frames]
            else:
                image = ops.pad(
                    image, ((0, 0), (0, 0), (0, self.frames - time)),
                    constant_values=ops.min(image))
        mean = ops.mean(image, axis=(1, 2), keepdims=True)
        std = ops.std(image, axis=(1, 2), keepdims=True)
        return ops.expand_dims((image - mean) / (std + 1e-5), -1)

    def compute_output_shape(self, input_shape):
        self._check(tuple(input_shape))
        samples = input_shape[1]
        frames = self.frames if samples is None else self.num_frames(samples)
        return (input_shape[0], self.num_mels, frames, 1)

    def get_config(self):
        config = super().get_config()
        config.update({
            "sample_rate": self.sample_rate,
            "num_mels": self.num_mels,
            "frames": self.frames,
            "window_ms": self.window_ms,
            "hop_ms": self.hop_ms,
            "min_freq": self.min_freq,
            "max_freq": self.max_freq,
        })
        return config
