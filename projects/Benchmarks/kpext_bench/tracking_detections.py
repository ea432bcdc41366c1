"""What a detector reports on a tracking scene: two sources of per-frame detections.

* ``gt_noisy``: ground-truth keypoints with jitter, dropped detections, false
  positives and noisy scores: association measured apart from detection;
* ``demo_like``: the errors of the model ``make demo`` trains, drawn at the
  rates its evaluation measured (docs/demo_recipe.md; keypoint error classes of
  Ronchi and Perona, :mod:`kpext.evaluation.pose_errors`), since rendering
  video and running the model on it is too slow for ``make bench`` on two
  cores. Each labelled keypoint of a detected person is *good* (27%: OKS
  keypoint similarity ks >= 0.85 to its truth), *jitter* (17%: 0.5 <= ks <
  0.85), an *inversion* (39%: placed on another keypoint of the same person; of
  those, 16 points of the 39 on its left/right counterpart), a *swap* (0.7%: on
  the same keypoint of another person) or a *miss* (16.5%: ks < 0.5, far);
  boxes are loose (the demo's box AP is about 31) and the detector misses
  people and reports false ones more often. The error classes are drawn
  independently per keypoint and frame: a real model's errors persist over
  frames, which these do not model.

Both sources hide people the same way: a person more than 75% hidden behind
nearer people is detected one time in ten, a partly hidden one with a lower
score. Scores and boxes are what Keypoint R-CNN gives: one score per person,
one per keypoint, an XYXY box.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List

import numpy as np

from kpext.data.keypoint_metadata import oks_sigmas_for_count

from .tracking_scenes import FLIP_PARTNER, HEIGHT, WIDTH, GroundTruthFrame, Scene, pose_at

__all__ = ["SOURCES", "Detections", "detect_scene", "DEMO_ERROR_SHARES"]

SOURCES = ("gt_noisy", "demo_like")
SIGMAS = np.asarray(oks_sigmas_for_count(17), dtype=np.float64)
# the demo's keypoint error classes (make demo's summary, docs/demo_recipe.md), per labelled
# keypoint of a detected person: inversions split into left/right and other parts
DEMO_ERROR_SHARES: Dict[str, float] = {
    "good": 0.27,
    "jitter": 0.17,
    "inversion_left_right": 0.16,
    "inversion_other": 0.23,
    "swap": 0.007,
    "miss": 0.165,
}


@dataclass
class Detections:
    """One frame's detections: keypoints N x K x 3 (x, y, score), boxes N x 4 XYXY,
    scores N, and truth N (the ground-truth person detected, -1 for a false positive;
    for analysis only, never shown to a tracker)."""

    keypoints: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    truth: np.ndarray


@dataclass(frozen=True)
class _Rates:
    miss: float  # a visible person is not detected
    false_per_frame: float  # mean number of false positives per frame
    box_std: float  # box corner noise, in person heights
    score_mean: float  # a fully visible person's score: N(mean, std) clipped to [0.05, 1]
    score_std: float


_RATES = {
    "gt_noisy": _Rates(
        miss=0.05, false_per_frame=0.15, box_std=0.03, score_mean=0.8, score_std=0.12
    ),
    "demo_like": _Rates(
        miss=0.15, false_per_frame=0.5, box_std=0.07, score_mean=0.7, score_std=0.15
    ),
}


def _ks_offset(rng: np.random.Generator, scale: np.ndarray, ks_low: float, ks_high: float):
    """Offsets (N x 2) whose keypoint similarity exp(-d^2 / (2 scale^2)) lies in
    [ks_low, ks_high]; ``scale`` (N) is s * 2 sigma of each keypoint."""
    ks = rng.uniform(ks_low, ks_high, size=len(scale))
    distance = scale * np.sqrt(-2.0 * np.log(ks))
    angle = rng.uniform(0, 2 * np.pi, size=len(scale))
    return np.stack([np.cos(angle), np.sin(angle)], axis=1) * distance[:, None]


def _gt_noisy_keypoints(rng, truth: np.ndarray, height: float) -> np.ndarray:
    """K x 3: visible keypoints with 1.2% of the height of jitter, hidden ones 3%, those
    outside the image 3% and a score below every threshold."""
    visibility = truth[:, 2]
    std = np.where(visibility == 2, 0.012, 0.03) * height
    xy = truth[:, :2] + rng.normal(size=(len(truth), 2)) * std[:, None]
    score = np.where(
        visibility == 2,
        rng.uniform(0.4, 1.0, len(truth)),
        np.where(visibility == 1, rng.uniform(0.1, 0.5, len(truth)), 0.02),
    )
    return np.concatenate([xy, score[:, None]], axis=1)


def _demo_keypoints(rng, frame: GroundTruthFrame, index: int) -> np.ndarray:
    """K x 3 keypoints of person ``index`` with the demo's error classes."""
    truth = frame.keypoints[index]
    k = len(truth)
    scale = np.sqrt(frame.areas[index]) * 2 * SIGMAS  # s * 2 sigma: ks = exp(-d^2 / 2 scale^2)
    names = list(DEMO_ERROR_SHARES)
    shares = np.array([DEMO_ERROR_SHARES[n] for n in names])
    classes = rng.choice(len(names), size=k, p=shares / shares.sum())
    xy = truth[:, :2] + _ks_offset(rng, scale, 0.85, 1.0)  # good by default
    score = rng.uniform(0.3, 1.0, k)
    for j in range(k):
        cls = names[classes[j]]
        if cls == "jitter":
            xy[j] = truth[j, :2] + _ks_offset(rng, scale[j : j + 1], 0.5, 0.85)[0]
        elif cls in ("inversion_left_right", "inversion_other"):
            other = FLIP_PARTNER[j]
            if cls == "inversion_other" or other == j:
                other = rng.choice([i for i in range(k) if i not in (j, FLIP_PARTNER[j])])
            xy[j] = truth[other, :2] + _ks_offset(rng, scale[other : other + 1], 0.85, 1.0)[0]
            score[j] = rng.uniform(0.05, 0.8)
        elif cls == "swap" and len(frame.ids) > 1:
            others = [i for i in range(len(frame.ids)) if i != index]
            nearest = min(
                others, key=lambda i: np.linalg.norm(frame.boxes[i, :2] - frame.boxes[index, :2])
            )
            xy[j] = (
                frame.keypoints[nearest, j, :2] + _ks_offset(rng, scale[j : j + 1], 0.85, 1.0)[0]
            )
            score[j] = rng.uniform(0.05, 0.8)
        elif cls in ("miss", "swap"):
            xy[j] = truth[j, :2] + _ks_offset(rng, scale[j : j + 1], 0.01, 0.3)[0]
            score[j] = rng.uniform(0.05, 0.8)
    # outside the image a model still places every keypoint, with a low score
    score = np.where(truth[:, 2] == 0, np.minimum(score, 0.04), score)
    return np.concatenate([xy, score[:, None]], axis=1)


