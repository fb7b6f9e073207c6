"""The adapter protocol with a hand-written subclassed backbone, and the
errors users get for backbones and shapes SimMIM cannot run."""

import keras
import keras_hub
import numpy as np
import pytest

from keras_simmim import SimMIMModel
from keras_simmim.backbones import BackboneAdapter
from keras_simmim.backbones import get_adapter
from keras_simmim.backbones import register_adapter
from keras_simmim.backbones.adapter import _ADAPTERS
from tests.backbones.families import tiny_backbone
from tests.conftest import tiny_vit
from tests.conftest import to_numpy


@keras.saving.register_keras_serializable(package="keras_simmim_tests")
class TinyMixer(keras.Model):
    """A subclassed token backbone: patch conv + position embedding + two
    residual 3x3 token-mixing blocks, returning the token grid."""

    def __init__(self, image_size=32, patch=4, dim=32, **kwargs):
        super().__init__(**kwargs)
        self.image_size, self.patch, self.dim = image_size, patch, dim
        grid = image_size // patch
        self.stem = keras.layers.Conv2D(dim, patch, strides=patch)
        self.position = self.add_weight(
            shape=(grid, grid, dim), initializer="random_normal",
            name="position",
        )
        self.blocks = [
            keras.layers.Conv2D(dim, 3, padding="same", activation="gelu")
            for _ in range(2)
        ]
        self.norm = keras.layers.LayerNormalization()

    def body(self, grid):
        x = grid + self.position
        for block in self.blocks:
            x = x + block(x)
        return self.norm(x)

    def call(self, images):
        return self.body(self.stem(images))

    def get_config(self):
        return {
            **super().get_config(),
            "image_size": self.image_size,
            "patch": self.patch,
            "dim": self.dim,
        }


class TinyMixerAdapter(BackboneAdapter):
    backbone_types = (TinyMixer,)

    def __init__(self, backbone):
        super().__init__(backbone)
        size = backbone.image_size
        self.image_shape = (size, size, 3)
        self.patch_size = self.stride = backbone.patch
        self.num_channels = 3

    def embed(self, images):
        return self.backbone.stem(images)

    def encode(self, embeddings):
        return self.backbone.body(embeddings)

    def no_weight_decay_variables(self):
        return [self.backbone.position]


@pytest.fixture
def mixer_adapter():
    register_adapter(TinyMixerAdapter)
    yield TinyMixerAdapter
    _ADAPTERS.remove(TinyMixerAdapter)


def test_custom_backbone_through_the_protocol(mixer_adapter, images, tmp_path):
    backbone = TinyMixer()
    model = SimMIMModel(backbone, mask_patch_size=8, seed=0)
    assert isinstance(model.adapter, TinyMixerAdapter)
    assert model.mask_shape == (8, 8)
    # The recipe keeps the adapter's extra variables out of weight decay.
    excluded = {id(v) for v in model.no_weight_decay_variables()}
    assert id(backbone.position) in excluded
    assert id(backbone.stem.kernel) not in excluded

    mask = np.random.default_rng(0).random((8, 8, 8)) < 0.6
    data = {"images": images[:8], "mask": mask}
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    before = model.evaluate(data, batch_size=8, verbose=0)
    model.fit(data, batch_size=4, epochs=20, verbose=0)
    after = model.evaluate(data, batch_size=8, verbose=0)
    assert after < 0.75 * before, (before, after)

    path = str(tmp_path / "mixer.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.backbone, TinyMixer)
    np.testing.assert_allclose(
        to_numpy(loaded(data)["reconstruction"]),
        to_numpy(model(data)["reconstruction"]),
        atol=1e-6,
    )
    # The trained backbone is the user's own model, usable on its own.
    assert backbone(images[:2]).shape == (2, 8, 8, 32)


def test_backbone_without_adapter_says_what_to_do():
    tokens = keras.Sequential(
        [keras.Input((16, 8)), keras.layers.Dense(8)], name="token_model"
    )
    for backbone in (tokens, keras.layers.Dense(3), "vit"):
        with pytest.raises(TypeError, match="register_adapter") as info:
            SimMIMModel(backbone)
        assert type(backbone).__name__ in str(info.value)
        assert "BackboneAdapter" in str(info.value)


def test_functional_model_with_layers_after_its_feature_map_is_refused():
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 4, strides=4)(inputs)
    x = keras.layers.Reshape((64, 8))(x)  # tokens: not a CNN head
    x = keras.layers.Dense(8)(x)
    with pytest.raises(TypeError, match="No SimMIM adapter"):
        SimMIMModel(keras.Model(inputs, x))


