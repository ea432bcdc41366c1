"""COCO's object keypoint similarity (OKS), written once, for torch and numpy side by side:
the OKS loss (:func:`kpext.modeling.losses.oks_loss`), pose NMS and tracking
(:func:`kpext.modeling.postprocess.keypoint_oks_matrix`) call the torch side; the keypoint
error classes (:mod:`kpext.evaluation.pose_errors`) and the tall-people recall
(:mod:`kpext.evaluation.tall_people`) the numpy side.

The similarity of one keypoint is ``exp(-d^2 / (2 * s^2 * (2 * sigma)^2))``, with ``d`` the
distance between the two keypoints, ``s^2`` the reference's area and ``sigma`` the keypoint's
OKS sigma; a pose's OKS against a reference is the mean over the counted keypoints
(pycocotools' ``computeOks``).
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch

__all__ = [
    "COCO_AREA_EPS",
    "keypoint_similarity",
    "object_keypoint_similarity",
    "pose_similarity",
]

# pycocotools adds np.spacing(1), the float64 machine epsilon, to the area, so that a
# zero area (a degenerate box) gives OKS 0 or 1 instead of NaN.
COCO_AREA_EPS = 2.220446049250313e-16

Array = TypeVar("Array", np.ndarray, torch.Tensor)


def keypoint_similarity(squared_distances: Array, areas, sigmas) -> Array:
    """The similarity of each keypoint, numpy arrays or torch tensors (numpy's or torch's
    ``exp``); every argument broadcasts against the others.

    Args:
        squared_distances: squared distances between predicted and reference keypoints.
        areas: the reference areas ``s^2`` (a number, or shaped to broadcast: ``... x 1``).
        sigmas: the keypoints' OKS sigmas.
    """
    exp = torch.exp if isinstance(squared_distances, torch.Tensor) else np.exp
    return exp(-squared_distances / (2 * (areas + COCO_AREA_EPS) * (2 * sigmas) ** 2))


def object_keypoint_similarity(
    squared_distances: torch.Tensor,
    areas: torch.Tensor,
    sigmas: torch.Tensor,
    counted: torch.Tensor,
) -> torch.Tensor:
    """OKS of poses in torch (batched, differentiable); every argument broadcasts against
    ``... x K``.

    Args:
        squared_distances: ... x K squared distances between predicted and reference keypoints.
        areas: the reference areas ``s^2``, shaped ``... x 1`` (one per pose).
        sigmas: K per-keypoint OKS sigmas.
        counted: ... x K bool or 0/1, the keypoints that enter the mean.
    Returns:
        ``...``: the mean similarity over the counted keypoints; 0 where none is counted.
    """
    similarity = keypoint_similarity(squared_distances, areas, sigmas) * counted
    return similarity.sum(dim=-1) / counted.sum(dim=-1).clamp(min=1)


def pose_similarity(
    squared_distances: np.ndarray, area: float, sigmas: np.ndarray, counted: np.ndarray
) -> float:
    """OKS of one pose in numpy (the evaluation's side): the mean similarity over the K
    ``counted`` (bool) keypoints; 0.0 when none is counted."""
    if not counted.any():
        return 0.0
    return float(keypoint_similarity(squared_distances, area, sigmas)[counted].mean())
