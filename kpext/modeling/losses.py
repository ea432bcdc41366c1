"""Keypoint losses: pure functions over tensors, shared by every head."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def spatial_softmax_cross_entropy(
    logits: torch.Tensor, index: torch.Tensor, valid: torch.Tensor, normalizer: float | None
) -> torch.Tensor:
    """Cross-entropy of a softmax over the H*W heatmap cells (Mask R-CNN's keypoint loss).

    Args:
        logits: R x K x H x W.
        index: R x K target cell index (``row * W + col``).
        valid: R x K bool, which targets count.
        normalizer: divide the summed loss by this; None divides by the number
            of valid targets (Detectron2's ``NORMALIZE_LOSS_BY_VISIBLE_KEYPOINTS``).
    Returns:
        Scalar loss; ``0 * logits.sum()`` when nothing is valid, so that the graph
        stays connected for DistributedDataParallel.
    """
    r, k, h, w = logits.shape
    valid = valid.reshape(-1)
    if not bool(valid.any()):
        return logits.sum() * 0
    flat = logits.reshape(r * k, h * w)[valid].float()
    loss = F.cross_entropy(flat, index.reshape(-1)[valid], reduction="sum")
    return loss / (valid.sum() if normalizer is None else normalizer)
