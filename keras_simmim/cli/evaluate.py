"""`keras-simmim evaluate`: score a saved classifier or SimMIM model."""

import os

from keras_simmim.cli import common
from keras_simmim.cli import sources


def add_parser(commands):
    parser = commands.add_parser(
        "evaluate",
        help="Accuracy of a fine-tuned classifier, or the masked "
        "reconstruction loss of a SimMIM model, on a data split.",
    )
    parser.add_argument("model", help="A .keras file (finetune or pretrain "
                        "output), or a run folder holding model.keras.")
    parser.add_argument(
        "--data", default=None,
        help="digits, synthetic, tfds:NAME or a folder (as for finetune). "
        "Default: the data the model's run was trained on, as its folder "
        "records it, else digits. A classifier refuses data with another "
        "number of classes.",
    )
    parser.add_argument("--split", default="test", choices=sources.SPLITS,
                        help="Split to evaluate on.")
    parser.add_argument("--batch-size", type=common.positive_int, default=256,
                        help="Images per evaluation step.")
    common.finish_parser(parser, "evaluate", run)
    return parser


def check_class_count(model, spec, dataset, image_size):
    """Refuses labelled `--data` whose class count is not the classifier's
    (its accuracy would be meaningless)."""
    expected = getattr(model, "num_classes", None)
    if expected is None:
        return
    found = sources.num_classes(spec, dataset, image_size)
    if found != expected:
        raise SystemExit(
            f"keras-simmim: --data {spec} has {found} classes but the model "
            f"classifies {expected}; evaluate it on the data it was trained "
            "on (the default when its run folder records it)."
        )


def run(args):
    import keras

    from keras_simmim import SimMIMModel

    path = args.model
    if os.path.isdir(path):
        path = os.path.join(path, "model.keras")
    if not os.path.isfile(path):
        raise SystemExit(f"keras-simmim: no model file at {path!r}.")
    data = args.data
    if data is None:
        data = sources.run_data(os.path.dirname(path))
        print("keras-simmim evaluate: --data "
              + (f"{data} (what the run was trained on)" if data else
                 "digits (the run records no data)"))
        data = data or "digits"
    sources.check(data)  # before the model is loaded
    sources.require_split(data, args.split)
    # The file's size and time too: a retrained model is a new evaluation.
    stat = os.stat(path)
    settings = {"model": os.path.abspath(path), "data": data,
                "split": args.split,
                "model_file": f"{stat.st_size}-{int(stat.st_mtime)}"}
    if not args.overwrite:
        done = common.finished_report(args.output, settings, "evaluate")
        if done:
            return done
    try:
        model = keras.saving.load_model(path)
    except Exception as error:
        raise SystemExit(
            f"keras-simmim: {path!r} is unreadable ({type(error).__name__}: "
            f"{error})."
        ) from None
    is_simmim = isinstance(model, SimMIMModel)
    image_size = model.image_shape[0]
    dataset = sources.open_split(
        data, args.split, image_size, channels=model.image_shape[-1],
        with_labels=not is_simmim, batch_size=args.batch_size,
    )
    if not is_simmim:
        check_class_count(model, data, dataset, image_size)
    output, _, _ = common.prepare_output(
        args.output, args.overwrite, settings, "evaluate", own_files=()
    )
    sources.announce(data)
    print(
        f"keras-simmim evaluate: backend={keras.backend.backend()}, "
        f"{type(model).__name__} {path}, data={data} "
        f"({sources.describe(dataset)} in its {args.split!r} "
        f"split), output folder: {os.path.abspath(output)}"
    )
    values = model.evaluate(dataset, verbose=common.verbosity(),
                            return_dict=True)
    metrics = {name: float(value) for name, value in values.items()}
    common.report_results(
        output, f"keras-simmim evaluate ({type(model).__name__})", metrics,
        {"settings": settings, "backend": keras.backend.backend()},
    )
    return output
