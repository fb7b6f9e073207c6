"""`feature_layer` for every ViT family: `extract_features(backbone, images,
feature_layer=k)` averages the patch tokens after block `k`, leaving out the
class, distillation and register tokens, and equals keras-hub's own hidden
states of that block."""

import numpy as np
import pytest
from keras import ops

from keras_simmim.backbones import get_adapter
from keras_simmim.downstream import extract_features
from keras_simmim.downstream import layer_decay_multipliers
from tests.backbones.families import tiny_backbone
from tests.conftest import to_numpy


def reference_hidden_states(family, backbone, images):
    """keras-hub's own hidden states after each block, patch tokens only:
    `[(batch, patches, dim)] * num_blocks`."""
    if family == "vit":
        embedding = backbone.get_layer("vit_patching_and_embedding")
        x = embedding(images)
        encoder = backbone.get_layer("vit_encoder")
        states = []
        for block in encoder.encoder_layers:
            x = block(x)
            states.append(x[:, 1:])
        return states
    if family == "deit":
        embedding = backbone.get_layer("deit_patching_and_embedding")
        encoder = backbone.get_layer("deit_encoder")
        _, hidden, _ = encoder(embedding(images), output_hidden_states=True)
        return [h[:, 2:] for h in hidden[1:]]
    if family == "dinov2":
        tokens = backbone.embeddings(images)
        _, stages = backbone.encoder(tokens)
        prefix = 1 + backbone.embeddings.num_register_tokens
        return [stages[f"stage{k}"][:, prefix:]
                for k in range(1, len(stages) + 1)]
    raise ValueError(family)


@pytest.mark.parametrize("family", ["vit", "deit", "dinov2"])
def test_feature_layer_equals_the_reference_hidden_states(family, images):
    backbone, _ = tiny_backbone(family)
    batch = images[:4]
    reference = reference_hidden_states(family, backbone, batch)
    adapter = get_adapter(backbone)
    assert adapter.num_blocks == len(reference) == 2
    embeddings = adapter.embed(batch)
    for depth, expected in enumerate(reference, start=1):
        grid = adapter.features_at(embeddings, depth)
        assert tuple(grid.shape) == (4, 8, 8, 32)
        np.testing.assert_allclose(
            to_numpy(ops.reshape(grid, (4, 64, 32))), to_numpy(expected),
            atol=1e-5)
        pooled = extract_features(backbone, batch, feature_layer=depth)
        np.testing.assert_allclose(
            pooled, to_numpy(ops.mean(expected, axis=1)), atol=1e-5)
    # The last block, before the final norm, is not the final features.
    final = extract_features(backbone, batch)
    assert not np.allclose(final, extract_features(backbone, batch,
                                                   feature_layer=2))


@pytest.mark.parametrize("family", ["deit", "dinov2"])
def test_layer_decay_reaches_every_vit_family(family):
    backbone, _ = tiny_backbone(family)
    scales = layer_decay_multipliers(backbone, 0.5)
    assert sorted(set(round(v, 3) for v in scales.values())) == [
        0.125, 0.25, 0.5]
    # Every block's variables are scaled, the final norm is not.
    scaled = set(scales)
    assert all(v.path in scaled for v in get_adapter(backbone)
               .layer_groups()[1][:1])
    assert len(scaled) < len(backbone.trainable_variables)


@pytest.mark.parametrize("family", ["deit", "dinov2"])
def test_feature_layer_out_of_range_names_the_argument(family, images):
    backbone, _ = tiny_backbone(family)
    with pytest.raises(ValueError, match="feature_layer"):
        extract_features(backbone, images[:2], feature_layer=3)
