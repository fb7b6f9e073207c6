"""`keras-simmim inpaint`: fill masked regions, with PSNR against
classical baselines."""

import os

from keras_simmim.cli import common
from keras_simmim.cli import sources


def add_parser(commands):
    parser = commands.add_parser(
        "inpaint",
        help="Inpaint random SimMIM masks on images with a pretrained "
        "model; writes a picture and PSNR against mean fill (and "
        "biharmonic inpainting when scikit-image is installed).",
    )
    parser.add_argument(
        "--from", dest="from_", required=True, metavar="PRETRAINED",
        help="A `keras-simmim pretrain` output folder, preset directory or "
        "SimMIMModel .keras file.",
    )
    parser.add_argument(
        "--data", default="digits",
        help="digits, synthetic, tfds:NAME or a folder of images (without "
        "train/ and test/ subfolders, 10%% of the images are held out for "
        "testing, the same ones pretrain held out); converted to the "
        "model's image size and channel count.",
    )
    parser.add_argument("--split", default="test", choices=sources.SPLITS,
                        help="Split the images are taken from.")
    parser.add_argument("--num-images", type=common.positive_int, default=8,
                        help="Images to inpaint (the first of the split).")
    parser.add_argument("--seed", type=int, default=0,
                        help="Seed of the random masks.")
    common.finish_parser(parser, "inpaint", run)
    return parser


def run(args):
    import keras
    import numpy as np

    from keras_simmim.cli.backbones import load_pretrained
    from keras_simmim.data import denormalize
    from keras_simmim.downstream import masked_psnr
    from keras_simmim.downstream import mean_fill
    from keras_simmim.downstream import pixel_mask_from_grid
    from keras_simmim.visualization import comparison_picture
    from keras_simmim.visualization import masked_pixels

    # Every check of --data before a model is loaded.
    sources.check(args.data)
    sources.require_split(args.data, args.split)
    settings = {"from": args.from_, "data": args.data, "split": args.split,
                "num_images": args.num_images, "seed": args.seed}
    if not args.overwrite and common.finished_report(
        args.output, settings, "inpaint"
    ):
        return args.output
    output, _, _ = common.prepare_output(
        args.output, args.overwrite, settings, "inpaint",
        own_files=("inpainted.png", "inpainted.npy"),
    )
    model = load_pretrained(args.from_)
    # The images take the model's size and channel count (grey data for
    # an RGB model is replicated, colour data for a grey model converted).
    data = sources.open_split(
        args.data, args.split, model.image_shape[0], with_labels=False,
        channels=model.image_shape[-1], batch_size=64,
    )
    images = sources.first_images(data, args.num_images)
    sources.announce(args.data)
    print(
        f"keras-simmim inpaint: backend={keras.backend.backend()}, model "
        f"{args.from_}, data={args.data} ({sources.describe(data)} in its "
        f"{args.split!r} split; inpainting the first {len(images)}, "
        f"{model.image_shape[0]}px), output folder: "
        f"{os.path.abspath(output)}"
    )
    keras.utils.set_random_seed(args.seed)
    mask = keras.ops.convert_to_numpy(model.masking(images)).astype(bool)
    # `inpaint` returns image-space pixels (it un-normalises a
    # `norm_target` prediction), the visible ones unchanged.
    filled = denormalize(model.inpaint(images, mask))
    pixels = denormalize(images)
    pixel_mask = pixel_mask_from_grid(mask, images.shape[1:3])
    fills = {"SimMIM": filled}
    try:
        from keras_simmim.downstream import biharmonic_fill

        fills["biharmonic"] = np.clip(
            np.round(biharmonic_fill(pixels, pixel_mask)), 0, 255
        ).astype("uint8")
    except ImportError:  # scikit-image is optional
        pass
    fills["mean fill"] = np.round(mean_fill(pixels, pixel_mask)).astype(
        "uint8")
    metrics = {
        "psnr_simmim": masked_psnr(filled, pixels, pixel_mask),
        "psnr_mean_fill": masked_psnr(fills["mean fill"], pixels,
                                      pixel_mask),
        "masked_fraction": float(pixel_mask.mean()),
        "images": int(len(images)),
    }
    if "biharmonic" in fills:
        metrics["psnr_biharmonic"] = masked_psnr(
            fills["biharmonic"], pixels, pixel_mask)
    columns = {"original": pixels,
               "masked": masked_pixels(pixels, pixel_mask), **fills}
    comparison_picture(columns).save(os.path.join(output, "inpainted.png"))
    np.save(os.path.join(output, "inpainted.npy"), filled)
    common.report_results(
        output, "keras-simmim inpaint", metrics,
        {"settings": settings, "backend": keras.backend.backend(),
         "picture_columns": list(columns)},
    )
    return output
