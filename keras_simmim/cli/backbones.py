"""Backbones the command builds (`--backbone`) or loads (`--from`)."""

import os


def vit(image_shape, patch_size):
    import keras_hub

    return keras_hub.models.ViTBackbone(
        image_shape=image_shape, patch_size=patch_size, num_layers=4,
        num_heads=4, hidden_dim=128, mlp_dim=256,
    )


def swin(image_shape, patch_size):
    import keras_hub

    return keras_hub.models.SwinTransformerBackbone(
        image_shape=image_shape, patch_size=patch_size, embed_dim=48,
        depths=(2, 2), num_heads=(3, 6), window_size=4,
        drop_path=0.0,  # the SimMIM recipe for Swin
    )


def resnet(image_shape, patch_size):
    import keras_hub

    del patch_size  # a CNN has none; masks align with its stride
    return keras_hub.models.ResNetBackbone(
        input_conv_filters=[64], input_conv_kernel_sizes=[3],
        stackwise_num_filters=[64, 128], stackwise_num_blocks=[2, 2],
        stackwise_num_strides=[1, 2], block_type="basic_block",
        image_shape=image_shape,
    )


DEMO_BACKBONES = {"vit": vit, "swin": swin, "resnet": resnet}
BACKBONE_HELP = (
    "Backbone family: vit (width 128, depth 4), swin (embed 48, depths "
    "2-2, stride 8) or resnet (keras-hub ResNet, 2 stages, stride 8)."
)


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
        model = load_pretrained(args.from_)
        return model.backbone, f"pretrained ({args.from_})"
    image_shape = (args.image_size, args.image_size, 3)
    return (
        DEMO_BACKBONES[args.backbone](image_shape, args.patch_size),
        f"random init {args.backbone}",
    )
