"""Heads start where their first gradients are comparable: the gradient of the first step's
keypoint loss reaching each head's first conv, against Detectron2's stock head on the same RoIs
(features, proposals, keypoints), averaged over initialisation seeds. The predictor's start is
the codec's (``KeypointCodec.predictor_std``): a spatial softmax starts like stock's last
layer, a regressed Gaussian heatmap small.

Within 3x of stock (measured 2026-12-03: krcnn_onehot 1.0x, krcnn_softmax_gaussian 0.56x,
krcnn_gaussian 2.1x, gaussian 0.36x, gaussian_softmax 0.35x), except the hourglass: 5x
(Gaussian) and 28x (one-hot), because every stage's loss reaches its first conv (intermediate
supervision) through residual paths that do not attenuate it; its predictors start at the same
scale as the other heads'."""

import pytest
import torch
from head_helpers import head_cfg

from detectron2.layers import ShapeSpec
from detectron2.modeling.roi_heads import build_keypoint_head
from detectron2.structures import Boxes, Instances, Keypoints
from detectron2.utils.events import EventStorage

K = 17
CHANNELS = 64
SEEDS = range(4)
HEADS = {
    "stock": ("KRCNNConvDeconvUpsampleHead", {}),
    "krcnn_onehot": ("KRCNNCodecKeypointHead", {"CODEC": "onehot"}),
    "krcnn_softmax_gaussian": ("KRCNNCodecKeypointHead", {"CODEC": "softmax_gaussian"}),
    "krcnn_gaussian": ("KRCNNCodecKeypointHead", {"CODEC": "gaussian"}),
    "gaussian": ("GaussianKeypointHead", {"CODEC": "gaussian"}),
    "gaussian_softmax": ("GaussianKeypointHead", {"CODEC": "softmax_gaussian"}),
    "hourglass": ("HourglassKeypointHead", {"CODEC": "gaussian"}),
    "hourglass_onehot": ("HourglassKeypointHead", {"CODEC": "onehot"}),
}


def named_head_cfg(name, target):
    cfg = head_cfg(num_keypoints=K, width=CHANNELS, depth=4, **target)
    cfg.MODEL.ROI_KEYPOINT_HEAD.NAME = name
    return cfg


def rois(num=32):
    g = torch.Generator().manual_seed(123)
    features = torch.relu(torch.randn(num, CHANNELS, 14, 14, generator=g))
    inst = Instances((400, 400))
    xy = torch.rand(num, 2, generator=g) * 250
    boxes = torch.cat([xy, xy + torch.rand(num, 2, generator=g) * 80 + 60], dim=1)
    inst.proposal_boxes = Boxes(boxes)
    inst.gt_boxes = Boxes(boxes)
    kp = torch.zeros(num, K, 3)
    span = boxes[:, None, 2:] - boxes[:, None, :2]
    kp[..., :2] = boxes[:, None, :2] + (torch.rand(num, K, 2, generator=g) * 0.8 + 0.1) * span
    kp[..., 2] = 2
    inst.gt_keypoints = Keypoints(kp)
    return features, inst


def first_conv(head):
    return next(m for m in head.modules() if isinstance(m, torch.nn.Conv2d))


def first_gradient(name, target, seed):
    torch.manual_seed(seed)
    head = build_keypoint_head(
        named_head_cfg(name, target), ShapeSpec(channels=CHANNELS, height=14)
    )
    head.train()
    features, inst = rois()
    with EventStorage():
        losses = head(features, [inst])
    sum(losses.values()).backward()
    return float(first_conv(head).weight.grad.norm())


@pytest.fixture(scope="module")
def gradients():
    return {
        row: sum(first_gradient(name, target, s) for s in SEEDS) / len(SEEDS)
        for row, (name, target) in HEADS.items()
    }


@pytest.mark.parametrize("row", [r for r in HEADS if r != "stock" and "hourglass" not in r])
def test_first_gradient_within_3x_of_stock(gradients, row):
    ratio = gradients[row] / gradients["stock"]
    assert 1 / 3 <= ratio <= 3, f"{row}: {gradients[row]:.3g} vs stock {gradients['stock']:.3g}"


def test_hourglass_gets_every_stage_gradient(gradients):
    assert gradients["hourglass"] > gradients["stock"]
    assert gradients["hourglass_onehot"] > gradients["stock"]


def test_onehot_codec_head_starts_like_stock(gradients):
    """Same network, same target, same initialisation scheme: the same first gradient scale."""
    assert gradients["krcnn_onehot"] == pytest.approx(gradients["stock"], rel=1e-4)
