"""The trackers a video tool can choose by name (``--tracker``), and the default.

Every tracker has the same call: ``update(keypoints N x K x 3, boxes N x 4,
scores N) -> N ids`` (an int, or None for a detection left untracked) and
``reset()``.

* ``kalman-oks`` (default): :class:`kpext.video.KalmanOksTracker`: Kalman-predicted
  poses, two-stage association of confident and less confident detections, OKS.
* ``greedy``: :class:`kpext.video.PoseTracker`: greedy OKS (or box IoU) matching
  against each track's last pose; kpext's tracker before the tracking benchmark.
* ``bytetrack``: Roboflow ``trackers``' ByteTrack on boxes (``kpext[tracking]``).

The default is the one that scored the best HOTA in
``projects/Benchmarks/bench_tracking.py`` (docs/tracking.md).
"""

from __future__ import annotations

from typing import List, Optional, Protocol, Sequence, Tuple

import numpy as np

from .bytetrack import ByteTrackPoseTracker
from .kalman_tracking import KalmanOksTracker
from .tracking import PoseTracker

__all__ = ["TRACKERS", "DEFAULT_TRACKER", "VideoTracker", "build_tracker", "min_detection_score"]

TRACKERS: Tuple[str, ...] = ("kalman-oks", "greedy", "bytetrack")
DEFAULT_TRACKER = "kalman-oks"
# frames a track may be missed: the greedy tracker's default since it was written; the two
# others follow ByteTrack's 30 frames (one second at 30 fps)
DEFAULT_MAX_AGE = {"kalman-oks": 30, "greedy": 10, "bytetrack": 30}
# the least score the two-stage trackers use (ByteTrack's); greedy uses only confident ones
LOW_SCORE = 0.1


class VideoTracker(Protocol):
    """What a video pipeline needs of a tracker."""

    def update(
        self, keypoints: np.ndarray, boxes: np.ndarray, scores: Optional[np.ndarray] = None
    ) -> List[Optional[int]]: ...

    def reset(self) -> None: ...


def build_tracker(
    name: str = DEFAULT_TRACKER,
    score_threshold: float = 0.5,
    max_age: Optional[int] = None,
    sigmas: Optional[Sequence[float]] = None,
    match: str = "oks",
    fps: float = 30.0,
) -> VideoTracker:
    """A tracker by name.

    Args:
        name: one of :data:`TRACKERS`.
        score_threshold: the least score of a person who starts a track (``--confidence-
            threshold``); the two-stage trackers also use less confident detections (down
            to :data:`LOW_SCORE`) to continue tracks, the greedy tracker does not.
        max_age: frames a track may be missed and still continue; None: the tracker's default.
        sigmas: K OKS sigmas (the model's); None: by keypoint count.
        match: the greedy tracker's similarity, "oks" or "iou" (``--track-match``).
        fps: frame rate (ByteTrack scales its buffer by it).
    """
    if name not in TRACKERS:
        raise ValueError(f"unknown tracker {name!r}; choose one of {', '.join(TRACKERS)}")
    age = DEFAULT_MAX_AGE[name] if max_age is None else int(max_age)
    if name == "greedy":
        return PoseTracker(match=match, max_age=age, sigmas=sigmas)
    low = min(LOW_SCORE, score_threshold)
    if name == "kalman-oks":
        return KalmanOksTracker(
            high_score=score_threshold, low_score=low, max_age=age, sigmas=sigmas
        )
    return ByteTrackPoseTracker(high_score=score_threshold, low_score=low, max_age=age, fps=fps)


def min_detection_score(name: str, score_threshold: float) -> float:
    """The least detection score tracker ``name`` uses when people start tracks at
    ``score_threshold``: what the detector must let through for it."""
    if name not in TRACKERS:
        raise ValueError(f"unknown tracker {name!r}; choose one of {', '.join(TRACKERS)}")
    return score_threshold if name == "greedy" else min(LOW_SCORE, score_threshold)
