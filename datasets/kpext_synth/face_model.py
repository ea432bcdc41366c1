"""The synthetic faces' model: what determines a face (:class:`FaceSpec`: shape,
expression, pose, look) and its landmarks in the canonical frame and in the image
(:func:`face_landmarks`).

A face is laid out in a canonical frame (``x`` towards the subject's left, which
is the image's right; ``y`` down; ``z`` towards the camera; the head is about 2
units wide) from a :class:`FaceShape` (head outline, jaw taper, eye spacing and
size, brows, nose, mouth) and an :class:`Expression` (eye opening, brow raise and
frown, smile, open mouth, gaze). Each point gets a depth on a rounded head (the
nose protrudes), so turning the head (``yaw``) moves near points further than
far ones and narrows the far side. The face is then rolled in the image plane,
scaled and placed so that every landmark lies inside the image
(:func:`~kpext_synth.face_sampling.sample_face_spec`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Mapping, Sequence, Tuple

import numpy as np

from kpext.data.keypoint_sets import FACE68_KEYPOINT_NAMES, KAGGLE_FACE_KEYPOINT_NAMES

__all__ = [
    "FaceShape",
    "Expression",
    "FacePose",
    "FaceLook",
    "FaceSpec",
    "face_depth",
    "on_face",
    "head_outline",
    "brow_points",
    "project_to_image",
    "face_landmarks",
    "labelled_points",
]

_NUM_OUTLINE = 72  # points of the head outline polygon

_K68 = {name: i for i, name in enumerate(FACE68_KEYPOINT_NAMES)}


@dataclass(frozen=True)
class FaceShape:
    """Proportions in canonical units (head half-width about 0.95).

    ``head_ry_top`` / ``head_ry_bottom`` are the head's extent above / below the
    head centre (the eyes are a little above it); ``jaw_taper`` narrows the lower
    face towards the chin (0: egg, 0.5: pointed).
    """

    head_rx: float = 0.95
    head_ry_top: float = 1.25
    head_ry_bottom: float = 1.15
    jaw_taper: float = 0.35
    eye_dx: float = 0.4
    eye_y: float = -0.22
    eye_half_width: float = 0.16
    brow_gap: float = 0.2
    brow_arch: float = 0.05
    brow_thickness: float = 0.06
    nose_length: float = 0.5
    nose_half_width: float = 0.15
    mouth_y: float = 0.6
    mouth_half_width: float = 0.3
    upper_lip: float = 0.06
    lower_lip: float = 0.08


@dataclass(frozen=True)
class Expression:
    """eye_open: 1 = neutral; brow_raise, frown: canonical units; smile in [-1, 1]
    (corners down .. up); mouth_open: lip gap; gaze: pupil offset in [-1, 1]^2."""

    eye_open: float = 1.0
    brow_raise: float = 0.0
    frown: float = 0.0
    smile: float = 0.0
    mouth_open: float = 0.0
    gaze: Tuple[float, float] = (0.0, 0.0)


@dataclass(frozen=True)
class FacePose:
    """center: image position (continuous pixels) of the canonical origin;
    scale: pixels per canonical unit; roll: in-plane rotation (degrees, clockwise);
    yaw: head turn (degrees, positive: towards the image's right)."""

    center: Tuple[float, float]
    scale: float
    roll: float = 0.0
    yaw: float = 0.0


@dataclass(frozen=True)
class FaceLook:
    """Grey levels and accessories. hair_style: 0 none, 1 short, 2 fringe, 3 long."""

    skin: float = 170.0
    hair: float = 40.0
    hair_style: int = 1
    hairline: float = 0.45
    brow: float = 60.0
    lips: float = 120.0
    iris: float = 60.0
    sclera: float = 220.0
    clothes: float = 90.0
    glasses: bool = False
    glasses_shade: float = 30.0


@dataclass(frozen=True)
class FaceSpec:
    """Everything that determines how one face is drawn (but the per-image random
    background, shading, occluder and camera effects of
    :func:`~kpext_synth.face_painting.render_face`)."""

    shape: FaceShape
    expression: Expression
    pose: FacePose
    look: FaceLook


_HEAD_DEPTH = 0.75


def face_depth(x: np.ndarray, y: np.ndarray, shape: FaceShape) -> np.ndarray:
    """Depth of the face surface at canonical (x, y): a rounded head, flat at the sides."""
    across = np.clip(1.0 - (np.asarray(x) / shape.head_rx) ** 2, 0.0, 1.0)
    return (
        _HEAD_DEPTH * np.sqrt(across) * (1.0 - 0.15 * (np.asarray(y) / shape.head_ry_bottom) ** 2)
    )


def on_face(xy: Sequence[Sequence[float]], shape: FaceShape, lift: float = 0.0) -> np.ndarray:
    """(n, 2) canonical points -> (n, 3) with the face depth plus ``lift``."""
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    z = face_depth(xy[:, 0], xy[:, 1], shape) + lift
    return np.column_stack([xy, z])


def head_outline(shape: FaceShape, thetas: np.ndarray) -> np.ndarray:
    """Head outline at angles ``thetas`` (0: image left at the head centre's height,
    pi/2: chin, pi: image right, 3pi/2: top of the head) -> (n, 3). The lower half
    narrows towards the chin; the chin sticks out (depth) so it turns with yaw."""
    u = np.sin(thetas)
    lower = np.clip(u, 0.0, None)
    x = -shape.head_rx * np.cos(thetas) * (1.0 - shape.jaw_taper * lower**2)
    y = np.where(u > 0, shape.head_ry_bottom, shape.head_ry_top) * u
    z = 0.9 * _HEAD_DEPTH * lower**1.5
    return np.column_stack([x, y, z])


def _jaw_thetas(shape: FaceShape) -> np.ndarray:
    """17 iBUG jaw points: from eye height on the image's left, through the chin."""
    start = math.asin(max(-0.99, (shape.eye_y + 0.02) / shape.head_ry_top))
    return np.linspace(start, math.pi - start, 17)


def _eye(shape: FaceShape, expr: Expression, side: float) -> Tuple[np.ndarray, np.ndarray]:
    """(6, 3) contour in iBUG order for that side, and (3,) pupil. side +1: subject's left."""
    cx, cy, w = side * shape.eye_dx, shape.eye_y, shape.eye_half_width
    h = 0.075 * expr.eye_open
    inner, outer = (cx - side * w, cy + 0.01), (cx + side * w, cy - 0.01)
    upper_inner, upper_outer = (cx - side * w / 3, cy - 0.95 * h), (cx + side * w / 3, cy - h)
    lower_inner, lower_outer = (
        (cx - side * w / 3, cy + 0.75 * h),
        (cx + side * w / 3, cy + 0.75 * h),
    )
    if side < 0:  # right eye: outer, upper outer, upper inner, inner, lower inner, lower outer
        contour = [outer, upper_outer, upper_inner, inner, lower_inner, lower_outer]
    else:  # left eye: inner, upper inner, upper outer, outer, lower outer, lower inner
        contour = [inner, upper_inner, upper_outer, outer, lower_outer, lower_inner]
    pupil = (cx + expr.gaze[0] * 0.35 * w, cy + expr.gaze[1] * 0.25 * h)
    return on_face(contour, shape, 0.02), on_face([pupil], shape, 0.04)[0]


def brow_points(shape: FaceShape, expr: Expression, side: float) -> np.ndarray:
    """(5, 3) brow points from the outer to the inner end."""
    outer_x = shape.eye_dx + 1.5 * shape.eye_half_width
    inner_x = max(0.1, shape.eye_dx - 1.35 * shape.eye_half_width)
    base = shape.eye_y - shape.brow_gap - expr.brow_raise
    t = np.linspace(0.0, 1.0, 5)  # 0: outer end, 1: inner end
    x = side * (outer_x + (inner_x - outer_x) * t)
    y = base + 0.03 * (1 - t) - shape.brow_arch * np.sin(np.pi * (0.15 + 0.7 * t)) + expr.frown * t
    return on_face(np.column_stack([x, y]), shape, 0.03)


def _nose(shape: FaceShape) -> np.ndarray:
    """(9, 3) iBUG nose: bridge 1-3, tip, then the lower nose from the image's left."""
    top, tip = shape.eye_y, shape.eye_y + shape.nose_length
    bridge = [(0.0, top + shape.nose_length * k / 3) for k in range(3)]
    lifts = [0.06, 0.13, 0.2]
    points = [on_face([p], shape, lift)[0] for p, lift in zip(bridge, lifts)]
    points.append(on_face([(0.0, tip)], shape, 0.3)[0])
    w = shape.nose_half_width
    lower = [(-w, tip + 0.03, 0.06), (-0.5 * w, tip + 0.065, 0.14), (0.0, tip + 0.08, 0.18),
             (0.5 * w, tip + 0.065, 0.14), (w, tip + 0.03, 0.06)]  # fmt: skip
    points += [on_face([(x, y)], shape, lift)[0] for x, y, lift in lower]
    return np.array(points)


def _mouth(shape: FaceShape, expr: Expression) -> Tuple[np.ndarray, np.ndarray]:
    """(12, 3) outer and (8, 3) inner lip contours in iBUG order (from the right corner)."""
    half_width = shape.mouth_half_width * (1.0 + 0.15 * max(expr.smile, 0.0))
    gap = expr.mouth_open

    def mid(x: float) -> float:  # the lips' meeting line: corners rise on a smile
        return shape.mouth_y - expr.smile * 0.07 * (x / half_width) ** 2

    up, low = shape.upper_lip, shape.lower_lip
    xs_outer = [-1.0, -0.65, -0.3, 0.0, 0.3, 0.65, 1.0]
    upper = [(f * half_width, mid(f * half_width) - (gap / 2 + up * s) * (abs(f) < 1))
             for f, s in zip(xs_outer, [0, 0.6, 1.05, 1.0, 1.05, 0.6, 0])]  # fmt: skip
    lower = [(f * half_width,
              mid(f * half_width) + gap / 2 * (0.8 if abs(f) > 0.5 else 1.0) + low * s)
             for f, s in zip([0.65, 0.3, 0.0, -0.3, -0.65],
                             [0.6, 0.95, 1.0, 0.95, 0.6])]  # fmt: skip
    outer = on_face(upper + lower, shape, 0.05)
    corner = half_width - 0.04
    inner = [(-corner, mid(corner)), (-0.4 * half_width, mid(0.4 * half_width) - gap / 2),
             (0.0, mid(0.0) - gap / 2), (0.4 * half_width, mid(0.4 * half_width) - gap / 2),
             (corner, mid(corner)), (0.4 * half_width, mid(0.4 * half_width) + gap / 2),
             (0.0, mid(0.0) + gap / 2),
             (-0.4 * half_width, mid(0.4 * half_width) + gap / 2)]  # fmt: skip
    return outer, on_face(inner, shape, 0.04)


def project_to_image(points: np.ndarray, pose: FacePose) -> np.ndarray:
    """(n, 3) canonical -> (n, 2) continuous image coordinates: yaw about the vertical
    axis (near points move further), roll, scale, translation."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    yaw, roll = math.radians(pose.yaw), math.radians(pose.roll)
    x = points[:, 0] * math.cos(yaw) + points[:, 2] * math.sin(yaw)
    y = points[:, 1]
    c, s = math.cos(roll), math.sin(roll)
    return np.column_stack([c * x - s * y, s * x + c * y]) * pose.scale + np.asarray(pose.center)


def face_landmarks(spec: FaceSpec) -> Dict[str, np.ndarray]:
    """Canonical (n, 3) point groups of a face and their (n, 2) image projections.

    Keys: ``outline``, ``jaw``, ``right_brow`` / ``left_brow`` (outer to inner),
    ``nose``, ``right_eye`` / ``left_eye`` (iBUG order), ``pupils`` (right, left),
    ``outer_mouth``, ``inner_mouth``; each also as ``<key>_2d``, plus ``points68``
    and ``points15`` (continuous image coordinates).
    """
    shape, expr = spec.shape, spec.expression
    right_eye, right_pupil = _eye(shape, expr, -1.0)
    left_eye, left_pupil = _eye(shape, expr, +1.0)
    outer_mouth, inner_mouth = _mouth(shape, expr)
    groups = {
        "outline": head_outline(shape, np.linspace(0.0, 2 * math.pi, _NUM_OUTLINE, endpoint=False)),
        "jaw": head_outline(shape, _jaw_thetas(shape)),
        "right_brow": brow_points(shape, expr, -1.0),
        "left_brow": brow_points(shape, expr, +1.0),
        "nose": _nose(shape),
        "right_eye": right_eye,
        "left_eye": left_eye,
        "pupils": np.array([right_pupil, left_pupil]),
        "outer_mouth": outer_mouth,
        "inner_mouth": inner_mouth,
    }
    out: Dict[str, np.ndarray] = dict(groups)
    for key, points in groups.items():
        out[f"{key}_2d"] = project_to_image(points, spec.pose)
    out["points68"] = np.concatenate([
        out["jaw_2d"], out["right_brow_2d"], out["left_brow_2d"][::-1], out["nose_2d"],
        out["right_eye_2d"], out["left_eye_2d"], out["outer_mouth_2d"], out["inner_mouth_2d"],
    ])  # fmt: skip
    out["points15"] = _kaggle_points(out)
    return out


def _kaggle_points(lm: Mapping[str, np.ndarray]) -> np.ndarray:
    """The 15 Kaggle points: pupils as eye centres, the rest shared with the 68 points."""
    p68 = lm["points68"]
    pick = {
        "left_eye_center": lm["pupils_2d"][1],
        "right_eye_center": lm["pupils_2d"][0],
        "left_eye_inner_corner": p68[_K68["left_eye_inner"]],
        "left_eye_outer_corner": p68[_K68["left_eye_outer"]],
        "right_eye_inner_corner": p68[_K68["right_eye_inner"]],
        "right_eye_outer_corner": p68[_K68["right_eye_outer"]],
        "left_eyebrow_inner_end": p68[_K68["left_brow_5"]],
        "left_eyebrow_outer_end": p68[_K68["left_brow_1"]],
        "right_eyebrow_inner_end": p68[_K68["right_brow_5"]],
        "right_eyebrow_outer_end": p68[_K68["right_brow_1"]],
        "nose_tip": p68[_K68["nose_tip"]],
        "mouth_left_corner": p68[_K68["mouth_left_corner"]],
        "mouth_right_corner": p68[_K68["mouth_right_corner"]],
        "mouth_center_top_lip": p68[_K68["upper_lip_center"]],
        "mouth_center_bottom_lip": p68[_K68["lower_lip_center"]],
    }
    return np.array([pick[name] for name in KAGGLE_FACE_KEYPOINT_NAMES])


def labelled_points(lm: Mapping[str, np.ndarray]) -> np.ndarray:
    """The (83, 2) image points that must lie inside the image: the 68, then the 15."""
    return np.concatenate([lm["points68"], lm["points15"]])
