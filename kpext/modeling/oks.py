"""COCO's object keypoint similarity (OKS), written once: the OKS loss
(:func:`kpext.modeling.losses.oks_loss`) and pose NMS / tracking
(:func:`kpext.modeling.postprocess.keypoint_oks_matrix`) both call it.

OKS of a pose against a reference is the mean over the counted keypoints ``k``
of ``exp(-d_k^2 / (2 * s^2 * (2 * sigma_k)^2))``, with ``d_k`` the distance
between the two keypoints, ``s^2`` the reference's area and ``sigma_k`` the
keypoint's OKS sigma (pycocotools' ``computeOks``).
"""

from __future__ import annotations

import torch

# pycocotools adds np.spacing(1), the float64 machine epsilon, to the area, so that a
# zero area (a degenerate box) gives OKS 0 or 1 instead of NaN.
COCO_AREA_EPS = 2.220446049250313e-16


def object_keypoint_similarity(
    squared_distances: torch.Tensor,
    areas: torch.Tensor,
    sigmas: torch.Tensor,
    counted: torch.Tensor,
) -> torch.Tensor:
    """OKS from squared keypoint distances; every argument broadcasts against ``... x K``.

    Args:
        squared_distances: ... x K squared distances between predicted and reference keypoints.
        areas: the reference areas ``s^2``, shaped ``... x 1`` (one per pose).
        sigmas: K per-keypoint OKS sigmas.
        counted: ... x K bool or 0/1, the keypoints that enter the mean.
    Returns:
        ``...``: the mean similarity over the counted keypoints; 0 where none is counted.
    """
    scale = 2 * (areas + COCO_AREA_EPS) * (2 * sigmas) ** 2
    similarity = torch.exp(-squared_distances / scale) * counted
    return similarity.sum(dim=-1) / counted.sum(dim=-1).clamp(min=1)
