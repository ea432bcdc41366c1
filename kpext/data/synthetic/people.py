"""Synthetic multi-person keypoint dataset in COCO format.

Every image shows 1 to N articulated 2D people on a cluttered background, labelled
with COCO's 17 person keypoints. The set exists so that the whole training and
evaluation pipeline can be exercised, and a detector learned from scratch, on a
small CPU machine without downloading COCO.

The body model
--------------
A person is a small 3D skeleton seen by an orthographic camera. Joints are laid out
in a body frame (``a`` towards the person's left, ``h`` up, ``b`` forwards, in units
of the standing height) from roughly anthropometric proportions (:data:`PROPORTIONS`)
and joint angles kept within :data:`JOINT_LIMITS` (elbows and knees bend one way
only). The skeleton is then bent forwards at the waist, turned about the vertical
axis (``yaw``: 0 = facing the camera, 90 = facing the image's right, 180 = back
view), projected, and leaned in the image plane. Because left and right are fixed in
the body frame before projecting, the labels stay true to the body from any side: a
frontal person's ``left_*`` joints appear on the image's right, a back view's on the
image's left.

People are drawn as filled, slightly shaded parts: tapered capsules for limbs, a
convex torso, an elliptic head with hair on the back/top and eyes, nose and ears on
the visible side, hands and shoes. Parts of one person are painted far to near, and
people in a random depth order. Cues that keep the task learnable: limbs differ in
colour from the torso; the head is skin-coloured with eyes and a reddish nose marker
on the facing side and hair on the back; a round badge marks the front of the chest
(foreshortened as the body turns, absent from behind); feet point forwards.

Left and right can be told only from the way a person faces, never from a side-specific
look: the left and right limbs are drawn alike and the light comes from above, so a
horizontally mirrored image is exactly the image of the mirrored person (yaw negated, left
and right poses exchanged; tested), and training with horizontal flips (which swap the
labels) teaches no contradiction. What each style keeps of the facing cues: ``classic``,
``textured`` and ``lowcontrast`` all of them (``lowcontrast`` at its low contrast);
``outline`` the face features, the badge's outline, the hair line and the feet; a
``silhouette`` only the outline of the body and head (nose and feet in profile), so
front and back views of it are ambiguous.

Styles
------
So that a detector has to learn people rather than one renderer, each person is
drawn in one of the named :data:`STYLES` (:class:`PersonStyle`), picked per person
from the split's ``styles``:

* ``classic``: the look described above (multi-coloured, shaded parts);
* ``silhouette``: the whole body in one flat colour, no face features or badge;
* ``outline``: every part drawn as its outline only (the inside shows the
  background, so a person in front still hides the one behind);
* ``textured``: clothes filled with stripes, checks or blotchy noise;
* ``lowcontrast``: flat parts a few grey levels off the background under the person.

With any style, ``shape_variety`` varies the head shape (round, oval, square-ish)
and the limb thickness, ``degrade_prob`` adds strong blur and noise to a whole
image, ``truncation_prob`` / ``max_truncation`` cut people at the image borders
and ``large_person_prob`` makes close-ups with one person of 60-100% of
``max_person_height_frac`` times the image height. Of the default splits
(:data:`DEFAULT_SPLITS`), ``val`` draws uniformly from :data:`TRAIN_STYLES`, ``train``
from :data:`TRAIN_STYLE_MIX` (the same styles, half its people ``classic``) and
``val_heldout`` only from :data:`HELDOUT_STYLES`, which training never sees. A style
named twice in ``styles`` is drawn twice as often. The style is written into each
COCO annotation as an extra ``"style"`` field, the body's yaw as ``"yaw"`` (COCO tools ignore
both; the yaw is the facing target's, :mod:`kpext.data.facing`). With the
defaults of :class:`SyntheticConfig` (``classic`` only, no variety) images are
drawn exactly as before styles existed.

Labels
------
Keypoints are written in COCO's pixel-index convention: the centre of pixel
``(i, j)`` is ``(i, j)``, i.e. the continuous coordinate minus 0.5 (Detectron2 adds
the 0.5 back when loading; see :mod:`kpext.geometry`). A keypoint is

* ``v=0`` (stored as ``0, 0, 0``) when it falls outside the image;
* ``v=1`` when it is inside but hidden: covered by a person drawn later, covered by
  one of the person's own nearer parts, or a face point on the far side of the head;
* ``v=2`` otherwise.

``bbox`` and ``area`` describe the person's whole drawn silhouette (including the
parts hidden behind other people) clipped to the image, so that OKS is scaled by
the person's size rather than by how much of it happens to be visible. People too
hidden or truncated to be recognisable (fewer than :data:`MIN_VISIBLE_KEYPOINTS`
visible keypoints, or less than :data:`MIN_VISIBLE_FRACTION` of the silhouette
visible) are removed and the image is redrawn without them, so no unlabelled
person is ever painted.

Determinism
-----------
Image ``i`` of split ``s`` is drawn from ``numpy.random.default_rng([seed,
crc32(s), i])``, so it does not depend on how many images are generated, and the
JSON contains nothing that varies between runs.

Files
-----
Where the files of a split lie and the COCO category they use are the dataset's
facts, defined with its registration in :mod:`kpext.data.builtin`
(:func:`~kpext.data.builtin.synthetic_annotation_path`,
:func:`~kpext.data.builtin.synthetic_image_dir`,
:data:`~kpext.data.builtin.SYNTHETIC_CATEGORY`).
"""

from __future__ import annotations

import colorsys
import dataclasses
import json
import math
import os
import re
import zlib
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import cv2
import numpy as np
from tqdm import tqdm

from ...geometry import continuous_to_coco, pixel_containing
from ..builtin import SYNTHETIC_CATEGORY, synthetic_annotation_path, synthetic_image_dir
from ..generation import check_count_and_seed, reject_setting, write_json_atomically
from ..keypoint_sets import COCO_PERSON_KEYPOINT_NAMES
from .render import CV_SHIFT, image_rng, to_cv_fixed_point

__all__ = [
    "GENERATOR_VERSION",
    "DEFAULT_SPLITS",
    "STYLES",
    "TRAIN_STYLES",
    "TRAIN_STYLE_MIX",
    "HELDOUT_STYLES",
    "HEAD_SHAPES",
    "PersonStyle",
    "PROPORTIONS",
    "JOINT_LIMITS",
    "MIN_VISIBLE_KEYPOINTS",
    "MIN_VISIBLE_FRACTION",
    "SyntheticConfig",
    "LimbPose",
    "PersonColors",
    "PersonSpec",
    "PersonModel",
    "Part",
    "build_person",
    "sample_person_spec",
    "sample_scene",
    "draw_background",
    "render_people",
    "render_image",
    "split_is_current",
    "generate_split",
    "ensure_synthetic_dataset",
]

# Bump whenever the images or labels produced for a given config change, so that
# ensure_synthetic_dataset() regenerates stale data.
# 1.1: styles, the "style" field of the annotations; 1.2: no cue a mirror inverts (no
# left/right limb tint, light from above, symmetric low-contrast tones), larger face
# features and a chest badge on the front; 1.3: the "yaw" field of the annotations
GENERATOR_VERSION = "1.3"

BGR = Tuple[int, int, int]
NUM_KEYPOINTS = len(COCO_PERSON_KEYPOINT_NAMES)
_KP = {name: i for i, name in enumerate(COCO_PERSON_KEYPOINT_NAMES)}

# A person must keep this many v=2 keypoints and this share of its silhouette
# visible to be kept; otherwise it would be a label without a visible person.
MIN_VISIBLE_KEYPOINTS = 3
MIN_VISIBLE_FRACTION = 0.2

# How people may be drawn (see the module docstring, "Styles"). Training never sees
# the held-out ones: a model that learned people, not one renderer, still finds
# people drawn as outlines or in patterned clothes.
STYLES: Tuple[str, ...] = ("classic", "silhouette", "outline", "textured", "lowcontrast")
TRAIN_STYLES: Tuple[str, ...] = ("classic", "silhouette", "lowcontrast")
# The training split's draw: classic for half the people. With a uniform draw the hard styles
# slowed all learning at the demo's schedule (README, "The demo recipe": 1.6 AP lower on val).
TRAIN_STYLE_MIX: Tuple[str, ...] = ("classic", "classic", "silhouette", "lowcontrast")
HELDOUT_STYLES: Tuple[str, ...] = ("outline", "textured")
HEAD_SHAPES: Tuple[str, ...] = ("round", "oval", "square")

# ---------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------


