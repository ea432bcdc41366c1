"""RoI <-> heatmap coordinates, written once and reused by every codec.

Image coordinates are continuous, Detectron2's convention (the pixel convention and
its relation to COCO's pixel indices are in :mod:`kpext.geometry`). Heatmap cells follow
the same convention: cell ``(i, j)`` (row ``i``, column ``j``) spans
``[j, j + 1) x [i, i + 1)`` in continuous heatmap coordinates, its centre at
``(j + 0.5, i + 0.5)``. A RoI ``(x0, y0, x1, y1)`` maps linearly onto a heatmap of
``W x H`` cells: continuous image x ``x0`` -> heatmap ``0`` and ``x1`` -> heatmap ``W``.
"""

from __future__ import annotations

from typing import Tuple

import torch


def image_to_heatmap(
    points: torch.Tensor, boxes: torch.Tensor, size: Tuple[int, int]
) -> torch.Tensor:
    """Map continuous image coordinates into continuous heatmap coordinates.

    Args:
        points: R x K x 2 (x, y) in image coordinates.
        boxes: R x 4 (x0, y0, x1, y1).
        size: (H, W) of the heatmap.
    Returns:
        R x K x 2 continuous heatmap coordinates (cell ``j`` spans ``[j, j+1)``).
    """
    h, w = size
    origin = boxes[:, None, 0:2]
    scale = points.new_tensor([w, h]) / (boxes[:, None, 2:4] - origin)
    return (points - origin) * scale


def heatmap_to_image(
    coords: torch.Tensor, boxes: torch.Tensor, size: Tuple[int, int]
) -> torch.Tensor:
    """Inverse of :func:`image_to_heatmap`.

    Args:
        coords: R x K x 2 continuous heatmap coordinates.
        boxes: R x 4 (x0, y0, x1, y1).
        size: (H, W) of the heatmap.
    Returns:
        R x K x 2 continuous image coordinates.
    """
    h, w = size
    origin = boxes[:, None, 0:2]
    scale = (boxes[:, None, 2:4] - origin) / coords.new_tensor([w, h])
    return coords * scale + origin
