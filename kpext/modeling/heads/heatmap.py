"""Heads trained on heatmap targets from ``MODEL.KPEXT.TARGET``: the Gaussian and hourglass heads' base."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import torch

from ..codecs import GaussianCodec, OneHotCodec, build_codec
from ..losses import heatmap_focal_loss, spatial_softmax_cross_entropy, weighted_heatmap_mse
from .base import KeypointHeadBase, flip_test_args, oks_loss_args

HEATMAP_LOSSES = ("mse", "focal")


def codec_from_target_cfg(target_cfg):
    """The codec named by ``MODEL.KPEXT.TARGET`` (CODEC, SIGMA, REFINE)."""
    if target_cfg.CODEC == "gaussian":
        return build_codec("gaussian", sigma=target_cfg.SIGMA, refine=target_cfg.REFINE)
    return build_codec(target_cfg.CODEC)


def check_loss_name(codec, loss: str) -> None:
    if isinstance(codec, GaussianCodec) and loss not in HEATMAP_LOSSES:
        raise ValueError(f"MODEL.KPEXT.TARGET.LOSS must be one of {HEATMAP_LOSSES}, got '{loss}'")


def heatmap_loss(codec, loss: str, heatmaps: torch.Tensor, keypoints: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """Loss of R x K x H x W heatmaps against R x K x 3 keypoints in R x 4 RoIs.

    One-hot codec: spatial softmax cross-entropy; Gaussian codec: visibility-weighted
    squared error summed over cells, or the focal loss on sigmoid outputs.
    Normalised per visible keypoint.
    """
    targets = codec.encode(keypoints, boxes, heatmaps.shape[-2:])
    if isinstance(codec, OneHotCodec):
        return spatial_softmax_cross_entropy(heatmaps, targets.index, targets.valid, None)
    if loss == "focal":
        return heatmap_focal_loss(heatmaps, targets.heatmaps, targets.weights)
    # Summed over the H*W cells rather than averaged: the same scale as the cross-entropy
    # and focal losses (about 2*pi*sigma^2 at the start), whatever the heatmap size.
    h, w = heatmaps.shape[-2:]
    return weighted_heatmap_mse(heatmaps, targets.heatmaps, targets.weights) * (h * w)


def decodable_heatmaps(codec, loss: str, heatmaps: torch.Tensor) -> torch.Tensor:
    """Raw head output -> what the codec decodes: sigmoid for the focal loss's logits."""
    if isinstance(codec, GaussianCodec) and loss == "focal":
        return heatmaps.sigmoid()
    return heatmaps


class HeatmapKeypointHead(KeypointHeadBase):
    """A keypoint head whose ``layers`` return one or more stages of heatmaps, each
    supervised with the codec's loss and its own weight; the last stage is decoded.

    Subclasses build the network and call ``super().__init__(**common)`` with the
    arguments of :meth:`common_args`.
    """

    def __init__(
        self,
        *,
        num_keypoints: int,
        codec,
        loss: str = "mse",
        loss_weight: float = 1.0,
        stage_loss_weights: Sequence[float] = (1.0,),
        oks_loss_weight: float = 0.0,
        oks_sigmas: Sequence[float] = (),
        soft_argmax_beta: float = 20.0,
        flip_indices: Optional[Sequence[int]] = None,
    ):
        """
        Args:
            codec: target codec (Gaussian, or one-hot for a cross-entropy variant).
            loss: "mse" or "focal" (Gaussian codec only).
            stage_loss_weights: loss weight of each stage's heatmaps (intermediate supervision).
        Other arguments: see :class:`KeypointHeadBase`.
        """
        super().__init__(
            num_keypoints=num_keypoints,
            codec=codec,
            loss_weight=loss_weight,
            oks_loss_weight=oks_loss_weight,
            oks_sigmas=oks_sigmas,
            soft_argmax_beta=soft_argmax_beta,
            flip_indices=flip_indices,
        )
        check_loss_name(codec, loss)
        self.loss = loss
        self.stage_loss_weights = list(stage_loss_weights)

    @staticmethod
    def common_args(cfg) -> dict:
        """Constructor arguments every heatmap head reads from the config."""
        k = cfg.MODEL.ROI_KEYPOINT_HEAD.NUM_KEYPOINTS
        target = cfg.MODEL.KPEXT.TARGET
        return {
            "num_keypoints": k,
            "codec": codec_from_target_cfg(target),
            "loss": target.LOSS,
            "loss_weight": target.LOSS_WEIGHT,
            "soft_argmax_beta": cfg.MODEL.KPEXT.SOFT_ARGMAX_BETA,
            **oks_loss_args(cfg, k),
            **flip_test_args(cfg),
        }

    def heatmap_losses(
        self, stages: List[torch.Tensor], keypoints: torch.Tensor, boxes: torch.Tensor, num_images: int
    ) -> Dict[str, torch.Tensor]:
        """``loss_keypoint`` for the last stage, ``loss_keypoint_stack{i}`` for the earlier ones."""
        losses = {}
        last = len(stages) - 1
        for i, (heatmaps, weight) in enumerate(zip(stages, self.stage_loss_weights)):
            name = "loss_keypoint" if i == last else f"loss_keypoint_stack{i}"
            losses[name] = heatmap_loss(self.codec, self.loss, heatmaps, keypoints, boxes) * weight * self.loss_weight
        return losses

    def inference_heatmaps(self, heatmaps: torch.Tensor) -> torch.Tensor:
        return decodable_heatmaps(self.codec, self.loss, heatmaps)
