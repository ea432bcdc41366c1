"""The part every kpext keypoint head shares: targets, loss and decoding around a network.

A head turns pooled RoI features into heatmaps (``layers``); pooling and routing
stay in Detectron2's ROI heads. Targets and decoding come from a codec, so the
same network can be trained with another scheme and a new scheme serves every head.
"""
from __future__ import annotations

from typing import Dict, List

import torch
from torch import nn

from detectron2.structures import Instances
from detectron2.utils.events import get_event_storage


def gather_keypoint_targets(instances: List[Instances]):
    """Concatenate training RoIs and their ground-truth keypoints over images.

    Returns:
        (R x K x 3 keypoints in continuous image coordinates, R x 4 proposal boxes).
    """
    keypoints = [i.gt_keypoints.tensor for i in instances if len(i)]
    boxes = [i.proposal_boxes.tensor for i in instances if len(i)]
    if not keypoints:
        return None, None
    return torch.cat(keypoints), torch.cat(boxes)


def attach_predictions(
    instances: List[Instances], keypoints: torch.Tensor, heatmaps: torch.Tensor
) -> None:
    """Split R x K x 3 keypoints and R x K x H x W heatmaps back onto each image's instances."""
    counts = [len(i) for i in instances]
    for inst, kp, hm in zip(instances, keypoints.split(counts), heatmaps.split(counts)):
        inst.pred_keypoints = kp
        inst.pred_keypoint_heatmaps = hm


def record_skipped_batch() -> None:
    """Count batches without any usable keypoint target, as Detectron2 does."""
    try:
        storage = get_event_storage()
    except AssertionError:  # called outside a trainer (tests, scripts)
        return
    skipped = storage.latest().get("kpts_num_skipped_batches", (0, 0))[0] + 1
    storage.put_scalar("kpts_num_skipped_batches", skipped, smoothing_hint=False)


class KeypointHeadBase(nn.Module):
    """forward(x, instances): R x C x S x S pooled features -> losses (train) or instances.

    Subclasses define ``layers(x) -> R x K x H x W`` heatmaps and ``losses``.
    In inference, ``pred_keypoints`` (N x K x 3: x, y, score in image
    coordinates) and ``pred_keypoint_heatmaps`` (N x K x H x W) are set on
    each image's instances.
    """

    def __init__(self, *, num_keypoints: int, codec, loss_weight: float = 1.0):
        super().__init__()
        self.num_keypoints = num_keypoints
        self.codec = codec
        self.loss_weight = loss_weight

    def layers(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def losses(self, heatmaps: torch.Tensor, instances: List[Instances]) -> Dict[str, torch.Tensor]:
        raise NotImplementedError

    def decode(self, heatmaps: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """R x K x H x W heatmaps, R x 4 boxes -> R x K x 3 (x, y, score)."""
        return self.codec.decode(heatmaps, boxes)

    def forward(self, x: torch.Tensor, instances: List[Instances]):
        heatmaps = self.layers(x)
        if self.training:
            return self.losses(heatmaps, instances)
        boxes = torch.cat([i.pred_boxes.tensor for i in instances]) if instances else x.new_zeros((0, 4))
        attach_predictions(instances, self.decode(heatmaps, boxes), heatmaps)
        return instances
