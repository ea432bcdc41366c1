"""The synthetic people's camera: a body-frame turn about the vertical axis (yaw) and the
orthographic projection of a person into the image, leaned in the image plane.

Body-frame coordinates are (lateral, up, forward) in units of the standing height, the
lateral axis towards the person's left (see :mod:`kpext_synth.body`); image
coordinates are continuous pixels (:mod:`kpext.geometry`).
"""

from __future__ import annotations

import math
from typing import Tuple

import numpy as np

__all__ = ["yaw_rotate", "Camera"]


def yaw_rotate(ab: np.ndarray, yaw_deg: float) -> np.ndarray:
    """Turn (..., 2) (lateral, forward) pairs about the vertical axis by ``yaw_deg``."""
    t = math.radians(yaw_deg)
    c, s = math.cos(t), math.sin(t)
    a, b = ab[..., 0], ab[..., 1]
    return np.stack([a * c + b * s, -a * s + b * c], axis=-1)


class Camera:
    """Turns a person by its yaw, projects orthographically, leans in the image
    plane and scales to pixels around the pelvis.

    Args:
        center: image position of the pelvis, continuous pixel coordinates.
        height: the person's standing height in pixels (one body-frame unit).
        yaw: body turn in degrees (0 faces the camera, 90 the image's right).
        lean: in-plane rotation about the pelvis, degrees (positive: clockwise).
    """

    def __init__(self, center: Tuple[float, float], height: float, yaw: float, lean: float) -> None:
        self.yaw, self.size = yaw, float(height)
        self.center = np.asarray(center, dtype=np.float64)
        lean = math.radians(lean)
        self.cos_lean, self.sin_lean = math.cos(lean), math.sin(lean)

    def project(self, points: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Body-frame points (..., 3) -> image xy (..., 2) (continuous coordinates)
        and depth (...) towards the camera, in units of the standing height."""
        turned = yaw_rotate(points[..., [0, 2]], self.yaw)
        x, y, z = turned[..., 0], -points[..., 1], turned[..., 1]
        c, s = self.cos_lean, self.sin_lean
        return self.center + self.size * np.stack([x * c - y * s, x * s + y * c], axis=-1), z
