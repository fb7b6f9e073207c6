"""Loading and saving SimMIM models as preset directories."""

from keras_simmim.presets.preset_io import load_preset
from keras_simmim.presets.preset_io import save_preset

__all__ = ["load_preset", "save_preset"]
