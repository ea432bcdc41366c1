"""Pixel coordinate conventions: COCO's pixel indices and continuous coordinates.

Detectron2 (following Heckbert, "What is the coordinate of a pixel?", 1990) works
in *continuous* image coordinates: pixel ``(i, j)`` (column ``i``, row ``j``) is
the unit square ``[i, i + 1) x [j, j + 1)``, so its centre is at
``(i + 0.5, j + 0.5)`` and the image spans ``[0, W] x [0, H]``.

COCO keypoint files store *pixel-index* coordinates instead: the centre of pixel
``(i, j)`` is ``(i, j)``. The two relate by::

    continuous = pixel_index + 0.5

Detectron2's ``load_coco_json`` adds the 0.5 to every keypoint x and y when it
reads a file, and kpext's loader does the same; kpext's dataset writers subtract
it when they write labels. OpenCV's drawing functions also put integer
coordinates at pixel centres, so they take pixel-index coordinates too.

Every raster follows the same convention: a heatmap's cells, and the pixels of a map
resampled to another size, are squares whose centres lie at their index + 0.5
(:func:`cell_centre`, :func:`cell_index`; :mod:`kpext.modeling.codecs.geometry` maps a
heatmap onto its RoI).

The functions work on anything that supports ``+`` and ``-`` with a float:
Python numbers, NumPy arrays and torch tensors (the result has the input's type).
"""

from __future__ import annotations

import math
from typing import TypeVar

__all__ = [
    "PIXEL_CENTER_OFFSET",
    "cell_centre",
    "cell_index",
    "coco_to_continuous",
    "continuous_to_coco",
    "pixel_containing",
]

# continuous coordinate of a pixel's centre minus its index
PIXEL_CENTER_OFFSET: float = 0.5

Coords = TypeVar("Coords")


def cell_centre(index: Coords) -> Coords:
    """Index of a pixel or a heatmap cell along an axis (any shape; fractional indices too)
    -> the continuous coordinate of its centre (+0.5)."""
    return index + PIXEL_CENTER_OFFSET  # type: ignore[operator, return-value]


def cell_index(coords: Coords) -> Coords:
    """Continuous coordinates (any shape) -> the fractional index of the pixel or cell centred
    there (-0.5); the inverse of :func:`cell_centre`."""
    return coords - PIXEL_CENTER_OFFSET  # type: ignore[operator, return-value]


def coco_to_continuous(coords: Coords) -> Coords:
    """COCO pixel-index coordinates (any shape) -> continuous coordinates (+0.5)."""
    return cell_centre(coords)


def continuous_to_coco(coords: Coords) -> Coords:
    """Continuous coordinates (any shape) -> COCO pixel-index coordinates (-0.5);
    also the coordinates OpenCV draws at."""
    return cell_index(coords)


def pixel_containing(coco_coord: float) -> int:
    """Index of the pixel that contains a point given in COCO pixel-index coordinates
    (the floor of its continuous coordinate: a point exactly between two pixels
    belongs to the one to the right / below)."""
    return int(math.floor(coco_to_continuous(coco_coord)))
