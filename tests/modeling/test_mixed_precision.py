"""Under autocast the heads' losses and decoded keypoints stay float32."""

import pytest
import torch
from head_helpers import SHAPE, head_cfg, training_instances

from kpext.modeling.heads import (
    GaussianKeypointHead,
    HourglassKeypointHead,
    KpextKRCNNHead,
    SimCCKeypointHead,
)

from detectron2.utils.events import EventStorage


@pytest.mark.parametrize(
    "head_cls", [KpextKRCNNHead, GaussianKeypointHead, HourglassKeypointHead, SimCCKeypointHead]
)
@pytest.mark.parametrize("oks", [0.0, 1.0])
def test_losses_are_float32_under_bfloat16_autocast(head_cls, oks):
    cfg = head_cfg()
    cfg.MODEL.KPEXT.OKS_LOSS_WEIGHT = oks
    cfg.TEST.KEYPOINT_OKS_SIGMAS = [0.05] * 4
    head = head_cls(cfg, SHAPE).train()
    x = torch.randn(4, SHAPE.channels, 14, 14)
    with EventStorage(), torch.autocast("cpu", dtype=torch.bfloat16):
        losses = head(x, [training_instances(4, 3)])
    for name, value in losses.items():
        assert value.dtype == torch.float32 and torch.isfinite(value), name
    sum(losses.values()).backward()


@pytest.mark.parametrize("head_cls", [KpextKRCNNHead, GaussianKeypointHead])
def test_decoding_half_precision_heatmaps_keeps_full_precision_coordinates(head_cls):
    head = head_cls(head_cfg(), SHAPE).eval()
    heatmaps = torch.randn(3, 4, 28, 28) * 3
    boxes = torch.tensor(
        [[700.0, 500.0, 950.0, 900.0]] * 3
    )  # large coordinates: fp16 spacing is 0.5 px
    full = head.decode(heatmaps, boxes)
    half = head.decode(heatmaps.bfloat16().float().half(), boxes)
    assert half.dtype == torch.float32
    assert (
        half[..., :2] - full[..., :2]
    ).abs().max() < 2.0  # same cells, coordinates not rounded to fp16
