"""Pose tracking across video frames and One-Euro smoothing of tracked keypoints.

* :class:`PoseTracker` gives each detected person a track id that stays the
  same from frame to frame: greedy matching by OKS (or box IoU) against each
  track's last known pose, with tracks surviving short detection gaps.
* :class:`OneEuroFilter` is the speed-adaptive low-pass filter of Casiez,
  Roussel and Vogel (CHI 2012): little smoothing when a point moves fast (low
  lag), strong smoothing when it is slow (low jitter).
* :class:`KeypointSmoother` runs one One-Euro filter per track on its K x 2
  keypoint coordinates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..data.keypoint_metadata import oks_sigmas_for_count
from ..modeling.postprocess import keypoint_oks_matrix

__all__ = [
    "TRACK_MATCH_METHODS",
    "Track",
    "PoseTracker",
    "box_iou_matrix",
    "greedy_match",
    "OneEuroFilter",
    "KeypointSmoother",
]

TRACK_MATCH_METHODS: Tuple[str, ...] = ("oks", "iou")
_DEFAULT_THRESHOLDS = {"oks": 0.3, "iou": 0.3}


def box_areas(boxes: np.ndarray) -> np.ndarray:
    """N areas (w * h, clipped at 0) of N x 4 XYXY boxes."""
    wh = np.clip(boxes[:, 2:4] - boxes[:, 0:2], 0.0, None)
    return wh[:, 0] * wh[:, 1]


def box_iou_matrix(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """N x M IoU of N x 4 and M x 4 XYXY boxes."""
    lo = np.maximum(boxes_a[:, None, :2], boxes_b[None, :, :2])
    hi = np.minimum(boxes_a[:, None, 2:4], boxes_b[None, :, 2:4])
    inter = np.prod(np.clip(hi - lo, 0.0, None), axis=2)
    union = box_areas(boxes_a)[:, None] + box_areas(boxes_b)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def greedy_match(similarity: np.ndarray, threshold: float) -> List[Tuple[int, int]]:
    """(row, column) pairs of an R x C similarity, best pair first, each row and column used once.

    Pairs with similarity below ``threshold`` are never matched. Ties keep
    row-major order, so the result is deterministic.
    """
    if similarity.size == 0:
        return []
    flat_order = np.argsort(-similarity, axis=None, kind="stable")
    used_rows, used_cols, pairs = set(), set(), []
    for flat in flat_order:
        r, c = divmod(int(flat), similarity.shape[1])
        if similarity[r, c] < threshold:
            break
        if r in used_rows or c in used_cols:
            continue
        used_rows.add(r)
        used_cols.add(c)
        pairs.append((r, c))
    return pairs


@dataclass
class Track:
    """A tracked person: their last matched pose (K x 3), box (4) and score, and when it
    was seen."""

    track_id: int
    keypoints: np.ndarray
    box: np.ndarray
    score: float
    last_seen: int
    hits: int = 1


class PoseTracker:
    """Frame-to-frame identity of detected people.

    Each :meth:`update` takes one frame's detections and returns a track id per
    detection. Detections are matched greedily (most similar pair first) to the
    live tracks, comparing with each track's last known pose: by OKS (``match=
    "oks"``, the track's last pose as reference and its box area as scale) or by
    box IoU (``match="iou"``). Pairs below ``threshold`` are not matched.
    Unmatched detections start new tracks. Track ids are integers counting up
    from ``first_id`` (default 1) and are never reused.

    A track missing from up to ``max_age`` consecutive frames can still be
    matched; one missing for longer is dropped.
    """

    def __init__(
        self,
        match: str = "oks",
        threshold: Optional[float] = None,
        max_age: int = 10,
        sigmas: Optional[Sequence[float]] = None,
        keypoint_score_threshold: float = 0.0,
        first_id: int = 1,
    ):
        if match not in TRACK_MATCH_METHODS:
            raise ValueError(
                f"unknown track matching {match!r}; choose one of {', '.join(TRACK_MATCH_METHODS)}"
            )
        if max_age < 0:
            raise ValueError(f"max_age must be >= 0, got {max_age}")
        self.match = match
        self.threshold = _DEFAULT_THRESHOLDS[match] if threshold is None else float(threshold)
        self.max_age = int(max_age)
        self.sigmas = None if sigmas is None else np.asarray(sigmas, dtype=np.float64)
        self.keypoint_score_threshold = keypoint_score_threshold
        self.first_id = first_id
        self.reset()

    def reset(self) -> None:
        """Forget all tracks; ids restart at ``first_id``."""
        self._tracks: Dict[int, Track] = {}
        self._next_id = self.first_id
        self._frame = -1

    @property
    def tracks(self) -> List[Track]:
        """The live tracks (seen within the last ``max_age`` + 1 frames)."""
        return list(self._tracks.values())

    def _drop_expired_tracks(self) -> None:
        # unseen for frame - last_seen - 1 frames; that many frames may be missed
        expired = [
            tid for tid, tr in self._tracks.items() if self._frame - tr.last_seen - 1 > self.max_age
        ]
        for tid in expired:
            del self._tracks[tid]

    def _similarity(
        self, tracks: List[Track], keypoints: np.ndarray, boxes: np.ndarray
    ) -> np.ndarray:
        if self.match == "iou":
            return box_iou_matrix(np.stack([t.box for t in tracks]), boxes)
        if self.sigmas is not None:
            sigmas = self.sigmas
        else:
            sigmas = np.asarray(oks_sigmas_for_count(keypoints.shape[1]), dtype=np.float64)
        track_kpts = np.stack([t.keypoints for t in tracks])
        oks = keypoint_oks_matrix(
            torch.from_numpy(track_kpts),
            torch.from_numpy(keypoints),
            torch.from_numpy(box_areas(np.stack([t.box for t in tracks]))),
            torch.from_numpy(sigmas),
            score_threshold=self.keypoint_score_threshold,
        )
        return oks.numpy()

    def update(
        self, keypoints: np.ndarray, boxes: np.ndarray, scores: Optional[np.ndarray] = None
    ) -> List[int]:
        """Track one frame.

        Args:
            keypoints: N x K x 3 poses (x, y, score), image coordinates.
            boxes: N x 4 XYXY boxes of the same people.
            scores: N detection scores (stored with the track; optional).

        Returns:
            N track ids, aligned with the input order.
        """
        keypoints = np.asarray(keypoints, dtype=np.float64)
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        n = keypoints.shape[0]
        if boxes.shape[0] != n:
            raise ValueError(f"{n} poses but {boxes.shape[0]} boxes")
        scores = np.ones(n) if scores is None else np.asarray(scores, dtype=np.float64).reshape(-1)
        self._frame += 1
        self._drop_expired_tracks()

        ids: List[Optional[int]] = [None] * n
        live = self.tracks
        if live and n:
            for row, col in greedy_match(self._similarity(live, keypoints, boxes), self.threshold):
                ids[col] = live[row].track_id
        for i in range(n):
            if ids[i] is None:
                ids[i] = self._start_track(keypoints[i], boxes[i], float(scores[i]))
            else:
                self._refresh_track(self._tracks[ids[i]], keypoints[i], boxes[i], float(scores[i]))
        return ids  # type: ignore[return-value]

    def _start_track(self, keypoints: np.ndarray, box: np.ndarray, score: float) -> int:
        tid = self._next_id
        self._next_id += 1
        self._tracks[tid] = Track(tid, keypoints.copy(), box.copy(), score, self._frame)
        return tid

    def _refresh_track(
        self, track: Track, keypoints: np.ndarray, box: np.ndarray, score: float
    ) -> None:
        track.keypoints = keypoints.copy()
        track.box = box.copy()
        track.score = score
        track.last_seen = self._frame
        track.hits += 1


def _smoothing_factor(cutoff_hz: np.ndarray, dt: np.ndarray) -> np.ndarray:
    # exponential smoothing factor of a first-order low-pass at this cutoff
    tau = 1.0 / (2.0 * math.pi * cutoff_hz)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """One-Euro filter (Casiez et al., CHI 2012) on a scalar or an array of any shape.

    Every element is filtered independently: the cutoff frequency is
    ``min_cutoff + beta * |speed|`` (Hz), with the speed (units per second)
    itself low-passed at ``d_cutoff``. ``min_cutoff`` sets the jitter removed at
    rest; ``beta`` how fast the cutoff opens up when the signal moves (less lag).

    Call it with one sample per step: ``filter(x, timestamp=None, mask=None)``.
    Without timestamps the samples are ``1 / freq`` seconds apart. ``mask``
    (broadcastable to ``x``) marks the elements to update; the others are
    returned raw and leave their state untouched, so their next update sees the
    time elapsed since they were last updated.
    """

    def __init__(
        self, min_cutoff: float = 1.0, beta: float = 0.0, d_cutoff: float = 1.0, freq: float = 30.0
    ):
        if min_cutoff <= 0 or d_cutoff <= 0 or freq <= 0:
            raise ValueError("min_cutoff, d_cutoff and freq must be positive")
        self.min_cutoff = float(min_cutoff)
        self.beta = float(beta)
        self.d_cutoff = float(d_cutoff)
        self.freq = float(freq)
        self.reset()

    def reset(self) -> None:
        """Forget the signal's history."""
        self._clock: Optional[float] = None
        self._x_hat: Optional[np.ndarray] = None
        self._dx_hat: Optional[np.ndarray] = None
        self._t_prev: Optional[np.ndarray] = None
        self._started: Optional[np.ndarray] = None

    def _next_time(self, timestamp: Optional[float]) -> float:
        if timestamp is None:
            return 0.0 if self._clock is None else self._clock + 1.0 / self.freq
        t = float(timestamp)
        if self._clock is not None and t <= self._clock:
            raise ValueError(f"timestamps must increase: {t} after {self._clock}")
        return t

    def __call__(self, x, timestamp: Optional[float] = None, mask=None):
        """Filter one sample (scalar or array); returns the same shape."""
        x_arr = np.asarray(x, dtype=np.float64)
        t = self._next_time(timestamp)
        if self._x_hat is None:
            self._x_hat = x_arr.copy()
            self._dx_hat = np.zeros_like(x_arr)
            self._t_prev = np.full(x_arr.shape, t)
            self._started = np.zeros(x_arr.shape, dtype=bool)
        elif x_arr.shape != self._x_hat.shape:
            raise ValueError(
                f"sample shape {x_arr.shape} differs from the filter's {self._x_hat.shape}"
            )
        self._clock = t

        update = np.broadcast_to(
            np.asarray(True if mask is None else mask, dtype=bool), x_arr.shape
        )
        first = update & ~self._started
        self._x_hat[first] = x_arr[first]
        self._dx_hat[first] = 0.0
        self._t_prev[first] = t

        step = update & self._started
        if step.any():
            dt = t - self._t_prev[step]
            prev = self._x_hat[step]
            # speed from the previous *filtered* value, as in the paper
            dx = (x_arr[step] - prev) / dt
            dx_hat = (
                _smoothing_factor(self.d_cutoff, dt) * (dx - self._dx_hat[step])
                + self._dx_hat[step]
            )
            cutoff = self.min_cutoff + self.beta * np.abs(dx_hat)
            self._x_hat[step] = prev + _smoothing_factor(cutoff, dt) * (x_arr[step] - prev)
            self._dx_hat[step] = dx_hat
            self._t_prev[step] = t
        self._started |= update

        out = np.where(update, self._x_hat, x_arr)
        return float(out) if out.ndim == 0 else out


