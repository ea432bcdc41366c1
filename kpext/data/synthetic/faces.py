"""Synthetic grey face crops labelled in the Kaggle 15-point format and the iBUG 68-point layout.

Every image is one face on a cluttered background, ``image_size`` pixels square
(96 by default, like Kaggle's facial-keypoints set). The set exists so that the
face-keypoint pipeline (Kaggle CSV -> COCO JSON -> Keypoint R-CNN with any kpext
head -> pixel error and OKS AP) runs offline on a small CPU machine.

The face model
--------------
A face is laid out in a canonical frame (``x`` towards the subject's left, which
is the image's right; ``y`` down; ``z`` towards the camera; the head is about 2
units wide) from a :class:`FaceShape` (head outline, jaw taper, eye spacing and
size, brows, nose, mouth) and an :class:`Expression` (eye opening, brow raise and
frown, smile, open mouth, gaze). Each point gets a depth on a rounded head (the
nose protrudes), so turning the head (``yaw``) moves near points further than
far ones and narrows the far side. The face is then rolled in the image plane,
scaled and placed so that every landmark lies inside the image.

It is drawn at 4x resolution and reduced with area averaging (smooth edges,
exact sub-pixel labels): background gradient and clutter, shoulders and neck,
long hair behind the head, ears, the face (skin tone, light from one side, darker
edges), hair cap or fringe, eyes (sclera, iris, pupil, upper lid), brows, nose
(wings, nostrils, bridge shade, tip highlight), lips and open mouth (teeth on a
smile). Then optional glasses and occluders (bars, a hand), blur, sensor noise,
and contrast / brightness changes.

Labels
------
* The 15 Kaggle points (:data:`~kpext.data.keypoint_sets.KAGGLE_FACE_KEYPOINT_NAMES`):
  eye centres are the pupils; corners, brow ends, nose tip, mouth corners and lip
  centres are the same points as in the 68-point set. The subject's left eye is
  on the image's right, as in Kaggle's data. They are written to a Kaggle-format
  CSV in which ``missing_fraction`` of the rows keep only the 4 core points
  (:data:`~kpext.data.faces.KAGGLE_CORE_KEYPOINTS`), like Kaggle's file where ~70%
  do, and converted to COCO JSON by :func:`kpext.data.faces.convert_kaggle_csv`
  with the generator's face box. Points covered by an occluder keep their label
  (Kaggle's CSV has no visibility; annotators label occluded points too).
* The 68 iBUG points (:data:`~kpext.data.keypoint_sets.FACE68_KEYPOINT_NAMES`) in a COCO
  JSON on the same images, with ``v=1`` for points under an occluder (bar or
  hand; glasses do not hide anything) and ``v=2`` otherwise.
* The face box (both JSONs) is the box of the head outline (ear to ear, top of
  the head to the chin) clipped to the image; its area is COCO's ``area``.

Coordinates follow COCO's pixel-index convention (the centre of pixel ``(i, j)``
is ``(i, j)``, see :mod:`kpext.geometry`), as Kaggle's do.

Determinism
-----------
Image ``i`` of split ``s`` is drawn from ``numpy.random.default_rng([seed,
crc32(s), i])``: it does not depend on how many images are generated, and the
same settings give byte-identical CSV and JSON files.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import cv2
import numpy as np
from tqdm import tqdm

from ...geometry import continuous_to_coco
from ..faces import (
    CONVERTER_VERSION,
    KAGGLE_CORE_KEYPOINTS,
    convert_kaggle_csv,
    face68_category,
    face_annotation,
    face_annotation_path,
    face_image_dir,
    image_file_name,
    kaggle_columns,
)
from ..generation import atomic_output, check_count_and_seed, reject_setting, write_json_atomically
from ..keypoint_sets import FACE68_KEYPOINT_NAMES, KAGGLE_FACE_KEYPOINT_NAMES
from .render import CV_SHIFT, image_rng, to_cv_fixed_point

__all__ = [
    "GENERATOR_VERSION",
    "FaceSynthConfig",
    "DEFAULT_FACE_SPLITS",
    "FaceShape",
    "Expression",
    "FacePose",
    "FaceLook",
    "FaceSpec",
    "RenderedFace",
    "sample_face_spec",
    "face_landmarks",
    "render_face",
    "face_csv_path",
    "generate_face_split",
    "face_split_is_current",
    "ensure_face_dataset",
]

# Bump whenever the images or labels produced for a given config change, so that
# ensure_face_dataset() regenerates stale data.
GENERATOR_VERSION = "1.0"

SUPERSAMPLE = 4  # drawing resolution / output resolution
_NUM_OUTLINE = 72  # points of the head outline polygon
_MAX_OCCLUDED_SHARE = 0.4  # an occluder hiding more of the 68 points is drawn again
_PLACEMENT_MARGIN_PX = 1.0  # landmarks stay this far inside the image

_K15 = {name: i for i, name in enumerate(KAGGLE_FACE_KEYPOINT_NAMES)}
_K68 = {name: i for i, name in enumerate(FACE68_KEYPOINT_NAMES)}

# ---------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------


@dataclass
class FaceSynthConfig:
    """Settings of one generated split.

    Attributes:
        num_images: faces (images, CSV rows) in the split.
        seed: base seed; image ``i`` of split ``s`` uses ``(seed, crc32(s), i)``.
        image_size: width and height in pixels (Kaggle: 96).
        min_face_frac, max_face_frac: face height (top of the head to the chin) as
            a fraction of the image size; large faces may have the top of the
            head cut off, the landmarks always stay inside.
        max_roll: largest in-plane rotation, degrees.
        max_yaw: largest head turn, degrees.
        occluder_prob: probability of a bar or a hand over part of the face.
        glasses_prob: probability of glasses.
        missing_fraction: share of CSV rows that keep only the 4 core points.
        noise: standard deviation of the sensor noise, grey levels (at most).
    """

    num_images: int
    seed: int = 0
    image_size: int = 96
    min_face_frac: float = 0.5
    max_face_frac: float = 1.0
    max_roll: float = 25.0
    max_yaw: float = 25.0
    occluder_prob: float = 0.3
    glasses_prob: float = 0.15
    missing_fraction: float = 0.3
    noise: float = 5.0

    def validate(self) -> None:
        """Raise ``ValueError`` naming the offending setting (and its CLI flag)."""
        check_count_and_seed(self, ("image_size",))
        if not 32 <= self.image_size <= 1024:
            reject_setting("image_size", "must be between 32 and 1024 pixels", self.image_size)
        if not 0.2 <= self.min_face_frac <= 1.2:
            reject_setting("min_face_frac", "must be in [0.2, 1.2]", self.min_face_frac)
        if not self.min_face_frac <= self.max_face_frac <= 1.2:
            reject_setting(
                "max_face_frac",
                f"must be in [min_face_frac ({self.min_face_frac}), 1.2]",
                self.max_face_frac,
            )
        if not 0.0 <= self.max_roll <= 90.0:
            reject_setting("max_roll", "must be in [0, 90] degrees", self.max_roll)
        if not 0.0 <= self.max_yaw <= 35.0:
            # beyond ~35 degrees the far eye would hide behind the nose: every
            # label is drawn visible, so the model stops at a mild turn
            reject_setting("max_yaw", "must be in [0, 35] degrees", self.max_yaw)
        for name in ("occluder_prob", "glasses_prob", "missing_fraction"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                reject_setting(name, "must be in [0, 1]", getattr(self, name))
        if not 0.0 <= self.noise <= 50.0:
            reject_setting("noise", "must be in [0, 50] grey levels", self.noise)


# Sizes used by projects/FaceLandmarks: generated in well under a minute. The val
# split is fully labelled, so the pixel error is measured on all 15 points.
DEFAULT_FACE_SPLITS: Dict[str, FaceSynthConfig] = {
    "train": FaceSynthConfig(num_images=2000, seed=0),
    "val": FaceSynthConfig(num_images=200, seed=1, missing_fraction=0.0),
}

# ---------------------------------------------------------------------------
# Face model
# ---------------------------------------------------------------------------


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
    shape: FaceShape
    expression: Expression
    pose: FacePose
    look: FaceLook


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


def _uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(rng.uniform(low, high))


def _sample_shape(rng: np.random.Generator) -> FaceShape:
    eye_half_width = _uniform(rng, 0.13, 0.18)
    return FaceShape(
        head_rx=_uniform(rng, 0.86, 1.02),
        head_ry_top=_uniform(rng, 1.15, 1.4),
        head_ry_bottom=_uniform(rng, 1.05, 1.25),
        jaw_taper=_uniform(rng, 0.2, 0.5),
        eye_dx=_uniform(rng, 0.35, 0.44),
        eye_y=_uniform(rng, -0.28, -0.16),
        eye_half_width=eye_half_width,
        brow_gap=_uniform(rng, 0.16, 0.24),
        brow_arch=_uniform(rng, 0.02, 0.08),
        brow_thickness=_uniform(rng, 0.04, 0.09),
        nose_length=_uniform(rng, 0.42, 0.56),
        nose_half_width=_uniform(rng, 0.12, 0.18),
        mouth_y=_uniform(rng, 0.56, 0.68),
        mouth_half_width=_uniform(rng, 0.25, 0.35),
        upper_lip=_uniform(rng, 0.04, 0.07),
        lower_lip=_uniform(rng, 0.05, 0.1),
    )


def _sample_expression(rng: np.random.Generator) -> Expression:
    """One of a few expressions (neutral 35%, smile 25%, talking 15%, frown 13%,
    surprise 12%) with random strength and gaze."""
    kind = rng.choice(
        ["neutral", "smile", "surprise", "frown", "talk"], p=[0.35, 0.25, 0.12, 0.13, 0.15]
    )
    gaze = (_uniform(rng, -1, 1), _uniform(rng, -0.6, 0.6))
    if kind == "smile":
        return Expression(eye_open=_uniform(rng, 0.7, 1.0), smile=_uniform(rng, 0.4, 1.0),
                          mouth_open=_uniform(rng, 0.0, 0.08), gaze=gaze)  # fmt: skip
    if kind == "surprise":
        return Expression(eye_open=_uniform(rng, 1.1, 1.4), brow_raise=_uniform(rng, 0.04, 0.1),
                          mouth_open=_uniform(rng, 0.06, 0.16), gaze=gaze)  # fmt: skip
    if kind == "frown":
        return Expression(eye_open=_uniform(rng, 0.6, 0.95), frown=_uniform(rng, 0.02, 0.06),
                          smile=_uniform(rng, -0.8, -0.2), gaze=gaze)  # fmt: skip
    if kind == "talk":
        return Expression(eye_open=_uniform(rng, 0.8, 1.1), smile=_uniform(rng, -0.2, 0.3),
                          mouth_open=_uniform(rng, 0.03, 0.12), gaze=gaze)  # fmt: skip
    return Expression(eye_open=_uniform(rng, 0.8, 1.1), smile=_uniform(rng, -0.15, 0.15), gaze=gaze)


def _sample_look(rng: np.random.Generator, cfg: FaceSynthConfig) -> FaceLook:
    skin = _uniform(rng, 60, 220)
    hair = _uniform(rng, 10, 230)
    return FaceLook(
        skin=skin,
        hair=hair,
        hair_style=int(rng.choice(4, p=[0.1, 0.4, 0.25, 0.25])),
        hairline=_uniform(rng, 0.3, 0.6),
        brow=skin * _uniform(rng, 0.25, 0.6),
        lips=skin * _uniform(rng, 0.55, 0.85),
        iris=_uniform(rng, 15, 110),
        sclera=min(250.0, max(skin + _uniform(rng, 15, 50), 150.0)),
        clothes=_uniform(rng, 10, 245),
        glasses=bool(rng.random() < cfg.glasses_prob),
        glasses_shade=_uniform(rng, 0, 255) if rng.random() < 0.3 else _uniform(rng, 0, 50),
    )


def sample_face_spec(rng: np.random.Generator, cfg: FaceSynthConfig) -> FaceSpec:
    """Random face, expression, look and pose, placed with every landmark inside the image."""
    shape, expression, look = _sample_shape(rng), _sample_expression(rng), _sample_look(rng, cfg)
    size = cfg.image_size
    face_height = _uniform(rng, cfg.min_face_frac, cfg.max_face_frac) * size
    scale = face_height / (shape.head_ry_top + shape.head_ry_bottom)
    roll = float(np.clip(rng.normal(0.0, cfg.max_roll / 2), -cfg.max_roll, cfg.max_roll))
    yaw = _uniform(rng, -cfg.max_yaw, cfg.max_yaw)
    for _ in range(20):
        pose = FacePose(center=(0.0, 0.0), scale=scale, roll=roll, yaw=yaw)
        points = _labelled_points(face_landmarks(FaceSpec(shape, expression, pose, look)))
        low, high = points.min(axis=0), points.max(axis=0)
        free_low = _PLACEMENT_MARGIN_PX - low
        free_high = size - _PLACEMENT_MARGIN_PX - high
        if np.all(free_low <= free_high):
            center = (
                _uniform(rng, free_low[0], free_high[0]),
                _uniform(rng, free_low[1], free_high[1]),
            )
            return FaceSpec(shape, expression, FacePose(center, scale, roll, yaw), look)
        scale *= 0.92  # landmarks do not fit: a smaller face
    raise AssertionError("could not fit a face into the image")  # unreachable for valid configs


# ---------------------------------------------------------------------------
# Geometry: canonical landmarks, depth, projection
# ---------------------------------------------------------------------------

_HEAD_DEPTH = 0.75


def _depth(x: np.ndarray, y: np.ndarray, shape: FaceShape) -> np.ndarray:
    """Depth of the face surface at canonical (x, y): a rounded head, flat at the sides."""
    across = np.clip(1.0 - (np.asarray(x) / shape.head_rx) ** 2, 0.0, 1.0)
    return (
        _HEAD_DEPTH * np.sqrt(across) * (1.0 - 0.15 * (np.asarray(y) / shape.head_ry_bottom) ** 2)
    )


def _on_face(xy: Sequence[Sequence[float]], shape: FaceShape, lift: float = 0.0) -> np.ndarray:
    """(n, 2) canonical points -> (n, 3) with the face depth plus ``lift``."""
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    z = _depth(xy[:, 0], xy[:, 1], shape) + lift
    return np.column_stack([xy, z])


def _outline(shape: FaceShape, thetas: np.ndarray) -> np.ndarray:
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
    return _on_face(contour, shape, 0.02), _on_face([pupil], shape, 0.04)[0]


def _brow(shape: FaceShape, expr: Expression, side: float) -> np.ndarray:
    """(5, 3) brow points from the outer to the inner end."""
    outer_x = shape.eye_dx + 1.5 * shape.eye_half_width
    inner_x = max(0.1, shape.eye_dx - 1.35 * shape.eye_half_width)
    base = shape.eye_y - shape.brow_gap - expr.brow_raise
    t = np.linspace(0.0, 1.0, 5)  # 0: outer end, 1: inner end
    x = side * (outer_x + (inner_x - outer_x) * t)
    y = base + 0.03 * (1 - t) - shape.brow_arch * np.sin(np.pi * (0.15 + 0.7 * t)) + expr.frown * t
    return _on_face(np.column_stack([x, y]), shape, 0.03)


def _nose(shape: FaceShape) -> np.ndarray:
    """(9, 3) iBUG nose: bridge 1-3, tip, then the lower nose from the image's left."""
    top, tip = shape.eye_y, shape.eye_y + shape.nose_length
    bridge = [(0.0, top + shape.nose_length * k / 3) for k in range(3)]
    lifts = [0.06, 0.13, 0.2]
    points = [_on_face([p], shape, lift)[0] for p, lift in zip(bridge, lifts)]
    points.append(_on_face([(0.0, tip)], shape, 0.3)[0])
    w = shape.nose_half_width
    lower = [(-w, tip + 0.03, 0.06), (-0.5 * w, tip + 0.065, 0.14), (0.0, tip + 0.08, 0.18),
             (0.5 * w, tip + 0.065, 0.14), (w, tip + 0.03, 0.06)]  # fmt: skip
    points += [_on_face([(x, y)], shape, lift)[0] for x, y, lift in lower]
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
    outer = _on_face(upper + lower, shape, 0.05)
    corner = half_width - 0.04
    inner = [(-corner, mid(corner)), (-0.4 * half_width, mid(0.4 * half_width) - gap / 2),
             (0.0, mid(0.0) - gap / 2), (0.4 * half_width, mid(0.4 * half_width) - gap / 2),
             (corner, mid(corner)), (0.4 * half_width, mid(0.4 * half_width) + gap / 2),
             (0.0, mid(0.0) + gap / 2),
             (-0.4 * half_width, mid(0.4 * half_width) + gap / 2)]  # fmt: skip
    return outer, _on_face(inner, shape, 0.04)


