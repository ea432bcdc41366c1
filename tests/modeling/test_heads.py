"""GaussianKeypointHead and HourglassKeypointHead: training, inference outputs, config errors."""

import pytest
import torch
from head_helpers import SHAPE, K, fit, head_cfg, training_instances

from kpext.modeling.codecs import GaussianCodec
from kpext.modeling.heads import GaussianKeypointHead, HourglassKeypointHead, KpextKRCNNHead

from detectron2.modeling import ROI_KEYPOINT_HEAD_REGISTRY
from detectron2.structures import Boxes, Instances


@pytest.mark.parametrize(
    "head_cls, target",
    [
        (GaussianKeypointHead, {}),
        (GaussianKeypointHead, {"LOSS": "focal"}),
        (GaussianKeypointHead, {"CODEC": "onehot"}),
        (HourglassKeypointHead, {}),
    ],
)
def test_training_lowers_the_loss(head_cls, target):
    head = head_cls(head_cfg(**target), SHAPE)
    history = fit(head)
    first, last = sum(history[0].values()), sum(history[-1].values())
    assert last < 0.5 * first, (history[0], history[-1])


def test_hourglass_supervises_every_stack():
    cfg = head_cfg()
    cfg.MODEL.KPEXT.HOURGLASS.NUM_STACKS = 3
    cfg.MODEL.KPEXT.HOURGLASS.STACK_LOSS_WEIGHTS = (0.5, 0.5, 1.0)
    head = HourglassKeypointHead(cfg, SHAPE)
    outputs = head.layers(torch.randn(2, SHAPE.channels, 14, 14))
    assert len(outputs) == 3 and all(o.shape == (2, K, 28, 28) for o in outputs)
    history = fit(head, steps=2)
    assert set(history[0]) == {"loss_keypoint_stack0", "loss_keypoint_stack1", "loss_keypoint"}


@pytest.mark.parametrize(
    "channels, expected",
    # (channels, groups) of the norms; bottlenecks have half the channels
    [(128, {(128, 32), (64, 32)}), (32, {(32, 32), (16, 16)}), (48, {(48, 16), (24, 8)})],
)
def test_group_norm_fits_thin_hourglasses(channels, expected):
    cfg = head_cfg()
    cfg.MODEL.KPEXT.HOURGLASS.CHANNELS = channels
    cfg.MODEL.KPEXT.HOURGLASS.NORM = "GN"
    head = HourglassKeypointHead(cfg, SHAPE)
    norms = {
        (m.num_channels, m.num_groups) for m in head.modules() if isinstance(m, torch.nn.GroupNorm)
    }
    assert norms == expected
    assert head.layers(torch.randn(2, SHAPE.channels, 14, 14))[-1].shape == (2, K, 28, 28)


def test_stack_loss_weights_scale_each_stack():
    cfg = head_cfg()
    head = HourglassKeypointHead(cfg, SHAPE)
    stages = [torch.randn(3, K, 28, 28)] * 2
    inst = training_instances(3, 4)
    keypoints, boxes = inst.gt_keypoints.tensor, inst.proposal_boxes.tensor
    head.stage_loss_weights = [1.0, 1.0]
    equal = head.heatmap_losses(stages, keypoints, boxes, 1)
    head.stage_loss_weights = [0.25, 1.0]
    scaled = head.heatmap_losses(stages, keypoints, boxes, 1)
    torch.testing.assert_close(scaled["loss_keypoint_stack0"], 0.25 * equal["loss_keypoint_stack0"])
    torch.testing.assert_close(scaled["loss_keypoint"], equal["loss_keypoint"])


@pytest.mark.parametrize("head_cls", [GaussianKeypointHead, HourglassKeypointHead, KpextKRCNNHead])
def test_inference_gives_image_keypoints_and_heatmaps(head_cls):
    head = head_cls(head_cfg(), SHAPE).eval()
    images = []
    for n in (3, 0, 2):
        inst = Instances((300, 300))
        xy = torch.rand(n, 2) * 150
        inst.pred_boxes = Boxes(torch.cat([xy, xy + 40 + torch.rand(n, 2) * 100], dim=1))
        images.append(inst)
    with torch.no_grad():
        out = head(torch.randn(5, SHAPE.channels, 14, 14), images)
    for inst in out:
        assert inst.pred_keypoints.shape == (len(inst), K, 3)
        assert inst.pred_keypoint_heatmaps.shape[:2] == (len(inst), K)
        boxes = inst.pred_boxes.tensor[:, None]
        kp = inst.pred_keypoints
        assert ((kp[..., 0] >= boxes[..., 0]) & (kp[..., 0] <= boxes[..., 2])).all()
        assert ((kp[..., 1] >= boxes[..., 1]) & (kp[..., 1] <= boxes[..., 3])).all()


