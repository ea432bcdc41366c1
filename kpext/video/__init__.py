"""Video tools on top of per-frame keypoint detections: tracking, smoothing, repetition counting."""

from .repcount import (
    RepetitionCounter,
    RepetitionResult,
    analyse_repetitions,
    count_cycles,
    estimate_person_height,
    hysteresis_thresholds,
    vertical_signal,
)
from .tracking import (
    KeypointSmoother,
    OneEuroFilter,
    PoseTracker,
    Track,
    box_iou_matrix,
    greedy_match,
)

__all__ = [
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
