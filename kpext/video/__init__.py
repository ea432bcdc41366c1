"""Video tools on top of per-frame keypoint detections: tracking, smoothing, repetition counting."""

from .association import hungarian_match
from .bytetrack import ByteTrackPoseTracker
from .kalman_tracking import KalmanOksTracker
from .motion import ConstantVelocityKalman
from .repcount import (
    RepetitionCounter,
    RepetitionResult,
    analyse_repetitions,
    count_cycles,
    estimate_person_height,
    hysteresis_thresholds,
    vertical_signal,
)
from .tracker_choice import DEFAULT_TRACKER, TRACKERS, build_tracker, min_detection_score
from .tracking import (
    KeypointSmoother,
    OneEuroFilter,
    PoseTracker,
    Track,
    box_iou_matrix,
    greedy_match,
)

__all__ = [
    "TRACKERS",
    "DEFAULT_TRACKER",
    "build_tracker",
    "min_detection_score",
    "KalmanOksTracker",
    "ByteTrackPoseTracker",
    "ConstantVelocityKalman",
    "hungarian_match",
    "PoseTracker",
    "Track",
    "OneEuroFilter",
    "KeypointSmoother",
    "box_iou_matrix",
    "greedy_match",
    "vertical_signal",
    "estimate_person_height",
    "hysteresis_thresholds",
    "count_cycles",
    "RepetitionCounter",
    "RepetitionResult",
    "analyse_repetitions",
]
