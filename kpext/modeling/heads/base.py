"""The part every kpext keypoint head shares: targets, loss and decoding around a network.

A head turns pooled RoI features into heatmaps (``layers``); pooling and routing
stay in Detectron2's ROI heads. Targets and decoding come from a codec, so the
same network can be trained with another scheme and a new scheme serves every head.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import torch
from torch import nn

from detectron2.data.detection_utils import create_keypoint_hflip_indices
from detectron2.structures import Instances
from detectron2.utils.events import get_event_storage

from ...data import dataset_oks_sigmas
from ..codecs.geometry import heatmap_to_image
from ..losses import oks_loss, soft_argmax_2d


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


def oks_loss_args(cfg, num_keypoints: int) -> dict:
    """``oks_loss_weight`` and ``oks_sigmas`` for a head's ``from_config``.

    Sigmas: ``TEST.KEYPOINT_OKS_SIGMAS`` if set, else the first training
    dataset's (see :func:`kpext.data.dataset_oks_sigmas`); only looked up when the loss is on.
    """
    weight = cfg.MODEL.KPEXT.OKS_LOSS_WEIGHT
    if weight <= 0:
        return {"oks_loss_weight": 0.0, "oks_sigmas": ()}
    sigmas = list(cfg.TEST.KEYPOINT_OKS_SIGMAS)
    if cfg.DATASETS.TRAIN:
        sigmas = dataset_oks_sigmas(cfg.DATASETS.TRAIN[0], sigmas)
    return {"oks_loss_weight": weight, "oks_sigmas": sigmas}


def flip_test_args(cfg) -> dict:
    """``flip_indices`` for a head's ``from_config``: from the training datasets' flip map
    when ``TEST.KPEXT.FLIP`` is on (Detectron2's ``create_keypoint_hflip_indices``)."""
    if not cfg.TEST.KPEXT.FLIP:
        return {"flip_indices": None}
    if not cfg.DATASETS.TRAIN:
        raise ValueError("TEST.KPEXT.FLIP needs DATASETS.TRAIN to read the keypoint flip map from")
    return {"flip_indices": [int(i) for i in create_keypoint_hflip_indices(cfg.DATASETS.TRAIN)]}


def _last_stage(outputs):
    return outputs[-1] if isinstance(outputs, (list, tuple)) else outputs


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

    Subclasses define ``layers(x)``, returning R x K x H x W heatmaps or, for
    heads with intermediate supervision, a list of them (one per stage, the last
    one decoded), and ``heatmap_losses``. The base adds the optional OKS loss on
    soft-argmax coordinates of the last stage. In inference, ``pred_keypoints``
    (N x K x 3: x, y, score in image coordinates) and ``pred_keypoint_heatmaps``
    (N x K x H x W) are set on each image's instances.
    """

    def __init__(
        self,
        *,
        num_keypoints: int,
        codec,
        loss_weight: float = 1.0,
        oks_loss_weight: float = 0.0,
        oks_sigmas: Sequence[float] = (),
        soft_argmax_beta: float = 1.0,
        flip_indices: Optional[Sequence[int]] = None,
    ):
        """
        Args:
            flip_indices: K indices, the keypoint each one becomes in a mirrored image
                (``TEST.KPEXT.FLIP``); None disables the flip test.
            codec: encodes training targets and decodes heatmaps (see ``kpext.modeling.codecs``).
            loss_weight: weight of the heatmap loss.
            oks_loss_weight: weight of ``1 - OKS`` on soft-argmax coordinates; 0 disables it.
            oks_sigmas: K per-keypoint OKS sigmas (required when the OKS loss is on).
            soft_argmax_beta: temperature of the soft-argmax: softmax(beta * heatmap).
        """
        super().__init__()
        if oks_loss_weight > 0 and len(oks_sigmas) != num_keypoints:
            raise ValueError(
                f"The OKS loss needs {num_keypoints} OKS sigmas, got {len(oks_sigmas)} "
                "(set TEST.KEYPOINT_OKS_SIGMAS or register the dataset with its sigmas)"
            )
        self.num_keypoints = num_keypoints
        self.codec = codec
        self.loss_weight = loss_weight
        self.oks_loss_weight = oks_loss_weight
        self.soft_argmax_beta = soft_argmax_beta
        self.register_buffer("oks_sigmas", torch.tensor(list(oks_sigmas), dtype=torch.float32), persistent=False)
        if flip_indices is not None and sorted(flip_indices) != list(range(num_keypoints)):
            raise ValueError(f"flip_indices must be a permutation of {num_keypoints} keypoints, got {list(flip_indices)}")
        self.flip_indices = None if flip_indices is None else list(flip_indices)

    def layers(self, x: torch.Tensor):
        raise NotImplementedError

    def heatmap_losses(
        self, stages: List[torch.Tensor], keypoints: torch.Tensor, boxes: torch.Tensor, num_images: int
    ) -> Dict[str, torch.Tensor]:
        """Losses of the heatmaps of every stage against R x K x 3 keypoints in R x 4 RoIs."""
        raise NotImplementedError

    def inference_heatmaps(self, heatmaps: torch.Tensor) -> torch.Tensor:
        """The last stage's raw output turned into what the codec decodes (identity by default)."""
        return heatmaps

    def decode(self, heatmaps: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """R x K x H x W heatmaps, R x 4 boxes -> R x K x 3 (x, y, score)."""
        return self.codec.decode(heatmaps, boxes)

    def losses(self, stages: List[torch.Tensor], instances: List[Instances]) -> Dict[str, torch.Tensor]:
        keypoints, boxes = gather_keypoint_targets(instances)
        if keypoints is None:
            record_skipped_batch()
            zero = sum(s.sum() for s in stages) * 0
            return {"loss_keypoint": zero} if self.oks_loss_weight <= 0 else {"loss_keypoint": zero, "loss_keypoint_oks": zero}
        losses = self.heatmap_losses(stages, keypoints, boxes, len(instances))
        if self.oks_loss_weight > 0:
            last = stages[-1]
            coords = soft_argmax_2d(last, self.soft_argmax_beta)
            xy = heatmap_to_image(coords, boxes, last.shape[-2:])
            areas = torch.cat([i.gt_boxes.area() for i in instances if len(i)])
            losses["loss_keypoint_oks"] = oks_loss(xy, keypoints, areas, self.oks_sigmas) * self.oks_loss_weight
        return losses

    def predict_heatmaps(self, x: torch.Tensor) -> torch.Tensor:
        """Inference heatmaps R x K x H x W of R x C x S x S features, flip-averaged if enabled.

        Flip test: the head also sees the horizontally mirrored RoI features; its
        heatmaps are mirrored back and their left/right channels swapped with the
        dataset's flip map, then averaged with the plain pass.
        """
        heatmaps = self.inference_heatmaps(_last_stage(self.layers(x)))
        if self.flip_indices is None:
            return heatmaps
        mirrored = self.inference_heatmaps(_last_stage(self.layers(x.flip(-1))))
        return (heatmaps + mirrored.flip(-1)[:, self.flip_indices]) / 2

    def forward(self, x: torch.Tensor, instances: List[Instances]):
        if self.training:
            outputs = self.layers(x)
            stages = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
            return self.losses(stages, instances)
        heatmaps = self.predict_heatmaps(x)
        boxes = torch.cat([i.pred_boxes.tensor for i in instances]) if instances else x.new_zeros((0, 4))
        attach_predictions(instances, self.decode(heatmaps, boxes), heatmaps)
        return instances
