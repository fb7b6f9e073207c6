"""Flags shared by the labelled subcommands (finetune, probe)."""

from keras_simmim.cli import common
from keras_simmim.cli import sources
from keras_simmim.cli.backbones import BACKBONE_HELP
from keras_simmim.cli.backbones import DEMO_BACKBONES
from keras_simmim.cli.backbones import add_depth_flag


def add_backbone_flags(parser):
    """`--from`, and the random-init `--backbone` used without it."""
    parser.add_argument(
        "--from", dest="from_", default=None, metavar="PRETRAINED",
        help="A `keras-simmim pretrain` output folder, preset directory or "
        "SimMIMModel .keras file. Default: none, a random-init --backbone "
        "(the from-scratch baseline).",
    )
    parser.add_argument("--backbone", choices=sorted(DEMO_BACKBONES),
                        default="vit",
                        help=BACKBONE_HELP + " Used without --from.")
    add_depth_flag(parser, " Used without --from.")
    parser.add_argument(
        "--image-size", type=common.positive_int, default=32,
        help="Side of the images in pixels (a --from backbone built for a "
        "fixed size keeps its own).")
    parser.add_argument(
        "--patch-size", type=common.positive_int, default=4,
        help="Patch side in pixels of a random-init ViT / Swin --backbone.")


def add_backbone_and_data_flags(
    parser, batch_size=(32, "Images per training step.")
):
    """The backbone flags, --data, --labels-fraction, --batch-size
    (`batch_size`: its `(default, help)`) and --seed."""
    add_backbone_flags(parser)
    parser.add_argument(
        "--data", default="digits",
        help="digits, synthetic, tfds:NAME, or a folder with one "
        "subfolder per class (or train/ and test/ folders of those; "
        "without them 10%% of each class is held out for validation and "
        "10%% for testing).",
    )
    parser.add_argument(
        "--labels-fraction", type=common.fraction, default=1.0,
        help="Use this stratified fraction of the training labels "
        "(built-in data).",
    )
    default, help_text = batch_size
    parser.add_argument("--batch-size", type=common.positive_int,
                        default=default, help=help_text)
    parser.add_argument("--seed", type=int, default=0,
                        help="Seed of the random weights, the "
                        "--labels-fraction subset and the data order.")


def training_subset(args):
    """Indices of the labelled training subset, or None for all."""
    if args.labels_fraction >= 1.0:
        return None
    if sources.kind(args.data) != "builtin":
        raise SystemExit(
            "keras-simmim: --labels-fraction works with the built-in "
            "datasets; for your own data, put the labelled subset in its "
            "own folder."
        )
    from keras_simmim.data import stratified_subset

    _, labels = sources.builtin_arrays(args.data, "train", args.image_size)
    return stratified_subset(labels, args.labels_fraction, args.seed)


def image_channels_of(backbone):
    """The channel count `backbone` takes (3 when it does not say); the
    labelled data is converted to it."""
    shape = getattr(backbone, "image_shape", None)
    return int(shape[-1]) if shape and shape[-1] else 3


def image_size_of(backbone, args):
    shape = getattr(backbone, "image_shape", None)
    if shape and shape[0]:
        return int(shape[0])
    return args.image_size