@dataclass
class SyntheticConfig:
    """Settings of one generated split. Pixel sizes are in output-image pixels.

    Attributes:
        num_images: number of images of the split.
        seed: base seed; image ``i`` of split ``s`` uses ``(seed, crc32(s), i)``.
        width, height: image size in pixels.
        min_people, max_people: number of people drawn per image (people that end up
            almost entirely hidden or outside are dropped, so very crowded settings
            may occasionally give fewer than ``min_people``).
        min_person_height: smallest standing height of a person, in pixels.
        max_person_height_frac: largest standing height, as a fraction of the image
            height (lowered automatically for crowded images).
        truncation_prob: probability that a person may extend past the image border.
        max_distractors: largest number of limb-like background distractors.
        jpeg_quality: JPEG quality of the written images.
        styles: the :data:`STYLES` people are drawn in, one picked per person, uniformly
            over the entries (a name given twice is drawn twice as often).
        shape_variety: probability that a person gets a random head shape
            (:data:`HEAD_SHAPES`) and limb thickness instead of the classic ones.
        max_truncation: largest share of a truncated person's extent (per axis)
            that may lie outside the image.
        large_person_prob: probability of a close-up image: at most 2 people, one of
            them 60-100% of ``max_person_height_frac`` times the image height.
        degrade_prob: probability of strong blur and/or noise over an image.
    """

    num_images: int
    seed: int = 0
    width: int = 256
    height: int = 256
    min_people: int = 1
    max_people: int = 6
    min_person_height: float = 30.0
    max_person_height_frac: float = 0.9
    truncation_prob: float = 0.15
    max_distractors: int = 6
    jpeg_quality: int = 95
    styles: Tuple[str, ...] = ("classic",)
    shape_variety: float = 0.0
    max_truncation: float = 0.4
    large_person_prob: float = 0.0
    degrade_prob: float = 0.0

    def validate(self) -> None:
        """Raise ``ValueError`` naming the offending setting (and its CLI flag)."""
        check_count_and_seed(
            self, ("width", "height", "min_people", "max_people", "max_distractors", "jpeg_quality")
        )
        for name in ("width", "height"):
            if not 64 <= getattr(self, name) <= 4096:
                reject_setting(name, "must be between 64 and 4096 pixels", getattr(self, name))
        if self.min_people < 1:
            reject_setting("min_people", "must be at least 1", self.min_people)
        if self.max_people > 20:
            reject_setting("max_people", "must be at most 20 (COCO keypoint evaluation keeps 20 "
                 "detections per image)", self.max_people)  # fmt: skip
        if self.max_people < self.min_people:
            reject_setting(
                "max_people", f"must be >= min_people ({self.min_people})", self.max_people
            )
        if not 8 <= self.min_person_height <= self.height:
            reject_setting("min_person_height", f"must be between 8 and the image height "
                 f"({self.height}) pixels", self.min_person_height)  # fmt: skip
        if not 0.0 < self.max_person_height_frac <= 1.0:
            reject_setting(
                "max_person_height_frac", "must be in (0, 1]", self.max_person_height_frac
            )
        if self.max_person_height_frac * self.height < self.min_person_height:
            reject_setting("max_person_height_frac",
                           f"times the image height ({self.height}) must be "
                           f">= min_person_height ({self.min_person_height})",
                           self.max_person_height_frac)  # fmt: skip
        if not 0.0 <= self.truncation_prob <= 1.0:
            reject_setting("truncation_prob", "must be in [0, 1]", self.truncation_prob)
        if self.max_distractors < 0:
            reject_setting("max_distractors", "must be >= 0", self.max_distractors)
        if not 1 <= self.jpeg_quality <= 100:
            reject_setting("jpeg_quality", "must be between 1 and 100", self.jpeg_quality)
        if isinstance(self.styles, str) or not self.styles:
            reject_setting("styles", "must be a non-empty sequence of style names", self.styles)
        unknown = [s for s in self.styles if s not in STYLES]
        if unknown:
            reject_setting("styles", f"must be among {', '.join(STYLES)}", self.styles)
        for name in ("shape_variety", "large_person_prob", "degrade_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                reject_setting(name, "must be in [0, 1]", getattr(self, name))
        if not 0.0 <= self.max_truncation <= 0.9:
            reject_setting("max_truncation", "must be in [0, 0.9]", self.max_truncation)


# The variety of the demo's splits: styles mixed per person, head and limb shapes,
# degraded images, more and deeper border crops, and close-ups in which one person
# fills most of the image (about 1 image in 8 has a person taller than 60% of it).
_VARIED = dict(
    shape_variety=0.5,
    max_person_height_frac=0.95,
    truncation_prob=0.25,
    max_truncation=0.5,
    large_person_prob=0.1,
    degrade_prob=0.2,
)

# Sizes used by the demo (`make demo`): small enough to generate in seconds.
# ``val_heldout`` is drawn only in styles that ``train`` never uses.
DEFAULT_SPLITS: Dict[str, SyntheticConfig] = {
    "train": SyntheticConfig(num_images=1200, seed=0, styles=TRAIN_STYLE_MIX, **_VARIED),
    "val": SyntheticConfig(num_images=100, seed=1, styles=TRAIN_STYLES, **_VARIED),
    "val_heldout": SyntheticConfig(num_images=100, seed=2, styles=HELDOUT_STYLES, **_VARIED),
}

# ---------------------------------------------------------------------------
# Body model
# ---------------------------------------------------------------------------

# Heights above the floor and segment lengths as fractions of the standing height,
# rounded from common anthropometric tables (e.g. Drillis & Contini's segment
# proportions); radii are half-widths of the drawn parts.
PROPORTIONS: Dict[str, float] = {
    "ankle": 0.045, "knee": 0.285, "hip": 0.53, "shoulder": 0.818,
    "neck_top": 0.875, "head_center": 0.935,
    "shoulder_half_width": 0.115, "hip_half_width": 0.085,
    "upper_arm": 0.186, "forearm": 0.146, "thigh": 0.245, "shin": 0.24,
    "hand": 0.028, "foot": 0.09,
    "head_rx": 0.052, "head_ry": 0.066, "head_rz": 0.06,
    "upper_arm_r": 0.032, "elbow_r": 0.025, "wrist_r": 0.019,
    "thigh_r": 0.05, "knee_r": 0.034, "ankle_r": 0.024,
    "neck_r": 0.024, "hand_r": 0.024, "foot_r": 0.02,
    "chest_half_depth": 0.065, "pelvis_half_depth": 0.055,
}  # fmt: skip

# Degrees. Flexion swings a limb forwards (negative: backwards), abduction sideways
# away from the body, bend is elbow/knee flexion and is never negative.
JOINT_LIMITS: Dict[str, Tuple[float, float]] = {
    "arm_flexion": (-60.0, 180.0),
    "arm_abduction": (-10.0, 170.0),
    "elbow_bend": (0.0, 150.0),
    "elbow_twist": (-90.0, 90.0),
    "leg_flexion": (-40.0, 120.0),
    "leg_abduction": (-10.0, 45.0),
    "knee_bend": (0.0, 150.0),
}

_FORWARD = np.array([0.0, 0.0, 1.0])
_UP = np.array([0.0, 1.0, 0.0])
# Shading highlights face straight up: a light from one side would be a left/right cue that
# a horizontal flip inverts (a flipped image is lit from the other side).
_LIGHT_DIR = np.array([0.0, -1.0])


@dataclass(frozen=True)
class LimbPose:
    """Joint angles of one arm or leg, in degrees (see :data:`JOINT_LIMITS`).

    ``twist`` only applies to arms: it turns the plane the elbow bends in, from
    forwards (0) towards the body midline (positive) or upwards (negative).
    """

    flexion: float = 0.0
    abduction: float = 10.0
    bend: float = 5.0
    twist: float = 20.0


@dataclass(frozen=True)
class PersonColors:
    """BGR colours of one person's parts (left and right limbs alike)."""

    skin: BGR = (150, 180, 225)
    hair: BGR = (30, 35, 45)
    torso: BGR = (60, 60, 200)
    upper_arms: BGR = (200, 120, 40)
    forearms: BGR = (200, 120, 40)
    thighs: BGR = (90, 60, 30)
    shins: BGR = (90, 60, 30)
    shoes: BGR = (25, 25, 25)


@dataclass(frozen=True)
class PersonStyle:
    """How one person is drawn; the defaults are the classic look.

    Attributes:
        name: one of :data:`STYLES`.
        head_shape: one of :data:`HEAD_SHAPES` (any style).
        limb_scale: multiplier of the limb widths (any style).
        ink: the silhouette's fill colour, or the outline's line colour (BGR).
        line_width: outline line width, pixels.
        pattern: ``textured``: "stripes", "checks" or "noise".
        pattern_color: ``textured``: the pattern's second colour (BGR).
        pattern_period: ``textured``: pattern period, pixels.
        pattern_angle: ``textured``: stripe angle, degrees (limbs add their axis').
        pattern_seed: ``textured``: seed of the noise pattern.
        contrast: ``lowcontrast``: signed grey-level offset of the torso from the
            mean background under the person (the other parts scale it).
    """

    name: str = "classic"
    head_shape: str = "round"
    limb_scale: float = 1.0
    ink: BGR = (30, 30, 30)
    line_width: float = 1.0
    pattern: str = "stripes"
    pattern_color: BGR = (235, 235, 235)
    pattern_period: float = 6.0
    pattern_angle: float = 0.0
    pattern_seed: int = 0
    contrast: float = 20.0


@dataclass(frozen=True)
class PersonSpec:
    """Everything that determines how one person is drawn.

    Attributes:
        center: image position of the pelvis (mid-point of the hips), continuous
            pixel coordinates (the top-left image corner is (0, 0)).
        height: standing height in pixels.
        yaw: body turn in degrees; 0 faces the camera, 90 faces the image's right,
            180 shows the back.
        lean: in-plane rotation about the pelvis, degrees (positive: clockwise).
        trunk_pitch: forward bend at the waist, degrees.
        head_yaw: head turn relative to the body, degrees.
        girth: multiplier of all part widths.
        arm_scale, leg_scale: multipliers of arm and leg lengths.
        style: how the person is drawn (the labels do not depend on it).
    """

    center: Tuple[float, float]
    height: float
    yaw: float = 0.0
    lean: float = 0.0
    trunk_pitch: float = 0.0
    head_yaw: float = 0.0
    left_arm: LimbPose = LimbPose(abduction=12.0)
    right_arm: LimbPose = LimbPose(abduction=12.0)
    left_leg: LimbPose = LimbPose(abduction=4.0, bend=3.0, twist=0.0)
    right_leg: LimbPose = LimbPose(abduction=4.0, bend=3.0, twist=0.0)
    girth: float = 1.0
    arm_scale: float = 1.0
    leg_scale: float = 1.0
    colors: PersonColors = PersonColors()
    style: PersonStyle = PersonStyle()


@dataclass
class Part:
    """One filled, convex body part of a built person.

    ``polygon`` is in continuous image coordinates; ``depth`` grows towards the
    camera and fixes the painting order within the person. ``capsule`` holds
    ``(p0, p1, r0, r1)`` for limb shading, ``head`` the drawing details of the head,
    ``mark`` the torso's chest badge (centre, radii, angle, colour; None from behind).
    """

    name: str
    polygon: np.ndarray
    color: BGR
    depth: float
    capsule: Optional[Tuple[np.ndarray, np.ndarray, float, float]] = None
    head: Optional[Dict[str, Any]] = None
    mark: Optional[Dict[str, Any]] = None


@dataclass
class PersonModel:
    """A person ready to draw: keypoints, parts back to front, and visibility rules.

    Attributes:
        keypoints: (17, 2) continuous image coordinates in COCO order.
        face_hidden: (17,) True for face points on the far side of the head.
        parts: the parts in painting order (farthest first).
        home_parts: for each keypoint, the indices (into ``parts``) of the parts on
            which it is seen; it is visible where one of them is the topmost paint.
    """

    keypoints: np.ndarray
    face_hidden: np.ndarray
    parts: List[Part]
    home_parts: List[Tuple[int, ...]]

    def extent(self) -> Tuple[float, float, float, float]:
        """(x0, y0, x1, y1) bounds of all parts, continuous coordinates."""
        points = np.concatenate([part.polygon for part in self.parts])
        x0, y0 = points.min(axis=0)
        x1, y1 = points.max(axis=0)
        return float(x0), float(y0), float(x1), float(y1)


def _clip_limit(value: float, limit: str) -> float:
    lo, hi = JOINT_LIMITS[limit]
    return float(min(max(value, lo), hi))


def _limb_direction(flexion_deg: float, abduction_deg: float, side: float) -> np.ndarray:
    """Unit direction of a hanging limb swung forwards and sideways (body frame)."""
    f, ab = math.radians(flexion_deg), math.radians(abduction_deg)
    return np.array([side * math.sin(ab), -math.cos(ab) * math.cos(f), math.cos(ab) * math.sin(f)])


def _bend(
    direction: np.ndarray, bend_deg: float, toward: np.ndarray, fallback: np.ndarray
) -> np.ndarray:
    """Rotate ``direction`` by ``bend_deg`` towards ``toward`` (or ``fallback`` when
    ``toward`` is nearly parallel to it, e.g. a knee bent with the thigh horizontal)."""
    perp = toward - np.dot(toward, direction) * direction
    if np.linalg.norm(perp) < 0.2:
        perp = fallback - np.dot(fallback, direction) * direction
    perp = perp / np.linalg.norm(perp)
    k = math.radians(bend_deg)
    return math.cos(k) * direction + math.sin(k) * perp


def _pitch(points: np.ndarray, pitch_deg: float) -> np.ndarray:
    """Bend points of the upper body forwards about the pelvis (body frame)."""
    p = math.radians(pitch_deg)
    c, s = math.cos(p), math.sin(p)
    out = points.copy()
    out[..., 1] = points[..., 1] * c - points[..., 2] * s
    out[..., 2] = points[..., 1] * s + points[..., 2] * c
    return out


def _yaw_rotate(ab: np.ndarray, yaw_deg: float) -> np.ndarray:
    """Turn (lateral, forward) pairs about the vertical axis by ``yaw_deg``."""
    t = math.radians(yaw_deg)
    c, s = math.cos(t), math.sin(t)
    a, b = ab[..., 0], ab[..., 1]
    return np.stack([a * c + b * s, -a * s + b * c], axis=-1)


_CIRCLE_ANGLES = np.linspace(0, 2 * np.pi, 20, endpoint=False)
_UNIT_CIRCLE = np.stack([np.cos(_CIRCLE_ANGLES), np.sin(_CIRCLE_ANGLES)], axis=1)


def _capsule_polygon(p0: np.ndarray, p1: np.ndarray, r0: float, r1: float) -> np.ndarray:
    points = np.concatenate([p0 + r0 * _UNIT_CIRCLE, p1 + r1 * _UNIT_CIRCLE]).astype(np.float32)
    return cv2.convexHull(points).reshape(-1, 2).astype(np.float64)


def _ellipse_points(
    center: np.ndarray, rx: float, ry: float, angle_deg: float, n: int = 36
) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    a = math.radians(angle_deg)
    local = np.stack([rx * np.cos(t), ry * np.sin(t)], axis=1)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return center + local @ rot.T


def _superellipse_unit(t: np.ndarray, exponent: float) -> np.ndarray:
    """Points (n, 2) of |x|^e + |y|^e = 1 at parameter angles ``t`` (e=2: the circle)."""
    c, s = np.cos(t), np.sin(t)
    power = 2.0 / exponent
    return np.stack([np.sign(c) * np.abs(c) ** power, np.sign(s) * np.abs(s) ** power], axis=1)


def _superellipse_points(
    center: np.ndarray, rx: float, ry: float, angle_deg: float, exponent: float, n: int = 36
) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    a = math.radians(angle_deg)
    local = _superellipse_unit(t, exponent) * np.array([rx, ry])
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return center + local @ rot.T


def _tint(color: BGR, toward: float, amount: float) -> BGR:
    """Blend a colour towards white (toward=255) or black (toward=0)."""
    return tuple(int(round(c + (toward - c) * amount)) for c in color)  # type: ignore[return-value]


# Face points on the unit head sphere (lateral, up, forward), and how far behind the
# head's silhouette (in sphere units) each may turn before it counts as hidden:
# ears sit on the sides and stay visible a little longer.
_FACE_POINTS = {
    "nose": ((0.0, -0.15, 0.92), -0.15),
    "left_eye": ((0.4, 0.15, 0.82), -0.15),
    "right_eye": ((-0.4, 0.15, 0.82), -0.15),
    "left_ear": ((0.88, 0.0, -0.05), -0.35),
    "right_ear": ((-0.88, 0.0, -0.05), -0.35),
}

# Parts on which each keypoint is seen (see PersonModel.home_parts). Shoulders and
# hips also count the torso when they are on the near half of the body.
_HOME_PART_NAMES = {
    **{name: ("head",) for name in _FACE_POINTS},
    **{
        f"{s}_{joint}": tuple(f"{s}_{part}" for part in parts)
        for s in ("left", "right")
        for joint, parts in (
            ("shoulder", ("upper_arm",)),
            ("elbow", ("upper_arm", "forearm")),
            ("wrist", ("forearm", "hand")),
            ("hip", ("thigh",)),
            ("knee", ("thigh", "shin")),
            ("ankle", ("shin", "foot")),
        )
    },
}
_TORSO_DEPTH_BIAS = -0.07  # torso sorts behind limbs at the same depth: arms hang in front
_NECK_DEPTH_BIAS = -0.09
_HEAD_DEPTH_BIAS = 0.15


def _arm_points(arm: LimbPose, side: float, scale: float) -> Dict[str, np.ndarray]:
    """Shoulder, elbow, wrist and hand tip of one arm (body frame, before the
    forward bend); ``side`` is +1 for the left arm, -1 for the right one."""
    P = PROPORTIONS
    d_upper = _limb_direction(
        _clip_limit(arm.flexion, "arm_flexion"), _clip_limit(arm.abduction, "arm_abduction"), side
    )
    twist = math.radians(_clip_limit(arm.twist, "elbow_twist"))
    medial_or_up = np.array([-side, 0.0, 0.0]) if twist >= 0 else _UP
    toward = math.cos(twist) * _FORWARD + abs(math.sin(twist)) * medial_or_up
    d_fore = _bend(d_upper, _clip_limit(arm.bend, "elbow_bend"), toward, fallback=_UP)
    shoulder = np.array([side * P["shoulder_half_width"], P["shoulder"] - P["hip"], 0.0])
    elbow = shoulder + P["upper_arm"] * scale * d_upper
    wrist = elbow + P["forearm"] * scale * d_fore
    hand = wrist + P["hand"] * d_fore
    return {"shoulder": shoulder, "elbow": elbow, "wrist": wrist, "hand": hand}


def _leg_points(leg: LimbPose, side: float, scale: float) -> Dict[str, np.ndarray]:
    """Hip, knee, ankle and toe of one leg (body frame, origin at the pelvis)."""
    P = PROPORTIONS
    d_thigh = _limb_direction(
        _clip_limit(leg.flexion, "leg_flexion"), _clip_limit(leg.abduction, "leg_abduction"), side
    )
    # knees bend backwards; with the thigh horizontal the shin hangs down
    d_shin = _bend(d_thigh, _clip_limit(leg.bend, "knee_bend"), -_FORWARD, fallback=-_UP)
    hip = np.array([side * P["hip_half_width"], 0.0, 0.0])
    knee = hip + P["thigh"] * scale * d_thigh
    ankle = knee + P["shin"] * scale * d_shin
    toe = ankle + np.array([0.0, -0.025, P["foot"]])  # feet point forwards: a facing cue
    return {"hip": hip, "knee": knee, "ankle": ankle, "toe": toe}


def _face_points(
    head_center: np.ndarray, head_yaw: float, face_yaw: float
) -> Tuple[Dict[str, np.ndarray], Dict[str, bool]]:
    """Nose, eyes and ears around the head centre (body frame), and whether each is
    turned away from the camera (``face_yaw`` = body yaw + head yaw)."""
    radii = np.array([PROPORTIONS["head_rx"], PROPORTIONS["head_ry"], PROPORTIONS["head_rz"]])
    points, hidden = {}, {}
    for name, (unit, threshold) in _FACE_POINTS.items():
        unit = np.asarray(unit)
        turned = _yaw_rotate(unit[[0, 2]] * radii[[0, 2]], head_yaw)
        points[name] = head_center + np.array([turned[0], unit[1] * radii[1], turned[1]])
        # depth of the point on the unit head sphere, as seen by the camera
        hidden[name] = bool(_yaw_rotate(unit[[0, 2]], face_yaw)[1] < threshold)
    return points, hidden


class _Camera:
    """Turns a person by its yaw, projects orthographically, leans in the image
    plane and scales to pixels around the pelvis."""

    def __init__(self, spec: PersonSpec) -> None:
        self.yaw, self.size = spec.yaw, float(spec.height)
        self.center = np.asarray(spec.center, dtype=np.float64)
        lean = math.radians(spec.lean)
        self.cos_lean, self.sin_lean = math.cos(lean), math.sin(lean)

    def project(self, points: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Body-frame points (..., 3) -> image xy (..., 2) (continuous coordinates)
        and depth (...) towards the camera, in units of the standing height."""
        turned = _yaw_rotate(points[..., [0, 2]], self.yaw)
        x, y, z = turned[..., 0], -points[..., 1], turned[..., 1]
        c, s = self.cos_lean, self.sin_lean
        return self.center + self.size * np.stack([x * c - y * s, x * s + y * c], axis=-1), z


def _skeleton_points(spec: PersonSpec) -> Tuple[Dict[str, np.ndarray], Dict[str, bool]]:
    """All named body-frame points of a person (the 17 keypoints, hand and toe tips,
    neck ends, head centre), and which face points are turned away."""
    P = PROPORTIONS
    points: Dict[str, np.ndarray] = {}
    for side_name, side in (("left", 1.0), ("right", -1.0)):
        arm = spec.left_arm if side > 0 else spec.right_arm
        for name, point in _arm_points(arm, side, spec.arm_scale).items():
            points[f"{side_name}_{name}"] = _pitch(point, spec.trunk_pitch)
        leg = spec.left_leg if side > 0 else spec.right_leg
        for name, point in _leg_points(leg, side, spec.leg_scale).items():
            points[f"{side_name}_{name}"] = point
    upper = {
        "neck_base": [0.0, P["shoulder"] - P["hip"] - 0.02, 0.0],
        "neck_top": [0.0, P["neck_top"] - P["hip"], 0.0],
        "head_center": [0.0, P["head_center"] - P["hip"], 0.01],
    }
    for name, point in upper.items():
        points[name] = _pitch(np.array(point), spec.trunk_pitch)
    face, face_hidden = _face_points(points["head_center"], spec.head_yaw, spec.yaw + spec.head_yaw)
    points.update(face)
    return points, face_hidden


def build_person(spec: PersonSpec) -> PersonModel:
    """Pose, project and assemble the parts of one person (no drawing)."""
    camera = _Camera(spec)
    points, face_hidden = _skeleton_points(spec)
    names = list(points)
    xy_all, z_all = camera.project(np.stack([points[n] for n in names]))
    xy = dict(zip(names, xy_all))
    z = {n: float(v) for n, v in zip(names, z_all)}

    parts = _limb_parts(spec, xy, z)
    parts += [
        _torso_part(spec, camera),
        _neck_part(spec, xy),
        _head_part(spec, xy, z, face_hidden),
    ]
    parts.sort(key=lambda part: part.depth)
    index = {part.name: i for i, part in enumerate(parts)}
    home_parts = []
    for name in COCO_PERSON_KEYPOINT_NAMES:
        homes = [index[p] for p in _HOME_PART_NAMES[name]]
        if name.endswith(("shoulder", "hip")) and z[name] > -0.06:
            homes.append(index["torso"])  # on the near half of the body
        home_parts.append(tuple(homes))
    return PersonModel(
        keypoints=np.stack([xy[n] for n in COCO_PERSON_KEYPOINT_NAMES]),
        face_hidden=np.array([face_hidden.get(n, False) for n in COCO_PERSON_KEYPOINT_NAMES]),
        parts=parts,
        home_parts=home_parts,
    )


def _radius(spec: PersonSpec, key: str, scale: float = 1.0) -> float:
    # at least one pixel, so that a part always covers its joints' pixels
    return max(1.0, PROPORTIONS[key] * float(spec.girth) * float(spec.height) * scale)


def _capsule_part(name: str, a: np.ndarray, b: np.ndarray, ra: float, rb: float, color: BGR,
                  depth: float) -> Part:  # fmt: skip
    return Part(name, _capsule_polygon(a, b, ra, rb), color, depth, capsule=(a, b, ra, rb))


# (part, start point, end point, start radius, end radius, PersonColors field, depth bias);
# the small biases put a distal part in front of its proximal one at equal depth.
_LIMB_SEGMENTS = (
    ("upper_arm", "shoulder", "elbow", "upper_arm_r", "elbow_r", "upper_arms", 0.0),
    ("forearm", "elbow", "wrist", "elbow_r", "wrist_r", "forearms", 0.001),
    ("hand", "wrist", "hand", "wrist_r", "hand_r", "skin", 0.002),
    ("thigh", "hip", "knee", "thigh_r", "knee_r", "thighs", 0.0),
    ("shin", "knee", "ankle", "knee_r", "ankle_r", "shins", 0.001),
    ("foot", "ankle", "toe", "ankle_r", "foot_r", "shoes", 0.002),
)


def _limb_parts(spec: PersonSpec, xy: Dict[str, np.ndarray], z: Dict[str, float]) -> List[Part]:
    """Arms, hands, legs and feet as tapered capsules."""
    parts = []
    for s in ("left", "right"):
        for part, start, end, r0, r1, color_field, bias in _LIMB_SEGMENTS:
            a, b = f"{s}_{start}", f"{s}_{end}"
            # left and right alike: any side-specific look is a cue a mirror inverts
            color = getattr(spec.colors, color_field)
            depth = 0.5 * (z[a] + z[b]) + bias
            k = spec.style.limb_scale
            parts.append(_capsule_part(f"{s}_{part}", xy[a], xy[b], _radius(spec, r0, k),
                                       _radius(spec, r1, k), color, depth))  # fmt: skip
    return parts


def _neck_part(spec: PersonSpec, xy: Dict[str, np.ndarray]) -> Part:
    r = _radius(spec, "neck_r")
    color = _tint(spec.colors.skin, 0, 0.12)
    return _capsule_part("neck", xy["neck_base"], xy["neck_top"], r, r, color, _NECK_DEPTH_BIAS)


def _torso_part(spec: PersonSpec, camera: _Camera) -> Part:
    """Convex hull of a box from the shoulders to the hips, thick front to back, so
    that the torso keeps a sensible width in profile."""
    P, g = PROPORTIONS, float(spec.girth)
    shoulder_h = P["shoulder"] - P["hip"]
    sx, hx = P["shoulder_half_width"] + 0.02 * g, P["hip_half_width"] + 0.035 * g
    cd, pd = P["chest_half_depth"] * g, P["pelvis_half_depth"] * g
    corners = [(-1, -1), (-1, 1), (1, -1), (1, 1)]
    chest = np.array([[sa * sx, shoulder_h + 0.012, sb * cd] for sa, sb in corners])
    waist = np.array([[sa * hx, -0.03, sb * pd] for sa, sb in corners])
    xy, _ = camera.project(np.concatenate([_pitch(chest, spec.trunk_pitch), waist]))
    polygon = cv2.convexHull(xy.astype(np.float32)).reshape(-1, 2).astype(np.float64)
    return Part(
        "torso", polygon, spec.colors.torso, _TORSO_DEPTH_BIAS, mark=_chest_mark(spec, camera)
    )


_FACE_FEATURE_SCALE = 0.24  # face feature radius / head half-width
_CHEST_MARK_RADIUS = 0.034  # of the standing height
_CHEST_MARK_HEIGHT = 0.075  # below the shoulders, of the standing height
_CHEST_MARK_MIN_FACING = 0.35  # cos(yaw) above which the chest faces the camera enough to show


def _chest_mark(spec: PersonSpec, camera: _Camera) -> Optional[Dict[str, Any]]:
    """A round badge on the front of the chest, foreshortened with the body's turn, or None
    when the chest faces away: tells a front view from a back view in any style but the
    silhouette, and survives a mirror (unlike a side-specific cue)."""
    P, g, yaw = PROPORTIONS, float(spec.girth), math.radians(spec.yaw)
    facing = math.cos(yaw)
    if facing < _CHEST_MARK_MIN_FACING:
        return None
    point = np.array(
        [0.0, P["shoulder"] - P["hip"] - _CHEST_MARK_HEIGHT, P["chest_half_depth"] * g]
    )
    xy, _ = camera.project(_pitch(point, spec.trunk_pitch))
    radius = max(0.8, _CHEST_MARK_RADIUS * float(spec.height) * g)
    torso = np.asarray(spec.colors.torso, dtype=np.float64)
    color = (
        _tint(spec.colors.torso, 0, 0.7)
        if torso.mean() > 128
        else _tint(spec.colors.torso, 255, 0.75)
    )
    pitch = math.cos(math.radians(spec.trunk_pitch))
    return {"center": xy, "rx": radius * facing, "ry": radius * max(0.3, pitch),
            "angle": spec.lean, "color": color}  # fmt: skip


def _head_part(
    spec: PersonSpec, xy: Dict[str, np.ndarray], z: Dict[str, float], face_hidden: Dict[str, bool]
) -> Part:
    """Head ellipse, with the hair and face features to draw on it."""
    P, colors, size = PROPORTIONS, spec.colors, float(spec.height)
    face_yaw = math.radians(spec.yaw + spec.head_yaw)
    facing_x, facing_z = math.sin(face_yaw), math.cos(face_yaw)
    center = xy["head_center"]
    # silhouette of the head ellipsoid seen from this side
    rx = max(1.2, size * math.hypot(P["head_rx"] * facing_z, P["head_rz"] * facing_x))
    ry = max(1.4, size * P["head_ry"])
    # eyes about a quarter of the head's width: seen at the median person height, they and
    # the nose tell a face from the back of a head, a cue a mirror keeps
    feature_r = max(0.7, _FACE_FEATURE_SCALE * size * P["head_rx"])
    looks = {
        "left_ear": (1.4, _tint(colors.skin, 0, 0.3)),
        "right_ear": (1.4, _tint(colors.skin, 0, 0.3)),
        "left_eye": (1.0, (25, 25, 25)),
        "right_eye": (1.0, (25, 25, 25)),
        "nose": (1.2, (40, 40, 150)),  # a reddish marker: shows where the face points
    }
    features = [
        (xy[name], scale * feature_r, color)
        for name, (scale, color) in looks.items()
        if not face_hidden[name]
    ]
    exponent = 2.0
    if spec.style.head_shape == "oval":
        ry *= 1.2  # longer, never narrower: the face points stay on the head
    elif spec.style.head_shape == "square":
        exponent = 4.0  # a superellipse around the ellipse
    details = {
        "center": center, "rx": rx, "ry": ry, "angle": spec.lean,
        "facing": (facing_x, facing_z), "skin": colors.skin, "hair": colors.hair,
        "features": features, "exponent": exponent,
    }  # fmt: skip
    if exponent == 2.0:
        polygon = _ellipse_points(center, rx, ry, spec.lean, n=36)
    else:
        polygon = _superellipse_points(center, rx, ry, spec.lean, exponent, n=36)
    return Part("head", polygon, colors.skin, z["head_center"] + _HEAD_DEPTH_BIAS, head=details)


# ---------------------------------------------------------------------------
# Sampling people and scenes
# ---------------------------------------------------------------------------

# (R, G, B) skin and hair tones, jittered per person.
_SKIN_TONES = [
    (255, 224, 189), (241, 194, 125), (224, 172, 105), (198, 134, 66), (141, 85, 36), (92, 56, 32),
]  # fmt: skip
_HAIR_TONES = [
    (20, 20, 20), (60, 40, 30), (110, 70, 40), (200, 170, 100), (150, 150, 150), (140, 60, 30),
]  # fmt: skip


def _jitter_rgb_to_bgr(rng: np.random.Generator, rgb: Tuple[int, int, int], amount: float) -> BGR:
    values = np.clip(np.asarray(rgb, dtype=np.float64) + rng.uniform(-amount, amount, 3), 0, 255)
    return (int(values[2]), int(values[1]), int(values[0]))


def _random_color(rng: np.random.Generator, min_sat: float = 0.35, min_val: float = 0.3) -> BGR:
    hue, sat, val = rng.uniform(0, 1), rng.uniform(min_sat, 1.0), rng.uniform(min_val, 0.95)
    r, g, b = colorsys.hsv_to_rgb(hue, sat, val)
    return (int(b * 255), int(g * 255), int(r * 255))


def _distinct_color(
    rng: np.random.Generator, others: Sequence[BGR], min_distance: float = 90.0
) -> BGR:
    color = _random_color(rng)
    for _ in range(20):
        if all(np.linalg.norm(np.subtract(color, o)) >= min_distance for o in others):
            break
        color = _random_color(rng)
    return color


def sample_person_colors(rng: np.random.Generator) -> PersonColors:
    """Skin and hair from natural tones; torso, sleeves and trousers distinct."""
    skin = _jitter_rgb_to_bgr(rng, _SKIN_TONES[rng.integers(len(_SKIN_TONES))], 12)
    hair = _jitter_rgb_to_bgr(rng, _HAIR_TONES[rng.integers(len(_HAIR_TONES))], 10)
    torso = _distinct_color(rng, [skin])
    sleeves = _distinct_color(rng, [skin, torso])
    trousers = _distinct_color(rng, [torso])
    short_sleeves, shorts = rng.random() < 0.35, rng.random() < 0.2
    return PersonColors(
        skin=skin, hair=hair, torso=torso,
        upper_arms=sleeves, forearms=skin if short_sleeves else sleeves,
        thighs=trousers, shins=skin if shorts else trousers,
        shoes=_tint(_random_color(rng, 0.0, 0.1), 0, 0.5),
    )  # fmt: skip


# Arm pose families: (probability, flexion, abduction, bend, twist ranges in degrees).
_ARM_FAMILIES = (
    (0.45, (-25, 25), (3, 25), (0, 35), (0, 50)),  # relaxed, hanging
    (0.25, (-20, 100), (0, 50), (20, 130), (0, 80)),  # bent in front: carrying, reaching
    (0.20, (-10, 40), (45, 160), (0, 120), (-85, 20)),  # raised sideways, waving
    (0.10, (100, 175), (0, 30), (0, 60), (-30, 40)),  # raised overhead
)


def _sample_arm(rng: np.random.Generator) -> LimbPose:
    r = rng.random()
    for probability, *ranges in _ARM_FAMILIES:
        if r < probability:
            break
        r -= probability
    return LimbPose(*(float(rng.uniform(lo, hi)) for lo, hi in ranges))


def _sample_legs(rng: np.random.Generator) -> Tuple[LimbPose, LimbPose]:
    """(left, right) leg poses: standing, walking, wide stance or crouching."""
    r = rng.random()
    u = rng.uniform
    if r < 0.45:  # standing
        legs = [LimbPose(rng.normal(0, 5), u(0, 12), u(0, 10), 0.0) for _ in range(2)]
    elif r < 0.8:  # walking: the back leg's knee bends more
        stride = u(10, 35)
        legs = [
            LimbPose(stride, u(0, 8), u(0, 20), 0.0),
            LimbPose(-stride * u(0.6, 1.0), u(0, 8), u(10, 60), 0.0),
        ]
    elif r < 0.9:  # wide stance
        legs = [LimbPose(rng.normal(0, 5), u(15, 35), u(0, 20), 0.0) for _ in range(2)]
    else:  # crouching
        flex = u(30, 100)
        legs = [LimbPose(flex * u(0.7, 1.1), u(0, 25), flex * u(1.0, 1.4), 0.0) for _ in range(2)]
    if rng.random() < 0.5:
        legs.reverse()
    return legs[0], legs[1]


def _sample_yaw(rng: np.random.Generator) -> float:
    r = rng.random()
    sign = 1.0 if rng.random() < 0.5 else -1.0
    if r < 0.35:
        return float(rng.normal(0, 12))  # frontal
    if r < 0.5:
        return float(180 + rng.normal(0, 12))  # back
    if r < 0.8:  # three-quarter, front or back
        return float(sign * (rng.uniform(25, 65) if rng.random() < 0.7 else rng.uniform(115, 155)))
    return float(sign * rng.uniform(70, 110))  # profile


def sample_person_spec(
    rng: np.random.Generator, height: float, center: Tuple[float, float] = (0.0, 0.0)
) -> PersonSpec:
    """A random, plausible person of the given standing height (pixels)."""
    left_leg, right_leg = _sample_legs(rng)
    if rng.random() < 0.92:
        lean = float(np.clip(rng.normal(0, 5), -15, 15))
    else:
        lean = float(rng.uniform(-35, 35))
    pitch = float(rng.normal(3, 5)) if rng.random() < 0.85 else float(rng.uniform(10, 50))
    return PersonSpec(
        center=(float(center[0]), float(center[1])),
        height=float(height),
        yaw=_sample_yaw(rng),
        lean=lean,
        trunk_pitch=pitch,
        head_yaw=float(np.clip(rng.normal(0, 15), -45, 45)),
        left_arm=_sample_arm(rng),
        right_arm=_sample_arm(rng),
        left_leg=left_leg,
        right_leg=right_leg,
        girth=float(rng.uniform(0.8, 1.3)),
        arm_scale=float(rng.uniform(0.94, 1.06)),
        leg_scale=float(rng.uniform(0.94, 1.06)),
        colors=sample_person_colors(rng),
    )


_PATTERNS = ("stripes", "checks", "noise")


def _is_styled(cfg: SyntheticConfig) -> bool:
    """Whether people of ``cfg`` get a sampled style (else the classic default)."""
    return tuple(cfg.styles) != ("classic",) or cfg.shape_variety > 0


def sample_person_style(
    rng: np.random.Generator, cfg: SyntheticConfig, height: float
) -> PersonStyle:
    """A style from ``cfg.styles`` with its random details, for a person ``height`` pixels
    tall. Draws no random numbers for the classic look without ``shape_variety``, so
    that such configs draw the same images as before styles existed."""
    styles = tuple(cfg.styles)
    name = styles[int(rng.integers(len(styles)))] if len(styles) > 1 else styles[0]
    changes: Dict[str, Any] = {}
    if cfg.shape_variety > 0 and rng.random() < cfg.shape_variety:
        changes["head_shape"] = HEAD_SHAPES[int(rng.integers(len(HEAD_SHAPES)))]
        changes["limb_scale"] = float(rng.uniform(0.6, 1.5))
    if name == "silhouette":
        changes["ink"] = _random_color(rng, 0.0, 0.05)
    elif name == "outline":
        dark = rng.random() < 0.6
        changes["ink"] = _tint(_random_color(rng, 0.0, 0.1), 0, 0.7) if dark else _random_color(rng)
        changes["line_width"] = float(max(1.0, height * rng.uniform(0.006, 0.018)))
    elif name == "textured":
        changes["pattern"] = _PATTERNS[int(rng.integers(len(_PATTERNS)))]
        changes["pattern_color"] = _random_color(rng, 0.0, 0.1)
        changes["pattern_period"] = float(max(2.5, height * rng.uniform(0.02, 0.06)))
        changes["pattern_angle"] = float(rng.uniform(0, 180))
        changes["pattern_seed"] = int(rng.integers(2**31))
    elif name == "lowcontrast":
        sign = 1.0 if rng.random() < 0.5 else -1.0
        changes["contrast"] = float(sign * rng.uniform(12, 28))
    return PersonStyle(name=name, **changes)


def _box_coverage(a: Tuple[float, ...], b: Tuple[float, ...]) -> float:
    """Intersection over the smaller box's area: how much one may hide the other."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return iw * ih / max(smaller, 1e-6)


_MAX_BOX_COVERAGE = 0.55
_PLACEMENT_TRIES = 12


def _place(
    rng: np.random.Generator,
    extent: Tuple[float, ...],
    size: int,
    lo_hi: int,
    truncate: bool,
    max_truncation: float = 0.4,
) -> float:
    """Offset along one axis that puts [extent lo, hi] inside [0, size), or lets up
    to ``max_truncation`` of it stick out when ``truncate``."""
    lo, hi = extent[lo_hi], extent[lo_hi + 2]
    margin = max_truncation * (hi - lo) if truncate else 0.0
    low, high = -lo - margin, size - hi + margin
    if high < low:  # larger than the image: centre it, give or take
        low, high = high, low
    return float(rng.uniform(low, high))


def sample_scene(cfg: SyntheticConfig, rng: np.random.Generator) -> List[PersonSpec]:
    """People for one image, placed mostly inside it, farthest first.

    Crowded images get smaller people; a person whose box would hide more than
    about half of another's (or be hidden by it) is re-drawn, so that overlaps stay
    partial. A close-up (probability ``cfg.large_person_prob``) has at most two
    people, the first 60-100% of the tallest allowed height.
    """
    count = int(rng.integers(cfg.min_people, cfg.max_people + 1))
    close_up = cfg.large_person_prob > 0 and rng.random() < cfg.large_person_prob
    if close_up:
        count = min(count, max(2, cfg.min_people))
    tallest = max(cfg.min_person_height, cfg.max_person_height_frac * cfg.height * count**-0.35)
    largest = cfg.max_person_height_frac * cfg.height
    styled = _is_styled(cfg)
    people: List[PersonSpec] = []
    boxes: List[Tuple[float, ...]] = []
    for i in range(count):
        for _ in range(_PLACEMENT_TRIES):
            if close_up and i == 0:
                height = max(cfg.min_person_height, largest * rng.uniform(0.6, 1.0))
            else:
                height = math.exp(rng.uniform(math.log(cfg.min_person_height), math.log(tallest)))
            spec = sample_person_spec(rng, height)
            if styled:
                spec = dataclasses.replace(spec, style=sample_person_style(rng, cfg, height))
            extent = build_person(spec).extent()
            truncate = rng.random() < cfg.truncation_prob
            dx = _place(rng, extent, cfg.width, 0, truncate, cfg.max_truncation)
            dy = _place(rng, extent, cfg.height, 1, truncate, cfg.max_truncation)
            box = (extent[0] + dx, extent[1] + dy, extent[2] + dx, extent[3] + dy)
            if all(_box_coverage(box, other) <= _MAX_BOX_COVERAGE for other in boxes):
                people.append(dataclasses.replace(spec, center=(dx, dy)))
                boxes.append(box)
                break
    order = rng.permutation(len(people))
    return [people[i] for i in order]


# ---------------------------------------------------------------------------
# Drawing
# ---------------------------------------------------------------------------


def _fill(image: np.ndarray, polygon: np.ndarray, color, antialias: bool = True) -> None:
    line = cv2.LINE_AA if antialias else cv2.LINE_8
    cv2.fillConvexPoly(image, to_cv_fixed_point(polygon), color, line, CV_SHIFT)


def _outline(image: np.ndarray, polygon: np.ndarray, color: BGR) -> None:
    """A thin darker edge, which keeps overlapping parts of one colour apart."""
    cv2.polylines(
        image, [to_cv_fixed_point(polygon)], True, _tint(color, 0, 0.45), 1, cv2.LINE_AA, CV_SHIFT
    )


def _draw_capsule_shaded(image: np.ndarray, part: Part) -> None:
    p0, p1, r0, r1 = part.capsule
    _fill(image, part.polygon, part.color)
    if max(r0, r1) >= 2.0:
        # a narrow lighter band on the lit side gives the limb some roundness
        offset = _LIGHT_DIR * 0.35 * (r0 + r1) / 2
        axis = p1 - p0
        normal = np.array([-axis[1], axis[0]]) / max(np.linalg.norm(axis), 1e-6)
        offset = normal * float(np.dot(offset, normal))
        band = _capsule_polygon(p0 + offset, p1 + offset, 0.35 * r0, 0.35 * r1)
        _fill(image, band, _tint(part.color, 255, 0.25))
        _outline(image, part.polygon, part.color)


def _draw_torso_shaded(image: np.ndarray, part: Part) -> None:
    _fill(image, part.polygon, part.color)
    centroid = part.polygon.mean(axis=0)
    extent = np.ptp(part.polygon, axis=0).max()
    if extent >= 8:
        inner = centroid + 0.55 * (part.polygon - centroid) + _LIGHT_DIR * 0.12 * extent
        _fill(image, inner, _tint(part.color, 255, 0.15))
        _outline(image, part.polygon, part.color)
    _draw_chest_mark(image, part)


def _chest_mark_polygon(part: Part) -> Optional[np.ndarray]:
    mark = part.mark
    if mark is None:
        return None
    return _ellipse_points(mark["center"], mark["rx"], mark["ry"], mark["angle"], n=16)


def _draw_chest_mark(image: np.ndarray, part: Part, color: Optional[BGR] = None) -> None:
    """The torso's chest badge, in its own colour or ``color``; nothing from behind."""
    polygon = _chest_mark_polygon(part)
    if polygon is not None:
        _fill(image, polygon, part.mark["color"] if color is None else color)


def _hair_polygon(details: Dict[str, Any]) -> Optional[np.ndarray]:
    """The cap of the head ellipse covered by hair: the top, shifted to the back of
    the head, the whole head seen from behind."""
    facing_x, facing_z = details["facing"]
    n = 48
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    unit = np.stack([np.cos(t), np.sin(t)], axis=1)  # y down
    if details.get("exponent", 2.0) != 2.0:
        unit = _superellipse_unit(t, details["exponent"])
    direction = np.array([-1.1 * facing_x, -1.0])
    direction /= np.linalg.norm(direction)
    cut = -0.1 + (0.45 * facing_z if facing_z >= 0 else 0.9 * facing_z)
    inside = unit @ direction >= cut
    if inside.sum() < 3:
        return None
    if inside.all():
        chosen = unit
    else:
        start = int(np.argmax(inside & ~np.roll(inside, 1)))  # first point of the arc
        rolled = np.roll(np.arange(n), -start)
        chosen = unit[rolled[inside[rolled]]]
    a = math.radians(details["angle"])
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    local = chosen * np.array([details["rx"], details["ry"]])
    return details["center"] + local @ rot.T


def _draw_head(image: np.ndarray, part: Part) -> None:
    details = part.head
    _fill(image, part.polygon, details["skin"])
    hair = _hair_polygon(details)
    if hair is not None:
        _fill(image, hair, details["hair"])
    for center, radius, color in details["features"]:
        center_fixed = tuple(int(v) for v in to_cv_fixed_point(center))
        radius_fixed = int(round(radius * float(1 << CV_SHIFT)))
        cv2.circle(image, center_fixed, radius_fixed, color, -1, cv2.LINE_AA, CV_SHIFT)
    if details["rx"] >= 4:
        _outline(image, part.polygon, details["skin"])


def _draw_part(image: np.ndarray, part: Part) -> None:
    if part.head is not None:
        _draw_head(image, part)
    elif part.capsule is not None:
        _draw_capsule_shaded(image, part)
    else:
        _draw_torso_shaded(image, part)


# --- styles other than classic ------------------------------------------------


def _polygon_alpha(
    polygon: np.ndarray, shape: Tuple[int, ...]
) -> Optional[Tuple[slice, slice, np.ndarray]]:
    """The anti-aliased coverage of ``polygon`` in its bounding box inside an image
    of ``shape``: (rows, cols, (h, w, 1) float32 alpha), or None when outside."""
    height, width = shape[:2]
    x0 = max(0, int(math.floor(polygon[:, 0].min())) - 1)
    y0 = max(0, int(math.floor(polygon[:, 1].min())) - 1)
    x1 = min(width, int(math.ceil(polygon[:, 0].max())) + 2)
    y1 = min(height, int(math.ceil(polygon[:, 1].max())) + 2)
    if x1 <= x0 or y1 <= y0:
        return None
    mask = np.zeros((y1 - y0, x1 - x0), dtype=np.uint8)
    _fill(mask, polygon - np.array([x0, y0]), 255)
    return slice(y0, y1), slice(x0, x1), (mask.astype(np.float32) / 255.0)[..., None]


def _paint(image: np.ndarray, polygon: np.ndarray, source) -> None:
    """Blend ``source(rows, cols)`` (an (h, w, 3) array for that window of the image)
    into ``image`` inside ``polygon``, with anti-aliased edges."""
    window = _polygon_alpha(polygon, image.shape)
    if window is None:
        return
    rows, cols, alpha = window
    target = image[rows, cols].astype(np.float32)
    blended = target + (np.asarray(source(rows, cols), dtype=np.float32) - target) * alpha
    image[rows, cols] = np.clip(np.round(blended), 0, 255).astype(np.uint8)


def _pattern(style: PersonStyle, part: Part, rows: slice, cols: slice, base: BGR) -> np.ndarray:
    """The textured style's cloth for one part over an image window: stripes (across
    a limb's axis), checks or blotchy noise in the part's colour and the pattern's."""
    ys, xs = np.mgrid[rows, cols].astype(np.float32) + 0.5
    angle = style.pattern_angle
    if part.capsule is not None:
        axis = part.capsule[1] - part.capsule[0]
        angle += math.degrees(math.atan2(axis[1], axis[0]))
    a = math.radians(angle)
    u = (xs * math.cos(a) + ys * math.sin(a)) / style.pattern_period
    v = (-xs * math.sin(a) + ys * math.cos(a)) / style.pattern_period
    if style.pattern == "stripes":
        t = (u % 1.0 < 0.5).astype(np.float32)
    elif style.pattern == "checks":
        t = ((u % 1.0 < 0.5) ^ (v % 1.0 < 0.5)).astype(np.float32)
    else:  # noise: coarse random cells, smoothly enlarged
        h, w = xs.shape
        cells = np.random.default_rng([style.pattern_seed, zlib.crc32(part.name.encode())])
        period = style.pattern_period
        grid = (max(2, int(h / period) + 2), max(2, int(w / period) + 2))
        coarse = cells.random(grid, dtype=np.float32)
        t = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_LINEAR)
        t = np.clip((t - 0.5) * 3.0 + 0.5, 0.0, 1.0)
    a_color, b_color = np.asarray(base, np.float32), np.asarray(style.pattern_color, np.float32)
    return a_color + (b_color - a_color) * t[..., None]


# lowcontrast: each part's offset from the background, in units of the style's contrast;
# legs go the other way from the torso; left and right alike (a mirror keeps the cues)
_LOW_CONTRAST_FACTORS = {
    "torso": 1.0, "head": 1.4, "neck": 1.2,
    "left_upper_arm": 1.35, "left_forearm": 1.35, "right_upper_arm": 1.35, "right_forearm": 1.35,
    "left_thigh": -0.75, "left_shin": -0.75, "right_thigh": -0.75, "right_shin": -0.75,
}  # fmt: skip
_LOW_CONTRAST_OTHER = 1.3  # hands and feet


_MIN_INK_DISTANCE = 80.0  # BGR distance of an outline's colour from the background


def _legible_ink(ink: BGR, background_mean: np.ndarray) -> BGR:
    """``ink``, or black or white (the farther) when it is too close to the mean
    background under the person: outlines are held out to test shape, not eyesight."""
    if np.linalg.norm(np.subtract(ink, background_mean)) >= _MIN_INK_DISTANCE:
        return ink
    return (20, 20, 20) if float(np.mean(background_mean)) > 110 else (235, 235, 235)


def _draw_styled_part(
    image: np.ndarray,
    part: Part,
    spec: PersonSpec,
    background: np.ndarray,
    background_mean: np.ndarray,
) -> None:
    """Draw one part in its person's style (classic: :func:`_draw_part`)."""
    style = spec.style
    if style.name == "classic":
        _draw_part(image, part)
    elif style.name == "silhouette":
        _fill(image, part.polygon, style.ink)
    elif style.name == "outline":
        # the inside shows the background, so nearer parts and people still hide farther ones
        _paint(image, part.polygon, lambda rows, cols: background[rows, cols])
        ink = _legible_ink(style.ink, background_mean)
        width = int(round(style.line_width))
        points = [to_cv_fixed_point(part.polygon)]
        cv2.polylines(image, points, True, ink, width, cv2.LINE_AA, CV_SHIFT)
        mark = _chest_mark_polygon(part)
        if mark is not None:
            cv2.polylines(image, [to_cv_fixed_point(mark)], True, ink, width, cv2.LINE_AA, CV_SHIFT)
        if part.head is not None:
            for center, radius, _ in part.head["features"]:
                _fill(image, _ellipse_points(center, radius, radius, 0.0, n=12), ink)
    elif style.name == "textured":
        if not _is_cloth(part, spec.colors):
            _draw_part(image, part)
        else:
            _paint(image, part.polygon, lambda r, c: _pattern(style, part, r, c, part.color))
            _outline(image, part.polygon, part.color)
            _draw_chest_mark(image, part)
    else:  # lowcontrast: flat parts a few grey levels off the background
        factor = _LOW_CONTRAST_FACTORS.get(part.name, _LOW_CONTRAST_OTHER)
        color = np.clip(background_mean + style.contrast * factor, 0, 255)
        bgr = tuple(int(round(c)) for c in color)
        _fill(image, part.polygon, bgr)
        ink = tuple(int(round(c)) for c in np.clip(color - 1.5 * abs(style.contrast), 0, 255))
        _draw_chest_mark(image, part, ink)
        if part.head is not None:
            for center, radius, _ in part.head["features"]:
                _fill(image, _ellipse_points(center, radius, radius, 0.0, n=12), ink)


_LIMB_COLOR_FIELDS = {segment[0]: segment[5] for segment in _LIMB_SEGMENTS}


def _is_cloth(part: Part, colors: PersonColors) -> bool:
    """Torso, sleeves and trousers; not the head, neck, hands, shoes or bare limbs."""
    if part.name == "torso":
        return True
    field = _LIMB_COLOR_FIELDS.get(part.name.split("_", 1)[-1])
    return field in ("upper_arms", "forearms", "thighs", "shins") and (
        getattr(colors, field) != colors.skin
    )


def _gradient(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    c0 = np.array(_random_color(rng, 0.0, 0.15), dtype=np.float32)
    c1 = np.array(_random_color(rng, 0.0, 0.15), dtype=np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    xs = np.linspace(0, 1, width, dtype=np.float32)[None, :]
    ys = np.linspace(0, 1, height, dtype=np.float32)[:, None]
    t = xs * math.cos(angle) + ys * math.sin(angle)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    return c0 + (c1 - c0) * t[..., None]


def _draw_random_shape(image: np.ndarray, rng: np.random.Generator) -> None:
    h, w = image.shape[:2]
    color = _random_color(rng, 0.0, 0.1)
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
        color = _random_color(rng)
    else:
        color = _jitter_rgb_to_bgr(rng, _SKIN_TONES[rng.integers(len(_SKIN_TONES))], 12)
    start = np.array([rng.uniform(0, w), rng.uniform(0, h)]) + 0.5
    angle = rng.uniform(0, 2 * np.pi)
    r0 = max(1.0, size * rng.uniform(0.025, 0.05))
    for _ in range(1 if rng.random() < 0.6 else 2):
        end = start + size * rng.uniform(0.15, 0.25) * np.array([math.cos(angle), math.sin(angle)])
        r1 = max(1.0, r0 * rng.uniform(0.7, 0.9))
        polygon = _capsule_polygon(start, end, r0, r1)
        part = Part("distractor", polygon, color, 0.0, capsule=(start, end, r0, r1))
        _draw_capsule_shaded(image, part)
        start, r0, angle = end, r1, angle + rng.uniform(-2.2, 2.2)
    if rng.random() < 0.25:  # a lone head-like blob
        blob = _jitter_rgb_to_bgr(rng, _SKIN_TONES[rng.integers(len(_SKIN_TONES))], 12)
        center = np.array([rng.uniform(0, w), rng.uniform(0, h)])
        _fill(image, _ellipse_points(center, size * 0.05, size * 0.065, rng.uniform(-30, 30)), blob)


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


def _add_noise(image: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    noise = rng.standard_normal(image.shape, dtype=np.float32) * sigma
    return np.clip(image.astype(np.float32) + noise, 0, 255).astype(np.uint8)


def _finish(image: np.ndarray, rng: np.random.Generator, degrade_prob: float = 0.0) -> np.ndarray:
    """Camera-like degradations over the whole picture: mild blur and noise, and with
    probability ``degrade_prob`` a strong blur and/or strong noise on top."""
    if rng.random() < 0.25:
        image = cv2.GaussianBlur(image, (3, 3), 0.7)
    image = _add_noise(image, rng, rng.uniform(2.0, 8.0))
    if degrade_prob > 0 and rng.random() < degrade_prob:
        kind = rng.random()
        if kind < 0.7:  # blur, or blur then noise
            image = cv2.GaussianBlur(image, (0, 0), rng.uniform(1.0, 2.2))
        if kind >= 0.4:
            image = _add_noise(image, rng, rng.uniform(8.0, 18.0))
    return image


# ---------------------------------------------------------------------------
# Rendering and labelling
# ---------------------------------------------------------------------------

_OWNER_PARTS = 32  # owner-buffer code = (person + 1) * 32 + part index


def render_people(canvas: np.ndarray, people: Sequence[PersonSpec]) -> List[Dict[str, Any]]:
    """Draw ``people`` onto ``canvas`` in place, farthest first, and label them.

    Returns one dict per person (same order) with ``keypoints`` ((17, 3) float:
    COCO pixel-index x, y rounded to 2 decimals, and v), ``num_keypoints``,
    ``bbox`` ([x, y, w, h] of the whole silhouette inside the image, empty
    silhouettes give zeros), ``area`` (silhouette pixels inside the image),
    ``visible_area`` (pixels where this person is the topmost paint), ``mask``
    (HxW bool silhouette), ``style`` (the person's style name) and ``yaw`` (the body's
    turn in (-180, 180] degrees, :mod:`kpext.data.facing`). Needs no random numbers: the
    specs fix everything.
    """
    height, width = canvas.shape[:2]
    if len(people) >= 2**16 // _OWNER_PARTS - 1:
        raise ValueError(f"at most {2**16 // _OWNER_PARTS - 2} people per image")
    owner = np.zeros((height, width), dtype=np.uint16)
    models = [build_person(spec) for spec in people]
    background = canvas.copy()  # what outlines show inside, what low contrast is measured on
    masks = []
    for p, (spec, model) in enumerate(zip(people, models)):
        mask = np.zeros((height, width), dtype=np.uint8)
        for part in model.parts:
            _fill(mask, part.polygon, 1, antialias=False)
        mask = mask.astype(bool)
        background_mean = None
        if spec.style.name in ("lowcontrast", "outline"):
            under = background[mask] if mask.any() else background.reshape(-1, 3)
            background_mean = under.mean(axis=0)
        for k, part in enumerate(model.parts):
            _draw_styled_part(canvas, part, spec, background, background_mean)
            _fill(owner, part.polygon, (p + 1) * _OWNER_PARTS + k, antialias=False)
        masks.append(mask)
    labels = [
        _label_person(p, model, owner, masks[p], spec.style.name)
        for p, (spec, model) in enumerate(zip(people, models))
    ]
    for label, spec in zip(labels, people):
        label["yaw"] = round((float(spec.yaw) + 180.0) % 360.0 - 180.0, 1)
    return labels


def _label_person(
    p: int, model: PersonModel, owner: np.ndarray, mask: np.ndarray, style: str = "classic"
) -> Dict[str, Any]:
    height, width = owner.shape
    keypoints = np.zeros((NUM_KEYPOINTS, 3), dtype=np.float64)
    for j, (x, y) in enumerate(np.round(continuous_to_coco(model.keypoints), 2)):
        if not (0.0 <= x <= width - 1 and 0.0 <= y <= height - 1):
            continue  # outside the image: v=0 and x=y=0, as in COCO
        code = int(owner[pixel_containing(y), pixel_containing(x)])
        on_top = code // _OWNER_PARTS == p + 1 and code % _OWNER_PARTS in model.home_parts[j]
        keypoints[j] = (x, y, 2.0 if on_top and not model.face_hidden[j] else 1.0)
    ys, xs = np.nonzero(mask)
    if len(xs):
        x0, y0 = int(xs.min()), int(ys.min())
        bbox = [float(x0), float(y0), float(xs.max() + 1 - x0), float(ys.max() + 1 - y0)]
    else:
        bbox = [0.0, 0.0, 0.0, 0.0]
    return {
        "keypoints": keypoints,
        "num_keypoints": int((keypoints[:, 2] > 0).sum()),
        "bbox": bbox,
        "area": float(len(xs)),
        "visible_area": float(np.count_nonzero(owner // _OWNER_PARTS == p + 1)),
        "mask": mask,
        "style": style,
    }


def _recognisable(ann: Dict[str, Any]) -> bool:
    visible_keypoints = int((ann["keypoints"][:, 2] == 2).sum())
    visible_share = ann["visible_area"] / max(ann["area"], 1.0)
    return visible_keypoints >= MIN_VISIBLE_KEYPOINTS and visible_share >= MIN_VISIBLE_FRACTION


def _render_recognisable(background: np.ndarray, people: List[PersonSpec]):
    """Render, drop people too hidden or truncated to be seen, and render again
    without them (dropping someone only uncovers the others)."""
    while True:
        canvas = background.copy()
        anns = render_people(canvas, people)
        keep = [i for i, ann in enumerate(anns) if _recognisable(ann)]
        if len(keep) == len(people):
            return canvas, anns
        people = [people[i] for i in keep]


_LAYOUT_ATTEMPTS = 4


def render_image(
    cfg: SyntheticConfig, rng: np.random.Generator
) -> Tuple[np.ndarray, List[Dict[str, Any]]]:
    """Draw one image (H x W x 3 uint8, BGR) and its people's labels.

    Each label dict is as returned by :func:`render_people`. The scene is laid out
    again (up to a few times) when too few people remain recognisable to reach
    ``cfg.min_people``; the best attempt is kept, and a single centred person is
    drawn in the unlikely case that none is.
    """
    background = draw_background(
        rng, cfg.width, cfg.height, cfg.max_distractors, cfg.min_person_height
    )
    best: Optional[Tuple[np.ndarray, List[Dict[str, Any]]]] = None
    for _ in range(_LAYOUT_ATTEMPTS):
        canvas, anns = _render_recognisable(background, sample_scene(cfg, rng))
        if best is None or len(anns) > len(best[1]):
            best = (canvas, anns)
        if len(anns) >= cfg.min_people:
            break
    if not best[1]:
        tallest = cfg.max_person_height_frac * cfg.height
        height = min(tallest, max(cfg.min_person_height, 0.6 * cfg.height))
        center = (cfg.width / 2, cfg.height / 2 + 0.03 * height)
        spec = sample_person_spec(rng, height, center=center)
        if _is_styled(cfg):
            spec = dataclasses.replace(spec, style=sample_person_style(rng, cfg, height))
        best = _render_recognisable(background, [spec])
    image, anns = best
    return _finish(image, rng, cfg.degrade_prob), anns


# ---------------------------------------------------------------------------
# Writing splits
# ---------------------------------------------------------------------------


# The generator's name in the JSONs' ``info``: the module's path when the format was
# fixed, kept so that the same settings still give byte-identical files.
_GENERATOR_NAME = "kpext.data.synthetic"


def _info(split: str, cfg: SyntheticConfig) -> Dict[str, Any]:
    return {
        "description": "kpext synthetic multi-person keypoints",
        "generator": _GENERATOR_NAME,
        "version": GENERATOR_VERSION,
        "split": split,
        "seed": cfg.seed,
        "config": dataclasses.asdict(cfg),
    }


def _coco_annotation(ann: Dict[str, Any], ann_id: int, image_id: int) -> Dict[str, Any]:
    flat = []
    for x, y, v in ann["keypoints"]:
        flat.extend([round(float(x), 2), round(float(y), 2), int(v)])
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": 1,
        "bbox": [round(float(b), 2) for b in ann["bbox"]],
        "area": float(ann["area"]),
        "iscrowd": 0,
        "keypoints": flat,
        "num_keypoints": int(ann["num_keypoints"]),
        "style": ann["style"],
        "yaw": ann["yaw"],
    }


_IMAGE_NAME = re.compile(r"^\d{6,}\.jpg$")


def generate_split(
    out_root: str, split: str, cfg: SyntheticConfig, show_progress: bool = True
) -> str:
    """Generate one split: images, then the COCO JSON (written atomically, so an
    interrupted run leaves no JSON and is regenerated next time). Returns the JSON path."""
    cfg.validate()
    if not re.fullmatch(r"[A-Za-z0-9_\-]+", split):
        raise ValueError(f"split name must use letters, digits, '_' or '-', got {split!r}")
    images_folder = synthetic_image_dir(out_root, split)
    os.makedirs(images_folder, exist_ok=True)
    for stale in os.listdir(images_folder):  # images of an earlier, maybe larger, run
        if _IMAGE_NAME.match(stale):
            os.remove(os.path.join(images_folder, stale))

    images, annotations = [], []
    progress = tqdm(
        range(cfg.num_images), desc=f"synthetic {split}", unit="img", disable=not show_progress
    )
    for index in progress:
        image, anns = render_image(cfg, image_rng(cfg.seed, split, index))
        image_id = index + 1
        file_name = f"{image_id:06d}.jpg"
        file_path = os.path.join(images_folder, file_name)
        if not cv2.imwrite(file_path, image, [cv2.IMWRITE_JPEG_QUALITY, cfg.jpeg_quality]):
            raise OSError(f"could not write {file_path}")
        images.append(
            {"id": image_id, "file_name": file_name, "width": cfg.width, "height": cfg.height}
        )
        for ann in anns:
            annotations.append(_coco_annotation(ann, len(annotations) + 1, image_id))

    json_path = synthetic_annotation_path(out_root, split)
    data = {
        "info": _info(split, cfg),
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": [SYNTHETIC_CATEGORY],
    }
    write_json_atomically(json_path, data)
    return json_path


def split_is_current(out_root: str, split: str, cfg: SyntheticConfig) -> bool:
    """True when the split's JSON exists, was made by this generator version with
    these settings, and all its images exist."""
    path = synthetic_annotation_path(out_root, split)
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return False
    info = data.get("info", {}) if isinstance(data, dict) else {}
    # compared as JSON stores it: the styles tuple comes back as a list
    config = json.loads(json.dumps(dataclasses.asdict(cfg)))
    if info.get("version") != GENERATOR_VERSION or info.get("config") != config:
        return False
    folder = synthetic_image_dir(out_root, split)
    images = data.get("images", [])
    return all(os.path.isfile(os.path.join(folder, im["file_name"])) for im in images)


def ensure_synthetic_dataset(
    out_root: str,
    splits: Optional[Mapping[str, SyntheticConfig]] = None,
    show_progress: bool = True,
) -> Dict[str, str]:
    """Generate the splits that are missing or stale (see :func:`split_is_current`).

    ``splits`` defaults to :data:`DEFAULT_SPLITS`. Returns ``{split: json_path}``.
    """
    splits = DEFAULT_SPLITS if splits is None else splits
    paths = {}
    for split, cfg in splits.items():
        if split_is_current(out_root, split, cfg):
            paths[split] = synthetic_annotation_path(out_root, split)
        else:
            paths[split] = generate_split(out_root, split, cfg, show_progress=show_progress)
    return paths


# ---------------------------------------------------------------------------
# Visualisation
# ---------------------------------------------------------------------------
