"""`keras-simmim pretrain`: SimMIM pretraining, resumable."""

import argparse
import os
import time

import numpy as np

from keras_simmim.cli import common
from keras_simmim.cli import sources
from keras_simmim.cli.backbones import BACKBONE_HELP
from keras_simmim.cli.backbones import DEMO_BACKBONES
from keras_simmim.cli.backbones import add_depth_flag
from keras_simmim.cli.backbones import build_backbone
from keras_simmim import SimMIMModel

# Settings that define a run: resuming needs the same ones.
RUN_SETTINGS = (
    "data", "backbone", "epochs", "image_size", "batch_size", "num_images",
    "patch_size", "mask_patch_size", "mask_ratio", "learning_rate", "augment",
    "seed", "mask_strategy", "loss", "head", "channels", "depth",
)


def add_parser(commands):
    parser = commands.add_parser(
        "pretrain",
        help="Pretrain a small ViT, Swin or ResNet with SimMIM on a folder "
        "of images, a TFDS dataset or built-in data (no labels used).",
    )
    parser.add_argument(
        "--data", default="digits",
        help="digits (the real handwritten scans that ship with "
        "scikit-learn), synthetic, tfds:NAME, or a folder of images (10%% "
        "held out for validation and the previews, 10%% for testing, "
        "unless it has train/ and validation/ or test/ subfolders).",
    )
    parser.add_argument("--backbone", choices=sorted(DEMO_BACKBONES),
                        default="vit", help=BACKBONE_HELP)
    add_depth_flag(parser)
    parser.add_argument("--epochs", type=common.positive_int, default=40,
                        help="Passes over the training images.")
    parser.add_argument("--image-size", type=common.positive_int, default=32,
                        help="Side of the (square) model input in pixels.")
    parser.add_argument("--batch-size", type=common.positive_int, default=64,
                        help="Images per training step.")
    parser.add_argument(
        "--num-images", type=common.positive_int, default=None,
        help="Images per split of a built-in --data (default: all of the "
        "digits' 1259 training images; 2048 synthetic scenes).",
    )
    parser.add_argument("--patch-size", type=common.positive_int, default=4,
                        help="Side of the ViT / Swin patches in pixels.")
    parser.add_argument("--mask-patch-size", type=common.positive_int,
                        default=4, help="Side of a masked square in pixels "
                        "(4: a digit's stroke width at 32 px).")
    parser.add_argument("--mask-ratio", type=common.open_fraction,
                        default=0.6, help="Fraction of blocks masked, in "
                        "(0, 1).")
    parser.add_argument("--mask-strategy", choices=SimMIMModel.MASK_STRATEGIES,
                        default="random",
                        help="Where the masked blocks go.")
    parser.add_argument("--loss", choices=SimMIMModel.LOSSES, default="l1",
                        help="Pixel loss, or colour classification.")
    parser.add_argument("--head", choices=SimMIMModel.HEADS, default="linear",
                        help="Pixel decoder (linear: SimMIM's).")
    parser.add_argument("--learning-rate", type=float, default=1e-3,
                        help="Peak learning rate (AdamW, warm-up + cosine).")
    parser.add_argument(
        "--augment", action=argparse.BooleanOptionalAction, default=True,
        help="SimMIM's random resized crop and flip (--no-augment turns it "
        "off).",
    )
    parser.add_argument(
        "--channels", type=int, choices=(1, 3, 4), default=None,
        help="Image channels of the model: 1 (grey), 3 (RGB) or 4 (RGB + a "
        "fourth band); --data is converted to it. Default: the data's own "
        "(a folder of grey images trains a grey model).",
    )
    parser.add_argument("--seed", type=int, default=0,
                        help="Seed of the weights, masks, data order and "
                        "augmentation.")
    parser.add_argument(
        "--preview-every", type=common.positive_int, default=1,
        help="Write previews/epoch-NNNN.png (original / masked / "
        "reconstruction) every this many epochs.",
    )
    common.finish_parser(parser, "pretrain", run)
    return parser


