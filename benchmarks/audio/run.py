"""Does SimMIM pretraining help an audio model when labels are few?
(eSpeak NG keywords, log-mel spectrograms, a keras-hub ViT)

    OMP_NUM_THREADS=1 KERAS_BACKEND=torch python benchmarks/audio/run.py

For each seed: SimMIM-pretrains a small ViT (64 mel bands x 96 frames of
10 ms, patch 8: an 8 x 12 grid; width 64, 4 blocks) with AudioMAE's random
patch masking at ratio 0.8 on every training clip of
`keras_simmim.data.spoken_words` (10 Speech Commands keywords; the splits
share no voice) without labels, and takes a random-init ViT of the same
architecture (same seed). Then the few-label protocol of
`benchmarks/few_labels.py`: linear probe, k-NN and fine-tuning on 5% and
10% of the training labels, each arm's settings chosen on the validation
clips, test read once, paired t-test over seeds.
"""

import os
import sys

import keras_hub

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

import few_labels  # noqa: E402

import keras_simmim  # noqa: E402
from keras_simmim.data import spectrograms  # noqa: E402
from keras_simmim.data import spoken_words  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = "benchmarks/audio/run.py"
MELS, FRAMES = 64, 96


class AudioTask:
    def __init__(self, args):
        self.args = args

    def split(self, name, count, seed):
        waveforms, labels = spoken_words(count, seed=seed, split=name)
        return spectrograms(waveforms, num_mels=MELS, frames=FRAMES), labels

    def backbone(self, seed):
        return keras_hub.models.ViTBackbone(
            image_shape=(MELS, FRAMES, 1), patch_size=8, num_layers=4,
            num_heads=4, hidden_dim=64, mlp_dim=128)

    def simmim(self, backbone, seed):
        return keras_simmim.SimMIMModel(
            backbone, mask_patch_size=8, mask_ratio=self.args.mask_ratio,
            mask_strategy=self.args.mask_strategy, seed=seed)


def add_arguments(parser):
    parser.add_argument("--train-clips", type=int, default=2000)
    parser.add_argument("--mask-ratio", type=float, default=0.8)
    parser.add_argument("--mask-strategy", default="random",
                        choices=("random", "time", "frequency"))


def main():
    few_labels.main(
        AudioTask, __doc__.split("\n")[0],
        "SimMIM on audio with few labels (spoken keywords, ViT)", SCRIPT,
        os.path.join(HERE, "results"), add_arguments)


if __name__ == "__main__":
    main()
