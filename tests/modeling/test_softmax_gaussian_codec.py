"""SoftmaxGaussianCodec: target distributions, loss optimum, sub-pixel decoding round trip."""

import math

import pytest
import torch

from kpext.modeling.codecs import build_codec
from kpext.modeling.codecs.softmax_gaussian import SoftmaxGaussianCodec


def keypoints_in_box(points, box=(10.0, 20.0, 66.0, 76.0)):
    """R=1 x K x 3 visible keypoints (image coordinates) and their 1 x 4 box."""
    kp = torch.tensor([[[x, y, 2.0] for x, y in points]], dtype=torch.float64)
    return kp, torch.tensor([box], dtype=torch.float64)


def test_targets_are_distributions_centred_on_the_keypoint():
    codec = SoftmaxGaussianCodec(sigma=2.0)
    # 56 px box on a 28-cell map: 2 px per cell; keypoint at cell coordinate (9.3, 14.8).
    kp, box = keypoints_in_box([(10 + 9.3 * 2, 20 + 14.8 * 2)])
    t = codec.encode(kp, box, (28, 28))
    maps = t.heatmaps[0, 0]
    assert float(maps.sum()) == pytest.approx(1.0, abs=1e-12)
    cells = torch.arange(28, dtype=torch.float64) + 0.5
    mean_x = float((maps.sum(0) * cells).sum())
    mean_y = float((maps.sum(1) * cells).sum())
    assert (mean_x, mean_y) == (pytest.approx(9.3, abs=1e-3), pytest.approx(14.8, abs=1e-3))
    assert bool(t.valid.all())


def test_invisible_and_outside_keypoints_have_no_target():
    codec = SoftmaxGaussianCodec(sigma=1.5)
    kp, box = keypoints_in_box([(30.0, 40.0), (200.0, 40.0)])
    kp[0, 0, 2] = 0
    t = codec.encode(kp, box, (14, 14))
    assert t.valid.tolist() == [[False, False]]
    assert float(t.heatmaps.abs().sum()) == 0.0


@pytest.mark.parametrize("cell", [(9.3, 14.8), (3.05, 20.9), (14.5, 14.5), (2.2, 25.6)])
def test_decoding_the_log_target_recovers_the_keypoint(cell):
    """At the loss optimum the logits are log(target), a quadratic the Newton step inverts."""
    codec = SoftmaxGaussianCodec(sigma=2.0)
    x, y = 10 + cell[0] * 2, 20 + cell[1] * 2
    kp, box = keypoints_in_box([(x, y)])
    t = codec.encode(kp, box, (28, 28))
    logits = torch.log(t.heatmaps) + 3.0  # any constant: softmax is shift-invariant
    out = codec.decode(logits, box)
    assert float(out[0, 0, 0]) == pytest.approx(x, abs=0.02)
    assert float(out[0, 0, 1]) == pytest.approx(y, abs=0.02)
    interior = all(3 * 2.0 <= c <= 28 - 3 * 2.0 for c in cell)
    if interior:  # a target-shaped map scores about 1
        assert float(out[0, 0, 2]) == pytest.approx(1.0, abs=0.05)
    else:  # cut at the edge and renormalised: a higher peak
        assert float(out[0, 0, 2]) > 1.0


def test_loss_is_smallest_at_the_target_and_equals_its_entropy_there():
    codec = SoftmaxGaussianCodec(sigma=1.5)
    kp, box = keypoints_in_box([(30.0, 40.0), (50.0, 33.0)])
    t = codec.encode(kp, box, (28, 28))
    optimum = torch.log(t.heatmaps).clone().requires_grad_(True)
    loss = codec.loss(optimum, t)
    loss.backward()
    entropy = -(t.heatmaps * torch.log(t.heatmaps)).flatten(2).sum(2).mean()
    assert float(loss) == pytest.approx(float(entropy), rel=1e-9)
    assert float(optimum.grad.abs().max()) < 1e-9
    shifted = torch.roll(torch.log(t.heatmaps), shifts=1, dims=-1)
    assert float(codec.loss(shifted, t)) > float(loss) + 0.05


def test_loss_without_valid_targets_is_a_connected_zero():
    codec = SoftmaxGaussianCodec(sigma=1.5)
    kp, box = keypoints_in_box([(30.0, 40.0)])
    kp[..., 2] = 0
    raw = torch.randn(1, 1, 28, 28, requires_grad=True)
    loss = codec.loss(raw, codec.encode(kp, box, (28, 28)))
    loss.backward()
    assert float(loss) == 0.0 and raw.grad is not None


def test_flat_logits_score_low_and_decode_inside_the_box():
    codec = build_codec("softmax_gaussian", sigma=1.5)
    out = codec.decode(
        torch.zeros(2, 3, 28, 28), torch.tensor([[0.0, 0, 56, 56], [10, 10, 40, 70]])
    )
    expected = 2 * math.pi * 1.5**2 / (28 * 28)
    assert torch.allclose(out[..., 2], torch.full((2, 3), expected))
    assert bool((out[1, :, 0] >= 10).all() and (out[1, :, 0] <= 40).all())


@pytest.mark.parametrize("key,value", [("REFINE", "none"), ("DARK_BORDER", 1)])
def test_gaussian_only_decoding_options_are_refused_not_ignored(key, value):
    from kpext import add_kpext_config
    from kpext.modeling.codecs import build_codec_from_cfg

    from detectron2.config import get_cfg

    cfg = get_cfg()
    add_kpext_config(cfg)
    cfg.MODEL.KPEXT.TARGET.CODEC = "softmax_gaussian"
    assert build_codec_from_cfg(cfg).name == "softmax_gaussian"  # the defaults are accepted
    cfg.MODEL.KPEXT.TARGET[key] = value
    with pytest.raises(ValueError, match=rf"MODEL\.KPEXT\.TARGET\.{key} .*gaussian codec only"):
        build_codec_from_cfg(cfg)