def build_model(args, steps_per_epoch, channels=3):

    from keras_simmim import SimMIMModel
    from keras_simmim.downstream import warmup_cosine

    image_shape = (args.image_size, args.image_size, channels)
    model = SimMIMModel(
        build_backbone(args, image_shape),
        image_shape=image_shape,
        mask_patch_size=args.mask_patch_size,
        mask_ratio=args.mask_ratio,
        seed=args.seed,
        mask_strategy=args.mask_strategy,
        loss=args.loss,
        head=args.head,
    )
    steps = max(2, args.epochs * steps_per_epoch)
    # The recipe's AdamW and weight-decay exclusions, on a warm-up + cosine
    # schedule.
    model.compile(optimizer=model.default_optimizer(
        warmup_cosine(args.learning_rate, steps, max(1, steps // 10))))
    return model


def epoch_seed(seed, epoch):
    """Seed of one epoch's shuffling and augmentation: a resumed run
    rebuilds exactly the batches an uninterrupted run sees."""
    return int(seed) * 100_003 + int(epoch)


def run_epochs(model, make_dataset, epochs, initial_epoch, callbacks,
               validation=None):
    """One `fit()` per epoch on `make_dataset(epoch)`; stops on NaN.

    `callbacks[0]` is the run's `ResumableCheckpoint`.
    """
    checkpoint = callbacks[0]
    for epoch in range(initial_epoch, epochs):
        if checkpoint.stopped_on_nan:
            break
        model.fit(
            make_dataset(epoch), epochs=epoch + 1, initial_epoch=epoch,
            shuffle=False,
            validation_data=validation,
            callbacks=list(callbacks) + [common.run_progress(epochs)],
            verbose=common.verbosity(),
        )
    if checkpoint.stopped_on_nan:
        raise SystemExit(
            "keras-simmim: the loss became NaN/inf; training stopped. The "
            f"last good checkpoint is in {checkpoint.directory!r}; rerun "
            "with a lower --learning-rate and --overwrite."
        )


def next_commands(output, data):
    """The commands that use a finished pretraining run in `output`, with
    the `--data` each needs (none for the default digits)."""
    import shlex

    run = shlex.quote(os.path.abspath(output))
    if data == "digits":
        labelled = images = ""
    else:
        images = f" --data {shlex.quote(data)}"
        labelled = images if sources.has_classes(data) else (
            " --data LABELLED_FOLDER")
    lines = [
        f"keras-simmim finetune --from {run}{labelled}",
        f"keras-simmim probe --from {run}{labelled}",
        f"keras-simmim inpaint --from {run}{images}",
    ]
    text = "Next, use the pretrained backbone:\n" + "\n".join(
        f"  {line}" for line in lines)
    if "LABELLED_FOLDER" in labelled:
        text += ("\n  (LABELLED_FOLDER: a folder with one subfolder of "
                 "images per class)")
    return text


def preview_images(dataset, count=8):
    """`(images, splits)`: up to `count` held-out images for the previews,
    from the validation split, then the test split; the training images
    only when there is no held-out part."""
    taken, splits = [], []
    for split in sources.HELD_OUT_SPLITS:
        data = dataset(split)
        if data is not None and len(taken) < count:
            images = sources.first_images(data, count - len(taken))
            taken += list(images)
            splits.append(split)
    if not taken:
        return sources.first_images(dataset("train"), count), ["train"]
    return np.stack(taken), splits


def run(args):
    import keras

    from keras_simmim.training import ResumableCheckpoint
    from keras_simmim.training import save_model_atomically
    from keras_simmim.visualization import ReconstructionPreview
    from keras_simmim.visualization import save_reconstruction_grid

    sources.check(args.data)  # before anything is written or trained
    settings = common.fingerprint(args, RUN_SETTINGS)
    output, checkpoints, resume = common.prepare_output(
        args.output, args.overwrite, settings, "pretrain"
    )
    history_path = os.path.join(output, "history.json")
    if resume and resume[1]["epoch"] >= args.epochs:
        if os.path.exists(history_path):
            print(f"keras-simmim: the run in {output!r} is already complete.")
            print(f"Output folder: {os.path.abspath(output)}")
            print(next_commands(output, args.data))
            return output
    keras.utils.set_random_seed(args.seed)
    channels = args.channels  # None: the data's own, fixed below

    def dataset(split, epoch=None):
        return sources.open_split(
            args.data, split, args.image_size, with_labels=False,
            channels=channels,
            batch_size=args.batch_size, num_images=args.num_images,
            augment=args.augment and epoch is not None,
            shuffle=epoch is not None,
            seed=epoch_seed(args.seed, epoch or 0),
        )

    train = dataset("train", 0)
    steps_per_epoch = sources.num_batches(train)
    if resume is None:
        channels = sources.channels_of(train)
        model = build_model(args, steps_per_epoch, channels)
        initial_epoch, previous = 0, {}
    else:
        model = common.load_checkpoint_model(resume)
        channels = model.image_shape[-1]  # the data follows the model
        initial_epoch, previous = resume[1]["epoch"], resume[1]["history"]
        print(f"keras-simmim: resuming {output!r} after epoch {initial_epoch}")
    validation = dataset("validation")
    sources.announce(args.data)
    print(
        f"keras-simmim pretrain: backend={keras.backend.backend()}, "
        f"backbone={args.backbone} ({model.backbone.count_params():,} "
        f"parameters, patch {model.patch_size}, stride "
        f"{model.adapter.stride}), data={args.data} "
        f"({sources.describe(train)} for training, {steps_per_epoch} "
        f"batches of {args.batch_size}, {args.image_size}px, {channels} "
        f"channel(s)), "
        f"{args.epochs} epochs, output folder: {os.path.abspath(output)}"
    )
    checkpoint = ResumableCheckpoint(checkpoints, settings, previous)
    # Previews of held-out images: how well masked regions of images the
    # model never trained on are filled.
    preview, preview_splits = preview_images(dataset)
    previews = ReconstructionPreview(
        preview, os.path.join(output, "previews"), every=args.preview_every
    )
    start = time.time()
    run_epochs(model, lambda e: dataset("train", e), args.epochs,
               initial_epoch, [checkpoint, previews], validation)
    seconds = time.time() - start
    save_model_atomically(model, os.path.join(output, "model.keras"))
    model.save_to_preset(os.path.join(output, "preset"), overwrite=True)
    grid = save_reconstruction_grid(
        os.path.join(output, "reconstructions.png"), model, preview
    )
    common.write_json_atomically(
        history_path,
        {
            "backend": keras.backend.backend(),
            "backbone": args.backbone,
            "settings": settings,
            "data": sources.recorded(args.data),
            "train_images": getattr(train, "num_images", None),
            "preview_splits": preview_splits,
            "resumed_from_epoch": initial_epoch,
            "train_seconds_this_process": round(seconds, 1),
            "history": checkpoint.history,
        },
    )
    print(f"Wrote {output}/model.keras, {output}/preset/, {grid} "
          f"(previews of {len(preview)} {' and '.join(preview_splits)} "
          "images)")
    print(f"Output folder: {os.path.abspath(output)}")
    print(next_commands(output, args.data))
    return output
