"""Heatmap targets and loss for a codec, shared by the Gaussian and hourglass heads."""
from __future__ import annotations

import torch

from ..codecs import GaussianCodec, OneHotCodec, build_codec
from ..losses import heatmap_focal_loss, spatial_softmax_cross_entropy, weighted_heatmap_mse

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
