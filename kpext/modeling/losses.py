"""Keypoint losses: pure functions over tensors, shared by every head.

None of them reads a value back to the host: no early return on "no target", no boolean-mask
indexing (its output size is data-dependent), so a CUDA training step never waits here. Rows
without a target are masked out of sums, and a batch without any gives 0 that is still
computed from the prediction (zero gradients: DistributedDataParallel needs every parameter
in the graph).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..geometry import cell_centre
from .oks import object_keypoint_similarity


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
        Scalar float32 loss; 0 when nothing is valid, still computed from ``logits`` (zero
        gradients) so that the graph stays connected for DistributedDataParallel.
    """
    r, k, h, w = logits.shape
    valid = valid.reshape(-1)
    flat = logits.reshape(r * k, h * w).float()
    # Every row, invalid ones masked out: boolean indexing would read the number of valid rows
    # back to the host (a CUDA sync), and an early return on "none valid" as well.
    index = torch.where(valid, index.reshape(-1), torch.zeros_like(index.reshape(-1)))
    per_row = F.cross_entropy(flat, index, reduction="none")
    loss = torch.where(valid, per_row, torch.zeros_like(per_row)).sum()
    return loss / _count_or(valid, normalizer)


def soft_target_cross_entropy(
    logits: torch.Tensor, targets: torch.Tensor, valid: torch.Tensor, normalizer: float | None
) -> torch.Tensor:
    """Cross-entropy of a softmax over the H*W cells against target distributions.

    ``-sum_cells target * log_softmax(logits)`` per keypoint: Mask R-CNN's loss
    (:func:`spatial_softmax_cross_entropy`) with a soft target instead of one cell.

    Args:
        logits: R x K x H x W.
        targets: R x K x H x W, each valid map summing to 1.
        valid: R x K bool, which targets count.
        normalizer: divide the summed loss by this; None divides by the number of valid targets.
    Returns:
        Scalar (float32 or wider); 0 with zero gradients when nothing is valid.
    """
    r, k, h, w = logits.shape
    valid = valid.reshape(-1)
    flat = _at_least_float32(logits.reshape(r * k, h * w))
    target = targets.reshape(r * k, h * w).to(flat.dtype)
    per_row = -(target * F.log_softmax(flat, dim=1)).sum(dim=1)
    loss = torch.where(valid, per_row, torch.zeros_like(per_row)).sum()
    return loss / _count_or(valid, normalizer)


def _at_least_float32(t: torch.Tensor) -> torch.Tensor:
    """float16/bfloat16 -> float32 (mixed precision); float32 and float64 unchanged."""
    return (
        t.float() if t.dtype in (torch.float16, torch.bfloat16) or not t.is_floating_point() else t
    )


def _count_or(valid: torch.Tensor, normalizer: float | None):
    """``normalizer``, or the number of ``valid`` entries (at least 1, so that a batch without
    targets gives 0, not 0 / 0). A device tensor: the count is never read on the host."""
    return valid.sum().clamp(min=1) if normalizer is None else normalizer


def _normalise(
    total: torch.Tensor, weights: torch.Tensor, normalizer: float | None
) -> torch.Tensor:
    """Divide by ``normalizer``, or by the number of targets with weight > 0 when it is None."""
    return total / _count_or(weights > 0, normalizer)


def weighted_heatmap_mse(
    pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor, normalizer: float | None = None
) -> torch.Tensor:
    """Mean squared error per keypoint heatmap, weighted (SimpleBaseline / HRNet's loss).

    Args:
        pred: R x K x H x W predicted heatmaps (any float dtype).
        target: R x K x H x W target heatmaps.
        weights: R x K per-keypoint weights (0 drops the keypoint).
        normalizer: divide the weighted sum by this; None divides by the number
            of keypoints with weight > 0.
    Returns:
        scalar ``sum_rk w_rk * mean_hw (pred - target)^2 / normalizer``, float32
        for half-precision input (float64 stays float64);
        0 with zero gradients when no weight is > 0.
    """
    # float32 even under autocast: squared errors of half-precision maps underflow.
    pred = _at_least_float32(pred)
    per_keypoint = (pred - target.to(pred.dtype)).pow(2).mean(dim=(2, 3))
    return _normalise((per_keypoint * weights.to(pred.dtype)).sum(), weights, normalizer)


