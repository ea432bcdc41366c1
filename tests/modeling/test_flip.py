"""TEST.KPEXT.FLIP: mirrored RoI features, heatmaps mirrored back with left/right swapped."""

import pytest
import torch

from kpext import add_kpext_config
from kpext.modeling.heads import (
    GaussianKeypointHead,
    HourglassKeypointHead,
    KpextKRCNNHead,
    SimCCKeypointHead,
)

from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.layers import ShapeSpec
from detectron2.structures import Boxes, Instances

NAMES = ["nose", "left_eye", "right_eye", "left_ear", "right_ear"]
FLIP = [0, 2, 1, 4, 3]
SHAPE = ShapeSpec(channels=8, height=14, width=14)
DATASET = "kpext_test_flip_faces"


def flip_cfg():
    if DATASET not in DatasetCatalog.list():
        DatasetCatalog.register(DATASET, lambda: [])
        MetadataCatalog.get(DATASET).set(
            keypoint_names=NAMES,
            keypoint_flip_map=[("left_eye", "right_eye"), ("left_ear", "right_ear")],
        )
    cfg = get_cfg()
    add_kpext_config(cfg)
    cfg.DATASETS.TRAIN = (DATASET,)
    cfg.MODEL.ROI_KEYPOINT_HEAD.NUM_KEYPOINTS = len(NAMES)
    cfg.MODEL.ROI_KEYPOINT_HEAD.CONV_DIMS = (16, 16)
    cfg.MODEL.KPEXT.GAUSSIAN.CONV_DIMS = (16, 16)
    cfg.MODEL.KPEXT.HOURGLASS.CHANNELS = 16
    cfg.TEST.KPEXT.FLIP = True
    return cfg


def mirror(heatmaps):
    return heatmaps.flip(-1)[:, FLIP]


HEADS = [KpextKRCNNHead, GaussianKeypointHead, HourglassKeypointHead, SimCCKeypointHead]


@pytest.mark.parametrize("head_cls", HEADS)
def test_flip_indices_come_from_the_dataset(head_cls):
    assert head_cls(flip_cfg(), SHAPE).decoder.flip_indices == FLIP


@pytest.mark.parametrize("head_cls", HEADS)
def test_flip_averaged_heatmaps_are_mirror_equivariant(head_cls):
    head = head_cls(flip_cfg(), SHAPE).eval()
    x = torch.randn(3, SHAPE.channels, 14, 14)
    with torch.no_grad():
        plain = head.predict_heatmaps(x)
        of_mirror = head.predict_heatmaps(x.flip(-1))
    # Mirroring the RoI mirrors the prediction and swaps left for right, exactly.
    torch.testing.assert_close(of_mirror, mirror(plain), rtol=1e-5, atol=1e-6)
    # ... which a single pass does not do: the flip test changes the prediction.
    with torch.no_grad():
        outputs = head.layers(x)
        single = head.inference_heatmaps(outputs[-1] if isinstance(outputs, list) else outputs)
    assert not torch.allclose(single, plain)


@pytest.mark.parametrize("head_cls", HEADS)
def test_left_and_right_keep_their_identity_on_a_symmetric_input(head_cls):
    head = head_cls(flip_cfg(), SHAPE).eval()
    x = torch.randn(2, SHAPE.channels, 14, 14)
    x = (x + x.flip(-1)) / 2  # a left-right symmetric RoI
    inst = Instances((400, 400))
    inst.pred_boxes = Boxes(torch.tensor([[10.0, 20.0, 130.0, 260.0], [200.0, 50.0, 290.0, 120.0]]))
    with torch.no_grad():
        kp = head(x, [inst])[0].pred_keypoints
    boxes = inst.pred_boxes.tensor
    # The left eye is the right eye mirrored about the box's vertical centre line.
    for left, right in ((1, 2), (3, 4)):
        mirrored_x = boxes[:, 0] + boxes[:, 2] - kp[:, right, 0]
        torch.testing.assert_close(kp[:, left, 0], mirrored_x, rtol=0, atol=1e-3)
        torch.testing.assert_close(kp[:, left, 1], kp[:, right, 1], rtol=0, atol=1e-3)
        torch.testing.assert_close(kp[:, left, 2], kp[:, right, 2], rtol=1e-5, atol=1e-6)


def test_flipped_pass_equals_plain_pass_for_a_mirror_symmetric_head():
    """A head with mirror-symmetric kernels and equal left/right predictors sees a symmetric
    RoI the same way mirrored: the flip test then returns the plain pass unchanged."""
    cfg = flip_cfg()
    cfg.TEST.KPEXT.FLIP = False
    head = GaussianKeypointHead(cfg, SHAPE).eval()
    with torch.no_grad():
        for module in head.modules():
            if isinstance(module, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
                module.weight.copy_((module.weight + module.weight.flip(-1)) / 2)
        weight, bias = head.predictor.weight, head.predictor.bias
        weight.copy_(weight[FLIP].add(weight).div(2))
        bias.copy_(bias[FLIP].add(bias).div(2))
    x = torch.randn(2, SHAPE.channels, 14, 14)
    x = (x + x.flip(-1)) / 2
    with torch.no_grad():
        plain = head.predict_heatmaps(x)
        head.decoder.flip_indices = FLIP
        flipped_test = head.predict_heatmaps(x)
    torch.testing.assert_close(flipped_test, plain, rtol=1e-5, atol=1e-6)
