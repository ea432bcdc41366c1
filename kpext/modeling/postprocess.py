"""Pose NMS: suppress duplicated poses that survive box NMS.

Box NMS keeps two detections of one person when their boxes differ enough (an
arm stretched out in one, not in the other) although their keypoints agree.
Pose NMS compares the keypoints themselves, in the spirit of RMPE's parametric
pose NMS, but with COCO's OKS as the pose distance so that it needs no learnt
parameters and uses the same per-keypoint tolerances as the benchmark.

Methods:

* ``"none"``: keep everything (identity).
* ``"oks"``: greedy hard suppression, highest score first: a pose is dropped
  when its OKS against an already kept pose exceeds ``oks_threshold``.
* ``"soft-oks"``: Soft-NMS with a Gaussian penalty: the score of every pose
  still in play is multiplied by ``exp(-oks^2 / soft_sigma)`` each time a
  higher-scoring pose is kept; poses whose score falls below ``score_floor``
  are dropped.
"""

from __future__ import annotations

from typing import Sequence, Tuple, Union

import numpy as np
import torch

from detectron2.structures import Instances

from .oks import object_keypoint_similarity

__all__ = ["POSE_NMS_METHODS", "keypoint_oks_matrix", "pose_nms", "apply_pose_nms"]

POSE_NMS_METHODS: Tuple[str, ...] = ("none", "oks", "soft-oks")

TensorLike = Union[torch.Tensor, np.ndarray, Sequence[float]]


def _as_float_tensor(x: TensorLike, device=None) -> torch.Tensor:
    t = torch.as_tensor(x, device=device)
    return t.float() if not t.is_floating_point() else t


