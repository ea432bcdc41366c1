"""The synthetic people's 3-D body model and its random poses.

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

A :class:`PersonSpec` is everything that determines one person (pose, proportions,
colours, style); :func:`skeleton_points` poses its skeleton in the body frame and
:func:`sample_person_spec` draws a random, plausible one. Projecting the skeleton and
building the drawn parts is :mod:`kpext_synth.parts`' concern.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Tuple

import numpy as np

from .camera import yaw_rotate
from .colors import PersonColors, sample_person_colors
from .styles import PersonStyle

__all__ = [
    "PROPORTIONS",
    "JOINT_LIMITS",
    "FACE_POINTS",
    "LimbPose",
    "PersonSpec",
    "bend_forward",
    "skeleton_points",
    "sample_person_spec",
]

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


def bend_forward(points: np.ndarray, pitch_deg: float) -> np.ndarray:
    """Bend (..., 3) body-frame points of the upper body forwards about the pelvis."""
    p = math.radians(pitch_deg)
    c, s = math.cos(p), math.sin(p)
    out = points.copy()
    out[..., 1] = points[..., 1] * c - points[..., 2] * s
    out[..., 2] = points[..., 1] * s + points[..., 2] * c
    return out


# Face points on the unit head sphere (lateral, up, forward), and how far behind the
# head's silhouette (in sphere units) each may turn before it counts as hidden:
# ears sit on the sides and stay visible a little longer.
FACE_POINTS = {
    "nose": ((0.0, -0.15, 0.92), -0.15),
    "left_eye": ((0.4, 0.15, 0.82), -0.15),
    "right_eye": ((-0.4, 0.15, 0.82), -0.15),
    "left_ear": ((0.88, 0.0, -0.05), -0.35),
    "right_ear": ((-0.88, 0.0, -0.05), -0.35),
}


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
    for name, (unit, threshold) in FACE_POINTS.items():
        unit = np.asarray(unit)
        turned = yaw_rotate(unit[[0, 2]] * radii[[0, 2]], head_yaw)
        points[name] = head_center + np.array([turned[0], unit[1] * radii[1], turned[1]])
        # depth of the point on the unit head sphere, as seen by the camera
        hidden[name] = bool(yaw_rotate(unit[[0, 2]], face_yaw)[1] < threshold)
    return points, hidden


def skeleton_points(spec: PersonSpec) -> Tuple[Dict[str, np.ndarray], Dict[str, bool]]:
    """All named body-frame points of a person (the 17 keypoints, hand and toe tips,
    neck ends, head centre), and which face points are turned away."""
    P = PROPORTIONS
    points: Dict[str, np.ndarray] = {}
    for side_name, side in (("left", 1.0), ("right", -1.0)):
        arm = spec.left_arm if side > 0 else spec.right_arm
        for name, point in _arm_points(arm, side, spec.arm_scale).items():
            points[f"{side_name}_{name}"] = bend_forward(point, spec.trunk_pitch)
        leg = spec.left_leg if side > 0 else spec.right_leg
        for name, point in _leg_points(leg, side, spec.leg_scale).items():
            points[f"{side_name}_{name}"] = point
    upper = {
        "neck_base": [0.0, P["shoulder"] - P["hip"] - 0.02, 0.0],
        "neck_top": [0.0, P["neck_top"] - P["hip"], 0.0],
        "head_center": [0.0, P["head_center"] - P["hip"], 0.01],
    }
    for name, point in upper.items():
        points[name] = bend_forward(np.array(point), spec.trunk_pitch)
    face, face_hidden = _face_points(points["head_center"], spec.head_yaw, spec.yaw + spec.head_yaw)
    points.update(face)
    return points, face_hidden


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
