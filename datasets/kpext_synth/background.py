"""The cluttered backgrounds the synthetic people stand on: a colour gradient, random
shapes and limb-like distractors drawn like people's limbs, so that a detector has to
look at whole bodies."""

from __future__ import annotations

import math

import cv2
import numpy as np

from .colors import SKIN_TONES, jitter_rgb_to_bgr, random_color
from .painting import draw_shaded_capsule, fill_polygon
from .parts import Part
from .shapes import capsule_polygon, ellipse_points

__all__ = ["draw_background"]


def _gradient(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    c0 = np.array(random_color(rng, 0.0, 0.15), dtype=np.float32)
    c1 = np.array(random_color(rng, 0.0, 0.15), dtype=np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    xs = np.linspace(0, 1, width, dtype=np.float32)[None, :]
    ys = np.linspace(0, 1, height, dtype=np.float32)[:, None]
    t = xs * math.cos(angle) + ys * math.sin(angle)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    return c0 + (c1 - c0) * t[..., None]


def _draw_random_shape(image: np.ndarray, rng: np.random.Generator) -> None:
    h, w = image.shape[:2]
    color = random_color(rng, 0.0, 0.1)
    thickness = -1 if rng.random() < 0.7 else int(rng.integers(1, 4))
    kind = rng.integers(5)
    cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    s = rng.uniform(0.05, 0.4) * min(w, h)
    if kind == 0:
        x0, y0 = int(cx - s * rng.uniform(0.3, 1)), int(cy - s * rng.uniform(0.3, 1))
        x1, y1 = int(cx + s * rng.uniform(0.3, 1)), int(cy + s * rng.uniform(0.3, 1))
        cv2.rectangle(image, (x0, y0), (x1, y1), color, thickness, cv2.LINE_AA)
    elif kind == 1:
        cv2.circle(image, (int(cx), int(cy)), max(2, int(s / 2)), color, thickness, cv2.LINE_AA)
    elif kind == 2:
        axes = (max(2, int(s * rng.uniform(0.2, 0.6))), max(2, int(s * rng.uniform(0.2, 0.6))))
        angle = rng.uniform(0, 180)
        cv2.ellipse(image, (int(cx), int(cy)), axes, angle, 0, 360, color, thickness, cv2.LINE_AA)
    elif kind == 3:
        points = np.array([cx, cy]) + rng.uniform(-s, s, (int(rng.integers(3, 7)), 2))
        hull = cv2.convexHull(points.astype(np.float32)).reshape(-1, 2)
        cv2.fillConvexPoly(image, np.round(hull).astype(np.int32), color, cv2.LINE_AA)
    else:
        end = (int(cx + rng.uniform(-s, s) * 2), int(cy + rng.uniform(-s, s) * 2))
        cv2.line(image, (int(cx), int(cy)), end, color, int(rng.integers(1, 5)), cv2.LINE_AA)


def _draw_distractor(image: np.ndarray, rng: np.random.Generator, min_height: float) -> None:
    """A loose limb, sometimes a jointed pair: same shapes and colours as people's
    limbs, so that the detector has to look at whole bodies."""
    h, w = image.shape[:2]
    size = math.exp(rng.uniform(math.log(min_height), math.log(0.8 * h)))
    if rng.random() < 0.7:
        color = random_color(rng)
    else:
        color = jitter_rgb_to_bgr(rng, SKIN_TONES[rng.integers(len(SKIN_TONES))], 12)
    start = np.array([rng.uniform(0, w), rng.uniform(0, h)]) + 0.5
    angle = rng.uniform(0, 2 * np.pi)
    r0 = max(1.0, size * rng.uniform(0.025, 0.05))
    for _ in range(1 if rng.random() < 0.6 else 2):
        end = start + size * rng.uniform(0.15, 0.25) * np.array([math.cos(angle), math.sin(angle)])
        r1 = max(1.0, r0 * rng.uniform(0.7, 0.9))
        polygon = capsule_polygon(start, end, r0, r1)
        part = Part("distractor", polygon, color, 0.0, capsule=(start, end, r0, r1))
        draw_shaded_capsule(image, part)
        start, r0, angle = end, r1, angle + rng.uniform(-2.2, 2.2)
    if rng.random() < 0.25:  # a lone head-like blob
        blob = jitter_rgb_to_bgr(rng, SKIN_TONES[rng.integers(len(SKIN_TONES))], 12)
        center = np.array([rng.uniform(0, w), rng.uniform(0, h)])
        fill_polygon(
            image, ellipse_points(center, size * 0.05, size * 0.065, rng.uniform(-30, 30)), blob
        )


def draw_background(
    rng: np.random.Generator,
    width: int,
    height: int,
    max_distractors: int = 6,
    min_distractor_height: float = 30.0,
) -> np.ndarray:
    """A cluttered BGR uint8 background: a colour gradient, random shapes and
    limb-like distractors (noise is added after the people are drawn)."""
    image = np.clip(_gradient(rng, width, height), 0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(4, 15))):
        _draw_random_shape(image, rng)
    for _ in range(int(rng.integers(0, max_distractors + 1))):
        _draw_distractor(image, rng, min_distractor_height)
    return image
