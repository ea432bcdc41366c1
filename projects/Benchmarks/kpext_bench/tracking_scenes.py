"""Synthetic multi-person sequences with ground-truth identities and keypoints, for tracking.

Nothing is rendered: each person is a stick figure in COCO's 17-keypoint order
walking (or jumping) along waypoints, seen by a fixed camera. Per frame the
ground truth gives every person in view their keypoints with COCO's visibility
(2 visible, 1 hidden behind a nearer person, 0 outside the image), a box and
an area; the detection sources (:mod:`kpext_bench.tracking_detections`) turn it
into what a detector would report.

The scenes (:data:`SCENES`), each a few seconds at 30 fps in a 320 x 240 frame:

* ``crossing``: two people walk past each other at about the same depth, a
  third stands by;
* ``occlusion``: a near person walks in front of two farther ones and hides
  each of them completely for about half a second;
* ``exit_reentry``: one person walks out of the right edge and comes back
  after two thirds of a second, another walks out of the left edge and comes
  back after a third of a second;
* ``fast``: two people run to and fro across the frame at about 11 px per
  frame (a frame width per second), crossing each other three times; a third
  jumps in place;
* ``group``: five people walk to and fro across each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np

from kpext.data.keypoint_sets import COCO_PERSON_KEYPOINT_NAMES

__all__ = [
    "WIDTH",
    "HEIGHT",
    "FPS",
    "PersonPath",
    "GroundTruthFrame",
    "Scene",
    "SCENES",
    "make_scene",
    "build_scene",
    "scene_summary",
    "pose_at",
    "FLIP_PARTNER",
]

WIDTH, HEIGHT, FPS = 320, 240, 30.0
NAMES = COCO_PERSON_KEYPOINT_NAMES
# each keypoint's left/right counterpart (itself for the nose)
FLIP_PARTNER = np.array(
    [
        NAMES.index(n.replace("left", "right") if "left" in n else n.replace("right", "left"))
        for n in NAMES
    ]
)
# in view: a person counts in a frame's ground truth with at least this many keypoints inside
MIN_KEYPOINTS_IN_VIEW = 4
# a keypoint is hidden when it falls inside a nearer person's box narrowed to this fraction of
# its width (the body, not the air between the arms)
BODY_WIDTH = 0.7
# COCO's area is the person's segment, about half of the box
AREA_PER_BOX = 0.5


@dataclass
class PersonPath:
    """One person's motion: ``waypoints`` of (frame, hip x, feet y, height in px), linearly
    interpolated (constant before the first and after the last); ``jump`` lifts the whole
    body by ``jump(frame)`` px."""

    waypoints: Sequence[Tuple[float, float, float, float]]
    jump: Callable[[np.ndarray], np.ndarray] = lambda frames: np.zeros(len(frames))


@dataclass
class GroundTruthFrame:
    """One frame's people in view: ids (G), keypoints G x K x 3 (x, y, visibility 0/1/2),
    boxes G x 4 XYXY (around the keypoints in the image, clipped to it), areas G
    (half the box area, as COCO's segments), occluded G (fraction of the in-image
    keypoints hidden by nearer people)."""

    ids: np.ndarray
    keypoints: np.ndarray
    boxes: np.ndarray
    areas: np.ndarray
    occluded: np.ndarray


@dataclass
class Scene:
    """A named sequence: ground truth per frame, and every person's full pose track
    (P x T x K x 2, also outside the image) and height (P x T)."""

    name: str
    frames: List[GroundTruthFrame]
    poses: np.ndarray
    heights: np.ndarray

    @property
    def num_frames(self) -> int:
        return len(self.frames)


def pose_at(
    hip_x: np.ndarray,
    feet_y: np.ndarray,
    height: np.ndarray,
    heading: np.ndarray,
    phase: np.ndarray,
) -> np.ndarray:
    """T x K x 2 keypoints of a stick figure facing the camera half-turned towards ``heading``
    (+1 right, -1 left, 0 still), in gait ``phase`` (radians); every input has length T.

    The figure's left side is on the image's right (it faces the camera); arms and legs
    swing in antiphase, the knee bends on the forward swing.
    """
    t = len(hip_x)
    h = height[:, None]
    swing = np.sin(phase)[:, None]
    d = heading[:, None]
    hip_y = feet_y[:, None] - 0.47 * h
    kp = np.zeros((t, len(NAMES), 2))

    def put(name: str, dx: np.ndarray, dy: np.ndarray) -> None:
        kp[:, NAMES.index(name), 0] = (hip_x[:, None] + dx)[:, 0]
        kp[:, NAMES.index(name), 1] = (hip_y + dy)[:, 0]

    face = 0.025 * d * h  # the face turns towards the walking direction
    put("nose", face, -0.46 * h)
    for side, sign in (("left", 1.0), ("right", -1.0)):
        put(f"{side}_eye", face + sign * 0.022 * h, -0.48 * h)
        put(f"{side}_ear", 0.5 * face + sign * 0.05 * h, -0.47 * h)
        shoulder_x, shoulder_y = sign * 0.11 * h, -0.33 * h
        put(f"{side}_shoulder", shoulder_x, shoulder_y)
        arm = -sign * 0.45 * swing * d  # the arm swings against the same side's leg
        elbow_x, elbow_y = shoulder_x + 0.15 * h * np.sin(arm), shoulder_y + 0.15 * h * np.cos(arm)
        put(f"{side}_elbow", elbow_x, elbow_y)
        fore = arm + 0.3 * np.abs(d)
        put(f"{side}_wrist", elbow_x + 0.14 * h * np.sin(fore), elbow_y + 0.14 * h * np.cos(fore))
        hip_dx = sign * 0.07 * h
        put(f"{side}_hip", hip_dx, np.zeros_like(h))
        leg = sign * 0.4 * swing * d
        knee_x, knee_y = hip_dx + 0.24 * h * np.sin(leg), 0.24 * h * np.cos(leg)
        put(f"{side}_knee", knee_x, knee_y)
        bend = leg - 0.5 * np.clip(sign * swing, 0, None) * d
        put(f"{side}_ankle", knee_x + 0.23 * h * np.sin(bend), knee_y + 0.23 * h * np.cos(bend))
    return kp


def _path_track(path: PersonPath, num_frames: int) -> Tuple[np.ndarray, np.ndarray]:
    """(T x K x 2 poses, T heights) of one person."""
    frames = np.arange(num_frames, dtype=np.float64)
    wp = np.asarray(path.waypoints, dtype=np.float64)
    hip_x, feet_y, height = (np.interp(frames, wp[:, 0], wp[:, i]) for i in (1, 2, 3))
    step = np.gradient(hip_x)
    heading = np.sign(np.where(np.abs(step) > 0.05, step, 0.0))
    # a stride of about 0.8 heights per gait cycle
    phase = np.cumsum(np.abs(step) / (0.8 * height) * 2 * np.pi)
    feet_y = feet_y - path.jump(frames)
    return pose_at(hip_x, feet_y, height, heading, phase), height


def _box_of(points: np.ndarray, height: float) -> np.ndarray:
    lo, hi = points.min(axis=0), points.max(axis=0)
    box = np.array(
        [lo[0] - 0.08 * height, lo[1] - 0.06 * height, hi[0] + 0.08 * height, hi[1] + 0.03 * height]
    )
    return np.clip(box, 0.0, [WIDTH, HEIGHT, WIDTH, HEIGHT])


def make_scene(name: str, paths: Sequence[PersonPath], num_frames: int) -> Scene:
    """Ground truth of people moving along ``paths``: depth order by feet y (lower in the
    image = nearer), occlusion of farther people's keypoints by nearer people's bodies."""
    tracks = [_path_track(p, num_frames) for p in paths]
    poses = np.stack([pose for pose, _ in tracks])  # P x T x K x 2
    heights = np.stack([h for _, h in tracks])  # P x T
    frames = []
    for f in range(num_frames):
        xy = poses[:, f]
        inside = (
            (xy[..., 0] >= 0) & (xy[..., 0] < WIDTH) & (xy[..., 1] >= 0) & (xy[..., 1] < HEIGHT)
        )
        full_boxes = [_box_of(xy[p], heights[p, f]) for p in range(len(paths))]
        feet = xy[:, :, 1].max(axis=1)
        ids, kps, boxes, areas, occluded = [], [], [], [], []
        for p in range(len(paths)):
            if inside[p].sum() < MIN_KEYPOINTS_IN_VIEW:
                continue
            hidden = np.zeros(len(NAMES), dtype=bool)
            for q in range(len(paths)):
                if q == p or feet[q] <= feet[p] or inside[q].sum() < MIN_KEYPOINTS_IN_VIEW:
                    continue
                x0, y0, x1, y1 = full_boxes[q]
                cx, half = (x0 + x1) / 2, (x1 - x0) * BODY_WIDTH / 2
                hidden |= (
                    (np.abs(xy[p, :, 0] - cx) < half) & (xy[p, :, 1] >= y0) & (xy[p, :, 1] <= y1)
                )
            visibility = np.where(inside[p], np.where(hidden, 1, 2), 0)
            box = _box_of(xy[p][inside[p]], heights[p, f])
            ids.append(p)
            kps.append(np.concatenate([xy[p], visibility[:, None]], axis=1))
            boxes.append(box)
            areas.append(AREA_PER_BOX * (box[2] - box[0]) * (box[3] - box[1]))
            occluded.append(float((hidden & inside[p]).sum() / inside[p].sum()))
        frames.append(
            GroundTruthFrame(
                np.asarray(ids, dtype=int),
                np.asarray(kps).reshape(-1, len(NAMES), 3),
                np.asarray(boxes).reshape(-1, 4),
                np.asarray(areas, dtype=np.float64),
                np.asarray(occluded, dtype=np.float64),
            )
        )
    return Scene(name, frames, poses, heights)


def _jumps(start: int, period: int, lift: float) -> Callable[[np.ndarray], np.ndarray]:
    def jump(frames: np.ndarray) -> np.ndarray:
        u = np.clip(frames - start, 0, None) % period / period
        return np.where(frames >= start, lift * np.sin(np.pi * u) ** 2, 0.0)

    return jump


def _scene_paths(name: str, rng: np.random.Generator) -> Tuple[List[PersonPath], int]:
    """The people of scene ``name``, with a little randomness (start positions, heights,
    speeds) from ``rng``; and the number of frames."""
    j = lambda scale: float(rng.uniform(-scale, scale))  # noqa: E731
    if name == "crossing":
        n = 120
        return [
            PersonPath([(0, 20 + j(8), 200 + j(4), 110 + j(6)), (n, 300 + j(8), 204, 112)]),
            PersonPath([(0, 300 + j(8), 206 + j(4), 114 + j(6)), (n, 20 + j(8), 202, 112)]),
            PersonPath([(0, 260 + j(10), 150 + j(4), 80 + j(4)), (n, 250, 150, 80)]),
        ], n
    if name == "occlusion":
        n = 120
        return [
            PersonPath([(0, 100 + j(8), 150, 72 + j(4)), (n, 125, 150, 72)]),
            PersonPath([(0, 230 + j(8), 152, 76 + j(4)), (n, 210, 152, 76)]),
            PersonPath([(0, 30 + j(6), 236, 165 + j(4)), (n, 290, 236, 165)]),
        ], n
    if name == "exit_reentry":
        n = 150
        return [
            PersonPath(
                [
                    (0, 220 + j(8), 200, 110),
                    (35, 345, 200, 110),
                    (45, 345, 200, 110),
                    (90, 230, 200, 110),
                    (n, 210, 200, 110),
                ]
            ),  # fmt: skip
            PersonPath(
                [
                    (0, 90 + j(8), 170, 90),
                    (40, -25, 170, 90),
                    (44, -25, 170, 90),
                    (80, 80, 172, 90),
                    (n, 120, 172, 90),
                ]
            ),  # fmt: skip
            PersonPath([(0, 160 + j(10), 140, 70), (n, 170, 140, 70)]),
        ], n
    if name == "fast":
        n = 90
        return [
            PersonPath(
                [
                    (0, -10 + j(6), 200, 110),
                    (30, 330, 204, 110),
                    (60, -10, 200, 110),
                    (n, 330, 204, 110),
                ]
            ),  # fmt: skip
            PersonPath(
                [
                    (0, 330 + j(6), 196, 106),
                    (30, -10, 198, 106),
                    (60, 330, 196, 106),
                    (n, -10, 198, 106),
                ]
            ),  # fmt: skip
            PersonPath([(0, 160 + j(10), 150, 80)], jump=_jumps(10, 24, 35.0)),
        ], n
    if name == "group":
        n = 150
        paths = []
        for i in range(5):
            feet = float(rng.uniform(130, 235))
            height = 0.6 * feet - 10  # farther people (higher feet) look smaller
            x0, x1 = rng.uniform(20, 300, size=2)
            paths.append(
                PersonPath(
                    [
                        (0, x0, feet, height),
                        (n / 2, x1, feet + j(10), height),
                        (n, x0 + j(40), feet, height),
                    ]
                )  # fmt: skip
            )
        return paths, n
    raise ValueError(f"unknown scene {name!r}; choose one of {', '.join(SCENES)}")


SCENES: Tuple[str, ...] = ("crossing", "occlusion", "exit_reentry", "fast", "group")


def build_scene(name: str, seed: int) -> Scene:
    """Scene ``name`` (one of :data:`SCENES`) drawn with ``seed``."""
    paths, num_frames = _scene_paths(name, np.random.default_rng(seed))
    return make_scene(name, paths, num_frames)


def scene_summary(scene: Scene) -> Dict[str, float]:
    """Frames, people, ground-truth detections and the share of them more than half hidden."""
    people = {int(i) for fr in scene.frames for i in fr.ids}
    occluded = np.concatenate([fr.occluded for fr in scene.frames])
    return {
        "frames": scene.num_frames,
        "people": len(people),
        "gt_detections": int(len(occluded)),
        "half_hidden": float((occluded > 0.5).mean()) if len(occluded) else 0.0,
    }