def keypoint_oks_matrix(
    kpts_a: TensorLike,
    kpts_b: TensorLike,
    areas_a: TensorLike,
    sigmas: TensorLike,
    score_threshold: float = 0.0,
) -> torch.Tensor:
    """OKS of every pose of ``b`` against every reference pose of ``a``.

    Args:
        kpts_a: N x K x 3 reference poses (x, y, score or visibility).
        kpts_b: M x K x 3 poses to compare with.
        areas_a: N object areas of the references (s^2 in COCO's formula).
        sigmas: K per-keypoint OKS sigmas.
        score_threshold: a keypoint of ``a`` counts when its score is above this;
            a reference with no such keypoint counts all of its keypoints.

    Returns:
        N x M float tensor, ``oks[i, j] = mean_k exp(-d_ijk^2 / (2 s_i^2 (2 sigma_k)^2))``
        over the counted keypoints k of ``a[i]``
        (:func:`kpext.modeling.oks.object_keypoint_similarity`).
        OKS is not symmetric: the area and the counted keypoints are the reference's.
    """
    a = _as_float_tensor(kpts_a)
    b = _as_float_tensor(kpts_b, device=a.device).to(a.dtype)
    areas = _as_float_tensor(areas_a, device=a.device).to(a.dtype).reshape(-1)
    sig = _as_float_tensor(sigmas, device=a.device).to(a.dtype).reshape(-1)
    if a.dim() != 3 or b.dim() != 3 or a.shape[1:] != b.shape[1:] or a.shape[2] < 3:
        raise ValueError(
            f"expected N x K x 3 and M x K x 3 keypoints, got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    n, k = a.shape[:2]
    if sig.numel() != k:
        raise ValueError(f"{sig.numel()} OKS sigmas for {k} keypoints")
    if areas.numel() != n:
        raise ValueError(f"{areas.numel()} areas for {n} reference poses")

    d2 = ((a[:, None, :, :2] - b[None, :, :, :2]) ** 2).sum(-1)  # N x M x K
    counted = a[:, :, 2] > score_threshold  # N x K
    counted = torch.where(counted.any(dim=1, keepdim=True), counted, torch.ones_like(counted))
    weights = counted.to(a.dtype)[:, None, :]  # N x 1 x K
    return object_keypoint_similarity(d2, areas[:, None, None], sig, weights)


def _check_method(method: str) -> None:
    if method not in POSE_NMS_METHODS:
        raise ValueError(
            f"unknown pose NMS method {method!r}; choose one of {', '.join(POSE_NMS_METHODS)}"
        )


def _greedy_hard_suppression(
    oks: torch.Tensor, order: torch.Tensor, oks_threshold: float
) -> torch.Tensor:
    suppressed = torch.zeros(oks.shape[0], dtype=torch.bool)
    keep = []
    for i in order.tolist():
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= oks[i] > oks_threshold
    return torch.as_tensor(keep, dtype=torch.long)


def _gaussian_soft_suppression(
    oks: torch.Tensor, scores: torch.Tensor, soft_sigma: float, score_floor: float
) -> Tuple[torch.Tensor, torch.Tensor]:
    current = scores.clone()
    alive = current >= score_floor
    keep, kept_scores = [], []
    while bool(alive.any()):
        # argmax over the live poses; the first index wins ties, like a stable sort
        masked = torch.where(alive, current, torch.full_like(current, -float("inf")))
        i = int(torch.argmax(masked))
        keep.append(i)
        kept_scores.append(current[i])
        alive[i] = False
        current = torch.where(alive, current * torch.exp(-(oks[i] ** 2) / soft_sigma), current)
        alive &= current >= score_floor
    if not keep:
        return torch.zeros(0, dtype=torch.long), scores.new_zeros(0)
    return torch.as_tensor(keep, dtype=torch.long), torch.stack(kept_scores)


def pose_nms(
    keypoints: TensorLike,
    scores: TensorLike,
    areas: TensorLike,
    sigmas: TensorLike,
    method: str = "oks",
    oks_threshold: float = 0.5,
    soft_sigma: float = 0.5,
    score_floor: float = 0.001,
    score_threshold: float = 0.0,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Pose non-maximum suppression by OKS.

    Args:
        keypoints: N x K x 3 poses (x, y, keypoint score), image coordinates.
        scores: N detection scores.
        areas: N object areas (e.g. box w * h), the OKS scale of each pose.
        sigmas: K per-keypoint OKS sigmas.
        method: ``"none"``, ``"oks"`` or ``"soft-oks"`` (see the module docstring).
        oks_threshold: ``"oks"`` drops poses with OKS above this against a kept one.
        soft_sigma: Gaussian width of the ``"soft-oks"`` score decay.
        score_floor: ``"soft-oks"`` drops poses whose decayed score is below this.
        score_threshold: keypoint score above which a keypoint counts in OKS.

    Returns:
        ``(keep, new_scores)``: long tensor of indices into the input and the
        scores of those poses (decayed for ``"soft-oks"``). ``"none"`` returns
        all indices in input order; the other methods return them by decreasing
        (new) score. The OKS reference of a pair is the higher-ranked pose.
    """
    _check_method(method)
    kpts = _as_float_tensor(keypoints)
    scores_t = _as_float_tensor(scores, device=kpts.device).reshape(-1)
    n = scores_t.numel()
    if kpts.shape[0] != n:
        raise ValueError(f"{kpts.shape[0]} poses for {n} scores")
    if method == "none" or n == 0:
        return torch.arange(n, device=kpts.device), scores_t.clone()

    oks = keypoint_oks_matrix(kpts, kpts, areas, sigmas, score_threshold).cpu()
    if method == "oks":
        order = torch.sort(scores_t.cpu(), descending=True, stable=True).indices
        keep = _greedy_hard_suppression(oks, order, oks_threshold)
        keep = keep.to(kpts.device)
        return keep, scores_t[keep]
    keep, new_scores = _gaussian_soft_suppression(oks, scores_t.cpu(), soft_sigma, score_floor)
    return keep.to(kpts.device), new_scores.to(device=kpts.device, dtype=scores_t.dtype)


def apply_pose_nms(
    instances: Instances,
    sigmas: TensorLike,
    method: str = "oks",
    oks_threshold: float = 0.5,
    soft_sigma: float = 0.5,
    score_floor: float = 0.001,
    score_threshold: float = 0.0,
) -> Instances:
    """Pose NMS on one image's predictions.

    ``instances`` needs ``pred_boxes`` (XYXY), ``scores`` and ``pred_keypoints``
    (N x K x 3). The OKS scale of each pose is its box area (w * h). All fields
    are filtered together; ``"soft-oks"`` also replaces ``scores`` with the
    decayed ones. The result is sorted by decreasing score, except for
    ``"none"`` which returns ``instances`` unchanged.
    """
    _check_method(method)
    if method == "none" or len(instances) == 0:
        return instances
    areas = instances.pred_boxes.area()
    keep, new_scores = pose_nms(
        instances.pred_keypoints,
        instances.scores,
        areas,
        sigmas,
        method=method,
        oks_threshold=oks_threshold,
        soft_sigma=soft_sigma,
        score_floor=score_floor,
        score_threshold=score_threshold,
    )
    result = instances[keep.to(instances.scores.device)]
    if method == "soft-oks":
        result.scores = new_scores.to(instances.scores.dtype)
    return result
