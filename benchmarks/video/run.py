"""Does SimMIM pretraining help a video model when labels are few?
(moving digits, keras-hub VideoPrism, tube masking)

    OMP_NUM_THREADS=1 KERAS_BACKEND=torch python benchmarks/video/run.py

For each seed: SimMIM-pretrains a small VideoPrism (8 frames of 32x32
grey, patch 8, width 64, 2 spatial + 2 temporal blocks) with VideoMAE's
tube masking (ratio 0.75) on every training clip of
`keras_simmim.data.moving_digits` without labels, and takes a random-init
VideoPrism of the same architecture (same seed). Then the few-label
protocol of `benchmarks/few_labels.py`: linear probe, k-NN and fine-tuning
on 5% and 10% of the training labels, each arm's settings chosen on the
validation clips, test read once, paired t-test over seeds. The label is
the direction the digit starts moving in (`labels="direction"`), which no
single frame shows.
"""

import os
import sys

import keras_hub

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

import few_labels  # noqa: E402

import keras_simmim  # noqa: E402
from keras_simmim.data import moving_digits  # noqa: E402
from keras_simmim.data import normalize  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = "benchmarks/video/run.py"


class VideoTask:
    def __init__(self, args):
        self.args = args

    def split(self, name, count, seed):
        clips, labels = moving_digits(
            count, frames=self.args.frames, image_size=32, seed=seed,
            split=name, labels=self.args.labels)
        return normalize(clips), labels

    def backbone(self, seed):
        return keras_hub.models.VideoPrismBackbone(
            num_frames=self.args.frames, patch_size=8, hidden_dim=64,
            intermediate_dim=128, num_heads=4, num_spatial_layers=2,
            num_temporal_layers=2, num_auxiliary_layers=0,
            image_shape=(32, 32, 1))

    def simmim(self, backbone, seed):
        return keras_simmim.SimMIMModel(
            backbone, mask_patch_size=8, mask_ratio=self.args.mask_ratio,
            mask_strategy="tube", seed=seed)


def add_arguments(parser):
    parser.add_argument("--train-clips", type=int, default=1500)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--mask-ratio", type=float, default=0.75)
    parser.add_argument("--labels", default="direction")


def main():
    few_labels.main(
        VideoTask, __doc__.split("\n")[0],
        "SimMIM on video with few labels (moving digits, VideoPrism)",
        SCRIPT, os.path.join(HERE, "results"), add_arguments)


if __name__ == "__main__":
    main()
