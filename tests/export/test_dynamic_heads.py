"""Every kpext head, traced at one box count per image, runs at others (0, several images):
its predictions are split by traced sizes, not by a frozen len()."""

import warnings

import pytest
import torch
from torch import nn

from kpext import add_kpext_config
from kpext.export import quiet_tracer

from detectron2.config import get_cfg
from detectron2.layers import ShapeSpec
from detectron2.modeling.roi_heads import build_keypoint_head
from detectron2.structures import Boxes, Instances

HEADS = [
    ("KpextKRCNNHead", ()),
    ("GaussianKeypointHead", ()),
    ("GaussianKeypointHead", ("MODEL.KPEXT.TARGET.CODEC", "softmax_gaussian")),
    ("GaussianKeypointHead", ("MODEL.KPEXT.TARGET.LOSS", "focal")),
    ("HourglassKeypointHead", ()),
    ("HourglassKeypointHead", ("MODEL.KPEXT.TARGET.CODEC", "onehot")),
    ("SimCCKeypointHead", ("MODEL.KPEXT.TARGET.CODEC", "softmax_gaussian")),
]


def small_head(name, opts):
    cfg = get_cfg()
    add_kpext_config(cfg)
    cfg.merge_from_list([
        "MODEL.ROI_KEYPOINT_HEAD.NAME", name, "MODEL.ROI_KEYPOINT_HEAD.CONV_DIMS", "(16, 16)",
        "MODEL.KPEXT.GAUSSIAN.CONV_DIMS", "(16,)", "MODEL.KPEXT.HOURGLASS.CHANNELS", "16",
        "MODEL.KPEXT.SIMCC.CONV_DIMS", "(16,)", "MODEL.KPEXT.SIMCC.HIDDEN_DIM", "16",
        "MODEL.ROI_KEYPOINT_HEAD.NUM_KEYPOINTS", "5", *opts,
    ])  # fmt: skip
    torch.manual_seed(0)
    return build_keypoint_head(cfg, ShapeSpec(channels=8, height=7, width=7)).eval()


def random_boxes(n: int, generator) -> torch.Tensor:
    xy = torch.rand(n, 2, generator=generator) * 100
    return torch.cat([xy, xy + 10 + torch.rand(n, 2, generator=generator) * 150], dim=1)


def run_head(head, features, *boxes):
    """Per image keypoints of the head on R x C x 7 x 7 features and each image's boxes."""
    instances = []
    for b in boxes:
        inst = Instances((300, 300))
        inst.pred_boxes = Boxes(b)
        instances.append(inst)
    head(features, instances)
    return tuple(i.pred_keypoints for i in instances)


class HeadOnBoxes(nn.Module):
    """(features, boxes of image 1, boxes of image 2, ...) -> each image's keypoints."""

    def __init__(self, head):
        super().__init__()
        self.head = head

    def forward(self, features, *boxes):
        return run_head(self.head, features, *boxes)


@pytest.mark.parametrize("name,opts", HEADS, ids=[n + "".join(o[1:]) for n, o in HEADS])
def test_head_traced_at_one_count_runs_at_others(name, opts):
    head = small_head(name, opts)
    g = torch.Generator().manual_seed(1)

    def inputs(*counts):
        return (torch.randn(sum(counts), 8, 7, 7, generator=g),) + tuple(
            random_boxes(n, g) for n in counts
        )

    with quiet_tracer(), torch.no_grad():
        two = torch.jit.trace(HeadOnBoxes(head), inputs(15, 15), check_trace=False)
        one = torch.jit.trace(HeadOnBoxes(head), inputs(6), check_trace=False)
    for traced, counts in [
        (two, (12, 10)), (two, (0, 3)), (two, (4, 0)), (two, (1, 1)), (two, (15, 15)),
        (one, (0,)), (one, (1,)), (one, (9,)),
    ]:  # fmt: skip
        args = inputs(*counts)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            expected = run_head(head, *args)
            got = traced(*args)
        assert [len(k) for k in got] == list(counts)
        for e, k in zip(expected, got):
            torch.testing.assert_close(k, e, rtol=1e-4, atol=1e-3)
