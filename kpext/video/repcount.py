"""Counting repetitions (jumps, squats) from one tracked person's keypoints.

The pipeline is: keypoints (T x K x 3) -> :func:`vertical_signal` (height of
the hips or ankles, in units of the person's size, up positive) ->
:class:`RepetitionCounter` (hysteresis on the smoothed, detrended signal).
:func:`analyse_repetitions` runs it on per-frame pose records (the JSON lines
of ``demo.py``, see :mod:`kpext.video.pipeline`): it picks the main person
(the longest track) and gives the running count at every frame.

A repetition is one **down-then-up** cycle of the signal: it is counted when
the signal rises above the ``high`` threshold after having been below ``low``.
For a squat that is the moment the person stands up again; for a jump, whose
rest level lies below the band, it is the take-off. Jitter that stays inside
the band ``[low, high]`` never adds a count; with thresholds derived from the
signal, a repetition must also rise by ``min_amplitude`` from its lowest point,
and a signal whose robust range is below ``min_amplitude`` counts nothing.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Deque, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

__all__ = [
    "BODY_PARTS",
    "vertical_signal",
    "estimate_person_height",
    "interpolate_missing",
    "detrend",
    "moving_average",
    "hysteresis_thresholds",
    "running_cycle_counts",
    "count_cycles",
    "RepetitionCounter",
    "RepetitionResult",
    "main_track_id",
    "track_keypoint_sequence",
    "analyse_repetitions",
]

BODY_PARTS: Tuple[str, ...] = ("hip", "ankle")


def _left_right_indices(keypoint_names: Sequence[str], part: str) -> List[int]:
    names = list(keypoint_names)
    wanted = [f"left_{part}", f"right_{part}"]
    missing = [n for n in wanted if n not in names]
    if missing:
        raise ValueError(f"keypoint names lack {', '.join(missing)}")
    return [names.index(n) for n in wanted]


def _confident_mean(
    keypoints_seq: np.ndarray, indices: Sequence[int], score_threshold: float
) -> np.ndarray:
    """T x 2 mean (x, y) of the confident keypoints among ``indices``; NaN where none is."""
    pts = keypoints_seq[:, indices]
    ok = pts[..., 2] > score_threshold
    count = ok.sum(axis=1)
    total = np.where(ok[..., None], pts[..., :2], 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count[:, None] > 0, total / np.maximum(count, 1)[:, None], np.nan)


def estimate_person_height(
    keypoints_seq: np.ndarray, keypoint_names: Sequence[str], score_threshold: float = 0.0
) -> float:
    """The person's size in pixels: median over frames of the mid-shoulder to mid-ankle distance.

    ``keypoints_seq`` is T x K x 3. The median ignores frames where the
    shoulders or ankles are not confident and is robust to the frames where
    the body folds (a squat's bottom). Falls back to the median vertical
    extent of the confident keypoints when no frame shows both.
    """
    kp = np.asarray(keypoints_seq, dtype=np.float64)
    shoulders = _confident_mean(
        kp, _left_right_indices(keypoint_names, "shoulder"), score_threshold
    )
    ankles = _confident_mean(kp, _left_right_indices(keypoint_names, "ankle"), score_threshold)
    dist = np.linalg.norm(shoulders - ankles, axis=1)
    dist = dist[np.isfinite(dist) & (dist > 0)]
    if dist.size:
        return float(np.median(dist))
    ok = kp[..., 2] > score_threshold
    rows = ok.sum(axis=1) >= 2
    y, ok = kp[rows, :, 1], ok[rows]
    extent = np.where(ok, y, -np.inf).max(axis=1) - np.where(ok, y, np.inf).min(axis=1)
    extent = extent[extent > 0]
    if not extent.size:
        raise ValueError("no frame has two confident keypoints to estimate the person's size")
    return float(np.median(extent))


def interpolate_missing(signal: np.ndarray) -> np.ndarray:
    """Fill NaNs of a 1-D signal linearly between valid samples (held constant at the ends)."""
    x = np.asarray(signal, dtype=np.float64).reshape(-1)
    valid = np.isfinite(x)
    if valid.all():
        return x.copy()
    if not valid.any():
        raise ValueError("the signal has no valid sample")
    t = np.arange(x.size)
    return np.interp(t, t[valid], x[valid])


def vertical_signal(
    keypoints_seq: np.ndarray,
    keypoint_names: Sequence[str],
    part: str = "hip",
    score_threshold: float = 0.0,
) -> np.ndarray:
    """Height of the hips or ankles over time, scale free: a T signal.

    ``keypoints_seq`` is T x K x 3 (x, y, score) of one person in image
    coordinates. The value at frame t is ``-(mean y of the confident left/right
    <part>) / person height`` (:func:`estimate_person_height`), so it grows when
    the person moves **up** and one unit is the shoulder-to-ankle distance.
    Frames without a confident ``part`` keypoint are interpolated.
    """
    if part not in BODY_PARTS:
        raise ValueError(f"unknown body part {part!r}; choose one of {', '.join(BODY_PARTS)}")
    kp = np.asarray(keypoints_seq, dtype=np.float64)
    if kp.ndim != 3 or kp.shape[2] < 3:
        raise ValueError(f"expected T x K x 3 keypoints, got shape {kp.shape}")
    y = _confident_mean(kp, _left_right_indices(keypoint_names, part), score_threshold)[:, 1]
    height = estimate_person_height(kp, keypoint_names, score_threshold)
    return interpolate_missing(-y / height)


def detrend(signal: np.ndarray, window: Optional[int] = None) -> np.ndarray:
    """The signal minus a slow baseline: its least-squares line, or a rolling median.

    With ``window=None`` the baseline is the line fitted to the whole signal:
    it removes a steady drift (the person stepping closer) without bending
    the repetitions, whatever their duty cycle. With a ``window`` (frames) it is
    the centred rolling median, for drifts that are not straight; within half a
    window of either end it is the median of the first / last full window,
    since padding would invent a baseline from mirrored samples. A signal not
    longer than the window has its global median removed.
    """
    x = np.asarray(signal, dtype=np.float64)
    if x.size < 2:
        return x - x.mean() if x.size else x.copy()
    if window is None:
        t = np.arange(x.size, dtype=np.float64)
        slope, intercept = np.polyfit(t, x, 1)
        return x - (slope * t + intercept)
    if x.size <= window:
        return x - np.median(x)
    full_windows = np.median(np.lib.stride_tricks.sliding_window_view(x, window), axis=1)
    before = window // 2
    baseline = np.pad(full_windows, (before, window - 1 - before), mode="edge")
    return x - baseline


def moving_average(signal: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average over ``window`` frames (edges use the nearest sample);
    1 = no smoothing."""
    x = np.asarray(signal, dtype=np.float64)
    if window <= 1 or x.size == 0:
        return x.copy()
    before = window // 2
    padded = np.pad(x, (before, window - 1 - before), mode="edge")
    return np.convolve(padded, np.ones(window) / window, mode="valid")


def hysteresis_thresholds(
    signal: np.ndarray,
    band: Tuple[float, float] = (0.35, 0.65),
    min_amplitude: float = 0.05,
    percentiles: Tuple[float, float] = (5.0, 95.0),
) -> Optional[Tuple[float, float]]:
    """``(low, high)`` placed at fractions ``band`` of the signal's robust range, or None.

    The robust range is between the ``percentiles`` of the signal, so a few
    outliers do not stretch it. None when that range is below
    ``min_amplitude``: the signal is then taken to be motionless (jitter), and
    thresholds drawn inside its noise would count the noise.
    """
    x = np.asarray(signal, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size < 2:
        return None
    lo, hi = np.percentile(x, percentiles)
    amplitude = hi - lo
    if amplitude < min_amplitude:
        return None
    return float(lo + band[0] * amplitude), float(lo + band[1] * amplitude)


class _Hysteresis:
    """The down-then-up state machine shared by batch and streaming counting."""

    def __init__(self, min_interval: int, min_rise: float = 0.0):
        self.min_interval = min_interval
        self.min_rise = min_rise
        self.count = 0
        self._trough: Optional[float] = None  # lowest value since going below low; None = not armed
        self._last_count_frame: Optional[int] = None

    def step(self, value: float, low: float, high: float, frame: int) -> None:
        if value < low:
            self._trough = value if self._trough is None else min(self._trough, value)
        elif value > high and self._trough is not None:
            # Noise can cross a band that is narrow for it: a repetition must
            # also have risen by min_rise from its lowest point. Until it has,
            # stay armed, as the rise may still be under way.
            if value - self._trough < self.min_rise:
                return
            self._trough = None
            # a second crossing too soon is a bounce of the same repetition
            if (
                self._last_count_frame is None
                or frame - self._last_count_frame >= self.min_interval
            ):
                self.count += 1
                self._last_count_frame = frame


def running_cycle_counts(
    signal: np.ndarray, low: float, high: float, min_interval: int = 0, min_rise: float = 0.0
) -> np.ndarray:
    """T running counts of down-then-up cycles: ``counts[t]`` = cycles completed by frame t.

    A cycle rises above ``high`` after being below ``low``, by at least
    ``min_rise`` from the lowest value since going below ``low``. Counts closer
    than ``min_interval`` frames to the previous count are dropped.
    """
    if not low < high:
        raise ValueError(f"need low < high, got {low} and {high}")
    machine = _Hysteresis(min_interval, min_rise)
    values = np.asarray(signal, dtype=np.float64).reshape(-1)
    counts = np.zeros(values.size, dtype=np.int64)
    for frame, value in enumerate(values):
        machine.step(float(value), low, high, frame)
        counts[frame] = machine.count
    return counts


def count_cycles(
    signal: np.ndarray, low: float, high: float, min_interval: int = 0, min_rise: float = 0.0
) -> int:
    """Down-then-up cycles of ``signal`` (the last of :func:`running_cycle_counts`)."""
    counts = running_cycle_counts(signal, low, high, min_interval, min_rise)
    return int(counts[-1]) if counts.size else 0


class RepetitionCounter:
    """Counts down-then-up repetitions of a normalised vertical signal, in batch or streaming.

    Args:
        low, high: hysteresis thresholds on the detrended signal (see
            :func:`detrend`). Give both, or neither to derive them from the
            signal's robust amplitude (:func:`hysteresis_thresholds`).
        min_interval: minimum number of frames between two counts.
        smoothing: moving-average window in frames (1 = none).
        min_amplitude: with auto thresholds, a signal whose robust range is
            below this is motionless and counts nothing, and a repetition must
            rise by at least this much from its lowest point. In units of
            :func:`vertical_signal`, i.e. fractions of the person's size.
        band: where the auto thresholds sit within the robust range.
        baseline_window: batch detrending: None for a straight-line
            baseline, or the frames of a rolling-median baseline.
        stream_window: streaming: frames of the running median used for
            detrending, and of the history the auto thresholds come from.
        stream_warmup: streaming with auto thresholds: values needed before
            the first thresholds (a handful of noisy samples can span
            ``min_amplitude``); the warm-up is replayed, so nothing is lost.

    :meth:`count` counts a whole signal (centred smoothing, detrending,
    thresholds from the whole signal). :meth:`update` takes one value at a time
    and returns the count so far: trailing smoothing; with fixed thresholds it
    detrends by the running median of the last ``stream_window`` values
    (which lags a drift by about half that window); with auto thresholds it
    derives them from the last ``stream_window`` values (so they follow a
    drift by themselves) and replays that history once when they first become
    available (to know whether the signal was already down), so the
    repetition that made the signal move is not lost. NaN values are skipped.
    """

    def __init__(
        self,
        low: Optional[float] = None,
        high: Optional[float] = None,
        min_interval: int = 8,
        smoothing: int = 3,
        min_amplitude: float = 0.05,
        band: Tuple[float, float] = (0.35, 0.65),
        baseline_window: Optional[int] = None,
        stream_window: int = 150,
        stream_warmup: int = 30,
    ):
        if (low is None) != (high is None):
            raise ValueError("give both low and high thresholds, or neither")
        if low is not None and not low < high:
            raise ValueError(f"need low < high, got {low} and {high}")
        if not 0.0 <= band[0] < band[1] <= 1.0:
            raise ValueError(f"band must be two increasing fractions in [0, 1], got {band}")
        self.low = low
        self.high = high
        self.min_interval = int(min_interval)
        self.smoothing = max(int(smoothing), 1)
        self.min_amplitude = float(min_amplitude)
        self.band = band
        self.baseline_window = baseline_window
        self.stream_window = int(stream_window)
        self.stream_warmup = min(int(stream_warmup), self.stream_window)
        self.reset()

    @property
    def fixed_thresholds(self) -> Optional[Tuple[float, float]]:
        return None if self.low is None else (self.low, self.high)

    def running_counts(self, signal: np.ndarray) -> np.ndarray:
        """T running counts of a whole T signal (NaNs interpolated), batch processing.

        ``running[t]`` = repetitions completed by frame t. The processing looks at
        the whole signal (centred smoothing, detrending, thresholds from its
        range) and then replays the hysteresis frame by frame, so the last
        running count is :meth:`count`, unlike the streaming :meth:`update`.
        Leaves the streaming state alone.
        """
        x = moving_average(
            detrend(interpolate_missing(signal), self.baseline_window), self.smoothing
        )
        if self.fixed_thresholds is not None:
            return running_cycle_counts(x, self.low, self.high, self.min_interval)
        thresholds = hysteresis_thresholds(x, self.band, self.min_amplitude)
        if thresholds is None:
            return np.zeros(len(x), dtype=np.int64)
        low, high = thresholds
        return running_cycle_counts(x, low, high, self.min_interval, min_rise=self.min_amplitude)

    def count(self, signal: np.ndarray) -> int:
        """Repetitions in a whole T signal (NaNs interpolated). Leaves the streaming state alone."""
        running = self.running_counts(signal)
        return int(running[-1]) if running.size else 0

    # -- streaming -----------------------------------------------------------------

    def reset(self) -> None:
        """Restart streaming from zero."""
        self._raw: Deque[float] = deque(maxlen=self.stream_window)
        self._recent: Deque[float] = deque(maxlen=self.smoothing)
        self._history: Deque[float] = deque(maxlen=self.stream_window)
        min_rise = 0.0 if self.fixed_thresholds is not None else self.min_amplitude
        self._machine = _Hysteresis(self.min_interval, min_rise)
        self._frame = -1
        self._replayed = False

    @property
    def current_count(self) -> int:
        return self._machine.count

    def update(self, value: float) -> int:
        """Add one sample of the signal; returns the number of repetitions so far."""
        if value is None or not np.isfinite(value):
            return self._machine.count
        self._frame += 1
        self._raw.append(float(value))
        self._recent.append(float(value))
        smoothed = float(np.mean(self._recent))

        if self.fixed_thresholds is not None:
            detrended = smoothed - float(np.median(self._raw))
            self._machine.step(detrended, self.low, self.high, self._frame)
            return self._machine.count

        self._history.append(smoothed)
        if len(self._history) < self.stream_warmup:
            return self._machine.count
        thresholds = hysteresis_thresholds(np.asarray(self._history), self.band, self.min_amplitude)
        if thresholds is None:
            return self._machine.count
        if not self._replayed:
            self._replay_history(thresholds)
        else:
            self._machine.step(smoothed, thresholds[0], thresholds[1], self._frame)
        return self._machine.count

    def _replay_history(self, thresholds: Tuple[float, float]) -> None:
        # the rise that made the range reach min_amplitude may have crossed
        # `high` a frame or two ago: run the machine over the stored history
        first_frame = self._frame - len(self._history) + 1
        for offset, v in enumerate(self._history):
            self._machine.step(v, thresholds[0], thresholds[1], first_frame + offset)
        self._replayed = True


# -- pose records (the JSON lines of demo.py) ---------------------------------------

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


def _track_lengths(records: Sequence[Record]) -> Dict[int, int]:
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
    lengths = _track_lengths(records)
    if not lengths:
        return None
    longest = max(lengths.values())
    candidates = sorted(tid for tid, n in lengths.items() if n == longest)
    return max(candidates, key=lambda tid: _median_box_area(records, tid))


def track_keypoint_sequence(
    records: Sequence[Record], track_id: int, num_keypoints: int
) -> np.ndarray:
    """T x K x 3 keypoints of one track over the records' T frames, in record order.

    Frames without the track are all zeros (score 0), which
    :func:`vertical_signal` treats as missing.
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


def _check_names(keypoint_names: Sequence[str], part: str) -> None:
    # the signal needs the part, and the person's size needs shoulders and ankles
    wanted = [
        f"{side}_{p}"
        for p in dict.fromkeys((part, "shoulder", "ankle"))
        for side in ("left", "right")
    ]
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
        return RepetitionResult(
            0, track_id, np.zeros(len(records), dtype=np.int64), np.zeros(0), seen
        )
    running = counter.running_counts(signal)
    return RepetitionResult(
        int(running[-1]) if len(running) else 0, track_id, running, signal, seen
    )