def heatmap_focal_loss(
    pred_logits: torch.Tensor,
    target: torch.Tensor,
    weights: torch.Tensor,
    alpha: float = 2.0,
    beta: float = 4.0,
    normalizer: float | None = None,
) -> torch.Tensor:
    """CenterNet's penalty-reduced pixel-wise focal loss on Gaussian heatmaps.

    With ``p = sigmoid(pred_logits)`` and ``y = target``, each map's loss is
    ``-(1 - p)^alpha log(p)`` at its positive cell plus
    ``-(1 - y)^beta p^alpha log(1 - p)`` summed over its other cells. CenterNet's
    positives are the cells where ``y == 1``; our Gaussians peak between cell
    centres, so their maximum cell value is below 1: the positive of each map is
    instead its cell of maximum target value (the first one on ties).

    Args:
        pred_logits: R x K x H x W logits (any float dtype).
        target: R x K x H x W Gaussian targets in [0, 1].
        weights: R x K per-keypoint weights (0 drops the map).
        alpha, beta: focusing and penalty-reduction exponents (CenterNet: 2, 4).
        normalizer: divide the weighted sum by this; None divides by the number
            of maps with weight > 0 (the number of positives).
    Returns:
        scalar, float32 for half-precision input; 0 with zero gradients when
        no weight is > 0.
    """
    r, k, h, w = pred_logits.shape
    logits = _at_least_float32(pred_logits).reshape(r, k, h * w)
    target = target.to(logits.dtype).reshape(r, k, h * w)
    # log p and log(1 - p) from logsigmoid: finite for any logit, unlike log(sigmoid(x)).
    log_p = F.logsigmoid(logits)
    log_not_p = F.logsigmoid(-logits)
    positive = F.one_hot(target.argmax(dim=2), h * w).bool()
    positive_loss = -torch.exp(alpha * log_not_p) * log_p
    negative_loss = -torch.pow(1 - target, beta) * torch.exp(alpha * log_p) * log_not_p
    per_map = torch.where(positive, positive_loss, negative_loss).sum(dim=2)
    return _normalise((per_map * weights.to(per_map.dtype)).sum(), weights, normalizer)


def soft_argmax_2d(heatmaps: torch.Tensor, beta: float) -> torch.Tensor:
    """Differentiable peak position: expected cell centre under ``softmax(beta * heatmap)``.

    Args:
        heatmaps: R x K x H x W.
        beta: inverse temperature; large values approach the argmax cell centre.
    Returns:
        R x K x 2 (x, y) in continuous heatmap coordinates (cell ``(i, j)`` at
        ``(j + 0.5, i + 0.5)``), float32 for half-precision input.
    """
    r, k, h, w = heatmaps.shape
    maps = _at_least_float32(heatmaps)
    prob = torch.softmax(beta * maps.reshape(r, k, h * w), dim=2).reshape(r, k, h, w)
    xs = cell_centre(torch.arange(w, device=maps.device, dtype=prob.dtype))
    ys = cell_centre(torch.arange(h, device=maps.device, dtype=prob.dtype))
    # Expectations through the marginals: H + W products instead of H * W.
    x = (prob.sum(dim=2) * xs).sum(dim=2)
    y = (prob.sum(dim=3) * ys).sum(dim=2)
    return torch.stack([x, y], dim=2)


def oks_loss(
    pred_xy: torch.Tensor, gt_keypoints: torch.Tensor, areas: torch.Tensor, sigmas: torch.Tensor
) -> torch.Tensor:
    """``1 - OKS`` averaged over instances with a visible keypoint (YOLO-Pose).

    The OKS of instance ``i`` (:func:`kpext.modeling.oks.object_keypoint_similarity`)
    counts its visible keypoints (``v > 0``), with the instance area as ``s^2``.

    Args:
        pred_xy: R x K x 2 predicted (x, y) in image coordinates.
        gt_keypoints: R x K x 3 (x, y, v) ground truth in image coordinates.
        areas: R instance areas (pixels^2).
        sigmas: K per-keypoint OKS sigmas (tensor or sequence).
    Returns:
        scalar, float32 for half-precision input; 0 with zero gradients when no
        keypoint is visible.
    """
    visible = gt_keypoints[..., 2] > 0
    has_visible = visible.any(dim=1)
    pred_xy = _at_least_float32(pred_xy)
    sigmas = torch.as_tensor(sigmas, device=pred_xy.device).to(pred_xy.dtype)
    dist2 = (pred_xy - gt_keypoints[..., :2].to(pred_xy.dtype)).pow(2).sum(dim=2)
    oks = object_keypoint_similarity(dist2, areas.to(pred_xy.dtype)[:, None], sigmas, visible)
    # The mean over instances with a visible keypoint, as a masked sum: no host read of how many.
    per_instance = torch.where(has_visible, 1 - oks, torch.zeros_like(oks))
    return per_instance.sum() / _count_or(has_visible, None)


def facing_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of R x C facing logits against R long classes, averaged over the rows
    with a class (targets >= 0; -1: unknown). 0 (with zero gradients) when none has one."""
    counted = targets >= 0
    per_row = F.cross_entropy(_at_least_float32(logits), targets.clamp(min=0), reduction="none")
    return (per_row * counted).sum() / counted.sum().clamp(min=1)
