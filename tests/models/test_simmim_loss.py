import numpy as np
import pytest
import torch

from keras_simmim.models import local_normalized_target
from keras_simmim.models import masked_reconstruction_loss
from tests.conftest import to_numpy


def reference_loss(x, x_hat, mask, p, loss):
    m = mask.repeat(p, 1).repeat(p, 2)[..., None].astype("float64")
    if loss == "smooth_l1":  # PyTorch's own, beta 1
        err = torch.nn.functional.smooth_l1_loss(
            torch.tensor(x_hat, dtype=torch.float64),
            torch.tensor(x, dtype=torch.float64), reduction="none", beta=1.0,
        ).numpy()
    else:
        err = (x - x_hat) ** 2 if loss == "mse" else np.abs(x - x_hat)
    return (err * m).sum() / (m.sum() + 1e-5) / x.shape[-1]


@pytest.mark.parametrize("region", ["masked", "all"])
@pytest.mark.parametrize("loss", ["l1", "mse", "smooth_l1"])
def test_masked_loss_formula(loss, region):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 16, 24, 3)).astype("float32")
    x_hat = rng.normal(size=(3, 16, 24, 3)).astype("float32")
    mask = rng.random((3, 4, 6)) < 0.5
    got = float(to_numpy(
        masked_reconstruction_loss(x, x_hat, mask, loss, region=region)))
    region_mask = mask if region == "masked" else np.ones_like(mask)
    want = reference_loss(x, x_hat, region_mask, 4, loss)
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_visible_pixels_do_not_count():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 8, 8, 3)).astype("float32")
    mask = np.zeros((2, 2, 2), bool)
    mask[:, 0, 0] = True
    x_hat = x.copy()
    x_hat[:, 4:, :, :] += 10.0  # only visible pixels are wrong
    assert float(to_numpy(masked_reconstruction_loss(x, x_hat, mask))) == 0.0
    x_hat[:, :4, :4, :] += 1.0  # masked pixels wrong by 1
    np.testing.assert_allclose(
        float(to_numpy(masked_reconstruction_loss(x, x_hat, mask))), 1.0,
        rtol=1e-5,
    )


def torch_norm_targets(targets, patch_size):
    """The later SimMIM code's `norm_targets`, on NCHW torch tensors."""
    F = torch.nn.functional
    pad = patch_size // 2
    mean = F.avg_pool2d(targets, patch_size, 1, pad, count_include_pad=False)
    sq_mean = F.avg_pool2d(
        targets**2, patch_size, 1, pad, count_include_pad=False
    )
    count = F.avg_pool2d(
        torch.ones_like(targets), patch_size, 1, pad, count_include_pad=True
    ) * (patch_size**2)
    var = (sq_mean - mean**2) * (count / (count - 1))
    var = torch.clamp(var, min=0.0)
    return (targets - mean) / (var + 1e-6) ** 0.5


@pytest.mark.parametrize("window, size", [(47, (32, 32)), (7, (12, 20))])
def test_local_normalized_target_matches_reference(window, size):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2,) + size + (3,)).astype("float32")
    want = torch_norm_targets(
        torch.tensor(x.transpose(0, 3, 1, 2), dtype=torch.float64), window
    ).numpy().transpose(0, 2, 3, 1)
    got = to_numpy(local_normalized_target(x, window))
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-4)


def test_local_normalized_target_rejects_even_window():
    with pytest.raises(ValueError, match="window"):
        local_normalized_target(np.zeros((1, 8, 8, 3), "float32"), 4)
