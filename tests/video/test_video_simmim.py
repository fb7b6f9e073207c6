"""SimMIM on clips: tube and space-time masking, keras-hub VideoPrism,
the moving-digits data and pooled video classifiers."""

import keras
import keras_hub
import numpy as np
import pytest

from keras_simmim import SimMIMModel
from keras_simmim.backbones import get_adapter
from keras_simmim.data import moving_digits
from keras_simmim.data import normalize
from keras_simmim.downstream import SimMIMClassifier
from keras_simmim.downstream import extract_features
from keras_simmim.layers import RandomPatchMasking
from tests.conftest import to_numpy

FRAMES, SIZE, PATCH = 4, 16, 4


def tiny_videoprism(**kwargs):
    config = dict(
        num_frames=FRAMES, patch_size=PATCH, hidden_dim=16,
        intermediate_dim=32, num_heads=2, num_spatial_layers=1,
        num_temporal_layers=1, num_auxiliary_layers=0,
        image_shape=(SIZE, SIZE, 1),
    )
    config.update(kwargs)
    return keras_hub.models.VideoPrismBackbone(**config)


def clips(num=8, seed=0):
    videos, labels = moving_digits(num, frames=FRAMES, image_size=SIZE,
                                   seed=seed)
    return normalize(videos), labels


def draw(strategy, mask_patch_size, ratio, shape=(3, 8, 32, 32, 1)):
    layer = RandomPatchMasking(mask_patch_size, 4, ratio, seed=0,
                               strategy=strategy)
    return to_numpy(layer(np.zeros(shape, "float32")))


@pytest.mark.parametrize("ratio", [0.5, 0.75, 0.9, 0.95])
def test_tube_mask_is_one_spatial_mask_for_every_frame(ratio):
    mask = draw("tube", 4, ratio)  # 8x8 blocks, one model patch each
    assert mask.shape == (3, 8, 8, 8) and mask.dtype == bool
    np.testing.assert_array_equal(mask, np.repeat(mask[:, :1], 8, axis=1))
    blocks = mask[:, 0].reshape(3, -1).sum(1)
    assert blocks.tolist() == [int(np.ceil(64 * ratio - 1e-9))] * 3
    assert len({clip.tobytes() for clip in mask}) > 1


@pytest.mark.parametrize("ratio", [0.3, 0.6, 0.9])
def test_space_time_blocks_mask_the_exact_count(ratio):
    mask = draw("random", (2, 8, 8), ratio)
    assert mask.shape == (3, 8, 8, 8)
    # Each block spans 2 frames: frames 2k and 2k + 1 are equal.
    np.testing.assert_array_equal(mask[:, 0::2], mask[:, 1::2])
    blocks = mask[:, ::2, ::2, ::2].reshape(3, -1).sum(1)
    assert blocks.tolist() == [int(np.ceil(4 * 16 * ratio - 1e-9))] * 3
    # Not a tube: the slabs differ.
    assert (mask[:, 0] != mask[:, 2]).any()


def test_video_masking_errors_name_the_argument():
    with pytest.raises(ValueError, match="frames=6"):
        draw("random", (4, 8, 8), 0.5, shape=(1, 6, 32, 32, 1))
    with pytest.raises(ValueError, match="mask_patch_size"):
        RandomPatchMasking((2, 8, 4), 4, 0.5)
    with pytest.raises(ValueError, match="tube"):
        RandomPatchMasking((2, 8, 8), 4, 0.5, strategy="tube")
    with pytest.raises(ValueError, match="clips"):
        draw("tube", 8, 0.5, shape=(1, 32, 32, 1))
    with pytest.raises(ValueError, match="'grid'"):
        draw("grid", 8, 0.5)
    with pytest.raises(ValueError, match="shape"):
        draw("random", 8, 0.5, shape=(1, 2, 8, 32, 32, 1))


def test_adapter_runs_videoprism_as_its_own_call():
    backbone = tiny_videoprism()
    videos = np.random.default_rng(0).normal(
        size=(2, FRAMES, SIZE, SIZE, 1)).astype("float32")
    adapter = get_adapter(backbone)
    assert adapter.sample_shape == (FRAMES, SIZE, SIZE, 1)
    grid = to_numpy(adapter.encode(adapter.embed(videos)))
    assert grid.shape == (2, FRAMES, 4, 4, 16)
    np.testing.assert_allclose(
        grid.reshape(2, FRAMES, 16, 16), to_numpy(backbone(videos)),
        rtol=1e-5, atol=1e-5)


def test_videoprism_simmim_shapes_and_falling_loss():
    keras.utils.set_random_seed(0)
    videos, _ = clips(16)
    model = SimMIMModel(tiny_videoprism(), mask_patch_size=(2, 8, 8),
                        mask_ratio=0.75, seed=0)
    assert model.mask_shape == (FRAMES, 4, 4)
    outputs = model.predict(videos[:2], verbose=0)
    assert outputs["reconstruction"].shape == (2, FRAMES, SIZE, SIZE, 1)
    mask = outputs["mask"]
    assert mask.shape == (2, FRAMES, 4, 4)
    np.testing.assert_array_equal(mask[:, 0::2], mask[:, 1::2])
    model.compile(optimizer=keras.optimizers.AdamW(3e-3))
    losses = model.fit(videos, batch_size=8, epochs=12,
                       verbose=0).history["loss"]
    assert np.mean(losses[-3:]) < 0.8 * np.mean(losses[:3]), losses


