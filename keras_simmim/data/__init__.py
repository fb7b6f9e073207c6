"""Data: loaders, SimMIM's augmentation, built-in datasets (the digits
scattered on canvases for detection and segmentation, and moving digit
clips and spoken keywords, among them), normalisation, log-mel
spectrograms."""

from keras_simmim.data.audio import SPEECH_COMMANDS_WORDS
from keras_simmim.data.audio import spectrograms
from keras_simmim.data.audio import spoken_words
from keras_simmim.data.augmentation import ImagePreprocessor
from keras_simmim.data.builtin import BUILTIN_DATASETS
from keras_simmim.data.builtin import load_builtin
from keras_simmim.data.detection import BOUNDING_BOX_FORMATS
from keras_simmim.data.detection import check_detection_targets
from keras_simmim.data.detection import convert_boxes
from keras_simmim.data.detection import load_digit_detection
from keras_simmim.data.digits import load_digits
from keras_simmim.data.segmentation import DIGIT_SEGMENTATION_CLASSES
from keras_simmim.data.segmentation import check_segmentation_targets
from keras_simmim.data.segmentation import load_sort_of_clevr_segmentation
from keras_simmim.data.segmentation import load_digit_segmentation
from keras_simmim.data.moving_digits import DIRECTIONS
from keras_simmim.data.moving_digits import moving_digits
from keras_simmim.data.loaders import from_arrays
from keras_simmim.data.loaders import from_folder
from keras_simmim.data.loaders import from_tfds
from keras_simmim.data.loaders import list_image_files
from keras_simmim.data.normalization import GREY_MEAN
from keras_simmim.data.normalization import GREY_STD
from keras_simmim.data.normalization import IMAGENET_MEAN
from keras_simmim.data.normalization import IMAGENET_STD
from keras_simmim.data.normalization import channel_statistics
from keras_simmim.data.normalization import denormalize
from keras_simmim.data.normalization import normalize
from keras_simmim.data.shape_detection import CLEVR_CLASSES
from keras_simmim.data.shape_detection import load_sort_of_clevr_detection
from keras_simmim.data.shape_detection import synthetic_scene_detection
from keras_simmim.data.sort_of_clevr import language_prior_accuracy
from keras_simmim.data.sort_of_clevr import load_sort_of_clevr
from keras_simmim.data.sort_of_clevr import sort_of_clevr
from keras_simmim.data.subsets import stratified_subset
from keras_simmim.data.synthetic import SHAPE_NAMES
from keras_simmim.data.synthetic import synthetic_scenes

__all__ = [
    "BOUNDING_BOX_FORMATS",
    "BUILTIN_DATASETS",
    "CLEVR_CLASSES",
    "DIGIT_SEGMENTATION_CLASSES",
    "DIRECTIONS",
    "GREY_MEAN",
    "GREY_STD",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "ImagePreprocessor",
    "SHAPE_NAMES",
    "SPEECH_COMMANDS_WORDS",
    "channel_statistics",
    "check_detection_targets",
    "check_segmentation_targets",
    "convert_boxes",
    "denormalize",
    "from_arrays",
    "from_folder",
    "from_tfds",
    "language_prior_accuracy",
    "list_image_files",
    "load_builtin",
    "load_digit_detection",
    "load_digit_segmentation",
    "load_digits",
    "load_sort_of_clevr",
    "load_sort_of_clevr_detection",
    "load_sort_of_clevr_segmentation",
    "moving_digits",
    "normalize",
    "sort_of_clevr",
    "spectrograms",
    "spoken_words",
    "stratified_subset",
    "synthetic_scene_detection",
    "synthetic_scenes",
]
