"""Pose tracking by motion and keypoints: ByteTrack's association, OKS on Kalman-predicted poses.

:class:`KalmanOksTracker` follows ByteTrack (Zhang et al., ECCV 2022) in its
structure and replaces box IoU by the keypoint similarity kpext's evaluator
scores with:

* every track carries constant-velocity Kalman filters of its keypoints and
  box (:class:`kpext.video.motion.ConstantVelocityKalman`), so it is compared
  with each frame's detections where the person *will be*, not where they were;
* detections are associated in two stages: confident ones (score at least
  ``high_score``) with every track, then the less confident ones (at least
  ``low_score``) with the tracks still unmatched that were seen in the last
  frame: a person half hidden behind another is often detected with a low
  score, and a low-score detection is as often a false one, so it may extend
  a track but never start one;
* the similarity is the mean of two: OKS between the predicted pose and the
  detection, with the prediction's own uncertainty added to each keypoint's OKS
  tolerance (a track unseen for a while, its position uncertain, is matched
  more loosely than one seen in the last frame), and the IoU of the predicted
  box with the detection's. Keypoints tell apart people whose boxes overlap
  (a crossing); the box holds when many keypoints are wrong (a weak model's
  left/right inversions): on the tracking benchmark's development seed, either
  alone scored lower than the mean;
* a new track is confirmed (gets an id) once matched in ``min_hits`` frames
  (immediately in the first frame); confirmed tracks survive ``max_age``
  frames without a match.

The tracker returns a track id per detection, or None for a detection that is
not (yet) part of a confirmed track.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..data.keypoint_metadata import oks_sigmas_for_count
from ..modeling.oks import object_keypoint_similarity
from .association import hungarian_match
from .motion import ConstantVelocityKalman
from .tracking import box_areas, box_iou_matrix

__all__ = ["KalmanOksTracker", "KalmanTrack"]


@dataclass
class KalmanTrack:
    """One person's track: Kalman filters of the K x 2 keypoints and the 4 box corners.

    ``observed`` (K bool) marks the keypoints detected confidently at least
    once: only they take part in the similarity. ``track_id`` is None until the
    track is confirmed.
    """

    keypoints: ConstantVelocityKalman
    box: ConstantVelocityKalman
    observed: np.ndarray
    last_seen: int
    hits: int = 1
    track_id: Optional[int] = None

    @property
    def confirmed(self) -> bool:
        return self.track_id is not None


class KalmanOksTracker:
    """Two-stage OKS association of detections with Kalman-predicted poses.

    Args:
        high_score: detections at least this confident are matched first and may start tracks.
        low_score: detections between this and ``high_score`` only continue tracks seen in
            the last frame; lower ones are ignored.
        match_threshold: the least similarity (OKS with the prediction's uncertainty) of
            a match in the first stage and for unconfirmed tracks.
        low_match_threshold: the least similarity for a low-score detection (second stage):
            stricter, since such a detection may be a false one.
        max_age: frames a confirmed track may go unmatched and still continue.
        min_hits: frames a new track must be matched in before it gets an id.
        sigmas: K OKS sigmas; default: COCO's for 17 keypoints, else 0.05 each.
        keypoint_score_threshold: a detected keypoint counts (in the similarity and in the
            filter's update) when its score is above this.
        measurement_std, process_std, velocity_std: the Kalman noise, as fractions of the
            person's height (box height) per frame: detector error on a position (px),
            random acceleration (px / frame^2), spread of a new track's unknown velocity
            (px / frame).
        lost_velocity_decay: factor on an unmatched track's velocity per frame: its guess
            slows down instead of running on at full speed.
        max_uncertainty: the most standard deviation of a predicted keypoint added to its
            OKS tolerance, as a fraction of the person's height: without a bound, a track
            lost for a second would match anyone anywhere.
        box_weight: weight of box IoU in the similarity, OKS having the rest.
        first_id: the first track id; ids count up and are never reused.
    """

    def __init__(
        self,
        high_score: float = 0.5,
        low_score: float = 0.1,
        match_threshold: float = 0.2,
        low_match_threshold: float = 0.4,
        max_age: int = 30,
        min_hits: int = 2,
        sigmas: Optional[Sequence[float]] = None,
        keypoint_score_threshold: float = 0.05,
        measurement_std: float = 0.05,
        process_std: float = 0.01,
        velocity_std: float = 0.05,
        lost_velocity_decay: float = 0.9,
        max_uncertainty: float = 0.3,
        box_weight: float = 0.5,
        first_id: int = 1,
    ):
        if not 0.0 <= low_score <= high_score:
            raise ValueError(f"need 0 <= low_score <= high_score, got {low_score}, {high_score}")
        if max_age < 0 or min_hits < 1:
            raise ValueError(f"need max_age >= 0 and min_hits >= 1, got {max_age}, {min_hits}")
        self.high_score = float(high_score)
        self.low_score = float(low_score)
        self.match_threshold = float(match_threshold)
        self.low_match_threshold = float(low_match_threshold)
        self.max_age = int(max_age)
        self.min_hits = int(min_hits)
        self.sigmas = None if sigmas is None else np.asarray(sigmas, dtype=np.float64)
        self.keypoint_score_threshold = float(keypoint_score_threshold)
        self.measurement_std = float(measurement_std)
        self.process_std = float(process_std)
        self.velocity_std = float(velocity_std)
        self.lost_velocity_decay = float(lost_velocity_decay)
        self.box_weight = float(box_weight)
        self.max_uncertainty = float(max_uncertainty)
        self.first_id = int(first_id)
        self.reset()

    def reset(self) -> None:
        """Forget all tracks; ids restart at ``first_id``."""
        self._tracks: List[KalmanTrack] = []
        self._next_id = self.first_id
        self._frame = -1

    @property
    def tracks(self) -> List[KalmanTrack]:
        """The live tracks, confirmed or not."""
        return list(self._tracks)

    # ------------------------------------------------------------------

    def _sigmas(self, num_keypoints: int) -> np.ndarray:
        if self.sigmas is not None:
            return self.sigmas
        return np.asarray(oks_sigmas_for_count(num_keypoints), dtype=np.float64)

    def _scale(self, box: np.ndarray) -> float:
        # the person's height in pixels sets every noise level: a near person moves more pixels
        return max(float(box[3] - box[1]), 1.0)

    def _new_track(self, keypoints: np.ndarray, box: np.ndarray) -> KalmanTrack:
        scale = self._scale(box)
        confident = keypoints[:, 2] > self.keypoint_score_threshold
        position_std = self.measurement_std * scale
        velocity_std = self.velocity_std * scale
        return KalmanTrack(
            keypoints=ConstantVelocityKalman(keypoints[:, :2], position_std, velocity_std),
            box=ConstantVelocityKalman(box, position_std, velocity_std),
            observed=confident.copy(),
            last_seen=self._frame,
        )

    @staticmethod
    def _body_box(track: KalmanTrack) -> np.ndarray:
        """4: the XYXY extent of the track's predicted keypoints (those ever observed), the
        whole body even where the image cuts it, or its predicted box if it has fewer than
        two such keypoints. A box clipped by the image edge would shrink a person leaving
        the frame to nothing, and with it the OKS scale."""
        points = track.keypoints.position[track.observed]
        if len(points) < 2:
            return track.box.position
        return np.concatenate([points.min(axis=0), points.max(axis=0)])

    def _predict(self, track: KalmanTrack) -> None:
        scale = self._scale(self._body_box(track))
        missed = self._frame - track.last_seen > 1  # not matched in the previous frame
        decay = self.lost_velocity_decay if missed else 1.0
        track.keypoints.predict(self.process_std * scale, decay)
        track.box.predict(self.process_std * scale, decay)

    def _correct(self, track: KalmanTrack, keypoints: np.ndarray, box: np.ndarray) -> None:
        scale = self._scale(self._body_box(track))
        confident = keypoints[:, 2] > self.keypoint_score_threshold
        std = self.measurement_std * scale
        track.keypoints.update(keypoints[:, :2], std, confident[:, None])
        track.box.update(box, std)
        track.observed |= confident
        track.last_seen = self._frame
        track.hits += 1

    def _similarity(
        self, tracks: List[KalmanTrack], keypoints: np.ndarray, boxes: np.ndarray
    ) -> np.ndarray:
        """T x D: ``box_weight`` x IoU of each detection's box with each track's predicted
        box, plus the rest x OKS of the detection against the predicted pose (the predicted
        position variance added to each keypoint's tolerance; the IoU where no keypoint
        counts on either side)."""
        if not tracks or not len(keypoints):
            return np.zeros((len(tracks), len(keypoints)))
        predicted = np.stack([t.keypoints.position for t in tracks])  # T x K x 2
        pred_boxes = np.stack([t.box.position for t in tracks])  # T x 4
        bodies = np.stack([self._body_box(t) for t in tracks])  # T x 4
        heights = np.maximum(bodies[:, 3] - bodies[:, 1], 1.0)
        variance = np.minimum(
            np.stack([t.keypoints.var_pp.mean(axis=1) for t in tracks]),
            (self.max_uncertainty * heights[:, None]) ** 2,
        )  # T x K
        areas = box_areas(bodies)  # T
        sigmas = self._sigmas(keypoints.shape[1])
        d2 = ((predicted[:, None] - keypoints[None, :, :, :2]) ** 2).sum(-1)  # T x D x K
        # OKS's tolerance 2 s^2 (2 sigma)^2 widened by the prediction's variance (both axes):
        # the squared distance is scaled down by the same ratio, so that the one OKS formula
        # (kpext.modeling.oks) computes exp(-d^2 / (tolerance + 2 variance)).
        tolerance = 2.0 * areas[:, None] * (2.0 * sigmas[None, :]) ** 2  # T x K
        shrink = tolerance / (tolerance + 2.0 * variance)
        counted = np.stack([t.observed for t in tracks])[:, None, :] & (
            keypoints[None, :, :, 2] > self.keypoint_score_threshold
        )  # T x D x K
        oks = object_keypoint_similarity(
            torch.from_numpy(d2 * shrink[:, None, :]),
            torch.from_numpy(areas[:, None, None]),
            torch.from_numpy(sigmas),
            torch.from_numpy(counted),
        ).numpy()
        iou = box_iou_matrix(pred_boxes, boxes)
        no_keypoints = ~counted.any(axis=2)
        oks = np.where(no_keypoints, iou, oks)
        return (1.0 - self.box_weight) * oks + self.box_weight * iou

    def _associate(
        self,
        tracks: List[KalmanTrack],
        detections: np.ndarray,
        keypoints: np.ndarray,
        boxes: np.ndarray,
        threshold: float,
    ) -> Tuple[List[Tuple[KalmanTrack, int]], List[KalmanTrack], List[int]]:
        """Match ``tracks`` with the detections of index ``detections``: (matched (track,
        detection index) pairs, unmatched tracks, unmatched detection indices)."""
        similarity = self._similarity(tracks, keypoints[detections], boxes[detections])
        pairs = hungarian_match(similarity, threshold)
        matched = [(tracks[r], int(detections[c])) for r, c in pairs]
        used_rows = {r for r, _ in pairs}
        used_cols = {c for _, c in pairs}
        unmatched_tracks = [t for i, t in enumerate(tracks) if i not in used_rows]
        unmatched = [int(d) for i, d in enumerate(detections) if i not in used_cols]
        return matched, unmatched_tracks, unmatched

    def update(
        self, keypoints: np.ndarray, boxes: np.ndarray, scores: Optional[np.ndarray] = None
    ) -> List[Optional[int]]:
        """Track one frame.

        Args:
            keypoints: N x K x 3 poses (x, y, score), image coordinates.
            boxes: N x 4 XYXY boxes of the same people.
            scores: N detection scores (default: all 1).

        Returns:
            N track ids aligned with the input; None for a detection that is not part of a
            confirmed track (below ``low_score``, unmatched at a low score, or a track
            not yet confirmed).
        """
        keypoints = np.asarray(keypoints, dtype=np.float64)
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        n = keypoints.shape[0]
        if boxes.shape[0] != n:
            raise ValueError(f"{n} poses but {boxes.shape[0]} boxes")
        scores = np.ones(n) if scores is None else np.asarray(scores, dtype=np.float64).reshape(-1)
        self._frame += 1
        # an unconfirmed track that missed a frame was a false start; a confirmed one may
        # miss max_age frames
        self._tracks = [
            t
            for t in self._tracks
            if self._frame - t.last_seen - 1 <= (self.max_age if t.confirmed else 0)
        ]
        for track in self._tracks:
            self._predict(track)

        high = np.flatnonzero(scores >= self.high_score)
        low = np.flatnonzero((scores >= self.low_score) & (scores < self.high_score))
        confirmed = [t for t in self._tracks if t.confirmed]
        tentative = [t for t in self._tracks if not t.confirmed]

        # 1. confident detections with every confirmed track, recently seen or not
        matched, left_tracks, left_high = self._associate(
            confirmed, high, keypoints, boxes, self.match_threshold
        )
        # 2. low-score detections only continue tracks seen in the previous frame
        recent = [t for t in left_tracks if t.last_seen == self._frame - 1]
        matched_low, _, _ = self._associate(recent, low, keypoints, boxes, self.low_match_threshold)
        # 3. tracks not yet confirmed take what confident detections are left
        matched_new, _, left_high = self._associate(
            tentative, np.asarray(left_high, dtype=int), keypoints, boxes, self.match_threshold
        )

        ids: List[Optional[int]] = [None] * n
        for track, d in matched + matched_low + matched_new:
            self._correct(track, keypoints[d], boxes[d])
            if not track.confirmed and track.hits >= self.min_hits:
                self._confirm(track)
            ids[d] = track.track_id
        for d in left_high:
            track = self._new_track(keypoints[d], boxes[d])
            if self.min_hits <= 1 or self._frame == 0:  # as ByteTrack: frame 0 starts confirmed
                self._confirm(track)
            self._tracks.append(track)
            ids[d] = track.track_id
        return ids

    def _confirm(self, track: KalmanTrack) -> None:
        track.track_id = self._next_id
        self._next_id += 1
