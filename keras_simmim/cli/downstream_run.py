"""What the resumable downstream subcommands (`finetune`, `upscale`) share:
opening the output folder and the backbone or the checkpoint to resume,
and saving the model and report at the end."""

import os
import types

from keras_simmim.cli import common
from keras_simmim.cli import sources
from keras_simmim.cli.downstream_flags import image_channels_of
from keras_simmim.cli.downstream_flags import image_size_of


def open_downstream_run(args, run_settings, command, own_files=()):
    """Starts or resumes a downstream run in `args.output`.

    Sets the layer-decay default (0.75 from a pretrained backbone, 1.0
    from random init), fingerprints the settings, prepares the output
    folder (refusing to overwrite another run's), and seeds Keras. Returns
    a namespace with `output` and `complete` (True: the folder holds this
    run already finished, nothing else is set); otherwise also
    `checkpoints`, `settings`, `initial_epoch`,
    `previous` (the history so far), `origin` (what the backbone is, for
    the log line), `data` (`--data` as the report records it),
    `image_size`, `channels`, and either
    `backbone` (a new run) or `model` (the checkpoint being resumed).
    """
    import keras

    from keras_simmim.cli.backbones import downstream_backbone

    if args.layer_decay is None:
        args.layer_decay = 0.75 if args.from_ else 1.0
    settings = common.fingerprint(args, run_settings)
    settings["from"] = settings.pop("from_")
    output, checkpoints, resume = common.prepare_output(
        args.output, args.overwrite, settings, command, own_files=own_files)
    if resume and resume[1]["epoch"] >= args.epochs and os.path.exists(
        os.path.join(output, "report.json")
    ):
        print(f"keras-simmim: the run in {output!r} is already complete.")
        return types.SimpleNamespace(output=output, complete=True)
    keras.utils.set_random_seed(args.seed)
    run = types.SimpleNamespace(
        output=output, complete=False, checkpoints=checkpoints,
        settings=settings, initial_epoch=0, previous={}, backbone=None,
        model=None, data=sources.recorded(args.data))
    if resume is None:
        run.backbone, run.origin = downstream_backbone(args)
        run.image_size = image_size_of(run.backbone, args)
        run.channels = image_channels_of(run.backbone)
    else:
        run.model = common.load_checkpoint_model(resume)
        run.origin = "resumed checkpoint"
        run.image_size = run.model.image_shape[0]
        run.channels = run.model.image_shape[-1]
        run.initial_epoch = resume[1]["epoch"]
        run.previous = resume[1]["history"]
        print(f"keras-simmim: resuming {output!r} after epoch "
              f"{run.initial_epoch}")
    return run


def finish_downstream_run(run, model, title, metrics, history, **details):
    """Saves `model.keras` and the report (metrics, settings, data,
    backend, history and `details`) in the run's folder; prints the
    metrics and where."""
    import keras

    from keras_simmim.training import save_model_atomically

    save_model_atomically(model, os.path.join(run.output, "model.keras"))
    common.report_results(
        run.output, title, metrics,
        {"settings": run.settings, "data": run.data,
         "backend": keras.backend.backend(), "history": history, **details},
    )
    return run.output
