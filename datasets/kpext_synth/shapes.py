"""The 2-D outlines the synthetic people are built and drawn from: tapered capsules,
ellipses and superellipses, as (n, 2) polygons in continuous image coordinates."""

from __future__ import annotations

import math

import cv2
import numpy as np

__all__ = ["capsule_polygon", "ellipse_points", "superellipse_unit", "superellipse_points"]

_CIRCLE_ANGLES = np.linspace(0, 2 * np.pi, 20, endpoint=False)
_UNIT_CIRCLE = np.stack([np.cos(_CIRCLE_ANGLES), np.sin(_CIRCLE_ANGLES)], axis=1)


def capsule_polygon(p0: np.ndarray, p1: np.ndarray, r0: float, r1: float) -> np.ndarray:
    """The (n, 2) convex outline of a tapered capsule: the hull of a disc of radius ``r0``
    at ``p0`` and one of radius ``r1`` at ``p1`` ((2,) points)."""
    points = np.concatenate([p0 + r0 * _UNIT_CIRCLE, p1 + r1 * _UNIT_CIRCLE]).astype(np.float32)
    return cv2.convexHull(points).reshape(-1, 2).astype(np.float64)


def ellipse_points(
    center: np.ndarray, rx: float, ry: float, angle_deg: float, n: int = 36
) -> np.ndarray:
    """(n, 2) points of the ellipse around the (2,) ``center`` with radii ``rx``, ``ry``,
    turned by ``angle_deg`` (clockwise in image coordinates)."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    a = math.radians(angle_deg)
    local = np.stack([rx * np.cos(t), ry * np.sin(t)], axis=1)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return center + local @ rot.T


def superellipse_unit(t: np.ndarray, exponent: float) -> np.ndarray:
    """Points (n, 2) of |x|^e + |y|^e = 1 at parameter angles ``t`` (e=2: the circle)."""
    c, s = np.cos(t), np.sin(t)
    power = 2.0 / exponent
    return np.stack([np.sign(c) * np.abs(c) ** power, np.sign(s) * np.abs(s) ** power], axis=1)


def superellipse_points(
    center: np.ndarray, rx: float, ry: float, angle_deg: float, exponent: float, n: int = 36
) -> np.ndarray:
    """Like :func:`ellipse_points` for the superellipse of ``exponent`` (4: square-ish)."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    a = math.radians(angle_deg)
    local = superellipse_unit(t, exponent) * np.array([rx, ry])
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return center + local @ rot.T
