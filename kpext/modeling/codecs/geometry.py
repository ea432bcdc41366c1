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
    origin = boxes[:, None, 0:2]
    extent = boxes[:, None, 2:4] - origin
    scale = _cells_like(extent, size) / extent
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
    origin = boxes[:, None, 0:2]
    extent = boxes[:, None, 2:4] - origin
    scale = extent / _cells_like(extent, size)
    return coords * scale + origin


def _cells_like(extent: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
    """``(W, H)`` broadcast to ``extent``'s R x 1 x 2 shape, filled on its device: a
    ``new_tensor([w, h])`` would copy from the host on every call. A filled tensor, not a
    Python scalar per axis, so that the division stays a true division (``scalar / tensor``
    is ``reciprocal(tensor) * scalar``, rounded differently)."""
    h, w = size
    return torch.cat([torch.full_like(extent[..., :1], w), torch.full_like(extent[..., 1:], h)], -1)
