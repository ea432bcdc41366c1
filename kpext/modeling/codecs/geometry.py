"""RoI <-> heatmap coordinates, written once and reused by every codec.

Image coordinates are continuous, Detectron2's convention (the pixel convention and
its relation to COCO's pixel indices are in :mod:`kpext.geometry`). Heatmap cells follow
the same convention: cell ``(i, j)`` (row ``i``, column ``j``) spans
``[j, j + 1) x [i, i + 1)`` in continuous heatmap coordinates, its centre at
``(j + 0.5, i + 0.5)`` (:func:`kpext.geometry.cell_centre`; :func:`cell_centres` along an
axis, :func:`peak_cells` and :func:`cell_centre_xy` for each map's maximum). A RoI
``(x0, y0, x1, y1)`` maps linearly onto a heatmap of ``W x H`` cells: continuous image x
``x0`` -> heatmap ``0`` and ``x1`` -> heatmap ``W``.
"""

from __future__ import annotations

from typing import Tuple

import torch

from ...geometry import cell_centre


def cell_centres(length: int, like: torch.Tensor) -> torch.Tensor:
    """The continuous coordinates of the centres of ``length`` cells along an axis
    (``j + 0.5``), in ``like``'s dtype and on its device."""
    return cell_centre(torch.arange(length, device=like.device, dtype=like.dtype))


def peak_cells(maps: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each map's maximum and the cell holding it (the first, in row-major order, on ties):
    R x K x H x W maps -> (R x K value, R x K row, R x K column)."""
    r, k, h, w = maps.shape
    value, index = maps.reshape(r, k, h * w).max(dim=2)
    return value, torch.div(index, w, rounding_mode="floor"), index % w


def cell_centre_xy(row: torch.Tensor, col: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The centres of the cells ``(row, col)`` (R x K each) as R x K x 2 continuous heatmap
    (x, y), in ``dtype``."""
    return cell_centre(torch.stack([col, row], dim=-1).to(dtype))


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
