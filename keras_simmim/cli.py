"""The `keras-simmim` command.

`keras-simmim pretrain` with no arguments pretrains a small ViT with SimMIM on
the built-in synthetic scenes and writes, into its output folder, the model
(`model.keras`), a preset directory (`preset/`), a reconstruction grid
(`reconstructions.png`), the loss history (`history.json`) and, after every
epoch, an atomically written checkpoint (`checkpoints/`).

Killed at any point (SIGKILL included), the same command resumes from the
last complete epoch with the optimizer state, the learning-rate schedule's
position, the masking random state and the data order restored, and ends
with the weights an uninterrupted run would have. The default output folder
is named after the run's settings, so "the same command" finds it.
"""

import argparse
import hashlib
import json
import os
import shutil
import sys
import time

BACKENDS = ("tensorflow", "jax", "torch")


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an int >= 1, got {text}")
    return value


def _vit(image_shape, patch_size):
    import keras_hub

    return keras_hub.models.ViTBackbone(
        image_shape=image_shape,
        patch_size=patch_size,
        num_layers=4,
        num_heads=4,
        hidden_dim=128,
        mlp_dim=256,
    )


def _swin(image_shape, patch_size):
    import keras_hub

    return keras_hub.models.SwinTransformerBackbone(
        image_shape=image_shape,
        patch_size=patch_size,
        embed_dim=48,
        depths=(2, 2),
        num_heads=(3, 6),
        window_size=4,
        drop_path=0.0,  # the SimMIM recipe for Swin
    )


def _resnet(image_shape, patch_size):
    import keras_hub

    del patch_size  # a CNN has none; masks align with its stride
    return keras_hub.models.ResNetBackbone(
        input_conv_filters=[64],
        input_conv_kernel_sizes=[3],
        stackwise_num_filters=[64, 128],
        stackwise_num_blocks=[2, 2],
        stackwise_num_strides=[1, 2],
        block_type="basic_block",
        image_shape=image_shape,
    )


DEMO_BACKBONES = {"vit": _vit, "swin": _swin, "resnet": _resnet}


def build_parser():
    parser = argparse.ArgumentParser(
        prog="keras-simmim",
        description="SimMIM masked image modeling with Keras 3.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    pretrain = commands.add_parser(
        "pretrain",
        help="Pretrain a small ViT, Swin or ResNet with SimMIM on built-in "
        "synthetic scenes.",
    )
    pretrain.add_argument(
        "--backbone",
        choices=sorted(DEMO_BACKBONES),
        default="vit",
        help="Backbone family: vit (width 128, depth 4), swin (embed 48, "
        "depths 2-2, stride 8) or resnet (keras-hub ResNet, 2 stages, "
        "stride 8).",
    )
    pretrain.add_argument("--epochs", type=_positive_int, default=8)
    pretrain.add_argument("--image-size", type=_positive_int, default=32)
    pretrain.add_argument("--batch-size", type=_positive_int, default=64)
    pretrain.add_argument("--num-images", type=_positive_int, default=2048)
    pretrain.add_argument("--patch-size", type=_positive_int, default=4)
    pretrain.add_argument("--mask-patch-size", type=_positive_int, default=8)
    pretrain.add_argument("--mask-ratio", type=float, default=0.6)
    pretrain.add_argument("--learning-rate", type=float, default=1e-3)
    pretrain.add_argument("--seed", type=int, default=0)
    pretrain.add_argument(
        "--output",
        default=None,
        help="Output folder (default: simmim_runs/pretrain-<time>). An "
        "existing non-empty folder is refused unless --overwrite.",
    )
    pretrain.add_argument("--overwrite", action="store_true")
    pretrain.add_argument(
        "--backend",
        choices=BACKENDS,
        default=None,
        help="Keras backend (default: $KERAS_BACKEND or tensorflow).",
    )
    return parser


