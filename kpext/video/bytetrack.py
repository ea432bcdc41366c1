"""ByteTrack from Roboflow's ``trackers`` library on kpext's detections (box IoU association).

``trackers`` (Apache-2.0) is an optional dependency: ``pip install 'kpext[tracking]'``.
kpext pins it below 2.2 because 2.2 and later require ``opencv-python``, which
installs into the same ``cv2/`` folder as kpext's ``opencv-python-headless``
and breaks ``import cv2`` when both are installed; 2.1 requires only
``supervision``, whose releases from 0.31 on no longer require an OpenCV
package either (the ``cv2`` module kpext installs serves them).
"""

from __future__ import annotations

from typing import Dict, List, Optional

import numpy as np

__all__ = ["ByteTrackPoseTracker", "TRACKING_EXTRA_HINT"]

TRACKING_EXTRA_HINT = "pip install 'kpext[tracking]' (trackers>=2.1,<2.2 and supervision>=0.31)"


class ByteTrackPoseTracker:
    """ByteTrack (Zhang et al., ECCV 2022) as implemented by ``trackers.ByteTrackTracker``,
    with :class:`kpext.video.PoseTracker`'s call: poses and boxes in, one id per detection.

    The library associates boxes only (IoU with Kalman-predicted boxes); the
    keypoints are carried along untouched. Args are the library's, named as in
    :class:`kpext.video.KalmanOksTracker`: ``high_score`` is its
    ``high_conf_det_threshold`` and ``track_activation_threshold``, ``low_score``
    the least score passed to it at all (ByteTrack's 0.1), ``max_age`` its
    ``lost_track_buffer``, ``min_hits`` its ``minimum_consecutive_frames``,
    ``iou_threshold`` its ``minimum_iou_threshold``.

    The library numbers tracks process-wide; ids here count up from ``first_id``
    per :meth:`reset`, in order of confirmation.
    """

    def __init__(
        self,
        high_score: float = 0.5,
        low_score: float = 0.1,
        max_age: int = 30,
        min_hits: int = 2,
        iou_threshold: float = 0.1,
        fps: float = 30.0,
        first_id: int = 1,
    ):
        try:
            from trackers import ByteTrackTracker
        except ImportError as e:
            raise ImportError(f"the bytetrack tracker needs {TRACKING_EXTRA_HINT}") from e
        self._library_tracker = ByteTrackTracker
        self.high_score = float(high_score)
        self.low_score = float(low_score)
        self.max_age = int(max_age)
        self.min_hits = int(min_hits)
        self.iou_threshold = float(iou_threshold)
        self.fps = float(fps)
        self.first_id = int(first_id)
        self.reset()

    def reset(self) -> None:
        """A new library tracker; ids restart at ``first_id``."""
        self._tracker = self._library_tracker(
            lost_track_buffer=self.max_age,
            frame_rate=self.fps,
            track_activation_threshold=self.high_score,
            minimum_consecutive_frames=self.min_hits,
            minimum_iou_threshold=self.iou_threshold,
            high_conf_det_threshold=self.high_score,
        )
        self._ids: Dict[int, int] = {}

    def update(
        self, keypoints: np.ndarray, boxes: np.ndarray, scores: Optional[np.ndarray] = None
    ) -> List[Optional[int]]:
        """Track one frame: N x K x 3 keypoints, N x 4 XYXY boxes, N scores -> N ids
        (None for a detection the library leaves untracked)."""
        import supervision as sv

        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        n = boxes.shape[0]
        if len(keypoints) != n:
            raise ValueError(f"{len(keypoints)} poses but {n} boxes")
        scores = np.ones(n) if scores is None else np.asarray(scores, dtype=np.float64).reshape(-1)
        keep = np.flatnonzero(scores >= self.low_score)
        # the library returns its detections reordered: the input index travels in `data`
        detections = sv.Detections(
            xyxy=boxes[keep].astype(np.float32),
            confidence=scores[keep].astype(np.float32),
            class_id=np.zeros(len(keep), dtype=int),
            data={"index": keep},
        )
        tracked = self._tracker.update(detections)
        ids: List[Optional[int]] = [None] * n
        indices = tracked.data.get("index", np.zeros(0, dtype=int))
        for index, library_id in zip(indices, np.asarray(tracked.tracker_id).reshape(-1)):
            if library_id >= 0:  # -1: not (yet) a confirmed track
                ids[int(index)] = self._our_id(int(library_id))
        return ids

    def _our_id(self, library_id: int) -> int:
        if library_id not in self._ids:
            self._ids[library_id] = self.first_id + len(self._ids)
        return self._ids[library_id]
