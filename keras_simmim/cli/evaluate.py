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
    parser.add_argument("--data", default="digits")
    parser.add_argument("--split", default="test",
                        choices=sources.SPLITS)
    parser.add_argument("--batch-size", type=common.positive_int, default=256)
    common.finish_parser(parser, "evaluate", run)
    return parser


def run(args):
    import keras

    from keras_simmim import SimMIMModel

    path = args.model
    if os.path.isdir(path):
        path = os.path.join(path, "model.keras")
    if not os.path.isfile(path):
        raise SystemExit(f"keras-simmim: no model file at {path!r}.")
    # The file's size and time too: a retrained model is a new evaluation.
    stat = os.stat(path)
    settings = {"model": os.path.abspath(path), "data": args.data,
                "split": args.split,
                "model_file": f"{stat.st_size}-{int(stat.st_mtime)}"}
    if not args.overwrite and common.finished_report(
        args.output, settings, "evaluate"
    ):
        return args.output
    output, _, _ = common.prepare_output(
        args.output, args.overwrite, settings, "evaluate", own_files=()
    )
    try:
        model = keras.saving.load_model(path)
    except Exception as error:
        raise SystemExit(
            f"keras-simmim: {path!r} is unreadable ({type(error).__name__}: "
            f"{error})."
        ) from None
    is_simmim = isinstance(model, SimMIMModel)
    data = sources.open_split(
        args.data, args.split, model.image_shape[0],
        channels=model.image_shape[-1],
        with_labels=not is_simmim, batch_size=args.batch_size,
    )
    if data is None:
        raise SystemExit(
            f"keras-simmim: --data {args.data} has no {args.split!r} split."
        )
    values = model.evaluate(data, verbose=common.verbosity(), return_dict=True)
    metrics = {name: float(value) for name, value in values.items()}
    common.write_report(
        output, f"keras-simmim evaluate ({type(model).__name__})", metrics,
        {"settings": settings, "backend": keras.backend.backend()},
    )
    print(f"{metrics}\nOutput folder: {os.path.abspath(output)}")
    return output