class KeypointSmoother:
    """One :class:`OneEuroFilter` per track, on its K x 2 keypoint coordinates.

    :meth:`smooth` takes one frame's track ids and N x K x 3 keypoints. Keypoints
    whose score is not above ``score_threshold`` are returned raw and do not
    update their filter. Time advances by ``1 / freq`` per call unless
    timestamps are given, so a track that skipped frames sees the true gap. A
    track's filter is dropped once the track has been absent for more than
    ``max_age`` frames (a track coming back later starts a fresh filter).

    ``beta`` is per pixel/second: the default 0.02 raises the cutoff by 1 Hz
    at 50 px/s, which suits people a few hundred pixels tall at 30 fps.
    """

    def __init__(
        self,
        min_cutoff: float = 1.0,
        beta: float = 0.02,
        d_cutoff: float = 1.0,
        freq: float = 30.0,
        score_threshold: float = 0.0,
        max_age: int = 10,
    ):
        self.params = dict(min_cutoff=min_cutoff, beta=beta, d_cutoff=d_cutoff, freq=freq)
        self.freq = float(freq)
        self.score_threshold = score_threshold
        self.max_age = int(max_age)
        self.reset()

    def reset(self) -> None:
        self._filters: Dict[int, OneEuroFilter] = {}
        self._last_seen: Dict[int, int] = {}
        self._frame = -1

    @property
    def track_ids(self) -> List[int]:
        """Ids of the tracks that currently hold a filter."""
        return list(self._filters)

    def _drop_stale_filters(self) -> None:
        # after this frame, unseen for frame - seen frames: too many can never be matched again
        stale = [tid for tid, seen in self._last_seen.items() if self._frame - seen > self.max_age]
        for tid in stale:
            del self._filters[tid]
            del self._last_seen[tid]

    def smooth(
        self, track_ids: Sequence[int], keypoints: np.ndarray, timestamp: Optional[float] = None
    ) -> np.ndarray:
        """Smooth one frame: N track ids and N x K x 3 keypoints -> N x K x 3 (scores unchanged)."""
        keypoints = np.asarray(keypoints, dtype=np.float64)
        if len(track_ids) != keypoints.shape[0]:
            raise ValueError(f"{len(track_ids)} track ids for {keypoints.shape[0]} poses")
        if len(set(track_ids)) != len(track_ids):
            raise ValueError(f"duplicated track ids in one frame: {list(track_ids)}")
        self._frame += 1
        t = self._frame / self.freq if timestamp is None else float(timestamp)

        out = keypoints.copy()
        for i, tid in enumerate(track_ids):
            filt = self._filters.get(tid)
            if filt is None:
                filt = self._filters[tid] = OneEuroFilter(**self.params)
            confident = (keypoints[i, :, 2] > self.score_threshold)[:, None]
            out[i, :, :2] = filt(keypoints[i, :, :2], timestamp=t, mask=confident)
            self._last_seen[tid] = self._frame
        self._drop_stale_filters()
        return out
