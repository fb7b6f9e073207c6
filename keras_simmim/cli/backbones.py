"""Backbones the command builds (`--backbone`) or loads (`--from`)."""

import os

from keras_simmim.cli import common


def vit(image_shape, patch_size, depth=None):
    import keras_hub

    return keras_hub.models.ViTBackbone(
        image_shape=image_shape, patch_size=patch_size,
        num_layers=depth or 4, num_heads=4, hidden_dim=128, mlp_dim=256,
    )


def swin(image_shape, patch_size, depth=None):
    import keras_hub

    return keras_hub.models.SwinTransformerBackbone(
        image_shape=image_shape, patch_size=patch_size, embed_dim=48,
        depths=(depth or 2,) * 2, num_heads=(3, 6), window_size=4,
        drop_path=0.0,  # the SimMIM recipe for Swin
    )


def resnet(image_shape, patch_size, depth=None):
    import keras_hub

    del patch_size  # a CNN has none; masks align with its stride
    return keras_hub.models.ResNetBackbone(
        input_conv_filters=[64], input_conv_kernel_sizes=[3],
        stackwise_num_filters=[64, 128],
        stackwise_num_blocks=[depth or 2] * 2,
        stackwise_num_strides=[1, 2], block_type="basic_block",
        image_shape=image_shape,
    )


DEMO_BACKBONES = {"vit": vit, "swin": swin, "resnet": resnet}
BACKBONE_HELP = (
    "Backbone family: vit (width 128, depth 4), swin (embed 48, depths "
    "2-2, stride 8) or resnet (keras-hub ResNet, 2 stages, stride 8)."
)


def add_depth_flag(parser, note=""):
    """`--depth`: the size of a `--backbone` the command builds."""
    parser.add_argument(
        "--depth", type=common.positive_int, default=None,
        help="Transformer blocks of a vit (default 4), or blocks per stage "
        "of a swin or resnet (default 2)." + note,
    )


def build_backbone(args, image_shape):
    """A random-init `--backbone` of `--depth` for `image_shape`."""
    return DEMO_BACKBONES[args.backbone](
        image_shape, args.patch_size, args.depth)


def load_pretrained(source):
    """The `SimMIMModel` in `source`: a `keras-simmim pretrain` output
    folder, a preset directory, or a `.keras` file."""
    import keras

    from keras_simmim import SimMIMModel

    if os.path.isdir(source) and os.path.isdir(os.path.join(source, "preset")):
        source = os.path.join(source, "preset")
    try:
        if os.path.isdir(source):
            return SimMIMModel.from_preset(source)
        if source.endswith(".keras") and os.path.isfile(source):
            model = keras.saving.load_model(source)
            if isinstance(model, SimMIMModel):
                return model
            raise ValueError(f"it holds a {type(model).__name__}")
    except (ValueError, OSError) as error:
        raise SystemExit(
            f"keras-simmim: --from {source!r} could not be loaded: {error}"
        ) from None
    raise SystemExit(
        f"keras-simmim: --from {source!r} must be a pretrain output folder, "
        "a preset directory or a SimMIMModel .keras file."
    )


def downstream_backbone(args):
    """`(backbone, description)`: pretrained from `--from`, else a fresh
    random-init `--backbone` (the scratch baseline)."""
    if args.from_ is not None:
        if getattr(args, "depth", None) is not None:
            raise SystemExit(
                f"keras-simmim: --depth {args.depth} sizes a backbone the "
                "command builds; with --from the pretrained run's backbone "
                f"({args.from_}) is used as it is. Drop --depth, or drop "
                "--from to train a random-init backbone of that depth."
            )
        model = load_pretrained(args.from_)
        return model.backbone, f"pretrained ({args.from_})"
    image_shape = (args.image_size, args.image_size, 3)
    return (
        build_backbone(args, image_shape),
        f"random init {args.backbone}",
    )
