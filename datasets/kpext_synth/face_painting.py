"""Painting one synthetic face (:func:`render_face`) and its labels in image coordinates.

It is drawn at 4x resolution and reduced with area averaging (smooth edges,
exact sub-pixel labels): background gradient and clutter, shoulders and neck,
long hair behind the head, ears, the face (skin tone, light from one side, darker
edges), hair cap or fringe, eyes (sclera, iris, pupil, upper lid), brows, nose
(wings, nostrils, bridge shade, tip highlight), lips and open mouth (teeth on a
smile). Then optional glasses and occluders (bars, a hand), blur, sensor noise,
and contrast / brightness changes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Tuple

import cv2
import numpy as np

from kpext.geometry import continuous_to_coco

from .face_config import FaceSynthConfig
from .face_model import (
    FaceSpec,
    brow_points,
    face_depth,
    face_landmarks,
    head_outline,
    on_face,
    project_to_image,
)
from .face_sampling import uniform
from .render import CV_SHIFT, to_cv_fixed_point

__all__ = ["SUPERSAMPLE", "RenderedFace", "render_face"]

SUPERSAMPLE = 4  # drawing resolution / output resolution
_MAX_OCCLUDED_SHARE = 0.4  # an occluder hiding more of the 68 points is drawn again


@dataclass
class RenderedFace:
    """One generated face.

    Attributes:
        image: (S, S) uint8 grey image.
        keypoints15: (15, 2) pixel-index coordinates, Kaggle order, all labelled.
        keypoints68: (68, 2) pixel-index coordinates, iBUG order.
        visible68: (68,) bool, False where an occluder covers the point.
        box: COCO ``[x, y, w, h]`` face box (head outline, clipped to the image).
    """

    image: np.ndarray
    keypoints15: np.ndarray
    keypoints68: np.ndarray
    visible68: np.ndarray
    box: List[float]


def _cv_points(points: np.ndarray) -> np.ndarray:
    """(n, 2) continuous output-image coordinates -> (n, 1, 2) cv2 fixed-point
    coordinates on the supersampled canvas."""
    return to_cv_fixed_point(points, SUPERSAMPLE).reshape(-1, 1, 2)


def _fill(canvas: np.ndarray, points: np.ndarray, value: float) -> None:
    cv2.fillPoly(canvas, [_cv_points(points)], float(value), cv2.LINE_AA, shift=CV_SHIFT)


def _line(
    canvas: np.ndarray, points: np.ndarray, value: float, width_px: float, closed: bool = False
) -> None:
    thickness = max(1, int(round(width_px * SUPERSAMPLE)))
    cv2.polylines(
        canvas, [_cv_points(points)], closed, float(value), thickness, cv2.LINE_AA, shift=CV_SHIFT
    )


def _disc(canvas: np.ndarray, center: np.ndarray, radius_px: float, value: float) -> None:
    c = _cv_points(center).reshape(2)
    r = int(round(radius_px * SUPERSAMPLE * (1 << CV_SHIFT)))
    cv2.circle(
        canvas, (int(c[0]), int(c[1])), max(r, 1), float(value), -1, cv2.LINE_AA, shift=CV_SHIFT
    )


def _chaikin(points: np.ndarray, closed: bool, iterations: int = 3) -> np.ndarray:
    """Smooth a polyline by corner cutting (an open one keeps its end points)."""
    points = np.asarray(points, dtype=np.float64)
    for _ in range(iterations):
        nxt = np.roll(points, -1, axis=0) if closed else points[1:]
        cur = points if closed else points[:-1]
        q, r = 0.75 * cur + 0.25 * nxt, 0.25 * cur + 0.75 * nxt
        smooth = np.empty((2 * len(cur), points.shape[1]))
        smooth[0::2], smooth[1::2] = q, r
        points = smooth if closed else np.concatenate([points[:1], smooth, points[-1:]])
    return points


def _ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 24) -> np.ndarray:
    t = np.linspace(0, 2 * math.pi, n, endpoint=False)
    return np.column_stack([cx + rx * np.cos(t), cy + ry * np.sin(t)])


def _draw_background(rng: np.random.Generator, canvas: np.ndarray) -> None:
    size = canvas.shape[0]
    a, b = uniform(rng, 0, 255), uniform(rng, 0, 255)
    angle = uniform(rng, 0, 2 * math.pi)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) / size
    ramp = (xs - 0.5) * math.cos(angle) + (ys - 0.5) * math.sin(angle) + 0.5
    canvas[:] = a + (b - a) * np.clip(ramp, 0, 1)
    for _ in range(int(rng.integers(2, 9))):
        value = uniform(rng, 0, 255)
        kind = rng.integers(3)
        if kind == 0:
            x0, y0 = rng.uniform(-0.2, 1.0, 2) * size
            w, h = rng.uniform(0.05, 0.6, 2) * size
            cv2.rectangle(canvas, (int(x0), int(y0)), (int(x0 + w), int(y0 + h)), value, -1)
        elif kind == 1:
            center = tuple(int(v) for v in rng.uniform(0, 1, 2) * size)
            cv2.circle(canvas, center, int(uniform(rng, 0.03, 0.25) * size), value, -1, cv2.LINE_AA)
        else:
            p0, p1 = (tuple(int(v) for v in rng.uniform(0, 1, 2) * size) for _ in range(2))
            cv2.line(
                canvas, p0, p1, value, max(1, int(uniform(rng, 0.005, 0.04) * size)), cv2.LINE_AA
            )


def _draw_body_and_back_hair(canvas: np.ndarray, spec: FaceSpec, project) -> None:
    shape, look = spec.shape, spec.look
    if look.hair_style == 3:  # long hair hangs behind the head to the shoulders
        rx, top = shape.head_rx * 1.22, -shape.head_ry_top * 1.08
        back = np.concatenate([
            _ellipse(0.0, top + rx, rx, rx)[12:],  # upper half circle (angles pi..2pi)
            [[rx, shape.head_ry_bottom * 1.6], [-rx, shape.head_ry_bottom * 1.6]],
        ])  # fmt: skip
        _fill(canvas, project(back), look.hair)
    neck = np.array([[-0.42, 0.3], [0.42, 0.3], [0.48, 2.2], [-0.48, 2.2]])
    _fill(canvas, project(neck), look.skin * 0.85)
    _fill(canvas, project(_ellipse(0.0, shape.head_ry_bottom + 1.1, 2.3, 0.75, 32)), look.clothes)


def _draw_head(canvas: np.ndarray, face_mask: np.ndarray, spec: FaceSpec, lm, project) -> None:
    shape, look = spec.shape, spec.look
    ear_y = shape.eye_y + 0.5 * shape.nose_length
    for side in (-1.0, 1.0):
        _fill(
            canvas,
            project(_ellipse(side * shape.head_rx * 0.97, ear_y, 0.1, 0.2, 16)),
            look.skin * 0.88,
        )
    _fill(face_mask, lm["outline_2d"], 1.0)
    _fill(canvas, lm["outline_2d"], look.skin)


def _draw_hair_cap(canvas: np.ndarray, spec: FaceSpec, lm, project) -> None:
    """Hair over the top of the head down to a hairline across the forehead."""
    shape, look = spec.shape, spec.look
    if look.hair_style == 0:
        return
    brow_top = shape.eye_y - shape.brow_gap - 0.08
    front = brow_top - (0.12 if look.hair_style == 2 else look.hairline)
    temple_y = shape.eye_y - 0.05 if look.hair_style != 2 else brow_top
    temple_y = max(temple_y, front)
    # the outline above the temples, puffed out a little for volume
    thetas = np.linspace(math.pi, 2 * math.pi, 40)
    cap = head_outline(shape, thetas)[:, :2] * 1.05
    cap = cap[cap[:, 1] <= temple_y]
    x_edge = np.abs(cap[:, 0]).max() * 0.98
    xs = np.linspace(-x_edge, x_edge, 15)  # back from the left end of the cap to its right end
    hairline = np.column_stack([xs, front + (temple_y - front) * (np.abs(xs) / x_edge) ** 2.5])
    polygon = np.concatenate([cap, hairline])
    depth = np.concatenate([np.zeros(len(cap)), face_depth(hairline[:, 0], hairline[:, 1], shape)])
    _fill(canvas, project(np.column_stack([polygon, depth])), look.hair)


def _draw_eyes(canvas: np.ndarray, spec: FaceSpec, lm) -> None:
    look, pose = spec.look, spec.pose
    for side in ("right_eye", "left_eye"):
        contour = lm[f"{side}_2d"]
        # upper and lower lids: corner -> two lid points -> corner, smoothed
        if side == "right_eye":
            outer, inner = contour[0], contour[3]
            upper = np.array([outer, contour[1], contour[2], inner])
            lower = np.array([inner, contour[4], contour[5], outer])
        else:
            inner, outer = contour[0], contour[3]
            upper = np.array([inner, contour[1], contour[2], outer])
            lower = np.array([outer, contour[4], contour[5], inner])
        eye = np.concatenate([_chaikin(upper, False), _chaikin(lower, False)[1:-1]])
        white = np.zeros_like(canvas)
        _fill(white, eye, 1.0)
        iris = np.zeros_like(canvas)
        pupil = lm["pupils_2d"][0 if side == "right_eye" else 1]
        eye_width = np.linalg.norm(outer - inner)
        _disc(iris, pupil, 0.3 * eye_width, look.iris)
        _disc(iris, pupil, 0.13 * eye_width, min(look.iris, 20.0))
        sclera = np.where(iris > 0, iris, look.sclera)
        canvas[:] = canvas * (1 - white) + sclera * white
        _line(canvas, _chaikin(upper, False), look.brow * 0.6, max(0.6, 0.05 * pose.scale))


def _draw_brows(canvas: np.ndarray, spec: FaceSpec, project) -> None:
    shape, expr, look = spec.shape, spec.expression, spec.look
    for side in (-1.0, 1.0):
        points = brow_points(shape, expr, side)
        t = np.linspace(0.0, 1.0, len(points))
        half = shape.brow_thickness * (0.55 + 0.45 * t)[:, None] / 2
        upper = points.copy()
        upper[:, 1] -= half[:, 0]
        lower = points.copy()
        lower[:, 1] += half[:, 0]
        polygon = _chaikin(np.concatenate([upper, lower[::-1]]), closed=True, iterations=2)
        _fill(canvas, project(polygon), look.brow)


def _draw_nose(canvas: np.ndarray, spec: FaceSpec, lm, project) -> None:
    shape, look, pose = spec.shape, spec.look, spec.pose
    nose = lm["nose_2d"]
    tip_y = shape.eye_y + shape.nose_length
    shade_side = -1.0 if pose.yaw > 0 else 1.0
    bridge = on_face(
        [(shade_side * 0.07, shape.eye_y + 0.1), (shade_side * 0.09, tip_y - 0.02)], shape, 0.1
    )
    _line(canvas, project(bridge), look.skin * 0.85, 0.03 * pose.scale)
    _disc(canvas, nose[3], 0.05 * pose.scale, min(255.0, look.skin * 1.12))
    for side in (-1.0, 1.0):
        nostril = _ellipse(side * shape.nose_half_width * 0.55, tip_y + 0.05, 0.045, 0.022, 12)
        _fill(canvas, project(on_face(nostril, shape, 0.12)), look.skin * 0.35)
    _line(canvas, _chaikin(nose[4:9], False, 2), look.skin * 0.7, 0.025 * pose.scale)


def _draw_mouth(canvas: np.ndarray, spec: FaceSpec, lm) -> None:
    expr, look, pose = spec.expression, spec.look, spec.pose
    outer, inner = lm["outer_mouth_2d"], lm["inner_mouth_2d"]
    _fill(canvas, _chaikin(outer, closed=True, iterations=2), look.lips)
    if expr.mouth_open > 0.02:
        _fill(canvas, _chaikin(inner, closed=True, iterations=2), look.skin * 0.15)
        if expr.smile > 0.3:  # teeth under the upper lip
            teeth = np.concatenate(
                [inner[:5], (inner[[4, 3, 2, 1, 0]] * 0.6 + inner[[4, 5, 6, 7, 0]] * 0.4)]
            )
            _fill(canvas, teeth, min(250.0, look.sclera))
    else:
        _line(canvas, _chaikin(inner[:5], False, 2), look.lips * 0.5, max(0.5, 0.025 * pose.scale))


def _draw_glasses(canvas: np.ndarray, spec: FaceSpec, project) -> None:
    shape, look, pose = spec.shape, spec.look, spec.pose
    width = max(0.6, 0.03 * pose.scale)
    rim_w, rim_h = shape.eye_half_width * 1.55, 0.14
    for side in (-1.0, 1.0):
        cx, cy = side * shape.eye_dx, shape.eye_y + 0.01
        rim = _chaikin(np.array([[cx - rim_w, cy - rim_h], [cx + rim_w, cy - rim_h],
                                 [cx + rim_w, cy + rim_h], [cx - rim_w, cy + rim_h]]),
                       True, 3)  # fmt: skip
        _line(canvas, project(on_face(rim, shape, 0.12)), look.glasses_shade, width, closed=True)
        temple = [
            (side * (shape.eye_dx + rim_w), shape.eye_y - 0.05),
            (side * shape.head_rx, shape.eye_y - 0.03),
        ]
        _line(canvas, project(on_face(temple, shape, 0.08)), look.glasses_shade, width)
    bridge = [
        (-(shape.eye_dx - rim_w), shape.eye_y - 0.04),
        (0.0, shape.eye_y - 0.07),
        (shape.eye_dx - rim_w, shape.eye_y - 0.04),
    ]
    _line(canvas, project(on_face(bridge, shape, 0.2)), look.glasses_shade, width)


def _occluder_polygons(rng: np.random.Generator, spec: FaceSpec) -> List[Tuple[np.ndarray, float]]:
    """A bar across the face or a hand over part of it: (canonical (n, 2) polygon, grey) list."""
    shape = spec.shape
    if rng.random() < 0.5:  # a bar (a pole, a strap, a scarf edge)
        angle = uniform(rng, 0, math.pi)
        through = np.array([uniform(rng, -0.7, 0.7), uniform(rng, -0.6, 1.0)])
        half = uniform(rng, 0.08, 0.22)
        d, n = (
            np.array([math.cos(angle), math.sin(angle)]),
            np.array([-math.sin(angle), math.cos(angle)]),
        )
        bar = np.array([through - 3 * d - half * n, through + 3 * d - half * n,
                        through + 3 * d + half * n, through - 3 * d + half * n])  # fmt: skip
        return [(bar, uniform(rng, 0, 255))]
    # a hand over the mouth, a cheek or an eye, fingers pointing up or sideways
    targets = [
        (0.0, shape.mouth_y),
        (0.55, 0.35),
        (-0.55, 0.35),
        (shape.eye_dx, shape.eye_y),
        (-shape.eye_dx, shape.eye_y),
    ]
    palm_x, palm_y = targets[int(rng.integers(len(targets)))]
    palm = np.array([palm_x, palm_y]) + rng.uniform(-0.12, 0.12, 2) + np.array([0.0, 0.35])
    direction = uniform(rng, -math.pi * 0.8, -math.pi * 0.2)  # towards the top of the image
    d = np.array([math.cos(direction), math.sin(direction)])
    n = np.array([-d[1], d[0]])
    skin = spec.look.skin * uniform(rng, 0.85, 1.1)
    polygons = [(_ellipse(*palm, 0.3, 0.3, 20), skin)]
    polygons.append(
        (
            np.array(
                [
                    palm - 0.25 * n,
                    palm + 0.25 * n,
                    palm + 0.25 * n - 1.2 * d,
                    palm - 0.25 * n - 1.2 * d,
                ]
            ),
            skin,
        )
    )
    for k in range(4):
        base = palm + (k - 1.5) * 0.13 * n + 0.22 * d
        length = 0.42 - 0.06 * abs(k - 1.5)
        tip = base + length * d
        finger = np.array([base - 0.055 * n, tip - 0.055 * n, tip + 0.055 * n, base + 0.055 * n])
        polygons.append((finger, skin))
        polygons.append((_ellipse(*tip, 0.055, 0.055, 10), skin))
    return polygons


def _draw_occluder(
    rng: np.random.Generator, canvas: np.ndarray, spec: FaceSpec, lm, project
) -> np.ndarray:
    """Draw an occluder hiding at most :data:`_MAX_OCCLUDED_SHARE` of the 68 points;
    returns the (68,) bool mask of points it hides (all False when none fits)."""
    points = lm["points68"]
    for _ in range(3):
        polygons = _occluder_polygons(rng, spec)
        mask = np.zeros_like(canvas)
        for polygon, _ in polygons:
            _fill(mask, project(np.column_stack([polygon, np.full(len(polygon), 0.5)])), 1.0)
        hidden = _sample_mask(mask, points) > 0.5
        if hidden.mean() <= _MAX_OCCLUDED_SHARE:
            for polygon, value in polygons:
                _fill(
                    canvas, project(np.column_stack([polygon, np.full(len(polygon), 0.5)])), value
                )
            return hidden
    return np.zeros(len(points), dtype=bool)


def _sample_mask(mask: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Mask values at continuous output-image points."""
    size = mask.shape[0]
    ij = np.clip(np.floor(np.asarray(points) * SUPERSAMPLE).astype(int), 0, size - 1)
    return mask[ij[:, 1], ij[:, 0]]


