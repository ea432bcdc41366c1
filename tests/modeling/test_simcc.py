"""SimCCKeypointHead: its separable logits under the softmax_gaussian codec are SimCC's 1-D
classification (the loss against 1-D cross-entropies computed here apart, the decoded
position against the two 1-D argmaxes), and the head trains, decodes and reads its keys."""

import numpy as np
import pytest
import torch
from head_helpers import SHAPE, K, fit, head_cfg

from kpext.modeling.codecs import SoftmaxGaussianCodec
from kpext.modeling.heads import SimCCKeypointHead

from detectron2.layers import ShapeSpec
from detectron2.modeling import ROI_KEYPOINT_HEAD_REGISTRY


def simcc_cfg(**simcc):
    cfg = head_cfg(CODEC="softmax_gaussian")
    cfg.MODEL.ROI_KEYPOINT_HEAD.NAME = "SimCCKeypointHead"
    cfg.MODEL.KPEXT.SIMCC.CONV_DIMS = (16, 16)
    cfg.MODEL.KPEXT.SIMCC.HIDDEN_DIM = 32
    for key, value in simcc.items():
        setattr(cfg.MODEL.KPEXT.SIMCC, key, value)
    return cfg


def one_axis_cross_entropy(logits: np.ndarray, centre: float, sigma: float) -> float:
    """SimCC's loss on one axis: cross-entropy of softmax(logits) against a Gaussian label of
    ``sigma`` bins at continuous position ``centre`` (bin i spans [i, i + 1))."""
    bins = np.arange(len(logits)) + 0.5
    label = np.exp(-((bins - centre) ** 2) / (2 * sigma**2))
    label /= label.sum()
    log_probability = logits - logits.max() - np.log(np.exp(logits - logits.max()).sum())
    return float(-(label * log_probability).sum())


def test_the_codec_on_separable_logits_is_simccs_one_dimensional_loss():
    g = torch.Generator().manual_seed(0)
    r, h, w, sigma = 3, 20, 24, 1.5
    x_logits = torch.randn(r, K, w, generator=g, dtype=torch.float64) * 3
    y_logits = torch.randn(r, K, h, generator=g, dtype=torch.float64) * 3
    raw = y_logits[..., :, None] + x_logits[..., None, :]
    boxes = torch.tensor([[0.0, 0.0, 48.0, 40.0], [10.0, 5.0, 34.0, 45.0], [3.0, 3.0, 27.0, 23.0]])
    boxes = boxes.double()
    keypoints = torch.zeros(r, K, 3, dtype=torch.float64)
    keypoints[..., :2] = boxes[:, None, :2] + torch.rand(r, K, 2, generator=g).double() * (
        boxes[:, None, 2:] - boxes[:, None, :2]
    )
    keypoints[..., 2] = 2
    keypoints[1, 2, 2] = 0  # unlabelled: no target
    codec = SoftmaxGaussianCodec(sigma=sigma)
    loss = codec.loss(raw, codec.encode(keypoints, boxes, (h, w)))
    expected = []
    for i in range(r):
        x0, y0, x1, y1 = boxes[i].tolist()
        for k in range(K):
            if keypoints[i, k, 2] == 0:
                continue
            u = (keypoints[i, k, 0].item() - x0) / (x1 - x0) * w
            v = (keypoints[i, k, 1].item() - y0) / (y1 - y0) * h
            expected.append(
                one_axis_cross_entropy(x_logits[i, k].numpy(), u, sigma)
                + one_axis_cross_entropy(y_logits[i, k].numpy(), v, sigma)
            )
    assert float(loss) == pytest.approx(np.mean(expected), rel=1e-6)


def test_the_decoded_cell_is_each_axis_argmax():
    head = SimCCKeypointHead(simcc_cfg(MAP_SIZE=40), SHAPE).eval()
    x = torch.randn(5, SHAPE.channels, 14, 14)
    with torch.no_grad():
        x_logits, y_logits = head.axis_logits(x)
        maps = head.layers(x)
        xy, _ = head.codec.locate(maps)
    assert maps.shape == (5, K, 40, 40)
    # The Newton step stays within the peak cell's half-width on each axis.
    assert torch.equal(xy[..., 0].floor().long().clamp(0, 39), x_logits.argmax(-1))
    assert torch.equal(xy[..., 1].floor().long().clamp(0, 39), y_logits.argmax(-1))


def test_training_lowers_the_loss():
    head = SimCCKeypointHead(simcc_cfg(), SHAPE)
    history = fit(head)
    first, last = sum(history[0].values()), sum(history[-1].values())
    assert last < 0.5 * first, (history[0], history[-1])


def test_keys_are_read_and_the_head_is_registered():
    cfg = simcc_cfg(CONV_DIMS=(8, 8, 8), HIDDEN_DIM=24, MAP_SIZE=30)
    head = ROI_KEYPOINT_HEAD_REGISTRY.get("SimCCKeypointHead")(cfg, SHAPE)
    assert [c.out_channels for c in head.convs] == [8, 8, 8]
    assert head.hidden[0].out_features == 24
    assert head.layers(torch.randn(2, SHAPE.channels, 14, 14)).shape == (2, K, 30, 30)
    with pytest.raises(ValueError, match="MODEL.KPEXT.SIMCC.MAP_SIZE"):
        SimCCKeypointHead(simcc_cfg(MAP_SIZE=1), SHAPE)
    with pytest.raises(ValueError, match="POOLER_RESOLUTION"):  # no RoI size: no guess
        SimCCKeypointHead(simcc_cfg(), ShapeSpec(channels=SHAPE.channels))
