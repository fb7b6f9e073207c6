"""`keras-simmim probe`: linear probe and k-NN on frozen features."""

import os

from keras_simmim.cli import common
from keras_simmim.cli import sources
from keras_simmim.cli.downstream_flags import add_backbone_and_data_flags
from keras_simmim.cli.downstream_flags import image_channels_of
from keras_simmim.cli.downstream_flags import image_size_of
from keras_simmim.cli.downstream_flags import training_subset

SETTINGS = (
    "from_", "backbone", "image_size", "patch_size", "data",
    "labels_fraction", "feature_layer", "probe_epochs", "learning_rate",
    "batch_size", "k", "seed", "depth",
)


def add_parser(commands):
    parser = commands.add_parser(
        "probe",
        help="Linear probe and k-NN accuracy of frozen (pretrained) "
        "features, average-pooled patch tokens.",
    )
    # The probe trains on features, not images: fit_linear_probe's batch.
    add_backbone_and_data_flags(
        parser, batch_size=(256, "Features per training step of the linear "
                                 "classifier."))
    parser.add_argument(
        "--feature-layer", type=int, default=None,
        help="Probe the output of this block (ViT family). Default: the "
        "block with the best validation accuracy, else the final features.",
    )
    parser.add_argument("--probe-epochs", type=common.positive_int,
                        default=100,
                        help="Training epochs of the linear classifier.")
    parser.add_argument("--learning-rate", type=float, default=1e-2,
                        help="Learning rate of the linear classifier.")
    parser.add_argument("--k", type=common.positive_int, default=20,
                        help="Neighbours of the k-NN classifier.")
    common.finish_parser(parser, "probe", run)
    return parser


def run(args):
    import keras

    from keras_simmim.backbones import get_adapter
    from keras_simmim.cli.backbones import downstream_backbone
    from keras_simmim.downstream import extract_features
    from keras_simmim.downstream import fit_linear_probe
    from keras_simmim.downstream import knn_accuracy

    # Every check of the flags and --data before a backbone is loaded.
    subset = training_subset(args)
    sources.check_labelled_held_out(args.data, "score the probe on")
    settings = common.fingerprint(args, SETTINGS)
    settings["from"] = settings.pop("from_")
    if not args.overwrite and common.finished_report(
        args.output, settings, "probe"
    ):
        return args.output
    output, _, _ = common.prepare_output(
        args.output, args.overwrite, settings, "probe", own_files=()
    )
    keras.utils.set_random_seed(args.seed)
    backbone, origin = downstream_backbone(args)
    image_size = image_size_of(backbone, args)
    shape = (image_size, image_size, image_channels_of(backbone))
    splits = {}
    for split in ("train", "validation", "test"):
        data = sources.open_split(
            args.data, split, image_size, with_labels=True, batch_size=256,
            channels=shape[-1],
            subset=subset if split == "train" else None,
        )
        if data is not None:
            splits[split] = sources.all_batches(data)
    num_classes = int(splits["train"][1].max()) + 1
    sources.announce(args.data)
    held_out = ", ".join(f"{len(splits[s][0])} {s}" for s in
                         sources.HELD_OUT_SPLITS if s in splits)
    print(
        f"keras-simmim probe: backend={keras.backend.backend()}, backbone "
        f"{origin}, data={args.data} ({len(splits['train'][0])} training "
        f"images in {num_classes} classes; {held_out} images), output "
        f"folder: {os.path.abspath(output)}"
    )
    blocks = get_adapter(backbone, image_shape=shape).num_blocks
    if args.feature_layer is not None or not blocks:
        layers = [args.feature_layer]
    else:
        layers = list(range(1, blocks + 1))
    scores = {}
    for layer in layers:
        feats = {
            name: extract_features(backbone, x, feature_layer=layer,
                                   image_shape=shape)
            for name, (x, _) in splits.items()
        }
        head = fit_linear_probe(
            feats["train"], splits["train"][1], num_classes,
            epochs=args.probe_epochs, batch_size=args.batch_size,
            learning_rate=args.learning_rate, seed=args.seed,
        )
        k = min(args.k, len(feats["train"]))
        scores[layer] = {}
        for name in ("validation", "test"):
            if name in feats:
                labels = splits[name][1]
                scores[layer][f"{name}_probe_accuracy"] = float(
                    head.evaluate(feats[name], labels, verbose=0)[1]
                )
                scores[layer][f"{name}_knn_accuracy"] = knn_accuracy(
                    feats["train"], splits["train"][1], feats[name], labels,
                    k=k, num_classes=num_classes,
                )
    pick = "validation" if "validation" in splits else "test"
    best = max(scores, key=lambda layer: scores[layer][f"{pick}_probe_accuracy"])
    metrics = {"feature_layer": "final" if best is None else best,
               **scores[best],
               "train_images": len(splits["train"][0])}
    common.report_results(
        output, "keras-simmim probe", metrics,
        {"settings": settings, "backend": keras.backend.backend(),
         "backbone": origin, "per_layer": {str(k): v for k, v in scores.items()}},
    )
    return output
