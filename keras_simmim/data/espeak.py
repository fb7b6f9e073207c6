"""A minimal binding to the eSpeak NG speech synthesiser (its C library).

The library comes from the `espeakng-loader` wheel (`pip install
keras-simmim[audio]`) or, failing that, from the system (Debian's
`libespeak-ng1`, installed with `espeak-ng`). Only what `spoken_words`
needs is bound: synchronous synthesis of one word to 16-bit samples, with
a voice, a speaking rate and a pitch.

eSpeak NG keeps state from one utterance to the next (and draws noise from
its own random stream), so the same word comes out differently each time
within one process. `synthesize` therefore runs the whole list of words in
a new Python process (this file run as a script, which imports nothing of
keras_simmim) with the random stream seeded: the same list gives the same
samples, bit for bit.
"""

import ctypes
import ctypes.util
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

# speak_lib.h
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_ESPEAK_RATE = 1
_ESPEAK_PITCH = 3
_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
    ctypes.c_void_p)

INSTALL_HINT = (
    "spoken_words needs the eSpeak NG speech synthesiser: pip install "
    "'keras-simmim[audio]' (the espeakng-loader wheel), or install "
    "Debian's espeak-ng package (apt-get install espeak-ng)."
)


class ESpeak:
    """The initialised eSpeak NG library (synchronous synthesis); one per
    process, since the library keeps global state.

    Raises:
        ImportError: no eSpeak NG library can be found (the message says
            what to install).
        RuntimeError: the library is found but does not start.
    """

    def __init__(self):
        library, data = _find_library()
        self.lib = ctypes.CDLL(library)
        self.lib.espeak_Initialize.restype = ctypes.c_int
        self.sample_rate = self.lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, data, 0)
        if self.sample_rate <= 0:
            raise RuntimeError(
                f"eSpeak NG ({library}) failed to initialise (returned "
                f"{self.sample_rate}). {INSTALL_HINT}")
        self._chunks = []

        def collect(wav, count, events):
            if count > 0:
                self._chunks.append(
                    np.ctypeslib.as_array(wav, shape=(count,)).copy())
            return 0

        self._callback = _CALLBACK(collect)  # kept alive with the instance
        self.lib.espeak_SetSynthCallback(self._callback)
        self.lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        self.lib.espeak_ng_SetRandSeed(0)

    def say(self, text, voice="en", rate=175, pitch=50):
        """`text` spoken by `voice` at `rate` words per minute and `pitch`
        (0-100): float32 samples in [-1, 1] at `sample_rate` Hz."""
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ValueError(f"eSpeak NG has no voice {voice!r}.")
        self.lib.espeak_SetParameter(_ESPEAK_RATE, int(rate), 0)
        self.lib.espeak_SetParameter(_ESPEAK_PITCH, int(pitch), 0)
        self._chunks.clear()
        data = text.encode()
        status = self.lib.espeak_Synth(
            ctypes.c_char_p(data), ctypes.c_size_t(len(data) + 1), 0,
            _POS_CHARACTER, 0, 0, None, None)
        self.lib.espeak_Synchronize()
        if status != 0 or not self._chunks:
            raise RuntimeError(
                f"eSpeak NG could not speak {text!r} (status {status}).")
        return np.concatenate(self._chunks).astype("float32") / 32768.0


def _find_library():
    """`(library path, data directory as bytes or None)`."""
    try:
        import espeakng_loader
    except ImportError:
        espeakng_loader = None
    if espeakng_loader is not None:
        data = os.path.dirname(espeakng_loader.get_data_path())
        return espeakng_loader.get_library_path(), data.encode()
    found = ctypes.util.find_library("espeak-ng")
    if found is None:
        raise ImportError(INSTALL_HINT)
    return found, None


def synthesize(jobs):
    """Speaks `jobs`, a list of `(text, voice, rate, pitch)`, in a new
    process (see the module doc). Returns `(sample_rate, [float32 arrays])`.

    Raises:
        ImportError: no eSpeak NG library (checked here, before starting).
        RuntimeError: the synthesis process failed (its message included).
    """
    _find_library()
    with tempfile.TemporaryDirectory() as folder:
        request = os.path.join(folder, "jobs.json")
        result = os.path.join(folder, "speech.npz")
        with open(request, "w") as file:
            json.dump([list(job) for job in jobs], file)
        done = subprocess.run(
            [sys.executable, os.path.abspath(__file__), request, result],
            capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(
                "eSpeak NG synthesis failed:\n" + done.stderr[-2000:])
        with np.load(result) as speech:
            return int(speech["sample_rate"]), [
                speech[str(i)] for i in range(len(jobs))]


def _main(request, result):
    engine = ESpeak()
    with open(request) as file:
        jobs = json.load(file)
    arrays = {str(i): engine.say(text, voice, rate, pitch)
              for i, (text, voice, rate, pitch) in enumerate(jobs)}
    np.savez(result, sample_rate=engine.sample_rate, **arrays)


if __name__ == "__main__":
    _main(*sys.argv[1:3])