def _box_around(xy: np.ndarray, height: float) -> np.ndarray:
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    margin = np.array([-0.08, -0.06, 0.08, 0.03]) * height
    return np.concatenate([lo, hi]) + margin


def _false_positive(rng, frame: GroundTruthFrame) -> np.ndarray:
    """K x 3 keypoints of a person who is not there: near a real person (a part of them
    seen as a second person) or anywhere."""
    height = float(rng.uniform(50, 130))
    if len(frame.ids) and rng.random() < 0.5:
        i = rng.integers(len(frame.ids))
        x = frame.boxes[i, [0, 2]].mean() + rng.uniform(-0.6, 0.6) * height
        feet = frame.boxes[i, 3] + rng.uniform(-0.3, 0.1) * height
    else:
        x, feet = rng.uniform(0, WIDTH), rng.uniform(0.4 * HEIGHT, HEIGHT)
    xy = pose_at(
        np.array([x]), np.array([feet]), np.array([height]), np.array([0.0]), np.array([0.0])
    )[0]
    xy = xy + rng.normal(size=xy.shape) * 0.05 * height
    return np.concatenate([xy, rng.uniform(0.05, 0.6, (len(xy), 1))], axis=1)


def detect_scene(scene: Scene, source: str, seed: int) -> List[Detections]:
    """One :class:`Detections` per frame of ``scene`` from detection ``source``
    (one of :data:`SOURCES`), drawn with ``seed``; detections in a random order."""
    if source not in SOURCES:
        raise ValueError(f"unknown detection source {source!r}; choose one of {', '.join(SOURCES)}")
    rng = np.random.default_rng(seed)
    rates = _RATES[source]
    out = []
    for frame in scene.frames:
        keypoints, boxes, scores, truth = [], [], [], []
        for i, person in enumerate(frame.ids):
            hidden = frame.occluded[i]
            seen = 0.1 if hidden > 0.75 else 1.0 - rates.miss
            if rng.random() >= seen:
                continue
            height = float(scene.heights[person, len(out)])
            if source == "gt_noisy":
                kp = _gt_noisy_keypoints(rng, frame.keypoints[i], height)
            else:
                kp = _demo_keypoints(rng, frame, i)
            box = frame.boxes[i] + rng.normal(size=4) * rates.box_std * height
            score = rng.normal(rates.score_mean, rates.score_std) * (1.0 - 0.6 * hidden)
            keypoints.append(kp)
            boxes.append(box)
            scores.append(float(np.clip(score, 0.05, 1.0)))
            truth.append(int(person))
        for _ in range(rng.poisson(rates.false_per_frame)):
            kp = _false_positive(rng, frame)
            height = float(kp[:, 1].max() - kp[:, 1].min())
            keypoints.append(kp)
            boxes.append(_box_around(kp[:, :2], height))
            scores.append(float(rng.uniform(0.05, 0.6)))
            truth.append(-1)
        order = rng.permutation(len(scores))
        out.append(
            Detections(
                np.asarray(keypoints, dtype=np.float64).reshape(-1, 17, 3)[order],
                np.asarray(boxes, dtype=np.float64).reshape(-1, 4)[order],
                np.asarray(scores, dtype=np.float64)[order],
                np.asarray(truth, dtype=int)[order],
            )
        )
    return out
