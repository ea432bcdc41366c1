"""Synthetic keypoint motion with known ground truth, for the tests of tracking, smoothing
and counting.

Two generators, both in COCO's 17-keypoint order and image coordinates:

* :func:`walking_people_video`: several people walking on smooth trajectories,
  observed with Gaussian keypoint jitter, optionally missing for a few frames,
  in a shuffled detection order (as a detector would return them);
* :func:`repetition_sequence`: one person doing jumps or squats, with jitter and
  dropped frames.

Nothing here is rendered: only keypoints, boxes and scores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence, Tuple

import numpy as np

from kpext.data.keypoint_sets import COCO_PERSON_KEYPOINT_NAMES

__all__ = [
    "STANDING_LAYOUT",
    "FrameDetections",
    "SyntheticVideo",
    "walking_people_video",
    "repetition_sequence",
]

# Standing person facing the camera, COCO order, in units of body height,
# relative to the hip midpoint (y grows downwards like image rows).
STANDING_LAYOUT = np.array([
    (0.0, -0.47),                    # nose
    (-0.02, -0.49), (0.02, -0.49),   # eyes
    (-0.05, -0.48), (0.05, -0.48),   # ears
    (-0.12, -0.32), (0.12, -0.32),   # shoulders
    (-0.16, -0.15), (0.16, -0.15),   # elbows
    (-0.18, 0.0), (0.18, 0.0),       # wrists
    (-0.08, 0.0), (0.08, 0.0),       # hips
    (-0.09, 0.23), (0.09, 0.23),     # knees
    (-0.09, 0.45), (0.09, 0.45),     # ankles
])  # fmt: skip

_NAMES = COCO_PERSON_KEYPOINT_NAMES
_ARMS = np.array(
    [_NAMES.index(n) for n in ("left_elbow", "right_elbow", "left_wrist", "right_wrist")]
)
_LEGS = np.array(
    [_NAMES.index(n) for n in ("left_knee", "right_knee", "left_ankle", "right_ankle")]
)
_KNEES = np.array([_NAMES.index(n) for n in ("left_knee", "right_knee")])
_UPPER_BODY = np.arange(_NAMES.index("right_hip") + 1)  # nose .. hips
# how far each limb point swings when walking, in body heights; left/right in antiphase
_SWING = {idx: amp for idx, amp in zip(_ARMS, (0.01, -0.01, 0.02, -0.02))}
_SWING.update({idx: amp for idx, amp in zip(_LEGS, (-0.01, 0.01, -0.02, 0.02))})


@dataclass
class FrameDetections:
    """One frame's observed people, in detector order.

    keypoints: N x K x 3 (x, y, score); boxes: N x 4 XYXY; scores: N;
    person_ids: N ground-truth identities (index into the video's people).
    """

    keypoints: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    person_ids: np.ndarray


@dataclass
class SyntheticVideo:
    """frames: T detections; true_keypoints: P x T x K x 2 noise-free poses;
    present: P x T bool, whether person p is observed in frame t."""

    frames: List[FrameDetections]
    true_keypoints: np.ndarray
    present: np.ndarray
    fps: float


def _walking_pose(
    t: np.ndarray, hip_x: np.ndarray, hip_y: np.ndarray, height: float, stride_hz: float
):
    """T x K x 2 poses of a walker whose hip midpoint follows (hip_x, hip_y)."""
    offsets = np.repeat(STANDING_LAYOUT[None], len(t), axis=0) * height
    phase = np.sin(2 * np.pi * stride_hz * t)
    for idx, amp in _SWING.items():
        offsets[:, idx, 0] += amp * height * phase
    return offsets + np.stack([hip_x, hip_y], axis=1)[:, None, :]


def _box_around(xy: np.ndarray, margin: float) -> np.ndarray:
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    return np.concatenate([lo - margin, hi + margin])


def walking_people_video(
    num_frames: int = 60,
    fps: float = 30.0,
    jitter: float = 3.0,
    gaps: Sequence[Tuple[int, int, int]] = ((1, 28, 3),),
    shuffle: bool = True,
    seed: int = 0,
) -> SyntheticVideo:
    """Three people walking side by side, observed with keypoint jitter.

    Each person's hip midpoint moves linearly plus a slow sinusoidal sway and a
    step bob; arms and legs swing. ``jitter`` is the std (pixels) of the
    Gaussian noise added to every observed coordinate. ``gaps`` lists
    ``(person, first_frame, num_frames)`` during which that person is not
    detected. With ``shuffle`` the detection order is random in every frame.
    """
    rng = np.random.default_rng(seed)
    people = [  # start x, hip y, velocity x (px/s), height, sway amplitude, sway phase
        (170.0, 300.0, 20.0, 220.0, 6.0, 0.0),
        (480.0, 290.0, -15.0, 200.0, 5.0, 1.3),
        (780.0, 310.0, 12.0, 240.0, 7.0, 2.6),
    ]
    t = np.arange(num_frames) / fps
    truth = []
    for x0, y0, vx, height, sway, phase in people:
        hip_x = x0 + vx * t + sway * np.sin(2 * np.pi * 0.4 * t + phase)
        hip_y = y0 + 2.0 * np.sin(2 * np.pi * 1.0 * t + phase)
        truth.append(_walking_pose(t, hip_x, hip_y, height, stride_hz=0.5))
    true_keypoints = np.stack(truth)  # P x T x K x 2

    present = np.ones(true_keypoints.shape[:2], dtype=bool)
    for person, start, length in gaps:
        present[person, start : start + length] = False

    frames = []
    num_keypoints = true_keypoints.shape[2]
    for f in range(num_frames):
        ids = np.flatnonzero(present[:, f])
        if shuffle:
            ids = rng.permutation(ids)
        xy = true_keypoints[ids, f] + rng.normal(0.0, jitter, size=(len(ids), num_keypoints, 2))
        kpts = np.concatenate(
            [xy, rng.uniform(0.6, 1.0, size=(len(ids), num_keypoints, 1))], axis=2
        )
        boxes = (
            np.stack([_box_around(p, margin=10.0) for p in xy]) if len(ids) else np.zeros((0, 4))
        )
        scores = rng.uniform(0.8, 1.0, size=len(ids))
        frames.append(FrameDetections(kpts, boxes, scores, ids))
    return SyntheticVideo(frames, true_keypoints, present, fps)


def _jump_profile(u: np.ndarray, amplitude: float, crouch: float) -> Tuple[np.ndarray, np.ndarray]:
    """(lift, dip) over one jump, phase u in [0, 1): crouch, flight, landing crouch."""
    lift = np.where((u >= 0.25) & (u < 0.75), amplitude * np.sin(np.pi * (u - 0.25) / 0.5), 0.0)
    dip = np.where(u < 0.25, crouch * np.sin(np.pi * u / 0.25), 0.0)
    dip = dip + np.where(u >= 0.75, crouch * np.sin(np.pi * (u - 0.75) / 0.25), 0.0)
    return lift, dip


def _squat_profile(u: np.ndarray, amplitude: float) -> np.ndarray:
    return amplitude * (1.0 - np.cos(2 * np.pi * u)) / 2.0


def repetition_sequence(
    kind: str,
    reps: int,
    rep_frames: Tuple[int, int] = (24, 36),
    amplitude: Tuple[float, float] = (0.15, 0.25),
    rest_frames: Tuple[int, int] = (8, 20),
    lead_frames: int = 15,
    height: float = 300.0,
    jitter: float = 3.0,
    dropped_frames: int = 3,
    seed: int = 0,
) -> np.ndarray:
    """One person doing ``reps`` jumps or squats: T x K x 3 keypoints (x, y, score).

    Every repetition draws its duration (frames) from ``rep_frames`` and its
    amplitude (fraction of the body ``height`` in pixels) from ``amplitude``;
    rests between repetitions from ``rest_frames``; ``lead_frames`` of standing
    still come before and after. A jump lifts the whole body, with a crouch of
    the upper body before take-off and after landing; a squat lowers hips and
    upper body fully and the knees halfway. ``jitter`` is the Gaussian std of
    the observed coordinates in pixels; ``dropped_frames`` random inner frames
    have all keypoints at 0 with score 0 (a missed detection). ``kind="still"``
    with ``reps=0`` gives a person standing still.
    """
    if kind not in ("jump", "squat", "still"):
        raise ValueError(f"unknown repetition kind {kind!r}; choose jump, squat or still")
    rng = np.random.default_rng(seed)
    lift_parts, dip_parts, knee_parts = (
        [np.zeros(lead_frames)],
        [np.zeros(lead_frames)],
        [np.zeros(lead_frames)],
    )
    for r in range(reps):
        n = int(rng.integers(rep_frames[0], rep_frames[1] + 1))
        u = np.arange(n) / n
        amp = rng.uniform(*amplitude)
        if kind == "jump":
            lift, dip = _jump_profile(u, amp, crouch=0.05)
            knee = dip / 2
        else:
            lift, dip = np.zeros(n), _squat_profile(u, amp)
            knee = dip / 2
        rest = int(rng.integers(rest_frames[0], rest_frames[1] + 1)) if r < reps - 1 else 0
        lift_parts += [lift, np.zeros(rest)]
        dip_parts += [dip, np.zeros(rest)]
        knee_parts += [knee, np.zeros(rest)]
    lift_parts.append(np.zeros(lead_frames))
    dip_parts.append(np.zeros(lead_frames))
    knee_parts.append(np.zeros(lead_frames))
    lift, dip, knee = (np.concatenate(p) * height for p in (lift_parts, dip_parts, knee_parts))

    num_frames = len(lift)
    xy = np.repeat(STANDING_LAYOUT[None] * height, num_frames, axis=0) + np.array([320.0, 260.0])
    xy[..., 1] -= lift[:, None]  # image y grows downwards
    xy[:, _UPPER_BODY, 1] += dip[:, None]
    xy[:, _KNEES, 1] += knee[:, None]
    # knees push outwards in a squat, which is what keeps the shins visible
    xy[:, _KNEES, 0] += np.sign(STANDING_LAYOUT[_KNEES, 0]) * 0.5 * knee[:, None]

    observed = xy + rng.normal(0.0, jitter, size=xy.shape)
    scores = rng.uniform(0.6, 1.0, size=xy.shape[:2] + (1,))
    kpts = np.concatenate([observed, scores], axis=2)
    if dropped_frames and num_frames > 2:
        drop = rng.choice(
            np.arange(1, num_frames - 1), size=min(dropped_frames, num_frames - 2), replace=False
        )
        kpts[drop] = 0.0
    return kpts
