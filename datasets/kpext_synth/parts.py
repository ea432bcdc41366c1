"""A synthetic person's drawn parts: the posed skeleton projected by the camera and
dressed in filled, convex parts (tapered limb capsules, torso with its chest badge, neck,
head with hair and face features), sorted far to near, with the parts each keypoint is
seen on (:func:`build_person`). No drawing happens here (:mod:`kpext_synth.painting`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import cv2
import numpy as np

from kpext.data.keypoint_sets import COCO_PERSON_KEYPOINT_NAMES

from .body import FACE_POINTS, PROPORTIONS, PersonSpec, bend_forward, skeleton_points
from .camera import Camera
from .colors import BGR, tint
from .shapes import capsule_polygon, ellipse_points, superellipse_points

__all__ = ["Part", "PersonModel", "LIMB_SEGMENTS", "build_person"]


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


# Parts on which each keypoint is seen (see PersonModel.home_parts). Shoulders and
# hips also count the torso when they are on the near half of the body.
_HOME_PART_NAMES = {
    **{name: ("head",) for name in FACE_POINTS},
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


def build_person(spec: PersonSpec) -> PersonModel:
    """Pose, project and assemble the parts of one person (no drawing)."""
    camera = Camera(spec.center, spec.height, spec.yaw, spec.lean)
    points, face_hidden = skeleton_points(spec)
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
    return Part(name, capsule_polygon(a, b, ra, rb), color, depth, capsule=(a, b, ra, rb))


# (part, start point, end point, start radius, end radius, PersonColors field, depth bias);
# the small biases put a distal part in front of its proximal one at equal depth.
LIMB_SEGMENTS = (
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
        for part, start, end, r0, r1, color_field, bias in LIMB_SEGMENTS:
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
    color = tint(spec.colors.skin, 0, 0.12)
    return _capsule_part("neck", xy["neck_base"], xy["neck_top"], r, r, color, _NECK_DEPTH_BIAS)


def _torso_part(spec: PersonSpec, camera: Camera) -> Part:
    """Convex hull of a box from the shoulders to the hips, thick front to back, so
    that the torso keeps a sensible width in profile."""
    P, g = PROPORTIONS, float(spec.girth)
    shoulder_h = P["shoulder"] - P["hip"]
    sx, hx = P["shoulder_half_width"] + 0.02 * g, P["hip_half_width"] + 0.035 * g
    cd, pd = P["chest_half_depth"] * g, P["pelvis_half_depth"] * g
    corners = [(-1, -1), (-1, 1), (1, -1), (1, 1)]
    chest = np.array([[sa * sx, shoulder_h + 0.012, sb * cd] for sa, sb in corners])
    waist = np.array([[sa * hx, -0.03, sb * pd] for sa, sb in corners])
    xy, _ = camera.project(np.concatenate([bend_forward(chest, spec.trunk_pitch), waist]))
    polygon = cv2.convexHull(xy.astype(np.float32)).reshape(-1, 2).astype(np.float64)
    return Part(
        "torso", polygon, spec.colors.torso, _TORSO_DEPTH_BIAS, mark=_chest_mark(spec, camera)
    )


_FACE_FEATURE_SCALE = 0.24  # face feature radius / head half-width
_CHEST_MARK_RADIUS = 0.034  # of the standing height
_CHEST_MARK_HEIGHT = 0.075  # below the shoulders, of the standing height
_CHEST_MARK_MIN_FACING = 0.35  # cos(yaw) above which the chest faces the camera enough to show


def _chest_mark(spec: PersonSpec, camera: Camera) -> Optional[Dict[str, Any]]:
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
    xy, _ = camera.project(bend_forward(point, spec.trunk_pitch))
    radius = max(0.8, _CHEST_MARK_RADIUS * float(spec.height) * g)
    torso = np.asarray(spec.colors.torso, dtype=np.float64)
    color = (
        tint(spec.colors.torso, 0, 0.7)
        if torso.mean() > 128
        else tint(spec.colors.torso, 255, 0.75)
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
        "left_ear": (1.4, tint(colors.skin, 0, 0.3)),
        "right_ear": (1.4, tint(colors.skin, 0, 0.3)),
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
        polygon = ellipse_points(center, rx, ry, spec.lean, n=36)
    else:
        polygon = superellipse_points(center, rx, ry, spec.lean, exponent, n=36)
    return Part("head", polygon, colors.skin, z["head_center"] + _HEAD_DEPTH_BIAS, head=details)
