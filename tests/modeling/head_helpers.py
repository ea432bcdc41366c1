"""What the head tests share: a config for building one keypoint head on its own (no
detector), pooled-feature shapes, training RoIs and a short fit on one fixed batch."""

import torch

from kpext import add_kpext_config

from detectron2.config import CfgNode, get_cfg
from detectron2.layers import ShapeSpec
from detectron2.structures import Boxes, Instances, Keypoints
from detectron2.utils.events import EventStorage

K = 4
SHAPE = ShapeSpec(channels=16, height=14, width=14)


def head_cfg(*, num_keypoints: int = K, width: int = 32, depth: int = 2, **target) -> CfgNode:
    """kpext's config for one head of ``num_keypoints`` keypoints, every head's layers
    ``width`` channels wide (``depth`` convs for the KRCNN, Gaussian and SimCC heads, the
    hourglass's channels), and ``MODEL.KPEXT.TARGET`` keys from ``target`` (``CODEC="onehot"``,
    ...)."""
    cfg = get_cfg()
    add_kpext_config(cfg)
    cfg.MODEL.ROI_KEYPOINT_HEAD.NUM_KEYPOINTS = num_keypoints
    cfg.MODEL.ROI_KEYPOINT_HEAD.CONV_DIMS = (width,) * depth
    cfg.MODEL.KPEXT.GAUSSIAN.CONV_DIMS = (width,) * depth
    cfg.MODEL.KPEXT.SIMCC.CONV_DIMS = (width,) * depth
    cfg.MODEL.KPEXT.HOURGLASS.CHANNELS = width
    for key, value in target.items():
        setattr(cfg.MODEL.KPEXT.TARGET, key, value)
    return cfg


def training_instances(num: int, seed: int) -> Instances:
    """RoIs around persons with keypoints inside; matched gt boxes as StandardROIHeads sets them."""
    g = torch.Generator().manual_seed(seed)
    inst = Instances((200, 200))
    xy = torch.rand(num, 2, generator=g) * 100
    boxes = torch.cat([xy, xy + torch.rand(num, 2, generator=g) * 60 + 30], dim=1)
    inst.proposal_boxes = Boxes(boxes)
    inst.gt_boxes = Boxes(boxes + torch.randn(num, 4, generator=g))
    kp = torch.zeros(num, K, 3)
    kp[..., :2] = boxes[:, None, :2] + (torch.rand(num, K, 2, generator=g) * 0.8 + 0.1) * (
        boxes[:, None, 2:] - boxes[:, None, :2]
    )
    kp[..., 2] = 2
    if num:
        kp[0, 1, 2] = 0  # one unlabelled keypoint: no target
    inst.gt_keypoints = Keypoints(kp)
    return inst


def fit(head, steps: int = 40, lr: float = 0.003):
    """Train ``head`` on one fixed batch of features; returns the total loss per step."""
    torch.manual_seed(0)
    x = torch.randn(6, SHAPE.channels, 14, 14)
    instances = [training_instances(4, 1), training_instances(2, 2)]
    optimizer = torch.optim.Adam(head.parameters(), lr=lr)
    head.train()
    history = []
    with EventStorage():
        for _ in range(steps):
            losses = head(x, instances)
            total = sum(losses.values())
            optimizer.zero_grad()
            total.backward()
            optimizer.step()
            history.append({k: v.item() for k, v in losses.items()})
    return history