def _project(points: np.ndarray, pose: FacePose) -> np.ndarray:
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
        "outline": _outline(shape, np.linspace(0.0, 2 * math.pi, _NUM_OUTLINE, endpoint=False)),
        "jaw": _outline(shape, _jaw_thetas(shape)),
        "right_brow": _brow(shape, expr, -1.0),
        "left_brow": _brow(shape, expr, +1.0),
        "nose": _nose(shape),
        "right_eye": right_eye,
        "left_eye": left_eye,
        "pupils": np.array([right_pupil, left_pupil]),
        "outer_mouth": outer_mouth,
        "inner_mouth": inner_mouth,
    }
    out: Dict[str, np.ndarray] = dict(groups)
    for key, points in groups.items():
        out[f"{key}_2d"] = _project(points, spec.pose)
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


def _labelled_points(lm: Mapping[str, np.ndarray]) -> np.ndarray:
    return np.concatenate([lm["points68"], lm["points15"]])


# ---------------------------------------------------------------------------
# Drawing
# ---------------------------------------------------------------------------


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
    a, b = _uniform(rng, 0, 255), _uniform(rng, 0, 255)
    angle = _uniform(rng, 0, 2 * math.pi)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) / size
    ramp = (xs - 0.5) * math.cos(angle) + (ys - 0.5) * math.sin(angle) + 0.5
    canvas[:] = a + (b - a) * np.clip(ramp, 0, 1)
    for _ in range(int(rng.integers(2, 9))):
        value = _uniform(rng, 0, 255)
        kind = rng.integers(3)
        if kind == 0:
            x0, y0 = rng.uniform(-0.2, 1.0, 2) * size
            w, h = rng.uniform(0.05, 0.6, 2) * size
            cv2.rectangle(canvas, (int(x0), int(y0)), (int(x0 + w), int(y0 + h)), value, -1)
        elif kind == 1:
            center = tuple(int(v) for v in rng.uniform(0, 1, 2) * size)
            cv2.circle(
                canvas, center, int(_uniform(rng, 0.03, 0.25) * size), value, -1, cv2.LINE_AA
            )
        else:
            p0, p1 = (tuple(int(v) for v in rng.uniform(0, 1, 2) * size) for _ in range(2))
            cv2.line(
                canvas, p0, p1, value, max(1, int(_uniform(rng, 0.005, 0.04) * size)), cv2.LINE_AA
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
    cap = _outline(shape, thetas)[:, :2] * 1.05
    cap = cap[cap[:, 1] <= temple_y]
    x_edge = np.abs(cap[:, 0]).max() * 0.98
    xs = np.linspace(-x_edge, x_edge, 15)  # back from the left end of the cap to its right end
    hairline = np.column_stack([xs, front + (temple_y - front) * (np.abs(xs) / x_edge) ** 2.5])
    polygon = np.concatenate([cap, hairline])
    depth = np.concatenate([np.zeros(len(cap)), _depth(hairline[:, 0], hairline[:, 1], shape)])
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
        points = _brow(shape, expr, side)
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
    bridge = _on_face(
        [(shade_side * 0.07, shape.eye_y + 0.1), (shade_side * 0.09, tip_y - 0.02)], shape, 0.1
    )
    _line(canvas, project(bridge), look.skin * 0.85, 0.03 * pose.scale)
    _disc(canvas, nose[3], 0.05 * pose.scale, min(255.0, look.skin * 1.12))
    for side in (-1.0, 1.0):
        nostril = _ellipse(side * shape.nose_half_width * 0.55, tip_y + 0.05, 0.045, 0.022, 12)
        _fill(canvas, project(_on_face(nostril, shape, 0.12)), look.skin * 0.35)
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
        _line(canvas, project(_on_face(rim, shape, 0.12)), look.glasses_shade, width, closed=True)
        temple = [
            (side * (shape.eye_dx + rim_w), shape.eye_y - 0.05),
            (side * shape.head_rx, shape.eye_y - 0.03),
        ]
        _line(canvas, project(_on_face(temple, shape, 0.08)), look.glasses_shade, width)
    bridge = [
        (-(shape.eye_dx - rim_w), shape.eye_y - 0.04),
        (0.0, shape.eye_y - 0.07),
        (shape.eye_dx - rim_w, shape.eye_y - 0.04),
    ]
    _line(canvas, project(_on_face(bridge, shape, 0.2)), look.glasses_shade, width)


def _occluder_polygons(rng: np.random.Generator, spec: FaceSpec) -> List[Tuple[np.ndarray, float]]:
    """A bar across the face or a hand over part of it: (canonical (n, 2) polygon, grey) list."""
    shape = spec.shape
    if rng.random() < 0.5:  # a bar (a pole, a strap, a scarf edge)
        angle = _uniform(rng, 0, math.pi)
        through = np.array([_uniform(rng, -0.7, 0.7), _uniform(rng, -0.6, 1.0)])
        half = _uniform(rng, 0.08, 0.22)
        d, n = (
            np.array([math.cos(angle), math.sin(angle)]),
            np.array([-math.sin(angle), math.cos(angle)]),
        )
        bar = np.array([through - 3 * d - half * n, through + 3 * d - half * n,
                        through + 3 * d + half * n, through - 3 * d + half * n])  # fmt: skip
        return [(bar, _uniform(rng, 0, 255))]
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
    direction = _uniform(rng, -math.pi * 0.8, -math.pi * 0.2)  # towards the top of the image
    d = np.array([math.cos(direction), math.sin(direction)])
    n = np.array([-d[1], d[0]])
    skin = spec.look.skin * _uniform(rng, 0.85, 1.1)
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
    angle = _uniform(rng, 0, 2 * math.pi)
    strength = _uniform(rng, 0.0, 0.35)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5
    canvas *= 1.0 + strength * (xs * math.cos(angle) + ys * math.sin(angle))


def _finish(canvas: np.ndarray, rng: np.random.Generator, cfg: FaceSynthConfig) -> np.ndarray:
    """Reduce to the output size (area averaging) and add camera effects."""
    image = cv2.resize(canvas, (cfg.image_size, cfg.image_size), interpolation=cv2.INTER_AREA)
    sigma = _uniform(rng, 0.0, 0.9)
    if sigma > 0.3:
        image = cv2.GaussianBlur(image, (0, 0), sigma)
    contrast, brightness = _uniform(rng, 0.75, 1.2), _uniform(rng, -20, 20)
    image = (image - 128.0) * contrast + 128.0 + brightness
    image = image + rng.normal(0.0, _uniform(rng, 0.2, 1.0) * cfg.noise, image.shape)
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
        return _project(points, spec.pose)

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


# ---------------------------------------------------------------------------
# Writing splits
# ---------------------------------------------------------------------------


def face_csv_path(out_root: str, split: str) -> str:
    """``<out_root>/csv/<split>.csv``: the split in Kaggle's CSV format."""
    return os.path.join(out_root, "csv", f"{split}.csv")


def _csv_row(keypoints15: np.ndarray, image: np.ndarray) -> List[str]:
    coords = [("" if np.isnan(v) else f"{v:.4f}") for v in keypoints15.reshape(-1)]
    return coords + [" ".join(map(str, image.reshape(-1).tolist()))]


def _drop_non_core(keypoints15: np.ndarray) -> np.ndarray:
    """Blank the 11 points that most Kaggle rows miss."""
    out = keypoints15.copy()
    core = [_K15[name] for name in KAGGLE_CORE_KEYPOINTS]
    out[[k for k in range(len(out)) if k not in core]] = np.nan
    return out


def _write_csv_atomically(path: str, rows: Sequence[Sequence[str]]) -> None:
    with atomic_output(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(kaggle_columns())
        writer.writerows(rows)


# The generator's name in the JSONs' ``info``: the module's path when the format was
# fixed, kept so that the same settings still give byte-identical files.
_GENERATOR_NAME = "kpext.data.synthetic_faces"


def _info(split: str, cfg: FaceSynthConfig, num_points: int) -> Dict[str, Any]:
    return {
        "description": f"kpext synthetic faces, {num_points} keypoints",
        "generator": _GENERATOR_NAME,
        "version": GENERATOR_VERSION,
        "converter_version": CONVERTER_VERSION,
        "split": split,
        "seed": cfg.seed,
        "config": dataclasses.asdict(cfg),
    }


def generate_face_split(
    out_root: str, split: str, cfg: FaceSynthConfig, show_progress: bool = True
) -> Dict[str, str]:
    """Generate one split under ``out_root``.

    Writes the Kaggle-format CSV (:func:`face_csv_path`), converts it with
    :func:`kpext.data.faces.convert_kaggle_csv` (grey PNGs in
    ``images/<split>``, ``annotations/faces15_<split>.json``, the generator's
    face boxes), and writes ``annotations/faces68_<split>.json`` on the same
    images. JSONs are written last and atomically. Returns ``{"csv", "faces15",
    "faces68"}`` paths.
    """
    cfg.validate()
    if not split or not all(c.isalnum() or c in "_-" for c in split):
        raise ValueError(f"split name must use letters, digits, '_' or '-', got {split!r}")
    rows, boxes, annotations68, images = [], {}, [], []
    progress = tqdm(
        range(cfg.num_images), desc=f"faces {split}", unit="img", disable=not show_progress
    )
    for index in progress:
        rng = image_rng(cfg.seed, split, index)
        face = render_face(sample_face_spec(rng, cfg), rng, cfg)
        keypoints15 = face.keypoints15
        if rng.random() < cfg.missing_fraction:
            keypoints15 = _drop_non_core(keypoints15)
        row = index + 1  # CSV data row number = image id, as the converter numbers them
        rows.append(_csv_row(keypoints15, face.image))
        boxes[row] = face.box
        visibility = np.where(face.visible68, 2, 1)
        annotations68.append(face_annotation(row, row, face.keypoints68, face.box, visibility))
        images.append({"id": row, "file_name": image_file_name(row), "width": cfg.image_size,
                       "height": cfg.image_size})  # fmt: skip

    csv_path = face_csv_path(out_root, split)
    _write_csv_atomically(csv_path, rows)
    report = convert_kaggle_csv(
        csv_path, out_root, split=split, image_size=cfg.image_size, face_boxes=boxes,
        info=_info(split, cfg, 15),
    )  # fmt: skip
    if report.num_images.get(split) != cfg.num_images:  # the generator wrote something invalid
        raise AssertionError(f"{csv_path}: converted {report.num_images} of {cfg.num_images} rows")
    json68 = face_annotation_path(out_root, 68, split)
    write_json_atomically(json68, {
        "info": _info(split, cfg, 68),
        "licenses": [],
        "images": images,
        "annotations": annotations68,
        "categories": [face68_category()],
    })  # fmt: skip
    return {"csv": csv_path, "faces15": report.json_files[split], "faces68": json68}


def face_split_is_current(out_root: str, split: str, cfg: FaceSynthConfig) -> bool:
    """True when both JSONs exist, were made by this generator version with these
    settings, and all their images exist."""
    for num_points in (15, 68):
        try:
            with open(face_annotation_path(out_root, num_points, split), encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError):
            return False
        info = data.get("info", {}) if isinstance(data, dict) else {}
        if info.get("version") != GENERATOR_VERSION or info.get("config") != dataclasses.asdict(
            cfg
        ):
            return False
        if info.get("converter_version") != CONVERTER_VERSION:
            return False
    folder = face_image_dir(out_root, split)
    return all(
        os.path.isfile(os.path.join(folder, im["file_name"])) for im in data.get("images", [])
    )


def ensure_face_dataset(
    out_root: str,
    splits: Optional[Mapping[str, FaceSynthConfig]] = None,
    show_progress: bool = True,
) -> Dict[str, Dict[str, str]]:
    """Generate the splits that are missing or stale; ``splits`` defaults to
    :data:`DEFAULT_FACE_SPLITS`. Returns ``{split: paths}`` (see :func:`generate_face_split`)."""
    splits = DEFAULT_FACE_SPLITS if splits is None else splits
    paths = {}
    for split, cfg in splits.items():
        if face_split_is_current(out_root, split, cfg):
            paths[split] = {
                "csv": face_csv_path(out_root, split),
                "faces15": face_annotation_path(out_root, 15, split),
                "faces68": face_annotation_path(out_root, 68, split),
            }
        else:
            paths[split] = generate_face_split(out_root, split, cfg, show_progress=show_progress)
    return paths
