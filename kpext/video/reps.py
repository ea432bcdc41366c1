"""Counting repetitions from per-frame pose records (the JSON lines of ``demo.py``).

A record is one frame: ``{"frame": i, "time": t, "persons": [{"track_id",
"bbox", "score", "keypoints": [x, y, s] * K, ...}]}`` (see
:mod:`kpext.video.pipeline`). :func:`analyse_repetitions` picks the main
person (the longest track), builds their T x K x 3 keypoint sequence, turns it
into a vertical hip or ankle signal (:func:`~kpext.video.repcount.vertical_signal`)
and counts down-then-up cycles with :class:`~kpext.video.repcount.RepetitionCounter`,
also giving the running count at every frame (for drawing it on a video).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Sequence

import numpy as np

from .repcount import (
    BODY_PARTS,
    RepetitionCounter,
    _Hysteresis,
    detrend,
    hysteresis_thresholds,
    interpolate_missing,
    moving_average,
    vertical_signal,
)

__all__ = [
    "RepetitionResult",
    "track_lengths",
    "main_track_id",
    "track_keypoint_sequence",
    "running_counts",
    "analyse_repetitions",
    "count_repetitions_from_records",
]

Record = Mapping[str, Any]


@dataclass
class RepetitionResult:
    """What :func:`analyse_repetitions` found.

    count: repetitions of the main track over the whole video.
    track_id: the main track (None when nobody was detected).
    running: T running counts, ``running[t]`` = repetitions completed by frame t
        (``running[-1] == count``).
    signal: T vertical signal of the main track (interpolated over the frames
        where it was not seen); empty when there is none.
    frames_seen: frames in which the main track was detected.
    """

    count: int
    track_id: Optional[int]
    running: np.ndarray
    signal: np.ndarray
    frames_seen: int

    def to_json(self) -> Dict[str, Any]:
        """JSON-friendly summary: count, track, frame counts and the frame of each repetition."""
        return {
            "repetitions": int(self.count),
            "track_id": self.track_id,
            "frames": int(len(self.running)),
            "frames_seen": int(self.frames_seen),
            "rep_frames": [int(f) for f in self.rep_frames],
        }

    @property
    def rep_frames(self) -> np.ndarray:
        """Frame index at which each repetition was counted (``count`` of them)."""
        return np.flatnonzero(np.diff(self.running, prepend=0) > 0)


def track_lengths(records: Sequence[Record]) -> Dict[int, int]:
    """Number of frames in which each track id appears."""
    lengths: Dict[int, int] = {}
    for record in records:
        for person in record["persons"]:
            tid = int(person["track_id"])
            lengths[tid] = lengths.get(tid, 0) + 1
    return lengths


def _median_box_area(records: Sequence[Record], track_id: int) -> float:
    areas = [
        float(p["bbox"][2]) * float(p["bbox"][3])
        for r in records
        for p in r["persons"]
        if int(p["track_id"]) == track_id
    ]
    return float(np.median(areas)) if areas else 0.0


def main_track_id(records: Sequence[Record]) -> Optional[int]:
    """The track seen in the most frames; ties go to the larger median box (the person in front).

    None when no frame has anybody.
    """
    lengths = track_lengths(records)
    if not lengths:
        return None
    longest = max(lengths.values())
    candidates = sorted(tid for tid, n in lengths.items() if n == longest)
    return max(candidates, key=lambda tid: _median_box_area(records, tid))


def track_keypoint_sequence(records: Sequence[Record], track_id: int, num_keypoints: int) -> np.ndarray:
    """T x K x 3 keypoints of one track over the records' T frames, in record order.

    Frames without the track are all zeros (score 0), which
    :func:`~kpext.video.repcount.vertical_signal` treats as missing.
    """
    sequence = np.zeros((len(records), num_keypoints, 3), dtype=np.float64)
    for t, record in enumerate(records):
        for person in record["persons"]:
            if int(person["track_id"]) != track_id:
                continue
            keypoints = np.asarray(person["keypoints"], dtype=np.float64)
            if keypoints.size != num_keypoints * 3:
                raise ValueError(
                    f"frame {record.get('frame', t)}: track {track_id} has {keypoints.size // 3} "
                    f"keypoints, expected {num_keypoints}"
                )
            sequence[t] = keypoints.reshape(num_keypoints, 3)
    return sequence


def running_counts(counter: RepetitionCounter, signal: np.ndarray) -> np.ndarray:
    """T running counts of a whole signal, with the same processing as ``counter.count(signal)``.

    Batch counting looks at the whole signal (centred smoothing, detrending,
    thresholds from its range); this replays its hysteresis frame by frame, so
    the last running count always equals ``counter.count(signal)``, unlike the
    streaming :meth:`RepetitionCounter.update`.
    """
    x = moving_average(detrend(interpolate_missing(signal), counter.baseline_window), counter.smoothing)
    if counter.fixed_thresholds is not None:
        (low, high), min_rise = counter.fixed_thresholds, 0.0
    else:
        thresholds = hysteresis_thresholds(x, counter.band, counter.min_amplitude)
        if thresholds is None:
            return np.zeros(len(x), dtype=np.int64)
        (low, high), min_rise = thresholds, counter.min_amplitude
    machine = _Hysteresis(counter.min_interval, min_rise)
    counts = np.zeros(len(x), dtype=np.int64)
    for frame, value in enumerate(x):
        machine.step(float(value), low, high, frame)
        counts[frame] = machine.count
    return counts


def _check_names(keypoint_names: Sequence[str], part: str) -> None:
    # the signal needs the part, and the person's size needs shoulders and ankles
    wanted = [f"{side}_{p}" for p in dict.fromkeys((part, "shoulder", "ankle")) for side in ("left", "right")]
    missing = [name for name in wanted if name not in keypoint_names]
    if missing:
        raise ValueError(f"keypoint names lack {', '.join(missing)}")


def analyse_repetitions(
    records: Sequence[Record],
    keypoint_names: Sequence[str],
    part: str = "hip",
    counter: Optional[RepetitionCounter] = None,
    score_threshold: float = 0.0,
) -> RepetitionResult:
    """Count the main person's repetitions in per-frame pose records.

    Args:
        records: T frame records in frame order (see the module docstring).
        keypoint_names: the K names, in the order of the records' keypoints;
            must include ``left_/right_`` + ``part`` and shoulders and ankles.
        part: "hip" (squats and jumps) or "ankle" (jumps only: squats leave the ankles still).
        counter: its settings are used (batch counting); default ``RepetitionCounter()``.
        score_threshold: keypoints scoring at most this are treated as missing.
    """
    if part not in BODY_PARTS:
        raise ValueError(f"unknown body part {part!r}; choose one of {', '.join(BODY_PARTS)}")
    _check_names(keypoint_names, part)
    counter = RepetitionCounter() if counter is None else counter
    track_id = main_track_id(records)
    if track_id is None:
        return RepetitionResult(0, None, np.zeros(len(records), dtype=np.int64), np.zeros(0), 0)
    sequence = track_keypoint_sequence(records, track_id, len(keypoint_names))
    seen = int((sequence[..., 2] > score_threshold).any(axis=1).sum())
    try:
        signal = vertical_signal(sequence, keypoint_names, part, score_threshold)
    except ValueError:
        # the part is never confidently seen: no signal, no repetition
        return RepetitionResult(0, track_id, np.zeros(len(records), dtype=np.int64), np.zeros(0), seen)
    running = running_counts(counter, signal)
    return RepetitionResult(int(running[-1]) if len(running) else 0, track_id, running, signal, seen)


def count_repetitions_from_records(
    records: Sequence[Record], keypoint_names: Sequence[str], part: str = "hip", **options
) -> int:
    """Repetitions of the main person in per-frame pose records (see :func:`analyse_repetitions`)."""
    return analyse_repetitions(records, keypoint_names, part, **options).count