def test_image_size_incompatible_with_the_stride():
    backbone, _ = tiny_backbone("resnet")
    # 36 px: the stride-8 network's feature map is 5 x 5, not 36 / 8.
    with pytest.raises(ValueError, match=r"Image size \(36, 36\) is incomp"):
        SimMIMModel(backbone, mask_patch_size=12, image_shape=(36, 36, 3))
    swin = keras_hub.models.SwinTransformerBackbone(
        image_shape=(48, 48, 3), embed_dim=8, depths=(1, 1, 1),
        num_heads=(1, 1, 1), window_size=3,
    )
    # 48 / 4 = 12 -> 6 -> 3 tokens: stride 16 divides 48, fine.
    assert SimMIMModel(swin, mask_patch_size=16).adapter.stride == 16
    swin = keras_hub.models.SwinTransformerBackbone(
        image_shape=(40, 40, 3), embed_dim=8, depths=(1, 1, 1),
        num_heads=(1, 1, 1), window_size=5,
    )
    with pytest.raises(ValueError, match="not divisible by the backbone's stride 16"):
        SimMIMModel(swin, mask_patch_size=8)


def test_channel_mismatch_between_images_and_backbone(images):
    backbone, _ = tiny_backbone("resnet")
    with pytest.raises(ValueError, match="does not match the backbone's input"):
        SimMIMModel(backbone, mask_patch_size=8, image_shape=(32, 32, 1))
    with pytest.raises(ValueError, match="does not match the backbone's input"):
        SimMIMModel(tiny_vit(), mask_patch_size=8, image_shape=(32, 32, 4))
    model = SimMIMModel(tiny_vit(), mask_patch_size=8)
    gray = images[:2, :, :, :1]
    with pytest.raises(ValueError, match=r"\(None, 32, 32, 3\).*\(2, 32, 32, 1\)"):
        model(gray)


def test_overrides_are_checked_against_the_backbone():
    with pytest.raises(ValueError, match="fixes model_patch_size=4"):
        SimMIMModel(tiny_vit(), mask_patch_size=8, model_patch_size=8)
    with pytest.raises(ValueError, match="fixes encoder_stride=8"):
        swin, _ = tiny_backbone("swin")
        SimMIMModel(swin, mask_patch_size=8, encoder_stride=32)
    backbone, _ = tiny_backbone("resnet")
    with pytest.raises(ValueError, match="Pass image_shape"):
        SimMIMModel(backbone, mask_patch_size=8)
    with pytest.raises(ValueError, match="its feature map has stride 8"):
        SimMIMModel(
            backbone, mask_patch_size=8, image_shape=(32, 32, 3),
            encoder_stride=16,
        )
    with pytest.raises(ValueError, match="not a multiple of.*pass `model_patch_size`"):
        SimMIMModel(
            backbone, mask_patch_size=8, image_shape=(32, 32, 3),
            model_patch_size=16,
        )
    # Matching values are accepted, and the CNN's mask grid can be refined.
    assert SimMIMModel(tiny_vit(), mask_patch_size=8, model_patch_size=4)
    model = SimMIMModel(
        backbone, mask_patch_size=8, image_shape=(32, 32, 3),
        model_patch_size=4,
    )
    assert model.mask_shape == (8, 8)
    assert get_adapter(tiny_vit()).stride == 4