def test_given_mask_and_round_trip(tmp_path):
    videos, _ = clips(2)
    model = SimMIMModel(tiny_videoprism(), mask_patch_size=8,
                        mask_strategy="tube", seed=0)
    mask = np.zeros((2, FRAMES, 4, 4), bool)
    mask[:, :, :2] = True
    flat = mask.reshape(2, -1).astype("float32")
    first = model.predict({"images": videos, "mask": mask}, verbose=0)
    np.testing.assert_array_equal(first["mask"], mask)
    again = model.predict({"images": videos, "mask": flat}, verbose=0)
    np.testing.assert_allclose(again["reconstruction"],
                               first["reconstruction"], atol=1e-6)
    path = str(tmp_path / "video.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.get_config()["mask_strategy"] == "tube"
    np.testing.assert_allclose(
        loaded.predict({"images": videos, "mask": mask},
                       verbose=0)["reconstruction"],
        first["reconstruction"], rtol=1e-5, atol=1e-5)
    # Visible pixels come back unchanged from inpaint.
    filled = model.inpaint(videos, mask)
    np.testing.assert_array_equal(filled[:, :, 8:], videos[:, :, 8:])


def test_video_input_errors_name_the_argument():
    model = SimMIMModel(tiny_videoprism(), mask_patch_size=8,
                        mask_strategy="tube")
    with pytest.raises(ValueError, match="frames, height"):
        model(np.zeros((1, SIZE, SIZE, 1), "float32"))
    with pytest.raises(ValueError, match=r"\(batch, 4, 4, 4\)"):
        model({"images": np.zeros((1, FRAMES, SIZE, SIZE, 1), "float32"),
               "mask": np.zeros((1, 4, 4), "float32")})
    with pytest.raises(ValueError, match="frames=4"):
        SimMIMModel(tiny_videoprism(), mask_patch_size=(3, 8, 8))
    with pytest.raises(ValueError, match="num_text_layers"):
        get_adapter(tiny_videoprism(num_text_layers=1, vocabulary_size=8))


def test_video_classifier_pools_time_and_space(tmp_path):
    keras.utils.set_random_seed(0)
    videos, labels = clips(8)
    backbone = tiny_videoprism()
    classifier = SimMIMClassifier(backbone, num_classes=40)
    assert classifier.predict(videos, verbose=0).shape == (8, 40)
    features = extract_features(backbone, videos, batch_size=4)
    grid = to_numpy(classifier.adapter.encode(
        classifier.adapter.embed(videos)))
    np.testing.assert_allclose(features, grid.mean(axis=(1, 2, 3)),
                               rtol=1e-5, atol=1e-5)
    classifier.compile_for_finetuning(learning_rate=1e-3, total_steps=4)
    history = classifier.fit(videos, labels, batch_size=4, epochs=2,
                             verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    path = str(tmp_path / "classifier.keras")
    classifier.save(path)
    np.testing.assert_allclose(
        keras.saving.load_model(path).predict(videos, verbose=0),
        classifier.predict(videos, verbose=0), rtol=1e-5, atol=1e-5)


def test_preview_mask_and_frame_strip_for_clips():
    from keras_simmim.visualization import clip_strip
    from keras_simmim.visualization import fixed_mask

    tube = SimMIMModel(tiny_videoprism(), mask_patch_size=8,
                       mask_strategy="tube", mask_ratio=0.5)
    mask = fixed_mask(tube, 3, seed=0)
    assert mask.shape == (3, FRAMES, 4, 4)
    np.testing.assert_array_equal(mask, np.repeat(mask[:, :1], FRAMES, 1))
    assert (mask[:, 0].reshape(3, -1).sum(1) == 8).all()  # 2 of 4 blocks
    blocks = SimMIMModel(tiny_videoprism(), mask_patch_size=(2, 8, 8),
                         mask_ratio=0.5)
    mask = fixed_mask(blocks, 3, seed=0)
    np.testing.assert_array_equal(mask[:, 0::2], mask[:, 1::2])
    assert (mask.reshape(3, -1).sum(1) == 32).all()  # 4 of 8 blocks
    videos, _ = clips(1)
    outputs = tube({"images": videos, "mask": fixed_mask(tube, 1)},
                   training=False)
    strip = clip_strip(videos[0], to_numpy(outputs["reconstruction"])[0],
                       to_numpy(outputs["mask"])[0])
    assert strip.shape == (3 * (SIZE + 2), FRAMES * (SIZE + 2), 3)
    assert strip.dtype == np.uint8
    # The middle row shows the masked pixels grey, in every frame.
    pixel_mask = to_numpy(outputs["mask"])[0].repeat(4, 1).repeat(4, 2)
    masked_row = strip[SIZE + 2 + 1:2 * (SIZE + 2) - 1]
    for t in range(FRAMES):
        frame = masked_row[:, t * (SIZE + 2) + 1:(t + 1) * (SIZE + 2) - 1, 0]
        assert (frame[pixel_mask[t]] == 127).all()
