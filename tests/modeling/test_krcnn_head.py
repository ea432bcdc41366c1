"""KpextKRCNNHead against Detectron2's KRCNNConvDeconvUpsampleHead and its decoding."""

import pytest
import torch

from kpext import add_kpext_config
from kpext.modeling.codecs import OneHotCodec
from kpext.modeling.heads import KpextKRCNNHead

from detectron2.config import get_cfg
from detectron2.layers import ShapeSpec
from detectron2.modeling import ROI_KEYPOINT_HEAD_REGISTRY
from detectron2.modeling.roi_heads.keypoint_head import KRCNNConvDeconvUpsampleHead
from detectron2.structures import Boxes, Instances, Keypoints
from detectron2.structures.keypoints import heatmaps_to_keypoints
from detectron2.utils.events import EventStorage

K = 5
SHAPE = ShapeSpec(channels=16, height=14, width=14)


def small_cfg(normalize_by_visible: bool = True):
    cfg = get_cfg()
    add_kpext_config(cfg)
    cfg.MODEL.ROI_KEYPOINT_HEAD.CONV_DIMS = (32, 32)
    cfg.MODEL.ROI_KEYPOINT_HEAD.NUM_KEYPOINTS = K
    cfg.MODEL.ROI_KEYPOINT_HEAD.NORMALIZE_LOSS_BY_VISIBLE_KEYPOINTS = normalize_by_visible
    return cfg


def random_training_instances(num: int, image_size: int = 200) -> Instances:
    """RoIs with keypoints partly inside, partly outside, some invisible."""
    inst = Instances((image_size, image_size))
    xy = torch.rand(num, 2) * 100
    boxes = torch.cat([xy, xy + torch.rand(num, 2) * 80 + 10], dim=1)
    inst.proposal_boxes = Boxes(boxes)
    kp = torch.rand(num, K, 3)
    kp[..., :2] = boxes[:, None, :2] + (kp[..., :2] * 1.2 - 0.1) * (
        boxes[:, None, 2:] - boxes[:, None, :2]
    )
    kp[..., 2] = (torch.rand(num, K) > 0.3).float() * 2
    kp[0, 0, :2] = boxes[0, 2:]  # exactly on the far edge: Detectron2 puts it in the last cell
    kp[0, 0, 2] = 2
    inst.gt_keypoints = Keypoints(kp)
    return inst


def peaked_logits(num_rois: int, size: int = 56, amplitude: float = 8.0, noise: float = 0.3):
    """Heatmap logits with one Gaussian peak per keypoint, like a trained head's."""
    yy, xx = torch.meshgrid(torch.arange(size).float(), torch.arange(size).float(), indexing="ij")
    centre = torch.rand(num_rois, K, 2) * (size - 6) + 3
    dist2 = (xx - centre[..., 0, None, None]) ** 2 + (yy - centre[..., 1, None, None]) ** 2
    return amplitude * torch.exp(-dist2 / 8.0) + noise * torch.randn(num_rois, K, size, size)


def random_boxes(num: int) -> torch.Tensor:
    xy = torch.rand(num, 2) * 300
    return torch.cat([xy, xy + torch.rand(num, 2) * 250 + 5], dim=1)


def test_registered():
    assert ROI_KEYPOINT_HEAD_REGISTRY.get("KpextKRCNNHead") is KpextKRCNNHead


@pytest.mark.parametrize("normalize_by_visible", [True, False])
def test_same_logits_and_loss_as_detectron2(normalize_by_visible):
    cfg = small_cfg(normalize_by_visible)
    reference = KRCNNConvDeconvUpsampleHead(cfg, SHAPE)
    ours = KpextKRCNNHead(cfg, SHAPE)
    ours.load_state_dict(reference.state_dict())  # same parameter names: checkpoints interchange
    x = torch.randn(6, SHAPE.channels, 14, 14)
    instances = [random_training_instances(4), random_training_instances(2)]

    logits = ours.layers(x)
    assert logits.shape == (6, K, 56, 56)
    torch.testing.assert_close(logits, reference.layers(x), rtol=0, atol=0)

    with EventStorage():
        ref_loss = reference(x, instances)["loss_keypoint"]
        our_loss = ours(x, instances)["loss_keypoint"]
    torch.testing.assert_close(our_loss, ref_loss, rtol=1e-6, atol=1e-6)


def test_loss_is_zero_but_connected_without_visible_keypoints():
    head = KpextKRCNNHead(small_cfg(), SHAPE)
    inst = random_training_instances(3)
    inst.gt_keypoints.tensor[..., 2] = 0
    x = torch.randn(3, SHAPE.channels, 14, 14)
    with EventStorage():
        loss = head(x, [inst])["loss_keypoint"]
    loss.backward()
    assert loss.item() == 0.0
    assert head.score_lowres.weight.grad is not None


def test_decode_agrees_with_detectron2():
    boxes = random_boxes(20)
    logits = peaked_logits(20)
    reference = heatmaps_to_keypoints(logits, boxes)[:, :, [0, 1, 3]]
    ours = OneHotCodec().decode(logits, boxes)
    assert ours.shape == (20, K, 3)
    cell = ((boxes[:, 2:] - boxes[:, :2]) / 56)[:, None, :]
    assert ((ours[..., :2] - reference[..., :2]).abs() <= cell).all()
    torch.testing.assert_close(ours[..., 2], reference[..., 2], rtol=1e-4, atol=0)
    # Scores rank keypoints exactly as Detectron2's do.
    assert torch.equal(ours[..., 2].flatten().argsort(), reference[..., 2].flatten().argsort())


def test_decode_handles_tiny_and_empty_boxes():
    codec = OneHotCodec()
    assert codec.decode(torch.zeros(0, K, 56, 56), torch.zeros(0, 4)).shape == (0, K, 3)
    # A sub-pixel box (clamped to 1 x 1 output pixel) and a thin one (output coarser than the
    # map in x).
    boxes = torch.tensor([[10.0, 10.0, 10.5, 10.2], [0.0, 0.0, 20.0, 400.0]])
    logits = peaked_logits(2)
    ours = codec.decode(logits, boxes)
    reference = heatmaps_to_keypoints(logits, boxes)[:, :, [0, 1, 3]]
    torch.testing.assert_close(ours[..., :2], reference[..., :2], rtol=0, atol=1e-3)
    torch.testing.assert_close(ours[..., 2], reference[..., 2], rtol=1e-4, atol=0)


def test_inference_sets_keypoints_in_image_coordinates():
    head = KpextKRCNNHead(small_cfg(), SHAPE).eval()
    images = []
    for n in (3, 0, 2):
        inst = Instances((300, 300))
        inst.pred_boxes = Boxes(random_boxes(n))
        images.append(inst)
    x = torch.randn(5, SHAPE.channels, 14, 14)
    with torch.no_grad():
        out = head(x, images)
    for inst in out:
        assert inst.pred_keypoints.shape == (len(inst), K, 3)
        assert inst.pred_keypoint_heatmaps.shape == (len(inst), K, 56, 56)
        boxes = inst.pred_boxes.tensor
        kp = inst.pred_keypoints
        assert (kp[..., 0] >= boxes[:, None, 0]).all() and (kp[..., 0] <= boxes[:, None, 2]).all()
        assert (kp[..., 1] >= boxes[:, None, 1]).all() and (kp[..., 1] <= boxes[:, None, 3]).all()
