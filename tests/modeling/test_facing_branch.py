"""The facing branch: trained on the RoIs' gt_facing its loss falls, RoIs without a facing
class add nothing, inference gives pred_facing, and its probabilities decide a person's
left/right orientation where the heatmaps leave it open."""

import torch

from kpext import add_kpext_config
from kpext.modeling.codecs.left_right import consistent_left_right
from kpext.modeling.decoding import orientation_costs
from kpext.modeling.losses import facing_loss

from detectron2.config import get_cfg
from detectron2.layers import ShapeSpec
from detectron2.modeling.roi_heads import build_keypoint_head
from detectron2.structures import Boxes, Instances, Keypoints
from detectron2.utils.events import EventStorage

K = 17
CHANNELS = 16


def head(name="KpextKRCNNHead", weight=1.0, left_right="keypoint"):
    cfg = get_cfg()
    add_kpext_config(cfg)
    cfg.MODEL.ROI_KEYPOINT_HEAD.NAME = name
    cfg.MODEL.ROI_KEYPOINT_HEAD.CONV_DIMS = (16,)
    cfg.MODEL.KPEXT.GAUSSIAN.CONV_DIMS = (16,)
    cfg.MODEL.KPEXT.FACING.LOSS_WEIGHT = weight
    cfg.DATASETS.TRAIN = ("keypoints_coco_2017_train",)
    cfg.TEST.KPEXT.LEFT_RIGHT = left_right
    return build_keypoint_head(cfg, ShapeSpec(channels=CHANNELS, height=14, width=14))


def rois(facing):
    g = torch.Generator().manual_seed(0)
    n = len(facing)
    inst = Instances((200, 200))
    boxes = torch.tensor([[10.0, 10.0, 110.0, 150.0]]).repeat(n, 1)
    inst.proposal_boxes = Boxes(boxes)
    inst.gt_boxes = Boxes(boxes)
    kp = torch.zeros(n, K, 3)
    kp[..., :2] = 20 + torch.rand(n, K, 2, generator=g) * 80
    kp[..., 2] = 2
    inst.gt_keypoints = Keypoints(kp)
    inst.gt_facing = torch.tensor(facing)
    # Features that tell the classes apart: the class index written into one channel.
    x = torch.randn(n, CHANNELS, 14, 14, generator=g) * 0.1
    x[:, 0] += torch.tensor(facing, dtype=torch.float32).clamp(min=0)[:, None, None]
    return x, inst


def test_facing_loss_falls_with_training_steps():
    model = head().train()
    x, inst = rois([0, 1, 2, 3, 0, 1, 2, 3])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    history = []
    with EventStorage():
        for _ in range(40):
            losses = model(x, [inst])
            optimizer.zero_grad()
            sum(losses.values()).backward()
            optimizer.step()
            history.append(float(losses["loss_keypoint_facing"]))
    assert history[0] > 1.2  # about log(4) at the start
    assert history[-1] < 0.5 * history[0]


def test_rois_without_a_facing_class_add_no_loss():
    logits = torch.randn(3, 4, requires_grad=True)
    loss = facing_loss(logits, torch.tensor([-1, -1, -1]))
    loss.backward()
    assert float(loss) == 0.0 and float(logits.grad.abs().sum()) == 0.0
    expected = torch.nn.functional.cross_entropy(logits[:1], torch.tensor([2]))
    assert torch.allclose(facing_loss(logits, torch.tensor([2, -1, -1])), expected)


def test_heads_without_the_weight_have_no_branch_and_codec_heads_have_one():
    assert head(weight=0.0).facing is None
    assert "loss_keypoint_facing" not in head(weight=0.0).train()(*_one(rois([0, 1])))
    assert head("GaussianKeypointHead").facing is not None
    assert head("KRCNNCodecKeypointHead").facing is not None


def _one(pair):
    x, inst = pair
    return x, [inst]


def test_inference_gives_facing_probabilities():
    model = head(left_right="person").eval()
    inst = Instances((200, 200))
    inst.pred_boxes = Boxes(torch.tensor([[10.0, 10.0, 110.0, 150.0], [0.0, 0.0, 50.0, 80.0]]))
    with torch.no_grad():
        (out,) = model(torch.randn(2, CHANNELS, 14, 14), [inst])
    assert out.pred_facing.shape == (2, 4)
    assert torch.allclose(out.pred_facing.sum(1), torch.ones(2))
    assert out.pred_keypoints.shape == (2, K, 3)


def test_a_confident_view_decides_an_orientation_the_heatmaps_leave_open():
    # One pair, exchanged on the heatmaps at equal cost either way, and below min_pairs.
    maps = torch.zeros(1, 3, 56, 56)
    maps[0, 1, 20, 10] = maps[0, 1, 20, 45] = 5.0
    maps[0, 2, 20, 45] = maps[0, 2, 20, 10] = 5.0
    keypoints = torch.tensor([[[28.5, 10.5, 5.0], [10.5, 20.5, 5.0], [45.5, 20.5, 5.0]]])
    box, pairs = torch.tensor([[0.0, 0.0, 56.0, 56.0]]), torch.tensor([[1, 2]])
    assert torch.equal(consistent_left_right(keypoints, maps, box, pairs), keypoints)
    front = orientation_costs(torch.tensor([[0.9, 0.05, 0.03, 0.02]]), 8.0)
    out = consistent_left_right(keypoints, maps, box, pairs, orientation_cost=front)
    assert out[0, 1, 0] > out[0, 2, 0]  # seen from the front: the left point on the right
    back = orientation_costs(torch.tensor([[0.05, 0.9, 0.03, 0.02]]), 8.0)
    assert torch.equal(consistent_left_right(keypoints, maps, box, pairs, orientation_cost=back),
                       keypoints)  # fmt: skip
