"""`keras-simmim upscale`: super-resolution fine-tuning, resumable, with
PSNR / SSIM against bicubic upsampling."""

import os
import time

from keras_simmim.cli import common
from keras_simmim.cli import sources
from keras_simmim.cli.downstream_flags import add_backbone_flags
from keras_simmim.cli.downstream_run import finish_downstream_run
from keras_simmim.cli.downstream_run import open_downstream_run
from keras_simmim.cli.pretrain import epoch_seed
from keras_simmim.cli.pretrain import run_epochs

RUN_SETTINGS = (
    "from_", "backbone", "image_size", "patch_size", "data", "scale",
    "epochs", "batch_size", "learning_rate", "layer_decay", "augment", "seed",
    "depth",
)


def add_parser(commands):
    import argparse

    parser = commands.add_parser(
        "upscale",
        help="Fine-tune a (pretrained) backbone for super-resolution (x2, "
        "x4): bicubically blurred images -> originals; writes before/after "
        "pictures and PSNR / SSIM against bicubic upsampling.",
    )
    add_backbone_flags(parser)
    parser.add_argument(
        "--data", default="digits",
        help="digits, synthetic, tfds:NAME or a folder of images "
        "(train/ and test/ subfolders give the splits; without them "
        "10%% of the images are held out for validation and 10%% for "
        "testing).",
    )
    parser.add_argument("--scale", type=int, choices=(2, 4), default=2,
                        help="Upsampling factor.")
    parser.add_argument("--epochs", type=common.positive_int, default=20,
                        help="Passes over the training images.")
    parser.add_argument("--batch-size", type=common.positive_int, default=32,
                        help="Images per training step.")
    parser.add_argument("--learning-rate", type=float, default=1e-3,
                        help="Peak learning rate (AdamW, warm-up + cosine).")
    parser.add_argument(
        "--layer-decay", type=float, default=None,
        help="Layer-wise lr decay (default 0.75 with --from, 1.0 without).",
    )
    parser.add_argument(
        "--augment", action=argparse.BooleanOptionalAction, default=True,
        help="Random resized crops and flips of the training images.",
    )
    parser.add_argument("--split", default="test", choices=sources.SPLITS,
                        help="Split the metrics are measured on.")
    parser.add_argument("--num-images", type=common.positive_int, default=8,
                        help="Images in the before/after picture.")
    parser.add_argument("--seed", type=int, default=0,
                        help="Seed of the weights, data order and "
                        "augmentation.")
    common.finish_parser(parser, "upscale", run)
    return parser


def pairs(images, scale, batch_size):
    """`(blurred, original)` batches of `images` (numpy), in order."""
    import keras
    import numpy as np

    from keras_simmim.downstream import degrade

    blurred = np.asarray(keras.ops.convert_to_numpy(degrade(images, scale)))

    class Pairs(keras.utils.PyDataset):
        num_images = len(images)

        def __len__(self):
            return -(-len(images) // batch_size)

        def __getitem__(self, index):
            batch = slice(index * batch_size, (index + 1) * batch_size)
            return blurred[batch], images[batch]

    return Pairs()


def image_metrics(model, images):
    """PSNR (and SSIM with scikit-image) of the model and of bicubic
    upsampling on 8-bit pixels, averaged over images."""
    import keras
    import numpy as np

    from keras_simmim.downstream import image_quality

    blurred = np.asarray(keras.ops.convert_to_numpy(model.degrade(images)))
    restored = model.predict(blurred, batch_size=64, verbose=0)
    metrics = {}
    for name, pixels in (("bicubic", blurred), ("model", restored)):
        psnr, ssim = image_quality(pixels, images)
        metrics[f"psnr_{name}"] = psnr
        if ssim is not None:
            metrics[f"ssim_{name}"] = ssim
    metrics["psnr_gain_db"] = metrics["psnr_model"] - metrics["psnr_bicubic"]
    metrics["scale"] = model.scale
    metrics["images"] = int(len(images))
    return metrics, blurred, restored


def save_picture(path, images, blurred, restored, scale):
    """Columns: low resolution (nearest), bicubic, model, original."""
    import numpy as np
    from PIL import Image

    from keras_simmim.data import denormalize
    from keras_simmim.visualization import label_columns

    def pixels(x):
        return np.clip(np.round(denormalize(x)), 0, 255).astype("uint8")

    low = np.repeat(np.repeat(images[:, ::scale, ::scale], scale, 1), scale, 2)
    rows = [np.concatenate([pixels(c[i]) for c in (low, blurred, restored,
                                                    images)], axis=1)
            for i in range(len(images))]
    grid = np.concatenate(rows, axis=0)
    if grid.shape[-1] == 1:
        grid = grid[..., 0]
    zoom = max(1, 128 // images.shape[1])
    picture = Image.fromarray(grid).resize(
        (grid.shape[1] * zoom, grid.shape[0] * zoom), Image.NEAREST)
    label_columns(picture, (f"low resolution (1/{scale})", "bicubic",
                            "model", "original")).save(path)


def run(args):
    import keras

    from keras_simmim.downstream import SuperResolutionModel
    from keras_simmim.training import ResumableCheckpoint

    # Every check of --data before a backbone is loaded or trained.
    sources.check(args.data)
    sources.require_split(args.data, args.split)
    run = open_downstream_run(args, RUN_SETTINGS, "upscale",
                              own_files=("upscaled.png",))
    if run.complete:
        return run.output
    image_size, channels = run.image_size, run.channels

    def images_of(split, epoch=None):
        data = sources.open_split(
            args.data, split, image_size, with_labels=False,
            channels=channels, batch_size=256,
            augment=args.augment and epoch is not None,
            shuffle=epoch is not None, seed=epoch_seed(args.seed, epoch or 0),
        )
        if data is None:
            raise SystemExit(
                f"keras-simmim: --data {args.data} has no {split!r} split.")
        return sources.first_images(data)

    def dataset(epoch):
        return pairs(images_of("train", epoch), args.scale, args.batch_size)

    first = dataset(0)
    steps_per_epoch = len(first)
    model = run.model
    if model is None:
        try:
            model = SuperResolutionModel(
                run.backbone, scale=args.scale,
                image_shape=(image_size, image_size, channels))
        except ValueError as error:
            raise SystemExit(f"keras-simmim: {error}") from None
        model.compile_for_super_resolution(
            learning_rate=args.learning_rate,
            total_steps=max(2, args.epochs * steps_per_epoch),
            layer_decay=args.layer_decay,
        )
    sources.announce(args.data)
    print(
        f"keras-simmim upscale: backend={keras.backend.backend()}, backbone "
        f"{run.origin}, x{args.scale}, data={args.data} ({first.num_images} "
        f"images for training, {steps_per_epoch} batches of "
        f"{args.batch_size}, {image_size}px; scored on its {args.split!r} "
        f"split), {args.epochs} epochs, output folder: "
        f"{os.path.abspath(run.output)}"
    )
    checkpoint = ResumableCheckpoint(run.checkpoints, run.settings,
                                     run.previous)
    start = time.time()
    run_epochs(model, dataset, args.epochs, run.initial_epoch, [checkpoint])
    seconds = round(time.time() - start, 1)
    held_out = images_of(args.split)
    metrics, blurred, restored = image_metrics(model, held_out)
    metrics["train_seconds_this_process"] = seconds
    count = min(args.num_images, len(held_out))
    save_picture(os.path.join(run.output, "upscaled.png"), held_out[:count],
                 blurred[:count], restored[:count], args.scale)
    return finish_downstream_run(run, model, "keras-simmim upscale", metrics,
                                 checkpoint.history, split=args.split)