def _shade_face(
    canvas: np.ndarray, face_mask: np.ndarray, rng: np.random.Generator, spec: FaceSpec
) -> None:
    """Light from one side over the whole picture, and darker face edges (roundness)."""
    size = canvas.shape[0]
    blur = max(3, int(0.25 * spec.pose.scale * SUPERSAMPLE) | 1)
    soft = cv2.GaussianBlur(face_mask, (blur, blur), 0)
    canvas *= 1.0 - 0.25 * face_mask * (1.0 - soft)
    angle = uniform(rng, 0, 2 * math.pi)
    strength = uniform(rng, 0.0, 0.35)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5
    canvas *= 1.0 + strength * (xs * math.cos(angle) + ys * math.sin(angle))


def _finish(canvas: np.ndarray, rng: np.random.Generator, cfg: FaceSynthConfig) -> np.ndarray:
    """Reduce to the output size (area averaging) and add camera effects."""
    image = cv2.resize(canvas, (cfg.image_size, cfg.image_size), interpolation=cv2.INTER_AREA)
    sigma = uniform(rng, 0.0, 0.9)
    if sigma > 0.3:
        image = cv2.GaussianBlur(image, (0, 0), sigma)
    contrast, brightness = uniform(rng, 0.75, 1.2), uniform(rng, -20, 20)
    image = (image - 128.0) * contrast + 128.0 + brightness
    image = image + rng.normal(0.0, uniform(rng, 0.2, 1.0) * cfg.noise, image.shape)
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def render_face(spec: FaceSpec, rng: np.random.Generator, cfg: FaceSynthConfig) -> RenderedFace:
    """Draw one face (see the module docstring) and return it with its labels."""
    canvas_size = cfg.image_size * SUPERSAMPLE
    canvas = np.zeros((canvas_size, canvas_size), np.float32)
    face_mask = np.zeros_like(canvas)
    lm = face_landmarks(spec)

    def project(points: np.ndarray) -> np.ndarray:
        points = np.asarray(points, dtype=np.float64)
        if points.shape[1] == 2:  # flat shapes (body, ears, hair) at depth 0
            points = np.column_stack([points, np.zeros(len(points))])
        return project_to_image(points, spec.pose)

    _draw_background(rng, canvas)
    _draw_body_and_back_hair(canvas, spec, project)
    _draw_head(canvas, face_mask, spec, lm, project)
    _draw_hair_cap(canvas, spec, lm, project)
    _draw_eyes(canvas, spec, lm)
    _draw_brows(canvas, spec, project)
    _draw_nose(canvas, spec, lm, project)
    _draw_mouth(canvas, spec, lm)
    _shade_face(canvas, face_mask, rng, spec)
    if spec.look.glasses:
        _draw_glasses(canvas, spec, project)
    hidden = np.zeros(68, dtype=bool)
    if rng.random() < cfg.occluder_prob:
        hidden = _draw_occluder(rng, canvas, spec, lm, project)
    image = _finish(canvas, rng, cfg)
    return RenderedFace(
        image=image,
        keypoints15=continuous_to_coco(lm["points15"]),
        keypoints68=continuous_to_coco(lm["points68"]),
        visible68=~hidden,
        box=_face_box(lm["outline_2d"], cfg.image_size),
    )


def _face_box(outline: np.ndarray, size: int) -> List[float]:
    x0, y0 = np.clip(outline.min(axis=0), 0, size)
    x1, y1 = np.clip(outline.max(axis=0), 0, size)
    return [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]