def _ensure_backend(backend):
    """Re-executes the command under `backend` if Keras runs another one."""
    if backend is None:
        return
    import keras

    if keras.backend.backend() == backend:
        return
    env = dict(os.environ, KERAS_BACKEND=backend)
    argv = [sys.executable, "-m", "keras_simmim.cli"] + sys.argv[1:]
    os.execve(sys.executable, argv, env)


# Settings that define a run: resuming needs the same ones.
RUN_SETTINGS = (
    "backbone", "epochs", "image_size", "batch_size", "num_images",
    "patch_size", "mask_patch_size", "mask_ratio", "learning_rate", "seed",
)


def _fingerprint(args):
    return {name: getattr(args, name) for name in RUN_SETTINGS}


def _default_output(fingerprint):
    digest = hashlib.sha1(
        json.dumps(fingerprint, sort_keys=True).encode()
    ).hexdigest()[:8]
    return os.path.join(
        "simmim_runs", f"pretrain-{fingerprint['backbone']}-{digest}"
    )


def _prepare_output(output, overwrite, fingerprint):
    """Returns `(output, checkpoint_dir, resume)`.

    `resume` is `(model_path, state)` when `output` holds checkpoints of a
    run with the same settings. A non-empty folder that is not such a run is
    refused unless `overwrite`, which starts the run afresh.
    """
    from keras_simmim.training import latest_checkpoint

    if output is None:
        output = _default_output(fingerprint)
    checkpoints = os.path.join(output, "checkpoints")
    if os.path.exists(output) and not os.path.isdir(output):
        raise SystemExit(f"keras-simmim: --output {output!r} is a file.")
    if overwrite and os.path.isdir(checkpoints):
        shutil.rmtree(checkpoints)
    try:
        resume = latest_checkpoint(checkpoints)
    except ValueError as error:
        raise SystemExit(f"keras-simmim: {error}") from None
    if resume is not None:
        saved = resume[1].get("fingerprint") or {}
        changed = sorted(
            name for name in RUN_SETTINGS if saved.get(name) != fingerprint[name]
        )
        if changed:
            details = ", ".join(
                f"--{n.replace('_', '-')} {saved.get(n)} -> {fingerprint[n]}"
                for n in changed
            )
            raise SystemExit(
                f"keras-simmim: {output!r} holds a run with other settings "
                f"({details}). Rerun with its settings to resume it, pass "
                "--overwrite to start afresh, or choose another --output."
            )
        return output, checkpoints, resume
    if os.path.isdir(output) and os.listdir(output) and not overwrite:
        raise SystemExit(
            f"keras-simmim: output folder {output!r} is not empty; pass "
            "--overwrite to replace its files or choose another --output."
        )
    os.makedirs(output, exist_ok=True)
    return output, checkpoints, None


def _write_json_atomically(path, payload):
    partial = f"{path}.{os.getpid()}.partial"
    with open(partial, "w") as f:
        json.dump(payload, f, indent=2)
    os.replace(partial, path)


