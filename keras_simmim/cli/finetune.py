"""`keras-simmim finetune`: classification fine-tuning, resumable."""

import os
import time

from keras_simmim.cli import common
from keras_simmim.cli import sources
from keras_simmim.cli.downstream_flags import add_backbone_and_data_flags
from keras_simmim.cli.downstream_flags import training_subset
from keras_simmim.cli.downstream_run import finish_downstream_run
from keras_simmim.cli.downstream_run import open_downstream_run
from keras_simmim.cli.pretrain import epoch_seed
from keras_simmim.cli.pretrain import run_epochs

RUN_SETTINGS = (
    "from_", "backbone", "image_size", "patch_size", "data",
    "labels_fraction", "epochs", "batch_size", "learning_rate",
    "layer_decay", "weight_decay", "label_smoothing", "augment", "seed",
    "depth",
)


def add_parser(commands):
    import argparse

    parser = commands.add_parser(
        "finetune",
        help="Fine-tune a (pretrained) backbone for classification with the "
        "SimMIM recipe (layer-wise lr decay, warm-up + cosine).",
    )
    add_backbone_and_data_flags(parser)
    parser.add_argument("--epochs", type=common.positive_int, default=30,
                        help="Passes over the labelled training images.")
    parser.add_argument("--learning-rate", type=float, default=1e-3,
                        help="Peak learning rate (AdamW, warm-up + cosine).")
    parser.add_argument(
        "--layer-decay", type=float, default=None,
        help="Layer-wise lr decay (default 0.75 with --from, 1.0 without).",
    )
    parser.add_argument("--weight-decay", type=float, default=0.05,
                        help="AdamW weight decay.")
    parser.add_argument("--label-smoothing", type=float, default=0.1,
                        help="Label smoothing of the cross-entropy loss.")
    parser.add_argument(
        "--augment", action=argparse.BooleanOptionalAction, default=True,
        help="Random resized crop (scale 0.67-1); no flip (digits and text "
        "are not mirror symmetric).",
    )
    common.finish_parser(parser, "finetune", run)
    return parser


def evaluate_splits(model, args, image_size):
    metrics = {}
    for split in ("validation", "test"):
        data = sources.open_split(
            args.data, split, image_size, with_labels=True, batch_size=256,
            channels=model.image_shape[-1],
        )
        if data is not None:
            loss, accuracy = model.evaluate(data, verbose=0)[:2]
            metrics[f"{split}_accuracy"] = float(accuracy)
            metrics[f"{split}_loss"] = float(loss)
            if data.num_images is not None:
                metrics[f"{split}_images"] = data.num_images
    return metrics


def run(args):
    import keras

    from keras_simmim.downstream import SimMIMClassifier
    from keras_simmim.training import ResumableCheckpoint

    # Every check of the flags and --data before a backbone is loaded or
    # trained.
    subset = training_subset(args)
    sources.check_labelled_held_out(args.data, "measure the accuracy on")
    run = open_downstream_run(args, RUN_SETTINGS, "finetune")
    if run.complete:
        return run.output
    image_size, channels = run.image_size, run.channels

    def dataset(epoch):
        return sources.open_split(
            args.data, "train", image_size, with_labels=True,
            channels=channels, batch_size=args.batch_size, subset=subset,
            augment=args.augment, flip=False, shuffle=True,
            seed=epoch_seed(args.seed, epoch),
        )

    first = dataset(0)
    steps_per_epoch = sources.num_batches(first)
    num_classes = sources.num_classes(args.data, first, image_size)
    model = run.model
    if model is None:
        model = SimMIMClassifier(
            run.backbone, num_classes=num_classes,
            image_shape=(image_size, image_size, channels),
        )
        model.compile_for_finetuning(
            learning_rate=args.learning_rate,
            total_steps=max(2, args.epochs * steps_per_epoch),
            layer_decay=args.layer_decay, weight_decay=args.weight_decay,
            label_smoothing=args.label_smoothing,
        )
    sources.announce(args.data)
    print(
        f"keras-simmim finetune: backend={keras.backend.backend()}, "
        f"backbone {run.origin}, data={args.data} "
        f"({sources.describe(first, num_classes)} for training, "
        f"{steps_per_epoch} batches of {args.batch_size}), {args.epochs} "
        f"epochs, output folder: {os.path.abspath(run.output)}"
    )
    checkpoint = ResumableCheckpoint(run.checkpoints, run.settings,
                                     run.previous)
    start = time.time()
    run_epochs(model, dataset, args.epochs, run.initial_epoch, [checkpoint])
    metrics = evaluate_splits(model, args, image_size)
    metrics["train_seconds_this_process"] = round(time.time() - start, 1)
    return finish_downstream_run(run, model, "keras-simmim finetune",
                                 metrics, checkpoint.history)