def test_gaussian_head_decodes_its_own_targets():
    """A head whose output equals the Gaussian targets returns the keypoints (sub-pixel)."""
    head = GaussianKeypointHead(head_cfg(), SHAPE).eval()
    inst = training_instances(3, 5)
    boxes = inst.proposal_boxes.tensor
    targets = head.codec.encode(inst.gt_keypoints.tensor, boxes, (28, 28))
    decoded = head.decode(head.inference_heatmaps(targets.heatmaps), boxes)
    visible = inst.gt_keypoints.tensor[..., 2] > 0
    cell = ((boxes[:, 2:] - boxes[:, :2]) / 28).max(dim=1).values[:, None].expand(-1, K)
    error = (decoded[..., :2] - inst.gt_keypoints.tensor[..., :2]).norm(dim=-1)
    assert (error[visible] < 0.15 * cell[visible]).all()


def test_oks_loss_is_added_and_trains():
    cfg = head_cfg()
    cfg.MODEL.KPEXT.OKS_LOSS_WEIGHT = 1.0
    cfg.TEST.KEYPOINT_OKS_SIGMAS = [0.05] * K
    head = GaussianKeypointHead(cfg, SHAPE)
    history = fit(head, steps=40)
    assert "loss_keypoint_oks" in history[0]
    assert history[-1]["loss_keypoint_oks"] < history[0]["loss_keypoint_oks"]


def test_configuration_errors_are_clear():
    cfg = head_cfg()
    cfg.MODEL.KPEXT.OKS_LOSS_WEIGHT = 1.0
    cfg.TEST.KEYPOINT_OKS_SIGMAS = [0.05] * (K + 1)
    with pytest.raises(ValueError, match=f"needs {K} OKS sigmas, got {K + 1}"):
        GaussianKeypointHead(cfg, SHAPE)
    cfg = head_cfg(LOSS="l1")
    with pytest.raises(ValueError, match="TARGET.LOSS must be one of"):
        GaussianKeypointHead(cfg, SHAPE)
    cfg = head_cfg()
    cfg.MODEL.KPEXT.HOURGLASS.STACK_LOSS_WEIGHTS = (1.0,)
    with pytest.raises(ValueError, match="has 1 values for 2 stacks"):
        HourglassKeypointHead(cfg, SHAPE)
    cfg = head_cfg(CODEC="gauss")
    with pytest.raises(ValueError, match="gaussian, onehot"):
        GaussianKeypointHead(cfg, SHAPE)


def test_registered_with_detectron2():
    for name in ("GaussianKeypointHead", "HourglassKeypointHead", "KpextKRCNNHead"):
        assert ROI_KEYPOINT_HEAD_REGISTRY.get(name).__name__ == name
    assert isinstance(GaussianKeypointHead(head_cfg(), SHAPE).codec, GaussianCodec)


def test_gaussian_head_up_scale_is_a_bilinear_upsampling_of_the_same_maps():
    cfg = head_cfg(CODEC="softmax_gaussian", SIGMA=2.0)
    torch.manual_seed(0)
    plain = GaussianKeypointHead(cfg, SHAPE)
    cfg.MODEL.KPEXT.GAUSSIAN.UP_SCALE = 2
    torch.manual_seed(0)
    upsampled = GaussianKeypointHead(cfg, SHAPE)
    x = torch.randn(3, SHAPE.channels, 14, 14)
    small, large = plain.layers(x), upsampled.layers(x)
    assert small.shape == (3, K, 28, 28) and large.shape == (3, K, 56, 56)
    # Independent check: a 2x bilinear upsampling (half-pixel centres) averages neighbours
    # with weights 1/4 and 3/4 in each direction; cell (2i+1, 2j+1) lies 1/4 cell past (i, j).
    i, j = 10, 7
    expected = (
        9 * small[..., i, j]
        + 3 * small[..., i + 1, j]
        + 3 * small[..., i, j + 1]
        + small[..., i + 1, j + 1]
    ) / 16
    assert torch.allclose(large[..., 2 * i + 1, 2 * j + 1], expected, atol=1e-6)


def test_softmax_gaussian_codec_trains_a_gaussian_head():
    head = GaussianKeypointHead(head_cfg(CODEC="softmax_gaussian", SIGMA=1.5), SHAPE)
    losses = [step["loss_keypoint"] for step in fit(head, steps=30)]
    assert losses[-1] < 0.8 * losses[0], losses