def _build_model(args):
    import keras
    import numpy as np

    from keras_simmim import SimMIMModel

    image_shape = (args.image_size, args.image_size, 3)
    model = SimMIMModel(
        DEMO_BACKBONES[args.backbone](image_shape, args.patch_size),
        image_shape=image_shape,
        mask_patch_size=args.mask_patch_size,
        mask_ratio=args.mask_ratio,
        seed=args.seed,
    )
    steps = args.epochs * int(np.ceil(args.num_images / args.batch_size))
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0,
        warmup_target=args.learning_rate,
        warmup_steps=max(1, steps // 10),
        decay_steps=max(1, steps - steps // 10),
    )
    model.compile(
        optimizer=keras.optimizers.AdamW(
            schedule, weight_decay=0.05, global_clipnorm=5.0
        )
    )
    return model


def pretrain(args):
    import keras

    from keras_simmim.data import normalize
    from keras_simmim.data import synthetic_scenes
    from keras_simmim.presets.preset_io import save_preset
    from keras_simmim.training import ResumableCheckpoint
    from keras_simmim.training import epoch_permutation
    from keras_simmim.training import save_model_atomically
    from keras_simmim.visualization import save_reconstruction_grid

    fingerprint = _fingerprint(args)
    output, checkpoints, resume = _prepare_output(
        args.output, args.overwrite, fingerprint
    )
    history_path = os.path.join(output, "history.json")
    if resume and resume[1]["epoch"] >= args.epochs:
        if os.path.exists(history_path):
            print(f"keras-simmim: the run in {output!r} is already complete.")
            print(f"Output folder: {os.path.abspath(output)}")
            return output
    keras.utils.set_random_seed(args.seed)
    images, _ = synthetic_scenes(
        args.num_images + 256, image_size=args.image_size, seed=args.seed
    )
    images = normalize(images)
    train, held_out = images[:-256], images[-256:]
    if resume is None:
        model, initial_epoch, previous = _build_model(args), 0, {}
    else:
        try:
            model = keras.saving.load_model(resume[0])
        except Exception as error:  # any unreadable file: say which one
            raise SystemExit(
                f"keras-simmim: checkpoint {resume[0]!r} is unreadable "
                f"({type(error).__name__}: {error}). Delete its directory "
                "to resume from the one before, or pass --overwrite."
            ) from None
        initial_epoch, previous = resume[1]["epoch"], resume[1]["history"]
        print(f"keras-simmim: resuming {output!r} after epoch {initial_epoch}")
    print(
        f"keras-simmim pretrain: backend={keras.backend.backend()}, "
        f"backbone={args.backbone} ({model.backbone.count_params():,} "
        f"parameters, patch {model.patch_size}, stride "
        f"{model.adapter.stride}), {len(train)} images of "
        f"{args.image_size}px, {args.epochs} epochs, "
        f"output folder: {os.path.abspath(output)}"
    )
    checkpoint = ResumableCheckpoint(checkpoints, fingerprint, previous)
    start = time.time()
    # One fit() per epoch, in an order fixed by (seed, epoch): a resumed run
    # then sees the batches an uninterrupted run sees.
    for epoch in range(initial_epoch, args.epochs):
        if checkpoint.stopped_on_nan:
            break
        order = epoch_permutation(len(train), args.seed, epoch)
        model.fit(
            train[order],
            batch_size=args.batch_size,
            epochs=epoch + 1,
            initial_epoch=epoch,
            shuffle=False,
            validation_data=(held_out,),
            callbacks=[checkpoint],
            verbose=1 if sys.stdout.isatty() else 2,
        )
    seconds = time.time() - start
    if checkpoint.stopped_on_nan:
        raise SystemExit(
            "keras-simmim: the loss became NaN/inf; training stopped. The "
            f"last good checkpoint is in {checkpoints!r}; rerun with a lower "
            "--learning-rate and --overwrite."
        )
    save_model_atomically(model, os.path.join(output, "model.keras"))
    save_preset(model, os.path.join(output, "preset"), overwrite=True)
    grid = save_reconstruction_grid(
        os.path.join(output, "reconstructions.png"), model, held_out[:8]
    )
    _write_json_atomically(
        history_path,
        {
            "backend": keras.backend.backend(),
            "backbone": args.backbone,
            "settings": fingerprint,
            "resumed_from_epoch": initial_epoch,
            "train_seconds_this_process": round(seconds, 1),
            "history": checkpoint.history,
        },
    )
    print(f"Wrote {output}/model.keras, {output}/preset/, {grid}")
    print(f"Output folder: {os.path.abspath(output)}")
    return output


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.command == "pretrain":
        from keras_simmim.utils.validation import check_ratio

        try:
            check_ratio("mask_ratio", args.mask_ratio)
        except ValueError as error:
            raise SystemExit(f"keras-simmim: --mask-ratio: {error}") from None
        if argv is None:
            _ensure_backend(args.backend)
        elif args.backend is not None:
            import keras

            if keras.backend.backend() != args.backend:
                raise SystemExit(
                    f"keras-simmim: --backend {args.backend} needs a new "
                    "process; run the keras-simmim command instead."
                )
        pretrain(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
