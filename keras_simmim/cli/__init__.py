"""The `keras-simmim` command.

Subcommands (each writes its outputs, including `report.json` /
`report.md` or `history.json`, into one output folder):

* `pretrain`: SimMIM pretraining on a folder of images, a TFDS dataset or
  built-in data; writes the model (`model.keras`), a preset (`preset/`), a
  reconstruction grid and the loss history, with an atomically written
  checkpoint after every epoch.
* `finetune`: classification fine-tuning (layer-wise lr decay, warm-up +
  cosine) from a pretrained run (`--from`) or from scratch.
* `probe`: linear probe and k-NN accuracy of frozen features.
* `evaluate`: accuracy of a classifier or the loss of a SimMIM model, by
  default on the data its run was trained on (as its folder records it);
  a classifier refuses data with another number of classes.
* `inpaint`: fills random masks; PSNR against classical baselines.
* `upscale`: super-resolution fine-tuning (x2, x4); PSNR / SSIM against
  bicubic upsampling and a before/after picture.

Training subcommands killed at any point (SIGKILL included) resume with the
same command from the last complete epoch, with the optimizer state, the
learning-rate schedule's position, the masking random state and the data
order restored, and end with the weights an uninterrupted run would have.
The default output folder is named after the run's settings, so "the same
command" finds it. A command that fails before writing anything removes the
output folder it created. Results print as aligned `name: value` lines;
`report.json` keeps them at full precision.
"""

import argparse

from keras_simmim.cli import common
from keras_simmim.cli.backbones import DEMO_BACKBONES
from keras_simmim.cli.pretrain import RUN_SETTINGS

SUBCOMMANDS = ("pretrain", "finetune", "probe", "evaluate", "inpaint",
               "upscale")

EXAMPLES = """\
Examples:
  keras-simmim pretrain                  # SimMIM on the built-in digits
  keras-simmim finetune --from RUN       # RUN: the folder pretrain printed
  keras-simmim probe --from RUN          # linear probe and k-NN accuracy
  keras-simmim inpaint --from RUN        # fill masks; PSNR vs baselines
  keras-simmim evaluate FT               # FT: the folder finetune printed
  keras-simmim pretrain --data ~/photos --image-size 64  # your own images

`keras-simmim COMMAND --help` lists a command's options and defaults.
"""


def build_parser():
    from keras_simmim.cli import evaluate
    from keras_simmim.cli import finetune
    from keras_simmim.cli import inpaint
    from keras_simmim.cli import pretrain
    from keras_simmim.cli import probe
    from keras_simmim.cli import upscale

    parser = argparse.ArgumentParser(
        prog="keras-simmim",
        description="SimMIM masked image modeling with Keras 3.",
        epilog=EXAMPLES, formatter_class=common.HelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for module in (pretrain, finetune, probe, evaluate, inpaint, upscale):
        module.add_parser(commands)
    return parser


def main(argv=None):
    """Runs the command line `argv` (default `sys.argv[1:]`)."""
    args = build_parser().parse_args(argv)
    common.ensure_backend(args.backend, argv)
    with common.removing_empty_folders_on_failure():
        args.run(args)
    return 0


__all__ = ["DEMO_BACKBONES", "RUN_SETTINGS", "SUBCOMMANDS", "build_parser",
           "main"]
