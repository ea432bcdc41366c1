"""What kpext's image renderers share: sub-pixel drawing with OpenCV and the
per-image random generators that make every image reproducible on its own."""

from __future__ import annotations

import zlib

import numpy as np

from kpext.geometry import continuous_to_coco

__all__ = ["CV_SHIFT", "to_cv_fixed_point", "image_rng"]

# Fractional bits of the fixed-point coordinates given to OpenCV's drawing
# functions (their ``shift`` argument): polygons and discs land to 1/16 pixel.
CV_SHIFT = 4


def to_cv_fixed_point(points: np.ndarray, supersample: int = 1) -> np.ndarray:
    """Continuous output-image coordinates -> OpenCV fixed-point coordinates.

    Args:
        points: (..., 2) continuous (x, y) coordinates of the output image.
        supersample: the canvas drawn on is this many times the output size.

    Returns:
        int32 array of the same shape: canvas coordinates with :data:`CV_SHIFT`
        fractional bits. OpenCV puts integer coordinates at pixel centres, i.e.
        it draws in pixel-index coordinates (see :mod:`kpext.geometry`).
    """
    canvas = continuous_to_coco(np.asarray(points, dtype=np.float64) * supersample)
    return np.round(canvas * (1 << CV_SHIFT)).astype(np.int32)


def image_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The random generator of image ``index`` of ``split``: seeded by
    ``(seed, crc32(split), index)``, so an image does not depend on how many
    images are generated, nor on the other splits."""
    return np.random.default_rng([seed, zlib.crc32(split.encode("utf-8")), index])
